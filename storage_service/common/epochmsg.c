/*
 * epochmsg.c - codecs of FENCE and TRUNCATE and the truncation history
 * rules (epochmsg.h; PROTOCOL.md 5.10).
 */
#include "epochmsg.h"

#include <stdio.h>
#include <string.h>

#include "byteorder.h"

void
aurora_trunc_list_fill(aurora_trunc_list *l, const aurora_trunc_entry *e, int n, uint8_t *raw)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		aurora_put_le64(raw + (size_t) i * AURORA_TRUNC_ENTRY_SIZE, e[i].epoch);
		aurora_put_le64(raw + (size_t) i * AURORA_TRUNC_ENTRY_SIZE + 8, e[i].lsn);
	}
	l->n = (uint16_t) n;
	l->raw = raw;
}

aurora_trunc_entry
aurora_trunc_list_at(const aurora_trunc_list *l, int i)
{
	aurora_trunc_entry e;

	e.epoch = aurora_get_le64(l->raw + (size_t) i * AURORA_TRUNC_ENTRY_SIZE);
	e.lsn = aurora_get_le64(l->raw + (size_t) i * AURORA_TRUNC_ENTRY_SIZE + 8);
	return e;
}

void
aurora_trunc_list_copy(const aurora_trunc_list *l, aurora_trunc_entry *out)
{
	int			i;

	for (i = 0; i < l->n; i++)
		out[i] = aurora_trunc_list_at(l, i);
}

void
aurora_trunc_list_put(aurora_buf *b, const aurora_trunc_list *l)
{
	aurora_buf_put_u16(b, l->n);
	if (l->n > 0)
		aurora_buf_put_bytes(b, l->raw, (size_t) l->n * AURORA_TRUNC_ENTRY_SIZE);
}

void
aurora_trunc_list_get(aurora_buf *b, aurora_trunc_list *l)
{
	size_t		bytes;

	l->n = aurora_buf_get_u16(b);
	l->raw = NULL;
	bytes = (size_t) l->n * AURORA_TRUNC_ENTRY_SIZE;
	if (!aurora_buf_ok(b) || l->n > AURORA_TRUNC_HISTORY_MAX || aurora_buf_remaining(b) < bytes)
	{
		b->failed = true;
		l->n = 0;
		return;
	}
	l->raw = b->rdata + b->pos;
	b->pos += bytes;
}

bool
aurora_trunc_history_check(const aurora_trunc_entry *e, int n, char *why, size_t whylen)
{
	int			i;

	if (n < 0 || n > AURORA_TRUNC_HISTORY_MAX)
	{
		if (why != NULL)
			snprintf(why, whylen, "a truncation history has at most %d entries, not %d",
					 AURORA_TRUNC_HISTORY_MAX, n);
		return false;
	}
	for (i = 1; i < n; i++)
	{
		if (e[i].epoch <= e[i - 1].epoch || e[i].lsn < e[i - 1].lsn)
		{
			if (why != NULL)
				snprintf(why, whylen, "truncation history entry %d (%llu@%llu) does not follow "
						 "(%llu@%llu): epochs must ascend and LSNs must not decrease", i,
						 (unsigned long long) e[i].epoch, (unsigned long long) e[i].lsn,
						 (unsigned long long) e[i - 1].epoch, (unsigned long long) e[i - 1].lsn);
			return false;
		}
	}
	return true;
}

bool
aurora_trunc_cut_lsn(const aurora_trunc_entry *h, int n, uint64_t truncated_epoch, uint64_t *lsn)
{
	int			i;

	for (i = 0; i < n; i++)
		if (h[i].epoch > truncated_epoch)
		{
			*lsn = h[i].lsn;
			return true;
		}
	return false;
}

bool
aurora_trunc_history_is_prefix(const aurora_trunc_entry *a, int na,
							   const aurora_trunc_entry *b, int nb)
{
	int			i;

	if (na > nb)
		return false;
	for (i = 0; i < na; i++)
		if (a[i].epoch != b[i].epoch || a[i].lsn != b[i].lsn)
			return false;
	return true;
}

/* ---- FENCE_ACK ---- */

size_t
aurora_fence_ack_encode(const aurora_fence_ack *a, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, out_cap);
	aurora_buf_put_u64(&b, a->scl);
	aurora_buf_put_u64(&b, a->highest_lsn);
	aurora_buf_put_u64(&b, a->truncated_epoch);
	aurora_trunc_list_put(&b, &a->history);
	return aurora_buf_finish_write(&b);
}

int
aurora_fence_ack_decode(const uint8_t *body, size_t len, aurora_fence_ack *a)
{
	aurora_buf	b;

	aurora_buf_init_reader(&b, body, len);
	a->scl = aurora_buf_get_u64(&b);
	a->highest_lsn = aurora_buf_get_u64(&b);
	a->truncated_epoch = aurora_buf_get_u64(&b);
	aurora_trunc_list_get(&b, &a->history);
	return aurora_buf_finish_read(&b);
}

/* ---- TRUNCATE_REQ ---- */

size_t
aurora_truncate_req_encode(const aurora_trunc_list *h, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, out_cap);
	aurora_trunc_list_put(&b, h);
	return aurora_buf_finish_write(&b);
}

int
aurora_truncate_req_decode(const uint8_t *body, size_t len, aurora_trunc_list *h)
{
	aurora_buf	b;
	aurora_trunc_entry prev;
	int			i;

	aurora_buf_init_reader(&b, body, len);
	aurora_trunc_list_get(&b, h);
	if (aurora_buf_finish_read(&b) != 0 || h->n < 1)
		return AURORA_ERR_MALFORMED;
	prev = aurora_trunc_list_at(h, 0);
	for (i = 1; i < h->n; i++)
	{
		aurora_trunc_entry e = aurora_trunc_list_at(h, i);

		if (e.epoch <= prev.epoch || e.lsn < prev.lsn)
			return AURORA_ERR_MALFORMED;
		prev = e;
	}
	return 0;
}

/* ---- TRUNCATE_ACK ---- */

size_t
aurora_truncate_ack_encode(const aurora_truncate_ack *a, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, out_cap);
	aurora_buf_put_u64(&b, a->scl);
	aurora_buf_put_u64(&b, a->highest_lsn);
	aurora_buf_put_u64(&b, a->records_dropped);
	aurora_buf_put_u64(&b, a->bytes_dropped);
	return aurora_buf_finish_write(&b);
}

int
aurora_truncate_ack_decode(const uint8_t *body, size_t len, aurora_truncate_ack *a)
{
	aurora_buf	b;

	aurora_buf_init_reader(&b, body, len);
	a->scl = aurora_buf_get_u64(&b);
	a->highest_lsn = aurora_buf_get_u64(&b);
	a->records_dropped = aurora_buf_get_u64(&b);
	a->bytes_dropped = aurora_buf_get_u64(&b);
	return aurora_buf_finish_read(&b);
}
