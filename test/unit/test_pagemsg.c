/*
 * test_pagemsg.c - the page service's message bodies (common/pagemsg.c):
 * layouts pinned byte for byte against PROTOCOL.md 5.9, round trips, and
 * short, long or inconsistent bodies refused as MALFORMED.
 */
#include <stdlib.h>
#include <string.h>

#include "pagemsg.h"
#include "tap.h"
#include "wire.h"

static void
test_getpage(void)
{
	aurora_getpage_req r = {{0x11223344, 5, 16384, 2, 7}, 0x0000000100000028ull, 250};
	aurora_getpage_req d;
	uint8_t		b[64];
	static const uint8_t expected[] = {
		0x44, 0x33, 0x22, 0x11, 5, 0, 0, 0, 0x00, 0x40, 0, 0, 2, 7, 0, 0, 0,
		0x28, 0, 0, 0, 1, 0, 0, 0, 250, 0, 0, 0
	};
	size_t		n = aurora_getpage_req_encode(&r, b, sizeof(b));

	is_int(n, AURORA_GETPAGE_REQ_SIZE, "GETPAGE_REQ is 29 bytes");
	ok(n == sizeof(expected) && memcmp(b, expected, n) == 0,
	   "GETPAGE_REQ: spc, db, rel, fork, blkno, lsn, wait_ms little-endian");
	ok(aurora_getpage_req_decode(b, n, &d) == 0 && d.block.spc_oid == 0x11223344 &&
	   d.block.fork == 2 && d.block.blkno == 7 && d.lsn == r.lsn && d.wait_ms == 250,
	   "GETPAGE_REQ round-trips");
	is_int(aurora_getpage_req_decode(b, n - 1, &d), AURORA_ERR_MALFORMED, "short GETPAGE_REQ");
	b[n] = 0;
	is_int(aurora_getpage_req_decode(b, n + 1, &d), AURORA_ERR_MALFORMED, "long GETPAGE_REQ");
}

static void
test_page(void)
{
	aurora_page_resp *p = malloc(sizeof(*p));
	aurora_page_resp *d = malloc(sizeof(*d));
	uint8_t    *b = malloc(AURORA_PAGE_RESP_SIZE + 1);
	size_t		n;

	p->page_lsn = 0x0102030405060708ull;
	p->checksum = 0xbeef;
	for (int i = 0; i < AURORA_PAGE_BYTES; i++)
		p->page[i] = (uint8_t) (i * 31);
	n = aurora_page_resp_encode(p, b, AURORA_PAGE_RESP_SIZE + 1);
	is_int(n, 8 + 2 + 8192, "PAGE is page_lsn, checksum, 8192 bytes");
	ok(b[0] == 0x08 && b[7] == 0x01 && b[8] == 0xef && b[9] == 0xbe && b[10] == 0 && b[11] == 31,
	   "PAGE layout");
	ok(aurora_page_resp_decode(b, n, d) == 0 && d->page_lsn == p->page_lsn &&
	   d->checksum == 0xbeef && memcmp(d->page, p->page, AURORA_PAGE_BYTES) == 0, "PAGE round-trips");
	is_int(aurora_page_resp_decode(b, n - 1, d), AURORA_ERR_MALFORMED, "short PAGE");
	is_int(aurora_page_resp_encode(p, b, n - 1), 0, "PAGE does not fit a short buffer");
	free(p);
	free(d);
	free(b);
}

static void
test_rel_size(void)
{
	aurora_rel_size_req r = {1663, 5, 16384, 1, 99, 10};
	aurora_rel_size_req d;
	aurora_rel_size_resp rs = {true, 0x01020304};
	aurora_rel_size_resp ds;
	uint8_t		b[64];
	size_t		n = aurora_rel_size_req_encode(&r, b, sizeof(b));

	is_int(n, AURORA_REL_SIZE_REQ_SIZE, "REL_SIZE_REQ is 25 bytes");
	ok(b[12] == 1 && b[13] == 99 && b[21] == 10, "REL_SIZE_REQ layout: fork at 12, lsn at 13, wait at 21");
	ok(aurora_rel_size_req_decode(b, n, &d) == 0 && d.rel_number == 16384 && d.fork == 1 &&
	   d.lsn == 99 && d.wait_ms == 10, "REL_SIZE_REQ round-trips");
	is_int(aurora_rel_size_req_decode(b, n - 1, &d), AURORA_ERR_MALFORMED, "short REL_SIZE_REQ");
	n = aurora_rel_size_resp_encode(&rs, b, sizeof(b));
	ok(n == 5 && b[0] == 1 && b[1] == 4 && b[4] == 1, "REL_SIZE: exists u8, nblocks u32");
	ok(aurora_rel_size_resp_decode(b, n, &ds) == 0 && ds.exists && ds.nblocks == 0x01020304,
	   "REL_SIZE round-trips");
	b[0] = 2;
	is_int(aurora_rel_size_resp_decode(b, n, &ds), AURORA_ERR_MALFORMED, "exists must be 0 or 1");
}

