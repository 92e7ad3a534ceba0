/*
 * pagestore.c - one segment's page index and images in LMDB (pagestore.h).
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

#include "pagestore.h"

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

#define PAGESTORE_VERSION	1
#define BLOCK_KEY_LEN		17
#define REL_KEY_LEN			13
#define REC_KEY_LEN			(BLOCK_KEY_LEN + 8)
#define SIZE_KEY_LEN		(REL_KEY_LEN + 8)
#define REC_VAL_LEN			9
#define SIZE_VAL_LEN		5
/* Address space only: the file grows with its contents. */
#define PAGESTORE_MAP_SIZE	((size_t) 64 << 30)
#define N_FORKS				4	/* main, fsm, vm, init */

struct aurora_pagestore
{
	MDB_env    *env;
	MDB_dbi		recs;
	MDB_dbi		images;
	MDB_dbi		sizes;
	MDB_dbi		meta;
	pthread_mutex_t mu;			/* pos */
	aurora_pagestore_pos pos;
	uint64_t	seeded_lsn;		/* mu */
	char		dir[1024];
};

struct aurora_pagestore_txn
{
	aurora_pagestore *ps;
	MDB_txn    *txn;
};

/* ---- key encoding ---- */

static void
rel_key(uint8_t *k, uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork)
{
	aurora_put_be32(k, spc);
	aurora_put_be32(k + 4, db);
	aurora_put_be32(k + 8, rel);
	k[12] = fork;
}

static void
block_key(uint8_t *k, const aurora_block_ref *b, uint64_t lsn)
{
	rel_key(k, b->spc_oid, b->db_oid, b->rel_number, b->fork);
	aurora_put_be32(k + REL_KEY_LEN, b->blkno);
	aurora_put_be64(k + BLOCK_KEY_LEN, lsn);
}

static int
lmdb_fail(int rc, const char *what, const aurora_pagestore *ps, char *err, size_t errlen)
{
	snprintf(err, errlen, "page store %s: %s: %s", ps->dir, what, mdb_strerror(rc));
	return AURORA_ERR_IO;
}

/*
 * Position cursor c on the last entry whose key starts with prefix[0..plen)
 * and whose trailing u64 LSN is <= lsn.  Returns true with key/val set.
 */
