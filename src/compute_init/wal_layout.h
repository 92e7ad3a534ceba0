/*
 * wal_layout.h
 *	  Where WAL records lie in PostgreSQL's WAL address space: page headers
 *	  between them, alignment after them, and the end of the segment after an
 *	  XLOG_SWITCH record.  Pure arithmetic over PostgreSQL's own constants
 *	  (access/xlog_internal.h), shared by the walk (wal_walk.c), which checks
 *	  that records follow each other, and the writer (wal_write.c), which lays
 *	  them out.
 */
#ifndef COMPUTE_INIT_WAL_LAYOUT_H
#define COMPUTE_INIT_WAL_LAYOUT_H

#include "postgres_fe.h"

#include "access/xlogdefs.h"

/* Size of the page header of the page beginning at page_start. */
extern uint32 wal_page_header_size(XLogRecPtr page_start, uint32 seg_size);

/* Is this WAL record (its first SizeOfXLogRecord bytes) an XLOG_SWITCH? */
extern bool wal_record_is_switch(const uint8 *wal);

/*
 * Where a record of tot_len bytes starting at start ends, as PostgreSQL's
 * reader reports it (EndRecPtr): after its last byte, MAXALIGNed, page
 * headers crossed counted; for an XLOG_SWITCH, the start of the next segment.
 */
extern XLogRecPtr wal_record_end(XLogRecPtr start, uint32 tot_len, bool is_switch,
								 uint32 seg_size);

/*
 * Where the record after one that ended at end starts: end itself, or past
 * the page header when end is a page boundary.
 */
extern XLogRecPtr wal_next_record_start(XLogRecPtr end, uint32 seg_size);

#endif							/* COMPUTE_INIT_WAL_LAYOUT_H */
