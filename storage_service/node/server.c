/*
 * server.c - the storage node's listener (server.h): accepts connections on
 * an NNG stream listener and serves each one with its own thread.
 *
 * A connection's thread reads a message, hands it to the handler (handler.h)
 * and sends the reply itself, so a request crosses no other thread of the
 * node: NNG's poller wakes the connection's thread, and the reply is
 * written by it.  Every message of one connection is handled in order.
 *
 * A LOG_APPEND is acknowledged only once its records are durable.  The
 * handler writes the records without syncing; the thread keeps reading
 * while more messages are already buffered, then makes everything it wrote
 * durable with one fdatasync per segment (group commit: batches that
 * arrived together share a sync) and sends their LOG_ACKs in order.  A
 * compute writes each PG over its own connection, so the syncs of
 * different segments run in different threads and overlap.
 *
 * Page requests (GETPAGE_REQ, REL_SIZE_REQ, SEED_PAGES) may wait for the
 * log to arrive or run WAL redo: the connection's thread queues them on a
 * FIFO that a small pool of page threads (handler->page_threads) serves and
 * goes on reading, so a slow page never holds up the appends behind it.
 * Their replies may therefore overtake earlier ones; clients match replies
 * by request_id.  A request whose LSN the segment has not reached yet does
 * not hold a page thread either: it goes on a waiting list that the page
 * threads look at again every few milliseconds until it can be answered or
 * its wait_ms is over.
 */
#define _POSIX_C_SOURCE 200809L

#include "server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "link.h"
#include "log.h"
#include "segment_table.h"
#include "util.h"

/* Appends collected from one connection before they are synced and acked. */
#define APPEND_BATCH_MAX	64
/* A client that stops reading its replies for this long is disconnected. */
#define REPLY_SEND_TIMEOUT_MS	10000

typedef struct conn
{
	struct aurora_server *srv;
	aurora_link *link;
	bool		thread_done;	/* its thread has finished; under srv->mtx */
	int			page_refs;		/* its page requests queued or running; ditto */
	struct conn *next;
} conn;

typedef struct page_req
{
	conn	   *c;				/* the reply goes back on this connection */
	aurora_deferred_ack deferred;
	struct page_req *next;
} page_req;

struct aurora_server
{
	nng_stream_listener *listener;
	aurora_handler *handler;
	size_t		recv_max;		/* longest message accepted */
	atomic_bool stopping;
	pthread_t	acceptor;
	bool		acceptor_started;

	pthread_mutex_t mtx;
	pthread_cond_t conns_cv;	/* a connection's thread finished or it was freed */
	conn	   *conns;
	int			n_conns;		/* in conns: open, or still referenced */
	int			n_conn_threads; /* connection threads still running */
	bool		refused_logged;

	/* page requests: FIFO served by page threads */
	pthread_t	page_threads[AURORA_SERVER_MAX_PAGE_THREADS];
	int			n_page_threads;
	pthread_cond_t page_cv;
	page_req   *page_head;
	page_req   *page_tail;
	page_req   *page_waiting;	/* tried, waiting for the log: looked at again */
	uint64_t	page_recheck_ms;	/* ... at this CLOCK_MONOTONIC time */
	int			page_queued;	/* queued, waiting or running */
	bool		page_exit;
};


/* Send reply (consumed) on c; a reply that cannot be sent is dropped. */
static void
send_reply(conn *c, aurora_reply *reply)
{
	/* Without memory for a reply the request is dropped; the client times out. */
	if (reply->data == NULL)
		return;
	(void) aurora_link_send(c->link, reply->data, reply->len, REPLY_SEND_TIMEOUT_MS);
	free(reply->data);
	reply->data = NULL;
}

/* Free c once its thread and its page requests are done; srv->mtx held. */
static void
release_conn_locked(aurora_server *srv, conn *c)
{
	conn	  **link;

	if (!c->thread_done || c->page_refs > 0)
		return;
	for (link = &srv->conns; *link != NULL; link = &(*link)->next)
		if (*link == c)
		{
			*link = c->next;
			break;
		}
	srv->n_conns--;
	aurora_link_free(c->link);
	free(c);
	pthread_cond_broadcast(&srv->conns_cv);
}

