/*
 * segment_sync.c - a segment's durability (segment.h, segment_int.h):
 * zero-filling log space ahead of the records (aurora_segment_preallocate)
 * and the fdatasync that makes appended batches durable, shared by every
 * thread that appended before it (group commit, called from node/server.c
 * before acknowledgements), which then moves durable_off and SCL.
 */
#define _DEFAULT_SOURCE

#include "segment_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byteorder.h"
#include "crc32c.h"
#include "log.h"
#include "util.h"

/*
 * Log space is zero-filled ahead of the records (aurora_segment_preallocate):
 * an fdatasync after appending inside the file's size writes only data,
 * while one that grows the file must also write its metadata, which on this
 * project's reference disk doubled the median sync time and tripled p99.
 * PostgreSQL zero-fills WAL segments for the same reason.  Recovery treats
 * an all-zero tail as free space, not as a torn record.
 */
#define LOG_PREALLOC_CHUNK	(1u << 20)

/*
 * A sync covered the log up to off: the batches it covers count as durable
 * and the chain (SCL) may move.  s->mu held.
 */
static void
mark_durable(aurora_segment *s, uint64_t off)
{
	if (off <= s->durable_off)
		return;
	s->durable_off = off;
	while (s->bhead < s->nbatches && s->batches[s->bhead].end_off <= off)
	{
		s->durable_records += s->batches[s->bhead].nrecs;
		if (s->batches[s->bhead].max_end > s->highest_durable)
			s->highest_durable = s->batches[s->bhead].max_end;
		s->bhead++;
	}
	seg_advance_chain(s);
}

/* ---- sync ---- */

int
aurora_segment_preallocate(aurora_segment *s, char *err, size_t errlen)
{
	static const uint8_t zeros[65536];
	uint64_t	from,
				to;
	int			rc = AURORA_SEG_OK;

	pthread_mutex_lock(&s->mu);
	if (s->failed || s->extending || s->alloc_end - s->write_off >= LOG_PREALLOC_CHUNK / 2)
	{
		pthread_mutex_unlock(&s->mu);
		return AURORA_SEG_OK;
	}
	from = s->alloc_end;
	to = from + LOG_PREALLOC_CHUNK;
	s->extending = true;
	s->extend_from = from;
	pthread_mutex_unlock(&s->mu);

	/* appends below from go on meanwhile; one that would reach it waits */
	for (uint64_t off = from; off < to && rc == AURORA_SEG_OK; off += sizeof(zeros))
	{
		size_t		n = to - off < sizeof(zeros) ? (size_t) (to - off) : sizeof(zeros);

		if (seg_write_all(s->fd, zeros, n, off) != 0)
			rc = AURORA_SEG_ERR_IO;
	}
	/* the new size must be durable, or the next sync of a record pays for it */
	if (rc == AURORA_SEG_OK && fdatasync(s->fd) != 0)
		rc = AURORA_SEG_ERR_IO;
	if (rc != AURORA_SEG_OK)
		aurora_seterr(err, errlen, "cannot preallocate %s/" LOG_FILE ": %s", s->dir, strerror(errno));

	pthread_mutex_lock(&s->mu);
	s->extending = false;
	if (rc == AURORA_SEG_OK)
		s->alloc_end = to;
	else if (ftruncate(s->fd, (off_t) s->alloc_end) != 0)
	{
		/* what lies past alloc_end is unknown now: recovery would cut it */
		aurora_log("segment %s: cannot truncate a failed preallocation: %s", s->dir,
				   strerror(errno));
	}
	pthread_cond_broadcast(&s->extend_done);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
aurora_segment_sync(aurora_segment *s, char *err, size_t errlen)
{
	uint64_t	target;

	pthread_mutex_lock(&s->mu);
	target = s->write_off;
	for (;;)
	{
		uint64_t	snap;
		int			rc,
					saved;

		/* Records made durable before a failure are still durable. */
		if (s->durable_off >= target)
			break;
		if (s->failed)
		{
			aurora_seterr(err, errlen, "segment %s failed earlier (%s); it must be reopened",
				   s->dir, s->failed_msg);
			pthread_mutex_unlock(&s->mu);
			return AURORA_SEG_ERR_IO;
		}
		if (s->syncing)
		{
			/* Its snapshot may already cover us; either way re-check after it. */
			pthread_cond_wait(&s->sync_done, &s->mu);
			continue;
		}
		/* Lead a sync covering everything appended so far, not just ours. */
		s->syncing = true;
		snap = s->write_off;
		pthread_mutex_unlock(&s->mu);
		rc = fdatasync(s->fd);
		saved = errno;
		pthread_mutex_lock(&s->mu);
		s->syncing = false;
		if (rc != 0)
		{
			s->failed = true;
			snprintf(s->failed_msg, sizeof(s->failed_msg), "fdatasync of the log failed: %s",
					 strerror(saved));
			aurora_log("segment %s: %s; the segment refuses writes until reopened",
					   s->dir, s->failed_msg);
		}
		else
			mark_durable(s, snap);
		pthread_cond_broadcast(&s->sync_done);
	}
	pthread_mutex_unlock(&s->mu);
	return AURORA_SEG_OK;
}

bool
aurora_segment_needs_sync(aurora_segment *s)
{
	bool		r;

	pthread_mutex_lock(&s->mu);
	r = !s->failed && s->write_off > s->durable_off;
	pthread_mutex_unlock(&s->mu);
	return r;
}
