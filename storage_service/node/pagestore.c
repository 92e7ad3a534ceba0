/*
 * pagestore.c - one segment's page index and images in LMDB (pagestore.h):
 * opening, indexing records, storing images, relation sizes.  Reading a
 * page's plan back is in pagestore_read.c; what both share is in
 * pagestore_int.h.
 *
 * ON-DISK FORMAT (version 1): an LMDB environment in <segment dir>/pages/
 * (files data.mdb, lock.mdb) with four named databases.  Keys are
 * big-endian so that LMDB's byte order is (block, LSN) order; values are
 * little-endian like the rest of the project.  A block key is
 *   spc u32 | db u32 | rel u32 | fork u8 | blkno u32      (17 bytes)
 * and a relation key is its first 13 bytes (spc, db, rel, fork).
 *
 *   "records"  block key | end_lsn u64  ->  start_lsn u64, flags u8
 *              one entry per (block of this PG, record changing it); the
 *              record is read back from the segment log by its start LSN;
 *              flags are the envelope's (WILL_INIT, IMPLICIT)
 *   "images"   block key | lsn u64      ->  8192-byte page as of lsn
 *   "sizes"    rel key | lsn u64        ->  exists u8, nblocks u32
 *              the fork's size from lsn on (entries only where it changes)
 *   "meta"     "version" -> u32 1
 *              "position" -> last_start u64, last_end u64, scl u64
 *              "seeded" -> u64, the highest LSN pages were seeded at
 *
 * The position is written in the same transaction as the entries of the
 * records it covers.  The environment is opened with MDB_NOMETASYNC: each
 * commit flushes its data pages but not the meta page, so a system crash
 * may lose the last commits but never leaves a damaged tree; lost index
 * entries are re-made from the log because the position goes back with
 * them.  Seeded images are not in the log, so seeding syncs the meta too.
 */
#define _DEFAULT_SOURCE

#include "pagestore_int.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byteorder.h"
#include "log.h"

/* ---- key encoding ---- */

void
pagestore_rel_key(uint8_t *k, uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork)
{
	aurora_put_be32(k, spc);
	aurora_put_be32(k + 4, db);
	aurora_put_be32(k + 8, rel);
	k[12] = fork;
}

void
pagestore_block_key(uint8_t *k, const aurora_block_ref *b, uint64_t lsn)
{
	pagestore_rel_key(k, b->spc_oid, b->db_oid, b->rel_number, b->fork);
	aurora_put_be32(k + REL_KEY_LEN, b->blkno);
	aurora_put_be64(k + BLOCK_KEY_LEN, lsn);
}

int
pagestore_lmdb_fail(int rc, const char *what, const aurora_pagestore *ps, char *err, size_t errlen)
{
	snprintf(err, errlen, "page store %s: %s: %s", ps->dir, what, mdb_strerror(rc));
	return AURORA_ERR_IO;
}

bool
pagestore_last_at_or_below(MDB_cursor *c, const uint8_t *prefix, size_t plen, uint64_t lsn,
				 MDB_val *key, MDB_val *val)
{
	uint8_t		k[REC_KEY_LEN];
	int			rc;

	memcpy(k, prefix, plen);
	if (lsn == UINT64_MAX)
	{
		/* first key after the whole prefix: bump the prefix as a number */
		memset(k + plen, 0xff, 8);
		key->mv_data = k;
		key->mv_size = plen + 8;
		rc = mdb_cursor_get(c, key, val, MDB_SET_RANGE);
		if (rc == 0 && key->mv_size == plen + 8 && memcmp(key->mv_data, k, plen + 8) == 0)
			return true;
	}
	else
	{
		aurora_put_be64(k + plen, lsn + 1);
		key->mv_data = k;
		key->mv_size = plen + 8;
		rc = mdb_cursor_get(c, key, val, MDB_SET_RANGE);
	}
	if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, key, val, MDB_LAST);
	else if (rc == 0)
		rc = mdb_cursor_get(c, key, val, MDB_PREV);
	if (rc != 0)
		return false;
	return key->mv_size == plen + 8 && memcmp(key->mv_data, prefix, plen) == 0;
}

/* ---- open / close ---- */