static bool
last_at_or_below(MDB_cursor *c, const uint8_t *prefix, size_t plen, uint64_t lsn,
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
		return lmdb_fail(rc, "cannot create environment", ps, err, errlen);
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
	return lmdb_fail(rc, "cannot open", ps, err, errlen);
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

/* Newest size entry of a fork at or below lsn, inside txn. */
static bool
size_at(MDB_txn *txn, MDB_dbi dbi, const uint8_t *rkey, uint64_t lsn, bool *exists,
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
	if (last_at_or_below(c, rkey, REL_KEY_LEN, lsn, &k, &v) && v.mv_size == SIZE_VAL_LEN)
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

	size_at(txn, dbi, rkey, lsn, &exists, &nblocks);
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

	rel_key(prefix, spc, db, rel, 0);
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

		if (size_at(txn, dbi, found[i], lsn, &exists, &nblocks) && exists)
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
			rel_key(rk, e->spc_oid, e->db_oid, e->rel_number, e->fork);
			size_at(txn, dbi, rk, lsn, &exists, &nblocks);
			if (exists)
				return 0;
			return size_put(txn, dbi, rk, lsn, true, 0);
		case AURORA_REL_TRUNCATE:
			rel_key(rk, e->spc_oid, e->db_oid, e->rel_number, e->fork);
			size_at(txn, dbi, rk, lsn, &exists, &nblocks);
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
		return lmdb_fail(rc, "cannot begin a write transaction", ps, err, errlen);
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
		block_key(k, &b.ref, end);
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

			rel_key(rk, b.ref.spc_oid, b.ref.db_oid, b.ref.rel_number, b.ref.fork);
			if ((rc = size_extend(t->txn, ps->sizes, rk, end, b.ref.blkno + 1)) != 0)
				break;
		}
		if (touched != NULL && *n_touched < max_touched)
			touched[(*n_touched)++] = b.ref;
	}
	if (rc != 0)
		return lmdb_fail(rc, "cannot index a record", ps, err, errlen);
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
		return lmdb_fail(rc, "cannot commit the index", ps, err, errlen);
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
		return lmdb_fail(rc, "cannot discard entries", ps, err, errlen);
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

	block_key(k, block, lsn);
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
		return lmdb_fail(rc, "cannot begin a write transaction", ps, err, errlen);
	for (i = 0; i < n && rc == 0; i++)
	{
		uint8_t		rk[REL_KEY_LEN];
		const aurora_block_ref *b = &pages[i].block;

		rel_key(rk, b->spc_oid, b->db_oid, b->rel_number, b->fork);
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
		return lmdb_fail(rc, "cannot store seeded pages", ps, err, errlen);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return lmdb_fail(rc, "cannot commit seeded pages", ps, err, errlen);
	pthread_mutex_lock(&ps->mu);
	if (lsn > ps->seeded_lsn)
		ps->seeded_lsn = lsn;
	pthread_mutex_unlock(&ps->mu);
	/* not rebuildable from the log: durable (meta page included) before the ack */
	if ((rc = mdb_env_sync(ps->env, 1)) != 0)
		return lmdb_fail(rc, "cannot sync seeded pages", ps, err, errlen);
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
		return lmdb_fail(rc, "cannot begin a write transaction", ps, err, errlen);
	if ((rc = put_images_txn(txn, ps->images, images, n)) != 0)
	{
		mdb_txn_abort(txn);
		return lmdb_fail(rc, "cannot store an image", ps, err, errlen);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return lmdb_fail(rc, "cannot commit images", ps, err, errlen);
	return 0;
}

int
aurora_pagestore_txn_put_images(aurora_pagestore_txn *t, const aurora_page_image *images, int n,
								char *err, size_t errlen)
{
	int			rc = put_images_txn(t->txn, t->ps->images, images, n);

	return rc == 0 ? 0 : lmdb_fail(rc, "cannot store an image", t->ps, err, errlen);
}

/* ---- reads ---- */

void
aurora_page_plan_free(aurora_page_plan *plan)
{
	free(plan->rec_start);
	free(plan->rec_end);
	plan->rec_start = plan->rec_end = NULL;
	plan->n_recs = 0;
}

/*
 * The oldest entry of a block in dbi (images or recs): 1 with its LSN and
 * value, 0 if the block has none, -1 if the store cannot be read.
 */
static int
block_oldest(MDB_txn *txn, MDB_dbi dbi, const uint8_t *bkey, uint64_t *lsn, MDB_val *val)
{
	MDB_cursor *c;
	MDB_val		k;
	uint8_t		start[REC_KEY_LEN];
	int			found = 0;
	int			rc;

	memcpy(start, bkey, BLOCK_KEY_LEN);
	memset(start + BLOCK_KEY_LEN, 0, 8);
	if (mdb_cursor_open(txn, dbi, &c) != 0)
		return -1;
	k.mv_data = start;
	k.mv_size = REC_KEY_LEN;
	rc = mdb_cursor_get(c, &k, val, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == REC_KEY_LEN && memcmp(k.mv_data, bkey, BLOCK_KEY_LEN) == 0)
	{
		*lsn = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);
		found = 1;
	}
	else if (rc != 0 && rc != MDB_NOTFOUND)
		found = -1;
	mdb_cursor_close(c);
	return found;
}

/*
 * For a read at an LSN below everything the store holds of a block: whether
 * the block had no content yet then (1), rather than content the store
 * cannot rebuild (0); -1 if the store cannot be read.  It had none when its
 * history begins with a record that needs no earlier page: one that
 * initializes it (WILL_INIT), or any record of a map fork, which PostgreSQL
 * extends with zero pages without WAL.  Blocks inside a relation's size that
 * no record has reached yet are ordinary: PostgreSQL extends a heap by many
 * blocks at once under contention for the extension lock
 * (RelationAddExtraBlocks) and logs each only when a tuple first lands on
 * it, with an initializing record.  A history that begins with an image
 * (seeded, or kept at a horizon) or with a record that changes an existing
 * page says the block existed before what is stored.
 */
static int
block_unwritten_before_history(MDB_txn *txn, aurora_pagestore *ps, const uint8_t *bkey,
							   uint8_t fork)
{
	uint64_t	image_lsn = 0,
				rec_end = 0;
	MDB_val		image_val,
				rec_val;
	int			has_image = block_oldest(txn, ps->images, bkey, &image_lsn, &image_val);
	int			has_rec = block_oldest(txn, ps->recs, bkey, &rec_end, &rec_val);

	if (has_image < 0 || has_rec < 0)
		return -1;
	if (!has_rec)
		return !has_image;
	if (has_image && image_lsn <= rec_end)
		return 0;
	if (fork == AURORA_FORK_FSM || fork == AURORA_FORK_VM)
		return 1;
	/* a damaged entry proves nothing: not "unwritten" */
	return rec_val.mv_size == REC_VAL_LEN &&
		(((uint8_t *) rec_val.mv_data)[8] & AURORA_BLOCK_WILL_INIT) != 0;
}

