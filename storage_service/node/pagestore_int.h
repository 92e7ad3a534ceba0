/*
 * pagestore_int.h - what the page store's two files share: the store
 * object, the key layout (described at the top of pagestore.c) and the
 * LMDB helpers both use.  Private to node/pagestore.c (open, indexing,
 * images, sizes) and node/pagestore_read.c (planning a page, chain lengths,
 * sizes and stats as requests read them); everyone else uses pagestore.h.
 */
#ifndef AURORA_NODE_PAGESTORE_INT_H
#define AURORA_NODE_PAGESTORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pagestore.h"

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

/* The 13-byte relation key (spc, db, rel, fork), big-endian. */
void		pagestore_rel_key(uint8_t *k, uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork);
/* The 17-byte block key followed by lsn (REC_KEY_LEN bytes in all). */
void		pagestore_block_key(uint8_t *k, const aurora_block_ref *b, uint64_t lsn);
/* err = "page store DIR: what: LMDB's reason"; returns AURORA_ERR_IO. */
int			pagestore_lmdb_fail(int rc, const char *what, const aurora_pagestore *ps,
								char *err, size_t errlen);
/*
 * Position cursor c on the last entry whose key starts with prefix[0..plen)
 * and whose trailing u64 LSN is <= lsn.  Returns true with key/val set.
 */
bool		pagestore_last_at_or_below(MDB_cursor *c, const uint8_t *prefix, size_t plen,
									   uint64_t lsn, MDB_val *key, MDB_val *val);
/* Newest size entry of a fork at or below lsn, inside txn. */
bool		pagestore_size_at(MDB_txn *txn, MDB_dbi dbi, const uint8_t *rkey, uint64_t lsn,
							  bool *exists, uint32_t *nblocks);

#endif
