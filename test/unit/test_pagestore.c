/*
 * test_pagestore.c - the page store (node/pagestore.c) on a real LMDB
 * environment in a temporary directory, and the page service
 * (node/pageservice.c, indexer.c, coalesce.c) driven through the request
 * handler in-process with a real segment store: indexing of envelopes from the log, relation sizes,
 * which base and records a page is built from, the error codes, waiting
 * for the log, rebuild after the index is lost, and a malformed envelope.
 *
 * Pages that need WAL redo are not rebuilt here (no helper is configured:
 * they must fail with UNAVAILABLE); the redo path itself is A's pool.
 */
#define _DEFAULT_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handler.h"
#include "logmsg.h"
#include "pagemsg.h"
#include "pageservice.h"
#include "pagestore.h"
#include "segment.h"
#include "segment_table.h"
#include "tap.h"
#include "testutil.h"
#include "util.h"
#include "walmeta.h"

#define SPC 1663
#define DB 5
#define REL 16384

static const aurora_geometry one_pg = {1, 1024};

static aurora_block_ref
blk(uint32_t rel, uint8_t fork, uint32_t blkno)
{
	aurora_block_ref b;

	memset(&b, 0, sizeof(b));
	b.spc_oid = SPC;
	b.db_oid = DB;
	b.rel_number = rel;
	b.fork = fork;
	b.blkno = blkno;
	return b;
}

/* envelope || fake WAL record into out; returns its length */
static size_t
payload(uint8_t *out, size_t cap, const aurora_walmeta_block *blocks, int nb,
		const aurora_walmeta_event *events, int ne)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_walmeta_put(&b, blocks, nb, events, ne);
	if (!aurora_buf_ok(&b) || aurora_buf_len(&b) + 32 > cap)
		bail_out("payload buffer too small");
	fake_wal(out + aurora_buf_len(&b), 32);
	return aurora_buf_len(&b) + 32;
}

static void
page_of(uint8_t *page, uint8_t fill, uint64_t lsn)
{
	memset(page, fill, AURORA_PAGE_BYTES);
	/* pd_lsn as PostgreSQL stores it on little-endian hosts: xlogid, xrecoff */
	for (int i = 0; i < 4; i++)
	{
		page[i] = (uint8_t) ((lsn >> 32) >> (8 * i));
		page[4 + i] = (uint8_t) (lsn >> (8 * i));
	}
	page[8] = 0x34;
	page[9] = 0x12;
}

/* Index one record through a store transaction. */
static void
index_one(aurora_pagestore *ps, const aurora_geometry *g, uint32_t pg, uint64_t start,
		  uint64_t end, const aurora_walmeta_block *blocks, int nb,
		  const aurora_walmeta_event *events, int ne)
{
	uint8_t		buf[4096];
	size_t		len = payload(buf, sizeof(buf), blocks, nb, events, ne);
	aurora_walmeta m;
	aurora_pagestore_txn *t;
	aurora_pagestore_pos pos = {start, end, end};
	char		err[256];
	int			nt;

	if (aurora_walmeta_decode(buf, len, &m, err, sizeof(err)) != 0)
		bail_out("envelope does not decode: %s", err);
	if (aurora_pagestore_begin(ps, &t, err, sizeof(err)) != 0 ||
		aurora_pagestore_index_record(t, g, pg, start, end, &m, NULL, 0, &nt, err, sizeof(err)) != 0 ||
		aurora_pagestore_commit(t, &pos, err, sizeof(err)) != 0)
		bail_out("indexing failed: %s", err);
}

static int
plan_rc(aurora_pagestore *ps, aurora_block_ref b, uint64_t lsn, aurora_page_plan *plan)
{
	char		err[512];
	int			rc = aurora_pagestore_plan(ps, &b, lsn, plan, err, sizeof(err));

	if (rc != 0)
		diag("plan: %s", err);
	return rc;
}