/* Append a record to plan (newest first while walking; reversed later). */
static int
plan_push(aurora_page_plan *p, int *cap, uint64_t start, uint64_t end)
{
	if (p->n_recs == *cap)
	{
		int			ncap = *cap ? *cap * 2 : 16;
		uint64_t   *s = realloc(p->rec_start, (size_t) ncap * sizeof(uint64_t));

		if (s == NULL)
			return -1;
		p->rec_start = s;
		s = realloc(p->rec_end, (size_t) ncap * sizeof(uint64_t));
		if (s == NULL)
			return -1;
		p->rec_end = s;
		*cap = ncap;
	}
	p->rec_start[p->n_recs] = start;
	p->rec_end[p->n_recs] = end;
	p->n_recs++;
	return 0;
}

/*
 * The fork's size at lsn rules the block out: it does not exist then, or the
 * block lies past its end.  *known: the size at lsn is recorded at all.
 */
static int
plan_check_size(MDB_txn *txn, aurora_pagestore *ps, const aurora_block_ref *block, uint64_t lsn,
				bool *known, char *err, size_t errlen)
{
	uint8_t		rk[REL_KEY_LEN];
	bool		exists;
	uint32_t	nblocks;

	rel_key(rk, block->spc_oid, block->db_oid, block->rel_number, block->fork);
	*known = size_at(txn, ps->sizes, rk, lsn, &exists, &nblocks);
	if (*known && !exists)
	{
		snprintf(err, errlen, "relation %u/%u/%u fork %u does not exist at LSN %llX/%llX",
				 block->spc_oid, block->db_oid, block->rel_number, block->fork,
				 (unsigned long long) (lsn >> 32), (unsigned long long) (lsn & 0xffffffffu));
		return AURORA_ERR_NO_RELATION;
	}
	if (*known && block->blkno >= nblocks)
	{
		snprintf(err, errlen, "block %u is beyond the %u blocks of relation %u/%u/%u fork %u at LSN %llX/%llX",
				 block->blkno, nblocks, block->spc_oid, block->db_oid, block->rel_number,
				 block->fork, (unsigned long long) (lsn >> 32),
				 (unsigned long long) (lsn & 0xffffffffu));
		return AURORA_ERR_NO_BLOCK;
	}
	return 0;
}

/* The newest image of the block at or below lsn into plan, if there is one. */
static int
plan_newest_image(MDB_txn *txn, aurora_pagestore *ps, const uint8_t *bkey, uint64_t lsn,
				  aurora_page_plan *plan, char *err, size_t errlen)
{
	MDB_cursor *c;
	MDB_val		k,
				v;
	int			rc;

	if ((rc = mdb_cursor_open(txn, ps->images, &c)) != 0)
		return lmdb_fail(rc, "cannot read", ps, err, errlen);
	if (last_at_or_below(c, bkey, BLOCK_KEY_LEN, lsn, &k, &v) && v.mv_size == AURORA_PAGE_BYTES)
	{
		plan->has_image = true;
		plan->image_lsn = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);
		memcpy(plan->image, v.mv_data, AURORA_PAGE_BYTES);
	}
	mdb_cursor_close(c);
	return 0;
}

/*
 * The block's records after plan's image up to lsn into plan, newest first,
 * down to a WILL_INIT one (*from_init then).
 */
