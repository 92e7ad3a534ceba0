/*
 * pagemsg.c - codecs of the page service's message bodies (pagemsg.h,
 * PROTOCOL.md 5.9).  Written with the bounded aurora_buf reader/writer, so a
 * body that is short, long or inconsistent is MALFORMED and never read past.
 */
#include "pagemsg.h"

#include <stdlib.h>
#include <string.h>

size_t
aurora_getpage_req_encode(const aurora_getpage_req *r, uint8_t *out, size_t cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_block_tag_put(&b, &r->block);
	aurora_buf_put_u64(&b, r->lsn);
	aurora_buf_put_u32(&b, r->wait_ms);
	return aurora_buf_finish_write(&b);
}

int
aurora_getpage_req_decode(const uint8_t *body, size_t len, aurora_getpage_req *r)
{
	aurora_buf	b;

	memset(r, 0, sizeof(*r));
	aurora_buf_init_reader(&b, body, len);
	aurora_block_tag_get(&b, &r->block);
	r->lsn = aurora_buf_get_u64(&b);
	r->wait_ms = aurora_buf_get_u32(&b);
	return aurora_buf_finish_read(&b);
}

size_t
aurora_page_resp_encode(const aurora_page_resp *p, uint8_t *out, size_t cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_buf_put_u64(&b, p->page_lsn);
	aurora_buf_put_u16(&b, p->checksum);
	aurora_buf_put_bytes(&b, p->page, AURORA_PAGE_BYTES);
	return aurora_buf_finish_write(&b);
}

int
aurora_page_resp_decode(const uint8_t *body, size_t len, aurora_page_resp *p)
{
	aurora_buf	b;

	aurora_buf_init_reader(&b, body, len);
	p->page_lsn = aurora_buf_get_u64(&b);
	p->checksum = aurora_buf_get_u16(&b);
	aurora_buf_get_bytes(&b, p->page, AURORA_PAGE_BYTES);
	return aurora_buf_finish_read(&b);
}

size_t
aurora_rel_size_req_encode(const aurora_rel_size_req *r, uint8_t *out, size_t cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_buf_put_u32(&b, r->spc_oid);
	aurora_buf_put_u32(&b, r->db_oid);
	aurora_buf_put_u32(&b, r->rel_number);
	aurora_buf_put_u8(&b, r->fork);
	aurora_buf_put_u64(&b, r->lsn);
	aurora_buf_put_u32(&b, r->wait_ms);
	return aurora_buf_finish_write(&b);
}

int
aurora_rel_size_req_decode(const uint8_t *body, size_t len, aurora_rel_size_req *r)
{
	aurora_buf	b;

	memset(r, 0, sizeof(*r));
	aurora_buf_init_reader(&b, body, len);
	r->spc_oid = aurora_buf_get_u32(&b);
	r->db_oid = aurora_buf_get_u32(&b);
	r->rel_number = aurora_buf_get_u32(&b);
	r->fork = aurora_buf_get_u8(&b);
	r->lsn = aurora_buf_get_u64(&b);
	r->wait_ms = aurora_buf_get_u32(&b);
	return aurora_buf_finish_read(&b);
}

size_t
aurora_rel_size_resp_encode(const aurora_rel_size_resp *r, uint8_t *out, size_t cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_buf_put_u8(&b, r->exists ? 1 : 0);
	aurora_buf_put_u32(&b, r->nblocks);
	return aurora_buf_finish_write(&b);
}

int
aurora_rel_size_resp_decode(const uint8_t *body, size_t len, aurora_rel_size_resp *r)
{
	aurora_buf	b;
	uint8_t		exists;

	memset(r, 0, sizeof(*r));
	aurora_buf_init_reader(&b, body, len);
	exists = aurora_buf_get_u8(&b);
	r->nblocks = aurora_buf_get_u32(&b);
	if (exists > 1)
		return AURORA_ERR_MALFORMED;
	r->exists = exists == 1;
	return aurora_buf_finish_read(&b);
}

size_t
aurora_seed_pages_size(int n)
{
	return 12 + (size_t) n * AURORA_SEED_PAGE_SIZE;
}

size_t
aurora_seed_pages_encode(uint64_t lsn, const aurora_seed_page *pages, int n,
						 uint8_t *out, size_t cap)
{
	aurora_buf	b;
	int			i;

	if (n <= 0)
		return 0;
	aurora_buf_init_writer(&b, out, cap);
	aurora_buf_put_u64(&b, lsn);
	aurora_buf_put_u32(&b, (uint32_t) n);
	for (i = 0; i < n; i++)
	{
		aurora_block_tag_put(&b, &pages[i].block);
		aurora_buf_put_bytes(&b, pages[i].page, AURORA_PAGE_BYTES);
	}
	return aurora_buf_finish_write(&b);
}

int
aurora_seed_pages_decode(const uint8_t *body, size_t len, uint64_t *lsn,
						 aurora_seed_page **pages, int *n)
{
	aurora_buf	b;
	uint32_t	count;
	aurora_seed_page *out;
	uint32_t	i;

	*pages = NULL;
	*n = 0;
	aurora_buf_init_reader(&b, body, len);
	*lsn = aurora_buf_get_u64(&b);
	count = aurora_buf_get_u32(&b);
	/* the count must describe the rest exactly, checked before allocating */
	if (!aurora_buf_ok(&b) || count == 0 ||
		aurora_buf_remaining(&b) / AURORA_SEED_PAGE_SIZE != count ||
		aurora_buf_remaining(&b) % AURORA_SEED_PAGE_SIZE != 0)
		return AURORA_ERR_MALFORMED;
	out = malloc((size_t) count * sizeof(*out));
	if (out == NULL)
		return AURORA_ERR_INTERNAL;
	for (i = 0; i < count; i++)
	{
		aurora_block_tag_get(&b, &out[i].block);
		out[i].page = body + aurora_buf_len(&b);
		/* the size check above guarantees the page is there: skip, no copy */
		b.pos += AURORA_PAGE_BYTES;
	}
	if (aurora_buf_finish_read(&b) != 0)
	{
		free(out);
		return AURORA_ERR_MALFORMED;
	}
	*pages = out;
	*n = (int) count;
	return 0;
}

size_t
aurora_seed_ack_encode(uint32_t stored, uint8_t *out, size_t cap)
{
	aurora_buf	b;

	aurora_buf_init_writer(&b, out, cap);
	aurora_buf_put_u32(&b, stored);
	return aurora_buf_finish_write(&b);
}

int
aurora_seed_ack_decode(const uint8_t *body, size_t len, uint32_t *stored)
{
	aurora_buf	b;

	aurora_buf_init_reader(&b, body, len);
	*stored = aurora_buf_get_u32(&b);
	return aurora_buf_finish_read(&b);
}
