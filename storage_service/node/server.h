/*
 * server.h - the storage node's listener.
 *
 * Accepts connections from computes, tools and peer nodes, serves each one
 * with its own thread, hands every request to the handler (handler.h) and
 * sends the reply back (PROTOCOL.md 1).
 */
#ifndef AURORA_NODE_SERVER_H
#define AURORA_NODE_SERVER_H

#include <stddef.h>

#include "handler.h"

/*
 * Connections served at once; more are closed as they arrive.  A compute
 * holds one per PG the node stores plus one per backend that reads pages,
 * so this is far above what a node needs and only bounds a runaway client.
 */
#define AURORA_SERVER_MAX_CONNECTIONS	1024
/* upper bound of handler->page_threads (page requests, server.c) */
#define AURORA_SERVER_MAX_PAGE_THREADS	64
/*
 * Page requests queued or running at once; more are refused (UNAVAILABLE)
 * so that a burst of reads cannot pile up without bound behind the page
 * threads.
 */
#define AURORA_SERVER_MAX_PAGE_QUEUED	32
/* how often waiting page requests are looked at again */
#define AURORA_SERVER_PAGE_RECHECK_MS	2
/*
 * Slack above header + max body before a message is refused.  Messages up
 * to the limit plus this slack still reach the decoder and get a TOO_LARGE
 * reply; anything bigger closes the connection without a reply, because
 * the node does not read a message that long.
 */
#define AURORA_SERVER_RECV_SLACK	4096

typedef struct aurora_server aurora_server;

/*
 * Listen on url and start serving with handler (which must outlive the
 * server).  Returns 0 or -1 with a message in err.
 */
int			aurora_server_start(const char *url, aurora_handler *handler,
								aurora_server **out, char *err, size_t errlen);

/* Stop accepting, close every connection (appends written are synced), free. */
void		aurora_server_stop(aurora_server *srv);

#endif
