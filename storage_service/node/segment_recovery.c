/*
 * segment_recovery.c - creating a segment (aurora_segment_format) and
 * opening one (aurora_segment_open): the log's header, and the scan that
 * rebuilds the in-memory index from the log and cuts off a damaged tail
 * (segment_int.h).  The format of the log is at the top of segment.c.
 *
 * Recovery on open scans from the header and stops at the first record
 * that is short (torn write), has a bad magic, a bad CRC, invalid fields
 * or overlaps an earlier record.  If every byte from there to the end
 * of the file is zero, that is the preallocated space and the log is
 * clean.  Otherwise the file is cut (ftruncate) at the end
 * of the last good record, so records after a corrupt one are dropped
 * too: the log's only structure is "one record after another", so
 * nothing after damage can be trusted to start on a record boundary;
 * gossip with the PG's peers refills what was cut.  One fdatasync then
 * makes the cut and every surviving record durable, and SCL is computed
 * from the survivors only, so it never exceeds what is on disk.
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

/* Recovery reads the log through a buffer of this size. */
#define SCAN_BUFFER		(1024 * 1024)

/* *zero: every byte of [from, to) is 0.  Returns 0, or -1 (errno) on a read error. */
static int
tail_is_zero(int fd, uint64_t from, uint64_t to, bool *zero)
{
	uint8_t		buf[65536];

	*zero = true;
	while (from < to)
	{
		size_t		n = to - from < sizeof(buf) ? (size_t) (to - from) : sizeof(buf);
		ssize_t		r = pread(fd, buf, n, (off_t) from);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? 0 : -1;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != 0)
			{
				*zero = false;
				return 0;
			}
		from += (uint64_t) r;
	}
	return 0;
}

/* ---- creation ---- */

static void
encode_log_header(uint8_t *h)
{
	memset(h, 0, AURORA_SEG_LOG_HEADER_SIZE);
	memcpy(h, AURORA_SEG_LOG_MAGIC_TEXT, strlen(AURORA_SEG_LOG_MAGIC_TEXT));
	aurora_put_le32(h + 12, AURORA_SEG_LOG_VERSION);
}

