/*
 * handler.c - decode, dispatch and answer one request (handler.h); the page
 * requests are in handler_page.c, what both share in handler_int.h.
 *
 * Replies echo the request's request_id, volume/membership epochs, volume
 * id and PG id whenever the decoder could read them, so a client can match
 * an ERROR to the request that caused it even when the request was damaged.
 */
#define _POSIX_C_SOURCE 200809L

#include "handler.h"
#include "handler_int.h"

#include <stdlib.h>

#include "log.h"
#include "pagemsg.h"
#include "pageservice.h"
#include "segment.h"
#include "segment_table.h"
#include "truncation.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void
aurora_handler_init(aurora_handler *h, const char *node_id, const char *az,
					uint32_t max_body)
{
	int			i;

	memset(h, 0, sizeof(*h));
	snprintf(h->node_id, sizeof(h->node_id), "%s", node_id);
	snprintf(h->az, sizeof(h->az), "%s", az);
	h->max_body = max_body;
	h->pid = (uint32_t) getpid();
	h->started_ms = (uint64_t) aurora_monotonic_ms();
	h->page_threads = 4;
	atomic_init(&h->requests_total, 0);
	atomic_init(&h->errors_total, 0);
	for (i = 0; i < AURORA_ERR_COUNT; i++)
		atomic_init(&h->errors_by_code[i], 0);
}

void
aurora_handler_set_store(aurora_handler *h, struct aurora_segment_table *store)
{
	h->store = store;
}

void
aurora_handler_set_pages(aurora_handler *h, struct aurora_pageservice *pages)
{
	h->pages = pages;
}

void
aurora_handler_status(aurora_handler *h, aurora_status_body *s)
{
	int			i;

	memset(s, 0, sizeof(*s));
	snprintf(s->node_id, sizeof(s->node_id), "%s", h->node_id);
	snprintf(s->az, sizeof(s->az), "%s", h->az);
	snprintf(s->state, sizeof(s->state), "serving");
	s->pid = h->pid;
	s->uptime_ms = (uint64_t) aurora_monotonic_ms() - h->started_ms;
	s->protocol_version = AURORA_PROTOCOL_VERSION;
	s->requests_total = atomic_load(&h->requests_total);
	s->errors_total = atomic_load(&h->errors_total);
	for (i = 0; i < AURORA_ERR_COUNT; i++)
		s->errors_by_code[i] = atomic_load(&h->errors_by_code[i]);
	s->segments = h->store ? (uint32_t) aurora_segment_table_count(h->store) : 0;
	if (h->pages != NULL)
	{
		aurora_pageservice_stats ps;

		aurora_pageservice_get_stats(h->pages, &ps);
		s->redo_configured = ps.redo_configured ? 1 : 0;
		s->coalesce_threshold = ps.coalesce_threshold;
		s->records_indexed = ps.records_indexed;
		s->getpage_requests = ps.getpage_requests;
		s->pages_seeded = ps.pages_seeded;
		s->images_written = ps.images_written;
		s->records_applied = ps.records_applied;
		s->redo_failures = ps.redo_failures;
		s->index_errors = ps.index_errors;
		s->index_backlog_bytes = ps.index_backlog_bytes;
		s->coalesce_backlog = ps.coalesce_backlog;
	}
}

/* Reply header: our version, the request's identifying fields, a new type. */
void
handler_reply_header(const aurora_header *req, uint16_t type, aurora_header *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->type = type;
	rep->volume_id = req->volume_id;
	rep->volume_epoch = req->volume_epoch;
	rep->membership_epoch = req->membership_epoch;
	rep->request_id = req->request_id;
	rep->pg_id = req->pg_id;
}

/* Header + body into a fresh malloc'd reply (data NULL if out of memory). */
void
handler_make_reply(const aurora_header *rep, const void *body, size_t n, aurora_reply *out)
{
	size_t		cap = AURORA_HEADER_SIZE + n;

	out->len = 0;
	out->data = malloc(cap);
	if (out->data == NULL)
		return;
	out->len = aurora_encode(rep, body, n, out->data, cap);
	if (out->len == 0)
	{
		free(out->data);
		out->data = NULL;
	}
}

static void
error_reply_hdr(aurora_handler *h, const aurora_header *rep_base, uint32_t code,
				const char *message, aurora_reply *out)
{
	aurora_header rep = *rep_base;
	aurora_error_body e;
	uint8_t		body[AURORA_ERROR_BODY_MAX];
	size_t		n;

	atomic_fetch_add(&h->errors_total, 1);
	if (code < AURORA_ERR_COUNT)
		atomic_fetch_add(&h->errors_by_code[code], 1);

	memset(&e, 0, sizeof(e));
	e.code = code;
	snprintf(e.message, sizeof(e.message), "%s", message);
	n = aurora_error_body_encode(&e, body, sizeof(body));
	rep.type = AURORA_MSG_ERROR;
	handler_make_reply(&rep, body, n, out);
}

