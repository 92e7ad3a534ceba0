/*
 * logmsg.c - codecs of the segment log message bodies (logmsg.h).
 *
 * Written with the sticky-failure aurora_buf of wire.c: every get/put is
 * bounds-checked, and a codec checks once at the end that nothing failed
 * and, when decoding, that the body was consumed exactly.
 */
#include "logmsg.h"

#include <stdlib.h>
#include <string.h>

/* ---- CREATE_SEGMENT ---- */

size_t
aurora_create_segment_encode(const aurora_create_segment *c, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;
	int			i;

	aurora_buf_init_writer(&b, out, out_cap);
	aurora_buf_put_u32(&b, c->replica_index);
	aurora_buf_put_u64(&b, c->base_lsn);
	aurora_buf_put_u8(&b, AURORA_PG_COPIES);
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		aurora_buf_put_str(&b, c->members[i].node_id);
		aurora_buf_put_str(&b, c->members[i].az);
		aurora_buf_put_str(&b, c->members[i].url);
	}
	aurora_buf_put_u32(&b, c->n_pgs);
	aurora_buf_put_u32(&b, c->blocks_per_segment);
	return aurora_buf_finish_write(&b);
}

int
aurora_create_segment_decode(const uint8_t *body, size_t len, aurora_create_segment *c)
{
	aurora_buf	b;
	int			i;

	memset(c, 0, sizeof(*c));
	aurora_buf_init_reader(&b, body, len);
	c->replica_index = aurora_buf_get_u32(&b);
	c->base_lsn = aurora_buf_get_u64(&b);
	if (aurora_buf_get_u8(&b) != AURORA_PG_COPIES)
		return AURORA_ERR_MALFORMED;
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		aurora_buf_get_str(&b, c->members[i].node_id, sizeof(c->members[i].node_id));
		aurora_buf_get_str(&b, c->members[i].az, sizeof(c->members[i].az));
		aurora_buf_get_str(&b, c->members[i].url, sizeof(c->members[i].url));
	}
	c->n_pgs = aurora_buf_get_u32(&b);
	c->blocks_per_segment = aurora_buf_get_u32(&b);
	if (aurora_buf_finish_read(&b) != 0 || c->replica_index >= AURORA_PG_COPIES)
		return AURORA_ERR_MALFORMED;
	return 0;
}

/* ---- SEGMENT_INFO ---- */

size_t
aurora_segment_info_encode(const aurora_segment_info *i, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, out_cap);
	aurora_buf_put_u32(&b, i->replica_index);
	aurora_buf_put_u64(&b, i->scl);
	aurora_buf_put_u64(&b, i->highest_lsn);
	aurora_buf_put_u32(&b, i->n_pgs);
	aurora_buf_put_u32(&b, i->blocks_per_segment);
	aurora_buf_put_u64(&b, i->seeded_lsn);
	aurora_buf_put_u64(&b, i->truncated_epoch);
	aurora_trunc_list_put(&b, &i->history);
	return aurora_buf_finish_write(&b);
}

int
aurora_segment_info_decode(const uint8_t *body, size_t len, aurora_segment_info *i)
{
	aurora_buf	b;

	aurora_buf_init_reader(&b, body, len);
	i->replica_index = aurora_buf_get_u32(&b);
	i->scl = aurora_buf_get_u64(&b);
	i->highest_lsn = aurora_buf_get_u64(&b);
	i->n_pgs = aurora_buf_get_u32(&b);
	i->blocks_per_segment = aurora_buf_get_u32(&b);
	i->seeded_lsn = aurora_buf_get_u64(&b);
	i->truncated_epoch = 0;
	i->history.n = 0;
	i->history.raw = NULL;
	/* a node from before volume epochs ends here */
	if (aurora_buf_ok(&b) && aurora_buf_remaining(&b) > 0)
	{
		i->truncated_epoch = aurora_buf_get_u64(&b);
		aurora_trunc_list_get(&b, &i->history);
	}
	return aurora_buf_finish_read(&b);
}

/* ---- RECORD_BEFORE ---- */

size_t
aurora_record_before_req_encode(uint64_t lsn, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, out_cap);
	aurora_buf_put_u64(&b, lsn);
	return aurora_buf_finish_write(&b);
}

int
aurora_record_before_req_decode(const uint8_t *body, size_t len, uint64_t *lsn)
{
	aurora_buf	b;

	aurora_buf_init_reader(&b, body, len);
	*lsn = aurora_buf_get_u64(&b);
	return aurora_buf_finish_read(&b);
}

size_t
aurora_record_before_encode(const aurora_record_before *r, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, out_cap);
	aurora_buf_put_u8(&b, r->found ? 1 : 0);
	aurora_buf_put_u64(&b, r->start_lsn);
	aurora_buf_put_u64(&b, r->end_lsn);
	aurora_buf_put_u64(&b, r->prev_lsn);
	aurora_buf_put_u64(&b, r->scl);
	return aurora_buf_finish_write(&b);
}

