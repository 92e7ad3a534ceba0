/*
 * pageservice.h - the storage node's page service (docs/architecture.md,
 * "The storage node", "A read's path"): a background indexer that feeds
 * each segment's log into its page store (indexer.c), background coalescing
 * of long record chains (coalesce.c), and the page requests (GETPAGE,
 * REL_SIZE, SEED_PAGES) that page threads run for the server
 * (pageservice.c).
 *
 * One object per node.  It finds segments through the store (segments with
 * a volume geometry only: synthetic ones carry no envelopes) and keeps one
 * page store (pagestore.h) per segment in <segment dir>/pages.  Records are
 * read back through the segment module and rebuilt into pages by the
 * WAL-redo helper pool (redo.h); nothing here parses WAL.
 *
 * Requests may wait (bounded) for the segment's SCL and the indexer, and
 * may run redo: callers must not be NNG callback threads (server.c hands
 * them to its page threads).
 */
#ifndef AURORA_NODE_PAGESERVICE_H
#define AURORA_NODE_PAGESERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logmsg.h"
#include "pagemsg.h"
#include "wire.h"

struct aurora_segment_table;
struct aurora_segment;

typedef struct aurora_pageservice aurora_pageservice;

typedef struct aurora_pageservice_config
{
	const char *walredo_postgres;	/* NULL or "": no redo (pages with records fail) */
	int			walredo_helpers;
	int			walredo_timeout_ms;
	uint32_t	coalesce_threshold; /* records after a block's base; 0 = never */
	/* indexer idle poll, ms (how soon new records are indexed when nobody waits) */
	uint32_t	poll_ms;
	/* least ms between index commits of a busy segment; 0 = the default (1000) */
	uint32_t	index_interval_ms;
} aurora_pageservice_config;

/* Start the indexer (and coalescer) thread.  Returns 0 or -1 with err. */
int			aurora_pageservice_start(struct aurora_segment_table *store,
									 const aurora_pageservice_config *cfg,
									 aurora_pageservice **out, char *err, size_t errlen);

/*
 * Begin shutting down: the indexer stops and requests waiting for the log
 * give up (NOT_READY) at once, so the server's page threads can finish.
 */
void		aurora_pageservice_interrupt(aurora_pageservice *ps);

/* Stop the thread, close every page store.  No request may be running. */
void		aurora_pageservice_stop(aurora_pageservice *ps);

/*
 * The outcome of a request: code 0 with the reply body in body/len
 * (malloc'd; the caller frees) and its message type, or an AURORA_ERR_*
 * code with message.
 */
typedef struct aurora_page_result
{
	uint32_t	code;
	uint16_t	type;
	uint8_t    *body;
	size_t		len;
	char		message[AURORA_ERROR_MESSAGE_MAX + 1];
} aurora_page_result;

/*
 * Without waiting: whether a GETPAGE of block, or a REL_SIZE of its fork
 * (whole_fork), at lsn can be answered now (0), must wait for the log or
 * the indexer (AURORA_PAGE_WAIT; the indexer is hurried), or fails (an
 * AURORA_ERR_* code with res set).  Lets the server keep waiting requests
 * off its page threads.  A request at an LSN the index does not cover yet
 * is answered from the index when no record after the last index commit
 * changes what it reads (the block, or the fork's size); only otherwise
 * does it wait for an index commit.
 */
#define AURORA_PAGE_WAIT	0xffffu
uint32_t	aurora_pageservice_ready(aurora_pageservice *ps, struct aurora_segment *seg,
									 uint64_t lsn, const aurora_block_ref *block,
									 bool whole_fork, aurora_page_result *res);

/* The requests; wait_ms 0 answers NOT_READY at once if not ready. */
void		aurora_pageservice_getpage(aurora_pageservice *ps, struct aurora_segment *seg,
									   const aurora_getpage_req *req, aurora_page_result *res);
void		aurora_pageservice_rel_size(aurora_pageservice *ps, struct aurora_segment *seg,
										const aurora_rel_size_req *req, aurora_page_result *res);
/* SEED_PAGES (epochs already checked by the caller). */
void		aurora_pageservice_seed(aurora_pageservice *ps, struct aurora_segment *seg,
									uint64_t lsn, const aurora_seed_page *pages, int n,
									aurora_page_result *res);

/*
 * Refuse a LOG_APPEND whose payloads do not carry a valid envelope (for a
 * segment with geometry).  Returns true if all decode; else false with the
 * first bad record's LSN and the reason in err.
 */
bool		aurora_pageservice_check_envelopes(const aurora_log_record *recs, int n,
											   char *err, size_t errlen);

typedef struct aurora_pageservice_stats
{
	bool		redo_configured;
	uint32_t	coalesce_threshold;
	uint64_t	records_indexed;
	uint64_t	getpage_requests;
	uint64_t	pages_seeded;
	uint64_t	images_written;
	uint64_t	records_applied;
	uint64_t	redo_failures;
	uint64_t	index_errors;
	/* background work not done yet, as of the indexer's last loop */
	uint64_t	index_backlog_bytes;	/* log bytes below SCL not indexed */
	uint64_t	coalesce_backlog;	/* blocks waiting for a coalescing look */
} aurora_pageservice_stats;

void		aurora_pageservice_get_stats(aurora_pageservice *ps, aurora_pageservice_stats *out);

/* LSN of the segment's seeded base images (0: none, or no page store). */
uint64_t	aurora_pageservice_seeded_lsn(aurora_pageservice *ps, struct aurora_segment *seg);

/* Per segment: how far its log is indexed and how many images it holds. */
void		aurora_pageservice_segment_stats(aurora_pageservice *ps, struct aurora_segment *seg,
											 uint64_t *indexed_lsn, uint64_t *images);

/*
 * A truncation cut seg's log (segment.h, aurora_segment_truncate): drop
 * everything the page store derived from records that are gone (record
 * entries, images, sizes above the log's new chain end) and move the
 * indexer back, synchronized with the background thread.  0, or -1 with
 * err.  ps may be NULL (no page service: nothing to do).
 */
int			aurora_pageservice_truncate(aurora_pageservice *ps, struct aurora_segment *seg,
										char *err, size_t errlen);

#endif							/* AURORA_NODE_PAGESERVICE_H */
