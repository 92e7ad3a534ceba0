/*
 * client.c - request/reply client of the storage nodes: concurrent STATUS
 * fan-out, single raw requests and kept-open connections (client.h), over
 * the framed NNG streams of link.c.
 *
 * The fan-out asks every node from its own thread; all share one absolute
 * deadline, so total wall time is bounded by the caller's timeout no matter
 * how many nodes are down.  A refused connection is retried until the
 * deadline, so a node that is starting up still answers.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "client.h"
#include "link.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

/* One STATUS request of aurora_status_many, run by its own thread. */
typedef struct status_call
{
	const char *url;
	int			timeout_ms;
	aurora_status_result *out;
	pthread_t	thread;
	bool		started;
} status_call;


static uint64_t
random_request_id(void)
{
	uint64_t	id = ((uint64_t) nng_random() << 32) | nng_random();

	return id != 0 ? id : 1;
}

static void
describe_transport_error(char *dst, size_t cap, int rv, int timeout_ms)
{
	if (rv == NNG_ETIMEDOUT)
		snprintf(dst, cap, "no reply within %d ms", timeout_ms);
	else
		snprintf(dst, cap, "%s", nng_strerror(rv));
}

/* A dial that failed; refusals were retried for the whole timeout. */
static void
describe_dial_error(char *dst, size_t cap, int rv, int timeout_ms)
{
	if (rv == NNG_ECONNREFUSED || rv == NNG_ENOENT)
		snprintf(dst, cap, "no reply within %d ms (%s)", timeout_ms, nng_strerror(rv));
	else
		describe_transport_error(dst, cap, rv, timeout_ms);
}

/* Validate a reply and fill r->status or r->error. */
static void
interpret_status_reply(const uint8_t *msg, size_t len, uint64_t request_id,
					   aurora_status_result *r)
{
	aurora_header h;
	const uint8_t *body;
	int			rc;

	rc = aurora_decode(msg, len, AURORA_CLIENT_MAX_REPLY - AURORA_HEADER_SIZE, &h, &body);
	if (rc != 0)
	{
		snprintf(r->error, sizeof(r->error), "undecodable reply: %s", aurora_error_name(rc));
		return;
	}
	if (h.request_id != request_id)
	{
		snprintf(r->error, sizeof(r->error), "reply carries request_id %llu, expected %llu",
				 (unsigned long long) h.request_id, (unsigned long long) request_id);
		return;
	}
	if (h.type == AURORA_MSG_ERROR)
	{
		aurora_error_body e;

		if (aurora_error_body_decode(body, h.body_len, &e) != 0)
			snprintf(r->error, sizeof(r->error), "node sent a malformed ERROR reply");
		else
			snprintf(r->error, sizeof(r->error), "node error %s: %.120s",
					 aurora_error_name(e.code), e.message);
		return;
	}
	if (h.type != AURORA_MSG_STATUS_RESP)
	{
		snprintf(r->error, sizeof(r->error), "unexpected reply type %s (%u)",
				 aurora_msg_type_name(h.type), (unsigned) h.type);
		return;
	}
	if (aurora_status_body_decode(body, h.body_len, &r->status) != 0)
		snprintf(r->error, sizeof(r->error), "malformed STATUS_RESP body");
}

/*
 * One request/reply exchange on link, bounded by timeout_ms from now.  The
 * reply is copied into malloc'd memory, which outlives the link.
 */
static int
exchange(aurora_link *link, nng_time deadline, int timeout_ms, const uint8_t *req, size_t len,
		 uint8_t **reply, size_t *reply_len, char *err, size_t errlen)
{
	const uint8_t *msg;
	nng_time	now;
	int			rv;

	if ((rv = aurora_link_send(link, req, len, timeout_ms)) != 0)
	{
		describe_transport_error(err, errlen, rv, timeout_ms);
		return rv;
	}
	now = nng_clock();
	rv = aurora_link_recv(link, AURORA_CLIENT_MAX_REPLY,
						  deadline > now ? (int) (deadline - now) : 1, &msg, reply_len);
	if (rv != 0)
	{
		if (rv == NNG_EMSGSIZE)
			snprintf(err, errlen, "reply longer than %u bytes", (unsigned) AURORA_CLIENT_MAX_REPLY);
		else
			describe_transport_error(err, errlen, rv, timeout_ms);
		return rv;
	}
	/* malloc(0) may return NULL; an empty reply still needs a pointer. */
	*reply = malloc(*reply_len > 0 ? *reply_len : 1);
	if (*reply == NULL)
	{
		snprintf(err, errlen, "out of memory copying a %zu-byte reply", *reply_len);
		*reply_len = 0;
		return NNG_ENOMEM;
	}
	memcpy(*reply, msg, *reply_len);
	return 0;
}

