/*
 * start_state.h - the start states a storage node keeps for its segments
 * (docs/architecture.md, "Epochs and recovery"; PROTOCOL.md 5.11, 9).
 *
 * A compute stores a start state (common/start_state.h: the bundle of
 * non-relation files it needs to start, and the LSN it is consistent at) on
 * the six segments of PG 0 after every checkpoint; a starting compute
 * fetches the newest one at or below the volume's VDL.  This module keeps
 * them on disk, per segment, in <segment dir>/start-states/:
 *
 *   <16 hex digits lsn>.bundle              a complete, verified bundle
 *   <16 hex lsn>-<16 hex total_len>.partial a put in progress
 *
 * Pieces of a put are appended to the partial file in order (one bundle at
 * a time per segment: a piece of another LSN starts over); the last piece
 * makes the node fsync it, check the whole bundle (its CRCs and that it
 * names the put's LSN) and rename it into place, fsyncing the directory,
 * and only then answer "complete".  Once a new bundle is durable the node
 * keeps the newest three and deletes older ones.  Opening the store removes
 * every partial file: a put interrupted by a restart starts over.  Nothing
 * of a bundle is held in memory beyond one piece.
 *
 * Thread safety: every function may be called from any thread; one mutex
 * serializes the store (puts are rare and small next to the log).
 */
#ifndef AURORA_NODE_START_STATE_H
#define AURORA_NODE_START_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "start_state_msg.h"

struct aurora_segment;
struct aurora_segment_table;

#define AURORA_START_STATES_DIR		"start-states"
/* Complete start states kept per segment. */
#define AURORA_START_STATES_KEEP	3

typedef struct aurora_start_states aurora_start_states;

/*
 * The store over table's segments (table must outlive it).  Removes every
 * segment's partial files (logged).  Fails only out of memory.
 */
int			aurora_start_states_open(struct aurora_segment_table *table, aurora_start_states **out,
									 char *err, size_t errlen);
void		aurora_start_states_close(aurora_start_states *ss);

/*
 * Take one piece of a put (the caller has fenced it).  Returns 0 with *ack
 * filled, or an AURORA_ERR_* code with err: MALFORMED (total_len outside a
 * bundle's limits), INCONSISTENT (a piece out of order, or a total_len that
 * differs from the put in progress), CORRUPT (the complete bundle does not
 * check; the partial file is removed), IO.  A put of a bundle the segment
 * already holds completely is acknowledged complete without rewriting it.
 */
int			aurora_start_states_put(aurora_start_states *ss, struct aurora_segment *seg,
									const aurora_start_state_put *p, aurora_start_state_ack *ack,
									char *err, size_t errlen);

/*
 * The newest complete start state of seg with consistent_lsn <= g->max_lsn:
 * up to min(g->max_bytes, cap) of its bytes from g->offset into *data
 * (malloc'd, free() it; NULL when none), which r->data points at.
 * r->found 0 when there is none.  Returns 0, or an AURORA_ERR_* code with
 * err (MALFORMED: offset beyond the bundle; IO).
 */
int			aurora_start_states_get(aurora_start_states *ss, struct aurora_segment *seg,
									const aurora_start_state_get *g, uint32_t cap,
									aurora_start_state_resp *r, uint8_t **data,
									char *err, size_t errlen);

/* The LSNs of seg's complete start states, newest first (up to max); returns the count. */
int			aurora_start_states_list(aurora_start_states *ss, struct aurora_segment *seg,
									 uint64_t *lsns, int max);

/*
 * Delete seg's start states (complete or partial) whose LSN is above lsn,
 * durably (directory fsynced): the truncation of a volume above a point
 * calls it, since a start state above the truncation point reflects
 * commits that no longer exist.  Returns 0, or an AURORA_ERR_* code (IO)
 * with err.
 */
int			aurora_start_states_drop_above(aurora_start_states *ss, struct aurora_segment *seg,
										   uint64_t lsn, char *err, size_t errlen);

#endif
