/*
 * fuzz_decode.c - libFuzzer target for everything that parses bytes from the
 * network: aurora_decode, the STATUS_RESP and ERROR body decoders and the
 * aurora_buf reader.  Built by "make -C storage_service fuzz" with
 * -fsanitize=fuzzer,address,undefined; any out-of-bounds access, UB or
 * failed property below is a crash.
 *
 * Properties checked beyond "does not crash":
 *  - a message that decodes re-encodes to exactly the same bytes;
 *  - an ERROR or log-path body that decodes re-encodes to exactly the same
 *    bytes (so the decoder accepts only canonical encodings and loses
 *    nothing), and so does every record envelope in a LOG_APPEND;
 *  - a page-service body (GETPAGE_REQ, PAGE, REL_SIZE_REQ, REL_SIZE,
 *    SEED_PAGES, SEED_ACK) and start state body (START_STATE_PUT ...
 *    START_STATE, and a whole bundle) that decodes re-encodes to the same bytes;
 *  - so does a volume epoch body (FENCE_ACK, TRUNCATE_REQ, TRUNCATE_ACK);
 *    a SEGMENT_INFO in the older layout re-encodes with zero truncation
 *    fields appended;
 *  - a STATUS_RESP body round-trips through encode/decode unchanged once
 *    decoded (its error counters are counted on the wire so that a newer
 *    peer may send more of them; a reader keeps those it knows, so the
 *    bytes may differ while the meaning may not).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "epochmsg.h"
#include "logmsg.h"
#include "pagemsg.h"
#include "start_state.h"
#include "start_state_msg.h"
#include "walmeta.h"
#include "wire.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A record payload that decodes as an envelope (walmeta.h) re-encodes to
 * exactly the same bytes: the envelope from its blocks and events, then
 * the WAL record.
 */
static void
check_envelope(const uint8_t *payload, size_t len)
{
	aurora_walmeta m;
	aurora_walmeta_block *blocks;
	aurora_walmeta_event *events;
	uint8_t    *again;
	aurora_buf	b;

	if (aurora_walmeta_decode(payload, len, &m, NULL, 0) != 0)
		return;
	blocks = malloc(sizeof(*blocks) * (size_t) (m.n_blocks + 1));
	events = malloc(sizeof(*events) * (size_t) (m.n_events + 1));
	again = malloc(len);
	if (blocks == NULL || events == NULL || again == NULL)
		abort();
	for (int i = 0; i < m.n_blocks; i++)
		aurora_walmeta_block_at(&m, i, &blocks[i]);
	for (int i = 0; i < m.n_events; i++)
		aurora_walmeta_event_at(&m, i, &events[i]);
	aurora_buf_init_writer(&b, again, len);
	aurora_walmeta_put(&b, blocks, m.n_blocks, events, m.n_events);
	aurora_buf_put_bytes(&b, m.wal, m.wal_len);
	if (!aurora_buf_ok(&b) || aurora_buf_len(&b) != len || memcmp(again, payload, len) != 0)
		abort();
	free(blocks);
	free(events);
	free(again);
}

static void
check_status_body(const uint8_t *body, size_t len)
{
	aurora_status_body s;
	uint8_t		again[AURORA_STATUS_BODY_MAX];
	size_t		n;

	aurora_status_body s2;

	if (aurora_status_body_decode(body, len, &s) != 0)
		return;
	n = aurora_status_body_encode(&s, again, sizeof(again));
	if (n == 0 || aurora_status_body_decode(again, n, &s2) != 0 ||
		memcmp(&s, &s2, sizeof(s)) != 0)
		abort();
}

