/*
 * walmeta.c - codec of the record envelope (walmeta.h, PROTOCOL.md 11).
 *
 * Layout, little-endian: u8 version (1), u8 flags (0), u16 n_blocks, u32
 * n_events, n_blocks x (u32 spc, u32 db, u32 rel, u8 fork, u32 blkno, u8
 * flags), n_events x (u8 op, u32 spc, u32 db, u32 rel, u8 fork, u32
 * nblocks), then the WAL record.
 */
#include "walmeta.h"

#include "byteorder.h"

#include <stdio.h>
#include <string.h>

size_t
aurora_walmeta_size(int n_blocks, int n_events)
{
	return AURORA_WALMETA_HEADER_SIZE +
		(size_t) n_blocks * AURORA_WALMETA_BLOCK_SIZE +
		(size_t) n_events * AURORA_WALMETA_EVENT_SIZE;
}

void
aurora_walmeta_put(aurora_buf *b, const aurora_walmeta_block *blocks, int n_blocks,
				   const aurora_walmeta_event *events, int n_events)
{
	aurora_buf_put_u8(b, AURORA_WALMETA_VERSION);
	aurora_buf_put_u8(b, 0);
	aurora_buf_put_u16(b, (uint16_t) n_blocks);
	aurora_buf_put_u32(b, (uint32_t) n_events);
	for (int i = 0; i < n_blocks; i++)
	{
		const aurora_walmeta_block *k = &blocks[i];

		aurora_block_tag_put(b, &k->ref);
		aurora_buf_put_u8(b, k->flags);
	}
	for (int i = 0; i < n_events; i++)
	{
		const aurora_walmeta_event *e = &events[i];

		aurora_buf_put_u8(b, e->op);
		aurora_buf_put_u32(b, e->spc_oid);
		aurora_buf_put_u32(b, e->db_oid);
		aurora_buf_put_u32(b, e->rel_number);
		aurora_buf_put_u8(b, e->fork);
		aurora_buf_put_u32(b, e->nblocks);
	}
}

static void
get_block(aurora_buf *b, aurora_walmeta_block *k)
{
	aurora_block_tag_get(b, &k->ref);
	k->flags = aurora_buf_get_u8(b);
}

static void
get_event(aurora_buf *b, aurora_walmeta_event *e)
{
	e->op = aurora_buf_get_u8(b);
	e->spc_oid = aurora_buf_get_u32(b);
	e->db_oid = aurora_buf_get_u32(b);
	e->rel_number = aurora_buf_get_u32(b);
	e->fork = aurora_buf_get_u8(b);
	e->nblocks = aurora_buf_get_u32(b);
}

void
aurora_walmeta_block_at(const aurora_walmeta *m, int i, aurora_walmeta_block *out)
{
	aurora_buf	b;

	aurora_buf_init_reader(&b, m->blocks + (size_t) i * AURORA_WALMETA_BLOCK_SIZE,
						   AURORA_WALMETA_BLOCK_SIZE);
	get_block(&b, out);
}

void
aurora_walmeta_event_at(const aurora_walmeta *m, int i, aurora_walmeta_event *out)
{
	aurora_buf	b;

	aurora_buf_init_reader(&b, m->events + (size_t) i * AURORA_WALMETA_EVENT_SIZE,
						   AURORA_WALMETA_EVENT_SIZE);
	get_event(&b, out);
}

static int
fail(char *err, size_t errlen, const char *why)
{
	if (errlen > 0)
		snprintf(err, errlen, "bad record envelope: %s", why);
	return AURORA_ERR_MALFORMED;
}

int
aurora_walmeta_decode(const uint8_t *payload, size_t len, aurora_walmeta *m,
					  char *err, size_t errlen)
{
	aurora_buf	b;
	uint8_t		version;
	uint8_t		flags;
	size_t		rest;

	memset(m, 0, sizeof(*m));
	aurora_buf_init_reader(&b, payload, len);
	version = aurora_buf_get_u8(&b);
	flags = aurora_buf_get_u8(&b);
	m->n_blocks = aurora_buf_get_u16(&b);
	m->n_events = (int) aurora_buf_get_u32(&b);
	if (!aurora_buf_ok(&b))
		return fail(err, errlen, "shorter than its header");
	if (version != AURORA_WALMETA_VERSION)
		return fail(err, errlen, "unknown version");
	if (flags != 0)
		return fail(err, errlen, "reserved flags set");
	if (m->n_blocks > AURORA_WALMETA_MAX_BLOCKS)
		return fail(err, errlen, "too many blocks");
	if (m->n_events < 0 ||
		aurora_buf_remaining(&b) < aurora_walmeta_size(m->n_blocks, m->n_events) -
		AURORA_WALMETA_HEADER_SIZE)
		return fail(err, errlen, "shorter than its block and event lists");
	m->blocks = payload + aurora_buf_len(&b);
	for (int i = 0; i < m->n_blocks; i++)
	{
		aurora_walmeta_block k;

		get_block(&b, &k);
		if ((k.flags & ~AURORA_BLOCK_FLAGS_KNOWN) != 0)
			return fail(err, errlen, "unknown block flags");
	}
	m->events = payload + aurora_buf_len(&b);
	for (int i = 0; i < m->n_events; i++)
	{
		aurora_walmeta_event e;

		get_event(&b, &e);
		if (e.op < AURORA_REL_CREATE || e.op > AURORA_REL_DROP_DATABASE)
			return fail(err, errlen, "unknown relation event");
	}
	rest = aurora_buf_remaining(&b);
	if (rest < AURORA_WAL_RECORD_MIN)
		return fail(err, errlen, "no WAL record after it");
	m->wal = payload + aurora_buf_len(&b);
	if (aurora_get_le32(m->wal) != rest)
		return fail(err, errlen, "WAL record length does not match its xl_tot_len");
	m->wal_len = (uint32_t) rest;
	return 0;
}

const uint8_t *
aurora_walmeta_wal(const uint8_t *payload, size_t len, uint32_t *wal_len)
{
	aurora_walmeta m;

	*wal_len = 0;
	if (aurora_walmeta_decode(payload, len, &m, NULL, 0) != 0)
		return NULL;
	*wal_len = m.wal_len;
	return m.wal;
}

int
aurora_walmeta_pgs(const aurora_walmeta *m, const aurora_geometry *g,
				   uint32_t pgs[AURORA_WALMETA_MAX_BLOCKS])
{
	int			n = 0;

	if (m->n_events > 0)
		return AURORA_WALMETA_EVERY_PG;
	for (int i = 0; i < m->n_blocks; i++)
	{
		aurora_walmeta_block k;
		uint32_t	p;
		bool		seen = false;

		aurora_walmeta_block_at(m, i, &k);
		p = aurora_block_pg(g, &k.ref);
		for (int j = 0; j < n && !seen; j++)
			seen = pgs[j] == p;
		if (!seen)
			pgs[n++] = p;
	}
	if (n == 0)
		pgs[n++] = 0;
	return n;
}
