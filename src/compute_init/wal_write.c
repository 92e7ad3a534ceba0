/*
 * wal_write.c
 *	  Lay the kept records out into WAL segment images and write them as
 *	  files (wal_write.h).  The layout is CopyXLogRecordToWAL()'s and
 *	  AdvanceXLInsertBuffer()'s in PostgreSQL's xlog.c; wal_layout.c holds
 *	  the arithmetic the walk shares.
 */
#include "postgres_fe.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog_internal.h"
#include "common/file_perm.h"
#include "common/file_utils.h"

#include "wal_layout.h"
#include "wal_write.h"

/* One segment image being built: segment [start, start + seg_size). */
typedef struct SegImage
{
	const WalTarget *t;
	XLogRecPtr	start;
	uint8	   *image;
} SegImage;

static bool
in_segment(const SegImage *s, XLogRecPtr pos)
{
	return pos >= s->start && pos < s->start + s->t->seg_size;
}

/* The header of the page at page_start, if that page is in the segment. */
static void
put_page_header(const SegImage *s, XLogRecPtr page_start, bool contrecord, uint32 rem_len)
{
	XLogLongPageHeaderData h;
	uint32		size = wal_page_header_size(page_start, s->t->seg_size);

	if (!in_segment(s, page_start))
		return;
	memset(&h, 0, sizeof(h));
	h.std.xlp_magic = XLOG_PAGE_MAGIC;
	h.std.xlp_info = XLP_BKP_REMOVABLE;
	if (contrecord)
		h.std.xlp_info |= XLP_FIRST_IS_CONTRECORD;
	h.std.xlp_tli = s->t->tli;
	h.std.xlp_pageaddr = page_start;
	h.std.xlp_rem_len = rem_len;
	if (size == SizeOfXLogLongPHD)
	{
		h.std.xlp_info |= XLP_LONG_HEADER;
		h.xlp_sysid = s->t->sysid;
		h.xlp_seg_size = s->t->seg_size;
		h.xlp_xlog_blcksz = XLOG_BLCKSZ;
	}
	memcpy(s->image + (page_start - s->start), &h, size);
}

/* Bytes [pos, pos + len) of the WAL, as far as they lie in the segment. */
static void
put_bytes(const SegImage *s, XLogRecPtr pos, const uint8 *data, uint32 len)
{
	XLogRecPtr	from = Max(pos, s->start);
	XLogRecPtr	to = Min(pos + len, s->start + s->t->seg_size);

	if (from < to)
		memcpy(s->image + (from - s->start), data + (from - pos), to - from);
}

/* Lay out one record; first says it is the record at redo. */
static void
put_record(const SegImage *s, const WalRecord *r, bool first)
{
	XLogRecPtr	pos = r->start_lsn;
	XLogRecPtr	page = pos - pos % XLOG_BLCKSZ;
	uint32		hdr = wal_page_header_size(page, s->t->seg_size);
	uint32		off = 0;

	if (first)
	{
		/* what precedes redo on its page is described as continuation data */
		uint32		before = (uint32) (pos - page) - hdr;

		put_page_header(s, page, before > 0, before);
	}
	else if (pos - page == hdr)
		put_page_header(s, page, false, 0);		/* it begins the page */

	while (off < r->wal_len)
	{
		uint32		room;

		if (pos % XLOG_BLCKSZ == 0)
		{
			put_page_header(s, pos, true, r->wal_len - off);
			pos += wal_page_header_size(pos, s->t->seg_size);
		}
		room = XLOG_BLCKSZ - (uint32) (pos % XLOG_BLCKSZ);
		if (room > r->wal_len - off)
			room = r->wal_len - off;
		put_bytes(s, pos, r->wal + off, room);
		pos += room;
		off += room;
	}
}

