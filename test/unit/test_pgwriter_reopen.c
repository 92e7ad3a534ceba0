/*
 * test_pgwriter_reopen.c - the quorum writer reopens segments that missed
 * the truncation of a volume open (storage_service/common/pgwriter.c,
 * PROTOCOL.md 5.10): six in-process nodes (store, handler, NNG server on
 * ipc://, real files and fsync) hold a PG written at epoch 1 with a ragged
 * edge on three segments; an opener fences and truncates only three of
 * them at epoch 2 (one more fenced only, one untouched, one down); a writer
 * at epoch 2 given the history sees EPOCH_NOT_OPEN from the others, sends
 * each the history itself, and from then on they take its batches: they
 * catch up by gossip, PGCL reaches the end on a write quorum, and the
 * epoch-1 records above VDL are gone from them.  The node that was down is
 * reopened once it is started; CREATE_SEGMENT reopens the same way; a
 * segment whose truncation keeps failing is sent at most one TRUNCATE a
 * second and is reopened once it can be; a history that does not end at
 * the writer's epoch is refused.
 */
#define _DEFAULT_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gossip.h"
#include "handler.h"
#include "pgwriter.h"
#include "segment.h"
#include "segment_table.h"
#include "server.h"
#include "tap.h"
#include "testutil.h"
#include "truncation.h"
#include "util.h"

#define VOL			0x0000000000000063ULL
#define MAX_BODY	(1u << 20)
#define PAYLOAD		24
#define TIMEOUT_MS	2000

typedef struct node
{
	char		dir[600];
	char		url[700];
	aurora_segment_table *store;
	aurora_handler handler;
	aurora_server *server;
	aurora_gossip *gossip;
} node;

static node nodes[AURORA_PG_COPIES];
static char tmpdir[512];

/* ---- records: i at [1000 + 100 i, +60), variant picks the payload bytes ---- */

static uint64_t
rec_start(int i)
{
	return 1000 + 100 * (uint64_t) i;
}

static uint64_t
rec_end(int i)
{
	return rec_start(i) + 60;
}

static void
make_rec(int i, int variant, aurora_log_record *r, uint8_t *buf)
{
	r->start_lsn = rec_start(i);
	r->end_lsn = rec_end(i);
	r->prev_lsn = i == 0 ? 0 : rec_start(i - 1);
	for (int j = 0; j < PAYLOAD; j++)
		buf[j] = (uint8_t) (r->start_lsn * 7 + (uint64_t) j + (uint64_t) variant * 101);
	r->len = PAYLOAD;
	r->payload = buf;
}

/* Send records from..to-1 of variant in one batch to the members in mask. */
static bool
send_recs(aurora_pgwriter *w, int from, int to, int variant, unsigned mask)
{
	static uint8_t bufs[64][PAYLOAD];
	aurora_log_record recs[64];
	char		err[256];

	for (int i = from; i < to; i++)
		make_rec(i, variant, &recs[i - from], bufs[i - from]);
	if (aurora_pgwriter_append_to(w, recs, to - from, mask, err, sizeof(err)) != 0)
	{
		diag("append %d..%d: %s", from, to, err);
		return false;
	}
	return true;
}

/* ---- nodes ---- */

static void
set_members(aurora_member *members)
{
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		snprintf(members[i].node_id, sizeof(members[i].node_id), "n%d", i);
		snprintf(members[i].az, sizeof(members[i].az), "az%d", i / 2);
		snprintf(members[i].url, sizeof(members[i].url), "%s", nodes[i].url);
	}
}

/* Segment of pg on node k, created at epoch 1 on first use. */
static aurora_segment *
seg_of(int k, uint32_t pg)
{
	aurora_segment_meta m;
	aurora_segment *seg = aurora_segment_table_find(nodes[k].store, VOL, pg);
	char		err[256];

	if (seg != NULL)
		return seg;
	memset(&m, 0, sizeof(m));
	m.volume_id = VOL;
	m.pg_id = pg;
	m.replica_index = (uint32_t) k;
	m.volume_epoch = 1;
	m.membership_epoch = 1;
	set_members(m.members);
	if (aurora_segment_table_create_segment(nodes[k].store, &m, m.members[k].node_id, &seg,
											err, sizeof(err)) != 0)
		bail_out("create segment pg %u on n%d: %s", pg, k, err);
	return seg;
}

