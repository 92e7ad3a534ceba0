/*
 * logtool.c - aurora-ctl stream | segments | read-log (logtool.h).
 *
 * Synthetic records are laid out so that anyone can check them without
 * state: record k after LSN A starts at A + (k + 1) * step, ends one step
 * later, links back to the previous start, and byte i of its payload is a
 * function of (start, i).  read-log therefore verifies content, LSNs and the
 * backlink chain of whatever it reads.
 */
#define _POSIX_C_SOURCE 200809L

#include "logtool.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "byteorder.h"
#include "client.h"
#include "logmsg.h"
#include "pgwriter.h"
#include "util.h"
#include "walmeta.h"
#include "wire.h"

/* Bytes of LSN space a synthetic record takes besides its payload. */
#define SYNTHETIC_OVERHEAD	64


void
ctl_synthetic_lsns(uint64_t after_lsn, int payload, int k,
				   uint64_t *start, uint64_t *end, uint64_t *prev)
{
	uint64_t	step = (uint64_t) payload + SYNTHETIC_OVERHEAD;

	*start = after_lsn + (uint64_t) (k + 1) * step;
	*end = *start + step;
	*prev = *start - step;
}

uint8_t
ctl_synthetic_byte(uint64_t start_lsn, uint32_t i)
{
	return (uint8_t) ((start_lsn * 31u + i * 7u) >> 3);
}

/* A batch sent and not yet covered by PGCL (aurora-ctl stream --window). */
typedef struct sent_batch
{
	uint64_t	last_start;
	uint64_t	end;
	int			n;
} sent_batch;

/* Wait for the oldest batch in flight to reach a write quorum; 0 or 1. */
static int
await_oldest(aurora_pgwriter *w, sent_batch *window, int *head, int *count, int wait_ms,
			 int *acked_records, uint64_t *acked_start, uint64_t *acked_end)
{
	sent_batch *b = &window[*head];
	aurora_pgwriter_view v;

	if (!aurora_pgwriter_wait_pgcl(w, b->end, wait_ms))
	{
		aurora_pgwriter_view_get(w, &v);
		printf("stream: write quorum lost: PGCL %" PRIu64 " did not reach %" PRIu64
			   " within %d ms\n", v.pgcl, b->end, wait_ms);
		return 1;
	}
	*acked_records += b->n;
	*acked_start = b->last_start;
	*acked_end = b->end;
	*head = (*head + 1) % CTL_STREAM_WINDOW_MAX;
	(*count)--;
	return 0;
}

/* Bit i set for every member whose node id is in the comma-separated list. */
static unsigned
members_named(const aurora_pg_target *t, const char *list)
{
	unsigned	mask = 0;
	int			i;

	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		const char *p = list;
		size_t		len = strlen(t->members[i].node_id);

		while ((p = strstr(p, t->members[i].node_id)) != NULL)
		{
			bool		starts = p == list || p[-1] == ',';
			bool		ends = p[len] == '\0' || p[len] == ',';

			if (starts && ends)
			{
				mask |= 1u << i;
				break;
			}
			p += len;
		}
	}
	return mask;
}

