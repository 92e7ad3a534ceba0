/*
 * test_pageserver.c - the page requests end to end through the real
 * aurora-storage daemon: CREATE_SEGMENT with a geometry, SEED_PAGES,
 * GETPAGE of seeded pages, REL_SIZE, the errors (NO_SEGMENT, STALE_EPOCH,
 * NOT_READY, BELOW_HORIZON, NO_RELATION, NO_BLOCK, UNAVAILABLE without a
 * redo helper), a GETPAGE waiting for a record that arrives meanwhile, and
 * that a waiting request does not hold up other requests (page threads, not
 * NNG's).  Without walredo_postgres no page needing redo can be served;
 * redo end to end belongs to the WAL-redo pool's tests.
 */
#define _DEFAULT_SOURCE

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "logmsg.h"
#include "pagemsg.h"
#include "tap.h"
#include "testutil.h"
#include "util.h"
#include "walmeta.h"
#include "wire.h"

#define MAX_BODY (1 << 20)

static char tmpdir[512];
static char url[128];

typedef struct reply
{
	uint16_t	type;
	uint32_t	code;				/* ERROR code */
	char		message[1100];
	uint8_t    *body;			/* malloc'd */
	size_t		len;
	uint64_t	volume_epoch;
} reply;

static void
request(uint16_t type, uint32_t pg, uint64_t epoch, const uint8_t *body, size_t len, reply *r)
{
	aurora_header h;
	uint8_t    *msg = malloc(AURORA_HEADER_SIZE + len);
	uint8_t    *rep = NULL;
	size_t		rep_len = 0;
	char		err[256];
	const uint8_t *rb;

	memset(r, 0, sizeof(*r));
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.volume_id = 1;
	h.pg_id = pg;
	h.volume_epoch = epoch;
	h.membership_epoch = 1;
	h.request_id = 7;
	len = aurora_encode(&h, body, len, msg, AURORA_HEADER_SIZE + len);
	if (aurora_request(url, 10000, msg, len, &rep, &rep_len, err, sizeof(err)) != 0 ||
		aurora_decode(rep, rep_len, 1 << 24, &h, &rb) != 0)
	{
		snprintf(r->message, sizeof(r->message), "no reply: %s", err);
		free(msg);
		free(rep);
		return;
	}
	r->type = h.type;
	r->volume_epoch = h.volume_epoch;
	if (h.type == AURORA_MSG_ERROR)
	{
		aurora_error_body e;

		if (aurora_error_body_decode(rb, h.body_len, &e) == 0)
		{
			r->code = e.code;
			snprintf(r->message, sizeof(r->message), "%s", e.message);
		}
	}
	r->body = malloc(h.body_len + 1);
	memcpy(r->body, rb, h.body_len);
	r->len = h.body_len;
	free(msg);
	free(rep);
}

static uint32_t
getpage(aurora_block_ref b, uint64_t lsn, uint32_t wait_ms, aurora_page_resp *p, char *msg)
{
	aurora_getpage_req g = {b, lsn, wait_ms};
	uint8_t		body[64];
	reply		r;
	uint32_t	code;

	request(AURORA_MSG_GETPAGE_REQ, 0, 2, body, aurora_getpage_req_encode(&g, body, sizeof(body)), &r);
	if (msg != NULL)
		strcpy(msg, r.message);
	if (r.type == AURORA_MSG_PAGE)
		code = aurora_page_resp_decode(r.body, r.len, p) == 0 ? 0 : 999;
	else
		code = r.type == AURORA_MSG_ERROR ? r.code : 1000u + r.type;
	free(r.body);
	return code;
}

static aurora_block_ref
blk(uint32_t rel, uint32_t blkno)
{
	aurora_block_ref b = {1663, 5, rel, 0, blkno};

	return b;
}

static void
fake_page(uint8_t *p, uint8_t fill, uint32_t lsn)
{
	memset(p, fill, AURORA_PAGE_BYTES);
	memset(p, 0, 4);
	p[4] = (uint8_t) lsn;
	p[5] = (uint8_t) (lsn >> 8);
	p[6] = (uint8_t) (lsn >> 16);
	p[7] = (uint8_t) (lsn >> 24);
}

static size_t
payload(uint8_t *out, size_t cap, aurora_block_ref b, uint8_t flags)
{
	aurora_buf	w;
	aurora_walmeta_block mb;
	uint32_t	wal = 40;

	mb.ref = b;
	mb.flags = flags;
	aurora_buf_init_writer(&w, out, cap);
	aurora_walmeta_put(&w, &mb, 1, NULL, 0);
	memset(out + aurora_buf_len(&w), 0x5c, wal);
	out[aurora_buf_len(&w)] = (uint8_t) wal;
	out[aurora_buf_len(&w) + 1] = 0;
	out[aurora_buf_len(&w) + 2] = 0;
	out[aurora_buf_len(&w) + 3] = 0;
	return aurora_buf_len(&w) + wal;
}

