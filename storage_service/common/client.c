/*
 * client.c - NNG req0 client: concurrent STATUS fan-out and single raw
 * requests (see client.h).
 *
 * The fan-out drives one socket and one aio per node through a two-stage
 * callback (send, then receive); all stages share one absolute deadline, so
 * total wall time is bounded by the caller's timeout no matter how many nodes
 * are down.  Dials are non-blocking: NNG keeps retrying a refused connection
 * in the background until the deadline cancels the request.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "client.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

enum call_stage
{
	STAGE_SEND,
	STAGE_RECV
};

/* One in-flight STATUS request of aurora_status_many. */
typedef struct status_call
{
	struct status_fanout *fan;
	nng_socket	sock;
	bool		sock_open;
	nng_aio    *aio;
	enum call_stage stage;
	uint64_t	request_id;
	double		start_ms;		/* monotonic, for the RTT */
	double		rtt_ms;
	int			result;			/* NNG error, 0 when reply is set */
	nng_msg    *reply;
} status_call;

typedef struct status_fanout
{
	nng_mtx    *mtx;
	nng_cv     *cv;
	int			pending;		/* calls whose callback has not finished */
	nng_time	deadline;		/* nng_clock() ms */
} status_fanout;


/* Milliseconds left before deadline, at least 1 so NNG never waits forever. */
static nng_duration
remaining_ms(nng_time deadline)
{
	nng_time	now = nng_clock();

	if (now >= deadline)
		return 1;
	return (nng_duration) (deadline - now);
}

static uint64_t
random_request_id(void)
{
	uint64_t	id = ((uint64_t) nng_random() << 32) | nng_random();

	return id != 0 ? id : 1;
}

static void
call_finish(status_call *c, int rv)
{
	status_fanout *fan = c->fan;

	c->result = rv;
	nng_mtx_lock(fan->mtx);
	fan->pending--;
	nng_cv_wake(fan->cv);
	nng_mtx_unlock(fan->mtx);
}

static void
call_cb(void *arg)
{
	status_call *c = arg;
	int			rv = nng_aio_result(c->aio);

	if (c->stage == STAGE_SEND)
	{
		if (rv != 0)
		{
			/* A failed send leaves the message with us. */
			nng_msg_free(nng_aio_get_msg(c->aio));
			nng_aio_set_msg(c->aio, NULL);
			call_finish(c, rv);
			return;
		}
		c->stage = STAGE_RECV;
		nng_aio_set_timeout(c->aio, remaining_ms(c->fan->deadline));
		nng_recv_aio(c->sock, c->aio);
		return;
	}

	if (rv == 0)
	{
		c->rtt_ms = aurora_monotonic_ms() - c->start_ms;
		c->reply = nng_aio_get_msg(c->aio);
		nng_aio_set_msg(c->aio, NULL);
	}
	call_finish(c, rv);
}