void
handler_error_reply(aurora_handler *h, const aurora_header *req, uint32_t code,
			const char *message, aurora_reply *out)
{
	aurora_header rep;

	handler_reply_header(req, AURORA_MSG_ERROR, &rep);
	error_reply_hdr(h, &rep, code, message, out);
}

/* Human-readable explanation of a decode failure, for the ERROR body. */
static void
describe_decode_error(const aurora_handler *h, int code, const aurora_header *req,
					  size_t len, char *msg, size_t cap)
{
	switch (code)
	{
		case AURORA_ERR_MALFORMED:
			if (len < AURORA_HEADER_SIZE)
				snprintf(msg, cap, "message is %zu bytes, shorter than the %d-byte header",
						 len, AURORA_HEADER_SIZE);
			else if (len - AURORA_HEADER_SIZE != req->body_len)
				snprintf(msg, cap, "header body_len %u does not match the %zu body bytes received",
						 (unsigned) req->body_len, len - AURORA_HEADER_SIZE);
			else
				snprintf(msg, cap, "reserved header flags 0x%08x must be zero",
						 (unsigned) req->flags);
			break;
		case AURORA_ERR_BAD_MAGIC:
			snprintf(msg, cap, "bad magic 0x%08x, expected 0x%08x (\"AURA\")",
					 (unsigned) req->magic, (unsigned) AURORA_MAGIC);
			break;
		case AURORA_ERR_BAD_VERSION:
			snprintf(msg, cap, "protocol version %u is not supported; this node speaks version %d",
					 (unsigned) req->version, AURORA_PROTOCOL_VERSION);
			break;
		case AURORA_ERR_TOO_LARGE:
			snprintf(msg, cap, "body_len %u exceeds this node's limit of %u bytes",
					 (unsigned) req->body_len, (unsigned) h->max_body);
			break;
		case AURORA_ERR_BAD_CRC:
			snprintf(msg, cap, "CRC32C mismatch (header carries 0x%08x)",
					 (unsigned) req->crc32c);
			break;
		default:
			snprintf(msg, cap, "decode failed: %s", aurora_error_name((uint32_t) code));
			break;
	}
}

/* The wire error code for a segment store error. */
static uint32_t
wire_code(int seg_rc)
{
	switch (seg_rc)
	{
		case AURORA_SEG_ERR_INVALID:
			return AURORA_ERR_MALFORMED;
		case AURORA_SEG_ERR_INCONSISTENT:
			return AURORA_ERR_INCONSISTENT;
		case AURORA_SEG_ERR_TOO_LARGE:
			return AURORA_ERR_TOO_LARGE;
		case AURORA_SEG_ERR_IO:
			return AURORA_ERR_IO;
		case AURORA_SEG_ERR_CORRUPT:
			return AURORA_ERR_CORRUPT;
		case AURORA_SEG_ERR_CONFLICT:
			return AURORA_ERR_CONFLICT;
		case AURORA_SEG_ERR_NOT_FOUND:
			return AURORA_ERR_NO_SEGMENT;
		case AURORA_SEG_ERR_STALE:
			return AURORA_ERR_STALE_EPOCH;
	}
	return AURORA_ERR_INTERNAL;
}

static void
handle_status(aurora_handler *h, const aurora_header *req, aurora_reply *out)
{
	aurora_status_body s;
	aurora_header rep;
	uint8_t		body[AURORA_STATUS_BODY_MAX];
	size_t		n;

	if (req->body_len != 0)
	{
		char		msg[96];

		snprintf(msg, sizeof(msg), "STATUS_REQ must have an empty body, got %u bytes",
				 (unsigned) req->body_len);
		handler_error_reply(h, req, AURORA_ERR_MALFORMED, msg, out);
		return;
	}
	aurora_handler_status(h, &s);
	n = aurora_status_body_encode(&s, body, sizeof(body));
	if (n == 0)
	{
		handler_error_reply(h, req, AURORA_ERR_INTERNAL, "cannot encode STATUS_RESP body", out);
		return;
	}
	handler_reply_header(req, AURORA_MSG_STATUS_RESP, &rep);
	handler_make_reply(&rep, body, n, out);
}

/* An ERROR about seg's epochs: its header carries the segment's epochs. */
static void
epoch_error(aurora_handler *h, const aurora_header *req, const aurora_segment_meta *meta,
			uint32_t code, const char *msg, aurora_reply *out)
{
	aurora_header rep;

	handler_reply_header(req, AURORA_MSG_ERROR, &rep);
	rep.volume_epoch = meta->volume_epoch;
	rep.membership_epoch = meta->membership_epoch;
	error_reply_hdr(h, &rep, code, msg, out);
}

/*
 * Epoch fencing for a request addressed to a segment.  A lower volume or
 * membership epoch than the segment's is refused (this is what fences an
 * old writer).  A higher volume epoch is refused too: only FENCE_REQ
 * raises it, so a request cannot slip past the opener's truncation.  With
 * need_open, a segment fenced at its epoch but not yet truncated for it
 * (or with a truncation's cut still pending) refuses: it may still hold
 * the ragged edge.  Membership changes do not exist yet, so a higher
 * membership epoch is adopted as before.  Refusals carry the segment's
 * epochs in their header.
 */