static void
park_page(aurora_server *srv, conn *c, const aurora_deferred_ack *d)
{
	page_req   *p = NULL;

	pthread_mutex_lock(&srv->mtx);
	if (srv->page_queued >= AURORA_SERVER_MAX_PAGE_QUEUED ||
		(p = malloc(sizeof(*p))) == NULL)
	{
		aurora_reply reply;
		aurora_deferred_ack refused = *d;
		char		why[128];

		pthread_mutex_unlock(&srv->mtx);
		if (p == NULL && srv->page_queued < AURORA_SERVER_MAX_PAGE_QUEUED)
			snprintf(why, sizeof(why), "this node is out of memory; retry");
		else
			snprintf(why, sizeof(why), "this node is busy: %d page requests are queued or running; retry",
					 AURORA_SERVER_MAX_PAGE_QUEUED);
		aurora_handler_refuse_page(srv->handler, &refused, why, &reply);
		send_reply(c, &reply);
		return;
	}
	srv->page_queued++;
	c->page_refs++;
	p->c = c;
	p->deferred = *d;
	p->next = NULL;
	if (srv->page_tail != NULL)
		srv->page_tail->next = p;
	else
		srv->page_head = p;
	srv->page_tail = p;
	pthread_cond_signal(&srv->page_cv);
	pthread_mutex_unlock(&srv->mtx);
}

/*
 * Try one page request: answer it, or put it on the waiting list (it needs
 * log records or indexing that are not there yet) without holding a thread.
 */
static void
page_try(aurora_server *srv, page_req *p)
{
	aurora_reply reply;

	if (!aurora_handler_try_page(srv->handler, &p->deferred, &reply))
	{
		pthread_mutex_lock(&srv->mtx);
		if (srv->page_waiting == NULL)
			srv->page_recheck_ms = (uint64_t) aurora_monotonic_ms() + AURORA_SERVER_PAGE_RECHECK_MS;
		p->next = srv->page_waiting;
		srv->page_waiting = p;
		pthread_mutex_unlock(&srv->mtx);
		return;
	}
	send_reply(p->c, &reply);
	pthread_mutex_lock(&srv->mtx);
	srv->page_queued--;
	p->c->page_refs--;
	release_conn_locked(srv, p->c);
	pthread_mutex_unlock(&srv->mtx);
	free(p);
}

static void *
page_thread_main(void *arg)
{
	aurora_server *srv = arg;

	for (;;)
	{
		page_req   *p = NULL;
		page_req   *waiting = NULL;

		pthread_mutex_lock(&srv->mtx);
		for (;;)
		{
			uint64_t	now;

			if (srv->page_head != NULL)
			{
				p = srv->page_head;
				srv->page_head = p->next;
				if (srv->page_head == NULL)
					srv->page_tail = NULL;
				break;
			}
			if (srv->page_waiting == NULL)
			{
				if (srv->page_exit)
					break;		/* exiting with nothing queued or waiting */
				pthread_cond_wait(&srv->page_cv, &srv->mtx);
				continue;
			}
			now = (uint64_t) aurora_monotonic_ms();
			if (now >= srv->page_recheck_ms)
			{
				/* this thread looks at every waiting request once */
				waiting = srv->page_waiting;
				srv->page_waiting = NULL;
				break;
			}
			{
				struct timespec ts;
				uint64_t	ms = srv->page_recheck_ms - now;

				clock_gettime(CLOCK_REALTIME, &ts);
				aurora_timespec_add_ms(&ts, ms);
				pthread_cond_timedwait(&srv->page_cv, &srv->mtx, &ts);
			}
		}
		pthread_mutex_unlock(&srv->mtx);
		if (p == NULL && waiting == NULL)
			break;
		if (p != NULL)
			page_try(srv, p);
		while (waiting != NULL)
		{
			page_req   *x = waiting;

			waiting = x->next;
			page_try(srv, x);
		}
	}
	return NULL;
}

/*
 * Make the appends a connection collected durable, one sync per segment
 * they touched, then acknowledge them in the order they came.
 */