/* First record ending above lsn (recs sorted, non-overlapping). */
static int
first_ending_above(const WalRecord *recs, int n, XLogRecPtr lsn)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (recs[mid].end_lsn <= lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void
wal_build_segment(const WalTarget *t, XLogSegNo segno, XLogRecPtr redo,
				  const WalRecord *recs, int n, uint8 *image)
{
	SegImage	s;
	XLogRecPtr	seg_end;

	s.t = t;
	XLogSegNoOffsetToRecPtr(segno, 0, t->seg_size, s.start);
	s.image = image;
	seg_end = s.start + t->seg_size;

	/*
	 * PostgreSQL's reader checks the long header of a segment's first page
	 * before it reads any other page of the segment (ReadPageInternal()), so
	 * redo's segment gets one even when redo lies further in.
	 */
	if (n > 0 && in_segment(&s, redo) && redo - redo % XLOG_BLCKSZ != s.start)
		put_page_header(&s, s.start, false, 0);
	for (int i = first_ending_above(recs, n, s.start); i < n && recs[i].start_lsn < seg_end; i++)
		put_record(&s, &recs[i], recs[i].start_lsn == redo && i == 0);
}

/* Write size bytes of image to a new file at path (open flags extra), fsynced. */
static int
write_image(const char *path, int extra, const uint8 *image, size_t size, char *err, size_t errlen)
{
	int			fd = open(path, O_WRONLY | O_CREAT | extra | PG_BINARY, pg_file_create_mode);
	size_t		done = 0;

	if (fd < 0)
	{
		snprintf(err, errlen, "could not create \"%s\": %m", path);
		return -1;
	}
	while (done < size)
	{
		ssize_t		k = write(fd, image + done, size - done);

		if (k <= 0)
		{
			snprintf(err, errlen, "could not write \"%s\": %m", path);
			close(fd);
			return -1;
		}
		done += (size_t) k;
	}
	if (fsync(fd) != 0 || close(fd) != 0)
	{
		snprintf(err, errlen, "could not fsync \"%s\": %m", path);
		return -1;
	}
	return 0;
}

int
wal_write_segments(const char *dir, const WalTarget *t, XLogRecPtr redo,
				   const WalRecord *recs, int n, XLogRecPtr vdl,
				   char *err, size_t errlen)
{
	XLogSegNo	first,
				last;
	uint8	   *image;
	int			written = 0;

	if (n == 0 || vdl <= redo)
	{
		snprintf(err, errlen, "no WAL to write from %X/%X", LSN_FORMAT_ARGS(redo));
		return -1;
	}
	XLByteToSeg(redo, first, t->seg_size);
	XLByteToSeg(vdl - 1, last, t->seg_size);

	/* refuse before writing anything */
	for (XLogSegNo seg = first; seg <= last; seg++)
	{
		char		name[MAXFNAMELEN];
		char		path[MAXPGPATH];
		struct stat st;

		XLogFileName(name, t->tli, seg, t->seg_size);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (stat(path, &st) == 0)
		{
			snprintf(err, errlen, "\"%s\" exists already; give an empty directory", path);
			return -1;
		}
	}

	image = malloc(t->seg_size);
	if (image == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (XLogSegNo seg = first; seg <= last; seg++)
	{
		char		name[MAXFNAMELEN];
		char		path[MAXPGPATH];

		memset(image, 0, t->seg_size);
		wal_build_segment(t, seg, redo, recs, n, image);
		XLogFileName(name, t->tli, seg, t->seg_size);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (write_image(path, O_EXCL, image, t->seg_size, err, errlen) != 0)
			goto fail;
		written++;
	}
	free(image);
	if (fsync_fname(dir, true) != 0)
	{
		snprintf(err, errlen, "could not fsync directory \"%s\"", dir);
		return -1;
	}
	return written;

fail:
	free(image);
	return -1;
}

int
wal_read_file_prefix(const char *path, uint8 *image, size_t keep, char *err, size_t errlen)
{
	int			fd = open(path, O_RDONLY | PG_BINARY, 0);
	size_t		done = 0;

	if (fd < 0)
	{
		snprintf(err, errlen, "could not open \"%s\": %m", path);
		return -1;
	}
	while (done < keep)
	{
		ssize_t		k = read(fd, image + done, keep - done);

		if (k <= 0)
		{
			if (k == 0)
				snprintf(err, errlen, "\"%s\" is shorter than %zu bytes", path, keep);
			else
				snprintf(err, errlen, "could not read \"%s\": %m", path);
			close(fd);
			return -1;
		}
		done += (size_t) k;
	}
	close(fd);
	return 0;
}

int
wal_write_segments_from(const char *dir, const WalTarget *t, XLogRecPtr from,
						const WalRecord *recs, int n, XLogRecPtr vdl,
						char *err, size_t errlen)
{
	XLogSegNo	first,
				last;
	uint8	   *image;
	int			written = 0;
	DIR		   *d;
	struct dirent *de;

	if (vdl < from)
	{
		snprintf(err, errlen, "VDL %X/%X is below %X/%X", LSN_FORMAT_ARGS(vdl), LSN_FORMAT_ARGS(from));
		return -1;
	}
	XLByteToSeg(from, first, t->seg_size);
	XLByteToSeg(vdl > from ? vdl - 1 : vdl, last, t->seg_size);
	if ((image = malloc(t->seg_size)) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (XLogSegNo seg = first; seg <= last; seg++)
	{
		char		name[MAXFNAMELEN];
		char		path[MAXPGPATH];
		char		tmp[MAXPGPATH];
		size_t		keep = seg == first ? XLogSegmentOffset(from, t->seg_size) : 0;

		XLogFileName(name, t->tli, seg, t->seg_size);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		memset(image, 0, t->seg_size);
		if (keep > 0 && wal_read_file_prefix(path, image, keep, err, errlen) != 0)
			goto fail;
		/* no record is "the first": the page headers below from are kept */
		wal_build_segment(t, seg, InvalidXLogRecPtr, recs, n, image);
		if (write_image(tmp, O_TRUNC, image, t->seg_size, err, errlen) != 0)
			goto fail;
		if (rename(tmp, path) != 0)
		{
			snprintf(err, errlen, "could not rename \"%s\": %m", tmp);
			goto fail;
		}
		written++;
	}
	free(image);

	/* what lies after VDL was never acknowledged: no file of it stays */
	if ((d = opendir(dir)) == NULL)
	{
		snprintf(err, errlen, "could not open directory \"%s\": %m", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL)
	{
		TimeLineID	tli;
		XLogSegNo	segno;
		char		path[MAXPGPATH];

		if (!IsXLogFileName(de->d_name))
			continue;
		XLogFromFileName(de->d_name, &tli, &segno, t->seg_size);
		if (segno <= last)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) != 0)
		{
			snprintf(err, errlen, "could not remove \"%s\": %m", path);
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	if (fsync_fname(dir, true) != 0)
	{
		snprintf(err, errlen, "could not fsync directory \"%s\"", dir);
		return -1;
	}
	return written;

fail:
	free(image);
	return -1;
}
