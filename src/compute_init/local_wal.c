/*
 * local_wal.c
 *	  A surviving data directory's WAL as a cache (local_wal.h).  Reading the
 *	  whole WAL since the checkpoint back from storage made a restart after a
 *	  crash grow with that WAL (about 50 MB/s here: 20 s at 1 GB); the compute
 *	  still has most of it on disk.  Only what lies below a point the volume
 *	  made durable is taken, and only if every record up to it checks out
 *	  here; storage supplies the rest, and the walk from that point still
 *	  establishes VDL.  Anything local above the point is discarded.
 */
#include "postgres_fe.h"

#include "access/xlog_internal.h"
#include "access/xlogrecord.h"

#include "local_wal.h"
#include "start_state.h"			/* AURORA_DURABLE_FILE */
#include "wal_layout.h"
#include "wal_walk.h"			/* wal_record_crc_ok */

/* PostgreSQL never writes a record longer (XLogRecordAssemble's limit) */
#define LOCAL_RECORD_MAX	((uint32) 1024 * 1024 * 1024)

XLogRecPtr
local_wal_durable_lsn(const char *datadir)
{
	char		path[MAXPGPATH];
	char		line[128];
	FILE	   *f;
	XLogRecPtr	lsn = InvalidXLogRecPtr;

	snprintf(path, sizeof(path), "%s/%s", datadir, AURORA_DURABLE_FILE);
	if ((f = fopen(path, "r")) == NULL)
		return InvalidXLogRecPtr;
	while (fgets(line, sizeof(line), f) != NULL)
	{
		unsigned	hi,
					lo;

		if (sscanf(line, "durable_lsn %X/%X", &hi, &lo) == 2)
			lsn = ((XLogRecPtr) hi << 32) | lo;
	}
	fclose(f);
	return lsn;
}

/* The segment being read. */
typedef struct LocalReader
{
	const char *pgwal;
	const WalTarget *t;
	XLogSegNo	segno;			/* of image; 0 with image NULL: none yet */
	uint8	   *image;
	char	   *err;
	size_t		errlen;
} LocalReader;

static int
check_page_header(LocalReader *r, XLogRecPtr page)
{
	const uint8 *p = r->image + XLogSegmentOffset(page, r->t->seg_size);
	XLogPageHeaderData h;

	memcpy(&h, p, SizeOfXLogShortPHD);
	if (h.xlp_magic != XLOG_PAGE_MAGIC || h.xlp_pageaddr != page || h.xlp_tli != r->t->tli)
	{
		snprintf(r->err, r->errlen, "the page at %X/%X has no header of this WAL (magic %04X, address %X/%X, timeline %u)",
				 LSN_FORMAT_ARGS(page), h.xlp_magic, LSN_FORMAT_ARGS(h.xlp_pageaddr), h.xlp_tli);
		return -1;
	}
	if (wal_page_header_size(page, r->t->seg_size) == SizeOfXLogLongPHD)
	{
		XLogLongPageHeaderData lh;

		memcpy(&lh, p, SizeOfXLogLongPHD);
		if (lh.xlp_sysid != r->t->sysid || lh.xlp_seg_size != r->t->seg_size)
		{
			snprintf(r->err, r->errlen, "the segment at %X/%X belongs to another database system",
					 LSN_FORMAT_ARGS(page));
			return -1;
		}
	}
	return 0;
}

/* Make the segment holding pos the current one; checks its first page. */
static int
load_segment(LocalReader *r, XLogRecPtr pos)
{
	XLogSegNo	segno;
	char		name[MAXFNAMELEN];
	char		path[MAXPGPATH];
	XLogRecPtr	seg_start;

	XLByteToSeg(pos, segno, r->t->seg_size);
	if (r->image != NULL && r->segno == segno)
		return 0;
	if (r->image == NULL && (r->image = malloc(r->t->seg_size)) == NULL)
	{
		snprintf(r->err, r->errlen, "out of memory");
		return -1;
	}
	XLogFileName(name, r->t->tli, segno, r->t->seg_size);
	snprintf(path, sizeof(path), "%s/%s", r->pgwal, name);
	if (wal_read_file_prefix(path, r->image, r->t->seg_size, r->err, r->errlen) != 0)
		return -1;
	r->segno = segno;
	XLogSegNoOffsetToRecPtr(segno, 0, r->t->seg_size, seg_start);
	return check_page_header(r, seg_start);
}