/* Dial url and exchange one message within timeout_ms. */
static int
request_once(const char *url, int timeout_ms, const uint8_t *req, size_t len,
			 uint8_t **reply, size_t *reply_len, char *err, size_t errlen)
{
	nng_stream_dialer *d;
	aurora_link *link;
	nng_time	deadline = nng_clock() + (nng_time) timeout_ms;
	int			rv;

	if ((rv = aurora_dialer_open(url, &d, err, errlen)) != 0)
		return rv;
	if ((rv = aurora_link_dial(d, timeout_ms, true, &link)) != 0)
		describe_dial_error(err, errlen, rv, timeout_ms);
	else
	{
		rv = exchange(link, deadline, timeout_ms, req, len, reply, reply_len, err, errlen);
		aurora_link_free(link);
	}
	nng_stream_dialer_free(d);
	return rv;
}

static void *
status_call_main(void *arg)
{
	status_call *c = arg;
	aurora_status_result *r = c->out;
	aurora_header h;
	uint8_t		buf[AURORA_HEADER_SIZE];
	uint8_t    *reply = NULL;
	size_t		reply_len = 0;
	size_t		n;
	double		start_ms = aurora_monotonic_ms();
	int			rv;

	memset(&h, 0, sizeof(h));
	h.type = AURORA_MSG_STATUS_REQ;
	h.request_id = random_request_id();
	n = aurora_encode(&h, NULL, 0, buf, sizeof(buf));
	rv = request_once(c->url, c->timeout_ms, buf, n, &reply, &reply_len,
					  r->error, sizeof(r->error));
	if (rv != 0)
		return NULL;			/* r->error says why */
	r->reachable = true;
	r->rtt_ms = aurora_monotonic_ms() - start_ms;
	interpret_status_reply(reply, reply_len, h.request_id, r);
	if (r->error[0] != '\0')
		memset(&r->status, 0, sizeof(r->status));
	free(reply);
	return NULL;
}

void
aurora_status_many(const char *const *urls, int n, int timeout_ms,
				   aurora_status_result *out)
{
	status_call *calls;
	sigset_t	all,
				old;
	int			i;

	if (n <= 0)
		return;
	if (timeout_ms < 1)
		timeout_ms = 1;
	for (i = 0; i < n; i++)
		memset(&out[i], 0, sizeof(out[i]));
	calls = calloc((size_t) n, sizeof(*calls));
	if (calls == NULL)
	{
		for (i = 0; i < n; i++)
			snprintf(out[i].error, sizeof(out[i].error), "out of memory");
		return;
	}
	/* the threads are ours; no signal handler of the caller may run on them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < n; i++)
	{
		calls[i].url = urls[i];
		calls[i].timeout_ms = timeout_ms;
		calls[i].out = &out[i];
		calls[i].started = pthread_create(&calls[i].thread, NULL, status_call_main, &calls[i]) == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (i = 0; i < n; i++)
	{
		if (calls[i].started)
			pthread_join(calls[i].thread, NULL);
		else
			status_call_main(&calls[i]);	/* no thread to spare: ask it here */
	}
	free(calls);
}

/* Callers may pass no error buffer; point err at a scratch byte then. */
#define ERRBUF_OR_SCRATCH(err, errlen, scratch) \
	do { \
		if ((err) == NULL || (errlen) == 0) \
		{ \
			(err) = (scratch); \
			(errlen) = sizeof(scratch); \
		} \
		(err)[0] = '\0'; \
	} while (0)

int
aurora_request(const char *url, int timeout_ms, const uint8_t *req, size_t len,
			   uint8_t **reply, size_t *reply_len, char *err, size_t errlen)
{
	char		scratch[1];

	ERRBUF_OR_SCRATCH(err, errlen, scratch);
	*reply = NULL;
	*reply_len = 0;
	return request_once(url, timeout_ms < 1 ? 1 : timeout_ms, req, len, reply, reply_len,
						err, errlen);
}