int
aurora_record_before_decode(const uint8_t *body, size_t len, aurora_record_before *r)
{
	aurora_buf	b;
	uint8_t		found;

	aurora_buf_init_reader(&b, body, len);
	found = aurora_buf_get_u8(&b);
	r->start_lsn = aurora_buf_get_u64(&b);
	r->end_lsn = aurora_buf_get_u64(&b);
	r->prev_lsn = aurora_buf_get_u64(&b);
	r->scl = aurora_buf_get_u64(&b);
	if (found > 1)
		return AURORA_ERR_MALFORMED;
	r->found = found == 1;
	return aurora_buf_finish_read(&b);
}

/* ---- record lists ---- */

size_t
aurora_records_encoded_size(const aurora_log_record *recs, int n)
{
	size_t		size = 4;
	int			i;

	for (i = 0; i < n; i++)
		size += AURORA_RECORD_OVERHEAD + recs[i].len;
	return size;
}

void
aurora_records_put(aurora_buf *b, const aurora_log_record *recs, int n)
{
	int			i;

	aurora_buf_put_u32(b, (uint32_t) n);
	for (i = 0; i < n; i++)
	{
		aurora_buf_put_u64(b, recs[i].start_lsn);
		aurora_buf_put_u64(b, recs[i].end_lsn);
		aurora_buf_put_u64(b, recs[i].prev_lsn);
		aurora_buf_put_u32(b, recs[i].len);
		aurora_buf_put_bytes(b, recs[i].payload, recs[i].len);
	}
}

int
aurora_records_get(aurora_buf *b, aurora_log_record **recs, int *n)
{
	uint32_t	count = aurora_buf_get_u32(b);
	aurora_log_record *out;
	uint32_t	i;

	*recs = NULL;
	*n = 0;
	if (!aurora_buf_ok(b) || count > aurora_buf_remaining(b) / AURORA_RECORD_OVERHEAD)
		return AURORA_ERR_MALFORMED;
	out = calloc(count ? count : 1, sizeof(*out));
	if (out == NULL)
		return AURORA_ERR_INTERNAL;
	for (i = 0; i < count; i++)
	{
		out[i].start_lsn = aurora_buf_get_u64(b);
		out[i].end_lsn = aurora_buf_get_u64(b);
		out[i].prev_lsn = aurora_buf_get_u64(b);
		out[i].len = aurora_buf_get_u32(b);
		if (!aurora_buf_ok(b) || out[i].len > aurora_buf_remaining(b))
		{
			free(out);
			return AURORA_ERR_MALFORMED;
		}
		out[i].payload = b->rdata + b->pos;
		b->pos += out[i].len;
	}
	*recs = out;
	*n = (int) count;
	return 0;
}

size_t
aurora_log_append_encode(const aurora_log_record *recs, int n, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, out_cap);
	aurora_records_put(&b, recs, n);
	return aurora_buf_finish_write(&b);
}

int
aurora_log_append_decode(const uint8_t *body, size_t len, aurora_log_record **recs, int *n)
{
	aurora_buf	b;
	int			rc;

	aurora_buf_init_reader(&b, body, len);
	rc = aurora_records_get(&b, recs, n);
	if (rc == 0 && aurora_buf_finish_read(&b) != 0)
	{
		free(*recs);
		*recs = NULL;
		*n = 0;
		rc = AURORA_ERR_MALFORMED;
	}
	return rc;
}

/* ---- LOG_ACK ---- */

size_t
aurora_log_ack_encode(const aurora_log_ack *a, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, out_cap);
	aurora_buf_put_u64(&b, a->scl);
	aurora_buf_put_u64(&b, a->highest_lsn);
	aurora_buf_put_u32(&b, a->n_new);
	aurora_buf_put_u32(&b, a->n_duplicate);
	return aurora_buf_finish_write(&b);
}

int
aurora_log_ack_decode(const uint8_t *body, size_t len, aurora_log_ack *a)
{
	aurora_buf	b;

	aurora_buf_init_reader(&b, body, len);
	a->scl = aurora_buf_get_u64(&b);
	a->highest_lsn = aurora_buf_get_u64(&b);
	a->n_new = aurora_buf_get_u32(&b);
	a->n_duplicate = aurora_buf_get_u32(&b);
	return aurora_buf_finish_read(&b);
}

/* ---- READ_LOG ---- */

size_t
aurora_read_log_encode(const aurora_read_log *r, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, out_cap);
	aurora_buf_put_u64(&b, r->from_lsn);
	aurora_buf_put_u64(&b, r->to_lsn);
	aurora_buf_put_u32(&b, r->max_bytes);
	return aurora_buf_finish_write(&b);
}

int
aurora_read_log_decode(const uint8_t *body, size_t len, aurora_read_log *r)
{
	aurora_buf	b;

	aurora_buf_init_reader(&b, body, len);
	r->from_lsn = aurora_buf_get_u64(&b);
	r->to_lsn = aurora_buf_get_u64(&b);
	r->max_bytes = aurora_buf_get_u32(&b);
	if (aurora_buf_finish_read(&b) != 0 || r->from_lsn > r->to_lsn)
		return AURORA_ERR_MALFORMED;
	return 0;
}

