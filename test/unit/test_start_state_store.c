/*
 * test_start_state_store.c - start states on a storage node, through the
 * request handler (node/handler_start_state.c, node/start_state.c):
 * START_STATE_PUT in pieces and START_STATE_GET in pieces give back the
 * bundle byte for byte; a partial put is never served; a piece out of
 * order, a lower epoch, a damaged bundle or one naming another LSN are
 * refused; the newest three are kept; a restart keeps complete ones and
 * discards the partial one; drop_above removes those above a point.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epochmsg.h"
#include "handler.h"
#include "segment.h"
#include "segment_table.h"
#include "start_state.h"		/* common/: the bundle */
#include "start_state_msg.h"
#include "tap.h"
#include "testutil.h"
#include "wire.h"
/* node/start_state.h has the same base name as the bundle's header */
#include "../../storage_service/node/start_state.h"

#define VOL		7u
#define MAXBODY	65536u			/* small, so that bundles go in several pieces */

static aurora_handler handler;
static aurora_segment_table *table;
static aurora_start_states *states;
static aurora_segment *seg;
static uint8_t *reply_buf;
#define REPLY_CAP	(1u << 20)

typedef struct reply
{
	aurora_header h;
	const uint8_t *body;
	uint32_t	code;			/* ERROR code, 0 for any other reply */
	char		message[1100];
} reply;

static void
request(uint16_t type, uint64_t epoch, const uint8_t *body, size_t n, reply *r)
{
	aurora_header h;
	uint8_t    *msg = malloc(AURORA_HEADER_SIZE + n);
	size_t		len,
				rlen;

	memset(&h, 0, sizeof(h));
	h.type = type;
	h.volume_id = VOL;
	h.pg_id = 0;
	h.volume_epoch = epoch;
	h.membership_epoch = 1;
	h.request_id = 99;
	len = aurora_encode(&h, body, n, msg, AURORA_HEADER_SIZE + n);
	rlen = aurora_handler_handle(&handler, msg, len, reply_buf, REPLY_CAP);
	free(msg);
	memset(r, 0, sizeof(*r));
	if (rlen == 0 || aurora_decode(reply_buf, rlen, REPLY_CAP, &r->h, &r->body) != 0)
		bail_out("no reply to type %u", (unsigned) type);
	if (r->h.type == AURORA_MSG_ERROR)
	{
		aurora_error_body e;

		aurora_error_body_decode(r->body, r->h.body_len, &e);
		r->code = e.code;
		snprintf(r->message, sizeof(r->message), "%s", e.message);
	}
}

/* One piece; returns the ERROR code (0 with *ack on success). */
static uint32_t
put_piece(uint64_t lsn, const uint8_t *bundle, size_t total, size_t off, size_t n,
		  uint64_t epoch, aurora_start_state_ack *ack, char *msg, size_t msgcap)
{
	aurora_start_state_put p = {lsn, total, off, (uint32_t) n, bundle + off};
	uint8_t    *body = malloc(AURORA_START_STATE_PUT_FIXED + n);
	size_t		len = aurora_start_state_put_encode(&p, body, AURORA_START_STATE_PUT_FIXED + n);
	reply		r;

	request(AURORA_MSG_START_STATE_PUT, epoch, body, len, &r);
	free(body);
	if (msg)
		snprintf(msg, msgcap, "%s", r.message);
	if (r.code != 0)
		return r.code;
	if (r.h.type != AURORA_MSG_START_STATE_ACK ||
		aurora_start_state_ack_decode(r.body, r.h.body_len, ack) != 0)
		bail_out("bad START_STATE_ACK");
	return 0;
}

/* A put from offset from on, in pieces of piece bytes; returns the first ERROR code. */
static uint32_t
put_from(uint64_t lsn, const uint8_t *bundle, size_t total, size_t from, size_t piece,
		 uint64_t epoch, int *n_pieces, bool *complete, char *msg, size_t msgcap)
{
	aurora_start_state_ack ack = {0, 0, 0};
	uint32_t	code = 0;
	size_t		off = from;

	*n_pieces = 0;
	*complete = false;
	while (off < total && code == 0)
	{
		size_t		n = total - off < piece ? total - off : piece;

		code = put_piece(lsn, bundle, total, off, n, epoch, &ack, msg, msgcap);
		if (code == 0 && (ack.received != off + n || (ack.complete != 0) != (off + n == total)))
			bail_out("ack says received %llu complete %u after %zu", (unsigned long long) ack.received,
					 ack.complete, off + n);
		off += n;
		(*n_pieces)++;
	}
	*complete = code == 0 && ack.complete == 1;
	return code;
}

static uint32_t
put_all(uint64_t lsn, const uint8_t *bundle, size_t total, size_t piece, uint64_t epoch,
		int *n_pieces, bool *complete, char *msg, size_t msgcap)
{
	return put_from(lsn, bundle, total, 0, piece, epoch, n_pieces, complete, msg, msgcap);
}