static int
plan_records(MDB_txn *txn, aurora_pagestore *ps, const uint8_t *bkey, uint64_t lsn,
			 aurora_page_plan *plan, bool *from_init, char *err, size_t errlen)
{
	MDB_cursor *c;
	MDB_val		k,
				v;
	int			cap = 0;
	int			rc = 0;

	*from_init = false;
	if ((rc = mdb_cursor_open(txn, ps->recs, &c)) != 0)
		return lmdb_fail(rc, "cannot read", ps, err, errlen);
	if (last_at_or_below(c, bkey, BLOCK_KEY_LEN, lsn, &k, &v))
	{
		for (;;)
		{
			uint64_t	end = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);
			uint8_t		flags;

			if (plan->has_image && end <= plan->image_lsn)
				break;
			if (v.mv_size != REC_VAL_LEN)
			{
				snprintf(err, errlen, "page store %s: bad record entry", ps->dir);
				rc = AURORA_ERR_CORRUPT;
				break;
			}
			flags = ((uint8_t *) v.mv_data)[8];
			if (plan_push(plan, &cap, aurora_get_le64(v.mv_data), end) != 0)
			{
				snprintf(err, errlen, "out of memory");
				rc = AURORA_ERR_INTERNAL;
				break;
			}
			if (flags & AURORA_BLOCK_WILL_INIT)
			{
				*from_init = true;
				break;
			}
			if (mdb_cursor_get(c, &k, &v, MDB_PREV) != 0 || k.mv_size != REC_KEY_LEN ||
				memcmp(k.mv_data, bkey, BLOCK_KEY_LEN) != 0)
				break;
		}
	}
	mdb_cursor_close(c);
	return rc;
}

/*
 * Why a block with neither an image nor an initializing record cannot be
 * built (see "Pitfalls of pages from the log" in docs/architecture.md):
 * always an error code, with the reason in err.
 */
static int
plan_no_base(MDB_txn *txn, aurora_pagestore *ps, const uint8_t *bkey,
			 const aurora_block_ref *block, uint64_t lsn, bool known,
			 const aurora_page_plan *plan, char *err, size_t errlen)
{
	int			unwritten = plan->n_recs > 0 ? 0 :
		block_unwritten_before_history(txn, ps, bkey, block->fork);

	if (unwritten < 0)
	{
		snprintf(err, errlen, "page store %s: cannot read the history of block %u of "
				 "relation %u/%u/%u fork %u", ps->dir, block->blkno, block->spc_oid,
				 block->db_oid, block->rel_number, block->fork);
		return AURORA_ERR_INTERNAL;
	}
	if (unwritten == 0)
	{
		snprintf(err, errlen, "block %u of relation %u/%u/%u fork %u has no image or "
				 "initializing record at or below LSN %llX/%llX (below the horizon)",
				 block->blkno, block->spc_oid, block->db_oid, block->rel_number,
				 block->fork, (unsigned long long) (lsn >> 32),
				 (unsigned long long) (lsn & 0xffffffffu));
		return AURORA_ERR_BELOW_HORIZON;
	}
	if (!known)
	{
		snprintf(err, errlen, "relation %u/%u/%u fork %u is unknown at LSN %llX/%llX",
				 block->spc_oid, block->db_oid, block->rel_number, block->fork,
				 (unsigned long long) (lsn >> 32), (unsigned long long) (lsn & 0xffffffffu));
		return AURORA_ERR_NO_RELATION;
	}
	snprintf(err, errlen, "block %u of relation %u/%u/%u fork %u was not written at or "
			 "below LSN %llX/%llX", block->blkno, block->spc_oid, block->db_oid,
			 block->rel_number, block->fork, (unsigned long long) (lsn >> 32),
			 (unsigned long long) (lsn & 0xffffffffu));
	return AURORA_ERR_NO_BLOCK;
}

/* Oldest first, the order redo applies them. */
static void
plan_reverse_records(aurora_page_plan *plan)
{
	for (int i = 0, j = plan->n_recs - 1; i < j; i++, j--)
	{
		uint64_t	t = plan->rec_start[i];

		plan->rec_start[i] = plan->rec_start[j];
		plan->rec_start[j] = t;
		t = plan->rec_end[i];
		plan->rec_end[i] = plan->rec_end[j];
		plan->rec_end[j] = t;
	}
}