static void
start_server(int k)
{
	char		err[512];

	if (aurora_server_start(nodes[k].url, &nodes[k].handler, &nodes[k].server, err, sizeof(err)) != 0)
		bail_out("server n%d: %s", k, err);
}

static void
stop_server(int k)
{
	aurora_server_stop(nodes[k].server);
	nodes[k].server = NULL;
}

static void
start_nodes(void)
{
	char		err[512];

	for (int k = 0; k < AURORA_PG_COPIES; k++)
	{
		node	   *n = &nodes[k];
		aurora_gossip_config gc;
		char		id[8];

		snprintf(id, sizeof(id), "n%d", k);
		snprintf(n->dir, sizeof(n->dir), "%s/n%d", tmpdir, k);
		snprintf(n->url, sizeof(n->url), "ipc://%s/n%d.sock", tmpdir, k);
		if (aurora_segment_table_open(n->dir, &n->store, err, sizeof(err)) != 0)
			bail_out("store n%d: %s", k, err);
		aurora_handler_init(&n->handler, id, "az", MAX_BODY);
		aurora_handler_set_store(&n->handler, n->store);
		start_server(k);
		/* rounds on demand only: no truncation is adopted behind the test's back */
		memset(&gc, 0, sizeof(gc));
		gc.self_node_id = n->handler.node_id;
		gc.interval_ms = 0;
		gc.peer_timeout_ms = 1000;
		gc.max_body = MAX_BODY;
		if (aurora_gossip_start(n->store, &gc, &n->gossip, err, sizeof(err)) != 0)
			bail_out("gossip n%d: %s", k, err);
	}
}

/* The opener's work on one segment: fence at epoch, and truncate to hist unless fence_only. */
static void
open_segment(int k, uint32_t pg, const aurora_trunc_entry *hist, int n, bool fence_only)
{
	aurora_segment_truncation res;
	char		err[512];

	if (aurora_segment_fence(seg_of(k, pg), hist[n - 1].epoch, err, sizeof(err)) != 0)
		bail_out("fence n%d: %s", k, err);
	if (!fence_only &&
		aurora_truncation_apply(seg_of(k, pg), NULL, NULL, hist, n, &res, err, sizeof(err)) != 0)
		bail_out("truncate n%d: %s", k, err);
}

static aurora_segment_stats
stats_of(int k, uint32_t pg)
{
	aurora_segment_stats st;

	aurora_segment_get_stats(seg_of(k, pg), &st);
	return st;
}

/* Two rounds: gossip fetches what a peer held one round earlier. */
static void
gossip_twice(int k)
{
	aurora_gossip_round(nodes[k].gossip);
	aurora_gossip_round(nodes[k].gossip);
}

typedef struct log_check
{
	int			count;
	int			bad;			/* records whose bytes are not variant (i < 10 ? 0 : 1) */
	int			above_vdl_epoch1;	/* epoch-1 records at or above VDL */
} log_check;

static int
check_emit(void *arg, const aurora_log_record *r)
{
	log_check  *c = arg;
	int			i = (int) ((r->start_lsn - 1000) / 100);
	aurora_log_record want;
	uint8_t		buf[PAYLOAD];

	make_rec(i, i < 10 ? 0 : 1, &want, buf);
	if (r->end_lsn != want.end_lsn || r->prev_lsn != want.prev_lsn || r->len != want.len ||
		memcmp(r->payload, buf, PAYLOAD) != 0)
		c->bad++;
	make_rec(i, 0, &want, buf);
	if (i >= 10 && r->len == PAYLOAD && memcmp(r->payload, buf, PAYLOAD) == 0)
		c->above_vdl_epoch1++;
	c->count++;
	return 0;
}

/* Every record of pg on node k, as READ_LOG serves them. */
static log_check
read_log(int k, uint32_t pg)
{
	log_check	c = {0, 0, 0};

	aurora_segment_read(seg_of(k, pg), 0, UINT64_MAX, SIZE_MAX, check_emit, &c, NULL);
	return c;
}