int
aurora_read_log_resp_decode(const uint8_t *body, size_t len, aurora_read_log_resp *r)
{
	aurora_buf	b;
	int			rc;

	memset(r, 0, sizeof(*r));
	aurora_buf_init_reader(&b, body, len);
	r->scl = aurora_buf_get_u64(&b);
	r->truncated = aurora_buf_get_u8(&b) != 0;
	rc = aurora_records_get(&b, &r->recs, &r->n);
	if (rc == 0 && aurora_buf_finish_read(&b) != 0)
	{
		free(r->recs);
		memset(r, 0, sizeof(*r));
		rc = AURORA_ERR_MALFORMED;
	}
	return rc;
}

/* ---- SEGMENTS_RESP ---- */

void
aurora_segment_state_put(aurora_buf *b, const aurora_segment_state *s)
{
	int			i;
	uint16_t	listed = s->n_holes_listed > AURORA_HOLES_LISTED_MAX ?
		AURORA_HOLES_LISTED_MAX : s->n_holes_listed;

	aurora_buf_put_u64(b, s->volume_id);
	aurora_buf_put_u32(b, s->pg_id);
	aurora_buf_put_u32(b, s->replica_index);
	aurora_buf_put_u64(b, s->scl);
	aurora_buf_put_u64(b, s->highest_lsn);
	aurora_buf_put_u64(b, s->records);
	aurora_buf_put_u64(b, s->bytes_on_disk);
	aurora_buf_put_u64(b, s->volume_epoch);
	aurora_buf_put_u64(b, s->membership_epoch);
	aurora_buf_put_u32(b, s->n_holes);
	aurora_buf_put_u16(b, listed);
	for (i = 0; i < listed; i++)
	{
		aurora_buf_put_u64(b, s->holes[i][0]);
		aurora_buf_put_u64(b, s->holes[i][1]);
	}
	aurora_buf_put_str(b, s->recovery_note);
	aurora_buf_put_u64(b, s->peer_scl);
	aurora_buf_put_u64(b, s->records_from_peers);
	aurora_buf_put_u64(b, s->indexed_lsn);
	aurora_buf_put_u64(b, s->page_images);
	aurora_buf_put_u64(b, s->truncated_epoch);
	aurora_buf_put_u64(b, s->last_trunc_epoch);
	aurora_buf_put_u64(b, s->last_trunc_lsn);
	aurora_buf_put_u64(b, s->records_dropped);
}

void
aurora_segment_state_get(aurora_buf *b, aurora_segment_state *s)
{
	int			i;

	memset(s, 0, sizeof(*s));
	s->volume_id = aurora_buf_get_u64(b);
	s->pg_id = aurora_buf_get_u32(b);
	s->replica_index = aurora_buf_get_u32(b);
	s->scl = aurora_buf_get_u64(b);
	s->highest_lsn = aurora_buf_get_u64(b);
	s->records = aurora_buf_get_u64(b);
	s->bytes_on_disk = aurora_buf_get_u64(b);
	s->volume_epoch = aurora_buf_get_u64(b);
	s->membership_epoch = aurora_buf_get_u64(b);
	s->n_holes = aurora_buf_get_u32(b);
	s->n_holes_listed = aurora_buf_get_u16(b);
	if (s->n_holes_listed > AURORA_HOLES_LISTED_MAX)
	{
		/* more than we can hold: poison the reader, the body is malformed */
		b->failed = true;
		return;
	}
	for (i = 0; i < s->n_holes_listed; i++)
	{
		s->holes[i][0] = aurora_buf_get_u64(b);
		s->holes[i][1] = aurora_buf_get_u64(b);
	}
	aurora_buf_get_str(b, s->recovery_note, sizeof(s->recovery_note));
	s->peer_scl = aurora_buf_get_u64(b);
	s->records_from_peers = aurora_buf_get_u64(b);
	s->indexed_lsn = aurora_buf_get_u64(b);
	s->page_images = aurora_buf_get_u64(b);
	s->truncated_epoch = aurora_buf_get_u64(b);
	s->last_trunc_epoch = aurora_buf_get_u64(b);
	s->last_trunc_lsn = aurora_buf_get_u64(b);
	s->records_dropped = aurora_buf_get_u64(b);
}

int
aurora_segments_resp_decode(const uint8_t *body, size_t len,
							aurora_segment_state **states, int *n)
{
	aurora_buf	b;
	uint32_t	count;
	aurora_segment_state *out;
	uint32_t	i;

	*states = NULL;
	*n = 0;
	aurora_buf_init_reader(&b, body, len);
	count = aurora_buf_get_u32(&b);
	/* 64 bytes is less than the smallest encoded state */
	if (!aurora_buf_ok(&b) || count > aurora_buf_remaining(&b) / 64)
		return AURORA_ERR_MALFORMED;
	out = calloc(count ? count : 1, sizeof(*out));
	if (out == NULL)
		return AURORA_ERR_INTERNAL;
	for (i = 0; i < count; i++)
		aurora_segment_state_get(&b, &out[i]);
	if (aurora_buf_finish_read(&b) != 0)
	{
		free(out);
		return AURORA_ERR_MALFORMED;
	}
	*states = out;
	*n = (int) count;
	return 0;
}
