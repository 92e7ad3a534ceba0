/*
 * segment.c - one segment's durable log and its in-memory index (segment.h):
 * append and read.  Durability (preallocation, the shared fdatasync) is in
 * segment_sync.c, the meta file in segment_meta.c, creating and opening a
 * segment (recovery of the log) in segment_recovery.c; what they share is
 * in segment_int.h.
 *
 * The foreground write path of a storage node (docs/architecture.md, "A
 * write's path", "The storage node") ends here:
 * a batch is validated, appended with one write, made durable by a shared
 * fdatasync, and the SCL that the node acknowledges is computed from what is
 * durable.  Everything needed to serve that path is kept in memory (a sorted
 * array of record locations); payloads stay on disk and are read back with
 * pread and re-checked against their CRC.
 *
 * ON-DISK FORMAT (version 1).  All integers little-endian, encoded field by
 * field (never a C struct).
 *
 *   <segment dir>/log
 *     File header, 16 bytes:
 *       0  12  "AURORALOG" padded with NUL bytes to 12 bytes
 *      12   4  u32 format version = 1
 *     Then records back to back, in the order they were appended (which is
 *     not necessarily LSN order: records may arrive out of order):
 *       0   4  u32 magic 0x474F4C41 (the bytes "ALOG")
 *       4   4  u32 crc32c of bytes 8..36+len (start, end, prev, len, payload)
 *       8   8  u64 start_lsn
 *      16   8  u64 end_lsn      (start_lsn < end_lsn)
 *      24   8  u64 prev_lsn     (backlink: start of the PG's previous record;
 *                                prev_lsn < start_lsn)
 *      32   4  u32 len
 *      36 len  payload
 *     A file whose header is missing or wrong is never "repaired": opening
 *     fails, because resetting it would silently discard acknowledged data.
 *     An empty file (size 0) is a log without records and gets its header.
 *
 *     After the records the file may hold zeros: space written ahead of
 *     time (aurora_segment_preallocate) so that appends do not grow it.
 *
 *     Recovery on open (segment_recovery.c) cuts the log after its last
 *     good record; the meta file's format is in segment_meta.c.
 *
 * DURABILITY.  Records are appended at increasing file offsets, so "durable"
 * is simply "ends at or before durable_off", the write offset captured by the
 * last completed fdatasync.  Durable bytes are never rewritten while the
 * segment is open, which is what lets reads pread them without the mutex.
 *
 * SCL.  The index is sorted by start_lsn.  The chain is recs[0..chain_len):
 * recs[0].prev_lsn == base_lsn and each following record's prev_lsn is its
 * predecessor's start_lsn, all durable.  Because append rejects records that
 * contradict their neighbours' backlinks, the chain's successor can only be
 * the next record in start order, so SCL advances incrementally by looking
 * at recs[chain_len] alone.
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

/* the most aurora_segment_read reads with one pread (a longer record alone) */
#define READ_SPAN_MAX	(1024 * 1024)
/* ---- small helpers ---- */

/* Bytes 8..36 of a record header: the part the CRC covers before the payload. */
static void
encode_fields(uint8_t *p, uint64_t start, uint64_t end, uint64_t prev, uint32_t len)
{
	aurora_put_le64(p, start);
	aurora_put_le64(p + 8, end);
	aurora_put_le64(p + 16, prev);
	aurora_put_le32(p + 24, len);
}

static uint32_t
record_crc(const aurora_log_record *r)
{
	uint8_t		f[28];
	uint32_t	crc;

	encode_fields(f, r->start_lsn, r->end_lsn, r->prev_lsn, r->len);
	crc = aurora_crc32c(0, f, sizeof(f));
	if (r->len > 0)
		crc = aurora_crc32c(crc, r->payload, r->len);
	return crc;
}

/* First index whose start >= lsn. */
size_t
seg_lower_bound(const seg_entry *recs, size_t n, uint64_t lsn)
{
	size_t		lo = 0,
				hi = n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (recs[mid].start < lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
seg_write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0)
	{
		ssize_t		w = pwrite(fd, p, len, (off_t) off);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t) w;
		off += (uint64_t) w;
	}
	return 0;
}