/* Log-path bodies: decode must never over-read; accepted input round-trips. */
static void
check_log_bodies(const uint8_t *body, size_t len)
{
	aurora_log_record *recs;
	int			n;
	aurora_create_segment c;
	aurora_read_log_resp rr;
	aurora_segment_state *st;
	aurora_segment_info si;
	aurora_record_before rb;
	uint64_t	lsn;

	if (aurora_log_append_decode(body, len, &recs, &n) == 0)
	{
		size_t		size = aurora_records_encoded_size(recs, n);
		uint8_t    *again = malloc(size ? size : 1);

		if (again == NULL)
			abort();
		if (size != len || aurora_log_append_encode(recs, n, again, size) != len ||
			memcmp(again, body, len) != 0)
			abort();
		free(again);
		for (int i = 0; i < n; i++)
			check_envelope(recs[i].payload, recs[i].len);
		free(recs);
	}
	if (aurora_create_segment_decode(body, len, &c) == 0)
	{
		uint8_t		again[2048];

		if (aurora_create_segment_encode(&c, again, sizeof(again)) != len ||
			memcmp(again, body, len) != 0)
			abort();
	}
	if (aurora_segment_info_decode(body, len, &si) == 0)
	{
		uint8_t    *again = malloc(64 + AURORA_TRUNC_LIST_MAX_BYTES);
		size_t		n_again;

		if (again == NULL)
			abort();
		n_again = aurora_segment_info_encode(&si, again, 64 + AURORA_TRUNC_LIST_MAX_BYTES);
		/* the older body without the truncation fields re-encodes with them (zero) */
		if (len == 36 ? n_again != 46 || memcmp(again, body, len) != 0 :
			n_again != len || memcmp(again, body, len) != 0)
			abort();
		free(again);
	}
	if (aurora_record_before_decode(body, len, &rb) == 0)
	{
		uint8_t		again[64];

		if (aurora_record_before_encode(&rb, again, sizeof(again)) != len ||
			memcmp(again, body, len) != 0)
			abort();
	}
	if (aurora_record_before_req_decode(body, len, &lsn) == 0)
	{
		uint8_t		again[8];

		if (aurora_record_before_req_encode(lsn, again, sizeof(again)) != len ||
			memcmp(again, body, len) != 0)
			abort();
	}
	if (aurora_read_log_resp_decode(body, len, &rr) == 0)
		free(rr.recs);
	if (aurora_segments_resp_decode(body, len, &st, &n) == 0)
		free(st);
}

/* Volume epoch bodies (epochmsg.h): accepted input round-trips byte for byte. */
static void
check_epoch_bodies(const uint8_t *body, size_t len)
{
	aurora_fence_ack fa;
	aurora_truncate_ack ta;
	aurora_trunc_list l;
	uint8_t    *again = malloc(64 + AURORA_TRUNC_LIST_MAX_BYTES);
	size_t		cap = 64 + AURORA_TRUNC_LIST_MAX_BYTES;

	if (again == NULL)
		abort();
	if (aurora_fence_ack_decode(body, len, &fa) == 0 &&
		(aurora_fence_ack_encode(&fa, again, cap) != len || memcmp(again, body, len) != 0))
		abort();
	if (aurora_truncate_req_decode(body, len, &l) == 0 &&
		(aurora_truncate_req_encode(&l, again, cap) != len || memcmp(again, body, len) != 0 ||
		 l.n < 1))
		abort();
	if (aurora_truncate_ack_decode(body, len, &ta) == 0 &&
		(aurora_truncate_ack_encode(&ta, again, cap) != len || memcmp(again, body, len) != 0))
		abort();
	free(again);
}

/* Page-service bodies: accepted input round-trips byte for byte. */
static void
check_page_bodies(const uint8_t *body, size_t len)
{
	aurora_getpage_req g;
	aurora_rel_size_req r;
	aurora_rel_size_resp rs;
	aurora_seed_page *pages;
	uint64_t	lsn;
	uint32_t	stored;
	int			n;
	uint8_t		again[64];

	if (aurora_getpage_req_decode(body, len, &g) == 0 &&
		(aurora_getpage_req_encode(&g, again, sizeof(again)) != len || memcmp(again, body, len) != 0))
		abort();
	if (aurora_rel_size_req_decode(body, len, &r) == 0 &&
		(aurora_rel_size_req_encode(&r, again, sizeof(again)) != len || memcmp(again, body, len) != 0))
		abort();
	if (aurora_rel_size_resp_decode(body, len, &rs) == 0 &&
		(aurora_rel_size_resp_encode(&rs, again, sizeof(again)) != len || memcmp(again, body, len) != 0))
		abort();
	if (aurora_seed_ack_decode(body, len, &stored) == 0 &&
		(aurora_seed_ack_encode(stored, again, sizeof(again)) != len || memcmp(again, body, len) != 0))
		abort();
	{
		aurora_page_resp *p = malloc(sizeof(*p));
		uint8_t    *buf = malloc(AURORA_PAGE_RESP_SIZE);

		if (p == NULL || buf == NULL)
			abort();
		if (aurora_page_resp_decode(body, len, p) == 0 &&
			(aurora_page_resp_encode(p, buf, AURORA_PAGE_RESP_SIZE) != len || memcmp(buf, body, len) != 0))
			abort();
		free(p);
		free(buf);
	}
	if (aurora_seed_pages_decode(body, len, &lsn, &pages, &n) == 0)
	{
		uint8_t    *buf = malloc(len);

		if (buf == NULL || aurora_seed_pages_encode(lsn, pages, n, buf, len) != len ||
			memcmp(buf, body, len) != 0)
			abort();
		free(buf);
		free(pages);
	}
}

