/*
 * server.c - NNG rep0 transport for the storage node (server.h).
 *
 * Follows NNG's async "reqrep" demo: every worker owns a context and an aio
 * and cycles RECV -> handle -> SEND -> RECV inside the aio callback, so no
 * NNG thread ever blocks on the network or the disk.
 *
 * A LOG_APPEND is acknowledged only once its records are durable.  The
 * callback writes the records (without syncing) and parks the worker on the
 * syncers' queue.  A syncer takes the parked workers of one segment, makes
 * their records durable with one fdatasync (group commit: appends that
 * arrive together share a sync), then builds and sends each one's LOG_ACK;
 * the worker resumes receiving when its send completes.  A node holds the
 * segments of several PGs in separate files, and one batch of WAL often
 * touches several of them: with one syncer per segment in flight their
 * fdatasyncs overlap instead of queueing behind each other.
 *
 * Page requests (GETPAGE_REQ, REL_SIZE_REQ, SEED_PAGES) may wait for the
 * log to arrive or run WAL redo: the callback parks the worker on a FIFO
 * that a small pool of page threads (handler->page_threads) serves, so no
 * NNG thread waits.  A request whose LSN the segment has not reached yet
 * does not hold a page thread either: it goes on a waiting list that the
 * page threads look at again every few milliseconds until it can be
 * answered or its wait_ms is over.
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
#include <nng/protocol/reqrep0/rep.h>

#include "log.h"
#include "store.h"

enum worker_state
{
	WORKER_RECV,
	WORKER_SEND
};

typedef struct syncer_arg
{
	struct aurora_server *srv;
	int			index;
} syncer_arg;

typedef struct worker
{
	aurora_server *srv;
	enum worker_state state;
	nng_aio    *aio;
	nng_ctx		ctx;
	aurora_deferred_ack deferred;	/* valid while parked on the syncer */
	struct worker *next_parked;
} worker;

struct aurora_server
{
	nng_socket	sock;
	nng_listener listener;
	aurora_handler *handler;
	atomic_bool stopping;
	int			n_workers;
	worker		workers[AURORA_SERVER_WORKERS];

	/* group commit */
	pthread_t	syncers[AURORA_SERVER_SYNCERS];
	syncer_arg	syncer_args[AURORA_SERVER_SYNCERS];
	int			n_syncers;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	worker	   *parked;			/* LIFO of workers waiting for a sync */
	bool		syncer_exit;
	/* the segment each syncer works on (NULL: none); one syncer per segment */
	struct aurora_segment *claimed[AURORA_SERVER_SYNCERS];

	/* page requests: FIFO of parked workers, served by page threads */
	pthread_t	page_threads[AURORA_SERVER_MAX_PAGE_THREADS];
	int			n_page_threads;
	pthread_cond_t page_cv;
	worker	   *page_head;
	worker	   *page_tail;
	worker	   *page_waiting;	/* tried, waiting for the log: looked at again */
	uint64_t	page_recheck_ms;	/* ... at this CLOCK_MONOTONIC time */
	int			page_queued;	/* queued, waiting or running */
	bool		page_exit;
};