static void
test_seed(void)
{
	uint8_t    *pg = malloc(2 * AURORA_PAGE_BYTES);
	aurora_seed_page in[2];
	aurora_seed_page *out;
	size_t		cap = aurora_seed_pages_size(2);
	uint8_t    *b = malloc(cap + 1);
	uint64_t	lsn;
	int			n;
	size_t		len;
	uint32_t	stored;

	memset(pg, 0xaa, AURORA_PAGE_BYTES);
	memset(pg + AURORA_PAGE_BYTES, 0xbb, AURORA_PAGE_BYTES);
	in[0].block = (aurora_block_ref) {1663, 5, 16384, 0, 0};
	in[0].page = pg;
	in[1].block = (aurora_block_ref) {1663, 5, 16384, 0, 1};
	in[1].page = pg + AURORA_PAGE_BYTES;
	len = aurora_seed_pages_encode(77, in, 2, b, cap);
	is_int(len, 12 + 2 * (17 + 8192), "SEED_PAGES: lsn, count, count x (tag, page)");
	ok(b[0] == 77 && b[8] == 2 && b[12] == 0x7f && b[12 + 17] == 0xaa, "SEED_PAGES layout");
	ok(aurora_seed_pages_decode(b, len, &lsn, &out, &n) == 0 && n == 2 && lsn == 77 &&
	   out[1].block.blkno == 1 && out[1].page == b + 12 + AURORA_SEED_PAGE_SIZE + 17 &&
	   out[1].page[0] == 0xbb, "SEED_PAGES decodes without copying pages");
	free(out);
	is_int(aurora_seed_pages_decode(b, len - 1, &lsn, &out, &n), AURORA_ERR_MALFORMED, "short SEED_PAGES");
	b[len] = 0;
	is_int(aurora_seed_pages_decode(b, len + 1, &lsn, &out, &n), AURORA_ERR_MALFORMED, "long SEED_PAGES");
	b[8] = 3;
	is_int(aurora_seed_pages_decode(b, len, &lsn, &out, &n), AURORA_ERR_MALFORMED,
		   "a count the body cannot hold");
	b[8] = 0;
	is_int(aurora_seed_pages_decode(b, 12, &lsn, &out, &n), AURORA_ERR_MALFORMED, "zero pages");
	is_int(aurora_seed_pages_encode(1, in, 0, b, cap), 0, "encoding zero pages is refused");
	len = aurora_seed_ack_encode(9, b, cap);
	ok(len == 4 && aurora_seed_ack_decode(b, len, &stored) == 0 && stored == 9, "SEED_ACK round-trips");
	free(pg);
	free(b);
}

static void
test_names(void)
{
	is_str(aurora_msg_type_name(AURORA_MSG_GETPAGE_REQ), "GETPAGE_REQ", "type 15");
	is_str(aurora_msg_type_name(AURORA_MSG_SEED_ACK), "SEED_ACK", "type 20");
	is_str(aurora_error_name(AURORA_ERR_NOT_READY), "NOT_READY", "error 14");
	is_str(aurora_error_name(AURORA_ERR_UNAVAILABLE), "UNAVAILABLE", "error 19");
	is_int(AURORA_ERR_COUNT, 21, "21 counter slots (codes 1-20: EPOCH_NOT_OPEN is 20)");
}

int
main(void)
{
	test_getpage();
	test_page();
	test_rel_size();
	test_seed();
	test_names();
	return done_testing();
}
