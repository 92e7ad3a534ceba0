/*
 * test_logmsg.c - unit tests of the segment log message bodies
 * (storage_service/common/logmsg.c): round trips of every body, the record
 * list layout, and malformed bodies (short, trailing bytes, hostile counts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logmsg.h"
#include "tap.h"

static void
test_create_segment(void)
{
	aurora_create_segment c,
				d;
	uint8_t		buf[2048];
	size_t		n;
	int			i;

	memset(&c, 0, sizeof(c));
	c.replica_index = 3;
	c.base_lsn = 12345;
	c.n_pgs = 16;
	c.blocks_per_segment = 1024;
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		snprintf(c.members[i].node_id, sizeof(c.members[i].node_id), "n%d", i);
		snprintf(c.members[i].az, sizeof(c.members[i].az), "az%d", i / 2);
		snprintf(c.members[i].url, sizeof(c.members[i].url), "tcp://10.0.0.%d:7101", i);
	}
	n = aurora_create_segment_encode(&c, buf, sizeof(buf));
	ok(n > 0, "CREATE_SEGMENT encodes");
	is_int(aurora_create_segment_decode(buf, n, &d), 0, "and decodes");
	ok(memcmp(&c, &d, sizeof(c)) == 0, "round trip is exact");
	is_int(aurora_create_segment_decode(buf, n - 1, &d), AURORA_ERR_MALFORMED, "short body is malformed");
	buf[12] = 5;				/* n_members */
	is_int(aurora_create_segment_decode(buf, n, &d), AURORA_ERR_MALFORMED,
		   "a member count other than six is malformed");
	buf[12] = 6;
	buf[0] = 6;					/* replica_index */
	is_int(aurora_create_segment_decode(buf, n, &d), AURORA_ERR_MALFORMED,
		   "a replica index beyond the six members is malformed");
}

static void
test_records(void)
{
	uint8_t		p1[3] = {1, 2, 3};
	aurora_log_record recs[2] = {
		{100, 200, 0, 3, p1},
		{200, 260, 100, 0, NULL},
	};
	aurora_log_record *got;
	uint8_t		buf[256];
	size_t		n;
	int			count;

	n = aurora_log_append_encode(recs, 2, buf, sizeof(buf));
	is_int(n, aurora_records_encoded_size(recs, 2), "encoded size is predicted exactly");
	is_int(n, 4 + 2 * AURORA_RECORD_OVERHEAD + 3, "28 bytes per record plus payload");
	is_int(aurora_log_append_decode(buf, n, &got, &count), 0, "LOG_APPEND decodes");
	is_int(count, 2, "two records");
	ok(got[0].start_lsn == 100 && got[0].end_lsn == 200 && got[0].prev_lsn == 0 &&
	   got[0].len == 3 && memcmp(got[0].payload, p1, 3) == 0, "first record intact");
	ok(got[1].start_lsn == 200 && got[1].prev_lsn == 100 && got[1].len == 0,
	   "second record intact");
	ok(got[0].payload >= buf && got[0].payload < buf + n, "payloads point into the message");
	free(got);

	is_int(aurora_log_append_decode(buf, n - 1, &got, &count), AURORA_ERR_MALFORMED,
		   "a truncated payload is malformed");
	buf[n] = 0;
	is_int(aurora_log_append_decode(buf, n + 1, &got, &count), AURORA_ERR_MALFORMED,
		   "trailing bytes are malformed");
	buf[0] = 0xff;
	buf[1] = 0xff;
	buf[2] = 0xff;
	buf[3] = 0x7f;
	is_int(aurora_log_append_decode(buf, n, &got, &count), AURORA_ERR_MALFORMED,
		   "a count the body cannot hold is refused before allocating");
	ok(got == NULL && count == 0, "and nothing is returned");
}