bool
handler_check_epochs(aurora_handler *h, const aurora_header *req, struct aurora_segment *seg,
					 bool need_open, aurora_reply *out)
{
	aurora_segment_meta meta;
	char		msg[240];
	char		err[256];
	int			rc;

	aurora_segment_get_meta(seg, &meta);
	if (req->volume_epoch < meta.volume_epoch ||
		req->membership_epoch < meta.membership_epoch)
	{
		snprintf(msg, sizeof(msg),
				 "stale epoch: request has volume epoch %llu, membership epoch %llu; "
				 "segment is at %llu, %llu",
				 (unsigned long long) req->volume_epoch,
				 (unsigned long long) req->membership_epoch,
				 (unsigned long long) meta.volume_epoch,
				 (unsigned long long) meta.membership_epoch);
		epoch_error(h, req, &meta, AURORA_ERR_STALE_EPOCH, msg, out);
		return false;
	}
	if (req->volume_epoch > meta.volume_epoch)
	{
		snprintf(msg, sizeof(msg),
				 "segment not truncated for this epoch: request has volume epoch %llu, "
				 "segment is at %llu (FENCE_REQ and TRUNCATE_REQ open an epoch)",
				 (unsigned long long) req->volume_epoch,
				 (unsigned long long) meta.volume_epoch);
		epoch_error(h, req, &meta, AURORA_ERR_EPOCH_NOT_OPEN, msg, out);
		return false;
	}
	if (need_open && (meta.truncated_epoch != meta.volume_epoch || meta.cut_pending))
	{
		snprintf(msg, sizeof(msg),
				 "segment not truncated for this epoch: fenced at volume epoch %llu, "
				 "last truncated at %llu%s",
				 (unsigned long long) meta.volume_epoch,
				 (unsigned long long) meta.truncated_epoch,
				 meta.cut_pending ? " (a truncation is being finished)" : "");
		epoch_error(h, req, &meta, AURORA_ERR_EPOCH_NOT_OPEN, msg, out);
		return false;
	}
	if (req->membership_epoch > meta.membership_epoch)
	{
		rc = aurora_segment_set_epochs(seg, req->volume_epoch, req->membership_epoch,
									   err, sizeof(err));
		if (rc != AURORA_SEG_OK)
		{
			handler_error_reply(h, req, wire_code(rc), err, out);
			return false;
		}
	}
	return true;
}

struct aurora_segment *
handler_find_segment(aurora_handler *h, const aurora_header *req, aurora_reply *out)
{
	struct aurora_segment *seg = h->store ?
		aurora_segment_table_find(h->store, req->volume_id, req->pg_id) : NULL;

	if (seg == NULL)
	{
		char		msg[128];

		snprintf(msg, sizeof(msg), "this node holds no segment of volume %016llx, PG %u",
				 (unsigned long long) req->volume_id, (unsigned) req->pg_id);
		handler_error_reply(h, req, AURORA_ERR_NO_SEGMENT, msg, out);
	}
	return seg;
}

/* The segment's truncation history as wire bytes: *raw malloc'd (free it). */
static bool
history_list(struct aurora_segment *seg, aurora_trunc_list *l, uint8_t **raw)
{
	aurora_trunc_entry *hist = malloc(AURORA_TRUNC_HISTORY_MAX * sizeof(*hist));
	int			n;

	*raw = malloc(AURORA_TRUNC_HISTORY_MAX * AURORA_TRUNC_ENTRY_SIZE);
	if (hist == NULL || *raw == NULL)
	{
		free(hist);
		free(*raw);
		*raw = NULL;
		return false;
	}
	n = aurora_segment_get_history(seg, hist, AURORA_TRUNC_HISTORY_MAX);
	aurora_trunc_list_fill(l, hist, n, *raw);
	free(hist);
	return true;
}

static void
segment_info_reply(aurora_handler *h, const aurora_header *req, struct aurora_segment *seg,
				   aurora_reply *out)
{
	aurora_segment_meta meta;
	aurora_segment_stats st;
	aurora_segment_info info;
	aurora_header rep;
	uint8_t    *body;
	uint8_t    *raw;
	size_t		cap = 64 + AURORA_TRUNC_LIST_MAX_BYTES;
	size_t		n;

	body = malloc(cap);
	if (body == NULL || !history_list(seg, &info.history, &raw))
	{
		free(body);
		handler_error_reply(h, req, AURORA_ERR_INTERNAL, "out of memory for SEGMENT_INFO", out);
		return;
	}
	aurora_segment_get_meta(seg, &meta);
	aurora_segment_get_stats(seg, &st);
	info.replica_index = meta.replica_index;
	info.scl = st.scl;
	info.highest_lsn = st.highest_lsn;
	info.n_pgs = meta.n_pgs;
	info.blocks_per_segment = meta.blocks_per_segment;
	info.seeded_lsn = aurora_pageservice_seeded_lsn(h->pages, seg);
	/*
	 * Also while a cut is pending: the log is already cut then (only the
	 * page store may not be), so what READ_LOG serves is the truncated log.
	 */
	info.truncated_epoch = meta.truncated_epoch;
	n = aurora_segment_info_encode(&info, body, cap);
	free(raw);
	handler_reply_header(req, AURORA_MSG_SEGMENT_INFO, &rep);
	rep.volume_epoch = st.volume_epoch;
	rep.membership_epoch = st.membership_epoch;
	handler_make_reply(&rep, body, n, out);
	free(body);
}