int
aurora_segment_format(const char *dir, const aurora_segment_meta *meta,
					  char *err, size_t errlen)
{
	char		path[4200];
	uint8_t		h[AURORA_SEG_LOG_HEADER_SIZE];
	aurora_segment_meta fresh;
	int			fd;

	if (seg_meta_check_format(meta, err, errlen) != 0)
		return AURORA_SEG_ERR_INVALID;
	snprintf(path, sizeof(path), "%s/" LOG_FILE, dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		aurora_seterr(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return AURORA_SEG_ERR_IO;
	}
	encode_log_header(h);
	if (seg_write_all(fd, h, sizeof(h), 0) != 0 || fsync(fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		return AURORA_SEG_ERR_IO;
	}
	if (close(fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return AURORA_SEG_ERR_IO;
	}
	/*
	 * A new segment is open at the epoch it is created in: truncated there,
	 * with an empty history (PROTOCOL.md 5.3).  meta_write fsyncs dir, which
	 * also makes the log's directory entry durable.
	 */
	fresh = *meta;
	fresh.truncated_epoch = meta->volume_epoch;
	fresh.records_dropped = 0;
	fresh.cut_pending = false;
	fresh.cut_lsn = 0;
	if (seg_meta_write(dir, &fresh, NULL, 0, err, errlen) != 0)
		return AURORA_SEG_ERR_IO;
	return AURORA_SEG_OK;
}

/* ---- open / recovery ---- */

/* Reads the log sequentially through a large buffer. */
typedef struct scan_reader
{
	int			fd;
	uint8_t    *buf;
	uint64_t	boff;
	size_t		blen;
	uint64_t	size;
} scan_reader;

/* Bytes [off, off+n) (n <= SCAN_BUFFER, off+n <= size), or NULL with errno. */
static const uint8_t *
scan_get(scan_reader *r, uint64_t off, size_t n)
{
	size_t		want;

	if (off >= r->boff && off + n <= r->boff + r->blen)
		return r->buf + (off - r->boff);
	want = r->size - off < SCAN_BUFFER ? (size_t) (r->size - off) : SCAN_BUFFER;
	if (seg_read_all(r->fd, r->buf, want, off) != 0)
		return NULL;
	r->boff = off;
	r->blen = want;
	return r->buf;
}

/*
 * Scan the records after the header, index the good ones and return the
 * offset where the good prefix ends; *why says why the scan stopped early
 * ("" if it reached the end).  Returns -1 on a read error (err set).
 */
static int
recover_scan(aurora_segment *s, uint64_t size, uint64_t *good_end, char *why, size_t whylen,
			 char *err, size_t errlen, const char *path)
{
	scan_reader r = {.fd = s->fd, .size = size};
	uint64_t	off = AURORA_SEG_LOG_HEADER_SIZE;

	why[0] = '\0';
	r.buf = malloc(SCAN_BUFFER);
	if (r.buf == NULL)
	{
		aurora_seterr(err, errlen, "%s: out of memory", path);
		return -1;
	}
	while (off < size)
	{
		const uint8_t *h;
		uint8_t		fields[28];
		uint64_t	start,
					end,
					prev;
		uint32_t	len,
					crc;
		uint64_t	rem,
					poff;
		size_t		pos;
		seg_entry  *e;

		if (size - off < AURORA_SEG_RECORD_HEADER_SIZE)
		{
			snprintf(why, whylen, "torn record header (%" PRIu64 " of %d bytes)",
					 size - off, AURORA_SEG_RECORD_HEADER_SIZE);
			break;
		}
		h = scan_get(&r, off, AURORA_SEG_RECORD_HEADER_SIZE);
		if (h == NULL)
			goto ioerr;
		if (aurora_get_le32(h) != AURORA_SEG_RECORD_MAGIC)
		{
			snprintf(why, whylen, "bad record magic 0x%08" PRIx32, aurora_get_le32(h));
			break;
		}
		crc = aurora_get_le32(h + 4);
		start = aurora_get_le64(h + 8);
		end = aurora_get_le64(h + 16);
		prev = aurora_get_le64(h + 24);
		len = aurora_get_le32(h + 32);
		memcpy(fields, h + 8, sizeof(fields));
		if ((uint64_t) len > size - off - AURORA_SEG_RECORD_HEADER_SIZE)
		{
			snprintf(why, whylen, "torn record payload (start_lsn %" PRIu64 ": %" PRIu64
					 " of %" PRIu32 " bytes)", start,
					 size - off - AURORA_SEG_RECORD_HEADER_SIZE, len);
			break;
		}
		/* The CRC is streamed: a payload may be larger than the buffer. */
		{
			uint32_t	c = aurora_crc32c(0, fields, sizeof(fields));

			poff = off + AURORA_SEG_RECORD_HEADER_SIZE;
			rem = len;
			while (rem > 0)
			{
				size_t		chunk = rem < SCAN_BUFFER ? (size_t) rem : SCAN_BUFFER;
				const uint8_t *p = scan_get(&r, poff, chunk);

				if (p == NULL)
					goto ioerr;
				c = aurora_crc32c(c, p, chunk);
				poff += chunk;
				rem -= chunk;
			}
			if (c != crc)
			{
				snprintf(why, whylen, "record CRC mismatch (start_lsn field %" PRIu64 ")", start);
				break;
			}
		}
		if (start >= end || prev >= start)
		{
			snprintf(why, whylen, "invalid record fields (start %" PRIu64 ", end %" PRIu64
					 ", prev %" PRIu64 ")", start, end, prev);
			break;
		}
		if (start > s->meta.base_lsn)
		{
			pos = seg_lower_bound(s->recs, s->nrecs, start);
			if ((pos < s->nrecs && s->recs[pos].start < end) ||
				(pos > 0 && s->recs[pos - 1].end > start))
			{
				snprintf(why, whylen, "record [%" PRIu64 ",%" PRIu64
						 ") overlaps an earlier record", start, end);
				break;
			}
			if (seg_reserve_recs(s, 1) != 0)
			{
				aurora_seterr(err, errlen, "%s: out of memory", path);
				free(r.buf);
				return -1;
			}
			memmove(&s->recs[pos + 1], &s->recs[pos], (s->nrecs - pos) * sizeof(*s->recs));
			e = &s->recs[pos];
			e->start = start;
			e->end = end;
			e->prev = prev;
			e->off = off;
			e->len = len;
			e->crc = crc;
			s->nrecs++;
			if (end > s->highest_durable)
				s->highest_durable = end;
		}

		/*
		 * else: at or below the base (covered by it).  append never writes
		 * such records; if a later base move left some, they are kept on disk
		 * but not indexed.
		 */
		off += AURORA_SEG_RECORD_HEADER_SIZE + (uint64_t) len;
	}
	free(r.buf);
	*good_end = off;
	return 0;

ioerr:
	aurora_seterr(err, errlen, "cannot read %s: %s", path, seg_errno_text());
	free(r.buf);
	return -1;
}

static void
segment_free(aurora_segment *s)
{
	if (s->fd >= 0)
		close(s->fd);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->meta_mu);
	pthread_cond_destroy(&s->sync_done);
	pthread_cond_destroy(&s->extend_done);
	free(s->recs);
	free(s->batches);
	free(s->hist);
	free(s->dir);
	free(s);
}

int
aurora_segment_open(const char *dir, aurora_segment **out, char *err, size_t errlen)
{
	aurora_segment *s;
	char		path[4200];
	char		why[120];		/* fits recovery_note with its prefix */
	uint8_t		h[AURORA_SEG_LOG_HEADER_SIZE];
	uint8_t		want[AURORA_SEG_LOG_HEADER_SIZE];
	struct stat st;
	uint64_t	good_end;
	int			rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->dir = strdup(dir)) == NULL)
	{
		free(s);
		aurora_seterr(err, errlen, "out of memory");
		return AURORA_SEG_ERR_IO;
	}
	s->fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->meta_mu, NULL);
	pthread_cond_init(&s->sync_done, NULL);
	pthread_cond_init(&s->extend_done, NULL);

	rc = seg_meta_read(dir, &s->meta, &s->hist, &s->n_hist, err, errlen);
	if (rc != AURORA_SEG_OK)
		goto fail;
	s->scl = s->meta.base_lsn;
	s->highest_durable = s->meta.base_lsn;

	snprintf(path, sizeof(path), "%s/" LOG_FILE, dir);
	s->fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) != 0)
	{
		aurora_seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		rc = AURORA_SEG_ERR_IO;
		goto fail;
	}
	encode_log_header(want);
	if (st.st_size == 0)
	{
		/* A log without records: give it its header (no data can be lost). */
		if (seg_write_all(s->fd, want, sizeof(want), 0) != 0 || fdatasync(s->fd) != 0)
		{
			aurora_seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
			rc = AURORA_SEG_ERR_IO;
			goto fail;
		}
		st.st_size = sizeof(want);
	}
	if (st.st_size < AURORA_SEG_LOG_HEADER_SIZE)
	{
		aurora_seterr(err, errlen, "corrupt log %s: file of %lld bytes is shorter than the %d-byte header",
			   path, (long long) st.st_size, AURORA_SEG_LOG_HEADER_SIZE);
		rc = AURORA_SEG_ERR_CORRUPT;
		goto fail;
	}
	if (seg_read_all(s->fd, h, sizeof(h), 0) != 0)
	{
		aurora_seterr(err, errlen, "cannot read %s: %s", path, seg_errno_text());
		rc = AURORA_SEG_ERR_IO;
		goto fail;
	}
	if (memcmp(h, want, 12) != 0)
	{
		aurora_seterr(err, errlen, "corrupt log %s: bad file header (not an aurora segment log)", path);
		rc = AURORA_SEG_ERR_CORRUPT;
		goto fail;
	}
	if (aurora_get_le32(h + 12) != AURORA_SEG_LOG_VERSION)
	{
		aurora_seterr(err, errlen, "log %s has format version %" PRIu32 ", this node reads version %d",
			   path, aurora_get_le32(h + 12), AURORA_SEG_LOG_VERSION);
		rc = AURORA_SEG_ERR_CORRUPT;
		goto fail;
	}

	if (recover_scan(s, (uint64_t) st.st_size, &good_end, why, sizeof(why), err, errlen, path) != 0)
	{
		rc = AURORA_SEG_ERR_IO;
		goto fail;
	}
	s->alloc_end = (uint64_t) st.st_size;
	if (good_end < (uint64_t) st.st_size)
	{
		bool		zero_tail;

		if (tail_is_zero(s->fd, good_end, (uint64_t) st.st_size, &zero_tail) != 0)
		{
			aurora_seterr(err, errlen, "cannot read %s: %s", path, seg_errno_text());
			rc = AURORA_SEG_ERR_IO;
			goto fail;
		}
		if (zero_tail)
			goto clean_end;		/* preallocated space, not damage */
		s->alloc_end = good_end;
		s->recovered_truncated = (uint64_t) st.st_size - good_end;
		snprintf(s->recovery_note, sizeof(s->recovery_note),
				 "cut %" PRIu64 " bytes at offset %" PRIu64 ": %s",
				 s->recovered_truncated, good_end, why);
		aurora_log("segment %s: recovery %s", dir, s->recovery_note);
		if (ftruncate(s->fd, (off_t) good_end) != 0)
		{
			aurora_seterr(err, errlen, "cannot truncate %s to %" PRIu64 ": %s", path, good_end,
				   strerror(errno));
			rc = AURORA_SEG_ERR_IO;
			goto fail;
		}
	}

