/*
 * segment_truncate.c - a segment's side of volume epochs (segment.h):
 * fencing (aurora_segment_fence), truncating the ragged edge
 * (aurora_segment_truncate, aurora_segment_truncate_done) and cutting the
 * log (seg_cut_log, segment_int.h), also at recovery.  The request handler
 * and gossip drive it through node/truncation.c, which also cuts the page
 * store; PROTOCOL.md 5.10 and 9 describe the rules and the crash safety.
 *
 * Crash safety: the meta file is the commit point.  A truncation first
 * rewrites it (fsync, rename) with the new history, both epochs at E and
 * "cut_pending L".  Then the log is rewritten without the records at or
 * above L (log.tmp, fdatasync, rename over log, fsync of the directory)
 * and the page store is cut, and finally the meta is rewritten without
 * cut_pending.  A crash before the first rename leaves the segment as it
 * was; one after it finds cut_pending at open and cuts again (the cut is
 * idempotent: nothing at or above L written before the truncation can be
 * left, and nothing could be written after it while the cut was pending,
 * because a segment with a pending cut accepts no records).
 */
#define _DEFAULT_SOURCE

#include "segment_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byteorder.h"
#include "log.h"
#include "util.h"

#define LOG_TMP_FILE	"log.tmp"

static int
fsync_dir_fd(const char *dir)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int			rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
seg_cut_log(aurora_segment *s, uint64_t lsn, uint64_t *records, uint64_t *bytes,
			char *err, size_t errlen)
{
	char		tmp[4200],
				path[4200];
	uint8_t		h[AURORA_SEG_LOG_HEADER_SIZE];
	size_t		keep = seg_lower_bound(s->recs, s->nrecs, lsn);
	uint64_t	off = AURORA_SEG_LOG_HEADER_SIZE;
	uint64_t	dropped_bytes = 0;
	uint8_t    *buf = NULL;
	size_t		bufcap = 0;
	int			fd;

	if (keep == s->nrecs)
		return AURORA_SEG_OK;	/* nothing at or above lsn */
	for (size_t i = keep; i < s->nrecs; i++)
		dropped_bytes += AURORA_SEG_RECORD_HEADER_SIZE + s->recs[i].len;

	snprintf(tmp, sizeof(tmp), "%s/" LOG_TMP_FILE, s->dir);
	snprintf(path, sizeof(path), "%s/" LOG_FILE, s->dir);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		aurora_seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return AURORA_SEG_ERR_IO;
	}
	/* the old file's header, as it is (format version included) */
	if (seg_read_all(s->fd, h, sizeof(h), 0) != 0 || seg_write_all(fd, h, sizeof(h), 0) != 0)
		goto io;
	/* the kept records in start order, byte for byte (their CRCs stay valid) */
	for (size_t i = 0; i < keep; i++)
	{
		seg_entry  *e = &s->recs[i];
		size_t		n = AURORA_SEG_RECORD_HEADER_SIZE + e->len;

		if (n > bufcap)
		{
			uint8_t    *grown = realloc(buf, n);

			if (grown == NULL)
			{
				errno = ENOMEM;
				goto io;
			}
			buf = grown;
			bufcap = n;
		}
		if (seg_read_all(s->fd, buf, n, e->off) != 0 || seg_write_all(fd, buf, n, off) != 0)
			goto io;
		e->off = off;			/* only used again if everything below succeeds */
		off += n;
	}
	if (fdatasync(fd) != 0 || rename(tmp, path) != 0 || fsync_dir_fd(s->dir) != 0)
		goto io;
	free(buf);
	close(s->fd);
	s->fd = fd;

	/* the index without the dropped records; SCL and holes from what is left */
	s->nrecs = keep;
	s->chain_len = 0;
	s->scl = s->meta.base_lsn;
	s->mismatches = 0;
	s->highest_durable = s->meta.base_lsn;
	for (size_t i = 0; i < keep; i++)
	{
		s->mismatches += seg_mismatch_at(s, i);
		if (s->recs[i].end > s->highest_durable)
			s->highest_durable = s->recs[i].end;
	}
	s->write_off = s->durable_off = s->alloc_end = off;
	s->bhead = s->nbatches = 0;
	*records += s->durable_records - keep;
	*bytes += dropped_bytes;
	s->cut_dropped += s->durable_records - keep;
	s->durable_records = keep;
	seg_advance_chain(s);
	return AURORA_SEG_OK;

