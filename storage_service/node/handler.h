/*
 * handler.h - the storage node's request dispatcher, independent of NNG.
 *
 * server.c moves bytes; this module turns one request's bytes into one
 * reply's bytes and keeps the request/error counters that STATUS reports.
 * Keeping it transport-free lets the unit tests drive it directly and lets
 * later issues add message types without touching the socket code.
 */
#ifndef AURORA_NODE_HANDLER_H
#define AURORA_NODE_HANDLER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logmsg.h"
#include "wire.h"

struct aurora_segment_table;
struct aurora_segment;
struct aurora_pageservice;
struct aurora_start_states;

/* Every reply the handler produces fits in this many bytes. */
#define AURORA_HANDLER_REPLY_MAX	(AURORA_HEADER_SIZE + AURORA_ERROR_BODY_MAX)

typedef struct aurora_handler
{
	char		node_id[AURORA_NODE_ID_MAX + 1];
	char		az[AURORA_AZ_MAX + 1];
	uint32_t	max_body;
	uint32_t	pid;
	uint64_t	started_ms;		/* CLOCK_MONOTONIC, for uptime */
	/* Updated concurrently by the server's worker contexts. */
	atomic_uint_least64_t requests_total;
	atomic_uint_least64_t errors_total;
	atomic_uint_least64_t errors_by_code[AURORA_ERR_COUNT];
	struct aurora_segment_table *store; /* NULL: no segments (tests of the codec path) */
	struct aurora_pageservice *pages;	/* NULL: page requests are UNAVAILABLE */
	int			page_threads;	/* the server's page threads (default 4) */
	struct aurora_start_states *start_states;	/* NULL: start state requests are UNAVAILABLE */
} aurora_handler;

/* A reply of any size, malloc'd by the handler; the server frees it. */
typedef struct aurora_reply
{
	uint8_t    *data;
	size_t		len;
} aurora_reply;

/*
 * A request whose reply cannot be built in the receiving callback.
 *
 * APPEND: a LOG_APPEND whose records are written but not yet durable.  The
 * reply (LOG_ACK) may only be sent after a sync covering the write; the
 * server queues it for its syncer thread, which syncs once for every append
 * queued meanwhile (group commit) and then calls
 * aurora_handler_finish_append().
 *
 * PAGE: a page service request (GETPAGE_REQ, REL_SIZE_REQ, SEED_PAGES),
 * which may wait for the log or run redo: the server hands it to a page
 * thread, which calls aurora_handler_finish_page().  request is a malloc'd
 * copy of the message (the finish call frees it).
 */
#define AURORA_DEFERRED_APPEND	0
#define AURORA_DEFERRED_PAGE	1

typedef struct aurora_deferred_ack
{
	int			kind;			/* AURORA_DEFERRED_* */
	aurora_header req;
	struct aurora_segment *segment;
	uint32_t	n_new;
	uint32_t	n_duplicate;
	uint8_t    *request;		/* PAGE only */
	size_t		request_len;
	bool		page_started;	/* PAGE: tried once; the wait ends at: */
	uint64_t	page_deadline_ms;	/* CLOCK_MONOTONIC */
} aurora_deferred_ack;

void		aurora_handler_init(aurora_handler *h, const char *node_id, const char *az,
								uint32_t max_body);

/*
 * Handle one request and write the reply into out (cap must be at least
 * AURORA_HANDLER_REPLY_MAX).  Always produces a reply: bad input yields an
 * ERROR reply and bumps the error counters.  Returns the reply length.
 */
size_t		aurora_handler_handle(aurora_handler *h, const uint8_t *req, size_t len,
								  uint8_t *out, size_t cap);

/* Serve segments from store (which must outlive the handler). */
void		aurora_handler_set_store(aurora_handler *h, struct aurora_segment_table *store);

/* Serve page requests with pages (which must outlive the handler). */
void		aurora_handler_set_pages(aurora_handler *h, struct aurora_pageservice *pages);

/* Serve start state requests from ss (which must outlive the handler). */
void		aurora_handler_set_start_states(aurora_handler *h, struct aurora_start_states *ss);

/*
 * Handle one request.  Returns false with *reply set (possibly an ERROR),
 * or true when the request is deferred (a LOG_APPEND waiting for
 * durability, or a page request for a page thread): then *deferred
 * describes it and no reply exists yet.  A NULL reply->data after
 * false means memory ran out; the request is dropped and the client times
 * out.
 */
bool		aurora_handler_dispatch(aurora_handler *h, const uint8_t *req, size_t len,
									aurora_reply *reply, aurora_deferred_ack *deferred);

/*
 * Build the reply of a deferred append once a sync has completed:
 * sync_error is NULL after a successful sync, or the reason it failed
 * (the reply is then an IO error and the client must not count the ack).
 */
void		aurora_handler_finish_append(aurora_handler *h, const aurora_deferred_ack *d,
										 const char *sync_error, aurora_reply *reply);

/*
 * Run a deferred page request (may block: wait for the log, redo) and build
 * its reply; frees d->request.
 */
void		aurora_handler_finish_page(aurora_handler *h, aurora_deferred_ack *d,
									   aurora_reply *reply);

/*
 * Try a deferred page request without waiting for the log: true with
 * *reply built (d->request freed), or false when it must wait for the log
 * or the indexer and its wait_ms has not passed (call again later).
 */
bool		aurora_handler_try_page(aurora_handler *h, aurora_deferred_ack *d,
									aurora_reply *reply);

/*
 * Refuse a deferred page request without running it (the server has too
 * many queued): an UNAVAILABLE reply saying so; frees d->request.
 */
void		aurora_handler_refuse_page(aurora_handler *h, aurora_deferred_ack *d,
									   const char *why, aurora_reply *reply);

/* Current counters and identity as a STATUS_RESP body. */
void		aurora_handler_status(aurora_handler *h, aurora_status_body *s);

#endif