/*
 * SEGMENT_INFO_REQ is how a peer's gossip learns this segment's SCL.  It is
 * deliberately not fenced and never adopts the requester's epochs: it changes
 * nothing, and the reply header tells the requester our epochs, so it can
 * tell whether we are its peer in the same epoch.
 */
static void
handle_segment_info(aurora_handler *h, const aurora_header *req, aurora_reply *out)
{
	struct aurora_segment *seg;

	if (req->body_len != 0)
	{
		handler_error_reply(h, req, AURORA_ERR_MALFORMED, "SEGMENT_INFO_REQ must have an empty body", out);
		return;
	}
	if ((seg = handler_find_segment(h, req, out)) == NULL)
		return;
	segment_info_reply(h, req, seg, out);
}

/* RECORD_BEFORE_REQ: fenced like READ_LOG (it serves the current writer). */
static void
handle_record_before(aurora_handler *h, const aurora_header *req, const uint8_t *body,
					 aurora_reply *out)
{
	struct aurora_segment *seg;
	aurora_record_before rb;
	aurora_log_record rec;
	aurora_segment_stats st;
	aurora_header rep;
	uint64_t	lsn;
	uint8_t		buf[64];
	size_t		n;

	if ((seg = handler_find_segment(h, req, out)) == NULL)
		return;
	/* served while fenced but not truncated: the opener reads the ragged edge */
	if (!handler_check_epochs(h, req, seg, false, out))
		return;
	if (aurora_record_before_req_decode(body, req->body_len, &lsn) != 0)
	{
		handler_error_reply(h, req, AURORA_ERR_MALFORMED, "RECORD_BEFORE_REQ body does not decode", out);
		return;
	}
	memset(&rb, 0, sizeof(rb));
	rb.found = aurora_segment_record_before(seg, lsn, &rec);
	if (rb.found)
	{
		rb.start_lsn = rec.start_lsn;
		rb.end_lsn = rec.end_lsn;
		rb.prev_lsn = rec.prev_lsn;
	}
	aurora_segment_get_stats(seg, &st);
	rb.scl = st.scl;
	n = aurora_record_before_encode(&rb, buf, sizeof(buf));
	handler_reply_header(req, AURORA_MSG_RECORD_BEFORE, &rep);
	rep.volume_epoch = st.volume_epoch;
	rep.membership_epoch = st.membership_epoch;
	handler_make_reply(&rep, buf, n, out);
}

static void
handle_create_segment(aurora_handler *h, const aurora_header *req, const uint8_t *body,
					  aurora_reply *out)
{
	aurora_create_segment c;
	aurora_segment_meta meta;
	struct aurora_segment *seg;
	char		err[256];
	int			rc;

	if (h->store == NULL)
	{
		handler_error_reply(h, req, AURORA_ERR_INTERNAL, "this node has no segment store", out);
		return;
	}
	if (aurora_create_segment_decode(body, req->body_len, &c) != 0)
	{
		handler_error_reply(h, req, AURORA_ERR_MALFORMED, "CREATE_SEGMENT body does not decode", out);
		return;
	}
	memset(&meta, 0, sizeof(meta));
	meta.volume_id = req->volume_id;
	meta.pg_id = req->pg_id;
	meta.replica_index = c.replica_index;
	memcpy(meta.members, c.members, sizeof(meta.members));
	meta.volume_epoch = req->volume_epoch;
	meta.membership_epoch = req->membership_epoch;
	meta.base_lsn = c.base_lsn;
	meta.n_pgs = c.n_pgs;
	meta.blocks_per_segment = c.blocks_per_segment;

	/* an existing segment is subject to the same fencing as any request */
	seg = aurora_segment_table_find(h->store, req->volume_id, req->pg_id);
	if (seg != NULL && !handler_check_epochs(h, req, seg, false, out))
		return;
	rc = aurora_segment_table_create_segment(h->store, &meta, h->node_id, &seg, err, sizeof(err));
	if (rc != AURORA_SEG_OK)
	{
		handler_error_reply(h, req, wire_code(rc), err, out);
		return;
	}
	segment_info_reply(h, req, seg, out);
}

