/*
 * page_reader.h
 *	  Asking storage nodes for pages and relation sizes (page_reader.c).
 */
#ifndef AURORA_PAGE_READER_H
#define AURORA_PAGE_READER_H

#include "storage/buf_internals.h"
#include "storage/relfilenode.h"

typedef void (*aurora_read_counter) (uint64 us, int retries);

extern void aurora_page_reader_define_gucs(void);
extern void aurora_page_reader_count_reads(aurora_read_counter counter);
extern XLogRecPtr aurora_read_point(int pg);
extern bool aurora_fetch_page(const BufferTag *tag, XLogRecPtr lsn, char *page);
extern bool aurora_fetch_rel_size(RelFileNode rnode, ForkNumber fork, BlockNumber *nblocks);

#endif							/* AURORA_PAGE_READER_H */
