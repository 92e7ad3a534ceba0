/*
 * redo_filter.h
 *	  Recovery without page redo: the startup process skips records whose
 *	  only effect is on pages the storage service keeps (redo_filter.c).
 */
#ifndef AURORA_REDO_FILTER_H
#define AURORA_REDO_FILTER_H

extern void aurora_redo_filter_init(void);
extern void aurora_redo_filter_stats(uint64 *replayed, uint64 *skipped, uint64 *bytes_skipped);

#endif							/* AURORA_REDO_FILTER_H */
