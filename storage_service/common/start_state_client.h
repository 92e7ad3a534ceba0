/*
 * start_state_client.h - storing and fetching a start state on the six
 * segments of a protection group (PROTOCOL.md 5.11).  A compute stores
 * its start states on PG 0 after checkpoints; a starting compute and
 * aurora-ctl fetch the newest one at or below an LSN.
 *
 * Both calls talk to the six members at once (a thread each, over
 * client.h's connections) and count answers with quorum.h: a put succeeds
 * when a write quorum holds the bundle complete, a get needs a read
 * quorum of answers, so that (write + read > 6) it sees the newest start
 * state any put completed.  Safe to call from any thread.
 */
#ifndef AURORA_START_STATE_CLIENT_H
#define AURORA_START_STATE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgwriter.h"			/* aurora_pg_target: the PG, its epochs and members */
#include "start_state_msg.h"

/* The largest piece a client sends or asks for by default (a node's default limit). */
#define AURORA_START_STATE_DEFAULT_PIECE	(AURORA_DEFAULT_MAX_BODY - AURORA_START_STATE_PIECE_HEADROOM)

typedef struct aurora_start_state_put_result
{
	int			complete;		/* members that acknowledged the bundle complete */
	bool		member_complete[AURORA_PG_COPIES];
	char		member_error[AURORA_PG_COPIES][200];	/* "" when it went well */
} aurora_start_state_put_result;

/*
 * Send the encoded bundle (consistent at consistent_lsn) to the six
 * members of t in pieces of at most piece_bytes (0: the default), with
 * t's epochs.  Returns 0 when at least write_quorum members acknowledged
 * it complete, else -1 with err naming each member's failure.  *res (may
 * be NULL) says which members hold it.
 */
int			aurora_start_state_put_pg(const aurora_pg_target *t, int write_quorum,
									  const uint8_t *bundle, size_t len, uint64_t consistent_lsn,
									  uint32_t piece_bytes, int timeout_ms,
									  aurora_start_state_put_result *res, char *err, size_t errlen);

/*
 * Ask the six members of t for their newest complete start state with
 * consistent_lsn <= max_lsn; at least read_quorum must answer.  The newest
 * found is fetched in pieces of at most piece_bytes (0: the default) from
 * one member that has it (another one if that fails or its copy does not
 * check) and verified (aurora_start_state_check).  Returns 1 with *bundle
 * (malloc'd, free() it), *len and *lsn; 0 when no answering member has one
 * at or below max_lsn; -1 with err (no read quorum answered, or no member
 * could deliver it).
 */
int			aurora_start_state_get_pg(const aurora_pg_target *t, int read_quorum, uint64_t max_lsn,
									  uint32_t piece_bytes, int timeout_ms, uint8_t **bundle,
									  size_t *len, uint64_t *lsn, char *err, size_t errlen);

/*
 * What one member holds: the LSN of its newest complete start state at or
 * below max_lsn (*found false when none).  Returns 0, or -1 with err when
 * it did not answer usably.  For aurora-ctl's listing.
 */
int			aurora_start_state_probe(const char *url, const aurora_pg_target *t, uint64_t max_lsn,
									 int timeout_ms, bool *found, uint64_t *lsn, uint64_t *total_len,
									 char *err, size_t errlen);

#endif
