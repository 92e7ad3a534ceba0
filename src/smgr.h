/*
 * smgr.h
 *	  The aurora storage manager (smgr.c): permanent relations live in the
 *	  storage service.
 */
#ifndef AURORA_SMGR_H
#define AURORA_SMGR_H

#include "storage/buf_internals.h"

extern bool aurora_storage_manager;
extern int	aurora_relsize_cache_entries;
extern int	aurora_lwlsn_cache_entries;
extern int	aurora_eviction_wait_ms;

extern void aurora_smgr_define_gucs(void);
extern void aurora_smgr_init(void);
extern void aurora_smgr_count_read(uint64 us, int retries);
extern void aurora_smgr_janitor(void);

#endif							/* AURORA_SMGR_H */
