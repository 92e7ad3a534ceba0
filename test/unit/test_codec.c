/*
 * test_codec.c - unit tests of the wire codec (storage_service/common/wire.c)
 * and CRC32C: exact byte layout, round trips, every decode error in its
 * documented order, body codecs and the bounded buffer.
 */
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "util.h"
#include "tap.h"
#include "wire.h"

static aurora_header
sample_header(void)
{
	aurora_header h;

	memset(&h, 0, sizeof(h));
	h.type = AURORA_MSG_STATUS_REQ;
	h.volume_id = 0x1122334455667788ull;
	h.volume_epoch = 7;
	h.membership_epoch = 9;
	h.request_id = 0xA1A2A3A4A5A6A7A8ull;
	h.pg_id = 0xDEADBEEF;
	return h;
}

static void
test_crc32c(void)
{
	const char *s = "123456789";
	uint32_t	part;

	is_uint(aurora_crc32c(0, s, 9), 0xE3069283u, "crc32c(\"123456789\") = 0xE3069283");
	part = aurora_crc32c(0, s, 4);
	is_uint(aurora_crc32c(part, s + 4, 5), 0xE3069283u, "crc32c chains across calls");
	{
		/* the CPU instruction path agrees with the table at every length and alignment */
		uint8_t		buf[300];
		int			bad = 0;

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t) (i * 131u + 7u);
		for (size_t off = 0; off < 8; off++)
			for (size_t len = 0; len + off <= sizeof(buf); len++)
				bad += aurora_crc32c(0x1234u, buf + off, len) !=
					aurora_crc32c_portable(0x1234u, buf + off, len);
		is_int(bad, 0, "crc32c: fast and portable paths agree (every length 0..300, 8 alignments)");
	}
	{
		/* the latency percentiles the views report */
		double		v[5] = {5, 1, 3, 2, 4};
		double		p50 = -1,
					p99 = -1;

		aurora_p50_p99(v, 0, &p50, &p99);
		ok(p50 == -1 && p99 == -1, "percentiles of no samples leave the outputs alone");
		aurora_p50_p99(v, 5, &p50, &p99);
		ok(p50 == 3 && p99 == 4, "p50 and p99 of 5 samples are the 3rd and 4th smallest (%g, %g)", p50, p99);
	}
	is_uint(aurora_crc32c(0, "", 0), 0u, "crc32c of nothing is 0");
}

static void
test_header_layout_and_round_trip(void)
{
	aurora_header h = sample_header();
	aurora_header d;
	uint8_t		msg[128];
	const uint8_t *body = NULL;
	size_t		n;

	n = aurora_encode(&h, "hello", 5, msg, sizeof(msg));
	is_uint(n, AURORA_HEADER_SIZE + 5, "encode returns header + body length");
	ok(memcmp(msg, "AURA", 4) == 0, "message starts with the bytes \"AURA\"");
	ok(msg[4] == 1 && msg[5] == 0, "version 1 little-endian at offset 4");
	ok(msg[6] == AURORA_MSG_STATUS_REQ && msg[7] == 0, "type at offset 6");
	ok(msg[12] == 5 && msg[13] == 0 && msg[14] == 0 && msg[15] == 0, "body_len at offset 12");
	ok(msg[16] == 0x88 && msg[23] == 0x11, "volume_id little-endian at offset 16");
	ok(msg[40] == 0xA8 && msg[47] == 0xA1, "request_id little-endian at offset 40");
	ok(msg[48] == 0xEF && msg[51] == 0xDE, "pg_id little-endian at offset 48");
	ok(memcmp(msg + 56, "hello", 5) == 0, "body follows the header");

	is_int(aurora_decode(msg, n, 1024, &d, &body), 0, "valid message decodes");
	is_uint(d.magic, AURORA_MAGIC, "magic round trip");
	is_uint(d.version, AURORA_PROTOCOL_VERSION, "version round trip");
	is_uint(d.type, h.type, "type round trip");
	is_uint(d.flags, 0, "flags round trip");
	is_uint(d.body_len, 5, "body_len round trip");
	is_uint(d.volume_id, h.volume_id, "volume_id round trip");
	is_uint(d.volume_epoch, h.volume_epoch, "volume_epoch round trip");
	is_uint(d.membership_epoch, h.membership_epoch, "membership_epoch round trip");
	is_uint(d.request_id, h.request_id, "request_id round trip");
	is_uint(d.pg_id, h.pg_id, "pg_id round trip");
	ok(body == msg + 56 && memcmp(body, "hello", 5) == 0, "body pointer points at the body");

	n = aurora_encode(&h, NULL, 0, msg, sizeof(msg));
	is_uint(n, AURORA_HEADER_SIZE, "empty body encodes to the bare header");
	is_int(aurora_decode(msg, n, 0, &d, &body), 0, "empty body decodes with max_body 0");
	ok(body == NULL, "empty body yields a NULL body pointer");

	is_uint(aurora_encode(&h, "hello", 5, msg, 60), 0, "encode refuses a too-small buffer");
	is_uint(aurora_encode(&h, NULL, 0, msg, 55), 0, "encode refuses a buffer smaller than the header");
}