/* Read exactly len bytes at off; -1 with errno, or errno 0 on early EOF. */
int
seg_read_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t    *p = buf;

	while (len > 0)
	{
		ssize_t		r = pread(fd, p, len, (off_t) off);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
		{
			errno = 0;
			return -1;
		}
		p += r;
		len -= (size_t) r;
		off += (uint64_t) r;
	}
	return 0;
}

const char *
seg_errno_text(void)
{
	return errno == 0 ? "unexpected end of file" : strerror(errno);
}

void
aurora_segment_dir_name(uint64_t volume_id, uint32_t pg_id, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64 "-%" PRIu32, volume_id, pg_id);
}

/* ---- index maintenance (all under s->mu) ---- */

int
seg_reserve_recs(aurora_segment *s, size_t extra)
{
	if (s->nrecs + extra > s->cap)
	{
		size_t		ncap = s->cap ? s->cap : 64;
		seg_entry  *n;

		while (ncap < s->nrecs + extra)
			ncap *= 2;
		n = realloc(s->recs, ncap * sizeof(*n));
		if (n == NULL)
			return -1;
		s->recs = n;
		s->cap = ncap;
	}
	return 0;
}

static int
reserve_batch(aurora_segment *s)
{
	if (s->bhead > 0 && s->bhead == s->nbatches)
		s->bhead = s->nbatches = 0;
	if (s->nbatches == s->bcap)
	{
		size_t		ncap;
		seg_batch  *n;

		/* Reuse the consumed front before growing. */
		if (s->bhead > 0)
		{
			memmove(s->batches, s->batches + s->bhead,
					(s->nbatches - s->bhead) * sizeof(*s->batches));
			s->nbatches -= s->bhead;
			s->bhead = 0;
			return 0;
		}
		ncap = s->bcap ? s->bcap * 2 : 16;
		n = realloc(s->batches, ncap * sizeof(*n));
		if (n == NULL)
			return -1;
		s->batches = n;
		s->bcap = ncap;
	}
	return 0;
}

/* Extend the chain over durable records whose backlink matches its tip. */
void
seg_advance_chain(aurora_segment *s)
{
	while (s->chain_len < s->nrecs)
	{
		const seg_entry *e = &s->recs[s->chain_len];
		uint64_t	tip = s->chain_len == 0 ? s->meta.base_lsn : s->recs[s->chain_len - 1].start;

		if (e->prev != tip || entry_end_off(e) > s->durable_off)
			break;
		s->chain_len++;
		s->scl = e->end;
	}
}

/* Does recs[i]'s backlink fail to point at its predecessor in start order? */
bool
seg_mismatch_at(const aurora_segment *s, size_t i)
{
	return s->recs[i].prev != (i == 0 ? s->meta.base_lsn : s->recs[i - 1].start);
}

/*
 * Walk the records after the chain: a hole is wherever a record's backlink
 * does not point at the record before it in start order.  Copies the first
 * max holes; returns the total.
 */
static int
collect_holes(aurora_segment *s, aurora_hole *out, int max)
{
	int			count = 0;
	uint64_t	pstart = s->meta.base_lsn,
				pend = s->meta.base_lsn;

	if (s->chain_len > 0)
	{
		pstart = s->recs[s->chain_len - 1].start;
		pend = s->recs[s->chain_len - 1].end;
	}
	for (size_t i = s->chain_len; i < s->nrecs && count < max; i++)
	{
		const seg_entry *e = &s->recs[i];

		if (e->prev != pstart)
		{
			out[count].from_lsn = pend;
			out[count].to_lsn = e->start;
			count++;
		}
		pstart = e->start;
		pend = e->end;
	}
	return s->mismatches > INT32_MAX ? INT32_MAX : (int) s->mismatches;
}

/* ---- append ---- */

typedef struct batch_item
{
	uint64_t	start;
	int			idx;			/* index in the caller's array */
} batch_item;