static void
test_store(const char *tmp)
{
	char		dir[600];
	aurora_pagestore *ps;
	bool		rebuilt;
	char		err[512];
	aurora_pagestore_pos pos;
	aurora_page_plan plan;
	uint8_t		page[AURORA_PAGE_BYTES];
	bool		known,
				exists;
	uint32_t	nblocks;
	aurora_block_ref b0 = blk(REL, 0, 0);
	uint64_t	newest;
	bool		from_init;

	snprintf(dir, sizeof(dir), "%s/pages", tmp);
	ok(aurora_pagestore_open(dir, &ps, &rebuilt, err, sizeof(err)) == 0 && !rebuilt,
	   "a new page store opens");
	aurora_pagestore_get_pos(ps, &pos);
	ok(pos.scl == 0 && pos.last_start == 0, "a new store has indexed nothing");

	{
		aurora_walmeta_block init = {b0, AURORA_BLOCK_WILL_INIT};
		aurora_walmeta_block plain = {b0, 0};
		aurora_walmeta_event create = {AURORA_REL_CREATE, SPC, DB, REL, 0, 0};

		index_one(ps, &one_pg, 0, 50, 100, NULL, 0, &create, 1);
		index_one(ps, &one_pg, 0, 100, 200, &init, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 200, 300, &plain, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 300, 400, &plain, 1, NULL, 0);
	}
	aurora_pagestore_get_pos(ps, &pos);
	ok(pos.last_start == 300 && pos.last_end == 400 && pos.scl == 400,
	   "the position is committed with the entries");

	aurora_pagestore_rel_size(ps, SPC, DB, REL, 0, 60, &known, &exists, &nblocks);
	ok(!known && !exists, "before CREATE the fork is unknown");
	aurora_pagestore_rel_size(ps, SPC, DB, REL, 0, 150, &known, &exists, &nblocks);
	ok(known && exists && nblocks == 0, "CREATE: exists with 0 blocks (%u)", nblocks);
	aurora_pagestore_rel_size(ps, SPC, DB, REL, 0, 200, &known, &exists, &nblocks);
	ok(known && exists && nblocks == 1, "a registered block 0 at end 200 makes it 1 block");

	is_int(plan_rc(ps, b0, 350, &plan), 0, "block 0 at 350 is servable");
	ok(!plan.has_image && plan.n_recs == 2 && plan.rec_start[0] == 100 && plan.rec_end[0] == 200 &&
	   plan.rec_start[1] == 200 && plan.rec_end[1] == 300,
	   "no image: the WILL_INIT record and the one after it, oldest first, none past the LSN");
	aurora_page_plan_free(&plan);
	is_int(plan_rc(ps, b0, 200, &plan), 0, "block 0 at exactly the init record's end");
	ok(plan.n_recs == 1 && plan.rec_end[0] == 200, "only the WILL_INIT record");
	aurora_page_plan_free(&plan);
	is_int(plan_rc(ps, b0, 150, &plan), AURORA_ERR_NO_BLOCK,
		   "before the record that extends the fork to block 0: NO_BLOCK");
	is_int(aurora_pagestore_chain_length(ps, &b0, 100, &newest, &from_init), 3, "chain after the base: 3 records");
	ok(from_init, "starting from the initializing record");
	is_uint(newest, 400, "newest record of the block ends at 400");

	/* an image (as coalescing stores it) cuts the chain */
	page_of(page, 0xab, 300);
	{
		aurora_page_image *im = calloc(1, sizeof(*im));

		im->block = b0;
		im->lsn = 300;
		memcpy(im->page, page, AURORA_PAGE_BYTES);
		ok(aurora_pagestore_put_images(ps, im, 1, err, sizeof(err)) == 0, "image stored at 300");
		free(im);
	}
	is_int(plan_rc(ps, b0, 300, &plan), 0, "block 0 at the image's LSN");
	ok(plan.has_image && plan.image_lsn == 300 && plan.n_recs == 0 &&
	   memcmp(plan.image, page, AURORA_PAGE_BYTES) == 0, "the image alone, byte for byte");
	aurora_page_plan_free(&plan);
	is_int(plan_rc(ps, b0, 450, &plan), 0, "block 0 after the image");
	ok(plan.has_image && plan.n_recs == 1 && plan.rec_start[0] == 300, "image + the one later record");
	aurora_page_plan_free(&plan);
	is_int(plan_rc(ps, b0, 250, &plan), 0, "block 0 between init and image");
	ok(!plan.has_image && plan.n_recs == 1 && plan.rec_end[0] == 200,
	   "older LSNs still come from the records (the image is newer)");
	aurora_page_plan_free(&plan);
	is_int(aurora_pagestore_chain_length(ps, &b0, 100, &newest, &from_init), 1, "chain after the image: 1 record");
	ok(!from_init, "which starts from the image, not from an initializing record");

	/* sizes: extension, implicit pages, truncation, drop, re-create */
	{
		aurora_walmeta_block b5 = {blk(REL, 0, 5), 0};
		aurora_walmeta_block vm = {blk(REL, 2, 3), AURORA_BLOCK_IMPLICIT};
		aurora_walmeta_event trunc = {AURORA_REL_TRUNCATE, SPC, DB, REL, 0, 2};
		aurora_walmeta_event drop = {AURORA_REL_DROP, SPC, DB, REL, 0, 0};
		aurora_walmeta_event create = {AURORA_REL_CREATE, SPC, DB, REL, 0, 0};

		index_one(ps, &one_pg, 0, 400, 500, &b5, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 500, 550, &vm, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 550, 600, NULL, 0, &trunc, 1);
		aurora_pagestore_rel_size(ps, SPC, DB, REL, 0, 500, &known, &exists, &nblocks);
		is_uint(nblocks, 6, "block 5 registered: 6 blocks");
		aurora_pagestore_rel_size(ps, SPC, DB, REL, 2, 560, &known, &exists, &nblocks);
		ok(!known, "an IMPLICIT visibility-map page does not make the VM fork exist");
		aurora_pagestore_rel_size(ps, SPC, DB, REL, 0, 600, &known, &exists, &nblocks);
		ok(exists && nblocks == 2, "TRUNCATE to 2: 2 blocks (%u)", nblocks);
		is_int(plan_rc(ps, blk(REL, 0, 5), 500, &plan), AURORA_ERR_BELOW_HORIZON,
			   "block 5 before truncation has records but no base");
		is_int(plan_rc(ps, blk(REL, 2, 3), 560, &plan), 0,
			   "a visibility-map page with records but no base is served");
		ok(!plan.has_image && plan.n_recs == 1 && plan.rec_start[0] == 500 && plan.rec_end[0] == 550,
		   "... from zeros with every record of the block, as PostgreSQL's redo reads a missing map page");
		aurora_page_plan_free(&plan);
		is_int(plan_rc(ps, blk(REL, 0, 5), 600, &plan), AURORA_ERR_NO_BLOCK,
			   "block 5 after truncation to 2: NO_BLOCK");
		is_int(plan_rc(ps, blk(REL, 0, 3), 500, &plan), AURORA_ERR_NO_BLOCK,
			   "block 3 within the size but never written: NO_BLOCK");
		is_int(plan_rc(ps, blk(REL + 1, 0, 0), 500, &plan), AURORA_ERR_NO_RELATION,
			   "an unknown relation: NO_RELATION");
		index_one(ps, &one_pg, 0, 600, 700, NULL, 0, &drop, 1);
		aurora_pagestore_rel_size(ps, SPC, DB, REL, 0, 700, &known, &exists, &nblocks);
		ok(known && !exists && nblocks == 0, "DROP: gone");
		is_int(plan_rc(ps, b0, 700, &plan), AURORA_ERR_NO_RELATION, "a page of a dropped relation: NO_RELATION");
		index_one(ps, &one_pg, 0, 700, 800, NULL, 0, &create, 1);
		aurora_pagestore_rel_size(ps, SPC, DB, REL, 0, 800, &known, &exists, &nblocks);
		ok(exists && nblocks == 0, "CREATE after DROP: exists, empty");
		aurora_pagestore_rel_size(ps, SPC, DB, REL, 0, 450, &known, &exists, &nblocks);
		ok(exists && nblocks == 1, "history: at 450 still 1 block");
	}

	/* DROP_DATABASE drops every relation of the database, not others */
	{
		aurora_walmeta_block a = {blk(900, 0, 0), 0};
		aurora_walmeta_block bb = {blk(901, 1, 2), 0};
		aurora_walmeta_block other = {{SPC, DB + 1, 900, 0, 0}, 0};
		aurora_walmeta_event dropdb = {AURORA_REL_DROP_DATABASE, SPC, DB, 0, 0, 0};

		index_one(ps, &one_pg, 0, 800, 810, &a, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 810, 820, &bb, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 820, 830, &other, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 830, 900, NULL, 0, &dropdb, 1);
		aurora_pagestore_rel_size(ps, SPC, DB, 900, 0, 900, &known, &exists, &nblocks);
		ok(known && !exists, "DROP_DATABASE: relation 900 gone");
		aurora_pagestore_rel_size(ps, SPC, DB, 901, 1, 900, &known, &exists, &nblocks);
		ok(known && !exists, "DROP_DATABASE: relation 901's fsm fork gone");
		aurora_pagestore_rel_size(ps, SPC, DB + 1, 900, 0, 900, &known, &exists, &nblocks);
		ok(known && exists && nblocks == 1, "another database is untouched");
	}

	/* blocks of other PGs in a record are not indexed */
	{
		aurora_geometry four = {4, 1};
		aurora_walmeta_block many[8];
		int			mine = 0;

		for (int i = 0; i < 8; i++)
		{
			many[i].ref = blk(777, 0, (uint32_t) i);
			many[i].flags = AURORA_BLOCK_WILL_INIT;
			if (aurora_block_pg(&four, &many[i].ref) == 1)
				mine++;
		}
		index_one(ps, &four, 1, 900, 1000, many, 8, NULL, 0);
		{
			int			served = 0;

			for (int i = 0; i < 8; i++)
			{
				int			rc = aurora_pagestore_plan(ps, &many[i].ref, 1000, &plan, err, sizeof(err));

				if (rc == 0)
					served++;
				aurora_page_plan_free(&plan);
				if ((rc == 0) != (aurora_block_pg(&four, &many[i].ref) == 1))
					diag("block %d: rc %d, pg %u", i, rc, aurora_block_pg(&four, &many[i].ref));
			}
			ok(mine > 0 && mine < 8 && served == mine,
			   "only the blocks of this segment's PG are indexed (%d of 8)", served);
		}
	}

	/* seeded images: durable, exist, sized */
	{
		aurora_seed_page sp[2];
		uint8_t		p1[AURORA_PAGE_BYTES],
					p2[AURORA_PAGE_BYTES];

		page_of(p1, 1, 1100);
		page_of(p2, 2, 1100);
		sp[0].block = blk(555, 0, 0);
		sp[0].page = p1;
		sp[1].block = blk(555, 0, 3);
		sp[1].page = p2;
		ok(aurora_pagestore_seed(ps, 1100, sp, 2, err, sizeof(err)) == 0, "two pages seeded");
		aurora_pagestore_rel_size(ps, SPC, DB, 555, 0, 1100, &known, &exists, &nblocks);
		ok(exists && nblocks == 4, "seeded block 3: the fork exists with 4 blocks");
		is_int(plan_rc(ps, blk(555, 0, 3), 2000, &plan), 0, "a seeded page later on");
		ok(plan.has_image && plan.n_recs == 0 && memcmp(plan.image, p2, AURORA_PAGE_BYTES) == 0,
		   "is the seeded image");
		aurora_page_plan_free(&plan);
		is_int(plan_rc(ps, blk(555, 0, 3), 1099, &plan), AURORA_ERR_BELOW_HORIZON,
			   "a seeded page below its seed LSN: BELOW_HORIZON");
	}

	/* survives close/open */
	aurora_pagestore_close(ps);
	ok(aurora_pagestore_open(dir, &ps, &rebuilt, err, sizeof(err)) == 0 && !rebuilt, "reopens");
	aurora_pagestore_get_pos(ps, &pos);
	is_uint(pos.scl, 1000, "the position survives a reopen");
	is_int(plan_rc(ps, b0, 450, &plan), 0, "entries survive a reopen");
	aurora_page_plan_free(&plan);

	/* the log was cut: entries above the cut go */
	{
		aurora_pagestore_pos back = {200, 300, 300};

		ok(aurora_pagestore_discard_above(ps, 300, &back, err, sizeof(err)) == 0, "discard above 300");
		aurora_pagestore_get_pos(ps, &pos);
		ok(pos.scl == 300 && pos.last_start == 200, "position moved back");
		is_int(plan_rc(ps, b0, 450, &plan), 0, "block 0 at 450 after the cut");
		ok(plan.has_image && plan.image_lsn == 300 && plan.n_recs == 0,
		   "the record at 400 is gone, the image at 300 kept");
		aurora_page_plan_free(&plan);
		aurora_pagestore_rel_size(ps, SPC, DB, REL, 0, 2000, &known, &exists, &nblocks);
		ok(exists && nblocks == 1, "size entries above the cut are gone");
	}
	aurora_pagestore_close(ps);

	/* damaged environment: moved aside, recreated empty */
	{
		char		f[700];
		FILE	   *fp;
		struct stat sb;

		snprintf(f, sizeof(f), "%s/data.mdb", dir);
		fp = fopen(f, "r+");
		if (fp != NULL)
		{
			char		junk[8192];

			memset(junk, 0x5a, sizeof(junk));
			fwrite(junk, 1, sizeof(junk), fp);
			fclose(fp);
		}
		ok(aurora_pagestore_open(dir, &ps, &rebuilt, err, sizeof(err)) == 0 && rebuilt,
		   "a damaged page store is replaced by an empty one");
		aurora_pagestore_get_pos(ps, &pos);
		ok(pos.scl == 0, "... which starts indexing from the beginning");
		snprintf(f, sizeof(f), "%s.broken", dir);
		ok(stat(f, &sb) == 0 && S_ISDIR(sb.st_mode), "the damaged one is kept as pages.broken");
		aurora_pagestore_close(ps);
	}
}

