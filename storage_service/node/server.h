/*
 * server.h - the storage node's NNG rep0 listener.
 *
 * Owns the socket and a fixed pool of worker contexts; each request is
 * handed to the handler (handler.h) and its reply sent back.  The pool size
 * bounds how many requests are processed at once; NNG queues the rest.
 */
#ifndef AURORA_NODE_SERVER_H
#define AURORA_NODE_SERVER_H

#include <stddef.h>

#include "handler.h"

/*
 * A worker whose append waits for its sync is parked, not free to receive:
 * the pool must cover a compute's ship window (8 batches) for each PG the
 * node holds, plus gossip and probes, or a batch would wait in NNG's queue
 * for a whole sync round before anyone reads it.
 */
#define AURORA_SERVER_WORKERS	64
/* threads making appends durable; one segment's fdatasync each at a time */
#define AURORA_SERVER_SYNCERS	4
/* upper bound of handler->page_threads (page requests, server.c) */
#define AURORA_SERVER_MAX_PAGE_THREADS	64
/*
 * Page requests queued or running at once; more are refused (UNAVAILABLE)
 * so that waiting page requests can never take every worker and stall the
 * appends the node must keep acknowledging.
 */
#define AURORA_SERVER_MAX_PAGE_QUEUED	(AURORA_SERVER_WORKERS / 2)
/* how often waiting page requests are looked at again */
#define AURORA_SERVER_PAGE_RECHECK_MS	2
/*
 * Slack above header + max body before NNG refuses a message.  Messages up
 * to the limit plus this slack still reach the decoder and get a TOO_LARGE
 * reply; anything bigger makes NNG drop the connection without a reply,
 * because it stops reading before the message is complete.
 */
#define AURORA_SERVER_RECV_SLACK	4096

typedef struct aurora_server aurora_server;

/*
 * Listen on url and start serving with handler (which must outlive the
 * server).  Returns 0 or -1 with a message in err.
 */
int			aurora_server_start(const char *url, aurora_handler *handler,
								aurora_server **out, char *err, size_t errlen);

/* Stop accepting, finish in-flight callbacks, close and free. */
void		aurora_server_stop(aurora_server *srv);

#endif