struct aurora_conn
{
	nng_stream_dialer *dialer;
	nng_mtx    *mtx;			/* link and aborted, against aurora_conn_abort */
	aurora_link *link;			/* NULL until the first request, and after a failure */
	bool		aborted;
};

int
aurora_conn_open(const char *url, aurora_conn **out, char *err, size_t errlen)
{
	aurora_conn *c;
	int			rv;
	char		scratch[1];

	ERRBUF_OR_SCRATCH(err, errlen, scratch);
	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL || nng_mtx_alloc(&c->mtx) != 0)
	{
		free(c);
		snprintf(err, errlen, "out of memory");
		return NNG_ENOMEM;
	}
	if ((rv = aurora_dialer_open(url, &c->dialer, err, errlen)) != 0)
	{
		nng_mtx_free(c->mtx);
		free(c);
		return rv;
	}
	*out = c;
	return 0;
}

/* Drop c's link after a failure: the next request dials again. */
static void
drop_link(aurora_conn *c)
{
	aurora_link *link;

	nng_mtx_lock(c->mtx);
	link = c->link;
	c->link = NULL;
	nng_mtx_unlock(c->mtx);
	aurora_link_free(link);
}

int
aurora_conn_request(aurora_conn *c, int timeout_ms, const uint8_t *req, size_t len,
					uint8_t **reply, size_t *reply_len, char *err, size_t errlen)
{
	nng_time	deadline;
	aurora_link *link;
	bool		aborted;
	int			rv;
	char		scratch[1];

	ERRBUF_OR_SCRATCH(err, errlen, scratch);
	*reply = NULL;
	*reply_len = 0;
	if (timeout_ms < 1)
		timeout_ms = 1;
	deadline = nng_clock() + (nng_time) timeout_ms;

	nng_mtx_lock(c->mtx);
	link = c->link;
	aborted = c->aborted;
	nng_mtx_unlock(c->mtx);
	if (aborted)
	{
		describe_transport_error(err, errlen, NNG_ECLOSED, timeout_ms);
		return NNG_ECLOSED;
	}
	if (link == NULL)
	{
		/* first use, or the node went away: dial (it may be restarting) */
		if ((rv = aurora_link_dial(c->dialer, timeout_ms, true, &link)) != 0)
		{
			describe_dial_error(err, errlen, rv, timeout_ms);
			return rv;
		}
		nng_mtx_lock(c->mtx);
		c->link = link;
		if (c->aborted)
			aurora_link_shutdown(link);
		nng_mtx_unlock(c->mtx);
	}
	rv = exchange(link, deadline, timeout_ms, req, len, reply, reply_len, err, errlen);
	/*
	 * After a failure the connection may still deliver the late reply to
	 * this request, which the next one would take for its own: start over.
	 */
	if (rv != 0)
		drop_link(c);
	return rv;
}

void
aurora_conn_abort(aurora_conn *c)
{
	if (c == NULL)
		return;
	nng_mtx_lock(c->mtx);
	c->aborted = true;
	aurora_link_shutdown(c->link);
	nng_mtx_unlock(c->mtx);
	/* and a dial in progress */
	nng_stream_dialer_close(c->dialer);
}

void
aurora_conn_close(aurora_conn *c)
{
	if (c == NULL)
		return;
	aurora_link_free(c->link);
	nng_stream_dialer_free(c->dialer);
	nng_mtx_free(c->mtx);
	free(c);
}