/*
 * Copy len bytes of WAL from *pos (never inside a page header) into out,
 * crossing page headers (each checked); *pos ends after the last byte.
 */
static int
read_wal(LocalReader *r, XLogRecPtr *pos, uint8 *out, uint32 len)
{
	while (len > 0)
	{
		uint32		room;

		if (load_segment(r, *pos) != 0)
			return -1;
		if (*pos % XLOG_BLCKSZ == 0)
		{
			if (check_page_header(r, *pos) != 0)
				return -1;
			*pos += wal_page_header_size(*pos, r->t->seg_size);
		}
		room = XLOG_BLCKSZ - (uint32) (*pos % XLOG_BLCKSZ);
		if (room > len)
			room = len;
		memcpy(out, r->image + XLogSegmentOffset(*pos, r->t->seg_size), room);
		out += room;
		*pos += room;
		len -= room;
	}
	return 0;
}

int
local_wal_verify(const char *pgwal, const WalTarget *t, XLogRecPtr redo, XLogRecPtr upto,
				 XLogRecPtr *last_start, int *records, uint64 *bytes, char *err, size_t errlen)
{
	LocalReader r = {pgwal, t, 0, NULL, err, errlen};
	XLogRecPtr	pos = redo;
	XLogRecPtr	prev = InvalidXLogRecPtr;
	uint8	   *rec = NULL;
	uint32		cap = 0;
	int			rc = -1;

	*records = 0;
	*bytes = 0;
	if (upto <= redo)
	{
		snprintf(err, errlen, "nothing to take: %X/%X is not above the redo point %X/%X",
				 LSN_FORMAT_ARGS(upto), LSN_FORMAT_ARGS(redo));
		return -1;
	}
	if (load_segment(&r, pos) != 0 || check_page_header(&r, pos - pos % XLOG_BLCKSZ) != 0)
		goto done;
	for (;;)
	{
		XLogRecPtr	start = pos;
		XLogRecPtr	end;
		XLogRecord	hdr;

		if (cap < SizeOfXLogRecord && (rec = realloc(rec, cap = XLOG_BLCKSZ)) == NULL)
		{
			snprintf(err, errlen, "out of memory");
			goto done;
		}
		if (read_wal(&r, &pos, rec, SizeOfXLogRecord) != 0)
			goto done;
		memcpy(&hdr, rec, SizeOfXLogRecord);
		if (hdr.xl_tot_len < SizeOfXLogRecord || hdr.xl_tot_len > LOCAL_RECORD_MAX ||
			(!XLogRecPtrIsInvalid(prev) && hdr.xl_prev != prev))
		{
			snprintf(err, errlen, "no record of this WAL at %X/%X (length %u, previous %X/%X)",
					 LSN_FORMAT_ARGS(start), hdr.xl_tot_len, LSN_FORMAT_ARGS(hdr.xl_prev));
			goto done;
		}
		if (hdr.xl_tot_len > cap)
		{
			uint8	   *bigger = realloc(rec, hdr.xl_tot_len);

			if (bigger == NULL)
			{
				snprintf(err, errlen, "out of memory");
				goto done;
			}
			rec = bigger;
			cap = hdr.xl_tot_len;
		}
		if (read_wal(&r, &pos, rec + SizeOfXLogRecord, hdr.xl_tot_len - SizeOfXLogRecord) != 0)
			goto done;
		if (!wal_record_crc_ok(rec, hdr.xl_tot_len))
		{
			snprintf(err, errlen, "the record at %X/%X fails its CRC", LSN_FORMAT_ARGS(start));
			goto done;
		}
		end = wal_record_end(start, hdr.xl_tot_len, wal_record_is_switch(rec), t->seg_size);
		(*records)++;
		*bytes += hdr.xl_tot_len;
		prev = start;
		if (end == upto)
		{
			*last_start = start;
			rc = 0;
			goto done;
		}
		if (end > upto)
		{
			snprintf(err, errlen, "the record at %X/%X ends at %X/%X, past %X/%X",
					 LSN_FORMAT_ARGS(start), LSN_FORMAT_ARGS(end), LSN_FORMAT_ARGS(upto));
			goto done;
		}
		pos = wal_next_record_start(end, t->seg_size);
	}
done:
	free(rec);
	free(r.image);
	return rc;
}