static void
worker_recv(worker *w)
{
	w->state = WORKER_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

/* Send reply (consumed) on w, or go back to receiving if there is none. */
static void
worker_send(worker *w, aurora_reply *reply)
{
	nng_msg    *rep;

	if (reply->data == NULL || nng_msg_alloc(&rep, 0) != 0)
	{
		/* Without memory for a reply the request is dropped; the client times out. */
		free(reply->data);
		worker_recv(w);
		return;
	}
	if (nng_msg_append(rep, reply->data, reply->len) != 0)
	{
		nng_msg_free(rep);
		free(reply->data);
		worker_recv(w);
		return;
	}
	free(reply->data);
	nng_aio_set_msg(w->aio, rep);
	w->state = WORKER_SEND;
	nng_ctx_send(w->ctx, w->aio);
}

static bool
claimed_by_other(aurora_server *srv, int self, struct aurora_segment *seg)
{
	for (int i = 0; i < srv->n_syncers; i++)
		if (i != self && seg != NULL && srv->claimed[i] == seg)
			return true;
	return false;
}

static void
park(aurora_server *srv, worker *w)
{
	pthread_mutex_lock(&srv->mtx);
	w->next_parked = srv->parked;
	srv->parked = w;
	/* a segment in sync now is taken up by its syncer's release (below) */
	if (!claimed_by_other(srv, -1, w->deferred.segment))
		pthread_cond_signal(&srv->cv);
	pthread_mutex_unlock(&srv->mtx);
}

/*
 * Take the parked workers of one segment that no other syncer works on (the
 * segment of the worker that has waited longest) and claim it; NULL once the
 * server stops with nothing parked.  Called with srv->mtx.
 *
 * Longest-waiting first: the list is last-in first, and taking its head
 * would let busy segments, whose workers are always the most recent, keep
 * every syncer while an append to a quiet segment waited round after round.
 *
 * One syncer per segment in fdatasync: a second one could only wait for the
 * first's sync before starting its own, and a busy segment (PG 0 takes
 * every commit) would soon hold every syncer so, while the other segments'
 * appends waited with nobody to sync them.  The claim ends when the sync
 * does, before the acks go out.
 */
static worker *
take_one_segment(aurora_server *srv, int self)
{
	worker	   *mine = NULL;
	worker	  **link;
	worker	   *pick;
	struct aurora_segment *seg;

	for (;;)
	{
		pick = NULL;
		for (worker *w = srv->parked; w != NULL; w = w->next_parked)
			if (!claimed_by_other(srv, self, w->deferred.segment))
				pick = w;		/* the last eligible one is the oldest */
		if (pick != NULL || (srv->parked == NULL && srv->syncer_exit))
			break;
		/* nothing parked, or only segments others work on: they wake us */
		pthread_cond_wait(&srv->cv, &srv->mtx);
	}
	if (pick == NULL)
		return NULL;
	seg = pick->deferred.segment;
	srv->claimed[self] = seg;
	link = &srv->parked;
	while (*link != NULL)
	{
		worker	   *w = *link;

		if (w->deferred.segment == seg)
		{
			*link = w->next_parked;
			w->next_parked = mine;
			mine = w;
		}
		else
			link = &w->next_parked;
	}
	/* other segments' workers are left: another syncer takes them now */
	if (srv->parked != NULL)
		pthread_cond_signal(&srv->cv);
	return mine;
}

static void *
syncer_main(void *arg)
{
	syncer_arg *me = arg;
	aurora_server *srv = me->srv;
	int			self = me->index;

	for (;;)
	{
		worker	   *batch;
		struct aurora_segment *seg;
		char		err[512];
		const char *sync_error = NULL;

		pthread_mutex_lock(&srv->mtx);
		batch = take_one_segment(srv, self);
		pthread_mutex_unlock(&srv->mtx);
		if (batch == NULL)
			break;				/* exiting with nothing parked */

		/*
		 * Every worker in batch wrote its records before parking, so one
		 * sync of their segment now covers all of them.
		 */
		if (batch->deferred.segment != NULL &&
			aurora_segment_sync(batch->deferred.segment, err, sizeof(err)) != AURORA_SEG_OK)
			sync_error = err;

		/*
		 * Synced: the segment's next appends may be synced by another
		 * syncer while this one sends the acks and zero-fills ahead.
		 */
		pthread_mutex_lock(&srv->mtx);
		srv->claimed[self] = NULL;
		/*
		 * One syncer, not all: every idle syncer is alike, and waking the
		 * others only for them to find the segment taken cost each batch
		 * four context switches on a node with one busy segment.  Whoever
		 * takes it passes the signal on if more segments are parked.
		 */
		if (srv->parked != NULL)
			pthread_cond_signal(&srv->cv);
		pthread_mutex_unlock(&srv->mtx);

		seg = batch->deferred.segment;
		while (batch != NULL)
		{
			worker	   *w = batch;
			aurora_reply reply;

			batch = w->next_parked;
			aurora_handler_finish_append(srv->handler, &w->deferred, sync_error, &reply);
			worker_send(w, &reply);
		}
		/* after the acks: zero-fill ahead so the next syncs write data only */
		if (seg != NULL && sync_error == NULL &&
			aurora_segment_preallocate(seg, err, sizeof(err)) != AURORA_SEG_OK)
			aurora_log("%s", err);
	}
	return NULL;
}

static void
park_page(aurora_server *srv, worker *w)
{
	pthread_mutex_lock(&srv->mtx);
	if (srv->page_queued >= AURORA_SERVER_MAX_PAGE_QUEUED)
	{
		aurora_reply reply;
		char		why[128];

		pthread_mutex_unlock(&srv->mtx);
		snprintf(why, sizeof(why), "this node is busy: %d page requests are queued or running; retry",
				 AURORA_SERVER_MAX_PAGE_QUEUED);
		aurora_handler_refuse_page(srv->handler, &w->deferred, why, &reply);
		worker_send(w, &reply);
		return;
	}
	srv->page_queued++;
	w->next_parked = NULL;
	if (srv->page_tail != NULL)
		srv->page_tail->next_parked = w;
	else
		srv->page_head = w;
	srv->page_tail = w;
	pthread_cond_signal(&srv->page_cv);
	pthread_mutex_unlock(&srv->mtx);
}

static uint64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/*
 * Try one page request: answer it, or put it on the waiting list (it needs
 * log records or indexing that are not there yet) without holding a thread.
 */
static void
page_try(aurora_server *srv, worker *w)
{
	aurora_reply reply;

	if (!aurora_handler_try_page(srv->handler, &w->deferred, &reply))
	{
		pthread_mutex_lock(&srv->mtx);
		if (srv->page_waiting == NULL)
			srv->page_recheck_ms = monotonic_ms() + AURORA_SERVER_PAGE_RECHECK_MS;
		w->next_parked = srv->page_waiting;
		srv->page_waiting = w;
		pthread_mutex_unlock(&srv->mtx);
		return;
	}
	pthread_mutex_lock(&srv->mtx);
	srv->page_queued--;
	pthread_mutex_unlock(&srv->mtx);
	worker_send(w, &reply);
}

static void *
page_thread_main(void *arg)
{
	aurora_server *srv = arg;

	for (;;)
	{
		worker	   *w = NULL;
		worker	   *waiting = NULL;

		pthread_mutex_lock(&srv->mtx);
		for (;;)
		{
			uint64_t	now;

			if (srv->page_head != NULL)
			{
				w = srv->page_head;
				srv->page_head = w->next_parked;
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
			now = monotonic_ms();
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
				ts.tv_nsec += (long) (ms * 1000000u);
				ts.tv_sec += ts.tv_nsec / 1000000000L;
				ts.tv_nsec %= 1000000000L;
				pthread_cond_timedwait(&srv->page_cv, &srv->mtx, &ts);
			}
		}
		pthread_mutex_unlock(&srv->mtx);
		if (w == NULL && waiting == NULL)
			break;
		if (w != NULL)
			page_try(srv, w);
		while (waiting != NULL)
		{
			worker	   *x = waiting;

			waiting = x->next_parked;
			page_try(srv, x);
		}
	}
	return NULL;
}

static void
worker_cb(void *arg)
{
	worker	   *w = arg;
	aurora_server *srv = w->srv;
	int			rv = nng_aio_result(w->aio);
	nng_msg    *req;
	aurora_reply reply;
	bool		deferred;

	if (w->state == WORKER_SEND)
	{
		/* A failed send (peer went away) leaves the reply with us. */
		if (rv != 0)
		{
			nng_msg_free(nng_aio_get_msg(w->aio));
			nng_aio_set_msg(w->aio, NULL);
		}
		if (!atomic_load(&srv->stopping) && rv != NNG_ECLOSED)
			worker_recv(w);
		return;
	}

	if (rv != 0)
	{
		/* Closed or cancelled on shutdown: let the worker stop. */
		if (atomic_load(&srv->stopping) || rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		worker_recv(w);
		return;
	}

	req = nng_aio_get_msg(w->aio);
	nng_aio_set_msg(w->aio, NULL);
	deferred = aurora_handler_dispatch(srv->handler, nng_msg_body(req), nng_msg_len(req),
									   &reply, &w->deferred);
	nng_msg_free(req);
	if (deferred && w->deferred.kind == AURORA_DEFERRED_PAGE)
		park_page(srv, w);
	else if (deferred)
		park(srv, w);
	else
		worker_send(w, &reply);
}

int
aurora_server_start(const char *url, aurora_handler *handler,
					aurora_server **out, char *err, size_t errlen)
{
	aurora_server *srv;
	size_t		recv_max = (size_t) handler->max_body + AURORA_HEADER_SIZE +
		AURORA_SERVER_RECV_SLACK;
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
	atomic_init(&srv->stopping, false);
	pthread_mutex_init(&srv->mtx, NULL);
	pthread_cond_init(&srv->cv, NULL);
	pthread_cond_init(&srv->page_cv, NULL);

	if ((rv = nng_rep0_open(&srv->sock)) != 0)
	{
		snprintf(err, errlen, "cannot open rep0 socket: %s", nng_strerror(rv));
		pthread_mutex_destroy(&srv->mtx);
		pthread_cond_destroy(&srv->cv);
		pthread_cond_destroy(&srv->page_cv);
		free(srv);
		return -1;
	}
	nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, recv_max);

	for (i = 0; i < AURORA_SERVER_WORKERS; i++)
	{
		worker	   *w = &srv->workers[i];

		w->srv = srv;
		if ((rv = nng_aio_alloc(&w->aio, worker_cb, w)) != 0 ||
			(rv = nng_ctx_open(&w->ctx, srv->sock)) != 0)
		{
			snprintf(err, errlen, "cannot set up worker: %s", nng_strerror(rv));
			if (w->aio != NULL)
				srv->n_workers = i + 1;
			goto fail;
		}
		srv->n_workers = i + 1;
	}

	for (i = 0; i < AURORA_SERVER_SYNCERS; i++)
	{
		srv->syncer_args[i].srv = srv;
		srv->syncer_args[i].index = i;
		if (pthread_create(&srv->syncers[i], NULL, syncer_main, &srv->syncer_args[i]) != 0)
		{
			snprintf(err, errlen, "cannot start the syncer threads");
			goto fail;
		}
		srv->n_syncers = i + 1;
	}

	for (i = 0; i < handler->page_threads && i < AURORA_SERVER_MAX_PAGE_THREADS; i++)
	{
		if (pthread_create(&srv->page_threads[i], NULL, page_thread_main, srv) != 0)
		{
			snprintf(err, errlen, "cannot start the page threads");
			goto fail;
		}
		srv->n_page_threads = i + 1;
	}

	if ((rv = nng_listener_create(&srv->listener, srv->sock, url)) != 0)
	{
		snprintf(err, errlen, "cannot listen on %s: %s", url, nng_strerror(rv));
		goto fail;
	}
	nng_listener_set_size(srv->listener, NNG_OPT_RECVMAXSZ, recv_max);
	if ((rv = nng_listener_start(srv->listener, 0)) != 0)
	{
		snprintf(err, errlen, "cannot listen on %s: %s", url, nng_strerror(rv));
		goto fail;
	}

	for (i = 0; i < srv->n_workers; i++)
		worker_recv(&srv->workers[i]);
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

	/*
	 * Let the syncers finish what is parked (those appends are written;
	 * their acks may still reach clients) before the socket goes away.
	 */
	if (srv->n_syncers > 0)
	{
		pthread_mutex_lock(&srv->mtx);
		srv->syncer_exit = true;
		pthread_cond_broadcast(&srv->cv);
		pthread_mutex_unlock(&srv->mtx);
		for (i = 0; i < srv->n_syncers; i++)
			pthread_join(srv->syncers[i], NULL);
	}

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

	/*
	 * Stop every worker's aio, then close the socket.  nng_aio_stop cancels
	 * the pending receive (or send) and waits for its callback, which sees
	 * stopping and starts nothing new.  Closing with receives still pending
	 * left a node hanging in nng_close after SIGTERM once (NNG 1.5.2, a CI
	 * run of 009_page_oracle.t: the main thread waited there for ever with
	 * every NNG thread idle); NNG's own advice is to stop all aios first.
	 */
	for (i = 0; i < srv->n_workers; i++)
	{
		if (srv->workers[i].aio != NULL)
			nng_aio_stop(srv->workers[i].aio);
	}
	nng_close(srv->sock);
	for (i = 0; i < srv->n_workers; i++)
	{
		if (srv->workers[i].aio != NULL)
			nng_aio_free(srv->workers[i].aio);
	}
	pthread_mutex_destroy(&srv->mtx);
	pthread_cond_destroy(&srv->cv);
	pthread_cond_destroy(&srv->page_cv);
	free(srv);
}