aurora_call_result
aurora_conn_call(aurora_conn *conn, int timeout_ms, const aurora_header *h, const uint8_t *body,
				 size_t body_len, uint32_t expect_type, aurora_header *rh, uint8_t **reply,
				 const uint8_t **rbody, uint32_t *err_code, char *err, size_t errlen)
{
	uint8_t    *req = malloc(AURORA_HEADER_SIZE + body_len);
	size_t		len,
				reply_len;
	aurora_error_body e;
	char		scratch[1];

	ERRBUF_OR_SCRATCH(err, errlen, scratch);
	*reply = NULL;
	if (err_code != NULL)
		*err_code = 0;
	if (req == NULL)
	{
		aurora_seterr(err, errlen, "out of memory");
		return AURORA_CALL_NO_REPLY;
	}
	len = aurora_encode(h, body, body_len, req, AURORA_HEADER_SIZE + body_len);
	if (aurora_conn_request(conn, timeout_ms, req, len, reply, &reply_len, err, errlen) != 0)
	{
		free(req);
		return AURORA_CALL_NO_REPLY;
	}
	free(req);
	if (aurora_decode(*reply, reply_len, AURORA_CLIENT_MAX_REPLY, rh, rbody) != 0)
		aurora_seterr(err, errlen, "undecodable reply");
	else if (rh->type == AURORA_MSG_ERROR)
	{
		if (aurora_error_body_decode(*rbody, rh->body_len, &e) == 0)
		{
			aurora_seterr(err, errlen, "%s: %s", aurora_error_name(e.code), e.message);
			if (err_code != NULL)
				*err_code = e.code;
		}
		else
			aurora_seterr(err, errlen, "malformed ERROR reply");
	}
	else if (rh->type != expect_type)
		aurora_seterr(err, errlen, "expected %s, got %s", aurora_msg_type_name(expect_type),
					  aurora_msg_type_name(rh->type));
	else
		return AURORA_CALL_OK;
	free(*reply);
	*reply = NULL;
	return AURORA_CALL_BAD_REPLY;
}

/* ---- volume epochs ---- */

/* Copy a decoded history out of its message: *out malloc'd, NULL when empty. */
static int
copy_history(const aurora_trunc_list *l, aurora_trunc_entry **out, int *n)
{
	*out = NULL;
	*n = 0;
	if (l->n == 0)
		return 0;
	*out = malloc((size_t) l->n * sizeof(**out));
	if (*out == NULL)
		return -1;
	aurora_trunc_list_copy(l, *out);
	*n = l->n;
	return 0;
}

/* aurora_conn_call, also reporting the reply header's volume epoch (of an ERROR too). */
static aurora_call_result
epoch_call(aurora_conn *conn, int timeout_ms, const aurora_header *h, const uint8_t *body,
		   size_t body_len, uint32_t expect_type, aurora_header *rh, uint8_t **reply,
		   const uint8_t **rbody, uint64_t *seg_volume_epoch, uint32_t *err_code, char *err,
		   size_t errlen)
{
	uint32_t	code = 0;
	aurora_call_result r = aurora_conn_call(conn, timeout_ms, h, body, body_len, expect_type,
											rh, reply, rbody, &code, err, errlen);

	if (err_code != NULL)
		*err_code = code;
	if (seg_volume_epoch != NULL)
		*seg_volume_epoch = r == AURORA_CALL_OK || code != 0 ? rh->volume_epoch : 0;
	return r;
}

void
aurora_fence_result_free(aurora_fence_result *r)
{
	free(r->history);
	r->history = NULL;
	r->n_history = 0;
}

aurora_call_result
aurora_fence_segment(aurora_conn *conn, int timeout_ms, uint64_t volume_id, uint32_t pg_id,
					 uint64_t volume_epoch, uint64_t membership_epoch, aurora_fence_result *out,
					 uint64_t *seg_volume_epoch, uint32_t *err_code, char *err, size_t errlen)
{
	aurora_header h,
				rh;
	uint8_t    *reply;
	const uint8_t *rbody;
	aurora_fence_ack ack;
	aurora_call_result r;

	memset(out, 0, sizeof(*out));
	memset(&h, 0, sizeof(h));
	h.type = AURORA_MSG_FENCE_REQ;
	h.volume_id = volume_id;
	h.pg_id = pg_id;
	h.volume_epoch = volume_epoch;
	h.membership_epoch = membership_epoch;
	h.request_id = 1;
	r = epoch_call(conn, timeout_ms, &h, NULL, 0, AURORA_MSG_FENCE_ACK, &rh, &reply, &rbody,
				   seg_volume_epoch, err_code, err, errlen);
	if (r != AURORA_CALL_OK)
		return r;
	if (aurora_fence_ack_decode(rbody, rh.body_len, &ack) != 0 ||
		copy_history(&ack.history, &out->history, &out->n_history) != 0)
	{
		aurora_seterr(err, errlen, "malformed FENCE_ACK (or out of memory)");
		free(reply);
		return AURORA_CALL_BAD_REPLY;
	}
	out->scl = ack.scl;
	out->highest_lsn = ack.highest_lsn;
	out->truncated_epoch = ack.truncated_epoch;
	free(reply);
	return AURORA_CALL_OK;
}