static bool
handle_log_append(aurora_handler *h, const aurora_header *req, const uint8_t *body,
				  aurora_reply *out, aurora_deferred_ack *d)
{
	struct aurora_segment *seg;
	aurora_log_record *recs;
	int			n;
	int			n_new = 0;
	int			rc;
	char		err[256];

	if ((seg = handler_find_segment(h, req, out)) == NULL)
		return false;
	if (!handler_check_epochs(h, req, seg, true, out))
		return false;
	rc = aurora_log_append_decode(body, req->body_len, &recs, &n);
	if (rc != 0)
	{
		handler_error_reply(h, req, (uint32_t) rc, "LOG_APPEND body does not decode", out);
		return false;
	}
	/*
	 * A volume with geometry carries an envelope in front of every record
	 * (PROTOCOL.md 11); one that does not decode would stop the page index,
	 * so it is refused before anything is written.
	 */
	{
		aurora_segment_meta meta;

		aurora_segment_get_meta(seg, &meta);
		if (meta.n_pgs != 0 && !aurora_pageservice_check_envelopes(recs, n, err, sizeof(err)))
		{
			free(recs);
			handler_error_reply(h, req, AURORA_ERR_MALFORMED, err, out);
			return false;
		}
	}
	rc = aurora_segment_append(seg, recs, n, h->max_body, &n_new, err, sizeof(err));
	free(recs);
	if (rc != AURORA_SEG_OK)
	{
		handler_error_reply(h, req, wire_code(rc), err, out);
		return false;
	}
	memset(d, 0, sizeof(*d));
	d->kind = AURORA_DEFERRED_APPEND;
	d->req = *req;
	d->segment = seg;
	d->n_new = (uint32_t) n_new;
	d->n_duplicate = (uint32_t) (n - n_new);
	return true;
}

void
aurora_handler_finish_append(aurora_handler *h, const aurora_deferred_ack *d,
							 const char *sync_error, aurora_reply *out)
{
	aurora_segment_stats st;
	aurora_log_ack ack;
	aurora_header rep;
	uint8_t		body[64];
	size_t		n;

	if (sync_error != NULL)
	{
		handler_error_reply(h, &d->req, AURORA_ERR_IO, sync_error, out);
		return;
	}
	aurora_segment_get_stats(d->segment, &st);
	ack.scl = st.scl;
	ack.highest_lsn = st.highest_lsn;
	ack.n_new = d->n_new;
	ack.n_duplicate = d->n_duplicate;
	n = aurora_log_ack_encode(&ack, body, sizeof(body));
	handler_reply_header(&d->req, AURORA_MSG_LOG_ACK, &rep);
	rep.volume_epoch = st.volume_epoch;
	rep.membership_epoch = st.membership_epoch;
	handler_make_reply(&rep, body, n, out);
}

/*
 * READ_LOG streams records into a growing reply body.  The budget is the
 * requester's max_bytes, capped by our own message limit, counted on the
 * encoded size so that many tiny records cannot make a huge reply.
 */
#define READ_STOP	1000		/* emit's "budget full": not a segment error */

typedef struct read_sink
{
	uint8_t    *data;			/* header room + body */
	size_t		cap;
	size_t		len;			/* bytes used, header room included */
	size_t		budget;			/* body bytes allowed for records */
	size_t		used;
	uint32_t	count;
	bool		full;
	bool		oom;
} read_sink;

static int
read_emit(void *arg, const aurora_log_record *r)
{
	read_sink  *sink = arg;
	size_t		size = AURORA_RECORD_OVERHEAD + r->len;
	aurora_buf	b;

	if (sink->count > 0 && sink->used + size > sink->budget)
	{
		sink->full = true;
		return READ_STOP;
	}
	if (sink->len + size > sink->cap)
	{
		size_t		cap = (sink->len + size) * 2;
		uint8_t    *grown = realloc(sink->data, cap);

		if (grown == NULL)
		{
			sink->oom = true;
			return READ_STOP;
		}
		sink->data = grown;
		sink->cap = cap;
	}
	aurora_buf_init_writer(&b, sink->data + sink->len, size);
	aurora_buf_put_u64(&b, r->start_lsn);
	aurora_buf_put_u64(&b, r->end_lsn);
	aurora_buf_put_u64(&b, r->prev_lsn);
	aurora_buf_put_u32(&b, r->len);
	aurora_buf_put_bytes(&b, r->payload, r->len);
	sink->len += size;
	sink->used += size;
	sink->count++;
	return 0;
}