static void
finish_appends(aurora_server *srv, conn *c, aurora_deferred_ack *appends, int n)
{
	struct aurora_segment *segs[APPEND_BATCH_MAX];
	bool		failed[APPEND_BATCH_MAX];
	char		errs[APPEND_BATCH_MAX][256];
	int			n_segs = 0;
	int			i,
				k;

	for (i = 0; i < n; i++)
	{
		struct aurora_segment *seg = appends[i].segment;

		if (seg == NULL)
			continue;
		for (k = 0; k < n_segs && segs[k] != seg; k++)
			;
		if (k < n_segs)
			continue;
		segs[n_segs] = seg;
		failed[n_segs] = aurora_segment_sync(seg, errs[n_segs], sizeof(errs[n_segs])) != AURORA_SEG_OK;
		n_segs++;
	}
	for (i = 0; i < n; i++)
	{
		const char *sync_error = NULL;
		aurora_reply reply;

		for (k = 0; k < n_segs; k++)
			if (segs[k] == appends[i].segment && failed[k])
				sync_error = errs[k];
		aurora_handler_finish_append(srv->handler, &appends[i], sync_error, &reply);
		send_reply(c, &reply);
	}
	/* after the acks: zero-fill ahead so the next syncs write data only */
	for (k = 0; k < n_segs; k++)
	{
		char		err[256];

		if (!failed[k] && aurora_segment_preallocate(segs[k], err, sizeof(err)) != AURORA_SEG_OK)
			aurora_log("%s", err);
	}
}

static void *
conn_main(void *arg)
{
	conn	   *c = arg;
	aurora_server *srv = c->srv;
	aurora_deferred_ack appends[APPEND_BATCH_MAX];
	int			n_appends = 0;

	for (;;)
	{
		const uint8_t *msg;
		size_t		len;
		aurora_reply reply;
		aurora_deferred_ack d;
		int			rv;

		rv = aurora_link_recv(c->link, srv->recv_max, AURORA_LINK_FOREVER, &msg, &len);
		if (rv == NNG_EMSGSIZE)
			aurora_log("closing a connection: its next message is longer than the %zu bytes this node accepts",
					   srv->recv_max);
		if (rv != 0)
			break;
		if (!aurora_handler_dispatch(srv->handler, msg, len, &reply, &d))
			send_reply(c, &reply);
		else if (d.kind == AURORA_DEFERRED_PAGE)
			park_page(srv, c, &d);
		else
			appends[n_appends++] = d;
		/* more already here: their appends share the coming sync */
		if (n_appends > 0 &&
			(n_appends == APPEND_BATCH_MAX || !aurora_link_buffered(c->link)))
		{
			finish_appends(srv, c, appends, n_appends);
			n_appends = 0;
		}
	}
	/* written records are synced even if nobody hears the acks */
	if (n_appends > 0)
		finish_appends(srv, c, appends, n_appends);
	aurora_link_shutdown(c->link);

	pthread_mutex_lock(&srv->mtx);
	c->thread_done = true;
	srv->n_conn_threads--;
	release_conn_locked(srv, c);
	pthread_cond_broadcast(&srv->conns_cv);
	pthread_mutex_unlock(&srv->mtx);
	return NULL;
}

/* Serve s with a new connection thread (or close it: too many, stopping). */
static void
serve(aurora_server *srv, nng_stream *s)
{
	conn	   *c;
	pthread_attr_t attr;
	pthread_t	thread;
	bool		started;

	pthread_mutex_lock(&srv->mtx);
	if (atomic_load(&srv->stopping) || srv->n_conns >= AURORA_SERVER_MAX_CONNECTIONS)
	{
		if (!atomic_load(&srv->stopping) && !srv->refused_logged)
		{
			aurora_log("refusing connections: %d are open, the most this node serves", srv->n_conns);
			srv->refused_logged = true;
		}
		pthread_mutex_unlock(&srv->mtx);
		nng_stream_free(s);
		return;
	}
	srv->refused_logged = false;
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->link = aurora_link_wrap(s)) == NULL)
	{
		pthread_mutex_unlock(&srv->mtx);
		free(c);
		nng_stream_free(s);
		return;
	}
	c->srv = srv;
	c->next = srv->conns;
	srv->conns = c;
	srv->n_conns++;
	srv->n_conn_threads++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	started = pthread_create(&thread, &attr, conn_main, c) == 0;
	pthread_attr_destroy(&attr);
	if (!started)
	{
		aurora_log("cannot start a thread for a new connection; closing it");
		srv->n_conn_threads--;
		c->thread_done = true;
		release_conn_locked(srv, c);
	}
	pthread_mutex_unlock(&srv->mtx);
}