/*
 * Start state bodies round-trip; a start state bundle is checked without
 * over-reading, and one that checks decodes and re-encodes to the same bytes.
 */
static void
check_start_state_bodies(const uint8_t *body, size_t len)
{
	aurora_start_state_put p;
	aurora_start_state_ack a;
	aurora_start_state_get g;
	aurora_start_state_resp r;
	aurora_start_state s;
	uint8_t		again[64];
	uint8_t    *buf;
	size_t		n;

	if (aurora_start_state_ack_decode(body, len, &a) == 0 &&
		(aurora_start_state_ack_encode(&a, again, sizeof(again)) != len || memcmp(again, body, len) != 0))
		abort();
	if (aurora_start_state_get_decode(body, len, &g) == 0 &&
		(aurora_start_state_get_encode(&g, again, sizeof(again)) != len || memcmp(again, body, len) != 0))
		abort();
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	if (aurora_start_state_put_decode(body, len, &p) == 0 &&
		(aurora_start_state_put_encode(&p, buf, len) != len || memcmp(buf, body, len) != 0))
		abort();
	if (aurora_start_state_resp_decode(body, len, &r) == 0 &&
		(aurora_start_state_resp_encode(&r, buf, len) != len || memcmp(buf, body, len) != 0))
		abort();
	free(buf);
	if (aurora_start_state_check(body, len, NULL, NULL, NULL, NULL, 0) == 0)
	{
		if (aurora_start_state_decode(body, len, &s, NULL, 0) != 0 ||
			aurora_start_state_encode(&s, &buf, &n, NULL, 0) != 0 || n != len ||
			memcmp(buf, body, len) != 0)
			abort();
		free(buf);
		aurora_start_state_free(&s);
	}
}

static void
check_error_body(const uint8_t *body, size_t len)
{
	aurora_error_body e;
	uint8_t		again[AURORA_ERROR_BODY_MAX];
	size_t		n;

	if (aurora_error_body_decode(body, len, &e) != 0)
		return;
	n = aurora_error_body_encode(&e, again, sizeof(again));
	if (n != len || memcmp(again, body, len) != 0)
		abort();
}

/* Drive the reader with the input itself choosing the sequence of gets. */
static void
exercise_reader(const uint8_t *data, size_t size)
{
	aurora_buf	b;
	char		str[40];
	uint8_t		raw[16];
	size_t		ops = 0;

	if (size == 0)
		return;
	aurora_buf_init_reader(&b, data + 1, size - 1);
	while (aurora_buf_ok(&b) && aurora_buf_remaining(&b) > 0 && ops++ < 64)
	{
		switch ((data[0] + ops) % 6)
		{
			case 0:
				(void) aurora_buf_get_u8(&b);
				break;
			case 1:
				(void) aurora_buf_get_u16(&b);
				break;
			case 2:
				(void) aurora_buf_get_u32(&b);
				break;
			case 3:
				(void) aurora_buf_get_u64(&b);
				break;
			case 4:
				aurora_buf_get_str(&b, str, 1 + data[0] % sizeof(str));
				if (aurora_buf_ok(&b) && strlen(str) >= sizeof(str))
					abort();
				break;
			default:
				aurora_buf_get_bytes(&b, raw, data[0] % sizeof(raw));
				break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	aurora_header h;
	const uint8_t *body;
	int			rc;

	rc = aurora_decode(data, size, 1u << 20, &h, &body);
	if (rc == 0)
	{
		uint8_t    *again = malloc(size);

		if (again == NULL)
			return 0;
		if (aurora_encode(&h, body, h.body_len, again, size) != size ||
			memcmp(again, data, size) != 0)
			abort();
		free(again);

		if (h.type == AURORA_MSG_STATUS_RESP)
			check_status_body(body, h.body_len);
		else if (h.type == AURORA_MSG_ERROR)
			check_error_body(body, h.body_len);
	}
	else if (rc < AURORA_ERR_MALFORMED || rc > AURORA_ERR_TOO_LARGE)
		abort();				/* decode only ever reports these codes */

	/* The body decoders are also reachable with arbitrary bytes. */
	check_status_body(data, size);
	check_error_body(data, size);
	check_log_bodies(data, size);
	check_page_bodies(data, size);
	check_start_state_bodies(data, size);
	check_epoch_bodies(data, size);
	exercise_reader(data, size);
	return 0;
}