clean_end:

	/*
	 * One fdatasync makes both the cut and every surviving record durable:
	 * records found here may have been written but never synced before a
	 * crash, and must not count in SCL until they are on disk.
	 */
	if (fdatasync(s->fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot fdatasync %s: %s", path, strerror(errno));
		rc = AURORA_SEG_ERR_IO;
		goto fail;
	}
	s->write_off = good_end;
	s->durable_off = good_end;
	s->durable_records = s->nrecs;
	for (size_t i = 0; i < s->nrecs; i++)
		s->mismatches += seg_mismatch_at(s, i);
	seg_advance_chain(s);

	/*
	 * A truncation was committed but maybe not finished: cut again (it is
	 * idempotent, segment_truncate.c).  A segment without a page store is
	 * done then; one with a page store stays closed until the page service
	 * has cut the store too (aurora_segment_truncate_done).
	 */
	if (s->meta.cut_pending)
	{
		uint64_t	recs = 0,
					bytes = 0;

		aurora_log("segment %s: finishing a truncation: cutting the log at %" PRIu64,
				   dir, s->meta.cut_lsn);
		rc = seg_cut_log(s, s->meta.cut_lsn, &recs, &bytes, err, errlen);
		if (rc == AURORA_SEG_OK && s->meta.n_pgs == 0)
			rc = aurora_segment_truncate_done(s, err, errlen);
		if (rc != AURORA_SEG_OK)
			goto fail;
	}
	*out = s;
	return AURORA_SEG_OK;

fail:
	segment_free(s);
	return rc;
}

void
aurora_segment_close(aurora_segment *s)
{
	if (s != NULL)
		segment_free(s);
}
