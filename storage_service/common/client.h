/*
 * client.h - request/reply client for aurora storage nodes over NNG
 * streams (link.h, PROTOCOL.md 1).
 *
 * Used by aurora-ctl, by the unit tests, by storage nodes (gossip) and by the
 * PostgreSQL extension (page reads, the storage_nodes view).  Every call
 * opens its own connections and keeps all state on the stack or in memory
 * it frees before returning, so the functions are safe to call from any
 * number of threads at once; the only shared state is NNG's own.
 */
#ifndef AURORA_CLIENT_H
#define AURORA_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "epochmsg.h"
#include "logmsg.h"
#include "wire.h"

/* Largest reply the client accepts. */
#define AURORA_CLIENT_MAX_REPLY	(AURORA_DEFAULT_MAX_BODY + AURORA_HEADER_SIZE + 4096)

typedef struct aurora_status_result
{
	/*
	 * false only when no reply arrived (bad URL, connection failure,
	 * timeout).  A node that replies with an ERROR or an undecodable message
	 * is reachable, but error[] is set and status is all zero.
	 */
	bool		reachable;
	char		error[160];		/* empty when status is valid */
	double		rtt_ms;			/* send to reply; 0 if unreachable */
	aurora_status_body status;
} aurora_status_result;

/*
 * Send STATUS_REQ to all n URLs concurrently and wait for every reply or for
 * the common deadline timeout_ms (values < 1 mean 1 ms) after the call began,
 * whichever comes first; a down node therefore cannot delay the others and
 * the whole call returns within about timeout_ms.  out[i] describes urls[i].
 */
void		aurora_status_many(const char *const *urls, int n, int timeout_ms,
							   aurora_status_result *out);

/*
 * Send one raw, already-encoded request (which need not be valid: the tests
 * use this to send malformed messages) and wait up to timeout_ms for the raw
 * reply.  Returns 0 on success with *reply a malloc'd copy of the reply
 * (release it with free()) and *reply_len its length.  Otherwise returns a
 * nonzero NNG error number (e.g. NNG_ETIMEDOUT), sets *reply to NULL and
 * describes the failure in err.  The reply is not validated.
 */
int			aurora_request(const char *url, int timeout_ms,
						   const uint8_t *req, size_t len,
						   uint8_t **reply, size_t *reply_len,
						   char *err, size_t errlen);

/*
 * A connection kept open to one node for repeated requests (gossip between
 * storage nodes, a backend's page reads).  It dials on first use and again
 * after any failed request (the node restarted, or a reply came too late),
 * so a connection never has to be reopened.  A connection serves one
 * request at a time: use it from one thread.
 */
typedef struct aurora_conn aurora_conn;

/* Fails only on a malformed URL or out of memory (never on a down node). */
int			aurora_conn_open(const char *url, aurora_conn **out, char *err, size_t errlen);

/* aurora_request's contract, on the open connection. */
int			aurora_conn_request(aurora_conn *c, int timeout_ms, const uint8_t *req, size_t len,
								uint8_t **reply, size_t *reply_len, char *err, size_t errlen);

/*
 * Make the request in progress on c (in another thread) fail at once, and
 * every later one too; c must still be closed with aurora_conn_close.  For
 * shutting down without waiting out a timeout.
 */
void		aurora_conn_abort(aurora_conn *c);
void		aurora_conn_close(aurora_conn *c);

/* How a request on a connection ended (aurora_conn_call). */
typedef enum aurora_call_result
{
	AURORA_CALL_OK = 0,
	AURORA_CALL_NO_REPLY,		/* no answer: node down, timeout, bad URL */
	AURORA_CALL_BAD_REPLY		/* it answered, but with ERROR or something unusable */
} aurora_call_result;

/*
 * Send header h and body on conn (magic, version, body_len and CRC are filled
 * in), wait up to timeout_ms and check that the reply is a well-formed
 * expect_type message.  On AURORA_CALL_OK *reply is malloc'd (free() it) and
 * *rh, *rbody point into it; otherwise *reply is NULL, err says what went
 * wrong and *err_code (when not NULL) is the ERROR reply's code, or 0.
 */
aurora_call_result aurora_conn_call(aurora_conn *conn, int timeout_ms, const aurora_header *h,
									const uint8_t *body, size_t body_len, uint32_t expect_type,
									aurora_header *rh, uint8_t **reply, const uint8_t **rbody,
									uint32_t *err_code, char *err, size_t errlen);

/*
 * ---- Volume epochs (PROTOCOL.md 5.10): blocking calls to one segment on
 * conn.  Each returns aurora_conn_call's result; on AURORA_CALL_OK *out is
 * filled, otherwise err says why and *err_code (when not NULL) is the
 * ERROR's code (STALE_EPOCH, EPOCH_NOT_OPEN, CONFLICT, ...) or 0.  The
 * segment's epochs after the call (from the reply header, also of an
 * ERROR) go to *seg_volume_epoch / *seg_membership_epoch when not NULL.
 */

/* A fence's answer; history is malloc'd (NULL when n_history is 0): aurora_fence_result_free. */
typedef struct aurora_fence_result
{
	uint64_t	scl;
	uint64_t	highest_lsn;
	uint64_t	truncated_epoch;
	int			n_history;
	aurora_trunc_entry *history;
} aurora_fence_result;

void		aurora_fence_result_free(aurora_fence_result *r);

/* FENCE_REQ at volume_epoch: the segment refuses every lower epoch from then on. */
aurora_call_result aurora_fence_segment(aurora_conn *conn, int timeout_ms, uint64_t volume_id,
										uint32_t pg_id, uint64_t volume_epoch,
										uint64_t membership_epoch, aurora_fence_result *out,
										uint64_t *seg_volume_epoch, uint32_t *err_code,
										char *err, size_t errlen);

/*
 * TRUNCATE_REQ with the full history history[0..n) (n >= 1); its last
 * entry (E, V) is the epoch opened (the header's volume epoch) and VDL.
 */
aurora_call_result aurora_truncate_segment(aurora_conn *conn, int timeout_ms, uint64_t volume_id,
										   uint32_t pg_id, uint64_t membership_epoch,
										   const aurora_trunc_entry *history, int n,
										   aurora_truncate_ack *out, uint64_t *seg_volume_epoch,
										   uint32_t *err_code, char *err, size_t errlen);

/*
 * SEGMENT_INFO_REQ (unfenced): the segment's SEGMENT_INFO with its
 * truncated epoch and history.  out->info.history points into nothing
 * (n 0, raw NULL): the history is copied to out->history (malloc'd,
 * aurora_segment_info_result_free).
 */
typedef struct aurora_segment_info_result
{
	aurora_segment_info info;
	uint64_t	volume_epoch;	/* the segment's, from the reply header */
	uint64_t	membership_epoch;
	int			n_history;
	aurora_trunc_entry *history;
} aurora_segment_info_result;

void		aurora_segment_info_result_free(aurora_segment_info_result *r);
aurora_call_result aurora_get_segment_info(aurora_conn *conn, int timeout_ms, uint64_t volume_id,
										   uint32_t pg_id, aurora_segment_info_result *out,
										   uint32_t *err_code, char *err, size_t errlen);

#endif
