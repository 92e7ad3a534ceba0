/*
 * server.c - NNG rep0 transport for the storage node (server.h).
 *
 * Follows NNG's async "reqrep" demo: every worker owns a context and an aio
 * and cycles RECV -> handle -> SEND -> RECV inside the aio callback, so no
 * thread of ours ever blocks on the network.  Replies are built by the
 * handler into the nng_msg directly.
 */
#include "server.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

enum worker_state
{
	WORKER_RECV,
	WORKER_SEND
};

typedef struct worker
{
	aurora_server *srv;
	enum worker_state state;
	nng_aio    *aio;
	nng_ctx		ctx;
} worker;

struct aurora_server
{
	nng_socket	sock;
	nng_listener listener;
	aurora_handler *handler;
	atomic_bool stopping;
	int			n_workers;
	worker		workers[AURORA_SERVER_WORKERS];
};

static void
worker_recv(worker *w)
{
	w->state = WORKER_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

/* Build the reply for one request; NULL only if memory is exhausted. */
static nng_msg *
make_reply(aurora_server *srv, nng_msg *req)
{
	nng_msg    *rep;
	size_t		n;

	if (nng_msg_alloc(&rep, AURORA_HANDLER_REPLY_MAX) != 0)
		return NULL;
	n = aurora_handler_handle(srv->handler, nng_msg_body(req), nng_msg_len(req),
							  nng_msg_body(rep), AURORA_HANDLER_REPLY_MAX);
	nng_msg_chop(rep, AURORA_HANDLER_REPLY_MAX - n);
	return rep;
}

static void
worker_cb(void *arg)
{
	worker	   *w = arg;
	aurora_server *srv = w->srv;
	int			rv = nng_aio_result(w->aio);
	nng_msg    *req;
	nng_msg    *rep;

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
	rep = make_reply(srv, req);
	nng_msg_free(req);
	if (rep == NULL)
	{
		/* Without memory for a reply the request is dropped; the client times out. */
		worker_recv(w);
		return;
	}
	nng_aio_set_msg(w->aio, rep);
	w->state = WORKER_SEND;
	nng_ctx_send(w->ctx, w->aio);
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

	if ((rv = nng_rep0_open(&srv->sock)) != 0)
	{
		snprintf(err, errlen, "cannot open rep0 socket: %s", nng_strerror(rv));
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
	/* Closing the socket fails every pending context operation with ECLOSED. */
	nng_close(srv->sock);
	for (i = 0; i < srv->n_workers; i++)
	{
		if (srv->workers[i].aio != NULL)
			nng_aio_free(srv->workers[i].aio);
	}
	free(srv);
}