io:
	aurora_seterr(err, errlen, "cannot cut the log of %s at %" PRIu64 ": %s", s->dir, lsn,
				  seg_errno_text());
	free(buf);
	close(fd);
	unlink(tmp);
	/*
	 * The entries' offsets may point into the new file now: the segment is
	 * unusable until reopened, and the reopen cuts again (cut_pending).
	 */
	s->failed = true;
	snprintf(s->failed_msg, sizeof(s->failed_msg), "a truncation's log cut failed");
	return AURORA_SEG_ERR_IO;
}

bool
aurora_segment_is_open(aurora_segment *s)
{
	bool		open;

	pthread_mutex_lock(&s->mu);
	open = s->meta.truncated_epoch == s->meta.volume_epoch && !s->meta.cut_pending;
	pthread_mutex_unlock(&s->mu);
	return open;
}

int
aurora_segment_get_history(aurora_segment *s, aurora_trunc_entry *out, int max)
{
	int			n;

	pthread_mutex_lock(&s->mu);
	n = (int) s->n_hist;
	if (out != NULL)
		memcpy(out, s->hist, (size_t) (n < max ? n : max) * sizeof(*out));
	pthread_mutex_unlock(&s->mu);
	return n;
}

bool
aurora_segment_last_truncation(aurora_segment *s, aurora_trunc_entry *out)
{
	bool		any;

	pthread_mutex_lock(&s->mu);
	any = s->n_hist > 0;
	if (any)
		*out = s->hist[s->n_hist - 1];
	pthread_mutex_unlock(&s->mu);
	return any;
}

int
aurora_segment_fence(aurora_segment *s, uint64_t epoch, char *err, size_t errlen)
{
	aurora_segment_meta m;
	int			rc = AURORA_SEG_OK;

	pthread_mutex_lock(&s->meta_mu);
	pthread_mutex_lock(&s->mu);
	m = s->meta;
	pthread_mutex_unlock(&s->mu);
	if (epoch < m.volume_epoch)
	{
		aurora_seterr(err, errlen, "stale epoch: fence at volume epoch %" PRIu64
					  ", segment is at %" PRIu64, epoch, m.volume_epoch);
		rc = AURORA_SEG_ERR_STALE;
	}
	else if (epoch > m.volume_epoch)
	{
		m.volume_epoch = epoch;
		if (seg_meta_write(s->dir, &m, s->hist, s->n_hist, err, errlen) != 0)
			rc = AURORA_SEG_ERR_IO;
		else
		{
			pthread_mutex_lock(&s->mu);
			s->meta.volume_epoch = epoch;
			pthread_mutex_unlock(&s->mu);
		}
	}
	pthread_mutex_unlock(&s->meta_mu);
	return rc;
}

/* Wait until every appended record is durable; returns with s->mu held. */
static int
lock_all_durable(aurora_segment *s, char *err, size_t errlen)
{
	for (;;)
	{
		pthread_mutex_lock(&s->mu);
		while (s->syncing)
			pthread_cond_wait(&s->sync_done, &s->mu);
		while (s->extending)
			pthread_cond_wait(&s->extend_done, &s->mu);
		if (s->failed)
		{
			aurora_seterr(err, errlen, "segment %s refuses changes after an earlier failure (%s)",
						  s->dir, s->failed_msg);
			return AURORA_SEG_ERR_IO;
		}
		if (s->write_off == s->durable_off && !s->syncing && !s->extending)
			return AURORA_SEG_OK;
		pthread_mutex_unlock(&s->mu);
		if (aurora_segment_sync(s, err, errlen) != AURORA_SEG_OK)
		{
			pthread_mutex_lock(&s->mu);
			return AURORA_SEG_ERR_IO;
		}
	}
}

