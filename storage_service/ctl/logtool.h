/*
 * logtool.h - aurora-ctl's segment log commands: stream synthetic records to
 * the six segments of a PG with quorum tracking (the writer path the compute
 * uses, pgwriter.h), list a node's segments, and read a PG's log back from a
 * node and verify it.  The cluster tests and benchmarks drive storage with
 * these.  The request helpers (ctl_request, ctl_fetch_segments) are shared
 * with the placement check (placement.h).
 */
#ifndef AURORA_CTL_LOGTOOL_H
#define AURORA_CTL_LOGTOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "cluster.h"
#include "logmsg.h"

/* Most batches a stream keeps in flight (below the writer's per-segment cap). */
#define CTL_STREAM_WINDOW_MAX	32

/*
 * The volume epoch of segment (volume_id, pg) on conn's node, from its
 * SEGMENT_INFO (1 if it does not answer): tools that only read ask at it.
 */
uint64_t	ctl_segment_epoch(aurora_conn *conn, uint64_t volume_id, uint32_t pg, int timeout_ms);

typedef struct ctl_stream_opts
{
	uint64_t	volume_id;
	uint32_t	pg_id;
	uint64_t	epoch;			/* volume epoch; membership epoch is 1 */
	uint64_t	after_lsn;		/* start of the record before the first (0 = new PG) */
	int			records;
	int			batch;
	int			payload;
	int			wait_ms;		/* per batch, for PGCL to cover it */
	int			write_quorum;
	int			window;			/* batches in flight before waiting for quorum, 1.. */
	/* lose messages on purpose: withhold every drop_every-th batch from these nodes */
	char		drop_to[256];	/* comma-separated node ids; "" = none */
	int			drop_every;		/* 0 or 1: every batch */
} ctl_stream_opts;

/* Synthetic record k after after_lsn: its LSNs and its payload bytes. */
void		ctl_synthetic_lsns(uint64_t after_lsn, int payload, int k,
							   uint64_t *start, uint64_t *end, uint64_t *prev);
uint8_t		ctl_synthetic_byte(uint64_t start_lsn, uint32_t i);

int			ctl_stream(const ctl_cluster *c, const ctl_stream_opts *o, int timeout_ms);
int			ctl_segments(const char *const *urls, int n, int timeout_ms);

/* How a request to a node ended (ctl_request): client.h's result. */
typedef aurora_call_result ctl_req_result;
#define CTL_REQ_OK			AURORA_CALL_OK
#define CTL_REQ_NO_REPLY	AURORA_CALL_NO_REPLY
#define CTL_REQ_BAD_REPLY	AURORA_CALL_BAD_REPLY

/* aurora_conn_call without the error code. */
ctl_req_result ctl_request(aurora_conn *conn, int timeout_ms, const aurora_header *h,
						   const uint8_t *body, size_t body_len, uint32_t expect_type,
						   aurora_header *rh, uint8_t **reply, const uint8_t **rbody,
						   char *err, size_t errlen);

/* SEGMENTS_REQ: every segment the node holds; *states malloc'd (free() it). */
ctl_req_result ctl_fetch_segments(aurora_conn *conn, int timeout_ms,
								  aurora_segment_state **states, int *n,
								  char *err, size_t errlen);
/*
 * Read the durable records of one PG from url with READ_LOG, in pieces of
 * at most 4 MiB of payload: those with from_lsn <= start_lsn < to_lsn, in
 * LSN order, each handed to emit (which returns 0 to go on, 1 to stop, -1
 * for an error it has reported).  *scl is the segment's SCL of the last
 * reply.  Returns 0, or 1 after saying on stderr what went wrong (prefix
 * names the command).
 */
int			ctl_read_log_each(const char *url, uint64_t volume_id, uint32_t pg_id,
							  uint64_t epoch, uint64_t from_lsn, uint64_t to_lsn,
							  int timeout_ms, const char *prefix,
							  aurora_record_fn emit, void *arg,
							  uint64_t *scl);

/*
 * wal: the payloads are PostgreSQL WAL records (a compute's shipper wrote
 * them), not synthetic ones: check each one's own length field and print
 * "commit <xid>" for every transaction commit record.
 */
int			ctl_read_log(const char *url, uint64_t volume_id, uint32_t pg_id,
						 uint64_t from_lsn, uint64_t to_lsn, uint64_t epoch, bool wal,
						 int timeout_ms);

#endif