static void
test_decode_errors(void)
{
	aurora_header h = sample_header();
	aurora_header d;
	uint8_t		msg[128];
	uint8_t		bad[128];
	size_t		n;
	size_t		byte;
	int			bit;
	int			wrong_code = 0;
	int			accepted = 0;

	n = aurora_encode(&h, "0123456789abcdefghij", 20, msg, sizeof(msg));

	is_int(aurora_decode(msg, 0, 1024, &d, NULL), AURORA_ERR_MALFORMED, "empty message is MALFORMED");
	is_int(aurora_decode(msg, 55, 1024, &d, NULL), AURORA_ERR_MALFORMED, "55-byte message is MALFORMED");
	is_uint(d.request_id, h.request_id, "55 bytes still carry request_id for the reply");
	is_int(aurora_decode(msg, 44, 1024, &d, NULL), AURORA_ERR_MALFORMED, "44-byte message is MALFORMED");
	is_uint(d.request_id, 0, "truncated inside request_id: request_id not filled");
	is_uint(d.membership_epoch, h.membership_epoch, "truncated inside request_id: earlier fields still read");

	memcpy(bad, msg, n);
	bad[0] = 'X';
	is_int(aurora_decode(bad, n, 1024, &d, NULL), AURORA_ERR_BAD_MAGIC, "wrong magic is BAD_MAGIC");
	is_uint(d.request_id, h.request_id, "BAD_MAGIC keeps request_id for the reply");

	memcpy(bad, msg, n);
	bad[4] = 2;
	is_int(aurora_decode(bad, n, 1024, &d, NULL), AURORA_ERR_BAD_VERSION, "version 2 is BAD_VERSION");
	is_uint(d.version, 2, "BAD_VERSION reports the version it saw");

	is_int(aurora_decode(msg, n, 19, &d, NULL), AURORA_ERR_TOO_LARGE, "body above max_body is TOO_LARGE");
	memcpy(bad, msg, AURORA_HEADER_SIZE);
	bad[12] = 0xff;
	bad[13] = 0xff;
	bad[14] = 0xff;
	bad[15] = 0xff;
	is_int(aurora_decode(bad, AURORA_HEADER_SIZE, 1024, &d, NULL), AURORA_ERR_TOO_LARGE,
		   "huge body_len in a bare header is TOO_LARGE (checked before length)");

	is_int(aurora_decode(msg, n - 1, 1024, &d, NULL), AURORA_ERR_MALFORMED, "one body byte missing is MALFORMED");
	memcpy(bad, msg, n);
	bad[n] = 0;
	is_int(aurora_decode(bad, n + 1, 1024, &d, NULL), AURORA_ERR_MALFORMED, "one extra byte is MALFORMED");

	memcpy(bad, msg, n);
	bad[53] ^= 0x01;
	is_int(aurora_decode(bad, n, 1024, &d, NULL), AURORA_ERR_BAD_CRC, "damaged crc field is BAD_CRC");
	is_uint(d.request_id, h.request_id, "BAD_CRC keeps request_id for the reply");

	/*
	 * Flip every bit once.  Bits in fields validated before the CRC (magic,
	 * version, body_len) must yield that field's error; all others BAD_CRC.
	 */
	for (byte = 0; byte < n; byte++)
	{
		for (bit = 0; bit < 8; bit++)
		{
			int			rc;
			int			expect;

			memcpy(bad, msg, n);
			bad[byte] ^= (uint8_t) (1u << bit);
			rc = aurora_decode(bad, n, 1024, &d, NULL);
			if (byte < 4)
				expect = AURORA_ERR_BAD_MAGIC;
			else if (byte < 6)
				expect = AURORA_ERR_BAD_VERSION;
			else if (byte >= 12 && byte < 16)
				expect = (rc == AURORA_ERR_TOO_LARGE) ? AURORA_ERR_TOO_LARGE : AURORA_ERR_MALFORMED;
			else
				expect = AURORA_ERR_BAD_CRC;
			if (rc == 0)
				accepted++;
			else if (rc != expect)
				wrong_code++;
		}
	}
	is_int(accepted, 0, "no single bit flip in %zu bytes is accepted", n);
	is_int(wrong_code, 0, "every bit flip outside magic/version/body_len is BAD_CRC");

	h.flags = 1;
	n = aurora_encode(&h, NULL, 0, bad, sizeof(bad));
	is_int(aurora_decode(bad, n, 1024, &d, NULL), AURORA_ERR_MALFORMED,
		   "nonzero reserved flags (with a valid CRC) is MALFORMED");
}

