/*
 * local_wal.h
 *	  A surviving data directory's own WAL as a cache (local_wal.c): on a
 *	  restart over it, the WAL from the checkpoint's redo point up to a point
 *	  the volume made durable is taken from pg_wal instead of being read
 *	  back from storage, once every record of it checks out.
 */
#ifndef COMPUTE_INIT_LOCAL_WAL_H
#define COMPUTE_INIT_LOCAL_WAL_H

#include "postgres_fe.h"

#include "access/xlogdefs.h"

#include "wal_write.h"			/* WalTarget */

/*
 * The LSN DATADIR/aurora_durable names (AURORA_DURABLE_FILE: a VDL the
 * compute's shipper reached, rewritten as VDL advances), or
 * InvalidXLogRecPtr when there is none or it does not parse.  Everything
 * below it in this directory's WAL is durable in the volume, byte for byte:
 * whoever wrote WAL here later started at a VDL at or above it, and
 * aurora-compute-init writes only storage's own WAL below VDL.
 */
extern XLogRecPtr local_wal_durable_lsn(const char *datadir);

/*
 * Check the WAL in pgwal from redo (a record's start) up to upto (a record's
 * end): every segment file is there, every page header belongs to t and to
 * its address, every record follows the one before (xl_prev) and has its CRC,
 * and the last ends exactly at upto.  Returns 0 with the last record's start,
 * the records and their bytes; or -1 with err saying what did not check out.
 */
extern int	local_wal_verify(const char *pgwal, const WalTarget *t, XLogRecPtr redo,
							 XLogRecPtr upto, XLogRecPtr *last_start, int *records,
							 uint64 *bytes, char *err, size_t errlen);

#endif							/* COMPUTE_INIT_LOCAL_WAL_H */
