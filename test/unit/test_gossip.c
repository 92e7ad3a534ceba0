/*
 * test_gossip.c - unit tests of gap filling between segments
 * (storage_service/node/gossip.c): six in-process nodes (store, handler,
 * NNG server on ipc://) hold the six segments of a PG; gossip rounds are
 * driven one at a time on node 0 to check the fetch rule (wait one round,
 * then fetch exactly what is missing, then nothing more), that a peer in
 * another epoch is never used or changed, that records contradicting ours
 * are refused without writing anything, and that dead peers do not stop a
 * segment from catching up from the one peer left.  The same harness checks
 * RECORD_BEFORE over the wire, the request a resuming writer uses to learn
 * a PG's last backlink, and the quorum writer (PGCL callback, latencies, a
 * batch for a member that is briefly down reaching it once it is back).
 */
#define _DEFAULT_SOURCE

#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "gossip.h"
#include "pgwriter.h"
#include "handler.h"
#include "segment.h"
#include "server.h"
#include "segment_table.h"
#include "tap.h"
#include "testutil.h"
#include "util.h"

#define VOL			0x0000000000000042ULL
#define MAX_BODY	(1u << 20)
#define N_RECS		200
#define PAYLOAD		20

typedef struct node
{
	char		dir[600];
	char		url[700];
	aurora_segment_table *store;
	aurora_handler handler;
	aurora_server *server;
} node;

static node nodes[AURORA_PG_COPIES];
static char tmpdir[512];
static char log_path[700];

static void
rec_lsns(int i, uint64_t *start, uint64_t *end, uint64_t *prev)
{
	*start = 1000 + 100 * (uint64_t) i;
	*end = *start + 60;
	*prev = i == 0 ? 0 : *start - 100;
}

/* Record i of the PG; variant != 0 gives different payload bytes. */
static void
make_rec(int i, int variant, aurora_log_record *r, uint8_t *buf)
{
	rec_lsns(i, &r->start_lsn, &r->end_lsn, &r->prev_lsn);
	for (int j = 0; j < PAYLOAD; j++)
		buf[j] = (uint8_t) (r->start_lsn * 7 + (uint64_t) j + (uint64_t) variant * 13);
	r->len = PAYLOAD;
	r->payload = buf;
}

static void
append_recs(aurora_segment *seg, int from, int to, int variant)
{
	char		err[256];

	for (int i = from; i < to; i++)
	{
		aurora_log_record r;
		uint8_t		buf[PAYLOAD];

		make_rec(i, variant, &r, buf);
		if (aurora_segment_append(seg, &r, 1, MAX_BODY, NULL, err, sizeof(err)) != 0)
			bail_out("append record %d: %s", i, err);
	}
	if (aurora_segment_sync(seg, err, sizeof(err)) != 0)
		bail_out("sync: %s", err);
}

static uint64_t
rec_end(int i)
{
	uint64_t	s,
				e,
				p;

	rec_lsns(i, &s, &e, &p);
	return e;
}

/* The six in-process nodes as a PG's members: n0..n5, two per AZ. */
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

/* Segment of pg on node k, created on first use with the six ipc members. */
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

static aurora_segment_stats
stats_of(int k, uint32_t pg)
{
	aurora_segment_stats st;

	aurora_segment_get_stats(seg_of(k, pg), &st);
	return st;
}

typedef struct check_ctx
{
	int			count;
	int			bad;
} check_ctx;

static int
check_emit(void *arg, const aurora_log_record *r)
{
	check_ctx  *c = arg;
	aurora_log_record want;
	uint8_t		buf[PAYLOAD];
	int			i = (int) ((r->start_lsn - 1000) / 100);

	make_rec(i, 0, &want, buf);
	if (r->end_lsn != want.end_lsn || r->prev_lsn != want.prev_lsn || r->len != want.len ||
		memcmp(r->payload, buf, PAYLOAD) != 0)
		c->bad++;
	c->count++;
	return 0;
}

static check_ctx
read_all(int k, uint32_t pg)
{
	check_ctx	c = {0, 0};

	aurora_segment_read(seg_of(k, pg), 0, UINT64_MAX, SIZE_MAX, check_emit, &c, NULL);
	return c;
}