static void *
acceptor_main(void *arg)
{
	aurora_server *srv = arg;
	nng_aio    *aio;

	if (nng_aio_alloc(&aio, NULL, NULL) != 0)
	{
		aurora_log("cannot allocate the listener's aio: no connection will be accepted");
		return NULL;
	}
	while (!atomic_load(&srv->stopping))
	{
		int			rv;

		nng_stream_listener_accept(srv->listener, aio);
		nng_aio_wait(aio);
		rv = nng_aio_result(aio);
		if (rv == 0)
			serve(srv, nng_aio_get_output(aio, 0));
		else if (rv == NNG_ECLOSED || atomic_load(&srv->stopping))
			break;
		else
			nng_msleep(10);		/* out of descriptors or memory: a moment's pause */
	}
	nng_aio_free(aio);
	return NULL;
}

int
aurora_server_start(const char *url, aurora_handler *handler,
					aurora_server **out, char *err, size_t errlen)
{
	aurora_server *srv;
	int			rv;
	int			i;

	*out = NULL;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv->handler = handler;
	srv->recv_max = (size_t) handler->max_body + AURORA_HEADER_SIZE + AURORA_SERVER_RECV_SLACK;
	atomic_init(&srv->stopping, false);
	pthread_mutex_init(&srv->mtx, NULL);
	pthread_cond_init(&srv->conns_cv, NULL);
	pthread_cond_init(&srv->page_cv, NULL);

	for (i = 0; i < handler->page_threads && i < AURORA_SERVER_MAX_PAGE_THREADS; i++)
	{
		if (pthread_create(&srv->page_threads[i], NULL, page_thread_main, srv) != 0)
		{
			snprintf(err, errlen, "cannot start the page threads");
			goto fail;
		}
		srv->n_page_threads = i + 1;
	}

	if ((rv = nng_stream_listener_alloc(&srv->listener, url)) != 0 ||
		(rv = nng_stream_listener_listen(srv->listener)) != 0)
	{
		snprintf(err, errlen, "cannot listen on %s: %s", url, nng_strerror(rv));
		goto fail;
	}
	if (pthread_create(&srv->acceptor, NULL, acceptor_main, srv) != 0)
	{
		snprintf(err, errlen, "cannot start the listener thread");
		goto fail;
	}
	srv->acceptor_started = true;
	*out = srv;
	return 0;

fail:
	aurora_server_stop(srv);
	return -1;
}

void
aurora_server_stop(aurora_server *srv)
{
	int			i;

	if (srv == NULL)
		return;
	atomic_store(&srv->stopping, true);

	/* no new connections */
	if (srv->listener != NULL)
		nng_stream_listener_close(srv->listener);
	if (srv->acceptor_started)
		pthread_join(srv->acceptor, NULL);

	/*
	 * Close every connection: its thread stops reading, syncs and acks what
	 * it had written (the acks may no longer arrive) and ends.
	 */
	pthread_mutex_lock(&srv->mtx);
	for (conn *c = srv->conns; c != NULL; c = c->next)
		aurora_link_shutdown(c->link);
	while (srv->n_conn_threads > 0)
		pthread_cond_wait(&srv->conns_cv, &srv->mtx);
	pthread_mutex_unlock(&srv->mtx);

	/* page requests queued or running finish (their waits are bounded) */
	if (srv->n_page_threads > 0)
	{
		pthread_mutex_lock(&srv->mtx);
		srv->page_exit = true;
		pthread_cond_broadcast(&srv->page_cv);
		pthread_mutex_unlock(&srv->mtx);
		for (i = 0; i < srv->n_page_threads; i++)
			pthread_join(srv->page_threads[i], NULL);
	}

	/* with their threads and page requests done, every connection is freed */
	pthread_mutex_lock(&srv->mtx);
	while (srv->conns != NULL)
		pthread_cond_wait(&srv->conns_cv, &srv->mtx);
	pthread_mutex_unlock(&srv->mtx);

	if (srv->listener != NULL)
		nng_stream_listener_free(srv->listener);
	pthread_mutex_destroy(&srv->mtx);
	pthread_cond_destroy(&srv->conns_cv);
	pthread_cond_destroy(&srv->page_cv);
	free(srv);
}