/* GET in pieces; returns a malloc'd copy (NULL when not found) and its LSN. */
static uint8_t *
get_all(uint64_t max_lsn, uint32_t max_bytes, uint64_t epoch, uint64_t *lsn, size_t *len,
		int *n_pieces, uint64_t *reply_epoch)
{
	uint8_t    *out = NULL;
	uint64_t	off = 0,
				total = 1;

	*n_pieces = 0;
	*len = 0;
	while (off < total)
	{
		aurora_start_state_get g = {max_lsn, off, max_bytes};
		aurora_start_state_resp s;
		uint8_t		body[AURORA_START_STATE_GET_SIZE];
		reply		r;

		request(AURORA_MSG_START_STATE_GET, epoch, body, aurora_start_state_get_encode(&g, body, sizeof(body)), &r);
		if (r.code != 0 || aurora_start_state_resp_decode(r.body, r.h.body_len, &s) != 0)
			bail_out("START_STATE_GET failed: %s", r.message);
		*reply_epoch = r.h.volume_epoch;
		(*n_pieces)++;
		if (!s.found)
		{
			free(out);
			return NULL;
		}
		if (out == NULL)
			out = malloc((size_t) s.total_len);
		total = s.total_len;
		*lsn = s.consistent_lsn;
		memcpy(out + off, s.data, s.len);
		off += s.len;
		if (s.len == 0)
			break;
	}
	*len = (size_t) total;
	return out;
}

/* A bundle consistent at lsn with a 150 kB pg_xact segment of varied bytes. */
static uint8_t *
make_bundle(uint64_t lsn, size_t *len)
{
	static uint8_t xact[150000];
	static uint8_t control[8192];
	aurora_start_state_file files[2] = {
		{(char *) "global/pg_control", 0600, sizeof(control), control},
		{(char *) "pg_xact/0000", 0600, sizeof(xact), xact}
	};
	aurora_start_state s = {lsn, lsn, lsn - 0x28, 2, files};
	uint8_t    *buf;
	char		err[256];

	for (size_t i = 0; i < sizeof(xact); i++)
		xact[i] = (uint8_t) (i * 7 + lsn);
	memset(control, (int) (lsn & 0xff), sizeof(control));
	if (aurora_start_state_encode(&s, &buf, len, err, sizeof(err)) != 0)
		bail_out("encode: %s", err);
	return buf;
}

static void
make_segment(void)
{
	static const char *const azs[AURORA_PG_COPIES] = {"az1", "az1", "az2", "az2", "az3", "az3"};
	aurora_segment_meta m;
	char		err[512];

	memset(&m, 0, sizeof(m));
	m.volume_id = VOL;
	m.pg_id = 0;
	m.replica_index = 0;
	m.volume_epoch = 1;
	m.membership_epoch = 1;
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		snprintf(m.members[i].node_id, sizeof(m.members[i].node_id), "n%d", i);
		snprintf(m.members[i].az, sizeof(m.members[i].az), "%s", azs[i]);
		snprintf(m.members[i].url, sizeof(m.members[i].url), "tcp://127.0.0.1:%d", 7100 + i);
	}
	if (aurora_segment_table_create_segment(table, &m, "n0", &seg, err, sizeof(err)) != 0)
		bail_out("create segment: %s", err);
}

static void
open_node(const char *dir)
{
	char		err[512];

	if (aurora_segment_table_open(dir, &table, err, sizeof(err)) != 0)
		bail_out("open table: %s", err);
	if (aurora_start_states_open(table, &states, err, sizeof(err)) != 0)
		bail_out("open start states: %s", err);
	aurora_handler_init(&handler, "n0", "az1", MAXBODY);
	aurora_handler_set_store(&handler, table);
	aurora_handler_set_start_states(&handler, states);
	seg = aurora_segment_table_find(table, VOL, 0);
}

static void
close_node(void)
{
	aurora_start_states_close(states);
	aurora_segment_table_close(table);
}

static bool
list_is(const uint64_t *want, int n)
{
	uint64_t	got[8];
	int			k = aurora_start_states_list(states, seg, got, 8);

	if (k != n)
	{
		diag("list has %d start states, want %d", k, n);
		return false;
	}
	for (int i = 0; i < n; i++)
		if (got[i] != want[i])
		{
			diag("list[%d] = %llx, want %llx", i, (unsigned long long) got[i], (unsigned long long) want[i]);
			return false;
		}
	return true;
}