static void
handle_read_log(aurora_handler *h, const aurora_header *req, const uint8_t *body,
				aurora_reply *out)
{
	struct aurora_segment *seg;
	aurora_read_log rl;
	aurora_segment_stats st;
	aurora_header rep;
	aurora_buf	b;
	read_sink	sink;
	bool		truncated = false;
	int			rc;
	const size_t prefix = AURORA_HEADER_SIZE + 13;	/* scl, truncated, count */

	if ((seg = handler_find_segment(h, req, out)) == NULL)
		return;
	/* served while fenced but not truncated: the opener reads the ragged edge */
	if (!handler_check_epochs(h, req, seg, false, out))
		return;
	if (aurora_read_log_decode(body, req->body_len, &rl) != 0)
	{
		handler_error_reply(h, req, AURORA_ERR_MALFORMED, "READ_LOG body does not decode", out);
		return;
	}

	memset(&sink, 0, sizeof(sink));
	sink.budget = rl.max_bytes < h->max_body - 13 ? rl.max_bytes : h->max_body - 13;
	sink.cap = prefix + 4096;
	sink.len = prefix;
	sink.data = malloc(sink.cap);
	if (sink.data == NULL)
	{
		handler_error_reply(h, req, AURORA_ERR_INTERNAL, "out of memory for READ_LOG reply", out);
		return;
	}
	rc = aurora_segment_read(seg, rl.from_lsn, rl.to_lsn, sink.budget, read_emit, &sink,
							 &truncated);
	if (sink.oom || (rc != AURORA_SEG_OK && rc != READ_STOP))
	{
		free(sink.data);
		handler_error_reply(h, req, sink.oom ? AURORA_ERR_INTERNAL : wire_code(rc),
					sink.oom ? "out of memory for READ_LOG reply" :
					rc == AURORA_SEG_ERR_CORRUPT ? "a record in the range fails its CRC" :
					"cannot read the log range", out);
		return;
	}
	if (sink.full)
		truncated = true;

	aurora_segment_get_stats(seg, &st);
	aurora_buf_init_writer(&b, sink.data + AURORA_HEADER_SIZE, 13);
	aurora_buf_put_u64(&b, st.scl);
	aurora_buf_put_u8(&b, truncated ? 1 : 0);
	aurora_buf_put_u32(&b, sink.count);
	handler_reply_header(req, AURORA_MSG_READ_LOG_RESP, &rep);
	rep.volume_epoch = st.volume_epoch;
	rep.membership_epoch = st.membership_epoch;
	/* the header goes in front of the body already in place */
	out->len = aurora_encode(&rep, sink.data + AURORA_HEADER_SIZE,
							 sink.len - AURORA_HEADER_SIZE, sink.data, sink.cap);
	out->data = sink.data;
	if (out->len == 0)
	{
		free(sink.data);
		out->data = NULL;
	}
}

typedef struct segments_sink
{
	aurora_buf	b;
	uint32_t	count;
	struct aurora_pageservice *pages;
} segments_sink;

static int
segments_emit(void *arg, struct aurora_segment *seg)
{
	segments_sink *sink = arg;
	aurora_segment_meta meta;
	aurora_segment_stats st;
	aurora_segment_state s;
	aurora_hole holes[AURORA_HOLES_LISTED_MAX];
	int			n_holes,
				i;

	aurora_segment_get_meta(seg, &meta);
	aurora_segment_get_stats(seg, &st);
	n_holes = aurora_segment_get_holes(seg, holes, AURORA_HOLES_LISTED_MAX);
	memset(&s, 0, sizeof(s));
	s.volume_id = meta.volume_id;
	s.pg_id = meta.pg_id;
	s.replica_index = meta.replica_index;
	s.scl = st.scl;
	s.highest_lsn = st.highest_lsn;
	s.records = st.records;
	s.bytes_on_disk = st.bytes_on_disk;
	s.volume_epoch = st.volume_epoch;
	s.membership_epoch = st.membership_epoch;
	s.n_holes = (uint32_t) n_holes;
	s.n_holes_listed = (uint16_t) (n_holes < AURORA_HOLES_LISTED_MAX ? n_holes : AURORA_HOLES_LISTED_MAX);
	for (i = 0; i < s.n_holes_listed; i++)
	{
		s.holes[i][0] = holes[i].from_lsn;
		s.holes[i][1] = holes[i].to_lsn;
	}
	snprintf(s.recovery_note, sizeof(s.recovery_note), "%s", st.recovery_note);
	s.peer_scl = st.peer_scl;
	s.records_from_peers = st.records_from_peers;
	aurora_pageservice_segment_stats(sink->pages, seg, &s.indexed_lsn, &s.page_images);
	s.truncated_epoch = meta.truncated_epoch;
	s.records_dropped = meta.records_dropped;
	{
		aurora_trunc_entry last;

		if (aurora_segment_last_truncation(seg, &last))
		{
			s.last_trunc_epoch = last.epoch;
			s.last_trunc_lsn = last.lsn;
		}
	}
	aurora_segment_state_put(&sink->b, &s);
	sink->count++;
	return 0;
}

static void
handle_segments(aurora_handler *h, const aurora_header *req, aurora_reply *out)
{
	segments_sink sink;
	aurora_header rep;
	uint8_t    *buf;
	size_t		cap;
	int			count = h->store ? aurora_segment_table_count(h->store) : 0;

	if (req->body_len != 0)
	{
		handler_error_reply(h, req, AURORA_ERR_MALFORMED, "SEGMENTS_REQ must have an empty body", out);
		return;
	}
	/* each state is at most ~600 bytes; leave room for segments created meanwhile */
	cap = 4 + (size_t) (count + 16) * 680;
	buf = malloc(cap);
	if (buf == NULL)
	{
		handler_error_reply(h, req, AURORA_ERR_INTERNAL, "out of memory for SEGMENTS_RESP", out);
		return;
	}
	aurora_buf_init_writer(&sink.b, buf, cap);
	aurora_buf_put_u32(&sink.b, 0);
	sink.count = 0;
	sink.pages = h->pages;
	if (h->store)
		aurora_segment_table_foreach(h->store, segments_emit, &sink);
	if (!aurora_buf_ok(&sink.b))
	{
		free(buf);
		handler_error_reply(h, req, AURORA_ERR_INTERNAL, "SEGMENTS_RESP does not fit", out);
		return;
	}
	{
		aurora_buf	patch;

		aurora_buf_init_writer(&patch, buf, 4);
		aurora_buf_put_u32(&patch, sink.count);
	}
	handler_reply_header(req, AURORA_MSG_SEGMENTS_RESP, &rep);
	handler_make_reply(&rep, buf, aurora_buf_len(&sink.b), out);
	free(buf);
}