static uint16_t
append(uint64_t start, uint64_t end, uint64_t prev, aurora_block_ref b)
{
	uint8_t		pl[512];
	aurora_log_record rec;
	uint8_t		body[1024];
	reply		r;
	uint16_t	t;

	rec.start_lsn = start;
	rec.end_lsn = end;
	rec.prev_lsn = prev;
	rec.len = (uint32_t) payload(pl, sizeof(pl), b, AURORA_BLOCK_WILL_INIT);
	rec.payload = pl;
	request(AURORA_MSG_LOG_APPEND, 0, 2, body, aurora_log_append_encode(&rec, 1, body, sizeof(body)), &r);
	t = r.type;
	if (t != AURORA_MSG_LOG_ACK)
		diag("append: %s", r.message);
	free(r.body);
	return t;
}

typedef struct waiter
{
	uint64_t	lsn;
	uint32_t	wait_ms;
	uint32_t	code;
	double		took_ms;
	aurora_page_resp page;
} waiter;

static void *
wait_thread(void *arg)
{
	waiter	   *w = arg;
	double		t0 = aurora_monotonic_ms();

	w->code = getpage(blk(16384, 0), w->lsn, w->wait_ms, &w->page, NULL);
	w->took_ms = aurora_monotonic_ms() - t0;
	return NULL;
}