aurora_call_result
aurora_truncate_segment(aurora_conn *conn, int timeout_ms, uint64_t volume_id, uint32_t pg_id,
						uint64_t membership_epoch, const aurora_trunc_entry *history, int n,
						aurora_truncate_ack *out, uint64_t *seg_volume_epoch, uint32_t *err_code,
						char *err, size_t errlen)
{
	aurora_header h,
				rh;
	uint8_t    *reply;
	const uint8_t *rbody;
	uint8_t    *raw,
			   *body;
	aurora_trunc_list l;
	size_t		body_len;
	aurora_call_result r;

	memset(out, 0, sizeof(*out));
	if (err_code != NULL)
		*err_code = 0;
	if (n < 1 || n > AURORA_TRUNC_HISTORY_MAX)
	{
		aurora_seterr(err, errlen, "a truncation needs 1..%d history entries", AURORA_TRUNC_HISTORY_MAX);
		return AURORA_CALL_NO_REPLY;
	}
	raw = malloc((size_t) n * AURORA_TRUNC_ENTRY_SIZE);
	body = malloc(AURORA_TRUNC_LIST_MAX_BYTES);
	if (raw == NULL || body == NULL)
	{
		free(raw);
		free(body);
		aurora_seterr(err, errlen, "out of memory");
		return AURORA_CALL_NO_REPLY;
	}
	aurora_trunc_list_fill(&l, history, n, raw);
	body_len = aurora_truncate_req_encode(&l, body, AURORA_TRUNC_LIST_MAX_BYTES);
	memset(&h, 0, sizeof(h));
	h.type = AURORA_MSG_TRUNCATE_REQ;
	h.volume_id = volume_id;
	h.pg_id = pg_id;
	h.volume_epoch = history[n - 1].epoch;
	h.membership_epoch = membership_epoch;
	h.request_id = 1;
	r = epoch_call(conn, timeout_ms, &h, body, body_len, AURORA_MSG_TRUNCATE_ACK, &rh, &reply,
				   &rbody, seg_volume_epoch, err_code, err, errlen);
	free(raw);
	free(body);
	if (r != AURORA_CALL_OK)
		return r;
	if (aurora_truncate_ack_decode(rbody, rh.body_len, out) != 0)
	{
		aurora_seterr(err, errlen, "malformed TRUNCATE_ACK");
		r = AURORA_CALL_BAD_REPLY;
	}
	free(reply);
	return r;
}

void
aurora_segment_info_result_free(aurora_segment_info_result *r)
{
	free(r->history);
	r->history = NULL;
	r->n_history = 0;
}

aurora_call_result
aurora_get_segment_info(aurora_conn *conn, int timeout_ms, uint64_t volume_id, uint32_t pg_id,
						aurora_segment_info_result *out, uint32_t *err_code, char *err,
						size_t errlen)
{
	aurora_header h,
				rh;
	uint8_t    *reply;
	const uint8_t *rbody;
	aurora_call_result r;

	memset(out, 0, sizeof(*out));
	memset(&h, 0, sizeof(h));
	h.type = AURORA_MSG_SEGMENT_INFO_REQ;
	h.volume_id = volume_id;
	h.pg_id = pg_id;
	h.request_id = 1;
	r = aurora_conn_call(conn, timeout_ms, &h, NULL, 0, AURORA_MSG_SEGMENT_INFO, &rh, &reply,
						 &rbody, err_code, err, errlen);
	if (r != AURORA_CALL_OK)
		return r;
	if (aurora_segment_info_decode(rbody, rh.body_len, &out->info) != 0 ||
		copy_history(&out->info.history, &out->history, &out->n_history) != 0)
	{
		aurora_seterr(err, errlen, "malformed SEGMENT_INFO (or out of memory)");
		free(reply);
		memset(out, 0, sizeof(*out));
		return AURORA_CALL_BAD_REPLY;
	}
	out->info.history.n = 0;
	out->info.history.raw = NULL;
	out->volume_epoch = rh.volume_epoch;
	out->membership_epoch = rh.membership_epoch;
	free(reply);
	return AURORA_CALL_OK;
}