/*
 * FENCE_REQ: raise the segment's volume epoch to the header's (durably),
 * and tell the opener what it needs to find VDL and build the history.
 */
static void
handle_fence(aurora_handler *h, const aurora_header *req, aurora_reply *out)
{
	struct aurora_segment *seg;
	aurora_segment_meta meta;
	aurora_segment_stats st;
	aurora_fence_ack ack;
	aurora_header rep;
	uint8_t    *body,
			   *raw;
	size_t		cap = 32 + AURORA_TRUNC_LIST_MAX_BYTES;
	char		err[256];
	int			rc;

	if (req->body_len != 0)
	{
		handler_error_reply(h, req, AURORA_ERR_MALFORMED, "FENCE_REQ must have an empty body", out);
		return;
	}
	if ((seg = handler_find_segment(h, req, out)) == NULL)
		return;
	rc = aurora_segment_fence(seg, req->volume_epoch, err, sizeof(err));
	if (rc != AURORA_SEG_OK)
	{
		aurora_segment_get_meta(seg, &meta);
		epoch_error(h, req, &meta, wire_code(rc), err, out);
		return;
	}
	body = malloc(cap);
	if (body == NULL || !history_list(seg, &ack.history, &raw))
	{
		free(body);
		handler_error_reply(h, req, AURORA_ERR_INTERNAL, "out of memory for FENCE_ACK", out);
		return;
	}
	aurora_segment_get_meta(seg, &meta);
	aurora_segment_get_stats(seg, &st);
	ack.scl = st.scl;
	ack.highest_lsn = st.highest_lsn;
	ack.truncated_epoch = meta.truncated_epoch;
	handler_reply_header(req, AURORA_MSG_FENCE_ACK, &rep);
	rep.volume_epoch = meta.volume_epoch;
	rep.membership_epoch = meta.membership_epoch;
	handler_make_reply(&rep, body, aurora_fence_ack_encode(&ack, body, cap), out);
	free(raw);
	free(body);
}

/* TRUNCATE_REQ: discard the ragged edge and open the header's epoch. */
static void
handle_truncate(aurora_handler *h, const aurora_header *req, const uint8_t *body,
				aurora_reply *out)
{
	struct aurora_segment *seg;
	aurora_segment_meta meta;
	aurora_segment_stats st;
	aurora_segment_truncation res;
	aurora_truncate_ack ack;
	aurora_trunc_list l;
	aurora_trunc_entry *hist;
	aurora_header rep;
	uint8_t		buf[64];
	char		err[300];
	int			rc;

	if ((seg = handler_find_segment(h, req, out)) == NULL)
		return;
	if (aurora_truncate_req_decode(body, req->body_len, &l) != 0)
	{
		handler_error_reply(h, req, AURORA_ERR_MALFORMED,
							"TRUNCATE_REQ body does not decode as a truncation history "
							"(at least one entry, ascending epochs, non-decreasing LSNs)", out);
		return;
	}
	if (aurora_trunc_list_at(&l, l.n - 1).epoch != req->volume_epoch)
	{
		snprintf(err, sizeof(err), "TRUNCATE_REQ history ends at epoch %llu, the header has %llu",
				 (unsigned long long) aurora_trunc_list_at(&l, l.n - 1).epoch,
				 (unsigned long long) req->volume_epoch);
		handler_error_reply(h, req, AURORA_ERR_MALFORMED, err, out);
		return;
	}
	if ((hist = malloc((size_t) l.n * sizeof(*hist))) == NULL)
	{
		handler_error_reply(h, req, AURORA_ERR_INTERNAL, "out of memory for TRUNCATE_REQ", out);
		return;
	}
	aurora_trunc_list_copy(&l, hist);
	rc = aurora_truncation_apply(seg, h->pages, h->start_states, hist, l.n, &res, err, sizeof(err));
	free(hist);
	aurora_segment_get_meta(seg, &meta);
	if (rc != AURORA_SEG_OK)
	{
		epoch_error(h, req, &meta, wire_code(rc), err, out);
		return;
	}
	if (!res.repeat)
		aurora_log("truncation: volume %016llx PG %u: opened epoch %llu, cut at %llu, "
				   "dropped %llu records (%llu bytes)",
				   (unsigned long long) meta.volume_id, (unsigned) meta.pg_id,
				   (unsigned long long) meta.volume_epoch, (unsigned long long) res.cut_lsn,
				   (unsigned long long) res.records_dropped,
				   (unsigned long long) res.bytes_dropped);
	aurora_segment_get_stats(seg, &st);
	ack.scl = st.scl;
	ack.highest_lsn = st.highest_lsn;
	ack.records_dropped = res.records_dropped;
	ack.bytes_dropped = res.bytes_dropped;
	handler_reply_header(req, AURORA_MSG_TRUNCATE_ACK, &rep);
	rep.volume_epoch = meta.volume_epoch;
	rep.membership_epoch = meta.membership_epoch;
	handler_make_reply(&rep, buf, aurora_truncate_ack_encode(&ack, buf, sizeof(buf)), out);
}