static int
cmp_item(const void *a, const void *b)
{
	const batch_item *x = a,
			   *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * The backlink rule for two neighbours in start order, left then right:
 * right's predecessor in the PG starts at right_prev, so no record of the
 * PG may start strictly between right_prev and right's start.  left must
 * therefore start at or before right_prev, and if left is not right's
 * predecessor itself, the predecessor cannot overlap left.
 */
static bool
link_ok(uint64_t left_start, uint64_t left_end, uint64_t right_prev)
{
	if (right_prev < left_start)
		return false;
	return right_prev == left_start || right_prev >= left_end;
}

enum
{
	ITEM_NEW, ITEM_DUP, ITEM_COVERED
};

/*
 * One call's batch on its way through the steps of aurora_segment_append.
 * items, kind and pos are in start order (item k is recs[items[k].idx]);
 * crcs is in the caller's order.
 */
typedef struct append_batch
{
	const aurora_log_record *recs;
	int			n;
	batch_item *items;
	uint32_t   *crcs;
	uint8_t    *kind;			/* ITEM_* */
	size_t	   *pos;			/* where item k goes in s->recs (ITEM_NEW) */
	uint8_t    *buf;			/* the encoded new records */
	seg_entry  *fresh;			/* their index entries */
	size_t		nfresh;
	size_t		total;			/* bytes of the new records */
} append_batch;

/* 1. Each record on its own (no lock needed); computes its CRC. */
static int
check_each_record(append_batch *b, uint32_t max_payload, char *err, size_t errlen)
{
	for (int i = 0; i < b->n; i++)
	{
		const aurora_log_record *r = &b->recs[i];

		if (r->start_lsn >= r->end_lsn)
		{
			aurora_seterr(err, errlen, "record %d: start_lsn %" PRIu64 " is not below end_lsn %" PRIu64,
				   i, r->start_lsn, r->end_lsn);
			return AURORA_SEG_ERR_INVALID;
		}
		if (r->prev_lsn >= r->start_lsn)
		{
			aurora_seterr(err, errlen, "record %d (start %" PRIu64 "): prev_lsn %" PRIu64
				   " is not below start_lsn", i, r->start_lsn, r->prev_lsn);
			return AURORA_SEG_ERR_INVALID;
		}
		if (r->len > 0 && r->payload == NULL)
		{
			aurora_seterr(err, errlen, "record %d (start %" PRIu64 "): %" PRIu32 " bytes but no payload",
				   i, r->start_lsn, r->len);
			return AURORA_SEG_ERR_INVALID;
		}
		if (r->len > max_payload)
		{
			aurora_seterr(err, errlen, "record %d (start %" PRIu64 "): payload of %" PRIu32
				   " bytes exceeds the limit of %" PRIu32, i, r->start_lsn, r->len, max_payload);
			return AURORA_SEG_ERR_TOO_LARGE;
		}
		b->crcs[i] = record_crc(r);
		b->items[i].start = r->start_lsn;
		b->items[i].idx = i;
	}
	return AURORA_SEG_OK;
}

/* 2. The batch against itself: sorted by start, neighbours must not overlap. */
static int
check_batch_overlap(append_batch *b, char *err, size_t errlen)
{
	qsort(b->items, (size_t) b->n, sizeof(*b->items), cmp_item);
	for (int k = 1; k < b->n; k++)
	{
		const aurora_log_record *x = &b->recs[b->items[k - 1].idx],
				   *y = &b->recs[b->items[k].idx];

		if (x->end_lsn > y->start_lsn)
		{
			aurora_seterr(err, errlen, "records %d [%" PRIu64 ",%" PRIu64 ") and %d [%" PRIu64 ",%" PRIu64
				   ") of the batch overlap", b->items[k - 1].idx, x->start_lsn, x->end_lsn,
				   b->items[k].idx, y->start_lsn, y->end_lsn);
			return AURORA_SEG_ERR_INVALID;
		}
	}
	return AURORA_SEG_OK;
}

/*
 * 3. Against held records (durable or pending): duplicate or overlap.  Sets
 * kind[], pos[], nfresh and total.  s->mu held.
 */
static int
classify_against_held(aurora_segment *s, append_batch *b, char *err, size_t errlen)
{
	for (int k = 0; k < b->n; k++)
	{
		int			i = b->items[k].idx;
		const aurora_log_record *r = &b->recs[i];
		size_t		p;

		if (r->start_lsn <= s->meta.base_lsn)
		{
			b->kind[k] = ITEM_COVERED;
			continue;
		}
		p = seg_lower_bound(s->recs, s->nrecs, r->start_lsn);
		b->pos[k] = p;
		if (p < s->nrecs && s->recs[p].start == r->start_lsn)
		{
			const seg_entry *e = &s->recs[p];

			if (e->end == r->end_lsn && e->prev == r->prev_lsn && e->len == r->len &&
				e->crc == b->crcs[i])
			{
				b->kind[k] = ITEM_DUP;
				continue;
			}
			aurora_seterr(err, errlen, "record %d (start %" PRIu64 "): differs from the held record "
				   "with the same start_lsn (end %" PRIu64 ", prev %" PRIu64 ", %" PRIu32 " bytes)",
				   i, r->start_lsn, e->end, e->prev, e->len);
			return AURORA_SEG_ERR_INCONSISTENT;
		}
		if ((p > 0 && s->recs[p - 1].end > r->start_lsn) ||
			(p < s->nrecs && s->recs[p].start < r->end_lsn))
		{
			const seg_entry *e = (p > 0 && s->recs[p - 1].end > r->start_lsn) ?
				&s->recs[p - 1] : &s->recs[p];

			aurora_seterr(err, errlen, "record %d [%" PRIu64 ",%" PRIu64 ") overlaps the held record [%"
				   PRIu64 ",%" PRIu64 ")", i, r->start_lsn, r->end_lsn, e->start, e->end);
			return AURORA_SEG_ERR_INCONSISTENT;
		}
		b->kind[k] = ITEM_NEW;
		b->nfresh++;
		b->total += AURORA_SEG_RECORD_HEADER_SIZE + r->len;
	}
	return AURORA_SEG_OK;
}

/*
 * 4. Backlinks of each new record against its neighbours in start order
 * (held or new, whichever is closer; the base acts as a record that ends
 * where it starts).  A contradiction means two histories of the PG are
 * being mixed (e.g. a stale writer), which would otherwise only show up
 * later as a hole that never fills.  s->mu held.
 */
static int
check_backlinks(aurora_segment *s, const append_batch *b, char *err, size_t errlen)
{
	const aurora_log_record *recs = b->recs;
	const batch_item *items = b->items;
	int			last_new = -1;

	for (int k = 0; k < b->n; k++)
	{
		const aurora_log_record *r = &recs[items[k].idx];
		size_t		p = b->pos[k];
		uint64_t	ls = s->meta.base_lsn,
					le = s->meta.base_lsn;
		int			next_new = -1;
		bool		have_right = false;
		uint64_t	rs = 0,
					rp = 0;

		if (b->kind[k] != ITEM_NEW)
			continue;
		if (p > 0)
		{
			ls = s->recs[p - 1].start;
			le = s->recs[p - 1].end;
		}
		if (last_new >= 0 && recs[items[last_new].idx].start_lsn > ls)
		{
			ls = recs[items[last_new].idx].start_lsn;
			le = recs[items[last_new].idx].end_lsn;
		}
		for (int j = k + 1; j < b->n; j++)
			if (b->kind[j] == ITEM_NEW)
			{
				next_new = j;
				break;
			}
		if (p < s->nrecs)
		{
			have_right = true;
			rs = s->recs[p].start;
			rp = s->recs[p].prev;
		}
		if (next_new >= 0 && (!have_right || recs[items[next_new].idx].start_lsn < rs))
		{
			have_right = true;
			rs = recs[items[next_new].idx].start_lsn;
			rp = recs[items[next_new].idx].prev_lsn;
		}
		if (!link_ok(ls, le, r->prev_lsn))
		{
			aurora_seterr(err, errlen, "record %d (start %" PRIu64 ", prev %" PRIu64
				   "): its backlink skips or overlaps the record [%" PRIu64 ",%" PRIu64 ")",
				   items[k].idx, r->start_lsn, r->prev_lsn, ls, le);
			return AURORA_SEG_ERR_INCONSISTENT;
		}
		if (have_right && !link_ok(r->start_lsn, r->end_lsn, rp))
		{
			aurora_seterr(err, errlen, "record %d [%" PRIu64 ",%" PRIu64 "): the record at %" PRIu64
				   " has backlink %" PRIu64 ", which skips or overlaps it",
				   items[k].idx, r->start_lsn, r->end_lsn, rs, rp);
			return AURORA_SEG_ERR_INCONSISTENT;
		}
		last_new = k;
	}
	return AURORA_SEG_OK;
}

/*
 * 6. Encode the new records in start order and write them with one pwrite;
 * fills fresh[] and queues the batch for the next sync.  s->mu held, the
 * memory of step 5 reserved.
 */
static int
write_new_records(aurora_segment *s, append_batch *b, char *err, size_t errlen)
{
	size_t		o = 0,
				f = 0;
	uint64_t	max_end = 0;

	for (int k = 0; k < b->n; k++)
	{
		const aurora_log_record *r = &b->recs[b->items[k].idx];
		uint32_t	crc = b->crcs[b->items[k].idx];
		seg_entry  *e;

		if (b->kind[k] != ITEM_NEW)
			continue;
		aurora_put_le32(b->buf + o, AURORA_SEG_RECORD_MAGIC);
		aurora_put_le32(b->buf + o + 4, crc);
		encode_fields(b->buf + o + 8, r->start_lsn, r->end_lsn, r->prev_lsn, r->len);
		if (r->len > 0)
			memcpy(b->buf + o + AURORA_SEG_RECORD_HEADER_SIZE, r->payload, r->len);
		e = &b->fresh[f++];
		e->start = r->start_lsn;
		e->end = r->end_lsn;
		e->prev = r->prev_lsn;
		e->len = r->len;
		e->crc = crc;
		e->off = s->write_off + o;
		if (r->end_lsn > max_end)
			max_end = r->end_lsn;
		o += AURORA_SEG_RECORD_HEADER_SIZE + r->len;
	}
	if (seg_write_all(s->fd, b->buf, b->total, s->write_off) != 0)
	{
		int			saved = errno;

		/*
		 * Put the file back as it was, so that a crash cannot resurrect part
		 * of a batch the caller was told failed.  If even that fails the
		 * file's tail is unknown: refuse further writes.
		 */
		s->alloc_end = s->write_off;
		if (ftruncate(s->fd, (off_t) s->write_off) != 0)
		{
			s->failed = true;
			snprintf(s->failed_msg, sizeof(s->failed_msg),
					 "write failed (%s) and truncating back failed (%s)",
					 strerror(saved), strerror(errno));
			aurora_log("segment %s: %s", s->dir, s->failed_msg);
		}
		aurora_seterr(err, errlen, "cannot append to %s/" LOG_FILE ": %s", s->dir, strerror(saved));
		return AURORA_SEG_ERR_IO;
	}
	s->write_off += b->total;
	if (s->write_off > s->alloc_end)
		s->alloc_end = s->write_off;
	s->batches[s->nbatches].end_off = s->write_off;
	s->batches[s->nbatches].nrecs = b->nfresh;
	s->batches[s->nbatches].max_end = max_end;
	s->nbatches++;
	return AURORA_SEG_OK;
}

/*
 * 7. Merge the new (sorted) entries into the index from the back, noting
 * where each lands (in pos[], ascending; no longer needed for step 4), and
 * keep the count of backlink mismatches.  Cannot fail.  s->mu held.
 */
static void
merge_into_index(aurora_segment *s, append_batch *b)
{
	size_t	   *pos = b->pos;
	size_t		nfresh = b->nfresh;
	size_t		i = s->nrecs,
				j = nfresh,
				w = s->nrecs + nfresh;

	while (j > 0)
	{
		if (i > 0 && s->recs[i - 1].start > b->fresh[j - 1].start)
			s->recs[--w] = s->recs[--i];
		else
		{
			s->recs[--w] = b->fresh[--j];
			pos[j] = w;
		}
	}
	s->nrecs += nfresh;

	/*
	 * Backlink mismatches change only at the new entries and at each held
	 * entry right after a run of new ones (its predecessor changed from the
	 * held entry before the run to the run's last new entry).
	 */
	for (size_t f = 0; f < nfresh; f++)
	{
		size_t		q = pos[f];

		s->mismatches += seg_mismatch_at(s, q);
		if ((f + 1 == nfresh || pos[f + 1] != q + 1) && q + 1 < s->nrecs)
		{
			size_t		run = q;
			uint64_t	old_pred;

			for (size_t g = f; g > 0 && pos[g - 1] == run - 1; g--)
				run--;
			old_pred = run == 0 ? s->meta.base_lsn : s->recs[run - 1].start;
			s->mismatches -= s->recs[q + 1].prev != old_pred;
			s->mismatches += seg_mismatch_at(s, q + 1);
		}
	}
	/* The backlink checks keep new records out of the chain; be safe anyway. */
	if (w < s->chain_len)
	{
		s->chain_len = 0;
		s->scl = s->meta.base_lsn;
		seg_advance_chain(s);
	}
}

/*
 * Lock s for an append of b: not into space that is being zero-filled
 * (aurora_segment_preallocate), and not after a failure that left the
 * file's tail unknown.  Returns with s->mu held either way.
 */
static int
lock_for_append(aurora_segment *s, const append_batch *b, char *err, size_t errlen)
{
	uint64_t	most = 0;

	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < b->n; i++)
		most += AURORA_SEG_RECORD_HEADER_SIZE + b->recs[i].len;
	while (s->extending && s->write_off + most > s->extend_from)
		pthread_cond_wait(&s->extend_done, &s->mu);
	if (s->failed)
	{
		aurora_seterr(err, errlen, "segment %s refuses writes after an earlier failure (%s); "
			   "it must be reopened", s->dir, s->failed_msg);
		return AURORA_SEG_ERR_IO;
	}
	return AURORA_SEG_OK;
}