/*
 * Blocks inside a relation's size that no record reaches yet (PostgreSQL
 * extends a heap by many blocks at once, without WAL, under contention for
 * the extension lock): below their first record they are not written yet,
 * which is NO_BLOCK (a zero page to the reader), not BELOW_HORIZON.
 */
static void
test_unwritten_history(const char *tmp)
{
	char		dir[600];
	aurora_pagestore *ps;
	bool		rebuilt;
	char		err[512];
	aurora_page_plan plan;
	const uint32_t rel = 600;

	snprintf(dir, sizeof(dir), "%s/pages-extended", tmp);
	if (aurora_pagestore_open(dir, &ps, &rebuilt, err, sizeof(err)) != 0)
		bail_out("page store: %s", err);
	{
		aurora_walmeta_event create = {AURORA_REL_CREATE, SPC, DB, rel, 0, 0};
		aurora_walmeta_block used = {blk(rel, 0, 7), AURORA_BLOCK_WILL_INIT};
		aurora_walmeta_block init2 = {blk(rel, 0, 2), AURORA_BLOCK_WILL_INIT};
		aurora_walmeta_block plain2 = {blk(rel, 0, 2), 0};
		aurora_walmeta_block plain4 = {blk(rel, 0, 4), 0};
		aurora_walmeta_block vm1 = {blk(rel, 2, 1), 0};
		aurora_walmeta_block vm0 = {blk(rel, 2, 0), 0};
		aurora_walmeta_block init6 = {blk(rel, 0, 6), AURORA_BLOCK_WILL_INIT};

		index_one(ps, &one_pg, 0, 10, 20, NULL, 0, &create, 1);
		index_one(ps, &one_pg, 0, 20, 30, &used, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 40, 50, &init2, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 50, 60, &plain2, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 60, 70, &plain4, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 70, 80, &vm1, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 80, 95, &vm0, 1, NULL, 0);
		index_one(ps, &one_pg, 0, 95, 100, &init6, 1, NULL, 0);
	}
	{
		aurora_page_image *im = calloc(1, sizeof(*im));

		im->block = blk(rel, 0, 5);
		im->lsn = 90;
		page_of(im->page, 0x55, 90);
		if (aurora_pagestore_put_images(ps, im, 1, err, sizeof(err)) != 0)
			bail_out("image: %s", err);
		/* what coalescing stores at once for a page set whole by its record */
		im->block = blk(rel, 0, 6);
		im->lsn = 100;
		page_of(im->page, 0x66, 100);
		if (aurora_pagestore_put_images(ps, im, 1, err, sizeof(err)) != 0)
			bail_out("image: %s", err);
		free(im);
	}

	is_int(plan_rc(ps, blk(rel, 0, 2), 30, &plan), AURORA_ERR_NO_BLOCK,
		   "a block of the extended relation whose first record (initializing) comes later: NO_BLOCK");
	is_int(aurora_pagestore_plan(ps, &(aurora_block_ref) {SPC, DB, rel, 0, 2}, 30, &plan, err, sizeof(err)),
		   AURORA_ERR_NO_BLOCK, "... asked again");
	like(err, "not written at or below", "... saying it was not written yet at that LSN");
	is_int(plan_rc(ps, blk(rel, 0, 2), 50, &plan), 0, "the same block at its initializing record");
	ok(!plan.has_image && plan.n_recs == 1 && plan.rec_end[0] == 50, "... is built from that record");
	aurora_page_plan_free(&plan);
	is_int(plan_rc(ps, blk(rel, 0, 3), 30, &plan), AURORA_ERR_NO_BLOCK,
		   "a block of the extended relation no record ever reaches: NO_BLOCK");
	is_int(plan_rc(ps, blk(rel, 0, 8), 30, &plan), AURORA_ERR_NO_BLOCK,
		   "a block beyond the relation's size: NO_BLOCK");
	is_int(plan_rc(ps, blk(rel, 0, 4), 30, &plan), AURORA_ERR_BELOW_HORIZON,
		   "a block whose history begins with a change to an existing page: BELOW_HORIZON below it");
	is_int(plan_rc(ps, blk(rel, 0, 5), 30, &plan), AURORA_ERR_BELOW_HORIZON,
		   "a block whose history begins with an image: BELOW_HORIZON below it");
	is_int(plan_rc(ps, blk(rel, 0, 6), 30, &plan), AURORA_ERR_NO_BLOCK,
		   "a block whose initializing record was coalesced into an image at its LSN: still NO_BLOCK below it");
	is_int(plan_rc(ps, blk(rel, 0, 6), 100, &plan), 0, "... and that image at the record's LSN");
	ok(plan.has_image && plan.image_lsn == 100 && plan.n_recs == 0, "... with no record to apply");
	aurora_page_plan_free(&plan);
	is_int(plan_rc(ps, blk(rel, 2, 0), 80, &plan), AURORA_ERR_NO_BLOCK,
		   "a visibility-map block inside the fork before its first record: NO_BLOCK");
	is_int(plan_rc(ps, blk(rel, 2, 0), 95, &plan), 0, "... and from zeros with that record after it");
	aurora_page_plan_free(&plan);
	aurora_pagestore_close(ps);
}