int
aurora_segment_truncate(aurora_segment *s, const aurora_trunc_entry *hist, int n,
						aurora_segment_truncation *res, char *err, size_t errlen)
{
	aurora_segment_meta m;
	aurora_trunc_entry last;
	aurora_trunc_entry *copy = NULL;
	uint64_t	cut;
	int			rc;

	memset(res, 0, sizeof(*res));
	if (n < 1 || !aurora_trunc_history_check(hist, n, err, errlen))
	{
		if (n < 1)
			aurora_seterr(err, errlen, "a truncation needs a history of at least one entry");
		return AURORA_SEG_ERR_INVALID;
	}
	last = hist[n - 1];
	pthread_mutex_lock(&s->meta_mu);
	pthread_mutex_lock(&s->mu);
	m = s->meta;
	pthread_mutex_unlock(&s->mu);
	if (last.epoch < m.volume_epoch)
	{
		aurora_seterr(err, errlen, "stale epoch: truncation at volume epoch %" PRIu64
					  ", segment is at %" PRIu64, last.epoch, m.volume_epoch);
		rc = AURORA_SEG_ERR_STALE;
		goto out;
	}
	for (size_t i = 0; i < s->n_hist; i++)
		if (s->hist[i].epoch == last.epoch)
		{
			if (s->hist[i].lsn == last.lsn && i == s->n_hist - 1)
			{
				res->repeat = true;
				res->cut_lsn = last.lsn;
				rc = AURORA_SEG_OK;
			}
			else
			{
				aurora_seterr(err, errlen, "epoch %" PRIu64 " was truncated at %" PRIu64
							  " on this segment, not at %" PRIu64, last.epoch,
							  s->hist[i].lsn, last.lsn);
				rc = AURORA_SEG_ERR_CONFLICT;
			}
			goto out;
		}
	/* the earliest cut this segment missed; the last entry's epoch is above ours */
	if (!aurora_trunc_cut_lsn(hist, n, m.truncated_epoch, &cut))
		cut = last.lsn;
	if (m.cut_pending && m.cut_lsn < cut)
		cut = m.cut_lsn;		/* an unfinished earlier cut reached lower */

	if ((copy = malloc((size_t) n * sizeof(*copy))) == NULL)
	{
		aurora_seterr(err, errlen, "out of memory for a truncation history");
		rc = AURORA_SEG_ERR_IO;
		goto out;
	}
	memcpy(copy, hist, (size_t) n * sizeof(*hist));

	/* the commit point */
	m.volume_epoch = last.epoch;
	m.truncated_epoch = last.epoch;
	m.cut_pending = true;
	m.cut_lsn = cut;
	if (seg_meta_write(s->dir, &m, hist, (size_t) n, err, errlen) != 0)
	{
		rc = AURORA_SEG_ERR_IO;
		goto out;
	}
	pthread_mutex_lock(&s->mu);
	s->meta = m;
	free(s->hist);
	s->hist = copy;
	s->n_hist = (size_t) n;
	copy = NULL;
	pthread_mutex_unlock(&s->mu);

	/* no record can arrive any more (pending cut): make the last ones durable and cut */
	rc = lock_all_durable(s, err, errlen);
	if (rc == AURORA_SEG_OK)
		rc = seg_cut_log(s, cut, &res->records_dropped, &res->bytes_dropped, err, errlen);
	pthread_mutex_unlock(&s->mu);
	res->cut_lsn = cut;
out:
	pthread_mutex_unlock(&s->meta_mu);
	free(copy);
	return rc;
}

int
aurora_segment_truncate_done(aurora_segment *s, char *err, size_t errlen)
{
	aurora_segment_meta m;
	int			rc = AURORA_SEG_OK;

	pthread_mutex_lock(&s->meta_mu);
	pthread_mutex_lock(&s->mu);
	m = s->meta;
	pthread_mutex_unlock(&s->mu);
	if (m.cut_pending)
	{
		m.cut_pending = false;
		m.cut_lsn = 0;
		m.records_dropped += s->cut_dropped;
		if (seg_meta_write(s->dir, &m, s->hist, s->n_hist, err, errlen) != 0)
			rc = AURORA_SEG_ERR_IO;
		else
		{
			pthread_mutex_lock(&s->mu);
			s->meta = m;
			s->cut_dropped = 0;
			pthread_mutex_unlock(&s->mu);
		}
	}
	pthread_mutex_unlock(&s->meta_mu);
	return rc;
}