static aurora_gossip *
gossip_on_node0(uint32_t peer_timeout_ms)
{
	aurora_gossip_config cfg = {
		.self_node_id = "n0",
		.interval_ms = 0,
		.peer_timeout_ms = peer_timeout_ms,
		.max_body = MAX_BODY,
	};
	aurora_gossip *g;
	char		err[256];

	if (aurora_gossip_start(nodes[0].store, &cfg, &g, err, sizeof(err)) != 0)
		bail_out("gossip start: %s", err);
	return g;
}

static void
start_nodes(void)
{
	char		err[512];

	for (int k = 0; k < AURORA_PG_COPIES; k++)
	{
		node	   *n = &nodes[k];
		char		id[8];

		snprintf(id, sizeof(id), "n%d", k);
		snprintf(n->dir, sizeof(n->dir), "%s/n%d", tmpdir, k);
		snprintf(n->url, sizeof(n->url), "ipc://%s/n%d.sock", tmpdir, k);
		if (aurora_segment_table_open(n->dir, &n->store, err, sizeof(err)) != 0)
			bail_out("store n%d: %s", k, err);
		aurora_handler_init(&n->handler, id, "az", MAX_BODY);
		aurora_handler_set_store(&n->handler, n->store);
		if (aurora_server_start(n->url, &n->handler, &n->server, err, sizeof(err)) != 0)
			bail_out("server n%d: %s", k, err);
	}
}

static atomic_int pgcl_calls;
static _Atomic uint64_t pgcl_last;

static void
count_pgcl(void *arg, uint64_t pgcl)
{
	(void) arg;
	atomic_fetch_add(&pgcl_calls, 1);
	atomic_store(&pgcl_last, pgcl);
}

static bool
log_contains(const char *needle)
{
	static char text[1 << 16];

	fflush(stderr);
	read_text_file(log_path, text, sizeof(text));
	return strstr(text, needle) != NULL;
}

