/*
 * test_truncate.c - unit tests of volume epochs on a storage node
 * (storage_service/node/segment_truncate.c, truncation.c, the epoch rules
 * of handler.c, common/epochmsg.c): fencing, truncation of the ragged edge
 * (records at or above the cut, SCL, holes and highest LSN after it, the
 * page store's entries derived from the dropped records), idempotence,
 * CONFLICT, STALE_EPOCH, histories with missed epochs, a crash between the
 * meta commit point and the cut (never resurrects), malformed bodies, and
 * the STALE_EPOCH / EPOCH_NOT_OPEN rules for every message addressed to a
 * segment.  Real files, real fsync, the real handler and page service in
 * this process (no network: aurora_handler_handle).
 */
#define _DEFAULT_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "epochmsg.h"
#include "handler.h"
#include "logmsg.h"
#include "pagemsg.h"
#include "pageservice.h"
#include "segment.h"
#include "segment_table.h"
#include "tap.h"
#include "testutil.h"
#include "util.h"
#include "walmeta.h"
#include "wire.h"

#define VOL		0x77ULL
#define MAXPAY	(1u << 20)
#define REPLY_CAP	(1u << 20)

static char tmpdir[512];

/* ---- segment-level helpers ---- */

static void
make_meta(aurora_segment_meta *m, uint32_t pg, uint32_t n_pgs)
{
	static const char *const azs[AURORA_PG_COPIES] = {"az1", "az1", "az2", "az2", "az3", "az3"};

	memset(m, 0, sizeof(*m));
	m->volume_id = VOL;
	m->pg_id = pg;
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

static aurora_segment_table *
open_store(const char *dir)
{
	aurora_segment_table *st;
	char		err[512] = "";

	if (aurora_segment_table_open(dir, &st, err, sizeof(err)) != AURORA_SEG_OK)
		bail_out("aurora_segment_table_open(%s): %s", dir, err);
	return st;
}

static aurora_segment *
create_seg(aurora_segment_table *st, uint32_t pg, uint32_t n_pgs)
{
	aurora_segment_meta m;
	aurora_segment *s;
	char		err[512] = "";

	make_meta(&m, pg, n_pgs);
	if (aurora_segment_table_create_segment(st, &m, "n0", &s, err, sizeof(err)) != AURORA_SEG_OK)
		bail_out("create segment: %s", err);
	return s;
}

/* Append and sync the chain record [start, end) with backlink prev (synthetic payload). */
static int
append_sync(aurora_segment *s, uint64_t start, uint64_t end, uint64_t prev, uint8_t fill)
{
	uint8_t		pl[32];
	aurora_log_record r = {start, end, prev, sizeof(pl), pl};
	char		err[256];
	int			rc;

	memset(pl, fill, sizeof(pl));
	rc = aurora_segment_append(s, &r, 1, MAXPAY, NULL, err, sizeof(err));
	if (rc == AURORA_SEG_OK)
		rc = aurora_segment_sync(s, err, sizeof(err));
	if (rc != AURORA_SEG_OK)
		diag("append [%llu, %llu): %s", (unsigned long long) start, (unsigned long long) end, err);
	return rc;
}

typedef struct collect
{
	int			n;
	uint64_t	starts[64];
	uint8_t		fills[64];
} collect;

static int
collect_emit(void *arg, const aurora_log_record *r)
{
	collect    *c = arg;

	if (c->n < 64)
	{
		c->starts[c->n] = r->start_lsn;
		c->fills[c->n] = r->len > 0 ? r->payload[0] : 0;
	}
	c->n++;
	return 0;
}

static collect
read_all(aurora_segment *s)
{
	collect		c;

	memset(&c, 0, sizeof(c));
	if (aurora_segment_read(s, 0, UINT64_MAX, MAXPAY, collect_emit, &c, NULL) != AURORA_SEG_OK)
		c.n = -1;
	return c;
}

static aurora_segment_stats
stats(aurora_segment *s)
{
	aurora_segment_stats st;

	aurora_segment_get_stats(s, &st);
	return st;
}

static void
copy_file(const char *from, const char *to)
{
	char		cmd[2200];

	snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s'", from, to);
	if (system(cmd) != 0)
		bail_out("%s failed", cmd);
}

/* ---- 1. truncation on a segment's log ---- */

static void
test_segment_truncation(void)
{
	char		dir[700];
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_truncation res;
	aurora_segment_meta meta;
	aurora_trunc_entry hist[4];
	aurora_trunc_entry got[8];
	char		err[512];
	collect		c;

	snprintf(dir, sizeof(dir), "%s/seg", tmpdir);
	st = open_store(dir);
	s = create_seg(st, 1, 0);
	aurora_segment_get_meta(s, &meta);
	ok(meta.truncated_epoch == 1 && meta.volume_epoch == 1 && aurora_segment_get_history(s, NULL, 0) == 0,
	   "a new segment is truncated at its creation epoch, with an empty history");
	ok(aurora_segment_is_open(s), "and open for writes");

	/* chain 100..500, then a record after a hole at 600 */
	for (uint64_t l = 100; l < 500; l += 100)
		append_sync(s, l, l + 100, l - 100 + (l == 100 ? 0 : 0), (uint8_t) (l / 100));
	append_sync(s, 600, 700, 550, 6);
	is_uint(stats(s).scl, 500, "SCL 500 before");
	is_uint(stats(s).n_holes, 1, "one hole before");
	is_uint(stats(s).highest_lsn, 700, "highest 700 before");

	/* fence: lower refused, equal a no-op, higher raised; then the segment is not open */
	is_int(aurora_segment_fence(s, 2, err, sizeof(err)), AURORA_SEG_OK, "fence at epoch 2");
	is_int(aurora_segment_fence(s, 1, err, sizeof(err)), AURORA_SEG_ERR_STALE, "fence at 1 afterwards: STALE");
	like(err, "stale epoch", "says so");
	is_int(aurora_segment_fence(s, 2, err, sizeof(err)), AURORA_SEG_OK, "fence again at 2: no-op");
	ok(!aurora_segment_is_open(s), "fenced, not truncated: not open");

	/* truncate at 300: records 300, 400 and 600 go */
	hist[0].epoch = 2;
	hist[0].lsn = 300;
	is_int(aurora_segment_truncate(s, hist, 1, &res, err, sizeof(err)), AURORA_SEG_OK, "truncate 2@300");
	ok(!res.repeat && res.cut_lsn == 300 && res.records_dropped == 3 &&
	   res.bytes_dropped == 3 * (AURORA_SEG_RECORD_HEADER_SIZE + 32),
	   "dropped the three records at or above 300 (%llu records, %llu bytes)",
	   (unsigned long long) res.records_dropped, (unsigned long long) res.bytes_dropped);
	ok(!aurora_segment_is_open(s), "not open until the page store is cut too (truncate_done)");
	is_int(aurora_segment_truncate_done(s, err, sizeof(err)), AURORA_SEG_OK, "truncate_done");
	ok(aurora_segment_is_open(s), "open at epoch 2 then");
	c = read_all(s);
	ok(c.n == 2 && c.starts[0] == 100 && c.starts[1] == 200, "the log holds 100 and 200 only (%d records)", c.n);
	is_uint(stats(s).scl, 300, "SCL 300 after");
	is_uint(stats(s).highest_lsn, 300, "highest 300 after");
	is_uint(stats(s).n_holes, 0, "no holes after (the holed record went too)");
	is_uint(stats(s).records, 2, "two records counted");
	aurora_segment_get_meta(s, &meta);
	ok(meta.volume_epoch == 2 && meta.truncated_epoch == 2 && meta.records_dropped == 3 && !meta.cut_pending,
	   "meta: volume and truncated epoch 2, 3 records dropped in total");
	ok(aurora_segment_get_history(s, got, 8) == 1 && got[0].epoch == 2 && got[0].lsn == 300,
	   "history 2@300");

	/* idempotent repeat, conflict, stale */
	is_int(aurora_segment_truncate(s, hist, 1, &res, err, sizeof(err)), AURORA_SEG_OK, "the same truncation again");
	ok(res.repeat && res.records_dropped == 0, "is a repeat that drops nothing");
	hist[0].lsn = 200;
	is_int(aurora_segment_truncate(s, hist, 1, &res, err, sizeof(err)), AURORA_SEG_ERR_CONFLICT,
		   "epoch 2 at another LSN: CONFLICT");
	like(err, "epoch 2 was truncated at 300", "names the recorded cut");
	is_int(aurora_segment_fence(s, 3, err, sizeof(err)), AURORA_SEG_OK, "fence at 3");
	hist[0].epoch = 2;
	hist[0].lsn = 300;
	hist[1].epoch = 2;
	hist[1].lsn = 300;
	is_int(aurora_segment_truncate(s, hist, 2, &res, err, sizeof(err)), AURORA_SEG_ERR_INVALID,
		   "a history with a repeated epoch is invalid");
	is_int(aurora_segment_truncate(s, hist, 0, &res, err, sizeof(err)), AURORA_SEG_ERR_INVALID,
		   "an empty history is invalid");
	{
		aurora_trunc_entry h1 = {1, 150};

		is_int(aurora_segment_truncate(s, &h1, 1, &res, err, sizeof(err)), AURORA_SEG_ERR_STALE,
			   "a truncation at epoch 1 after the fence at 3: STALE");
	}

	/* the same LSNs reused by different records at the new epoch */
	hist[1].epoch = 3;
	hist[1].lsn = 300;
	is_int(aurora_segment_truncate(s, hist, 2, &res, err, sizeof(err)), AURORA_SEG_OK, "truncate 2@300,3@300");
	aurora_segment_truncate_done(s, err, sizeof(err));
	is_int(append_sync(s, 300, 350, 200, 0x33), AURORA_SEG_OK,
		   "a new, different record [300, 350) is stored where the dropped [300, 400) was");
	is_uint(stats(s).scl, 350, "and extends the chain");

	/* everything survives a reopen; nothing dropped comes back */
	aurora_segment_table_close(st);
	st = open_store(dir);
	s = aurora_segment_table_find(st, VOL, 1);
	c = read_all(s);
	ok(s != NULL && c.n == 3 && c.starts[2] == 300 && c.fills[2] == 0x33,
	   "after reopen: 100, 200 and the new 300 (%d records)", c.n);
	aurora_segment_get_meta(s, &meta);
	ok(meta.volume_epoch == 3 && meta.truncated_epoch == 3 && aurora_segment_get_history(s, got, 8) == 2 &&
	   got[1].epoch == 3 && got[1].lsn == 300, "epochs and history survive the reopen");
	aurora_segment_table_close(st);
}

/* ---- 2. a history with missed epochs ---- */

static void
test_missed_epochs(void)
{
	char		dir[700];
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_truncation res;
	aurora_trunc_entry hist[3] = {{1, 100}, {2, 200}, {3, 300}};
	char		err[512];
	collect		c;

	snprintf(dir, sizeof(dir), "%s/missed", tmpdir);
	st = open_store(dir);
	s = create_seg(st, 2, 0);
	for (uint64_t l = 100; l <= 500; l += 100)
		append_sync(s, l, l + 100, l == 100 ? 0 : l - 100, 1);
	is_int(aurora_segment_truncate(s, hist, 3, &res, err, sizeof(err)), AURORA_SEG_OK,
		   "segment truncated at 1 gets the history 1@100, 2@200, 3@300");
	is_uint(res.cut_lsn, 200, "it cuts at 200: the first cut it missed, not the last one");
	aurora_segment_truncate_done(s, err, sizeof(err));
	c = read_all(s);
	ok(c.n == 1 && c.starts[0] == 100, "only 100 is left (%d records)", c.n);
	is_uint(stats(s).scl, 200, "SCL 200");
	aurora_segment_table_close(st);
}

/* ---- 3. a crash between the meta commit point and the cut ---- */

static void
test_crash_mid_truncation(void)
{
	char		dir[700],
				segdir[900],
				path[1000],
				save[1000];
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_truncation res;
	aurora_segment_meta meta;
	aurora_trunc_entry hist = {2, 300};
	char		err[512];
	char		name[64];
	collect		c;

	snprintf(dir, sizeof(dir), "%s/crash", tmpdir);
	st = open_store(dir);
	s = create_seg(st, 3, 0);
	for (uint64_t l = 100; l <= 500; l += 100)
		append_sync(s, l, l + 100, l == 100 ? 0 : l - 100, 1);
	aurora_segment_dir_name(VOL, 3, name, sizeof(name));
	snprintf(segdir, sizeof(segdir), "%s/segments/%s", dir, name);
	snprintf(path, sizeof(path), "%s/log", segdir);
	snprintf(save, sizeof(save), "%s/log.before", tmpdir);
	copy_file(path, save);

	/*
	 * Truncate, but never finish (no truncate_done), then put the old log
	 * back: the state after a crash that came after the meta was committed
	 * but before the cut's rename.
	 */
	is_int(aurora_segment_truncate(s, &hist, 1, &res, err, sizeof(err)), AURORA_SEG_OK, "truncate 2@300");
	aurora_segment_table_close(st);
	copy_file(save, path);
	st = open_store(dir);
	s = aurora_segment_table_find(st, VOL, 3);
	ok(s != NULL, "the segment opens");
	c = read_all(s);
	ok(c.n == 2 && c.starts[1] == 200, "the cut is applied again at open: 100, 200 (%d records)", c.n);
	is_uint(stats(s).scl, 300, "SCL 300");
	aurora_segment_get_meta(s, &meta);
	ok(meta.truncated_epoch == 2 && meta.volume_epoch == 2 && !meta.cut_pending && meta.records_dropped == 3,
	   "and finished (no page store): epoch 2 open, 3 dropped");
	ok(aurora_segment_is_open(s), "open");
	aurora_segment_table_close(st);
	st = open_store(dir);
	s = aurora_segment_table_find(st, VOL, 3);
	is_int(read_all(s).n, 2, "a second restart still has 2 records: nothing resurrects");
	aurora_segment_table_close(st);

	/* a meta that fails its history rules is a corrupt meta: the segment does not open */
	{
		char		text[8192];
		char	   *p;

		snprintf(path, sizeof(path), "%s/meta", segdir);
		read_text_file(path, text, sizeof(text));
		p = strstr(text, "truncation 2 300\n");
		ok(p != NULL, "the meta file lists the truncation");
	}
}

/* ---- 4. the handler: messages, rules for every type, the page store ---- */

static aurora_handler handler;

typedef struct reply
{
	uint16_t	type;
	uint32_t	code;
	char		message[1100];
	uint64_t	volume_epoch;
	uint8_t    *body;
	size_t		len;
} reply;

static uint8_t reply_buf[REPLY_CAP];

static void
call(uint16_t type, uint32_t pg, uint64_t epoch, const uint8_t *body, size_t len, reply *r)
{
	uint8_t    *msg = malloc(AURORA_HEADER_SIZE + len);
	aurora_header h;
	const uint8_t *rb;
	size_t		n;

	memset(r, 0, sizeof(*r));
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.volume_id = VOL;
	h.pg_id = pg;
	h.volume_epoch = epoch;
	h.membership_epoch = 1;
	h.request_id = 9;
	len = aurora_encode(&h, body, len, msg, AURORA_HEADER_SIZE + len);
	n = aurora_handler_handle(&handler, msg, len, reply_buf, sizeof(reply_buf));
	free(msg);
	if (n == 0 || aurora_decode(reply_buf, n, REPLY_CAP, &h, &rb) != 0)
	{
		snprintf(r->message, sizeof(r->message), "no reply");
		return;
	}
	r->type = h.type;
	r->volume_epoch = h.volume_epoch;
	r->body = (uint8_t *) rb;
	r->len = h.body_len;
	if (h.type == AURORA_MSG_ERROR)
	{
		aurora_error_body e;

		if (aurora_error_body_decode(rb, h.body_len, &e) == 0)
		{
			r->code = e.code;
			snprintf(r->message, sizeof(r->message), "%s", e.message);
		}
	}
}

static const char *
code_of(const reply *r)
{
	if (r->type == AURORA_MSG_ERROR)
		return aurora_error_name(r->code);
	return aurora_msg_type_name(r->type);
}

/* An envelope + minimal WAL record: blocks of rel 16384.., optional CREATE of rel. */
static size_t
payload(uint8_t *out, size_t cap, uint32_t rel, uint32_t blkno, bool create)
{
	aurora_buf	w;
	aurora_walmeta_block mb;
	aurora_walmeta_event ev;
	uint32_t	wal = 40;

	memset(&mb, 0, sizeof(mb));
	mb.ref.spc_oid = 1663;
	mb.ref.db_oid = 5;
	mb.ref.rel_number = rel;
	mb.ref.fork = 0;
	mb.ref.blkno = blkno;
	mb.flags = AURORA_BLOCK_WILL_INIT;
	memset(&ev, 0, sizeof(ev));
	ev.op = AURORA_REL_CREATE;
	ev.spc_oid = 1663;
	ev.db_oid = 5;
	ev.rel_number = rel;
	aurora_buf_init_writer(&w, out, cap);
	aurora_walmeta_put(&w, &mb, 1, create ? &ev : NULL, create ? 1 : 0);
	memset(out + aurora_buf_len(&w), 0x5c, wal);
	out[aurora_buf_len(&w)] = (uint8_t) wal;
	out[aurora_buf_len(&w) + 1] = 0;
	out[aurora_buf_len(&w) + 2] = 0;
	out[aurora_buf_len(&w) + 3] = 0;
	return aurora_buf_len(&w) + wal;
}

static const char *
append_rec(uint32_t pg, uint64_t epoch, uint64_t start, uint64_t end, uint64_t prev,
		   uint32_t rel, uint32_t blkno, bool create)
{
	static reply r;
	uint8_t		pl[512];
	uint8_t		body[1024];
	aurora_log_record rec;

	rec.start_lsn = start;
	rec.end_lsn = end;
	rec.prev_lsn = prev;
	rec.len = (uint32_t) payload(pl, sizeof(pl), rel, blkno, create);
	rec.payload = pl;
	call(AURORA_MSG_LOG_APPEND, pg, epoch, body, aurora_log_append_encode(&rec, 1, body, sizeof(body)), &r);
	return code_of(&r);
}

static const char *
rel_size(uint32_t pg, uint64_t epoch, uint32_t rel, uint64_t lsn, aurora_rel_size_resp *out)
{
	static reply r;
	aurora_rel_size_req q = {1663, 5, rel, 0, lsn, 3000};
	uint8_t		body[64];

	memset(out, 0, sizeof(*out));
	call(AURORA_MSG_REL_SIZE_REQ, pg, epoch, body, aurora_rel_size_req_encode(&q, body, sizeof(body)), &r);
	if (r.type == AURORA_MSG_REL_SIZE)
		aurora_rel_size_resp_decode(r.body, r.len, out);
	return code_of(&r);
}

/* GETPAGE of block 0 of rel at lsn: the reply type or error name. */
static const char *
getpage0(uint32_t pg, uint64_t epoch, uint32_t rel, uint64_t lsn)
{
	static reply r;
	aurora_getpage_req g;
	uint8_t		body[64];

	memset(&g, 0, sizeof(g));
	g.block.spc_oid = 1663;
	g.block.db_oid = 5;
	g.block.rel_number = rel;
	g.lsn = lsn;
	g.wait_ms = 3000;
	call(AURORA_MSG_GETPAGE_REQ, pg, epoch, body, aurora_getpage_req_encode(&g, body, sizeof(body)), &r);
	return code_of(&r);
}

static uint64_t
indexed_lsn(uint32_t pg)
{
	reply		r;
	aurora_segment_state *st;
	int			n;
	uint64_t	v = 0;

	call(AURORA_MSG_SEGMENTS_REQ, 0, 0, NULL, 0, &r);
	if (r.type == AURORA_MSG_SEGMENTS_RESP && aurora_segments_resp_decode(r.body, r.len, &st, &n) == 0)
	{
		for (int i = 0; i < n; i++)
			if (st[i].pg_id == pg)
				v = st[i].indexed_lsn;
		free(st);
	}
	return v;
}

static const char *
fence(uint32_t pg, uint64_t epoch, reply *r)
{
	call(AURORA_MSG_FENCE_REQ, pg, epoch, NULL, 0, r);
	return code_of(r);
}

static const char *
truncate_req(uint32_t pg, uint64_t epoch, const aurora_trunc_entry *h, int n, reply *r)
{
	uint8_t		raw[AURORA_TRUNC_ENTRY_SIZE * 8];
	uint8_t		body[256];
	aurora_trunc_list l;

	aurora_trunc_list_fill(&l, h, n, raw);
	call(AURORA_MSG_TRUNCATE_REQ, pg, epoch, body, aurora_truncate_req_encode(&l, body, sizeof(body)), r);
	return code_of(r);
}

/* The reply code of each request type addressed to pg at epoch. */
static void
check_rules(uint32_t pg, uint64_t epoch, const char *append_code, const char *read_code,
			const char *page_code, const char *what)
{
	reply		r;
	uint8_t		body[2048];
	size_t		n;

	is_str(append_rec(pg, epoch, 900, 1000, 800, 16390, 0, false), append_code, "%s: LOG_APPEND", what);
	{
		aurora_read_log rl = {0, UINT64_MAX, 1 << 16};

		call(AURORA_MSG_READ_LOG, pg, epoch, body, aurora_read_log_encode(&rl, body, sizeof(body)), &r);
		is_str(code_of(&r), read_code, "%s: READ_LOG", what);
	}
	n = aurora_record_before_req_encode(1000, body, sizeof(body));
	call(AURORA_MSG_RECORD_BEFORE_REQ, pg, epoch, body, n, &r);
	is_str(code_of(&r), strcmp(read_code, "READ_LOG_RESP") == 0 ? "RECORD_BEFORE" : read_code,
		   "%s: RECORD_BEFORE_REQ", what);
	{
		aurora_getpage_req g;

		memset(&g, 0, sizeof(g));
		g.block.spc_oid = 1663;
		g.block.db_oid = 5;
		g.block.rel_number = 99999;
		g.lsn = 200;
		call(AURORA_MSG_GETPAGE_REQ, pg, epoch, body, aurora_getpage_req_encode(&g, body, sizeof(body)), &r);
		is_str(code_of(&r), page_code, "%s: GETPAGE_REQ", what);
	}
	{
		aurora_rel_size_resp rs;

		is_str(rel_size(pg, epoch, 99999, 200, &rs), strcmp(page_code, "NO_RELATION") == 0 ? "REL_SIZE" : page_code,
			   "%s: REL_SIZE_REQ", what);
	}
	{
		static uint8_t page[AURORA_PAGE_BYTES];
		aurora_seed_page sp;
		uint8_t    *sb = malloc(aurora_seed_pages_size(1));

		sp.block.spc_oid = 1663;
		sp.block.db_oid = 5;
		sp.block.rel_number = 99998;
		sp.block.fork = 0;
		sp.block.blkno = 0;
		sp.page = page;
		/* an LSN above every record: seeding it would change nothing we test */
		n = aurora_seed_pages_encode(1, &sp, 1, sb, aurora_seed_pages_size(1));
		call(AURORA_MSG_SEED_PAGES, pg, epoch, sb, n, &r);
		is_str(code_of(&r), strcmp(page_code, "NO_RELATION") == 0 ? "SEED_ACK" : page_code,
			   "%s: SEED_PAGES", what);
		free(sb);
	}
	{
		aurora_create_segment c;

		memset(&c, 0, sizeof(c));
		c.n_pgs = 1;
		c.blocks_per_segment = 1024;
		{
			aurora_segment_meta m;

			make_meta(&m, pg, 1);
			memcpy(c.members, m.members, sizeof(c.members));
		}
		call(AURORA_MSG_CREATE_SEGMENT, pg, epoch, body, aurora_create_segment_encode(&c, body, sizeof(body)), &r);
		is_str(code_of(&r), strcmp(read_code, "READ_LOG_RESP") == 0 ? "SEGMENT_INFO" : read_code,
			   "%s: CREATE_SEGMENT", what);
	}
	call(AURORA_MSG_SEGMENT_INFO_REQ, pg, epoch, NULL, 0, &r);
	is_str(code_of(&r), "SEGMENT_INFO", "%s: SEGMENT_INFO_REQ is never fenced", what);
}

static void
test_handler(void)
{
	char		dir[700],
				err[512];
	aurora_segment_table *st;
	aurora_pageservice *ps;
	aurora_pageservice_config pcfg;
	aurora_rel_size_resp rs;
	reply		r;
	const uint32_t pg = 0;

	snprintf(dir, sizeof(dir), "%s/node", tmpdir);
	st = open_store(dir);
	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.poll_ms = 2;
	pcfg.index_interval_ms = 1;
	if (aurora_pageservice_start(st, &pcfg, &ps, err, sizeof(err)) != 0)
		bail_out("page service: %s", err);
	aurora_handler_init(&handler, "n0", "az1", MAXPAY);
	aurora_handler_set_store(&handler, st);
	aurora_handler_set_pages(&handler, ps);
	create_seg(st, pg, 1);

	/* epoch 1: r1 creates rel A with block 0, r2 block A/1, r3 creates rel B */
	is_str(append_rec(pg, 1, 100, 200, 0, 16384, 0, true), "LOG_ACK", "append r1 (creates A)");
	is_str(append_rec(pg, 1, 200, 300, 100, 16384, 1, false), "LOG_ACK", "append r2");
	is_str(append_rec(pg, 1, 300, 400, 200, 16385, 0, true), "LOG_ACK", "append r3 (creates B)");
	for (int i = 0; i < 500 && indexed_lsn(pg) < 400; i++)
		usleep(10000);
	is_uint(indexed_lsn(pg), 400, "the page index covers all three");
	ok(strcmp(rel_size(pg, 1, 16385, 400, &rs), "REL_SIZE") == 0 && rs.exists, "B exists at 400");
	/* an image at 350, above the cut to come: a page the truncated history never had */
	{
		static uint8_t page[AURORA_PAGE_BYTES];
		aurora_seed_page sp;
		uint8_t    *sb = malloc(aurora_seed_pages_size(1));

		memset(page, 0x42, sizeof(page));
		memset(page, 0, 8);
		sp.block.spc_oid = 1663;
		sp.block.db_oid = 5;
		sp.block.rel_number = 16386;
		sp.block.fork = 0;
		sp.block.blkno = 0;
		sp.page = page;
		call(AURORA_MSG_SEED_PAGES, pg, 1, sb, aurora_seed_pages_encode(350, &sp, 1, sb, aurora_seed_pages_size(1)), &r);
		is_str(code_of(&r), "SEED_ACK", "an image of C/0 at 350");
		free(sb);
		is_str(getpage0(pg, 1, 16386, 400), "PAGE", "GETPAGE C/0 at 400 serves it");
	}

	check_rules(pg, 0, "STALE_EPOCH", "STALE_EPOCH", "STALE_EPOCH", "epoch 0 < 1");
	check_rules(pg, 2, "EPOCH_NOT_OPEN", "EPOCH_NOT_OPEN", "EPOCH_NOT_OPEN", "epoch 2 > 1 (no adoption)");

	/* fence at 2 */
	is_str(fence(pg, 2, &r), "FENCE_ACK", "FENCE_REQ at 2");
	{
		aurora_fence_ack a;

		ok(aurora_fence_ack_decode(r.body, r.len, &a) == 0 && a.scl == 400 && a.highest_lsn == 400 &&
		   a.truncated_epoch == 1 && a.history.n == 0 && r.volume_epoch == 2,
		   "FENCE_ACK: scl 400, highest 400, truncated epoch 1, no history, header epoch 2");
	}
	{
		uint8_t		one = 0;

		call(AURORA_MSG_FENCE_REQ, pg, 3, &one, 1, &r);
		is_str(code_of(&r), "MALFORMED", "FENCE_REQ with a body: MALFORMED");
	}
	is_str(fence(pg, 1, &r), "STALE_EPOCH", "FENCE_REQ at 1 after 2: STALE_EPOCH");
	is_uint(r.volume_epoch, 2, "the refusal carries the segment's epoch");
	check_rules(pg, 1, "STALE_EPOCH", "STALE_EPOCH", "STALE_EPOCH", "fenced at 2, epoch 1");
	check_rules(pg, 2, "EPOCH_NOT_OPEN", "READ_LOG_RESP", "EPOCH_NOT_OPEN", "fenced at 2, not truncated, epoch 2");

	/* malformed truncations change nothing */
	{
		aurora_trunc_entry bad[2] = {{2, 300}, {1, 400}};
		aurora_trunc_entry wrong_epoch = {3, 300};
		uint8_t		junk[3] = {1, 0, 7};

		is_str(truncate_req(pg, 2, bad, 2, &r), "MALFORMED", "TRUNCATE_REQ with descending epochs: MALFORMED");
		bad[0].epoch = 1;
		bad[0].lsn = 500;
		bad[1].epoch = 2;
		bad[1].lsn = 400;
		is_str(truncate_req(pg, 2, bad, 2, &r), "MALFORMED", "with decreasing LSNs: MALFORMED");
		is_str(truncate_req(pg, 2, &wrong_epoch, 1, &r), "MALFORMED",
			   "whose last epoch is not the header's: MALFORMED");
		is_str(truncate_req(pg, 2, NULL, 0, &r), "MALFORMED", "with no entry: MALFORMED");
		call(AURORA_MSG_TRUNCATE_REQ, pg, 2, junk, sizeof(junk), &r);
		is_str(code_of(&r), "MALFORMED", "whose count exceeds the body: MALFORMED");
		ok(strcmp(rel_size(pg, 2, 16385, 400, &rs), "EPOCH_NOT_OPEN") == 0, "still not open");
	}

	/* truncate at 300: r3 and what the page store derived from it go */
	{
		aurora_trunc_entry h = {2, 300};
		aurora_truncate_ack a;

		is_str(truncate_req(pg, 2, &h, 1, &r), "TRUNCATE_ACK", "TRUNCATE_REQ 2@300");
		ok(aurora_truncate_ack_decode(r.body, r.len, &a) == 0 && a.scl == 300 && a.highest_lsn == 300 &&
		   a.records_dropped == 1 && a.bytes_dropped > 0,
		   "TRUNCATE_ACK: scl 300, highest 300, one record dropped");
		is_str(truncate_req(pg, 2, &h, 1, &r), "TRUNCATE_ACK", "again: idempotent");
		ok(aurora_truncate_ack_decode(r.body, r.len, &a) == 0 && a.records_dropped == 0, "dropping nothing");
		h.lsn = 250;
		is_str(truncate_req(pg, 2, &h, 1, &r), "CONFLICT", "2@250 after 2@300: CONFLICT");
		h.epoch = 1;
		is_str(truncate_req(pg, 1, &h, 1, &r), "STALE_EPOCH", "a truncation at epoch 1: STALE_EPOCH");
	}
	ok(indexed_lsn(pg) <= 300, "the indexer's position went back to 300 or below (%llu)",
	   (unsigned long long) indexed_lsn(pg));
	check_rules(pg, 2, "LOG_ACK", "READ_LOG_RESP", "NO_RELATION", "truncated at 2, epoch 2");
	check_rules(pg, 1, "STALE_EPOCH", "STALE_EPOCH", "STALE_EPOCH", "truncated at 2, epoch 1");

	/* SEGMENT_INFO carries the truncation */
	call(AURORA_MSG_SEGMENT_INFO_REQ, pg, 0, NULL, 0, &r);
	{
		aurora_segment_info info;

		ok(aurora_segment_info_decode(r.body, r.len, &info) == 0 && info.truncated_epoch == 2 &&
		   info.history.n == 1 && aurora_trunc_list_at(&info.history, 0).epoch == 2 &&
		   aurora_trunc_list_at(&info.history, 0).lsn == 300,
		   "SEGMENT_INFO: truncated epoch 2, history 2@300");
	}

	/* the check_rules append above stored [900, 1000) after a hole; a new r3' reuses 300..400 */
	is_str(append_rec(pg, 2, 300, 400, 200, 16384, 2, false), "LOG_ACK",
		   "a different record [300, 400) at epoch 2 (block A/2, no CREATE of B)");
	for (int i = 0; i < 500 && indexed_lsn(pg) < 400; i++)
		usleep(10000);
	is_str(rel_size(pg, 2, 16385, 400, &rs), "REL_SIZE", "REL_SIZE of B at 400");
	ok(!rs.exists, "B does not exist: its size entry went with the dropped record");
	is_str(rel_size(pg, 2, 16384, 400, &rs), "REL_SIZE", "REL_SIZE of A at 400");
	ok(rs.exists && rs.nblocks == 3, "A has blocks 0..2 (%u)", rs.nblocks);
	is_str(getpage0(pg, 2, 16386, 400), "NO_RELATION", "the image of C/0 at 350 and its size went too");

	aurora_pageservice_stop(ps);
	aurora_segment_table_close(st);
}

/* ---- 5. the codecs ---- */

static void
test_codecs(void)
{
	aurora_trunc_entry h[3] = {{1, 100}, {2, 100}, {5, 300}};
	uint8_t		raw[48],
				buf[256];
	aurora_trunc_list l,
				l2;
	aurora_fence_ack a = {10, 20, 2, {0, NULL}},
				a2;
	aurora_truncate_ack t = {1, 2, 3, 4},
				t2;
	aurora_segment_info i,
				i2;
	size_t		n;
	uint64_t	cut = 0;

	is_str(aurora_msg_type_name(21), "FENCE_REQ", "type 21");
	is_str(aurora_msg_type_name(22), "FENCE_ACK", "type 22");
	is_str(aurora_msg_type_name(23), "TRUNCATE_REQ", "type 23");
	is_str(aurora_msg_type_name(24), "TRUNCATE_ACK", "type 24");
	is_str(aurora_error_name(20), "EPOCH_NOT_OPEN", "error 20");
	ok(aurora_trunc_history_check(h, 3, NULL, 0), "1@100, 2@100, 5@300 is a valid history");
	ok(aurora_trunc_cut_lsn(h, 3, 1, &cut) && cut == 100, "a segment truncated at 1 cuts at 100 (2@100)");
	ok(aurora_trunc_cut_lsn(h, 3, 2, &cut) && cut == 300, "one truncated at 2 cuts at 300");
	ok(!aurora_trunc_cut_lsn(h, 3, 5, &cut), "one truncated at 5 has nothing to cut");
	ok(aurora_trunc_history_is_prefix(h, 2, h, 3) && !aurora_trunc_history_is_prefix(h + 1, 2, h, 3),
	   "prefix test");
	aurora_trunc_list_fill(&l, h, 3, raw);
	n = aurora_truncate_req_encode(&l, buf, sizeof(buf));
	is_int(n, 2 + 48, "TRUNCATE_REQ is 2 + 16 bytes an entry");
	ok(aurora_truncate_req_decode(buf, n, &l2) == 0 && l2.n == 3 && aurora_trunc_list_at(&l2, 2).lsn == 300,
	   "TRUNCATE_REQ round trip");
	is_int(aurora_truncate_req_decode(buf, n - 1, &l2), AURORA_ERR_MALFORMED, "a short one is malformed");
	buf[0] = 0;
	buf[1] = 0x20;				/* 8192 entries: more than the maximum */
	is_int(aurora_truncate_req_decode(buf, n, &l2), AURORA_ERR_MALFORMED, "a count above 4096 is malformed");
	a.history = l;
	n = aurora_fence_ack_encode(&a, buf, sizeof(buf));
	ok(n == 24 + 2 + 48 && aurora_fence_ack_decode(buf, n, &a2) == 0 && a2.scl == 10 &&
	   a2.truncated_epoch == 2 && a2.history.n == 3 && aurora_trunc_list_at(&a2.history, 1).epoch == 2,
	   "FENCE_ACK round trip");
	n = aurora_truncate_ack_encode(&t, buf, sizeof(buf));
	ok(n == 32 && aurora_truncate_ack_decode(buf, n, &t2) == 0 && t2.bytes_dropped == 4, "TRUNCATE_ACK round trip");
	memset(&i, 0, sizeof(i));
	i.scl = 7;
	i.truncated_epoch = 5;
	i.history = l;
	n = aurora_segment_info_encode(&i, buf, sizeof(buf));
	ok(aurora_segment_info_decode(buf, n, &i2) == 0 && i2.truncated_epoch == 5 && i2.history.n == 3,
	   "SEGMENT_INFO with a history round trip");
	ok(aurora_segment_info_decode(buf, 36, &i2) == 0 && i2.truncated_epoch == 0 && i2.history.n == 0,
	   "the old 36-byte SEGMENT_INFO decodes with no truncation fields");
	is_int(aurora_segment_info_decode(buf, 40, &i2), AURORA_ERR_MALFORMED, "a body cut inside them does not");
}

int
main(void)
{
	make_tmpdir("truncate", tmpdir, sizeof(tmpdir));
	{
		char		logp[700];

		redirect_stderr_to_log(tmpdir, logp, sizeof(logp));
	}
	test_codecs();
	test_segment_truncation();
	test_missed_epochs();
	test_crash_mid_truncation();
	test_handler();
	remove_tree(tmpdir);
	done_testing();
}
