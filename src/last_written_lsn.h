/*
 * last_written_lsn.h
 *	  The compute's shared cache of each block's last-written LSN
 *	  (last_written_lsn.c), for the storage manager (smgr.c).
 */
#ifndef AURORA_LAST_WRITTEN_LSN_H
#define AURORA_LAST_WRITTEN_LSN_H

#include "access/xlogdefs.h"
#include "storage/buf_internals.h"

extern int	aurora_lwlsn_cache_entries;

extern void aurora_lwlsn_define_gucs(void);
extern void aurora_lwlsn_init(void);

/* Remember a block's LSN to read it at (InvalidXLogRecPtr: its read point). */
extern void aurora_lwlsn_set(const BufferTag *tag, XLogRecPtr lsn);

/* The block's remembered LSN; InvalidXLogRecPtr when none is. */
extern XLogRecPtr aurora_lwlsn_get(const BufferTag *tag);

/* Forget the last-written LSNs of a fork's blocks from "from" on. */
extern void aurora_lwlsn_forget_from(RelFileNode rnode, ForkNumber fork, BlockNumber from);

#endif							/* AURORA_LAST_WRITTEN_LSN_H */