static aurora_status_body
sample_status(void)
{
	aurora_status_body s;
	int			i;

	memset(&s, 0, sizeof(s));
	memset(s.node_id, 'n', AURORA_NODE_ID_MAX);
	memset(s.az, 'z', AURORA_AZ_MAX);
	strcpy(s.state, "serving");
	s.pid = 4242;
	s.uptime_ms = 123456789012ull;
	s.protocol_version = 1;
	s.requests_total = 1000;
	s.errors_total = 28;
	for (i = 0; i < AURORA_ERR_COUNT; i++)
		s.errors_by_code[i] = (uint64_t) i;
	s.segments = 3;
	s.redo_configured = 1;
	s.coalesce_threshold = 16;
	s.records_indexed = 77;
	s.redo_failures = 2;
	s.index_backlog_bytes = 8192;
	s.coalesce_backlog = 5;
	return s;
}

static void
test_status_body(void)
{
	aurora_status_body s = sample_status();
	aurora_status_body d;
	uint8_t		buf[AURORA_STATUS_BODY_MAX + 8];
	uint8_t		bad[AURORA_STATUS_BODY_MAX + 8];
	size_t		n;
	size_t		cut;
	int			short_ok = 0;

	n = aurora_status_body_encode(&s, buf, sizeof(buf));
	ok(n > 0 && n <= AURORA_STATUS_BODY_MAX, "STATUS body with maximal strings encodes within AURORA_STATUS_BODY_MAX (%zu)", n);
	is_int(aurora_status_body_decode(buf, n, &d), 0, "STATUS body decodes");
	ok(memcmp(&s, &d, sizeof(s)) == 0, "STATUS body round trip is exact");

	/*
	 * Older nodes end earlier: without the backlog fields (16 bytes), or also
	 * without the page service fields (61 bytes more).
	 */
	for (cut = 0; cut < n; cut++)
		if (cut != n - 77 && cut != n - 16 && aurora_status_body_decode(buf, cut, &d) != AURORA_ERR_MALFORMED)
			short_ok++;
	is_int(short_ok, 0, "every other truncation of a STATUS body is MALFORMED");
	is_int(aurora_status_body_decode(buf, n - 16, &d), 0,
		   "a STATUS body without the backlog fields (an older node) decodes");
	ok(d.records_indexed == s.records_indexed && d.index_backlog_bytes == 0 && d.coalesce_backlog == 0,
	   "... with the backlog 0 and the page service fields kept");
	is_int(aurora_status_body_decode(buf, n - 77, &d), 0,
		   "a STATUS body without the page service fields (an older node) decodes");
	ok(d.segments == s.segments && d.records_indexed == 0 && d.coalesce_threshold == 0,
	   "... with those fields 0");
	aurora_status_body_decode(buf, 0, &d);
	ok(d.node_id[0] == '\0' && d.pid == 0, "failed decode leaves the struct zeroed");

	memcpy(bad, buf, n);
	bad[n] = 0;
	is_int(aurora_status_body_decode(bad, n + 1, &d), AURORA_ERR_MALFORMED, "trailing byte is MALFORMED");

	/* node_id length 64 does not fit the 63-char field. */
	memcpy(bad, buf, n);
	bad[0] = 64;
	is_int(aurora_status_body_decode(bad, n, &d), AURORA_ERR_MALFORMED, "overlong node_id is MALFORMED");

	memcpy(bad, buf, n);
	bad[5] = '\0';
	is_int(aurora_status_body_decode(bad, n, &d), AURORA_ERR_MALFORMED, "NUL inside a string is MALFORMED");

	is_uint(aurora_status_body_encode(&s, buf, 10), 0,
			"STATUS encode into a too-small buffer returns 0");
}