static aurora_segment_view
view_of(aurora_pgwriter *w, int k)
{
	aurora_pgwriter_view v;

	aurora_pgwriter_view_get(w, &v);
	return v.seg[k];
}

/* Wait up to ms for member k's reopened count to reach n. */
static bool
wait_reopened(aurora_pgwriter *w, int k, uint64_t n, int ms)
{
	for (int waited = 0; waited < ms; waited += 10)
	{
		if (view_of(w, k).reopened >= n)
			return true;
		usleep(10000);
	}
	return view_of(w, k).reopened >= n;
}

static void
make_target(aurora_pg_target *t, uint32_t pg, uint64_t epoch, const aurora_trunc_entry *hist, int n)
{
	memset(t, 0, sizeof(*t));
	t->volume_id = VOL;
	t->pg_id = pg;
	t->volume_epoch = epoch;
	t->membership_epoch = 1;
	set_members(t->members);
	t->history = hist;
	t->n_history = n;
}

static aurora_pgwriter *
open_writer(uint32_t pg, uint64_t epoch, const aurora_trunc_entry *hist, int n)
{
	aurora_pg_target t;
	aurora_pgwriter *w;
	char		err[512];

	make_target(&t, pg, epoch, hist, n);
	if (aurora_pgwriter_open(&t, 4, TIMEOUT_MS, &w, err, sizeof(err)) != 0)
		bail_out("pgwriter open: %s", err);
	return w;
}

/* ---- 1. segments that missed the truncation, one of them down ---- */