int
aurora_pagestore_plan(aurora_pagestore *ps, const aurora_block_ref *block, uint64_t lsn,
					  aurora_page_plan *plan, char *err, size_t errlen)
{
	MDB_txn    *txn;
	uint8_t		bkey[REC_KEY_LEN];
	bool		known,
				from_init = false;
	int			rc;

	memset(plan, 0, offsetof(aurora_page_plan, image));
	plan->n_recs = 0;
	plan->rec_start = plan->rec_end = NULL;
	if ((rc = mdb_txn_begin(ps->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_fail(rc, "cannot begin a read transaction", ps, err, errlen);
	block_key(bkey, block, 0);

	if ((rc = plan_check_size(txn, ps, block, lsn, &known, err, errlen)) != 0 ||
		(rc = plan_newest_image(txn, ps, bkey, lsn, plan, err, errlen)) != 0 ||
		(rc = plan_records(txn, ps, bkey, lsn, plan, &from_init, err, errlen)) != 0)
		goto done;
	if (from_init)
		plan->has_image = false;	/* the WILL_INIT record sets the whole page */

	/*
	 * A free-space-map or visibility-map page is created without WAL (the
	 * fork is extended with zero pages), and PostgreSQL's redo reads such a
	 * page as zeros when it is missing (RBM_ZERO_ON_ERROR).  Without
	 * full-page images no record ever initializes it, so its chain (every
	 * record of the block: the walk above stopped at neither an image nor a
	 * WILL_INIT record) starts from zeros here too.  Both forks are hints
	 * that only say less than the truth this way: a visibility-map bit is
	 * set only by a record that set it (and later records clear it again),
	 * so a page rebuilt from zeros never claims more than the compute's.
	 */
	if (!plan->has_image && !from_init && plan->n_recs > 0 &&
		(block->fork == AURORA_FORK_FSM || block->fork == AURORA_FORK_VM))
		from_init = true;

	if (!plan->has_image && !from_init)
		rc = plan_no_base(txn, ps, bkey, block, lsn, known, plan, err, errlen);
	else
		plan_reverse_records(plan);

done:
	mdb_txn_abort(txn);
	if (rc != 0)
		aurora_page_plan_free(plan);
	return rc;
}

int
aurora_pagestore_chain_length(aurora_pagestore *ps, const aurora_block_ref *block, int max,
							  uint64_t *newest_end, bool *from_init)
{
	MDB_txn    *txn;
	MDB_cursor *c;
	MDB_val		k,
				v;
	uint8_t		bkey[REC_KEY_LEN];
	uint64_t	image_lsn = 0;
	int			n = 0;

	*newest_end = 0;
	*from_init = false;
	if (mdb_txn_begin(ps->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	block_key(bkey, block, 0);
	if (mdb_cursor_open(txn, ps->images, &c) == 0)
	{
		if (last_at_or_below(c, bkey, BLOCK_KEY_LEN, UINT64_MAX, &k, &v))
			image_lsn = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);
		mdb_cursor_close(c);
	}
	if (mdb_cursor_open(txn, ps->recs, &c) == 0)
	{
		if (last_at_or_below(c, bkey, BLOCK_KEY_LEN, UINT64_MAX, &k, &v))
		{
			*newest_end = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);
			while (n <= max)
			{
				uint64_t	end = aurora_get_be64((uint8_t *) k.mv_data + BLOCK_KEY_LEN);

				if (end <= image_lsn)
					break;
				n++;
				if (v.mv_size == REC_VAL_LEN && (((uint8_t *) v.mv_data)[8] & AURORA_BLOCK_WILL_INIT))
				{
					*from_init = true;
					break;
				}
				if (mdb_cursor_get(c, &k, &v, MDB_PREV) != 0 || k.mv_size != REC_KEY_LEN ||
					memcmp(k.mv_data, bkey, BLOCK_KEY_LEN) != 0)
					break;
			}
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return n;
}

int
aurora_pagestore_rel_size(aurora_pagestore *ps, uint32_t spc, uint32_t db, uint32_t rel,
						  uint8_t fork, uint64_t lsn, bool *known, bool *exists,
						  uint32_t *nblocks)
{
	MDB_txn    *txn;
	uint8_t		rk[REL_KEY_LEN];

	*known = *exists = false;
	*nblocks = 0;
	if (mdb_txn_begin(ps->env, NULL, MDB_RDONLY, &txn) != 0)
		return AURORA_ERR_IO;
	rel_key(rk, spc, db, rel, fork);
	*known = size_at(txn, ps->sizes, rk, lsn, exists, nblocks);
	mdb_txn_abort(txn);
	return 0;
}

void
aurora_pagestore_get_stats(aurora_pagestore *ps, aurora_pagestore_stats *out)
{
	MDB_txn    *txn;
	MDB_stat	st;

	memset(out, 0, sizeof(*out));
	if (mdb_txn_begin(ps->env, NULL, MDB_RDONLY, &txn) != 0)
		return;
	if (mdb_stat(txn, ps->images, &st) == 0)
		out->images = st.ms_entries;
	if (mdb_stat(txn, ps->recs, &st) == 0)
		out->record_entries = st.ms_entries;
	if (mdb_stat(txn, ps->sizes, &st) == 0)
		out->size_entries = st.ms_entries;
	mdb_txn_abort(txn);
}
