/*
 * wal_layout.c
 *	  PostgreSQL's WAL layout as arithmetic (wal_layout.h): the rules
 *	  CopyXLogRecordToWAL() and XLogDecodeNextRecord() follow, from
 *	  PostgreSQL's headers, so no format constant is written here by hand.
 */
#include "postgres_fe.h"

#include "access/rmgr.h"
#include "access/xlog_internal.h"
#include "access/xlogrecord.h"
#include "catalog/pg_control.h"

#include "wal_layout.h"

uint32
wal_page_header_size(XLogRecPtr page_start, uint32 seg_size)
{
	return XLogSegmentOffset(page_start, seg_size) == 0 ?
		SizeOfXLogLongPHD : SizeOfXLogShortPHD;
}

bool
wal_record_is_switch(const uint8 *wal)
{
	XLogRecord	hdr;

	memcpy(&hdr, wal, SizeOfXLogRecord);
	return hdr.xl_rmid == RM_XLOG_ID &&
		(hdr.xl_info & ~XLR_INFO_MASK) == XLOG_SWITCH;
}

XLogRecPtr
wal_record_end(XLogRecPtr start, uint32 tot_len, bool is_switch, uint32 seg_size)
{
	XLogRecPtr	pos = start;
	uint32		left = tot_len;

	while (left > 0)
	{
		uint32		room;

		if (pos % XLOG_BLCKSZ == 0)
			pos += wal_page_header_size(pos, seg_size);
		room = XLOG_BLCKSZ - (uint32) (pos % XLOG_BLCKSZ);
		if (room > left)
			room = left;
		pos += room;
		left -= room;
	}
	pos = MAXALIGN64(pos);
	if (is_switch && XLogSegmentOffset(pos, seg_size) != 0)
		pos += seg_size - XLogSegmentOffset(pos, seg_size);
	return pos;
}

XLogRecPtr
wal_next_record_start(XLogRecPtr end, uint32 seg_size)
{
	if (end % XLOG_BLCKSZ == 0)
		return end + wal_page_header_size(end, seg_size);
	return end;
}
