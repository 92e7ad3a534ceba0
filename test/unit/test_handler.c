/*
 * test_handler.c - unit tests of the node's request dispatcher
 * (storage_service/node/handler.c) without any network: replies echo the
 * request's identity, errors are counted per code, and the counters stay
 * exact under concurrent use from several threads (as the server's worker
 * contexts use them).
 */
#define _DEFAULT_SOURCE

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "handler.h"
#include "tap.h"
#include "wire.h"

#define THREADS 4
#define PER_THREAD 20000

static aurora_handler handler;

static size_t
status_req(uint64_t request_id, uint8_t *out, size_t cap)
{
	aurora_header h;

	memset(&h, 0, sizeof(h));
	h.type = AURORA_MSG_STATUS_REQ;
	h.request_id = request_id;
	h.volume_id = 5;
	h.volume_epoch = 6;
	h.membership_epoch = 7;
	h.pg_id = 8;
	return aurora_encode(&h, NULL, 0, out, cap);
}

static void *
hammer(void *arg)
{
	uint8_t		req[AURORA_HEADER_SIZE];
	uint8_t		rep[AURORA_HANDLER_REPLY_MAX];
	size_t		n = status_req(1, req, sizeof(req));
	int			i;

	(void) arg;
	for (i = 0; i < PER_THREAD; i++)
	{
		/* Alternate valid and truncated requests to bump both counters. */
		aurora_handler_handle(&handler, req, (i & 1) ? n : n - 1, rep, sizeof(rep));
	}
	return NULL;
}

int
main(void)
{
	uint8_t		req[256];
	uint8_t		rep[AURORA_HANDLER_REPLY_MAX];
	aurora_header h;
	const uint8_t *body;
	aurora_status_body s;
	aurora_error_body e;
	size_t		n;
	pthread_t	threads[THREADS];
	int			i;

	aurora_handler_init(&handler, "h1", "az9", 1024);

	n = aurora_handler_handle(&handler, req, status_req(77, req, sizeof(req)), rep, sizeof(rep));
	is_int(aurora_decode(rep, n, AURORA_HANDLER_REPLY_MAX, &h, &body), 0, "STATUS reply decodes");
	is_uint(h.type, AURORA_MSG_STATUS_RESP, "STATUS_REQ answered with STATUS_RESP");
	ok(h.request_id == 77 && h.volume_id == 5 && h.volume_epoch == 6 &&
	   h.membership_epoch == 7 && h.pg_id == 8, "reply echoes request_id, volume, epochs and PG");
	is_int(aurora_status_body_decode(body, h.body_len, &s), 0, "STATUS body decodes");
	is_str(s.node_id, "h1", "node_id");
	is_str(s.az, "az9", "az");
	is_str(s.state, "serving", "state");
	is_uint(s.pid, (uint32_t) getpid(), "pid");
	is_uint(s.requests_total, 1, "the STATUS request itself is counted");
	is_uint(s.errors_total, 0, "no errors yet");

	memcpy(req, "garbage!!!", 10);
	n = aurora_handler_handle(&handler, req, 10, rep, sizeof(rep));
	is_int(aurora_decode(rep, n, AURORA_HANDLER_REPLY_MAX, &h, &body), 0, "ERROR reply decodes");
	is_uint(h.type, AURORA_MSG_ERROR, "garbage answered with ERROR");
	is_int(aurora_error_body_decode(body, h.body_len, &e), 0, "ERROR body decodes");
	is_uint(e.code, AURORA_ERR_MALFORMED, "garbage is MALFORMED");
	like(e.message, "10 bytes, shorter than the 56-byte header", "message gives the length");

	n = status_req(78, req, sizeof(req));
	req[AURORA_OFF_PG_ID] ^= 1;
	n = aurora_handler_handle(&handler, req, n, rep, sizeof(rep));
	aurora_decode(rep, n, AURORA_HANDLER_REPLY_MAX, &h, &body);
	aurora_error_body_decode(body, h.body_len, &e);
	is_uint(e.code, AURORA_ERR_BAD_CRC, "damaged header is BAD_CRC");
	is_uint(h.request_id, 78, "BAD_CRC reply still echoes request_id");

	aurora_handler_status(&handler, &s);
	is_uint(s.requests_total, 3, "three requests counted");
	is_uint(s.errors_total, 2, "two errors counted");
	is_uint(s.errors_by_code[AURORA_ERR_MALFORMED], 1, "one MALFORMED");
	is_uint(s.errors_by_code[AURORA_ERR_BAD_CRC], 1, "one BAD_CRC");

	for (i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, hammer, NULL);
	for (i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	aurora_handler_status(&handler, &s);
	is_uint(s.requests_total, 3 + THREADS * PER_THREAD, "concurrent requests counted exactly");
	is_uint(s.errors_total, 2 + THREADS * PER_THREAD / 2, "concurrent errors counted exactly");
	is_uint(s.errors_by_code[AURORA_ERR_MALFORMED], 1 + THREADS * PER_THREAD / 2,
			"concurrent MALFORMED counted exactly");
	return done_testing();
}