int
ctl_stream(const ctl_cluster *c, const ctl_stream_opts *o, int timeout_ms)
{
	aurora_pg_target t;
	aurora_pgwriter *w;
	aurora_pgwriter_view v;
	aurora_log_record *recs;
	uint8_t    *payloads;
	char		err[512];
	int			i,
				k,
				created;
	uint64_t	acked_end = o->after_lsn;
	uint64_t	acked_start = o->after_lsn;
	int			acked_records = 0;
	double		t0;
	int			rc = 0;
	unsigned	drop_mask = 0;	/* members the withheld batches skip */
	int			batches = 0;
	int			dropped = 0;
	sent_batch	window[CTL_STREAM_WINDOW_MAX];
	int			win_head = 0;
	int			win_count = 0;

	if (c->n < AURORA_PG_COPIES)
	{
		fprintf(stderr, "aurora-ctl: stream needs %d nodes, the cluster has %d\n",
				AURORA_PG_COPIES, c->n);
		return 2;
	}
	memset(&t, 0, sizeof(t));
	t.volume_id = o->volume_id;
	t.pg_id = o->pg_id;
	t.volume_epoch = o->epoch;
	t.membership_epoch = 1;
	t.base_lsn = 0;
	/* the first six nodes, in config-file order: a1 a2 b1 b2 c1 c2 */
	for (i = 0; i < AURORA_PG_COPIES; i++)
		ctl_node_member(&c->nodes[i], &t.members[i]);
	if (aurora_pgwriter_open(&t, o->write_quorum, timeout_ms, &w, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s\n", err);
		return 1;
	}
	created = aurora_pgwriter_create_segments(w, err, sizeof(err));
	aurora_pgwriter_view_get(w, &v);
	for (i = 0; i < AURORA_PG_COPIES; i++)
		if (v.seg[i].last_error_code != 0)
			printf("segment %s: create: %s (%s)\n", t.members[i].node_id,
				   aurora_error_name(v.seg[i].last_error_code), v.seg[i].last_error);
	if (created < o->write_quorum)
	{
		fprintf(stderr, "aurora-ctl: only %d segments could be created; a write quorum needs %d\n",
				created, o->write_quorum);
		aurora_pgwriter_close(w);
		return 1;
	}

	if (o->drop_to[0] != '\0' &&
		(drop_mask = members_named(&t, o->drop_to)) == 0)
	{
		fprintf(stderr, "aurora-ctl: --drop-to '%s' names no member of the PG\n", o->drop_to);
		aurora_pgwriter_close(w);
		return 2;
	}

	recs = calloc((size_t) o->batch, sizeof(*recs));
	payloads = malloc((size_t) o->batch * (size_t) (o->payload ? o->payload : 1));
	if (recs == NULL || payloads == NULL)
	{
		fprintf(stderr, "aurora-ctl: out of memory\n");
		free(recs);
		free(payloads);
		aurora_pgwriter_close(w);
		return 1;
	}

	t0 = aurora_monotonic_ms();
	for (k = 0; k < o->records && rc == 0; k += o->batch)
	{
		int			n = o->records - k < o->batch ? o->records - k : o->batch;
		bool		withhold;

		for (i = 0; i < n; i++)
		{
			uint8_t    *p = payloads + (size_t) i * (size_t) o->payload;
			uint32_t	j;

			ctl_synthetic_lsns(o->after_lsn, o->payload, k + i, &recs[i].start_lsn,
							   &recs[i].end_lsn, &recs[i].prev_lsn);
			for (j = 0; j < (uint32_t) o->payload; j++)
				p[j] = ctl_synthetic_byte(recs[i].start_lsn, j);
			recs[i].len = (uint32_t) o->payload;
			recs[i].payload = p;
		}
		batches++;
		withhold = drop_mask != 0 && (o->drop_every <= 1 || batches % o->drop_every == 0);
		if (withhold)
			dropped++;
		if (aurora_pgwriter_append_to(w, recs, n,
									  withhold ? AURORA_PGWRITER_ALL_MEMBERS & ~drop_mask :
									  AURORA_PGWRITER_ALL_MEMBERS,
									  err, sizeof(err)) != 0)
		{
			fprintf(stderr, "aurora-ctl: %s\n", err);
			rc = 1;
			break;
		}
		window[(win_head + win_count) % CTL_STREAM_WINDOW_MAX] = (sent_batch) {
			recs[n - 1].start_lsn, recs[n - 1].end_lsn, n
		};
		win_count++;
		/* the oldest batch in flight must reach quorum before more are sent */
		while (rc == 0 && win_count >= o->window)
			rc = await_oldest(w, window, &win_head, &win_count, o->wait_ms,
							  &acked_records, &acked_start, &acked_end);
	}
	while (rc == 0 && win_count > 0)
		rc = await_oldest(w, window, &win_head, &win_count, o->wait_ms,
						  &acked_records, &acked_start, &acked_end);
	{
		double		elapsed = aurora_monotonic_ms() - t0;
		double		p50 = 0,
					p99 = 0;

		aurora_pgwriter_drain(w, timeout_ms);
		aurora_pgwriter_view_get(w, &v);
		(void) aurora_pgwriter_quorum_latency(w, 0, &p50, &p99);
		for (i = 0; i < AURORA_PG_COPIES; i++)
			printf("segment %s: scl %" PRIu64 " acks %" PRIu64 " errors %" PRIu64 "%s%s%s\n",
				   t.members[i].node_id, v.seg[i].scl, v.seg[i].acks, v.seg[i].errors,
				   v.seg[i].last_error_code ? " last_error " : "",
				   v.seg[i].last_error_code ? aurora_error_name(v.seg[i].last_error_code) : "",
				   v.seg[i].fenced ? " (fenced: stale epoch)" : "");
		if (drop_mask != 0)
			printf("stream: withheld %d of %d batches from %s\n", dropped, batches, o->drop_to);
		printf("stream: acked_records %d acked_last_start %" PRIu64 " acked_end %" PRIu64
			   " pgcl %" PRIu64 " elapsed_ms %.1f records_per_s %.0f mb_per_s %.2f"
			   " quorum_p50_ms %.3f quorum_p99_ms %.3f\n",
			   acked_records, acked_start, acked_end, v.pgcl, elapsed,
			   elapsed > 0 ? acked_records * 1000.0 / elapsed : 0.0,
			   elapsed > 0 ? (double) acked_records * o->payload / 1048576.0 / (elapsed / 1000.0) : 0.0,
			   p50, p99);
	}
	free(recs);
	free(payloads);
	aurora_pgwriter_close(w);
	return rc;
}

ctl_req_result
ctl_request(aurora_conn *conn, int timeout_ms, const aurora_header *h, const uint8_t *body,
			size_t body_len, uint32_t expect_type, aurora_header *rh, uint8_t **reply,
			const uint8_t **rbody, char *err, size_t errlen)
{
	return aurora_conn_call(conn, timeout_ms, h, body, body_len, expect_type,
											 rh, reply, rbody, NULL, err, errlen);
}

ctl_req_result
ctl_fetch_segments(aurora_conn *conn, int timeout_ms, aurora_segment_state **states, int *n,
				   char *err, size_t errlen)
{
	aurora_header h,
				rh;
	uint8_t    *reply;
	const uint8_t *body;
	ctl_req_result r;

	memset(&h, 0, sizeof(h));
	h.type = AURORA_MSG_SEGMENTS_REQ;
	h.request_id = 1;
	r = ctl_request(conn, timeout_ms, &h, NULL, 0, AURORA_MSG_SEGMENTS_RESP, &rh, &reply, &body,
					err, errlen);
	if (r != CTL_REQ_OK)
		return r;
	if (aurora_segments_resp_decode(body, rh.body_len, states, n) != 0)
	{
		aurora_seterr(err, errlen, "bad SEGMENTS_RESP");
		r = CTL_REQ_BAD_REPLY;
	}
	free(reply);
	return r;
}

/* Open a connection to url, or say why not on stderr. */
static aurora_conn *
open_conn(const char *url)
{
	aurora_conn *conn;
	char		err[256];

	if (aurora_conn_open(url, &conn, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s: %s\n", url, err);
		return NULL;
	}
	return conn;
}

int
ctl_segments(const char *const *urls, int n, int timeout_ms)
{
	int			i,
				j,
				rc = 0;

	printf("%-22s %-16s %4s %4s %12s %12s %9s %10s %6s %5s %12s %10s %6s %16s %8s %s\n",
		   "NODE_URL", "VOLUME", "PG", "REPL", "SCL", "HIGHEST", "RECORDS", "BYTES", "EPOCH",
		   "HOLES", "PEER_SCL", "FROM_PEERS", "T_EPOCH", "LAST_CUT", "DROPPED", "RECOVERY");
	for (i = 0; i < n; i++)
	{
		aurora_conn *conn = open_conn(urls[i]);
		aurora_segment_state *st;
		int			count;
		char		err[512];

		if (conn == NULL)
		{
			rc = 1;
			continue;
		}
		if (ctl_fetch_segments(conn, timeout_ms, &st, &count, err, sizeof(err)) != CTL_REQ_OK)
		{
			fprintf(stderr, "aurora-ctl: %s: %s\n", urls[i], err);
			aurora_conn_close(conn);
			rc = 1;
			continue;
		}
		aurora_conn_close(conn);
		for (j = 0; j < count; j++)
		{
			char		cut[48];

			/* the last truncation as EPOCH@LSN, "-" if the segment never was truncated */
			if (st[j].last_trunc_epoch == 0)
				snprintf(cut, sizeof(cut), "-");
			else
				snprintf(cut, sizeof(cut), "%" PRIu64 "@%" PRIu64, st[j].last_trunc_epoch,
						 st[j].last_trunc_lsn);
			printf("%-22s %016" PRIx64 " %4u %4u %12" PRIu64 " %12" PRIu64 " %9" PRIu64
				   " %10" PRIu64 " %6" PRIu64 " %5u %12" PRIu64 " %10" PRIu64 " %6" PRIu64
				   " %16s %8" PRIu64 " %s\n",
				   urls[i], st[j].volume_id, st[j].pg_id, st[j].replica_index, st[j].scl,
				   st[j].highest_lsn, st[j].records, st[j].bytes_on_disk,
				   st[j].volume_epoch, st[j].n_holes, st[j].peer_scl,
				   st[j].records_from_peers, st[j].truncated_epoch, cut,
				   st[j].records_dropped, st[j].recovery_note);
		}
		free(st);
	}
	return rc;
}

/*
 * PostgreSQL's XLogRecord header (access/xlogrecord.h): xl_tot_len u32,
 * xl_xid u32, xl_prev u64, xl_info u8, xl_rmid u8, 2 bytes padding,
 * xl_crc u32; little-endian on the machines we run on.  A transaction
 * commit is rmid RM_XACT_ID (1) with (info & XLOG_XACT_OPMASK 0x70) ==
 * XLOG_XACT_COMMIT (0x00).
 */
#define WAL_RECORD_HEADER	24
#define WAL_RM_XACT_ID		1
#define WAL_XACT_OPMASK		0x70
#define WAL_XACT_COMMIT		0x00

/*
 * A compute's record (envelope + WAL record, walmeta.h): is it well formed,
 * and (if a commit) its xid.
 */
static bool
check_wal_record(const aurora_log_record *r, bool *is_commit, uint32_t *xid)
{
	uint32_t	wal_len;
	const uint8_t *wal = aurora_walmeta_wal(r->payload, r->len, &wal_len);

	*is_commit = false;
	if (wal == NULL || wal_len < WAL_RECORD_HEADER || aurora_get_le32(wal) != wal_len)
		return false;
	*xid = aurora_get_le32(wal + 4);
	*is_commit = wal[17] == WAL_RM_XACT_ID &&
		(wal[16] & WAL_XACT_OPMASK) == WAL_XACT_COMMIT;
	return true;
}

/*
 * The volume epoch segment (volume_id, pg) of the node on conn is at
 * (SEGMENT_INFO, which is not fenced), for tools that only read: a read at
 * the segment's own epoch is served and changes nothing.  1 when it does
 * not answer (the request that follows then says why).
 */
uint64_t
ctl_segment_epoch(aurora_conn *conn, uint64_t volume_id, uint32_t pg, int timeout_ms)
{
	aurora_segment_info_result r;
	char		err[256];
	uint64_t	epoch = 1;

	if (aurora_get_segment_info(conn, timeout_ms, volume_id, pg, &r, NULL, err, sizeof(err)) ==
		AURORA_CALL_OK)
	{
		if (r.volume_epoch > 0)
			epoch = r.volume_epoch;
		aurora_segment_info_result_free(&r);
	}
	return epoch;
}

int
ctl_read_log_each(const char *url, uint64_t volume_id, uint32_t pg_id, uint64_t epoch,
				  uint64_t from_lsn, uint64_t to_lsn, int timeout_ms, const char *prefix,
				  aurora_record_fn emit, void *arg,
				  uint64_t *scl)
{
	uint64_t	next = from_lsn;
	uint64_t	request = 0;
	aurora_conn *conn;
	char		err[512];
	int			rc = 0;

	*scl = 0;
	if (aurora_conn_open(url, &conn, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s%s: %s\n", prefix, url, err);
		return 1;
	}
	if (epoch == 0)
		epoch = ctl_segment_epoch(conn, volume_id, pg_id, timeout_ms);
	for (;;)
	{
		aurora_header h,
					rh;
		aurora_read_log rl;
		aurora_read_log_resp resp;
		uint8_t		body[32];
		uint8_t    *reply;
		const uint8_t *rbody;
		size_t		n;
		int			stop = 0;

		memset(&h, 0, sizeof(h));
		h.type = AURORA_MSG_READ_LOG;
		h.volume_id = volume_id;
		h.pg_id = pg_id;
		h.volume_epoch = epoch;
		h.membership_epoch = 1;
		h.request_id = ++request;
		rl.from_lsn = next;
		rl.to_lsn = to_lsn;
		rl.max_bytes = 4u << 20;
		n = aurora_read_log_encode(&rl, body, sizeof(body));
		if (ctl_request(conn, timeout_ms, &h, body, n, AURORA_MSG_READ_LOG_RESP, &rh, &reply,
						&rbody, err, sizeof(err)) != CTL_REQ_OK)
		{
			fprintf(stderr, "aurora-ctl: %s%s: %s\n", prefix, url, err);
			rc = 1;
			break;
		}
		if (aurora_read_log_resp_decode(rbody, rh.body_len, &resp) != 0)
		{
			fprintf(stderr, "aurora-ctl: %s%s: bad READ_LOG_RESP\n", prefix, url);
			free(reply);
			rc = 1;
			break;
		}
		*scl = resp.scl;
		for (int i = 0; i < resp.n && stop == 0; i++)
		{
			stop = emit(arg, &resp.recs[i]);
			next = resp.recs[i].start_lsn + 1;
		}
		free(resp.recs);
		free(reply);
		if (stop < 0)
			rc = 1;
		if (stop != 0 || !resp.truncated || resp.n == 0)
			break;
	}
	aurora_conn_close(conn);
	return rc;
}

/* What read-log checks and counts over the records it reads. */
typedef struct read_log_check
{
	bool		wal;
	uint64_t	commits;
	uint64_t	prev_start;
	bool		have_prev;
	uint64_t	count;
	uint64_t	bad_content;
	uint64_t	bad_chain;
	uint64_t	first;
	uint64_t	last_end;
} read_log_check;

static int
check_record(void *arg, const aurora_log_record *r)
{
	read_log_check *k = arg;

	if (k->count == 0)
		k->first = r->start_lsn;
	if (k->wal)
	{
		bool		is_commit;
		uint32_t	xid;

		if (!check_wal_record(r, &is_commit, &xid))
			k->bad_content++;
		else if (is_commit)
		{
			printf("commit %" PRIu32 "\n", xid);
			k->commits++;
		}
	}
	else
	{
		for (uint32_t j = 0; j < r->len; j++)
			if (r->payload[j] != ctl_synthetic_byte(r->start_lsn, j))
			{
				k->bad_content++;
				break;
			}
	}
	if (k->have_prev && r->prev_lsn != k->prev_start)
		k->bad_chain++;
	k->prev_start = r->start_lsn;
	k->have_prev = true;
	k->last_end = r->end_lsn;
	k->count++;
	return 0;
}

int
ctl_read_log(const char *url, uint64_t volume_id, uint32_t pg_id, uint64_t from_lsn,
			 uint64_t to_lsn, uint64_t epoch, bool wal, int timeout_ms)
{
	read_log_check k = {.wal = wal};
	uint64_t	scl;

	if (ctl_read_log_each(url, volume_id, pg_id, epoch, from_lsn, to_lsn, timeout_ms, "",
						  check_record, &k, &scl) != 0)
		return 1;
	printf("read-log: records %" PRIu64 " first_start %" PRIu64 " last_end %" PRIu64
		   " scl %" PRIu64 " chain_breaks %" PRIu64 " bad_payloads %" PRIu64 "%s",
		   k.count, k.first, k.last_end, scl, k.bad_chain, k.bad_content, wal ? "" : "\n");
	if (wal)
		printf(" commits %" PRIu64 "\n", k.commits);
	return (k.bad_content == 0) ? 0 : 1;
}
