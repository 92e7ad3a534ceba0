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
 *    nothing);
 *  - a STATUS_RESP body round-trips through encode/decode unchanged once
 *    decoded (its error counters are counted on the wire so that a newer
 *    peer may send more of them; a reader keeps those it knows, so the
 *    bytes may differ while the meaning may not).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logmsg.h"
#include "wire.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
		uint8_t		again[64];

		if (aurora_segment_info_encode(&si, again, sizeof(again)) != len ||
			memcmp(again, body, len) != 0)
			abort();
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
	exercise_reader(data, size);
	return 0;
}