int
main(void)
{
	char		dir[1024],
				logp[1200],
				msg[1100];
	size_t		len1,
				len,
				piece = MAXBODY - AURORA_START_STATE_PIECE_HEADROOM;
	uint8_t    *b1 = make_bundle(0x1000028, &len1);
	uint8_t    *got;
	aurora_start_state_ack ack;
	uint64_t	lsn = 0,
				rep_epoch = 0;
	int			pieces;
	bool		complete;

	reply_buf = malloc(REPLY_CAP);
	make_tmpdir("start_state_store", dir, sizeof(dir));
	if (getenv("SS_STDERR") == NULL)
		redirect_stderr_to_log(dir, logp, sizeof(logp));
	open_node(dir);
	make_segment();

	/* put in pieces; the partial bundle is never served */
	is_int(put_piece(0x1000028, b1, len1, 0, piece, 1, &ack, msg, sizeof(msg)), 0, "first piece taken");
	ok(ack.received == piece && ack.complete == 0, "ack: received so far, not complete");
	got = get_all(UINT64_MAX, 1u << 20, 1, &lsn, &len, &pieces, &rep_epoch);
	ok(got == NULL, "a partial start state is not served");
	is_int(put_piece(0x1000028, b1, len1, piece * 2, 1000, 1, &ack, msg, sizeof(msg)),
		   AURORA_ERR_INCONSISTENT, "a piece out of order is refused");
	like(msg, "out of order", "saying so");
	is_int(put_piece(0x9000028, b1, len1, piece, 1000, 1, &ack, msg, sizeof(msg)),
		   AURORA_ERR_INCONSISTENT, "a later piece of another put is refused");
	is_int(put_from(0x1000028, b1, len1, piece, piece, 1, &pieces, &complete, msg, sizeof(msg)), 0,
		   "the refused pieces changed nothing: the next pieces in order complete it");
	ok(complete, "ack: complete");

	got = get_all(UINT64_MAX, 40000, 1, &lsn, &len, &pieces, &rep_epoch);
	ok(got != NULL && lsn == 0x1000028 && len == len1 && memcmp(got, b1, len1) == 0,
	   "GET in pieces gives the bundle back byte for byte");
	ok(pieces > 3, "in %d pieces", pieces);
	free(got);
	got = get_all(0x1000027, 40000, 1, &lsn, &len, &pieces, &rep_epoch);
	ok(got == NULL, "nothing at or below an LSN under the only start state");

	/* a put of a bundle held completely is a retry */
	is_int(put_piece(0x1000028, b1, len1, 0, piece, 1, &ack, msg, sizeof(msg)), 0, "retry of a complete one");
	ok(ack.complete == 1, "acknowledged complete at once");

	/* damaged or mislabelled bundles are refused and not made visible */
	{
		size_t		l2;
		uint8_t    *b2 = make_bundle(0x2000028, &l2);

		b2[l2 / 2] ^= 1;
		is_int(put_all(0x2000028, b2, l2, piece, 1, &pieces, &complete, msg, sizeof(msg)),
			   AURORA_ERR_CORRUPT, "a damaged bundle is refused when complete");
		like(msg, "CRC", "as a CRC failure");
		b2[l2 / 2] ^= 1;
		is_int(put_all(0x2000030, b2, l2, piece, 1, &pieces, &complete, msg, sizeof(msg)),
			   AURORA_ERR_CORRUPT, "a bundle naming another LSN than the put's is refused");
		ok(list_is((const uint64_t[]) {0x1000028}, 1), "neither became visible");
		free(b2);
	}

	/* bad totals */
	{
		aurora_start_state_put p = {0x3000000, (uint64_t) AURORA_START_STATE_MAX_BYTES + 1, 0, 4,
		(const uint8_t *) "ASST"};
		uint8_t		body[64];
		reply		r;

		request(AURORA_MSG_START_STATE_PUT, 1, body, aurora_start_state_put_encode(&p, body, sizeof(body)), &r);
		is_int(r.code, AURORA_ERR_MALFORMED, "a total_len over 1 GiB is refused");
		p.total_len = 2;
		p.len = 4;
		request(AURORA_MSG_START_STATE_PUT, 1, body, aurora_start_state_put_encode(&p, body, sizeof(body)), &r);
		is_int(r.code, AURORA_ERR_MALFORMED, "a piece beyond total_len is refused");
	}

	/*
	 * fencing: a higher epoch is refused until the segment is fenced and
	 * truncated for it, a lower one always; GET is not fenced
	 */
	{
		size_t		l;
		uint8_t    *b = make_bundle(0x2000028, &l);
		aurora_trunc_entry hist[1] = {{2, 0x5000000}};
		uint8_t		raw[AURORA_TRUNC_ENTRY_SIZE];
		aurora_trunc_list tl;
		uint8_t		tbody[64];
		reply		r;

		is_int(put_piece(0x2000028, b, l, 0, piece, 2, &ack, msg, sizeof(msg)), AURORA_ERR_EPOCH_NOT_OPEN,
			   "a put at an epoch the segment was not opened at is refused");
		request(AURORA_MSG_FENCE_REQ, 2, NULL, 0, &r);
		is_int(r.code, 0, "fence at epoch 2");
		is_int(put_piece(0x2000028, b, l, 0, piece, 2, &ack, msg, sizeof(msg)), AURORA_ERR_EPOCH_NOT_OPEN,
			   "... a put while fenced but not truncated is refused");
		aurora_trunc_list_fill(&tl, hist, 1, raw);
		request(AURORA_MSG_TRUNCATE_REQ, 2, tbody, aurora_truncate_req_encode(&tl, tbody, sizeof(tbody)), &r);
		is_int(r.code, 0, "truncate at epoch 2");
		is_int(put_all(0x2000028, b, l, piece, 2, &pieces, &complete, msg, sizeof(msg)), 0, "put at epoch 2");
		ok(complete, "complete");
		is_int(put_piece(0x3000028, b, l, 0, piece, 1, &ack, msg, sizeof(msg)), AURORA_ERR_STALE_EPOCH,
			   "a put with a lower volume epoch is refused");
		got = get_all(UINT64_MAX, 1u << 20, 1, &lsn, &len, &pieces, &rep_epoch);
		ok(got != NULL && lsn == 0x2000028, "GET with a lower epoch is served (not fenced): the newest");
		is_int(rep_epoch, 2, "its reply carries the segment's epoch");
		free(got);
		free(b);
	}

	/* keep the newest three */
	{
		for (uint64_t l = 0x3000028; l <= 0x4000028; l += 0x1000000)
		{
			size_t		n;
			uint8_t    *b = make_bundle(l, &n);

			put_all(l, b, n, piece, 2, &pieces, &complete, msg, sizeof(msg));
			free(b);
		}
		ok(list_is((const uint64_t[]) {0x4000028, 0x3000028, 0x2000028}, 3),
		   "after a fourth, the newest three are kept");
		got = get_all(0x3FFFFFF, 1u << 20, 2, &lsn, &len, &pieces, &rep_epoch);
		ok(got != NULL && lsn == 0x3000028, "GET picks the newest at or below max_lsn");
		free(got);
	}

	/* restart: complete ones stay, the partial one is discarded */
	{
		size_t		n;
		uint8_t    *b = make_bundle(0x5000028, &n);

		is_int(put_piece(0x5000028, b, n, 0, piece, 2, &ack, msg, sizeof(msg)), 0, "a put begins");
		close_node();
		open_node(dir);
		ok(list_is((const uint64_t[]) {0x4000028, 0x3000028, 0x2000028}, 3),
		   "after a restart the complete start states are kept");
		is_int(put_piece(0x5000028, b, n, piece, 1000, 2, &ack, msg, sizeof(msg)),
			   AURORA_ERR_INCONSISTENT, "the unfinished put was discarded: its next piece is out of order");
		like(msg, "has 0 bytes", "the node has none of it");
		got = get_all(UINT64_MAX, 1u << 20, 2, &lsn, &len, &pieces, &rep_epoch);
		ok(got != NULL && lsn == 0x4000028, "and serves the newest complete one");
		free(got);

		/* drop_above: what lies above a truncation point goes, partial too */
		is_int(put_piece(0x5000028, b, n, 0, piece, 2, &ack, msg, sizeof(msg)), 0, "a put begins again");
		is_int(aurora_start_states_drop_above(states, seg, 0x3000028, msg, sizeof(msg)), 0, "drop_above");
		ok(list_is((const uint64_t[]) {0x3000028, 0x2000028}, 2), "start states above the point are gone");
		is_int(put_piece(0x5000028, b, n, piece, 1000, 2, &ack, msg, sizeof(msg)),
			   AURORA_ERR_INCONSISTENT, "and the partial one above it too");
		got = get_all(UINT64_MAX, 1u << 20, 2, &lsn, &len, &pieces, &rep_epoch);
		ok(got != NULL && lsn == 0x3000028, "GET serves the newest below the point");
		free(got);
		free(b);
	}

	/* no store, no segment */
	{
		aurora_start_state_get g = {1, 0, 100};
		uint8_t		body[AURORA_START_STATE_GET_SIZE];
		reply		r;
		size_t		n = aurora_start_state_get_encode(&g, body, sizeof(body));

		request(AURORA_MSG_START_STATE_GET, 2, body, n - 1, &r);
		is_int(r.code, AURORA_ERR_MALFORMED, "a short START_STATE_GET is malformed");
		handler.start_states = NULL;
		request(AURORA_MSG_START_STATE_GET, 2, body, n, &r);
		is_int(r.code, AURORA_ERR_UNAVAILABLE, "a node without a store answers UNAVAILABLE");
	}
	close_node();
	free(b1);
	free(reply_buf);
	remove_tree(dir);
	return done_testing();
}