static void
test_small_bodies(void)
{
	aurora_log_ack a = {900, 1000, 7, 2},
				a2;
	aurora_read_log r = {10, 20, 4096},
				r2;
	aurora_segment_info i = {4, 77, 88, 16, 1024, 0x1493000, 0, {0, NULL}},
				i2;
	uint8_t		buf[64];
	size_t		n;

	n = aurora_log_ack_encode(&a, buf, sizeof(buf));
	is_int(n, 24, "LOG_ACK is 24 bytes");
	ok(aurora_log_ack_decode(buf, n, &a2) == 0 && memcmp(&a, &a2, sizeof(a)) == 0,
	   "LOG_ACK round trip");
	n = aurora_read_log_encode(&r, buf, sizeof(buf));
	ok(aurora_read_log_decode(buf, n, &r2) == 0 && r2.from_lsn == 10 && r2.to_lsn == 20 &&
	   r2.max_bytes == 4096, "READ_LOG round trip");
	r.from_lsn = 30;
	n = aurora_read_log_encode(&r, buf, sizeof(buf));
	is_int(aurora_read_log_decode(buf, n, &r2), AURORA_ERR_MALFORMED, "READ_LOG with from > to is malformed");
	n = aurora_segment_info_encode(&i, buf, sizeof(buf));
	/* field by field: the struct has padding that memcmp would read */
	ok(aurora_segment_info_decode(buf, n, &i2) == 0 && i2.replica_index == i.replica_index &&
	   i2.scl == i.scl && i2.highest_lsn == i.highest_lsn && i2.n_pgs == 16 &&
	   i2.blocks_per_segment == 1024 && i2.seeded_lsn == 0x1493000,
	   "SEGMENT_INFO round trip");
	is_int(n, 46, "SEGMENT_INFO is 46 bytes (no truncation history)");
	is_int(aurora_segment_info_decode(buf, n + 1, &i2), AURORA_ERR_MALFORMED,
		   "SEGMENT_INFO with trailing bytes is malformed");
}

static void
test_record_before(void)
{
	aurora_record_before r = {true, 100, 160, 40, 500},
				r2;
	uint8_t		buf[64];
	uint64_t	lsn = 0;
	size_t		n;

	n = aurora_record_before_req_encode(12345, buf, sizeof(buf));
	ok(n == 8 && aurora_record_before_req_decode(buf, n, &lsn) == 0 && lsn == 12345,
	   "RECORD_BEFORE_REQ round trip");
	is_int(aurora_record_before_req_decode(buf, n - 1, &lsn), AURORA_ERR_MALFORMED,
		   "a short RECORD_BEFORE_REQ is malformed");
	n = aurora_record_before_encode(&r, buf, sizeof(buf));
	ok(n == 33 && aurora_record_before_decode(buf, n, &r2) == 0 && r2.found &&
	   r2.start_lsn == 100 && r2.end_lsn == 160 && r2.prev_lsn == 40 && r2.scl == 500,
	   "RECORD_BEFORE round trip");
	buf[0] = 2;
	is_int(aurora_record_before_decode(buf, n, &r2), AURORA_ERR_MALFORMED,
		   "a 'found' byte other than 0 or 1 is malformed");
}

static void
test_segments_resp(void)
{
	aurora_segment_state s,
			   *got;
	uint8_t		buf[1024];
	aurora_buf	b;
	int			n;

	memset(&s, 0, sizeof(s));
	s.volume_id = 0x1122334455667788ull;
	s.pg_id = 7;
	s.replica_index = 5;
	s.scl = 1000;
	s.highest_lsn = 2000;
	s.records = 10;
	s.bytes_on_disk = 4096;
	s.volume_epoch = 3;
	s.membership_epoch = 2;
	s.n_holes = 20;
	s.n_holes_listed = 2;
	s.holes[0][0] = 1000;
	s.holes[0][1] = 1500;
	s.holes[1][0] = 1600;
	s.holes[1][1] = 1700;
	snprintf(s.recovery_note, sizeof(s.recovery_note), "cut 36 bytes");
	s.peer_scl = 2500;
	s.records_from_peers = 42;
	s.indexed_lsn = 2400;
	s.page_images = 7;

	aurora_buf_init_writer(&b, buf, sizeof(buf));
	aurora_buf_put_u32(&b, 1);
	aurora_segment_state_put(&b, &s);
	ok(aurora_buf_ok(&b), "SEGMENTS_RESP encodes");
	is_int(aurora_segments_resp_decode(buf, aurora_buf_len(&b), &got, &n), 0, "and decodes");
	ok(n == 1 && memcmp(&s, &got[0], sizeof(s)) == 0, "round trip is exact");
	free(got);
	buf[3] = 0x40;				/* count = 0x40000001 */
	is_int(aurora_segments_resp_decode(buf, aurora_buf_len(&b), &got, &n), AURORA_ERR_MALFORMED,
		   "a hostile count is refused");
}

int
main(void)
{
	test_create_segment();
	test_records();
	test_small_bodies();
	test_segments_resp();
	test_record_before();
	return done_testing();
}
