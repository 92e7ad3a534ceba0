/*
 * test_walmeta.c - unit tests of the record envelope codec
 * (common/walmeta.c): the layout is pinned byte for byte (it is stored in
 * every segment log), a round trip keeps every field, and every malformed
 * envelope is refused with a reason instead of being indexed.
 */
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"
#include "walmeta.h"

static size_t
build(uint8_t *out, size_t cap, const aurora_walmeta_block *blocks, int nb,
	  const aurora_walmeta_event *events, int ne, uint32_t wal_len)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_walmeta_put(&b, blocks, nb, events, ne);
	if (!aurora_buf_ok(&b) || aurora_buf_len(&b) + wal_len > cap)
		bail_out("test buffer too small");
	fake_wal(out + aurora_buf_len(&b), wal_len);
	return aurora_buf_len(&b) + wal_len;
}

static void
test_layout(void)
{
	aurora_walmeta_block blk = {{1663, 5, 16384, 2, 7}, AURORA_BLOCK_IMPLICIT};
	aurora_walmeta_event ev = {AURORA_REL_TRUNCATE, 1663, 5, 16384, 0, 3};
	uint8_t		buf[256];
	static const uint8_t expected_head[] = {
		1, 0, 1, 0, 1, 0, 0, 0,	/* version, flags, n_blocks, n_events */
		0x7f, 0x06, 0, 0, 5, 0, 0, 0, 0, 0x40, 0, 0, 2, 7, 0, 0, 0, 2,
		2, 0x7f, 0x06, 0, 0, 5, 0, 0, 0, 0, 0x40, 0, 0, 0, 3, 0, 0, 0,
	};
	size_t		n = build(buf, sizeof(buf), &blk, 1, &ev, 1, 24);

	is_int(aurora_walmeta_size(1, 1), sizeof(expected_head), "size: 8 + 18 per block + 18 per event");
	is_int(n, sizeof(expected_head) + 24, "envelope then the WAL record");
	ok(memcmp(buf, expected_head, sizeof(expected_head)) == 0, "bytes as PROTOCOL.md 11 says");
}

static void
test_round_trip(void)
{
	aurora_walmeta_block blocks[3] = {
		{{1663, 5, 16384, 0, 0}, AURORA_BLOCK_WILL_INIT},
		{{1663, 5, 16384, 0, 4000000000u}, 0},
		{{1664, 0, 1262, 2, 1}, AURORA_BLOCK_IMPLICIT},
	};
	aurora_walmeta_event events[2] = {
		{AURORA_REL_DROP, 1663, 5, 16390, 0, 0},
		{AURORA_REL_DROP_DATABASE, 1663, 7, 0, 0, 0},
	};
	uint8_t		buf[512];
	size_t		n = build(buf, sizeof(buf), blocks, 3, events, 2, 100);
	aurora_walmeta m;
	aurora_walmeta_block b;
	aurora_walmeta_event e;
	char		err[128];
	uint32_t	wal_len;
	const uint8_t *wal;

	is_int(aurora_walmeta_decode(buf, n, &m, err, sizeof(err)), 0, "decodes");
	is_int(m.n_blocks, 3, "three blocks");
	is_int(m.n_events, 2, "two events");
	aurora_walmeta_block_at(&m, 1, &b);
	is_uint(b.ref.blkno, 4000000000u, "a block number above 2^31 survives");
	is_int(b.flags, 0, "with its flags");
	aurora_walmeta_block_at(&m, 2, &b);
	ok(b.ref.spc_oid == 1664 && b.ref.db_oid == 0 && b.ref.rel_number == 1262 &&
	   b.ref.fork == 2 && b.flags == AURORA_BLOCK_IMPLICIT, "every field of the last block");
	aurora_walmeta_event_at(&m, 1, &e);
	ok(e.op == AURORA_REL_DROP_DATABASE && e.db_oid == 7, "the events in order");
	is_int(m.wal_len, 100, "the WAL record's length");
	ok(m.wal == buf + n - 100, "and where it starts");
	wal = aurora_walmeta_wal(buf, n, &wal_len);
	ok(wal == m.wal && wal_len == 100, "aurora_walmeta_wal finds it too");

	n = build(buf, sizeof(buf), NULL, 0, NULL, 0, 24);
	is_int(aurora_walmeta_decode(buf, n, &m, err, sizeof(err)), 0, "an envelope without blocks or events");
	is_int(m.wal_len, 24, "around the shortest WAL record");
}