static void
test_error_body(void)
{
	aurora_error_body e;
	aurora_error_body d;
	uint8_t		buf[AURORA_ERROR_BODY_MAX + 8];
	size_t		n;
	size_t		cut;
	int			short_ok = 0;

	memset(&e, 0, sizeof(e));
	e.code = AURORA_ERR_BAD_CRC;
	strcpy(e.message, "CRC32C mismatch \xc3\xa9");
	n = aurora_error_body_encode(&e, buf, sizeof(buf));
	is_uint(n, 4 + 2 + strlen(e.message), "ERROR body is code + length + bytes");
	is_int(aurora_error_body_decode(buf, n, &d), 0, "ERROR body decodes");
	is_uint(d.code, AURORA_ERR_BAD_CRC, "ERROR code round trip");
	is_str(d.message, e.message, "ERROR message round trip (UTF-8 kept)");

	for (cut = 0; cut < n; cut++)
		if (aurora_error_body_decode(buf, cut, &d) != AURORA_ERR_MALFORMED)
			short_ok++;
	is_int(short_ok, 0, "every truncation of an ERROR body is MALFORMED");
	buf[n] = 'x';
	is_int(aurora_error_body_decode(buf, n + 1, &d), AURORA_ERR_MALFORMED, "ERROR body with trailing byte is MALFORMED");

	memset(e.message, 'm', AURORA_ERROR_MESSAGE_MAX);
	e.message[AURORA_ERROR_MESSAGE_MAX] = '\0';
	n = aurora_error_body_encode(&e, buf, sizeof(buf));
	is_uint(n, AURORA_ERROR_BODY_MAX, "maximal ERROR message fills AURORA_ERROR_BODY_MAX");
	is_int(aurora_error_body_decode(buf, n, &d), 0, "maximal ERROR message decodes");

	/* A 1025-byte message on the wire exceeds the protocol limit. */
	{
		aurora_buf	b;
		uint8_t		big[AURORA_ERROR_BODY_MAX + 8];
		char		msg[AURORA_ERROR_MESSAGE_MAX + 2];

		memset(msg, 'm', sizeof(msg) - 1);
		msg[sizeof(msg) - 1] = '\0';
		aurora_buf_init_writer(&b, big, sizeof(big));
		aurora_buf_put_u32(&b, 1);
		aurora_buf_put_str(&b, msg);
		ok(aurora_buf_ok(&b), "hand-built overlong ERROR body");
		is_int(aurora_error_body_decode(big, aurora_buf_len(&b), &d), AURORA_ERR_MALFORMED,
			   "ERROR message over %d bytes is MALFORMED", AURORA_ERROR_MESSAGE_MAX);
	}
}

static void
test_buf(void)
{
	aurora_buf	b;
	uint8_t		store[5];
	char		str[4];
	static const uint8_t src[] = {1, 0, 0, 0, 3, 0, 'a', 'b', 'c'};

	aurora_buf_init_writer(&b, store, sizeof(store));
	aurora_buf_put_u32(&b, 0x01020304);
	ok(aurora_buf_ok(&b), "u32 fits in 5 bytes");
	aurora_buf_put_u16(&b, 7);
	ok(!aurora_buf_ok(&b), "u16 after it overflows");
	aurora_buf_put_u8(&b, 1);
	ok(!aurora_buf_ok(&b), "overflow is sticky even when a later put would fit");
	is_uint(aurora_buf_len(&b), 4, "failed puts write nothing");
	ok(store[0] == 4 && store[3] == 1, "u32 written little-endian");

	aurora_buf_init_reader(&b, src, 4);
	is_uint(aurora_buf_get_u64(&b), 0, "u64 from 4 bytes reads 0");
	ok(!aurora_buf_ok(&b), "underflow sets the flag");
	is_uint(aurora_buf_get_u8(&b), 0, "underflow is sticky");

	aurora_buf_init_reader(&b, src, sizeof(src));
	is_uint(aurora_buf_get_u32(&b), 1, "u32 read");
	aurora_buf_get_str(&b, str, sizeof(str));
	ok(aurora_buf_ok(&b) && strcmp(str, "abc") == 0, "string read into exactly-fitting buffer");
	is_uint(aurora_buf_remaining(&b), 0, "reader consumed everything");

	aurora_buf_init_reader(&b, src, sizeof(src));
	aurora_buf_get_u32(&b);
	aurora_buf_get_str(&b, str, 3);
	ok(!aurora_buf_ok(&b) && str[0] == '\0', "string longer than the destination fails and leaves it empty");

	aurora_buf_init_reader(&b, src, sizeof(src) - 1);
	aurora_buf_get_u32(&b);
	aurora_buf_get_str(&b, str, sizeof(str));
	ok(!aurora_buf_ok(&b), "string cut short by the end of input fails");
}

static void
test_names(void)
{
	is_str(aurora_error_name(AURORA_ERR_MALFORMED), "MALFORMED", "error name MALFORMED");
	is_str(aurora_error_name(AURORA_ERR_BAD_CRC), "BAD_CRC", "error name BAD_CRC");
	is_str(aurora_error_name(AURORA_ERR_INTERNAL), "INTERNAL", "error name INTERNAL");
	is_str(aurora_error_name(99), "UNKNOWN_ERROR", "unknown error code has a name");
	is_str(aurora_msg_type_name(AURORA_MSG_STATUS_RESP), "STATUS_RESP", "type name STATUS_RESP");
	is_str(aurora_msg_type_name(999), "UNKNOWN", "unknown type has a name");
}

int
main(void)
{
	test_crc32c();
	test_header_layout_and_round_trip();
	test_decode_errors();
	test_status_body();
	test_error_body();
	test_buf();
	test_names();
	return done_testing();
}