/*
 * Steps 1-2 check the batch alone, 3-4 against what the segment holds
 * (nothing of a refused batch is written), 5 reserves every allocation so
 * that nothing can fail after the write, 6 writes, 7 indexes.
 */
int
aurora_segment_append(aurora_segment *s, const aurora_log_record *recs, int n,
					  uint32_t max_payload, int *n_new, char *err, size_t errlen)
{
	append_batch b = {.recs = recs, .n = n};
	int			rc = AURORA_SEG_OK;
	bool		locked = false;

	if (n_new != NULL)
		*n_new = 0;
	if (n < 0 || (n > 0 && recs == NULL))
	{
		aurora_seterr(err, errlen, "invalid batch: %d records", n);
		return AURORA_SEG_ERR_INVALID;
	}
	if (n == 0)
		return AURORA_SEG_OK;

	b.items = malloc((size_t) n * sizeof(*b.items));
	b.crcs = malloc((size_t) n * sizeof(*b.crcs));
	b.kind = malloc((size_t) n);
	b.pos = malloc((size_t) n * sizeof(*b.pos));
	if (b.items == NULL || b.crcs == NULL || b.kind == NULL || b.pos == NULL)
	{
		aurora_seterr(err, errlen, "out of memory for a batch of %d records", n);
		rc = AURORA_SEG_ERR_IO;
		goto out;
	}
	if ((rc = check_each_record(&b, max_payload, err, errlen)) != AURORA_SEG_OK ||
		(rc = check_batch_overlap(&b, err, errlen)) != AURORA_SEG_OK)
		goto out;

	locked = true;
	if ((rc = lock_for_append(s, &b, err, errlen)) != AURORA_SEG_OK ||
		(rc = classify_against_held(s, &b, err, errlen)) != AURORA_SEG_OK ||
		(rc = check_backlinks(s, &b, err, errlen)) != AURORA_SEG_OK)
		goto out;
	if (b.nfresh == 0)
		goto out;

	/* 5. Reserve memory first, so nothing can fail after the write. */
	b.buf = malloc(b.total);
	b.fresh = malloc(b.nfresh * sizeof(*b.fresh));
	if (b.buf == NULL || b.fresh == NULL || seg_reserve_recs(s, b.nfresh) != 0 || reserve_batch(s) != 0)
	{
		aurora_seterr(err, errlen, "out of memory appending %zu records", b.nfresh);
		rc = AURORA_SEG_ERR_IO;
		goto out;
	}
	if ((rc = write_new_records(s, &b, err, errlen)) != AURORA_SEG_OK)
		goto out;
	merge_into_index(s, &b);
	if (n_new != NULL)
		*n_new = (int) b.nfresh;

out:
	if (locked)
		pthread_mutex_unlock(&s->mu);
	free(b.items);
	free(b.crcs);
	free(b.kind);
	free(b.pos);
	free(b.buf);
	free(b.fresh);
	return rc;
}