/* ---- the page service through the handler ---- */

static aurora_handler handler;
static uint64_t cur_volume = 1;

static void
make_meta(aurora_segment_meta *m, uint32_t n_pgs)
{
	static const char *const azs[AURORA_PG_COPIES] = {"az1", "az1", "az2", "az2", "az3", "az3"};

	memset(m, 0, sizeof(*m));
	m->volume_id = 1;
	m->pg_id = 0;
	m->replica_index = 0;
	m->volume_epoch = 1;
	m->membership_epoch = 1;
	m->n_pgs = n_pgs;
	m->blocks_per_segment = n_pgs ? 1024 : 0;
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		snprintf(m->members[i].node_id, sizeof(m->members[i].node_id), "n%d", i);
		snprintf(m->members[i].az, sizeof(m->members[i].az), "%s", azs[i]);
		snprintf(m->members[i].url, sizeof(m->members[i].url), "tcp://127.0.0.1:%d", 7100 + i);
	}
}

/* Send a request through the handler; returns the reply type, body in out. */
static uint16_t
call(uint16_t type, uint32_t pg, const uint8_t *body, size_t len, uint8_t *out, size_t cap,
	 size_t *out_len, aurora_error_body *e)
{
	static uint8_t msg[70000];
	static uint8_t reply[20000];
	aurora_header h;
	const uint8_t *rb;
	size_t		n;

	memset(&h, 0, sizeof(h));
	h.type = type;
	h.volume_id = cur_volume;
	h.pg_id = pg;
	h.volume_epoch = 1;
	h.membership_epoch = 1;
	h.request_id = 42;
	n = aurora_encode(&h, body, len, msg, sizeof(msg));
	n = aurora_handler_handle(&handler, msg, n, reply, sizeof(reply));
	if (n == 0 || aurora_decode(reply, n, sizeof(reply), &h, &rb) != 0)
		return 0;
	if (h.type == AURORA_MSG_ERROR && e != NULL)
		aurora_error_body_decode(rb, h.body_len, e);
	if (out != NULL && h.body_len <= cap)
		memcpy(out, rb, h.body_len);
	if (out_len != NULL)
		*out_len = h.body_len;
	return h.type;
}