static void
test_reopen(void)
{
	const uint32_t pg = 0;
	aurora_pgwriter *w;
	aurora_trunc_entry hist[1];
	uint64_t	vdl = rec_end(9);
	log_check	c;

	for (int k = 0; k < AURORA_PG_COPIES; k++)
		(void) seg_of(k, pg);

	/* epoch 1: records 0..9 everywhere, 10..14 (the ragged edge) on n3, n4, n5 only */
	w = open_writer(pg, 1, NULL, 0);
	ok(send_recs(w, 0, 10, 0, AURORA_PGWRITER_ALL_MEMBERS) && aurora_pgwriter_wait_pgcl(w, vdl, 5000),
	   "epoch 1: records 0..9 on a write quorum");
	ok(send_recs(w, 10, 15, 0, (1u << 3) | (1u << 4) | (1u << 5)) && aurora_pgwriter_drain(w, 5000),
	   "records 10..14 on three segments only");
	aurora_pgwriter_close(w);
	is_uint(stats_of(4, pg).scl, rec_end(14), "n4 holds the ragged edge (SCL %llu)",
			(unsigned long long) rec_end(14));

	/* the open at epoch 2: VDL is the end of record 9; n5 is down, n3 fenced only, n4 untouched */
	stop_server(5);
	hist[0].epoch = 2;
	hist[0].lsn = vdl;
	for (int k = 0; k < 3; k++)
		open_segment(k, pg, hist, 1, false);
	open_segment(3, pg, hist, 1, true);

	w = open_writer(pg, 2, hist, 1);
	ok(send_recs(w, 10, 13, 1, AURORA_PGWRITER_ALL_MEMBERS), "epoch 2: a first batch (new records 10..12)");
	ok(wait_reopened(w, 3, 1, 5000), "n3 (fenced, not truncated) is reopened");
	ok(wait_reopened(w, 4, 1, 5000), "n4 (still at epoch 1) is reopened");
	{
		aurora_segment_view v3 = view_of(w, 3),
					v4 = view_of(w, 4);

		ok(v3.errors >= 1 && v4.errors >= 1, "after answering EPOCH_NOT_OPEN (errors %llu, %llu)",
		   (unsigned long long) v3.errors, (unsigned long long) v4.errors);
		ok(v3.reopen_attempts == 1 && v4.reopen_attempts == 1, "with one TRUNCATE each (%llu, %llu)",
		   (unsigned long long) v3.reopen_attempts, (unsigned long long) v4.reopen_attempts);
	}
	for (int k = 0; k < 3; k++)
		ok(view_of(w, k).reopen_attempts == 0 && view_of(w, k).reopened == 0,
		   "n%d, truncated by the opener, is sent no TRUNCATE", k);
	c = read_log(4, pg);
	is_int(c.above_vdl_epoch1, 0, "n4's epoch-1 records above VDL are gone (%d records left)", c.count);

	ok(send_recs(w, 13, 20, 1, AURORA_PGWRITER_ALL_MEMBERS) && aurora_pgwriter_drain(w, TIMEOUT_MS + 1000),
	   "a second batch (13..19)");
	ok(view_of(w, 3).acks >= 1 && view_of(w, 4).acks >= 1, "the reopened segments acknowledge it");
	ok(stats_of(3, pg).highest_lsn == rec_end(19) && stats_of(4, pg).highest_lsn == rec_end(19),
	   "and store it (after a gap: the first batch was refused)");
	gossip_twice(3);
	gossip_twice(4);
	is_uint(stats_of(3, pg).scl, rec_end(19), "n3 caught up by gossip");
	is_uint(stats_of(4, pg).scl, rec_end(19), "n4 caught up by gossip");
	aurora_pgwriter_probe(w, false);
	{
		bool		reached = aurora_pgwriter_wait_pgcl(w, rec_end(19), 5000);

		ok(reached, "PGCL reaches the end on a write quorum (%llu)",
		   (unsigned long long) aurora_pgwriter_pgcl(w));
	}
	for (int k = 3; k < 5; k++)
	{
		c = read_log(k, pg);
		ok(c.count == 20 && c.bad == 0 && c.above_vdl_epoch1 == 0,
		   "n%d holds 0..9 of epoch 1 and 10..19 of epoch 2, nothing else (%d records, %d wrong)",
		   k, c.count, c.bad);
	}

	/* n5 comes back at epoch 1 with its ragged edge */
	start_server(5);
	ok(send_recs(w, 20, 25, 1, AURORA_PGWRITER_ALL_MEMBERS), "n5 started; another batch (20..24)");
	ok(wait_reopened(w, 5, 1, 5000), "n5, down during the open, is reopened");
	is_uint(view_of(w, 5).reopen_attempts, 1, "with one TRUNCATE");
	ok(aurora_pgwriter_wait_pgcl(w, rec_end(24), 5000), "PGCL reaches 24");
	gossip_twice(5);
	is_uint(stats_of(5, pg).scl, rec_end(24), "n5 caught up by gossip");
	c = read_log(5, pg);
	ok(c.count == 25 && c.bad == 0 && c.above_vdl_epoch1 == 0,
	   "n5 holds the epoch-2 log, its epoch-1 records above VDL are gone (%d records, %d wrong)",
	   c.count, c.bad);
	aurora_pgwriter_drain(w, 5000);
	aurora_pgwriter_close(w);
}

/* ---- 2. CREATE_SEGMENT reopens the same way ---- */

static void
test_create_reopens(void)
{
	const uint32_t pg = 2;
	aurora_trunc_entry hist[1] = {{2, 0}};
	aurora_pgwriter *w;
	char		err[256] = "";

	for (int k = 0; k < AURORA_PG_COPIES; k++)
		(void) seg_of(k, pg);
	for (int k = 0; k < 4; k++)
		open_segment(k, pg, hist, 1, false);
	open_segment(4, pg, hist, 1, true);
	w = open_writer(pg, 2, hist, 1);
	is_int(aurora_pgwriter_create_segments(w, err, sizeof(err)), 6,
		   "CREATE_SEGMENT at epoch 2 counts all six created (%s)", err);
	ok(view_of(w, 4).reopened == 1 && view_of(w, 5).reopened == 1,
	   "n4 (fenced only) and n5 (epoch 1) were reopened for it");
	ok(send_recs(w, 0, 5, 1, AURORA_PGWRITER_ALL_MEMBERS) && aurora_pgwriter_drain(w, 5000) &&
	   view_of(w, 4).acks == 1 && view_of(w, 5).acks == 1 && stats_of(5, pg).scl == rec_end(4),
	   "and take the first batch at once");
	aurora_pgwriter_close(w);
}

