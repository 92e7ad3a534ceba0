/*
 * pgwriter.h - the writer side of one protection group: sends each batch of
 * log records to all six segments at once and tracks, from their
 * asynchronous acknowledgements, every segment's SCL and the PG's PGCL (the
 * SCL a write quorum holds).  Shared by the compute's WAL shipper and the
 * storage tools and tests; no PostgreSQL headers.
 *
 * Each member has a connection of its own, which a thread of the writer
 * redials after a failure, so a node that comes back is written to again
 * without anything from the caller.  A slow or dead segment never delays
 * the others: every request has its own timeout, and a segment with too
 * many requests in flight is skipped (the storage's gossip fills what it
 * missed).
 *
 * A writer of a volume opened at epoch E (fence, VDL, TRUNCATE on a write
 * quorum: PROTOCOL.md 5.10) is given the truncation history the opener
 * established.  A segment that missed that truncation (down, or cut off,
 * during the open) answers every write with EPOCH_NOT_OPEN; the writer then
 * sends it that history in a TRUNCATE_REQ itself, in the background, so the
 * segment is open again and takes later batches (what it missed meanwhile it
 * gets from its peers by gossip, like any lagging segment).
 */
#ifndef AURORA_PGWRITER_H
#define AURORA_PGWRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "epochmsg.h"
#include "logmsg.h"

/* Requests one segment may have outstanding before it is skipped. */
#define AURORA_PGWRITER_MAX_IN_FLIGHT	64
/* After a TRUNCATE to reopen a segment failed, the next one waits this long. */
#define AURORA_PGWRITER_REOPEN_RETRY_MS	1000

typedef struct aurora_pgwriter aurora_pgwriter;

typedef struct aurora_pg_target
{
	uint64_t	volume_id;
	uint32_t	pg_id;
	uint64_t	volume_epoch;
	uint64_t	membership_epoch;
	aurora_member members[AURORA_PG_COPIES];
	uint64_t	base_lsn;		/* for CREATE_SEGMENT */
	uint32_t	n_pgs;			/* volume geometry, for CREATE_SEGMENT (0, 0: none) */
	uint32_t	blocks_per_segment;
	/*
	 * The volume's truncation history as the opener of volume_epoch left it
	 * (its last entry's epoch is volume_epoch): what a segment answering
	 * EPOCH_NOT_OPEN is sent in a TRUNCATE_REQ to reopen it.  Copied by
	 * aurora_pgwriter_open; n_history 0: no segment is ever reopened.
	 */
	const aurora_trunc_entry *history;
	int			n_history;
} aurora_pg_target;

typedef struct aurora_segment_view
{
	uint64_t	scl;			/* highest SCL acknowledged */
	uint64_t	acks;
	uint64_t	errors;
	uint64_t	skipped;		/* batches not sent: too much in flight, or masked */
	uint64_t	batches_sent;	/* LOG_APPEND messages sent to this segment */
	uint64_t	records_sent;	/* records in them */
	uint64_t	bytes_sent;		/* bytes of every message sent to it, headers included */
	int			in_flight;
	double		last_ack_ms;	/* monotonic ms of the last ack, 0 = never */
	uint32_t	last_error_code;	/* AURORA_ERR_* or 0; transport failures use INTERNAL */
	char		last_error[160];
	bool		fenced;			/* a segment reported a newer epoch: we are stale */
	uint64_t	reopen_attempts;	/* TRUNCATE_REQs sent to reopen it */
	uint64_t	reopened;		/* TRUNCATE_ACKs it answered them with */
} aurora_segment_view;

typedef struct aurora_pgwriter_view
{
	aurora_segment_view seg[AURORA_PG_COPIES];
	uint64_t	pgcl;
	uint64_t	seeded_lsn;		/* highest seed LSN a segment reported (SEGMENT_INFO) */
	uint64_t	batches_sent;
	uint64_t	bytes_sent;		/* per segment message bytes, summed */
	uint64_t	latency_samples;	/* quorum latencies recorded (aurora_pgwriter_quorum_latency) */
	uint64_t	sent_end;		/* highest end_lsn sent */
} aurora_pgwriter_view;

/*
 * Start connecting to the six members and wait up to timeout_ms for them
 * to connect (a member that does not is connected to later).  Returns 0,
 * or -1 with err set (a malformed URL, no memory or threads, a history that
 * breaks the rules of aurora_trunc_history_check or does not end at
 * volume_epoch).
 *
 * With a history (n_history > 0), a member that answers any request with
 * EPOCH_NOT_OPEN is sent TRUNCATE_REQ with it by the member's own thread,
 * never the caller's: at most one in flight per member, and after one that
 * failed (no reply in timeout_ms, lost connection, an error) the next no
 * sooner than AURORA_PGWRITER_REOPEN_RETRY_MS later, as long as the member
 * still needs it.  TRUNCATE_ACK: the member is open again (view: reopened).
 * CONFLICT (it holds another cut for this epoch) or STALE_EPOCH (fenced) is
 * final: noted as its error and never retried by this writer.
 */
