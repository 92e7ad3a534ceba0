/*
 * commit_wait.h
 *	  The commit rule: commits, and the storage manager's evictions, wait
 *	  until the released VDL covers them (commit_wait.c).
 */
#ifndef AURORA_COMMIT_WAIT_H
#define AURORA_COMMIT_WAIT_H

#include "access/xlogdefs.h"

struct Latch;

extern void aurora_commit_wait_init(void);
extern void aurora_commit_wait_set_shipper(struct Latch *latch);
extern void aurora_commit_wait_release(XLogRecPtr vdl);
extern bool aurora_commit_wait_pending(void);
extern bool aurora_wake_shipper_and_wait_vdl_covers(XLogRecPtr lsn, int timeout_ms);

#endif							/* AURORA_COMMIT_WAIT_H */
