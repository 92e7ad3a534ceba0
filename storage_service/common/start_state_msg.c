/*
 * start_state_msg.c - codecs of the start state message bodies
 * (start_state_msg.h, PROTOCOL.md 5.11), on the bounded aurora_buf
 * reader/writer: a short, long or inconsistent body is MALFORMED and never
 * read past.
 */
#include "start_state_msg.h"

#include <string.h>

size_t
aurora_start_state_put_encode(const aurora_start_state_put *p, uint8_t *out, size_t cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_buf_put_u64(&b, p->consistent_lsn);
	aurora_buf_put_u64(&b, p->total_len);
	aurora_buf_put_u64(&b, p->offset);
	aurora_buf_put_bytes(&b, p->data, p->len);
	return aurora_buf_finish_write(&b);
}

int
aurora_start_state_put_decode(const uint8_t *body, size_t len, aurora_start_state_put *p)
{
	aurora_buf	b;

	memset(p, 0, sizeof(*p));
	aurora_buf_init_reader(&b, body, len);
	p->consistent_lsn = aurora_buf_get_u64(&b);
	p->total_len = aurora_buf_get_u64(&b);
	p->offset = aurora_buf_get_u64(&b);
	if (!aurora_buf_ok(&b) || aurora_buf_remaining(&b) > UINT32_MAX)
		return AURORA_ERR_MALFORMED;
	p->len = (uint32_t) aurora_buf_remaining(&b);
	p->data = body + AURORA_START_STATE_PUT_FIXED;
	/* a piece must lie inside the bundle it announces */
	if (p->offset > p->total_len || p->len > p->total_len - p->offset)
		return AURORA_ERR_MALFORMED;
	return 0;
}

size_t
aurora_start_state_ack_encode(const aurora_start_state_ack *a, uint8_t *out, size_t cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_buf_put_u64(&b, a->consistent_lsn);
	aurora_buf_put_u64(&b, a->received);
	aurora_buf_put_u8(&b, a->complete);
	return aurora_buf_finish_write(&b);
}

int
aurora_start_state_ack_decode(const uint8_t *body, size_t len, aurora_start_state_ack *a)
{
	aurora_buf	b;

	memset(a, 0, sizeof(*a));
	aurora_buf_init_reader(&b, body, len);
	a->consistent_lsn = aurora_buf_get_u64(&b);
	a->received = aurora_buf_get_u64(&b);
	a->complete = aurora_buf_get_u8(&b);
	if (a->complete > 1)
		return AURORA_ERR_MALFORMED;
	return aurora_buf_finish_read(&b);
}

size_t
aurora_start_state_get_encode(const aurora_start_state_get *g, uint8_t *out, size_t cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_buf_put_u64(&b, g->max_lsn);
	aurora_buf_put_u64(&b, g->offset);
	aurora_buf_put_u32(&b, g->max_bytes);
	return aurora_buf_finish_write(&b);
}

int
aurora_start_state_get_decode(const uint8_t *body, size_t len, aurora_start_state_get *g)
{
	aurora_buf	b;

	memset(g, 0, sizeof(*g));
	aurora_buf_init_reader(&b, body, len);
	g->max_lsn = aurora_buf_get_u64(&b);
	g->offset = aurora_buf_get_u64(&b);
	g->max_bytes = aurora_buf_get_u32(&b);
	return aurora_buf_finish_read(&b);
}

size_t
aurora_start_state_resp_encode(const aurora_start_state_resp *r, uint8_t *out, size_t cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_buf_put_u8(&b, r->found);
	aurora_buf_put_u64(&b, r->consistent_lsn);
	aurora_buf_put_u64(&b, r->total_len);
	aurora_buf_put_u64(&b, r->offset);
	aurora_buf_put_bytes(&b, r->data, r->len);
	return aurora_buf_finish_write(&b);
}

int
aurora_start_state_resp_decode(const uint8_t *body, size_t len, aurora_start_state_resp *r)
{
	aurora_buf	b;

	memset(r, 0, sizeof(*r));
	aurora_buf_init_reader(&b, body, len);
	r->found = aurora_buf_get_u8(&b);
	r->consistent_lsn = aurora_buf_get_u64(&b);
	r->total_len = aurora_buf_get_u64(&b);
	r->offset = aurora_buf_get_u64(&b);
	if (!aurora_buf_ok(&b) || r->found > 1 || aurora_buf_remaining(&b) > UINT32_MAX)
		return AURORA_ERR_MALFORMED;
	r->len = (uint32_t) aurora_buf_remaining(&b);
	r->data = body + AURORA_START_STATE_RESP_FIXED;
	if (r->offset > r->total_len || r->len > r->total_len - r->offset ||
		(!r->found && (r->len != 0 || r->total_len != 0)))
		return AURORA_ERR_MALFORMED;
	return 0;
}
