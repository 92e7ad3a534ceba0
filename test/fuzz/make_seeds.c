/*
 * make_seeds.c - writes a few valid encoded messages (STATUS_REQ,
 * STATUS_RESP, ERROR, page requests, a LOG_APPEND of an enveloped record,
 * with and without bodies, a small start state bundle, FENCE_ACK and
 * TRUNCATE_REQ with a history, with and without headers) into the fuzz corpus
 * directory given as argv[1], so libFuzzer starts from inputs that pass the
 * CRC check and reaches the body decoders quickly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epochmsg.h"
#include "logmsg.h"
#include "pagemsg.h"
#include "start_state.h"
#include "walmeta.h"
#include "wire.h"

static int
write_seed(const char *dir, const char *name, const uint8_t *data, size_t len)
{
	char		path[1024];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
	{
		fprintf(stderr, "make_seeds: cannot write %s\n", path);
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	aurora_header h;
	aurora_status_body s;
	aurora_error_body e;
	uint8_t		body[AURORA_ERROR_BODY_MAX];
	uint8_t		msg[AURORA_HEADER_SIZE + AURORA_ERROR_BODY_MAX];
	size_t		n;
	int			rc = 0;
	int			i;

	if (argc != 2)
	{
		fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
		return 2;
	}
	memset(&h, 0, sizeof(h));
	h.request_id = 42;
	h.volume_id = 1;
	h.volume_epoch = 2;
	h.membership_epoch = 3;
	h.pg_id = 4;

	h.type = AURORA_MSG_STATUS_REQ;
	n = aurora_encode(&h, NULL, 0, msg, sizeof(msg));
	rc |= write_seed(argv[1], "status-req", msg, n);

	memset(&s, 0, sizeof(s));
	strcpy(s.node_id, "a1");
	strcpy(s.az, "az1");
	strcpy(s.state, "serving");
	s.pid = 1234;
	s.uptime_ms = 5000;
	s.protocol_version = AURORA_PROTOCOL_VERSION;
	s.requests_total = 10;
	s.errors_total = 2;
	for (i = 0; i < AURORA_ERR_COUNT; i++)
		s.errors_by_code[i] = (uint64_t) (i & 1);
	h.type = AURORA_MSG_STATUS_RESP;
	n = aurora_status_body_encode(&s, body, sizeof(body));
	rc |= write_seed(argv[1], "status-body", body, n);
	n = aurora_encode(&h, body, n, msg, sizeof(msg));
	rc |= write_seed(argv[1], "status-resp", msg, n);

	memset(&e, 0, sizeof(e));
	e.code = AURORA_ERR_BAD_CRC;
	strcpy(e.message, "CRC32C mismatch");
	h.type = AURORA_MSG_ERROR;
	n = aurora_error_body_encode(&e, body, sizeof(body));
	rc |= write_seed(argv[1], "error-body", body, n);
	n = aurora_encode(&h, body, n, msg, sizeof(msg));
	rc |= write_seed(argv[1], "error", msg, n);

	/* page service requests (replies carrying a page exceed -max_len) */
	{
		aurora_getpage_req g = {{1663, 5, 16384, 0, 7}, 0x1000028, 1000};
		aurora_rel_size_req r = {1663, 5, 16384, 2, 0x1000028, 500};
		aurora_rel_size_resp rs = {true, 12};

		h.type = AURORA_MSG_GETPAGE_REQ;
		n = aurora_getpage_req_encode(&g, body, sizeof(body));
		rc |= write_seed(argv[1], "getpage-body", body, n);
		n = aurora_encode(&h, body, n, msg, sizeof(msg));
		rc |= write_seed(argv[1], "getpage-req", msg, n);
		h.type = AURORA_MSG_REL_SIZE_REQ;
		n = aurora_rel_size_req_encode(&r, body, sizeof(body));
		rc |= write_seed(argv[1], "relsize-body", body, n);
		n = aurora_encode(&h, body, n, msg, sizeof(msg));
		rc |= write_seed(argv[1], "relsize-req", msg, n);
		n = aurora_rel_size_resp_encode(&rs, body, sizeof(body));
		rc |= write_seed(argv[1], "relsize-resp-body", body, n);
		n = aurora_seed_ack_encode(3, body, sizeof(body));
		rc |= write_seed(argv[1], "seed-ack-body", body, n);
	}

	/* a LOG_APPEND of one compute record: envelope (walmeta.h) + WAL record */
	{
		aurora_walmeta_block blk = {{1663, 5, 16384, 2, 0}, AURORA_BLOCK_IMPLICIT};
		aurora_walmeta_event ev = {AURORA_REL_TRUNCATE, 1663, 5, 16384, 0, 3};
		uint8_t		payload[128];
		aurora_log_record rec = {0x1000028, 0x1000060, 0x1000000, 0, payload};
		aurora_buf	b;

		aurora_buf_init_writer(&b, payload, sizeof(payload));
		aurora_walmeta_put(&b, &blk, 1, &ev, 1);
		rec.len = (uint32_t) aurora_buf_len(&b) + 24;
		memset(payload + aurora_buf_len(&b), 0, 24);
		payload[aurora_buf_len(&b)] = 24;	/* xl_tot_len */
		h.type = AURORA_MSG_LOG_APPEND;
		n = aurora_log_append_encode(&rec, 1, body, sizeof(body));
		rc |= write_seed(argv[1], "log-append-body", body, n);
		n = aurora_encode(&h, body, n, msg, sizeof(msg));
		rc |= write_seed(argv[1], "log-append", msg, n);
	}
	{
		aurora_start_state_file f[2] = {
			{(char *) "global/pg_control", 0600, 4, (uint8_t *) "ctl!"},
			{(char *) "pg_xact/0000", 0600, 2, (uint8_t *) "\x55\x01"}
		};
		aurora_start_state s = {0x1000028, 0x1000028, 0x1000000, 2, f};
		uint8_t    *bundle;
		size_t		blen;

		if (aurora_start_state_encode(&s, &bundle, &blen, NULL, 0) == 0)
		{
			rc |= write_seed(argv[1], "start-state-bundle", bundle, blen);
			free(bundle);
		}
	}

	/* volume epochs: a two-entry truncation history in FENCE_ACK and TRUNCATE_REQ */
	{
		aurora_trunc_entry hist[2] = {{2, 0x1000060}, {3, 0x2000000}};
		uint8_t		raw[2 * AURORA_TRUNC_ENTRY_SIZE];
		aurora_fence_ack fa = {0x1000060, 0x1000100, 2, {0, NULL}};

		aurora_trunc_list_fill(&fa.history, hist, 2, raw);
		n = aurora_fence_ack_encode(&fa, body, sizeof(body));
		rc |= write_seed(argv[1], "fence-ack-body", body, n);
		n = aurora_truncate_req_encode(&fa.history, body, sizeof(body));
		rc |= write_seed(argv[1], "truncate-req-body", body, n);
		h.type = AURORA_MSG_TRUNCATE_REQ;
		h.volume_epoch = 3;
		n = aurora_encode(&h, body, n, msg, sizeof(msg));
		rc |= write_seed(argv[1], "truncate-req", msg, n);
	}
	return rc;
}