/* ---- read ---- */

int
aurora_segment_read(aurora_segment *s, uint64_t from_lsn, uint64_t to_lsn, size_t max_bytes,
					aurora_record_fn emit, void *arg,
					bool *truncated)
{
	seg_entry  *sel = NULL;
	size_t		nsel = 0,
				cap = 0,
				buf_cap = 0;
	uint64_t	bytes = 0;
	uint8_t    *buf = NULL;
	int			rc = AURORA_SEG_OK;

	if (truncated != NULL)
		*truncated = false;

	/*
	 * Pick the records under the mutex, read them without it: durable bytes
	 * are never rewritten, so appends and syncs need not wait for the disk.
	 */
	pthread_mutex_lock(&s->mu);
	for (size_t p = seg_lower_bound(s->recs, s->nrecs, from_lsn);
		 p < s->nrecs && s->recs[p].start < to_lsn; p++)
	{
		const seg_entry *e = &s->recs[p];

		if (entry_end_off(e) > s->durable_off)
			continue;
		if (nsel > 0 && bytes + e->len > max_bytes)
		{
			if (truncated != NULL)
				*truncated = true;
			break;
		}
		if (nsel == cap)
		{
			size_t		ncap = cap ? cap * 2 : 32;
			seg_entry  *ns = realloc(sel, ncap * sizeof(*ns));

			if (ns == NULL)
			{
				pthread_mutex_unlock(&s->mu);
				free(sel);
				return AURORA_SEG_ERR_IO;
			}
			sel = ns;
			cap = ncap;
		}
		sel[nsel++] = *e;
		bytes += e->len;
	}
	pthread_mutex_unlock(&s->mu);

	/*
	 * Records appended in order lie back to back in the file: each run of
	 * them is read with one pread (at most READ_SPAN_MAX bytes, or one
	 * record), not one per record.  The indexer reads every record, the
	 * page service's tail scan and coalescing many: per-record preads were
	 * most of a node's system calls under load.
	 */
	for (size_t i = 0, j; i < nsel && rc == AURORA_SEG_OK; i = j)
	{
		uint64_t	span_end = entry_end_off(&sel[i]);
		size_t		span;

		for (j = i + 1; j < nsel && sel[j].off == span_end &&
			 entry_end_off(&sel[j]) - sel[i].off <= READ_SPAN_MAX; j++)
			span_end = entry_end_off(&sel[j]);
		span = (size_t) (span_end - sel[i].off);
		if (span > buf_cap)
		{
			uint8_t    *nb = realloc(buf, span);

			if (nb == NULL)
			{
				rc = AURORA_SEG_ERR_IO;
				break;
			}
			buf = nb;
			buf_cap = span;
		}
		if (seg_read_all(s->fd, buf, span, sel[i].off) != 0)
		{
			aurora_log("segment %s: cannot read records at offset %" PRIu64 ": %s",
					   s->dir, sel[i].off, seg_errno_text());
			rc = AURORA_SEG_ERR_IO;
			break;
		}
		for (size_t k = i; k < j && rc == AURORA_SEG_OK; k++)
		{
			const seg_entry *e = &sel[k];
			const uint8_t *h = buf + (e->off - sel[i].off);
			aurora_log_record r;

			if (aurora_get_le32(h) != AURORA_SEG_RECORD_MAGIC || aurora_get_le32(h + 4) != e->crc ||
				aurora_get_le64(h + 8) != e->start || aurora_get_le64(h + 16) != e->end ||
				aurora_get_le64(h + 24) != e->prev || aurora_get_le32(h + 32) != e->len ||
				aurora_crc32c(0, h + 8, 28u + e->len) != e->crc)
			{
				aurora_log("segment %s: record [%" PRIu64 ",%" PRIu64 ") at offset %" PRIu64
						   " is corrupt on disk (CRC or header mismatch)", s->dir, e->start,
						   e->end, e->off);
				rc = AURORA_SEG_ERR_CORRUPT;
				break;
			}
			r.start_lsn = e->start;
			r.end_lsn = e->end;
			r.prev_lsn = e->prev;
			r.len = e->len;
			r.payload = h + AURORA_SEG_RECORD_HEADER_SIZE;
			rc = emit(arg, &r);
		}
	}
	free(buf);
	free(sel);
	return rc;
}