bool
aurora_handler_dispatch(aurora_handler *h, const uint8_t *req, size_t len,
						aurora_reply *out, aurora_deferred_ack *deferred)
{
	aurora_header hdr;
	const uint8_t *body;
	int			rc;
	char		msg[160];

	out->data = NULL;
	out->len = 0;
	atomic_fetch_add(&h->requests_total, 1);
	rc = aurora_decode(req, len, h->max_body, &hdr, &body);
	if (rc != 0)
	{
		describe_decode_error(h, rc, &hdr, len, msg, sizeof(msg));
		handler_error_reply(h, &hdr, (uint32_t) rc, msg, out);
		return false;
	}

	switch (hdr.type)
	{
		case AURORA_MSG_STATUS_REQ:
			handle_status(h, &hdr, out);
			return false;
		case AURORA_MSG_CREATE_SEGMENT:
			handle_create_segment(h, &hdr, body, out);
			return false;
		case AURORA_MSG_LOG_APPEND:
			return handle_log_append(h, &hdr, body, out, deferred);
		case AURORA_MSG_READ_LOG:
			handle_read_log(h, &hdr, body, out);
			return false;
		case AURORA_MSG_SEGMENTS_REQ:
			handle_segments(h, &hdr, out);
			return false;
		case AURORA_MSG_SEGMENT_INFO_REQ:
			handle_segment_info(h, &hdr, out);
			return false;
		case AURORA_MSG_RECORD_BEFORE_REQ:
			handle_record_before(h, &hdr, body, out);
			return false;
		case AURORA_MSG_FENCE_REQ:
			handle_fence(h, &hdr, out);
			return false;
		case AURORA_MSG_TRUNCATE_REQ:
			handle_truncate(h, &hdr, body, out);
			return false;
		case AURORA_MSG_GETPAGE_REQ:
		case AURORA_MSG_REL_SIZE_REQ:
		case AURORA_MSG_SEED_PAGES:
			return handler_defer_page_request(h, &hdr, req, len, out, deferred);
		case AURORA_MSG_START_STATE_PUT:
			handler_start_state_put(h, &hdr, body, out);
			return false;
		case AURORA_MSG_START_STATE_GET:
			handler_start_state_get(h, &hdr, body, out);
			return false;
		case AURORA_MSG_ERROR:
		case AURORA_MSG_STATUS_RESP:
		case AURORA_MSG_SEGMENT_INFO:
		case AURORA_MSG_LOG_ACK:
		case AURORA_MSG_READ_LOG_RESP:
		case AURORA_MSG_SEGMENTS_RESP:
		case AURORA_MSG_RECORD_BEFORE:
		case AURORA_MSG_PAGE:
		case AURORA_MSG_REL_SIZE:
		case AURORA_MSG_SEED_ACK:
		case AURORA_MSG_FENCE_ACK:
		case AURORA_MSG_TRUNCATE_ACK:
		case AURORA_MSG_START_STATE_ACK:
		case AURORA_MSG_START_STATE:
			snprintf(msg, sizeof(msg), "message type %s (%u) is a reply, not a request",
					 aurora_msg_type_name(hdr.type), (unsigned) hdr.type);
			break;
		default:
			snprintf(msg, sizeof(msg), "unknown message type %u", (unsigned) hdr.type);
			break;
	}
	handler_error_reply(h, &hdr, AURORA_ERR_UNKNOWN_TYPE, msg, out);
	return false;
}

size_t
aurora_handler_handle(aurora_handler *h, const uint8_t *req, size_t len,
					  uint8_t *out, size_t cap)
{
	aurora_reply reply;
	aurora_deferred_ack d;
	size_t		n = 0;

	if (!aurora_handler_dispatch(h, req, len, &reply, &d))
		;						/* reply is ready */
	else if (d.kind == AURORA_DEFERRED_PAGE)
		aurora_handler_finish_page(h, &d, &reply);
	else
	{
		/* no server: make the append durable right here */
		char		err[256];

		if (aurora_segment_sync(d.segment, err, sizeof(err)) == AURORA_SEG_OK)
			aurora_handler_finish_append(h, &d, NULL, &reply);
		else
			aurora_handler_finish_append(h, &d, err, &reply);
	}
	if (reply.data != NULL && reply.len <= cap)
	{
		memcpy(out, reply.data, reply.len);
		n = reply.len;
	}
	free(reply.data);
	return n;
}