int
main(void)
{
	const char *daemon_bin = test_binary("AURORA_STORAGE_BIN", "aurora-storage");
	char		conf[700],
				logp[700],
				data[700],
				text[2048];
	char		msg[1100];
	pid_t		pid = -1;
	int			status;
	aurora_page_resp page;
	static uint8_t p0[AURORA_PAGE_BYTES],
				p1[AURORA_PAGE_BYTES];

	make_tmpdir("pageserver", tmpdir, sizeof(tmpdir));
	snprintf(conf, sizeof(conf), "%s/n0.conf", tmpdir);
	snprintf(logp, sizeof(logp), "%s/n0.log", tmpdir);
	snprintf(data, sizeof(data), "%s/data", tmpdir);
	for (int attempt = 0; attempt < 5; attempt++)
	{
		char	   *argv[] = {(char *) daemon_bin, (char *) "--config", conf, NULL};

		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_tcp_port());
		snprintf(text, sizeof(text),
				 "node_id = n0\naz = az1\nlisten_url = %s\ndata_dir = %s\nmax_message_bytes = %d\n"
				 "gossip_interval_ms = 0\npage_threads = 2\ncoalesce_threshold = 3\n",
				 url, data, MAX_BODY);
		write_text_file(conf, text);
		pid = spawn_logged(argv, logp);
		if (wait_for_status(url, pid, 10000))
			break;
		kill(pid, SIGKILL);
		wait_child(pid, 5000, &status);
		pid = -1;
	}
	if (pid < 0)
		bail_out("daemon did not start");

	/* a segment of a one-PG volume with geometry */
	{
		static const char *const azs[6] = {"az1", "az1", "az2", "az2", "az3", "az3"};
		aurora_create_segment c;
		uint8_t		body[2048];
		reply		r;

		memset(&c, 0, sizeof(c));
		c.replica_index = 0;
		c.n_pgs = 1;
		c.blocks_per_segment = 1024;
		for (int i = 0; i < 6; i++)
		{
			snprintf(c.members[i].node_id, sizeof(c.members[i].node_id), "n%d", i);
			snprintf(c.members[i].az, sizeof(c.members[i].az), "%s", azs[i]);
			snprintf(c.members[i].url, sizeof(c.members[i].url), "%s", i == 0 ? url : "tcp://127.0.0.1:1");
		}
		request(AURORA_MSG_CREATE_SEGMENT, 0, 2, body, aurora_create_segment_encode(&c, body, sizeof(body)), &r);
		if (r.type != AURORA_MSG_SEGMENT_INFO)
			bail_out("CREATE_SEGMENT: %s", r.message);
		free(r.body);
	}

	/* SEED_PAGES: fenced; stored; counted */
	{
		aurora_seed_page sp[2];
		size_t		cap = aurora_seed_pages_size(2);
		uint8_t    *body = malloc(cap);
		size_t		n;
		reply		r;
		uint32_t	stored = 0;

		fake_page(p0, 0x10, 500);
		fake_page(p1, 0x11, 500);
		sp[0].block = blk(16384, 0);
		sp[0].page = p0;
		sp[1].block = blk(16384, 1);
		sp[1].page = p1;
		n = aurora_seed_pages_encode(500, sp, 2, body, cap);
		request(AURORA_MSG_SEED_PAGES, 0, 1, body, n, &r);
		is_str(aurora_error_name(r.code), "STALE_EPOCH", "SEED_PAGES with an old volume epoch is fenced");
		free(r.body);
		request(AURORA_MSG_SEED_PAGES, 1, 2, body, n, &r);
		is_str(aurora_error_name(r.code), "NO_SEGMENT", "SEED_PAGES to a PG the node does not hold");
		free(r.body);
		request(AURORA_MSG_SEED_PAGES, 0, 2, body, n, &r);
		ok(r.type == AURORA_MSG_SEED_ACK && aurora_seed_ack_decode(r.body, r.len, &stored) == 0 &&
		   stored == 2, "SEED_PAGES stores both pages (%s)", r.message);
		is_uint(r.volume_epoch, 2, "the reply carries the segment's epoch");
		free(r.body);
		free(body);
	}

	is_int(getpage(blk(16384, 0), 500, 2000, &page, msg), 0, "GETPAGE of a seeded page at its LSN");
	ok(memcmp(page.page, p0, AURORA_PAGE_BYTES) == 0 && page.page_lsn == 500,
	   "returns the seeded bytes and its pd_lsn");
	is_int(getpage(blk(16384, 1), 400, 200, &page, msg), AURORA_ERR_BELOW_HORIZON, "below it: BELOW_HORIZON");
	is_int(getpage(blk(16384, 2), 500, 200, &page, msg), AURORA_ERR_NO_BLOCK, "past the seeded blocks: NO_BLOCK");
	is_int(getpage(blk(99999, 0), 500, 200, &page, msg), AURORA_ERR_NO_RELATION, "unknown relation: NO_RELATION");
	{
		double		t0 = aurora_monotonic_ms();

		is_int(getpage(blk(16384, 0), 700, 300, &page, msg), AURORA_ERR_NOT_READY,
			   "an LSN the log does not reach: NOT_READY");
		ok(aurora_monotonic_ms() - t0 >= 250 && aurora_monotonic_ms() - t0 < 5000, "after waiting about wait_ms (%.0f ms)", aurora_monotonic_ms() - t0);
		like(msg, "SCL", "the message gives the SCL");
	}

	/* a waiting GETPAGE is served when the record arrives; others are not held up */
	{
		waiter		w[3];
		pthread_t	th[3];
		const char *const urls[1] = {url};
		aurora_status_result sr;
		double		t0;

		for (int i = 0; i < 3; i++)
		{
			w[i].lsn = 800;
			w[i].wait_ms = 8000;
			pthread_create(&th[i], NULL, wait_thread, &w[i]);
		}
		usleep(300 * 1000);
		t0 = aurora_monotonic_ms();
		aurora_status_many(urls, 1, 2000, &sr);
		ok(sr.reachable && aurora_monotonic_ms() - t0 < test_ms(1000),
		   "STATUS is answered while more GETPAGEs wait than there are page threads");
		/* block 1 of another relation: moves SCL to 800 without touching block 0 */
		is_int(append(600, 800, 0, blk(16385, 0)), AURORA_MSG_LOG_ACK, "a record ending at 800 arrives");
		for (int i = 0; i < 3; i++)
			pthread_join(th[i], NULL);
		ok(w[0].code == 0 && w[1].code == 0 && w[2].code == 0,
		   "the waiting GETPAGEs are served (%u %u %u)", w[0].code, w[1].code, w[2].code);
		ok(w[0].took_ms < 7000 && memcmp(w[0].page.page, p0, AURORA_PAGE_BYTES) == 0,
		   "soon after the record, with the seeded page (%.0f ms)", w[0].took_ms);
	}

	/* more waiting page requests than the node queues: the rest are refused at once */
	{
		enum { N = 40 };
		static waiter w[N];
		pthread_t	th[N];
		int			busy = 0,
					waited = 0;

		for (int i = 0; i < N; i++)
		{
			w[i].lsn = 5000;	/* beyond the log: each waits out its wait_ms */
			w[i].wait_ms = test_ms(1500);
			pthread_create(&th[i], NULL, wait_thread, &w[i]);
		}
		usleep(test_ms(500) * 1000);
		is_int(append(800, 850, 600, blk(16386, 0)), AURORA_MSG_LOG_ACK,
			   "an append is acknowledged while page requests fill the queue");
		for (int i = 0; i < N; i++)
		{
			pthread_join(th[i], NULL);
			if (w[i].code == AURORA_ERR_UNAVAILABLE && w[i].took_ms < test_ms(1000))
				busy++;
			else if (w[i].code == AURORA_ERR_NOT_READY)
				waited++;
		}
		ok(busy >= N - 32 && busy + waited == N,
		   "beyond 32 queued page requests the node answers UNAVAILABLE at once (%d busy, %d waited)",
		   busy, waited);
	}

	/* a WILL_INIT record on block 0: needs redo, no helper configured */
	is_int(append(850, 900, 800, blk(16384, 0)), AURORA_MSG_LOG_ACK, "a record initializing block 0");
	is_int(getpage(blk(16384, 0), 900, 3000, &page, msg), AURORA_ERR_UNAVAILABLE,
		   "that page needs redo: UNAVAILABLE without walredo_postgres");
	is_int(getpage(blk(16384, 0), 880, 3000, &page, msg), 0, "the page before that record is served");

	/* REL_SIZE */
	{
		aurora_rel_size_req q = {1663, 5, 16384, 0, 900, 2000};
		aurora_rel_size_resp rs;
		uint8_t		body[64];
		reply		r;

		request(AURORA_MSG_REL_SIZE_REQ, 0, 2, body, aurora_rel_size_req_encode(&q, body, sizeof(body)), &r);
		ok(r.type == AURORA_MSG_REL_SIZE && aurora_rel_size_resp_decode(r.body, r.len, &rs) == 0 &&
		   rs.exists && rs.nblocks == 2, "REL_SIZE: 2 seeded blocks (%s)", r.message);
		free(r.body);
		q.rel_number = 16385;
		request(AURORA_MSG_REL_SIZE_REQ, 0, 2, body, aurora_rel_size_req_encode(&q, body, sizeof(body)), &r);
		ok(r.type == AURORA_MSG_REL_SIZE && aurora_rel_size_resp_decode(r.body, r.len, &rs) == 0 &&
		   rs.exists && rs.nblocks == 1, "REL_SIZE: a relation known from a record only");
		free(r.body);
		request(AURORA_MSG_REL_SIZE_REQ, 0, 2, body, 3, &r);
		is_str(aurora_error_name(r.code), "MALFORMED", "a short REL_SIZE_REQ body is MALFORMED");
		free(r.body);
	}

	/* STATUS page fields */
	{
		const char *const urls[1] = {url};
		aurora_status_result sr;

		aurora_status_many(urls, 1, 2000, &sr);
		ok(sr.status.pages_seeded == 2 && sr.status.getpage_requests >= 10 &&
		   sr.status.records_indexed == 3 && sr.status.coalesce_threshold == 3 &&
		   sr.status.redo_configured == 0,
		   "STATUS: seeded %llu, getpages %llu, indexed %llu, threshold %u",
		   (unsigned long long) sr.status.pages_seeded,
		   (unsigned long long) sr.status.getpage_requests,
		   (unsigned long long) sr.status.records_indexed, (unsigned) sr.status.coalesce_threshold);
	}

	/* SEGMENTS_RESP shows the index position and the images */
	{
		reply		r;
		aurora_segment_state *st = NULL;
		int			n = 0;

		request(AURORA_MSG_SEGMENTS_REQ, 0, 2, NULL, 0, &r);
		ok(r.type == AURORA_MSG_SEGMENTS_RESP &&
		   aurora_segments_resp_decode(r.body, r.len, &st, &n) == 0 && n == 1 &&
		   st[0].indexed_lsn == 900 && st[0].page_images == 2,
		   "SEGMENTS_RESP: indexed to 900, 2 images (%llu, %llu)",
		   n == 1 ? (unsigned long long) st[0].indexed_lsn : 0ull,
		   n == 1 ? (unsigned long long) st[0].page_images : 0ull);
		free(st);
		free(r.body);
	}

	/* restart: the seeded page and the index survive */
	kill(pid, SIGTERM);
	ok(wait_child(pid, 10000, &status), "the node stops on SIGTERM");
	{
		char	   *argv[] = {(char *) daemon_bin, (char *) "--config", conf, NULL};

		pid = spawn_logged(argv, logp);
		if (!wait_for_status(url, pid, 10000))
			bail_out("daemon did not restart");
	}
	is_int(getpage(blk(16384, 1), 900, 3000, &page, msg), 0, "after a restart the seeded page is served");
	ok(memcmp(page.page, p1, AURORA_PAGE_BYTES) == 0, "with its bytes");
	kill(pid, SIGTERM);
	wait_child(pid, 10000, &status);
	if (getenv("AURORA_TEST_KEEP") == NULL)
		remove_tree(tmpdir);
	else
		diag("kept %s", tmpdir);
	return done_testing();
}