static void
describe_transport_error(char *dst, size_t cap, int rv, int timeout_ms)
{
	if (rv == NNG_ETIMEDOUT)
		snprintf(dst, cap, "no reply within %d ms", timeout_ms);
	else
		snprintf(dst, cap, "%s", nng_strerror(rv));
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

/* Open, dial and launch one call; on failure records the error in *r. */
static bool
call_start(status_call *c, const char *url, aurora_status_result *r)
{
	aurora_header h;
	uint8_t		buf[AURORA_HEADER_SIZE];
	size_t		n;
	nng_msg    *msg = NULL;
	int			rv;

	if ((rv = nng_req0_open(&c->sock)) != 0)
	{
		snprintf(r->error, sizeof(r->error), "cannot open socket: %s", nng_strerror(rv));
		return false;
	}
	c->sock_open = true;
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, AURORA_CLIENT_MAX_REPLY);
	if ((rv = nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0)
	{
		snprintf(r->error, sizeof(r->error), "cannot dial %s: %s", url, nng_strerror(rv));
		return false;
	}
	if ((rv = nng_aio_alloc(&c->aio, call_cb, c)) != 0)
	{
		snprintf(r->error, sizeof(r->error), "cannot allocate aio: %s", nng_strerror(rv));
		return false;
	}

	memset(&h, 0, sizeof(h));
	h.type = AURORA_MSG_STATUS_REQ;
	h.request_id = c->request_id;
	n = aurora_encode(&h, NULL, 0, buf, sizeof(buf));
	if ((rv = nng_msg_alloc(&msg, 0)) != 0 || (rv = nng_msg_append(msg, buf, n)) != 0)
	{
		if (msg != NULL)
			nng_msg_free(msg);
		snprintf(r->error, sizeof(r->error), "cannot allocate message: %s", nng_strerror(rv));
		return false;
	}

	nng_mtx_lock(c->fan->mtx);
	c->fan->pending++;
	nng_mtx_unlock(c->fan->mtx);

	c->stage = STAGE_SEND;
	c->start_ms = aurora_monotonic_ms();
	nng_aio_set_msg(c->aio, msg);
	nng_aio_set_timeout(c->aio, remaining_ms(c->fan->deadline));
	nng_send_aio(c->sock, c->aio);
	return true;
}

void
aurora_status_many(const char *const *urls, int n, int timeout_ms,
				   aurora_status_result *out)
{
	status_fanout fan;
	status_call *calls;
	bool	   *started;
	int			i;
	int			rv;

	if (n <= 0)
		return;
	if (timeout_ms < 1)
		timeout_ms = 1;
	for (i = 0; i < n; i++)
		memset(&out[i], 0, sizeof(out[i]));

	memset(&fan, 0, sizeof(fan));
	calls = calloc((size_t) n, sizeof(*calls));
	started = calloc((size_t) n, sizeof(*started));
	if (calls == NULL || started == NULL ||
		(rv = nng_mtx_alloc(&fan.mtx)) != 0 ||
		(rv = nng_cv_alloc(&fan.cv, fan.mtx)) != 0)
	{
		for (i = 0; i < n; i++)
			snprintf(out[i].error, sizeof(out[i].error), "out of memory");
		if (fan.mtx != NULL)
			nng_mtx_free(fan.mtx);
		free(calls);
		free(started);
		return;
	}
	fan.deadline = nng_clock() + (nng_time) timeout_ms;

	for (i = 0; i < n; i++)
	{
		calls[i].fan = &fan;
		calls[i].request_id = random_request_id();
		started[i] = call_start(&calls[i], urls[i], &out[i]);
	}

	/* NNG guarantees every aio completes (at worst by timing out). */
	nng_mtx_lock(fan.mtx);
	while (fan.pending > 0)
		nng_cv_wait(fan.cv);
	nng_mtx_unlock(fan.mtx);

	for (i = 0; i < n; i++)
	{
		status_call *c = &calls[i];

		if (started[i])
		{
			if (c->result != 0)
				describe_transport_error(out[i].error, sizeof(out[i].error),
										 c->result, timeout_ms);
			else
			{
				out[i].reachable = true;
				out[i].rtt_ms = c->rtt_ms;
				interpret_status_reply(nng_msg_body(c->reply), nng_msg_len(c->reply),
									   c->request_id, &out[i]);
				if (out[i].error[0] != '\0')
					memset(&out[i].status, 0, sizeof(out[i].status));
				nng_msg_free(c->reply);
			}
		}
		if (c->aio != NULL)
			nng_aio_free(c->aio);
		if (c->sock_open)
			nng_close(c->sock);
	}

	nng_cv_free(fan.cv);
	nng_mtx_free(fan.mtx);
	free(calls);
	free(started);
}

/* Run one aio operation synchronously against the deadline. */
static int
run_aio(nng_aio *aio, nng_socket sock, bool send, nng_time deadline)
{
	nng_aio_set_timeout(aio, remaining_ms(deadline));
	if (send)
		nng_send_aio(sock, aio);
	else
		nng_recv_aio(sock, aio);
	nng_aio_wait(aio);
	return nng_aio_result(aio);
}

/*
 * One request/reply exchange on an open req0 socket, bounded by timeout_ms
 * from now.  The reply is copied into malloc'd memory so callers never see
 * NNG messages.
 */
static int
exchange(nng_socket sock, int timeout_ms, const uint8_t *req, size_t len,
		 uint8_t **reply, size_t *reply_len, char *err, size_t errlen)
{
	nng_aio    *aio = NULL;
	nng_msg    *msg = NULL;
	nng_time	deadline = nng_clock() + (nng_time) timeout_ms;
	int			rv;

	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0 ||
		(rv = nng_msg_alloc(&msg, 0)) != 0 ||
		(rv = nng_msg_append(msg, req, len)) != 0)
	{
		snprintf(err, errlen, "out of memory: %s", nng_strerror(rv));
		goto out;
	}

	nng_aio_set_msg(aio, msg);
	if ((rv = run_aio(aio, sock, true, deadline)) != 0)
	{
		/* msg is still ours after a failed send; freed below */
		describe_transport_error(err, errlen, rv, timeout_ms);
		goto out;
	}
	msg = NULL;

	if ((rv = run_aio(aio, sock, false, deadline)) != 0)
	{
		describe_transport_error(err, errlen, rv, timeout_ms);
		goto out;
	}
	msg = nng_aio_get_msg(aio);
	*reply_len = nng_msg_len(msg);
	/* malloc(0) may return NULL; an empty reply still needs a pointer. */
	*reply = malloc(*reply_len > 0 ? *reply_len : 1);
	if (*reply == NULL)
	{
		*reply_len = 0;
		rv = NNG_ENOMEM;
		snprintf(err, errlen, "out of memory copying a %zu-byte reply", nng_msg_len(msg));
		goto out;
	}
	memcpy(*reply, nng_msg_body(msg), *reply_len);

out:
	if (msg != NULL)
		nng_msg_free(msg);
	if (aio != NULL)
		nng_aio_free(aio);
	return rv;
}

