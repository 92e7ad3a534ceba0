/*
 * truncation.c - applying a truncation to one segment of this node: the
 * log (segment_truncate.c) and what the page service derived from it
 * (pageservice.h), in the order that keeps a crash safe (PROTOCOL.md 9).
 * The one path for both a TRUNCATE_REQ (handler.c) and a truncation gossip
 * learns from a peer (gossip.c).
 */
#include "truncation.h"

#include "pageservice.h"
#include "segment.h"
#include "start_state.h"

int
aurora_truncation_apply(struct aurora_segment *seg, struct aurora_pageservice *pages,
						struct aurora_start_states *states,
						const aurora_trunc_entry *hist, int n, aurora_segment_truncation *res,
						char *err, size_t errlen)
{
	aurora_segment_meta meta;
	int			rc;

	rc = aurora_segment_truncate(seg, hist, n, res, err, errlen);
	if (rc != AURORA_SEG_OK)
		return rc;
	/*
	 * Also for a repeat: a truncation interrupted by a crash may still be
	 * pending, and its repeat finishes it.
	 */
	aurora_segment_get_meta(seg, &meta);
	if (!meta.cut_pending)
		return AURORA_SEG_OK;
	if (aurora_pageservice_truncate(pages, seg, err, errlen) != 0)
		return AURORA_SEG_ERR_IO;
	/* a start state above the cut would name commits that are gone */
	if (states != NULL &&
		aurora_start_states_drop_above(states, seg, res->cut_lsn, err, errlen) != 0)
		return AURORA_SEG_ERR_IO;
	return aurora_segment_truncate_done(seg, err, errlen);
}