static int
open_env(aurora_pagestore *ps, char *err, size_t errlen)
{
	MDB_txn    *txn = NULL;
	MDB_val		k,
				v;
	int			rc;

	if ((rc = mdb_env_create(&ps->env)) != 0)
		return pagestore_lmdb_fail(rc, "cannot create environment", ps, err, errlen);
	mdb_env_set_maxdbs(ps->env, 4);
	mdb_env_set_mapsize(ps->env, PAGESTORE_MAP_SIZE);
	/* NOTLS: read transactions are not tied to threads (page threads share) */
	rc = mdb_env_open(ps->env, ps->dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
	if (rc != 0)
		goto fail;
	if ((rc = mdb_txn_begin(ps->env, NULL, 0, &txn)) != 0 ||
		(rc = mdb_dbi_open(txn, "records", MDB_CREATE, &ps->recs)) != 0 ||
		(rc = mdb_dbi_open(txn, "images", MDB_CREATE, &ps->images)) != 0 ||
		(rc = mdb_dbi_open(txn, "sizes", MDB_CREATE, &ps->sizes)) != 0 ||
		(rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ps->meta)) != 0)
		goto fail;
	k.mv_data = (void *) "version";
	k.mv_size = 7;
	rc = mdb_get(txn, ps->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
	{
		uint8_t		ver[4];

		aurora_put_le32(ver, PAGESTORE_VERSION);
		v.mv_data = ver;
		v.mv_size = 4;
		if ((rc = mdb_put(txn, ps->meta, &k, &v, 0)) != 0)
			goto fail;
	}
	else if (rc != 0)
		goto fail;
	else if (v.mv_size != 4 || aurora_get_le32(v.mv_data) != PAGESTORE_VERSION)
	{
		mdb_txn_abort(txn);
		snprintf(err, errlen, "page store %s has an unknown format version", ps->dir);
		return AURORA_ERR_CORRUPT;
	}
	k.mv_data = (void *) "position";
	k.mv_size = 8;
	rc = mdb_get(txn, ps->meta, &k, &v);
	if (rc == 0 && v.mv_size == 24)
	{
		ps->pos.last_start = aurora_get_le64(v.mv_data);
		ps->pos.last_end = aurora_get_le64((uint8_t *) v.mv_data + 8);
		ps->pos.scl = aurora_get_le64((uint8_t *) v.mv_data + 16);
	}
	else if (rc != MDB_NOTFOUND)
	{
		mdb_txn_abort(txn);
		snprintf(err, errlen, "page store %s: bad position entry", ps->dir);
		return AURORA_ERR_CORRUPT;
	}
	k.mv_data = (void *) "seeded";
	k.mv_size = 6;
	rc = mdb_get(txn, ps->meta, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		ps->seeded_lsn = aurora_get_le64(v.mv_data);
	if ((rc = mdb_txn_commit(txn)) != 0)
	{
		txn = NULL;
		goto fail;
	}
	return 0;

fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return pagestore_lmdb_fail(rc, "cannot open", ps, err, errlen);
}

static void
close_env(aurora_pagestore *ps)
{
	if (ps->env != NULL)
		mdb_env_close(ps->env);
	ps->env = NULL;
	memset(&ps->pos, 0, sizeof(ps->pos));
	ps->seeded_lsn = 0;
}

/* Move dir aside to dir.broken (an older one is removed first). */
static int
move_aside(const char *dir, char *err, size_t errlen)
{
	char		broken[1100];
	char		f[1200];

	snprintf(broken, sizeof(broken), "%s.broken", dir);
	snprintf(f, sizeof(f), "%s/data.mdb", broken);
	unlink(f);
	snprintf(f, sizeof(f), "%s/lock.mdb", broken);
	unlink(f);
	rmdir(broken);
	if (rename(dir, broken) != 0 && errno != ENOENT)
	{
		snprintf(err, errlen, "cannot move %s aside: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
aurora_pagestore_open(const char *dir, aurora_pagestore **out, bool *rebuilt,
					  char *err, size_t errlen)
{
	aurora_pagestore *ps = calloc(1, sizeof(*ps));
	int			rc;

	*out = NULL;
	*rebuilt = false;
	if (ps == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return AURORA_ERR_IO;
	}
	snprintf(ps->dir, sizeof(ps->dir), "%s", dir);
	pthread_mutex_init(&ps->mu, NULL);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
	{
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		pthread_mutex_destroy(&ps->mu);
		free(ps);
		return AURORA_ERR_IO;
	}
	rc = open_env(ps, err, errlen);
	if (rc != 0)
	{
		/* unreadable: the log can rebuild the index (seeded images are lost) */
		aurora_log("%s; moving it to %s.broken and rebuilding the page index from the log",
				   err, dir);
		close_env(ps);
		if (move_aside(dir, err, errlen) != 0 ||
			(mkdir(dir, 0700) != 0 && errno != EEXIST) ||
			(rc = open_env(ps, err, errlen)) != 0)
		{
			if (rc == 0)
				snprintf(err, errlen, "cannot recreate %s: %s", dir, strerror(errno));
			close_env(ps);
			pthread_mutex_destroy(&ps->mu);
			free(ps);
			return AURORA_ERR_IO;
		}
		*rebuilt = true;
	}
	*out = ps;
	return 0;
}

void
aurora_pagestore_close(aurora_pagestore *ps)
{
	if (ps == NULL)
		return;
	if (ps->env != NULL)
		mdb_env_sync(ps->env, 1);
	close_env(ps);
	pthread_mutex_destroy(&ps->mu);
	free(ps);
}

void
aurora_pagestore_get_pos(aurora_pagestore *ps, aurora_pagestore_pos *out)
{
	pthread_mutex_lock(&ps->mu);
	*out = ps->pos;
	pthread_mutex_unlock(&ps->mu);
}

uint64_t
aurora_pagestore_seeded_lsn(aurora_pagestore *ps)
{
	uint64_t	v;

	pthread_mutex_lock(&ps->mu);
	v = ps->seeded_lsn;
	pthread_mutex_unlock(&ps->mu);
	return v;
}

/* ---- sizes ---- */

bool
pagestore_size_at(MDB_txn *txn, MDB_dbi dbi, const uint8_t *rkey, uint64_t lsn, bool *exists,
		uint32_t *nblocks)
{
	MDB_cursor *c;
	MDB_val		k,
				v;
	bool		found = false;

	*exists = false;
	*nblocks = 0;
	if (mdb_cursor_open(txn, dbi, &c) != 0)
		return false;
	if (pagestore_last_at_or_below(c, rkey, REL_KEY_LEN, lsn, &k, &v) && v.mv_size == SIZE_VAL_LEN)
	{
		*exists = ((uint8_t *) v.mv_data)[0] != 0;
		*nblocks = aurora_get_le32((uint8_t *) v.mv_data + 1);
		found = true;
	}
	mdb_cursor_close(c);
	return found;
}

static int
size_put(MDB_txn *txn, MDB_dbi dbi, const uint8_t *rkey, uint64_t lsn, bool exists,
		 uint32_t nblocks)
{
	uint8_t		k[SIZE_KEY_LEN];
	uint8_t		val[SIZE_VAL_LEN];
	MDB_val		kv,
				vv;

	memcpy(k, rkey, REL_KEY_LEN);
	aurora_put_be64(k + REL_KEY_LEN, lsn);
	val[0] = exists ? 1 : 0;
	aurora_put_le32(val + 1, nblocks);
	kv.mv_data = k;
	kv.mv_size = sizeof(k);
	vv.mv_data = val;
	vv.mv_size = sizeof(val);
	return mdb_put(txn, dbi, &kv, &vv, 0);
}

/* Apply "exists, size >= min_blocks" at lsn (no entry if nothing changes). */
static int
size_extend(MDB_txn *txn, MDB_dbi dbi, const uint8_t *rkey, uint64_t lsn, uint32_t min_blocks)
{
	bool		exists;
	uint32_t	nblocks;

	pagestore_size_at(txn, dbi, rkey, lsn, &exists, &nblocks);
	if (exists && nblocks >= min_blocks)
		return 0;
	return size_put(txn, dbi, rkey, lsn, true, nblocks > min_blocks && exists ? nblocks : min_blocks);
}

/* Every (rel, fork) of spc/db (rel 0: all relations of the database) that exists at lsn. */
static int
drop_matching(MDB_txn *txn, MDB_dbi dbi, uint32_t spc, uint32_t db, uint32_t rel,
			  bool whole_db, uint64_t lsn)
{
	MDB_cursor *c;
	MDB_val		k,
				v;
	uint8_t		prefix[REL_KEY_LEN];
	size_t		plen = whole_db ? 8 : 12;
	uint8_t    (*found)[REL_KEY_LEN] = NULL;
	size_t		nfound = 0,
				cap = 0;
	int			rc;

	pagestore_rel_key(prefix, spc, db, rel, 0);
	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
		return rc;
	k.mv_data = prefix;
	k.mv_size = plen;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == SIZE_KEY_LEN && memcmp(k.mv_data, prefix, plen) == 0)
	{
		const uint8_t *kk = k.mv_data;

		if (nfound == 0 || memcmp(found[nfound - 1], kk, REL_KEY_LEN) != 0)
		{
			if (nfound == cap)
			{
				size_t		ncap = cap ? cap * 2 : 16;
				void	   *n = realloc(found, ncap * REL_KEY_LEN);

				if (n == NULL)
				{
					mdb_cursor_close(c);
					free(found);
					return ENOMEM;
				}
				found = n;
				cap = ncap;
			}
			memcpy(found[nfound++], kk, REL_KEY_LEN);
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	rc = 0;
	for (size_t i = 0; i < nfound && rc == 0; i++)
	{
		bool		exists;
		uint32_t	nblocks;

		if (pagestore_size_at(txn, dbi, found[i], lsn, &exists, &nblocks) && exists)
			rc = size_put(txn, dbi, found[i], lsn, false, 0);
	}
	free(found);
	return rc;
}

static int
apply_event(MDB_txn *txn, MDB_dbi dbi, const aurora_walmeta_event *e, uint64_t lsn)
{
	uint8_t		rk[REL_KEY_LEN];
	bool		exists;
	uint32_t	nblocks;

	switch (e->op)
	{
		case AURORA_REL_CREATE:
			pagestore_rel_key(rk, e->spc_oid, e->db_oid, e->rel_number, e->fork);
			pagestore_size_at(txn, dbi, rk, lsn, &exists, &nblocks);
			if (exists)
				return 0;
			return size_put(txn, dbi, rk, lsn, true, 0);
		case AURORA_REL_TRUNCATE:
			pagestore_rel_key(rk, e->spc_oid, e->db_oid, e->rel_number, e->fork);
			pagestore_size_at(txn, dbi, rk, lsn, &exists, &nblocks);
			if (exists && nblocks <= e->nblocks)
				return 0;
			return size_put(txn, dbi, rk, lsn, true, exists && nblocks < e->nblocks ? nblocks : e->nblocks);
		case AURORA_REL_DROP:
			return drop_matching(txn, dbi, e->spc_oid, e->db_oid, e->rel_number, false, lsn);
		case AURORA_REL_DROP_DATABASE:
			return drop_matching(txn, dbi, e->spc_oid, e->db_oid, 0, true, lsn);
	}
	return 0;
}

/* ---- indexing ---- */

int
aurora_pagestore_begin(aurora_pagestore *ps, aurora_pagestore_txn **out, char *err, size_t errlen)
{
	aurora_pagestore_txn *t = calloc(1, sizeof(*t));
	int			rc;

	*out = NULL;
	if (t == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return AURORA_ERR_IO;
	}
	t->ps = ps;
	if ((rc = mdb_txn_begin(ps->env, NULL, 0, &t->txn)) != 0)
	{
		free(t);
		return pagestore_lmdb_fail(rc, "cannot begin a write transaction", ps, err, errlen);
	}
	*out = t;
	return 0;
}

int
aurora_pagestore_index_record(aurora_pagestore_txn *t, const aurora_geometry *g,
							  uint32_t pg_id, uint64_t start, uint64_t end,
							  const aurora_walmeta *m, aurora_block_ref *touched,
							  int max_touched, int *n_touched, char *err, size_t errlen)
{
	aurora_pagestore *ps = t->ps;
	int			rc = 0;
	int			i;

	*n_touched = 0;
	/* relation events first: every PG gets them, whatever its blocks */
	for (i = 0; i < m->n_events && rc == 0; i++)
	{
		aurora_walmeta_event e;

		aurora_walmeta_event_at(m, i, &e);
		rc = apply_event(t->txn, ps->sizes, &e, end);
	}
	for (i = 0; i < m->n_blocks && rc == 0; i++)
	{
		aurora_walmeta_block b;
		uint8_t		k[REC_KEY_LEN];
		uint8_t		val[REC_VAL_LEN];
		MDB_val		kv,
					vv;

		aurora_walmeta_block_at(m, i, &b);
		if (aurora_block_pg(g, &b.ref) != pg_id)
			continue;			/* a block of another PG the record also touches */
		pagestore_block_key(k, &b.ref, end);
		kv.mv_data = k;
		kv.mv_size = sizeof(k);
		/* one record listing a block twice: it initializes it only if both do */
		if (mdb_get(t->txn, ps->recs, &kv, &vv) == 0 && vv.mv_size == REC_VAL_LEN)
			b.flags &= ((uint8_t *) vv.mv_data)[8] | ~AURORA_BLOCK_WILL_INIT;
		aurora_put_le64(val, start);
		val[8] = b.flags;
		vv.mv_data = val;
		vv.mv_size = sizeof(val);
		if ((rc = mdb_put(t->txn, ps->recs, &kv, &vv, 0)) != 0)
			break;
		if (!(b.flags & AURORA_BLOCK_IMPLICIT))
		{
			uint8_t		rk[REL_KEY_LEN];

			pagestore_rel_key(rk, b.ref.spc_oid, b.ref.db_oid, b.ref.rel_number, b.ref.fork);
			if ((rc = size_extend(t->txn, ps->sizes, rk, end, b.ref.blkno + 1)) != 0)
				break;
		}
		if (touched != NULL && *n_touched < max_touched)
			touched[(*n_touched)++] = b.ref;
	}
	if (rc != 0)
		return pagestore_lmdb_fail(rc, "cannot index a record", ps, err, errlen);
	return 0;
}

static int
put_pos(MDB_txn *txn, MDB_dbi dbi, const aurora_pagestore_pos *pos)
{
	uint8_t		val[24];
	MDB_val		k,
				v;

	aurora_put_le64(val, pos->last_start);
	aurora_put_le64(val + 8, pos->last_end);
	aurora_put_le64(val + 16, pos->scl);
	k.mv_data = (void *) "position";
	k.mv_size = 8;
	v.mv_data = val;
	v.mv_size = sizeof(val);
	return mdb_put(txn, dbi, &k, &v, 0);
}

int
aurora_pagestore_commit(aurora_pagestore_txn *t, const aurora_pagestore_pos *pos,
						char *err, size_t errlen)
{
	aurora_pagestore *ps = t->ps;
	int			rc = put_pos(t->txn, ps->meta, pos);

	if (rc != 0)
		mdb_txn_abort(t->txn);
	else
		rc = mdb_txn_commit(t->txn);
	free(t);
	if (rc != 0)
		return pagestore_lmdb_fail(rc, "cannot commit the index", ps, err, errlen);
	pthread_mutex_lock(&ps->mu);
	ps->pos = *pos;
	pthread_mutex_unlock(&ps->mu);
	return 0;
}

void
aurora_pagestore_abort(aurora_pagestore_txn *t)
{
	if (t == NULL)
		return;
	mdb_txn_abort(t->txn);
	free(t);
}

static int
discard_db(MDB_txn *txn, MDB_dbi dbi, uint64_t lsn)
{
	MDB_cursor *c;
	MDB_val		k,
				v;
	int			rc;

	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0)
	{
		if (k.mv_size >= 8 && aurora_get_be64((uint8_t *) k.mv_data + k.mv_size - 8) > lsn)
		{
			if ((rc = mdb_cursor_del(c, 0)) != 0)
				break;
			/* after a delete, MDB_NEXT yields the entry that took its place */
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
aurora_pagestore_discard_above(aurora_pagestore *ps, uint64_t lsn, const aurora_pagestore_pos *pos,
							   char *err, size_t errlen)
{
	aurora_pagestore_txn *t;
	int			rc;

	if ((rc = aurora_pagestore_begin(ps, &t, err, errlen)) != 0)
		return rc;
	if ((rc = discard_db(t->txn, ps->recs, lsn)) != 0 ||
		(rc = discard_db(t->txn, ps->images, lsn)) != 0 ||
		(rc = discard_db(t->txn, ps->sizes, lsn)) != 0)
	{
		aurora_pagestore_abort(t);
		return pagestore_lmdb_fail(rc, "cannot discard entries", ps, err, errlen);
	}
	return aurora_pagestore_commit(t, pos, err, errlen);
}

/* ---- images ---- */

static int
put_image_txn(MDB_txn *txn, MDB_dbi dbi, const aurora_block_ref *block, uint64_t lsn,
			  const uint8_t *page)
{
	uint8_t		k[REC_KEY_LEN];
	MDB_val		kv,
				vv;

	pagestore_block_key(k, block, lsn);
	kv.mv_data = k;
	kv.mv_size = sizeof(k);
	vv.mv_data = (void *) page;
	vv.mv_size = AURORA_PAGE_BYTES;
	return mdb_put(txn, dbi, &kv, &vv, 0);
}

int
aurora_pagestore_seed(aurora_pagestore *ps, uint64_t lsn, const aurora_seed_page *pages, int n,
					  char *err, size_t errlen)
{
	MDB_txn    *txn;
	int			rc;
	int			i;

	if ((rc = mdb_txn_begin(ps->env, NULL, 0, &txn)) != 0)
		return pagestore_lmdb_fail(rc, "cannot begin a write transaction", ps, err, errlen);
	for (i = 0; i < n && rc == 0; i++)
	{
		uint8_t		rk[REL_KEY_LEN];
		const aurora_block_ref *b = &pages[i].block;

		pagestore_rel_key(rk, b->spc_oid, b->db_oid, b->rel_number, b->fork);
		if (b->blkno == AURORA_SEED_FORK_EXISTS)
		{
			rc = size_extend(txn, ps->sizes, rk, lsn, 0);
			continue;
		}
		rc = put_image_txn(txn, ps->images, b, lsn, pages[i].page);
		if (rc == 0)
			rc = size_extend(txn, ps->sizes, rk, lsn, b->blkno + 1);
	}
	if (rc == 0 && lsn > aurora_pagestore_seeded_lsn(ps))
	{
		uint8_t		val[8];
		MDB_val		k,
					v;

		aurora_put_le64(val, lsn);
		k.mv_data = (void *) "seeded";
		k.mv_size = 6;
		v.mv_data = val;
		v.mv_size = 8;
		rc = mdb_put(txn, ps->meta, &k, &v, 0);
	}
	if (rc != 0)
	{
		mdb_txn_abort(txn);
		return pagestore_lmdb_fail(rc, "cannot store seeded pages", ps, err, errlen);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return pagestore_lmdb_fail(rc, "cannot commit seeded pages", ps, err, errlen);
	pthread_mutex_lock(&ps->mu);
	if (lsn > ps->seeded_lsn)
		ps->seeded_lsn = lsn;
	pthread_mutex_unlock(&ps->mu);
	/* not rebuildable from the log: durable (meta page included) before the ack */
	if ((rc = mdb_env_sync(ps->env, 1)) != 0)
		return pagestore_lmdb_fail(rc, "cannot sync seeded pages", ps, err, errlen);
	return 0;
}

static int
put_images_txn(MDB_txn *txn, MDB_dbi dbi, const aurora_page_image *images, int n)
{
	int			rc = 0;

	for (int i = 0; i < n && rc == 0; i++)
		rc = put_image_txn(txn, dbi, &images[i].block, images[i].lsn, images[i].page);
	return rc;
}

int
aurora_pagestore_put_images(aurora_pagestore *ps, const aurora_page_image *images, int n,
							char *err, size_t errlen)
{
	MDB_txn    *txn;
	int			rc = 0;

	if (n == 0)
		return 0;
	if ((rc = mdb_txn_begin(ps->env, NULL, 0, &txn)) != 0)
		return pagestore_lmdb_fail(rc, "cannot begin a write transaction", ps, err, errlen);
	if ((rc = put_images_txn(txn, ps->images, images, n)) != 0)
	{
		mdb_txn_abort(txn);
		return pagestore_lmdb_fail(rc, "cannot store an image", ps, err, errlen);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return pagestore_lmdb_fail(rc, "cannot commit images", ps, err, errlen);
	return 0;
}

int
aurora_pagestore_txn_put_images(aurora_pagestore_txn *t, const aurora_page_image *images, int n,
								char *err, size_t errlen)
{
	int			rc = put_images_txn(t->txn, t->ps->images, images, n);

	return rc == 0 ? 0 : pagestore_lmdb_fail(rc, "cannot store an image", t->ps, err, errlen);
}
