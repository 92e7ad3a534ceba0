/*
 * truncation.h - apply a truncation history to a segment and its page
 * store (truncation.c); used by the request handler and by gossip.
 */
#ifndef AURORA_NODE_TRUNCATION_H
#define AURORA_NODE_TRUNCATION_H

#include <stddef.h>

#include "segment.h"

struct aurora_pageservice;
struct aurora_start_states;

/*
 * aurora_segment_truncate, then the page store's cut, then
 * aurora_segment_truncate_done: on AURORA_SEG_OK the segment is open at
 * the history's last epoch, everything from res->cut_lsn on gone from the
 * log, the page store and the start states, durably.  Errors are
 * aurora_segment_truncate's (and IO).  pages and states may be NULL.
 */
int			aurora_truncation_apply(struct aurora_segment *seg, struct aurora_pageservice *pages,
									struct aurora_start_states *states,
									const aurora_trunc_entry *hist, int n,
									aurora_segment_truncation *res, char *err, size_t errlen);

#endif