static uint32_t
getpage(aurora_block_ref b, uint64_t lsn, uint32_t wait_ms, aurora_page_resp *p, char *msg)
{
	aurora_getpage_req r = {b, lsn, wait_ms};
	uint8_t		body[64];
	static uint8_t out[AURORA_PAGE_RESP_SIZE];
	size_t		n = aurora_getpage_req_encode(&r, body, sizeof(body));
	size_t		got = 0;
	aurora_error_body e;
	uint16_t	t;

	memset(&e, 0, sizeof(e));
	t = call(AURORA_MSG_GETPAGE_REQ, 0, body, n, out, sizeof(out), &got, &e);
	if (msg != NULL)
		strcpy(msg, e.message);
	if (t == AURORA_MSG_PAGE)
		return aurora_page_resp_decode(out, got, p) == 0 ? 0 : 999;
	return t == AURORA_MSG_ERROR ? e.code : 1000u + t;
}

/* REL_SIZE of (SPC, DB, rel, main fork) at lsn: true if answered, with *rs. */
static bool
rel_size(uint32_t rel, uint64_t lsn, uint32_t wait_ms, aurora_rel_size_resp *rs)
{
	aurora_rel_size_req r = {SPC, DB, rel, 0, lsn, wait_ms};
	uint8_t		body[64],
				out[16];
	size_t		n = aurora_rel_size_req_encode(&r, body, sizeof(body)),
				got = 0;

	return call(AURORA_MSG_REL_SIZE_REQ, 0, body, n, out, sizeof(out), &got, NULL) == AURORA_MSG_REL_SIZE &&
		aurora_rel_size_resp_decode(out, got, rs) == 0;
}

static uint32_t
append(uint64_t start, uint64_t end, uint64_t prev, const uint8_t *pl, size_t len, char *msg)
{
	aurora_log_record r = {start, end, prev, (uint32_t) len, pl};
	uint8_t		body[8192];
	size_t		n = aurora_log_append_encode(&r, 1, body, sizeof(body));
	aurora_error_body e;
	uint16_t	t;

	memset(&e, 0, sizeof(e));
	t = call(AURORA_MSG_LOG_APPEND, 0, body, n, NULL, 0, NULL, &e);
	if (msg != NULL)
		strcpy(msg, e.message);
	return t == AURORA_MSG_LOG_ACK ? 0 : t == AURORA_MSG_ERROR ? e.code : 1000u + t;
}

/*
 * A node's store in tmp/dir with one segment of PG 0 (one PG), a page
 * service with pcfg, and the handler serving both.
 */
static void
start_node(const char *tmp, const char *dir, const aurora_pageservice_config *pcfg,
		   aurora_segment_table **st, aurora_segment **seg, aurora_pageservice **pages)
{
	char		data[600];
	char		err[1100];
	aurora_segment_meta meta;

	snprintf(data, sizeof(data), "%s/%s", tmp, dir);
	mkdir(data, 0700);
	if (aurora_segment_table_open(data, st, err, sizeof(err)) != 0)
		bail_out("store: %s", err);
	make_meta(&meta, 1);
	if (aurora_segment_table_create_segment(*st, &meta, "n0", seg, err, sizeof(err)) != 0)
		bail_out("segment: %s", err);
	if (aurora_pageservice_start(*st, pcfg, pages, err, sizeof(err)) != 0)
		bail_out("page service: %s", err);
	aurora_handler_init(&handler, "n0", "az1", 65536);
	aurora_handler_set_store(&handler, *st);
	aurora_handler_set_pages(&handler, *pages);
	cur_volume = 1;
}