int
main(void)
{
	aurora_gossip *g;
	aurora_segment_stats st;
	check_ctx	c;

	make_tmpdir("gossip", tmpdir, sizeof(tmpdir));
	redirect_stderr_to_log(tmpdir, log_path, sizeof(log_path));
	start_nodes();

	/* --- PG 1: holes and a missing tail are filled, after one round ----- */
	for (int k = 1; k < AURORA_PG_COPIES; k++)
		append_recs(seg_of(k, 1), 0, N_RECS, 0);
	append_recs(seg_of(0, 1), 0, 50, 0);
	append_recs(seg_of(0, 1), 100, 150, 0);
	st = stats_of(0, 1);
	is_uint(st.scl, rec_end(49), "n0 SCL stops at its hole");
	is_uint(st.n_holes, 1, "n0 has one hole");

	g = gossip_on_node0(2000);
	aurora_gossip_round(g);
	st = stats_of(0, 1);
	is_uint(st.scl, rec_end(49), "first round fetches nothing: the writer may still deliver");
	is_uint(st.peer_scl, rec_end(N_RECS - 1), "but learns the peers' SCL");
	aurora_gossip_round(g);
	st = stats_of(0, 1);
	is_uint(st.scl, rec_end(N_RECS - 1), "second round: SCL reaches the peers'");
	is_uint(st.n_holes, 0, "no holes left");
	is_uint(st.records, N_RECS, "all records held");
	is_uint(st.records_from_peers, 100, "exactly the 100 missing records were fetched");
	c = read_all(0, 1);
	ok(c.count == N_RECS && c.bad == 0, "every record reads back intact (%d read, %d bad)",
	   c.count, c.bad);
	aurora_gossip_round(g);
	is_uint(stats_of(0, 1).records_from_peers, 100, "a caught-up segment fetches nothing more");
	ok(log_contains("fetched 100 records"), "the fetch is logged");

	/* --- PG 2: peers in another epoch are neither used nor changed ------- */
	for (int k = 1; k < AURORA_PG_COPIES; k++)
	{
		char		err[256];

		append_recs(seg_of(k, 2), 0, 20, 0);
		if (aurora_segment_set_epochs(seg_of(k, 2), 2, 1, err, sizeof(err)) != 0)
			bail_out("set epochs: %s", err);
	}
	append_recs(seg_of(0, 2), 0, 5, 0);
	aurora_gossip_round(g);
	aurora_gossip_round(g);
	st = stats_of(0, 2);
	is_uint(st.scl, rec_end(4), "peers in volume epoch 2 are not a source for an epoch-1 segment");
	is_uint(st.peer_scl, 0, "and their SCL is not counted");
	is_uint(st.volume_epoch, 1, "gossip does not raise our epoch");
	is_uint(stats_of(1, 2).volume_epoch, 2, "nor lower the peer's");

	/* --- PG 3: records that contradict ours are refused, nothing written -- */
	for (int k = 1; k < AURORA_PG_COPIES; k++)
	{
		append_recs(seg_of(k, 3), 0, 15, 0);
		append_recs(seg_of(k, 3), 15, 16, 1);	/* record 15 differs from n0's */
		append_recs(seg_of(k, 3), 16, 20, 0);
	}
	append_recs(seg_of(0, 3), 0, 10, 0);
	append_recs(seg_of(0, 3), 15, 16, 0);
	aurora_gossip_round(g);
	aurora_gossip_round(g);
	st = stats_of(0, 3);
	is_uint(st.records, 11, "a batch holding a contradicting record is not appended at all");
	is_uint(st.scl, rec_end(9), "SCL unchanged");
	ok(log_contains("refused"), "the inconsistency is logged");

	/* --- RECORD_BEFORE over the wire (node 5, PG 1: records 0..199) ------- */
	{
		aurora_header h,
					rh;
		uint8_t		req[AURORA_HEADER_SIZE + 8];
		uint8_t    *rep = NULL;
		const uint8_t *body;
		size_t		rep_len = 0;
		aurora_record_before rb;
		char		err[256];
		uint8_t		lsnbuf[8];

		memset(&h, 0, sizeof(h));
		h.type = AURORA_MSG_RECORD_BEFORE_REQ;
		h.volume_id = VOL;
		h.pg_id = 1;
		h.volume_epoch = 1;
		h.membership_epoch = 1;
		h.request_id = 77;
		aurora_record_before_req_encode(1000 + 100 * 50 + 1, lsnbuf, sizeof(lsnbuf));
		ok(aurora_request(nodes[5].url, 2000, req,
						  aurora_encode(&h, lsnbuf, 8, req, sizeof(req)), &rep, &rep_len,
						  err, sizeof(err)) == 0 &&
		   aurora_decode(rep, rep_len, MAX_BODY, &rh, &body) == 0 &&
		   rh.type == AURORA_MSG_RECORD_BEFORE && rh.request_id == 77 &&
		   aurora_record_before_decode(body, rh.body_len, &rb) == 0 &&
		   rb.found && rb.start_lsn == 1000 + 100 * 50 && rb.prev_lsn == 1000 + 100 * 49 &&
		   rb.scl == rec_end(N_RECS - 1),
		   "RECORD_BEFORE: the header of record 50, and the segment's SCL");
		free(rep);
		h.volume_epoch = 0;
		ok(aurora_request(nodes[5].url, 2000, req,
						  aurora_encode(&h, lsnbuf, 8, req, sizeof(req)), &rep, &rep_len,
						  err, sizeof(err)) == 0 &&
		   aurora_decode(rep, rep_len, MAX_BODY, &rh, &body) == 0 &&
		   rh.type == AURORA_MSG_ERROR,
		   "RECORD_BEFORE from an older epoch is fenced");
		free(rep);
	}

	/* --- the quorum writer's PGCL notification, against the same nodes --- */
	{
		aurora_pg_target t;
		aurora_pgwriter *w;
		aurora_log_record recs[10];
		uint8_t		bufs[10][PAYLOAD];
		char		err[256];

		memset(&t, 0, sizeof(t));
		t.volume_id = VOL;
		t.pg_id = 9;
		t.volume_epoch = 1;
		t.membership_epoch = 1;
		set_members(t.members);
		if (aurora_pgwriter_open(&t, 4, 2000, &w, err, sizeof(err)) != 0)
			bail_out("pgwriter: %s", err);
		is_int(aurora_pgwriter_create_segments(w, err, sizeof(err)), 6, "PG 9 created on six nodes");
		aurora_pgwriter_on_pgcl(w, count_pgcl, NULL);
		for (int i = 0; i < 10; i++)
			make_rec(i, 0, &recs[i], bufs[i]);
		ok(aurora_pgwriter_append(w, recs, 10, err, sizeof(err)) == 0 &&
		   aurora_pgwriter_wait_pgcl(w, rec_end(9), 5000), "a batch reaches PGCL");
		is_uint(aurora_pgwriter_pgcl(w), rec_end(9), "aurora_pgwriter_pgcl reports it");
		ok(atomic_load(&pgcl_calls) >= 1, "the PGCL callback ran (%d times)",
		   atomic_load(&pgcl_calls));
		is_uint(atomic_load(&pgcl_last), rec_end(9), "... and was handed the new PGCL");
		{
			/* every segment that acknowledged has one latency sample per ack */
			double		lat[8];
			int			with_sample = 0;

			aurora_pgwriter_drain(w, 5000);
			for (int i = 0; i < AURORA_PG_COPIES; i++)
			{
				int			n = aurora_pgwriter_ack_latencies(w, i, 0, lat, 8);

				with_sample += n == 1 && lat[0] >= 0 && lat[0] < 5000;
			}
			is_int(with_sample, 6, "each segment has one acknowledgement latency sample");
			is_int(aurora_pgwriter_ack_latencies(w, 6, 0, lat, 8), 0, "no segment 6");
			{
				double		p50 = -1,
							p99 = -1;
				struct timespec nap = {0, 50 * 1000 * 1000};

				is_uint(aurora_pgwriter_quorum_latency(w, 60000, &p50, &p99), 1,
						"one quorum latency sample within the last minute");
				ok(p50 >= 0 && p99 >= p50, "with its p50 and p99");
				nanosleep(&nap, NULL);
				is_uint(aurora_pgwriter_quorum_latency(w, 20, &p50, &p99), 0,
						"none within the last 20 ms, 50 ms later: old samples age out");
				is_int(aurora_pgwriter_ack_latencies(w, 0, 20, lat, 8), 0,
					   "acknowledgement latencies age out too");
			}
		}
		{
			/*
			 * A member down for less than the timeout misses nothing: the
			 * batch waits for its connection.  Only node 0 gossips, so n5
			 * can have the records from the writer alone.
			 */
			aurora_log_record more[10];
			uint8_t		mbufs[10][PAYLOAD];
			aurora_pgwriter_view v;
			double		t0;
			struct timespec nap = {0, 10 * 1000 * 1000};

			aurora_server_stop(nodes[5].server);
			nodes[5].server = NULL;
			for (int i = 0; i < 10; i++)
				make_rec(10 + i, 0, &more[i], mbufs[i]);
			ok(aurora_pgwriter_append(w, more, 10, err, sizeof(err)) == 0 &&
			   aurora_pgwriter_wait_pgcl(w, rec_end(19), 5000),
			   "a batch reaches PGCL with one member down");
			aurora_pgwriter_view_get(w, &v);
			is_uint(v.seg[5].scl, rec_end(9), "the member that is down has not acknowledged it");
			if (aurora_server_start(nodes[5].url, &nodes[5].handler, &nodes[5].server,
									err, sizeof(err)) != 0)
				bail_out("restart n5: %s", err);
			t0 = aurora_monotonic_ms();
			do
			{
				nanosleep(&nap, NULL);
				aurora_pgwriter_view_get(w, &v);
			} while (v.seg[5].scl != rec_end(19) && aurora_monotonic_ms() - t0 < test_ms(1800));
			is_uint(v.seg[5].scl, rec_end(19),
					"back within the timeout, it gets the batch sent while it was down");
			is_uint(v.seg[5].errors, 0, "and nothing counts as an error");
		}
		aurora_pgwriter_close(w);
	}

	/* --- PG 4: four dead peers; the fifth is enough ---------------------- */
	for (int k = 1; k < AURORA_PG_COPIES; k++)
		append_recs(seg_of(k, 4), 0, 30, 0);
	(void) seg_of(0, 4);
	for (int k = 1; k <= 4; k++)
	{
		aurora_server_stop(nodes[k].server);
		nodes[k].server = NULL;
	}
	aurora_gossip_stop(g);
	g = gossip_on_node0(200);
	{
		double		t0 = aurora_monotonic_ms();

		aurora_gossip_round(g);
		aurora_gossip_round(g);
		diag("two rounds with four dead peers took %.0f ms", aurora_monotonic_ms() - t0);
	}
	st = stats_of(0, 4);
	is_uint(st.scl, rec_end(29), "caught up from the one live peer");
	is_uint(st.records_from_peers, 30, "all 30 records came from it");
	ok(log_contains("does not answer"), "dead peers are logged");
	aurora_gossip_stop(g);

	for (int k = 0; k < AURORA_PG_COPIES; k++)
	{
		aurora_server_stop(nodes[k].server);
		aurora_segment_table_close(nodes[k].store);
	}
	remove_tree(tmpdir);
	return done_testing();
}