/* A req0 socket dialing url in the background (NNG redials on its own). */
static int
open_dialing_socket(const char *url, nng_socket *sock, char *err, size_t errlen)
{
	int			rv;

	if ((rv = nng_req0_open(sock)) != 0)
	{
		snprintf(err, errlen, "cannot open socket: %s", nng_strerror(rv));
		return rv;
	}
	nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, AURORA_CLIENT_MAX_REPLY);
	if ((rv = nng_dial(*sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0)
	{
		snprintf(err, errlen, "cannot dial %s: %s", url, nng_strerror(rv));
		nng_close(*sock);
		return rv;
	}
	return 0;
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
	nng_socket	sock;
	int			rv;
	char		scratch[1];

	ERRBUF_OR_SCRATCH(err, errlen, scratch);
	*reply = NULL;
	*reply_len = 0;
	if ((rv = open_dialing_socket(url, &sock, err, errlen)) != 0)
		return rv;
	rv = exchange(sock, timeout_ms < 1 ? 1 : timeout_ms, req, len, reply, reply_len,
				  err, errlen);
	nng_close(sock);
	return rv;
}

struct aurora_conn
{
	nng_socket	sock;
};

int
aurora_conn_open(const char *url, aurora_conn **out, char *err, size_t errlen)
{
	aurora_conn *c;
	int			rv;
	char		scratch[1];

	ERRBUF_OR_SCRATCH(err, errlen, scratch);
	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NNG_ENOMEM;
	}
	if ((rv = open_dialing_socket(url, &c->sock, err, errlen)) != 0)
	{
		free(c);
		return rv;
	}
	*out = c;
	return 0;
}

int
aurora_conn_request(aurora_conn *c, int timeout_ms, const uint8_t *req, size_t len,
					uint8_t **reply, size_t *reply_len, char *err, size_t errlen)
{
	char		scratch[1];

	ERRBUF_OR_SCRATCH(err, errlen, scratch);
	*reply = NULL;
	*reply_len = 0;
	return exchange(c->sock, timeout_ms < 1 ? 1 : timeout_ms, req, len, reply, reply_len,
					err, errlen);
}

void
aurora_conn_abort(aurora_conn *c)
{
	/* closing the socket fails the pending send/receive with NNG_ECLOSED */
	if (c != NULL)
		nng_close(c->sock);
}

void
aurora_conn_close(aurora_conn *c)
{
	if (c == NULL)
		return;
	nng_close(c->sock);
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
