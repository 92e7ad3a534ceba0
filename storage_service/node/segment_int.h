/*
 * segment_int.h - what the segment module's files share: the segment object,
 * its in-memory index entries and the helpers more than one file calls.
 * Private to node/segment.c (append, read), node/segment_sync.c
 * (preallocation, sync), node/segment_meta.c (the meta file) and
 * node/segment_recovery.c (create, open and recovery);
 * everyone else uses segment.h.
 *
 * Locks: s->mu guards everything in the segment but dir and fd; meta_mu
 * serializes rewrites of the meta file and is taken before mu, never with
 * it held.  Functions marked "s->mu held" expect the caller to hold it.
 */
#ifndef AURORA_NODE_SEGMENT_INT_H
#define AURORA_NODE_SEGMENT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segment.h"

#define LOG_FILE		"log"

/* Where one record is: enough to check duplicates and to read it back. */
typedef struct seg_entry
{
	uint64_t	start;
	uint64_t	end;
	uint64_t	prev;
	uint64_t	off;			/* file offset of the record header */
	uint32_t	len;
	uint32_t	crc;			/* the record's stored crc32c */
} seg_entry;

/* An appended batch not yet covered by a sync (kept to update the stats). */
typedef struct seg_batch
{
	uint64_t	end_off;
	uint64_t	nrecs;
	uint64_t	max_end;
} seg_batch;

struct aurora_segment
{
	pthread_mutex_t mu;			/* everything below except dir and fd */
	pthread_cond_t sync_done;	/* broadcast whenever a sync finishes */
	pthread_mutex_t meta_mu;	/* serializes meta rewrites (held across fsync) */
	char	   *dir;
	int			fd;
	aurora_segment_meta meta;

	seg_entry  *recs;			/* sorted by start, non-overlapping */
	size_t		nrecs;
	size_t		cap;
	size_t		chain_len;
	uint64_t	scl;
	/*
	 * Records whose backlink is not the start of the record before them in
	 * start order (base_lsn for the first).  Chain records never are, so
	 * this is exactly the number of holes; kept up to date on insertion so
	 * the stats of every acknowledgement cost O(1).
	 */
	uint64_t	mismatches;

	uint64_t	write_off;		/* end of the last appended record */
	uint64_t	durable_off;	/* write_off at the last completed fdatasync */
	uint64_t	alloc_end;		/* file size: zeros from write_off up to here */
	bool		extending;		/* zeros being written from extend_from */
	uint64_t	extend_from;
	pthread_cond_t extend_done;
	seg_batch  *batches;		/* pending batches [bhead, nbatches) */
	size_t		bhead;
	size_t		nbatches;
	size_t		bcap;
	uint64_t	durable_records;
	uint64_t	highest_durable;

	bool		syncing;		/* a thread is in fdatasync */
	bool		failed;			/* sticky I/O failure, see aurora_segment_sync */
	char		failed_msg[256];

	uint64_t	recovered_truncated;
	char		recovery_note[200];

	/*
	 * The truncation history (meta file; guarded by mu, changed only with
	 * meta_mu held too): n_hist entries, malloc'd to that size.
	 */
	aurora_trunc_entry *hist;
	size_t		n_hist;
	uint64_t	cut_dropped;	/* records the pending cut dropped (meta at truncate_done) */

	/* what gossip (node/gossip.c) last learned and did, for STATUS */
	uint64_t	peer_scl;
	uint64_t	records_from_peers;
};


static inline uint64_t
entry_end_off(const seg_entry *e)
{
	return e->off + AURORA_SEG_RECORD_HEADER_SIZE + e->len;
}

/* segment.c: index maintenance (s->mu held, or s not yet shared) */

/* First index whose start >= lsn. */
size_t		seg_lower_bound(const seg_entry *recs, size_t n, uint64_t lsn);
/* Room for extra more entries in s->recs; -1 when out of memory. */
int			seg_reserve_recs(aurora_segment *s, size_t extra);
/* Extend the chain over durable records whose backlink matches its tip. */
void		seg_advance_chain(aurora_segment *s);
/* Does recs[i]'s backlink fail to point at its predecessor in start order? */
bool		seg_mismatch_at(const aurora_segment *s, size_t i);

/* segment.c: file I/O */

/* pwrite all of buf at off (EINTR retried); -1 with errno. */
int			seg_write_all(int fd, const void *buf, size_t len, uint64_t off);
/* Read exactly len bytes at off; -1 with errno, or errno 0 on early EOF. */
int			seg_read_all(int fd, void *buf, size_t len, uint64_t off);
/* strerror(errno), or "unexpected end of file" after seg_read_all's EOF. */
const char *seg_errno_text(void);

/* segment_meta.c */

/* The checks a meta must pass before it is written (format, ids, members). */
int			seg_meta_check_format(const aurora_segment_meta *m, char *err, size_t errlen);
/* Rewrite dir/meta atomically and durably (tmp file, fsync, rename, fsync dir). */
int			seg_meta_write(const char *dir, const aurora_segment_meta *m,
						   const aurora_trunc_entry *hist, size_t n_hist, char *err,
						   size_t errlen);
/*
 * Read and check dir/meta: AURORA_SEG_OK, _IO or _CORRUPT with err.  *hist
 * is malloc'd (*n_hist entries; room for one at least).
 */
int			seg_meta_read(const char *dir, aurora_segment_meta *m, aurora_trunc_entry **hist,
						  size_t *n_hist, char *err, size_t errlen);

/* segment_truncate.c */

/*
 * Drop every record with start >= lsn from the log of s (s->mu held, every
 * appended record durable): the kept records are copied to log.tmp, which
 * is synced and renamed over the log, and the index is rebuilt on the new
 * offsets.  Adds to *records and *bytes what was dropped.
 */
int			seg_cut_log(aurora_segment *s, uint64_t lsn, uint64_t *records, uint64_t *bytes,
						char *err, size_t errlen);

#endif