static void
test_service(const char *tmp)
{
	aurora_segment_table *st;
	aurora_segment *seg;
	aurora_pageservice *pages;
	aurora_pageservice_config pcfg;
	char		err[1100];
	char		msg[1100];
	uint8_t		pl[4096];
	size_t		len;
	aurora_page_resp page;
	uint8_t		img[AURORA_PAGE_BYTES];
	aurora_block_ref b0 = blk(REL, 0, 0);
	aurora_block_ref b1 = blk(REL, 0, 1);

	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.coalesce_threshold = 4;
	start_node(tmp, "node", &pcfg, &st, &seg, &pages);

	/* seed block 0 and 1 at LSN 1000 */
	{
		aurora_seed_page sp[2];
		uint8_t		p2[AURORA_PAGE_BYTES];
		uint8_t		body[2 * AURORA_SEED_PAGE_SIZE + 16];
		size_t		n;
		uint8_t		out[16];
		size_t		got;
		uint32_t	stored = 0;
		aurora_error_body e;

		page_of(img, 0x11, 1000);
		page_of(p2, 0x22, 1000);
		sp[0].block = b0;
		sp[0].page = img;
		sp[1].block = b1;
		sp[1].page = p2;
		n = aurora_seed_pages_encode(1000, sp, 2, body, sizeof(body));
		ok(call(AURORA_MSG_SEED_PAGES, 0, body, n, out, sizeof(out), &got, &e) == AURORA_MSG_SEED_ACK &&
		   aurora_seed_ack_decode(out, got, &stored) == 0 && stored == 2, "SEED_PAGES: 2 stored");
		memset(&e, 0, sizeof(e));
		is_int(call(AURORA_MSG_SEED_PAGES, 1, body, n, NULL, 0, NULL, &e), AURORA_MSG_ERROR,
			   "SEED_PAGES to a PG this node does not hold");
		is_str(aurora_error_name(e.code), "NO_SEGMENT", "... is NO_SEGMENT");
	}

	/* the segment's chain starts at base 0: its SCL is 0 */
	is_int(getpage(b0, 1000, 100, &page, msg), 0,
		   "GETPAGE at the seed LSN is served before any record arrives");
	is_int(getpage(b0, 1050, 100, &page, msg), AURORA_ERR_NOT_READY,
		   "GETPAGE above it before the log reaches it: NOT_READY after the wait");
	like(msg, "not complete to 0/41A", "NOT_READY names the LSN");

	/* a record not touching block 0 moves SCL past 1000 */
	{
		aurora_walmeta_block other = {blk(REL + 1, 0, 0), AURORA_BLOCK_WILL_INIT};

		len = payload(pl, sizeof(pl), &other, 1, NULL, 0);
		is_int(append(900, 1100, 0, pl, len, msg), 0, "append a record with an envelope");
	}
	{
		double		t0 = aurora_monotonic_ms();

		is_int(getpage(b0, 1100, 5000, &page, msg), 0, "GETPAGE of a seeded page once indexed");
		ok(aurora_monotonic_ms() - t0 < 4000, "served without waiting out the timeout");
	}
	ok(memcmp(page.page, img, AURORA_PAGE_BYTES) == 0, "the page is the seeded image");
	is_uint(page.page_lsn, 1000, "page_lsn is the page's pd_lsn");
	is_uint(page.checksum, 0x1234, "checksum is the page's pd_checksum");
	is_int(getpage(b0, 999, 100, &page, msg), AURORA_ERR_BELOW_HORIZON,
		   "below the seed LSN: BELOW_HORIZON");
	is_int(getpage(blk(REL, 0, 7), 1100, 100, &page, msg), AURORA_ERR_NO_BLOCK,
		   "beyond the seeded size: NO_BLOCK");
	is_int(getpage(blk(4242, 0, 0), 1100, 100, &page, msg), AURORA_ERR_NO_RELATION,
		   "an unknown relation: NO_RELATION");

	/* a record on block 0: the page now needs redo, which is not configured */
	{
		aurora_walmeta_block w = {b0, 0};

		len = payload(pl, sizeof(pl), &w, 1, NULL, 0);
		is_int(append(1100, 1200, 900, pl, len, msg), 0, "append a record changing block 0");
		is_int(getpage(b0, 1200, 5000, &page, msg), AURORA_ERR_UNAVAILABLE,
			   "a page that needs redo without a helper: UNAVAILABLE");
		like(msg, "walredo_postgres", "the message says what is missing");
		is_int(getpage(b0, 1150, 5000, &page, msg), 0, "the same block at an LSN before that record");
		ok(memcmp(page.page, img, AURORA_PAGE_BYTES) == 0, "... is still the seeded image");
	}

	/* REL_SIZE */
	{
		aurora_rel_size_resp rs;

		ok(rel_size(REL, 1200, 1000, &rs) && rs.exists && rs.nblocks == 2,
		   "REL_SIZE: the seeded fork has 2 blocks");
		ok(rel_size(4242, 1200, 1000, &rs) && !rs.exists && rs.nblocks == 0,
		   "REL_SIZE: an unknown relation does not exist");
	}

	/* LOG_APPEND without an envelope is refused before anything is written */
	{
		aurora_segment_stats before,
					after;

		aurora_segment_get_stats(seg, &before);
		memset(pl, 0x77, 64);
		is_int(append(1200, 1300, 1100, pl, 64, msg), AURORA_ERR_MALFORMED,
			   "a record without a valid envelope: MALFORMED");
		like(msg, "0/4B0", "the message names the record's LSN");
		aurora_segment_get_stats(seg, &after);
		ok(after.records == before.records, "nothing was written");
	}

	/* status counters */
	{
		aurora_status_body s;

		aurora_handler_status(&handler, &s);
		ok(s.pages_seeded == 2 && s.getpage_requests >= 7 && s.records_indexed >= 2 &&
		   s.coalesce_threshold == 4 && s.redo_configured == 0,
		   "STATUS counts seeds, getpages, indexed records and shows the threshold");
	}

	/* a malformed envelope that reached the log another way stops the index there */
	{
		aurora_log_record r = {1200, 1300, 1100, 64, pl};
		aurora_walmeta_block w = {b1, 0};
		char		e2[256];
		uint8_t		pl2[512];
		size_t		l2 = payload(pl2, sizeof(pl2), &w, 1, NULL, 0);
		aurora_log_record r2 = {1300, 1400, 1200, (uint32_t) l2, pl2};
		aurora_status_body s;

		if (aurora_segment_append(seg, &r, 1, 65536, NULL, e2, sizeof(e2)) != 0 ||
			aurora_segment_append(seg, &r2, 1, 65536, NULL, e2, sizeof(e2)) != 0 ||
			aurora_segment_sync(seg, e2, sizeof(e2)) != 0)
			bail_out("raw append: %s", e2);
		is_int(getpage(b1, 1400, 3000, &page, msg), AURORA_ERR_CORRUPT,
			   "GETPAGE past a malformed envelope: CORRUPT, at once");
		like(msg, "malformed envelope", "the message says why");
		is_int(getpage(b1, 1200, 1000, &page, msg), 0, "LSNs before it are still served");
		aurora_handler_status(&handler, &s);
		is_uint(s.index_errors, 1, "STATUS counts the segment whose index stopped");
	}

	/* a segment without geometry serves no pages; blocks must be the PG's */
	{
		aurora_segment_meta m2;
		aurora_segment *s2;
		aurora_seed_page sp = {blk(REL, 0, 0), img};
		uint8_t		body[AURORA_SEED_PAGE_SIZE + 16];
		size_t		n = aurora_seed_pages_encode(5, &sp, 1, body, sizeof(body));
		aurora_error_body e;
		int			other = -1;

		make_meta(&m2, 0);
		m2.volume_id = 2;
		if (aurora_segment_table_create_segment(st, &m2, "n0", &s2, err, sizeof(err)) != 0)
			bail_out("segment: %s", err);
		cur_volume = 2;
		memset(&e, 0, sizeof(e));
		call(AURORA_MSG_SEED_PAGES, 0, body, n, NULL, 0, NULL, &e);
		is_str(aurora_error_name(e.code), "CONFLICT", "SEED_PAGES to a segment without geometry: CONFLICT");
		make_meta(&m2, 4);
		m2.volume_id = 3;
		if (aurora_segment_table_create_segment(st, &m2, "n0", &s2, err, sizeof(err)) != 0)
			bail_out("segment: %s", err);
		cur_volume = 3;
		for (uint32_t k = 0; k < 64 && other < 0; k++)
		{
			aurora_geometry g4 = {4, 1024};

			sp.block = blk(REL + k, 0, 0);
			if (aurora_block_pg(&g4, &sp.block) != 0)
				other = (int) k;
		}
		n = aurora_seed_pages_encode(5, &sp, 1, body, sizeof(body));
		memset(&e, 0, sizeof(e));
		call(AURORA_MSG_SEED_PAGES, 0, body, n, NULL, 0, NULL, &e);
		is_str(aurora_error_name(e.code), "MALFORMED", "SEED_PAGES of a block of another PG: MALFORMED");
		like(e.message, "belongs to PG", "... saying which PG it belongs to");
		cur_volume = 1;
	}

	aurora_pageservice_stop(pages);

	/* lose the index: it is rebuilt from the log (seeded images are lost) */
	{
		char		pdir[800];
		char		seg_dir[700];

		aurora_segment_table_segment_path(st, 1, 0, seg_dir, sizeof(seg_dir));
		snprintf(pdir, sizeof(pdir), "rm -rf '%s/pages'", seg_dir);
		if (system(pdir) != 0)
			bail_out("cannot remove the page store");
		if (aurora_pageservice_start(st, &pcfg, &pages, err, sizeof(err)) != 0)
			bail_out("page service: %s", err);
		aurora_handler_set_pages(&handler, pages);
		{
			aurora_rel_size_resp rs;

			ok(rel_size(REL, 1200, 5000, &rs) && rs.exists && rs.nblocks == 1,
			   "after losing the page store, sizes come back from the log (block 0 written at 1200)");
		}
		is_int(getpage(b0, 1150, 3000, &page, msg), AURORA_ERR_BELOW_HORIZON,
			   "the seeded image is gone: block 0 is below the horizon");
		aurora_pageservice_stop(pages);
	}
	aurora_segment_table_close(st);
}