int			aurora_pgwriter_open(const aurora_pg_target *t, int write_quorum, int timeout_ms,
								 aurora_pgwriter **out, char *err, size_t errlen);
void		aurora_pgwriter_close(aurora_pgwriter *w);

/*
 * CREATE_SEGMENT on all six members (replica index i on members[i]); waits
 * for the replies.  Returns how many succeeded; per-member outcome in view.
 * A member that answers EPOCH_NOT_OPEN (its segment exists but missed the
 * truncation) is reopened as described at aurora_pgwriter_open, waited for
 * within the same bound (timeout_ms + 1 s), and counts as created once its
 * TRUNCATE_ACK came.
 */
int			aurora_pgwriter_create_segments(aurora_pgwriter *w, char *err, size_t errlen);

/*
 * Send one batch to the six segments and return at once.  Records must be
 * in LSN order with correct backlinks.  Returns 0, or -1 with err if the
 * batch could not be encoded (too large) or no segment could be sent to.
 */
int			aurora_pgwriter_append(aurora_pgwriter *w, const aurora_log_record *recs, int n,
								   char *err, size_t errlen);

/*
 * The same, sent only to the members whose bit (1 << index) is set in
 * member_mask; the others count the batch as skipped.  The rest of the PG
 * sees a gap that the storage's gossip fills: this is how tests lose
 * messages on purpose.
 */
#define AURORA_PGWRITER_ALL_MEMBERS	((1u << AURORA_PG_COPIES) - 1)
int			aurora_pgwriter_append_to(aurora_pgwriter *w, const aurora_log_record *recs, int n,
									  unsigned member_mask, char *err, size_t errlen);

/*
 * p50 and p99 in ms of the last 4096 quorum latencies (batch sent -> PGCL
 * covers it) that are at most max_age_ms old (0: any age); returns how many
 * there are (0: p50 and p99 untouched).  The age bound keeps a PG that is
 * rarely written from reporting what its batches took long ago (a bulk
 * load).  It sorts, so callers that poll often should not call it on every
 * poll.
 */
uint64_t	aurora_pgwriter_quorum_latency(aurora_pgwriter *w, double max_age_ms,
										   double *p50_ms, double *p99_ms);

/*
 * Copy up to cap of segment seg's latest acknowledgement latencies (ms from
 * sending a LOG_APPEND to its LOG_ACK, the last 1024 at most, those at most
 * max_age_ms old (0: any age), in no order) into out; returns how many.
 * Per-node latency for the compute's views.
 */
int			aurora_pgwriter_ack_latencies(aurora_pgwriter *w, int seg, double max_age_ms,
										  double *out, int cap);

/* Wait until PGCL >= lsn; true if reached within timeout_ms. */
bool		aurora_pgwriter_wait_pgcl(aurora_pgwriter *w, uint64_t lsn, int timeout_ms);

/* Wait until no request is in flight (or timeout); true if drained. */
bool		aurora_pgwriter_drain(aurora_pgwriter *w, int timeout_ms);

/*
 * Call fn(arg, pgcl) whenever PGCL advances, with the new PGCL.  It runs on
 * the writer's thread that read the acknowledgement, with the writer's
 * mutex held, so it must be short and never call back into the writer (the PGCL it needs is the argument).  The
 * compute's shipper moves VDL and releases the commits it covers there,
 * without a hop through its main loop.
 */
void		aurora_pgwriter_on_pgcl(aurora_pgwriter *w, void (*fn) (void *arg, uint64_t pgcl),
									void *arg);

/*
 * Ask every idle segment that has not acknowledged everything sent (all:
 * every idle segment) for its SCL (SEGMENT_INFO_REQ), without waiting.  A
 * segment that missed batches while it was down catches up by gossip, not
 * from the writer; this is how the writer learns that it did, so PGCL can
 * move without a new append.  With all, it is also a heartbeat: the views
 * of a PG nobody writes to still show which segments answer.  Returns the
 * number of segments asked.
 */
int			aurora_pgwriter_probe(aurora_pgwriter *w, bool all);

/* The current PGCL. */
uint64_t	aurora_pgwriter_pgcl(aurora_pgwriter *w);

void		aurora_pgwriter_view_get(aurora_pgwriter *w, aurora_pgwriter_view *out);

#endif							/* AURORA_PGWRITER_H */