/* ---- 3. a segment whose truncation keeps failing ---- */

static void
test_failing_truncation(void)
{
	const uint32_t pg = 1;
	aurora_trunc_entry hist[1] = {{2, 0}};
	aurora_pgwriter *w;
	aurora_segment_view v;
	char		name[64],
				blocker[900];
	double		t0,
				elapsed;

	for (int k = 0; k < AURORA_PG_COPIES; k++)
		(void) seg_of(k, pg);
	for (int k = 0; k < 5; k++)
		open_segment(k, pg, hist, 1, false);

	/*
	 * n5's meta cannot be rewritten (a directory where the meta's temporary
	 * file goes): every TRUNCATE fails with IO, and changes nothing.
	 */
	aurora_segment_dir_name(VOL, pg, name, sizeof(name));
	snprintf(blocker, sizeof(blocker), "%s/segments/%s/meta.tmp", nodes[5].dir, name);
	if (mkdir(blocker, 0700) != 0)
		bail_out("mkdir %s", blocker);

	w = open_writer(pg, 2, hist, 1);
	t0 = aurora_monotonic_ms();
	ok(send_recs(w, 0, 3, 1, AURORA_PGWRITER_ALL_MEMBERS), "a batch at epoch 2");
	usleep((useconds_t) test_ms(3500) * 1000);
	v = view_of(w, 5);
	elapsed = aurora_monotonic_ms() - t0;
	ok(v.reopen_attempts >= 2, "the failing segment is tried again (%llu attempts)",
	   (unsigned long long) v.reopen_attempts);
	ok(v.reopen_attempts <= (uint64_t) (elapsed / AURORA_PGWRITER_REOPEN_RETRY_MS) + 1,
	   "but at most once a second (%llu attempts in %.0f ms)", (unsigned long long) v.reopen_attempts,
	   elapsed);
	ok(v.reopened == 0 && v.last_error_code == AURORA_ERR_IO, "none succeeded: %s", v.last_error);
	ok(aurora_pgwriter_wait_pgcl(w, rec_end(2), 2000), "the other five carry PGCL meanwhile");

	rmdir(blocker);
	ok(wait_reopened(w, 5, 1, test_ms(3000)), "once it can be written, the next attempt reopens it");
	ok(send_recs(w, 3, 6, 1, AURORA_PGWRITER_ALL_MEMBERS) && aurora_pgwriter_drain(w, 5000) &&
	   stats_of(5, pg).highest_lsn == rec_end(5), "and it takes the next batch");
	aurora_pgwriter_close(w);
}

/* ---- 4. the history given must be the writer's ---- */

static void
test_bad_history(void)
{
	aurora_trunc_entry wrong_epoch[2] = {{1, 100}, {2, 200}};
	aurora_trunc_entry descending[2] = {{3, 200}, {3, 300}};
	aurora_pg_target t;
	aurora_pgwriter *w = NULL;
	char		err[512] = "";

	make_target(&t, 7, 3, wrong_epoch, 2);
	is_int(aurora_pgwriter_open(&t, 4, 100, &w, err, sizeof(err)), -1,
		   "a history ending at epoch 2 for a writer at 3 is refused");
	like(err, "ends at epoch 2", "saying so: %s", err);
	make_target(&t, 7, 3, descending, 2);
	is_int(aurora_pgwriter_open(&t, 4, 100, &w, err, sizeof(err)), -1,
		   "a history with a repeated epoch is refused");
	like(err, "invalid truncation history", "saying so: %s", err);
	ok(w == NULL, "and no writer is made");
}

int
main(void)
{
	char		logp[700];

	make_tmpdir("pgwreopen", tmpdir, sizeof(tmpdir));
	redirect_stderr_to_log(tmpdir, logp, sizeof(logp));
	start_nodes();
	test_bad_history();
	test_reopen();
	test_create_reopens();
	test_failing_truncation();
	for (int k = 0; k < AURORA_PG_COPIES; k++)
	{
		aurora_gossip_stop(nodes[k].gossip);
		stop_server(k);
		aurora_segment_table_close(nodes[k].store);
	}
	remove_tree(tmpdir);
	done_testing();
}