static void
expect_malformed(const uint8_t *buf, size_t n, const char *why, const char *what)
{
	aurora_walmeta m;
	char		err[128] = "";

	is_int(aurora_walmeta_decode(buf, n, &m, err, sizeof(err)), AURORA_ERR_MALFORMED, "%s is refused", what);
	like(err, why, "saying so");
}

static void
test_malformed(void)
{
	aurora_walmeta_block blk = {{1663, 5, 16384, 0, 1}, 0};
	aurora_walmeta_event ev = {AURORA_REL_CREATE, 1663, 5, 16384, 0, 0};
	uint8_t		buf[256];
	uint8_t		bad[256];
	size_t		n = build(buf, sizeof(buf), &blk, 1, &ev, 1, 40);
	uint32_t	wal_len;

	expect_malformed(buf, 5, "shorter than its header", "a cut header");
	memcpy(bad, buf, n);
	bad[0] = 2;
	expect_malformed(bad, n, "unknown version", "version 2");
	memcpy(bad, buf, n);
	bad[1] = 1;
	expect_malformed(bad, n, "reserved flags", "reserved flags");
	memcpy(bad, buf, n);
	bad[2] = 200;
	expect_malformed(bad, n, "too many blocks", "200 blocks");
	memcpy(bad, buf, n);
	bad[4] = 0xff;
	bad[5] = 0xff;
	bad[6] = 0xff;
	bad[7] = 0xff;
	expect_malformed(bad, n, "shorter than its block and event lists", "2^32-1 events");
	memcpy(bad, buf, n);
	bad[8 + 17] = 0x80;
	expect_malformed(bad, n, "unknown block flags", "an unknown block flag");
	memcpy(bad, buf, n);
	bad[8 + 18] = 9;
	expect_malformed(bad, n, "unknown relation event", "event op 9");
	expect_malformed(buf, n - 40 + 20, "no WAL record", "a 20-byte WAL record");
	expect_malformed(buf, n - 1, "xl_tot_len", "a WAL record one byte short");
	ok(aurora_walmeta_wal(buf, n - 1, &wal_len) == NULL && wal_len == 0,
	   "aurora_walmeta_wal returns NULL for it");
}

/* aurora_walmeta_pgs: where a record must be found (PROTOCOL.md 10, 11). */
static void
test_pgs(void)
{
	aurora_geometry g = {16, 131072};
	aurora_walmeta_block blocks[3] = {
		{{1663, 5, 16384, 0, 0}, 0},
		{{1663, 5, 16384, 0, 1}, 0},	/* same chunk: same PG */
		{{1663, 5, 16390, 0, 0}, 0},
	};
	aurora_walmeta_event ev = {AURORA_REL_CREATE, 1663, 5, 16384, 0, 0};
	uint8_t		buf[512];
	uint32_t	pgs[AURORA_WALMETA_MAX_BLOCKS];
	aurora_walmeta m;
	size_t		n;
	int			np;
	uint32_t	p0 = aurora_block_pg(&g, &blocks[0].ref);
	uint32_t	p2 = aurora_block_pg(&g, &blocks[2].ref);

	n = build(buf, sizeof(buf), NULL, 0, NULL, 0, 24);
	aurora_walmeta_decode(buf, n, &m, NULL, 0);
	np = aurora_walmeta_pgs(&m, &g, pgs);
	ok(np == 1 && pgs[0] == 0, "a record without blocks goes to PG 0");

	n = build(buf, sizeof(buf), blocks, 3, NULL, 0, 24);
	aurora_walmeta_decode(buf, n, &m, NULL, 0);
	np = aurora_walmeta_pgs(&m, &g, pgs);
	is_int(np, p0 == p2 ? 1 : 2, "one PG per distinct chunk");
	ok(pgs[0] == p0 && (np == 1 || pgs[1] == p2), "the PGs of its blocks, in order");

	n = build(buf, sizeof(buf), blocks, 1, &ev, 1, 24);
	aurora_walmeta_decode(buf, n, &m, NULL, 0);
	is_int(aurora_walmeta_pgs(&m, &g, pgs), AURORA_WALMETA_EVERY_PG,
		   "a record with relation events goes to every PG");
}

int
main(void)
{
	test_pgs();
	test_layout();
	test_round_trip();
	test_malformed();
	return done_testing();
}