/*
 * Requests at LSNs past the last index commit: answered from the index as
 * committed when the unindexed tail does not touch their block or fork,
 * and only otherwise after an index commit.  The index interval is ten
 * minutes here, so every commit after the first pass is one a request made.
 */
static void
test_tail(const char *tmp)
{
	aurora_segment_table *st;
	aurora_segment *seg;
	aurora_pageservice *pages;
	aurora_pageservice_config pcfg;
	char		msg[1100];
	uint8_t		pl[4096];
	size_t		len;
	aurora_page_resp page;
	uint8_t		img[AURORA_PAGE_BYTES];
	aurora_block_ref b0 = blk(REL, 0, 0),
				b1 = blk(REL, 0, 1),
				other = blk(REL + 1, 0, 0);
	aurora_status_body s;
	uint64_t	indexed;

	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.index_interval_ms = 600000;
	start_node(tmp, "tailnode", &pcfg, &st, &seg, &pages);
	{
		aurora_seed_page sp[2] = {{b0, img}, {b1, img}};
		uint8_t		body[2 * AURORA_SEED_PAGE_SIZE + 16];
		size_t		n;

		page_of(img, 0x5a, 1000);
		n = aurora_seed_pages_encode(1000, sp, 2, body, sizeof(body));
		ok(call(AURORA_MSG_SEED_PAGES, 0, body, n, NULL, 0, NULL, NULL) == AURORA_MSG_SEED_ACK,
		   "tail: blocks 0 and 1 seeded at 1000");
	}
	{
		aurora_walmeta_block w = {other, AURORA_BLOCK_WILL_INIT};

		len = payload(pl, sizeof(pl), &w, 1, NULL, 0);
		is_int(append(900, 1100, 0, pl, len, msg), 0, "a record on another relation");
		is_int(getpage(b0, 1100, 5000, &page, msg), 0, "GETPAGE of block 0 after it");
		/*
		 * A request for the block the record touches forces the index
		 * commit that takes it in, so the counts below do not depend on
		 * whether the indexer's first pass ran before or after it.
		 */
		is_int(getpage(other, 1100, 5000, &page, msg), AURORA_ERR_UNAVAILABLE,
			   "GETPAGE of the other relation's block (redo, not configured here)");
	}
	aurora_handler_status(&handler, &s);
	indexed = s.records_indexed;

	/* block 0 changes at 1200, another relation at 1300: nothing is indexed */
	{
		aurora_walmeta_block w0 = {b0, 0},
					wo = {other, 0};

		len = payload(pl, sizeof(pl), &w0, 1, NULL, 0);
		is_int(append(1100, 1200, 900, pl, len, msg), 0, "a record changing block 0");
		len = payload(pl, sizeof(pl), &wo, 1, NULL, 0);
		is_int(append(1200, 1300, 1100, pl, len, msg), 0, "a record on the other relation");
	}
	is_int(getpage(b1, 1300, 5000, &page, msg), 0,
		   "GETPAGE of block 1 at 1300, past the indexed position");
	ok(memcmp(page.page, img, AURORA_PAGE_BYTES) == 0, "... is the seeded page");
	{
		aurora_rel_size_resp rs;

		ok(rel_size(REL + 7, 1300, 5000, &rs) && !rs.exists,
		   "REL_SIZE at 1300 of a relation the tail does not touch");
	}
	aurora_handler_status(&handler, &s);
	is_uint(s.records_indexed, indexed, "both answered from the committed index: no commit was forced");

	/* a request the tail concerns waits for the commit, and sees the record */
	is_int(getpage(b0, 1300, 5000, &page, msg), AURORA_ERR_UNAVAILABLE,
		   "GETPAGE of block 0 at 1300 needs the record at 1200 (redo, not configured here)");
	aurora_handler_status(&handler, &s);
	is_uint(s.records_indexed, indexed + 2, "... which an index commit made it wait for");
	is_int(getpage(b0, 1100, 5000, &page, msg), 0, "block 0 before that record");
	ok(memcmp(page.page, img, AURORA_PAGE_BYTES) == 0, "... is still the seeded page");

	/*
	 * A later block of the fork in the tail may have extended it: a block
	 * past the committed end waits for the commit, one before it does not.
	 */
	{
		aurora_walmeta_block w5 = {blk(REL, 0, 5), AURORA_BLOCK_WILL_INIT};

		len = payload(pl, sizeof(pl), &w5, 1, NULL, 0);
		is_int(append(1300, 1400, 1200, pl, len, msg), 0, "a record initializing block 5");
		is_int(getpage(b1, 1400, 5000, &page, msg), 0, "GETPAGE of block 1 at 1400");
		aurora_handler_status(&handler, &s);
		is_uint(s.records_indexed, indexed + 2, "... from the committed index (block 1 was there)");
		is_int(getpage(blk(REL, 0, 3), 1400, 5000, &page, msg), AURORA_ERR_NO_BLOCK,
			   "GETPAGE of block 3 at 1400: NO_BLOCK");
		like(msg, "not written at or below", "... within the fork's 6 blocks (never written), not beyond its 2");
		aurora_handler_status(&handler, &s);
		is_uint(s.records_indexed, indexed + 3, "... after waiting for the commit (block 5 extended the fork)");
	}

	/* a fork touched by the tail: REL_SIZE waits for the commit too */
	{
		aurora_walmeta_block w = {blk(REL + 1, 0, 3), AURORA_BLOCK_WILL_INIT};
		aurora_rel_size_resp rs;

		len = payload(pl, sizeof(pl), &w, 1, NULL, 0);
		is_int(append(1400, 1500, 1300, pl, len, msg), 0, "a record extending the other relation to 4 blocks");
		ok(rel_size(REL + 1, 1500, 5000, &rs) && rs.exists && rs.nblocks == 4,
		   "REL_SIZE at 1500 of the relation it extends: 4 blocks");
	}
	aurora_pageservice_stop(pages);
	aurora_segment_table_close(st);
}

int
main(void)
{
	char		tmp[512];
	char		logp[700];

	make_tmpdir("pagestore", tmp, sizeof(tmp));
	if (getenv("PAGESTORE_TEST_STDERR") == NULL)
		redirect_stderr_to_log(tmp, logp, sizeof(logp));
	test_store(tmp);
	test_unwritten_history(tmp);
	test_service(tmp);
	test_tail(tmp);
	remove_tree(tmp);
	return done_testing();
}