void
aurora_segment_get_meta(aurora_segment *s, aurora_segment_meta *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->meta;
	pthread_mutex_unlock(&s->mu);
}

void
aurora_segment_get_stats(aurora_segment *s, aurora_segment_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	out->scl = s->scl;
	out->highest_lsn = s->highest_durable;
	out->records = s->durable_records;
	out->pending_records = s->nrecs - s->durable_records;
	out->bytes_on_disk = s->write_off;
	out->volume_epoch = s->meta.volume_epoch;
	out->membership_epoch = s->meta.membership_epoch;
	out->n_holes = s->mismatches > UINT32_MAX ? UINT32_MAX : (uint32_t) s->mismatches;
	out->recovered_truncated_bytes = s->recovered_truncated;
	snprintf(out->recovery_note, sizeof(out->recovery_note), "%s", s->recovery_note);
	out->peer_scl = s->peer_scl;
	out->records_from_peers = s->records_from_peers;
	pthread_mutex_unlock(&s->mu);
}

bool
aurora_segment_record_before(aurora_segment *s, uint64_t lsn, aurora_log_record *out)
{
	bool		found = false;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	for (size_t p = seg_lower_bound(s->recs, s->nrecs, lsn); p > 0 && !found; p--)
	{
		const seg_entry *e = &s->recs[p - 1];

		if (entry_end_off(e) > s->durable_off)
			continue;			/* not durable yet: not ours to report */
		out->start_lsn = e->start;
		out->end_lsn = e->end;
		out->prev_lsn = e->prev;
		out->len = e->len;
		found = true;
	}
	pthread_mutex_unlock(&s->mu);
	return found;
}

void
aurora_segment_note_gossip(aurora_segment *s, uint64_t peer_scl, uint64_t records_fetched)
{
	pthread_mutex_lock(&s->mu);
	s->peer_scl = peer_scl;
	s->records_from_peers += records_fetched;
	pthread_mutex_unlock(&s->mu);
}

int
aurora_segment_get_holes(aurora_segment *s, aurora_hole *out, int max)
{
	int			n;

	pthread_mutex_lock(&s->mu);
	n = collect_holes(s, out, max < 0 ? 0 : max);
	pthread_mutex_unlock(&s->mu);
	return n;
}
