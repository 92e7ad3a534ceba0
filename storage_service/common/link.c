/*
 * link.c - a framed NNG byte stream between a client and a storage node
 * (link.h).
 *
 * The aios have no callback on purpose.  NNG runs an aio's callback on one
 * of its task threads, so every completed send or receive would wake a
 * task thread just to wake ours.  Without a callback NNG completes the aio
 * where the I/O happened: a send that the socket takes at once returns
 * without any other thread running, and a receive wakes the waiting thread
 * straight from NNG's poller.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "link.h"

#include <stdlib.h>
#include <string.h>

#include <nng/supplemental/util/platform.h>

#include "byteorder.h"
#include "util.h"

/* Receive buffer kept between messages; a bigger one shrinks back. */
#define LINK_BUFFER_SIZE	(64 * 1024)
/* Pause between connection attempts while a node is not listening yet. */
#define DIAL_RETRY_MS		10

struct aurora_link
{
	nng_stream *stream;
	nng_aio    *send_aio;
	nng_aio    *recv_aio;
	nng_mtx    *send_mtx;
	/*
	 * closed, under state_mtx, which is also held while an operation is
	 * handed to NNG.  NNG 1.5.2 never completes a receive or send started
	 * on a TCP stream after nng_stream_close (it queues the aio on the
	 * closed connection), so a thread that started one just after another
	 * thread's shutdown waited for ever: a node hung on SIGTERM.  Under the
	 * mutex an operation either sees closed or is queued before the close,
	 * which then aborts it.
	 */
	nng_mtx    *state_mtx;
	bool		closed;
	uint8_t    *buf;
	size_t		cap;
	size_t		start;			/* buffered, unread bytes are [start, end) */
	size_t		end;
	size_t		last_len;		/* prefix + message returned last; dropped next */
};

/* NNG timeout for what is left of deadline (NNG_DURATION_INFINITE: none). */
static nng_duration
time_left(nng_time deadline, bool forever)
{
	nng_time	now;

	if (forever)
		return NNG_DURATION_INFINITE;
	now = nng_clock();
	/* at least 1 ms: NNG takes 0 as "do not wait", which fails at once */
	return deadline > now ? (nng_duration) (deadline - now) : 1;
}

/* Hand aio to NNG for a receive or send on l, unless l is shut down. */
static int
start_io(aurora_link *l, nng_aio *aio, bool send)
{
	nng_mtx_lock(l->state_mtx);
	if (l->closed)
	{
		nng_mtx_unlock(l->state_mtx);
		return NNG_ECLOSED;
	}
	if (send)
		nng_stream_send(l->stream, aio);
	else
		nng_stream_recv(l->stream, aio);
	nng_mtx_unlock(l->state_mtx);
	return 0;
}

int
aurora_dialer_open(const char *url, nng_stream_dialer **out, char *err, size_t errlen)
{
	int			rv = nng_stream_dialer_alloc(out, url);

	if (rv != 0)
	{
		*out = NULL;
		aurora_seterr(err, errlen, "cannot dial %s: %s", url, nng_strerror(rv));
	}
	return rv;
}

aurora_link *
aurora_link_wrap(nng_stream *s)
{
	aurora_link *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->stream = s;
	l->cap = LINK_BUFFER_SIZE;
	if ((l->buf = malloc(l->cap)) == NULL ||
		nng_aio_alloc(&l->send_aio, NULL, NULL) != 0 ||
		nng_aio_alloc(&l->recv_aio, NULL, NULL) != 0 ||
		nng_mtx_alloc(&l->send_mtx) != 0 ||
		nng_mtx_alloc(&l->state_mtx) != 0)
	{
		l->stream = NULL;		/* the caller still owns s */
		aurora_link_free(l);
		return NULL;
	}
	/* small requests and acks must not wait for Nagle (an ipc:// stream has no such option) */
	(void) nng_stream_set_bool(s, NNG_OPT_TCP_NODELAY, true);
	return l;
}

int
aurora_link_dial(nng_stream_dialer *d, int timeout_ms, bool retry_refused, aurora_link **out)
{
	nng_aio    *aio;
	nng_time	deadline = nng_clock() + (nng_time) (timeout_ms > 0 ? timeout_ms : 1);
	int			rv;

	*out = NULL;
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0)
		return rv;
	for (;;)
	{
		nng_aio_set_timeout(aio, time_left(deadline, false));
		nng_stream_dialer_dial(d, aio);
		nng_aio_wait(aio);
		rv = nng_aio_result(aio);
		if (rv == 0)
		{
			nng_stream *s = nng_aio_get_output(aio, 0);

			if ((*out = aurora_link_wrap(s)) == NULL)
			{
				nng_stream_free(s);
				rv = NNG_ENOMEM;
			}
			break;
		}
		/* refused (or no ipc:// socket yet): the node may be starting */
		if (!retry_refused || (rv != NNG_ECONNREFUSED && rv != NNG_ENOENT) || nng_clock() + DIAL_RETRY_MS >= deadline)
			break;
		nng_msleep(DIAL_RETRY_MS);
	}
	nng_aio_free(aio);
	return rv;
}

int
aurora_link_send(aurora_link *l, const uint8_t *msg, size_t len, int timeout_ms)
{
	uint8_t		prefix[AURORA_LINK_PREFIX_SIZE];
	nng_iov		iov[2];
	unsigned	niov = 2;
	nng_time	deadline = nng_clock() + (nng_time) (timeout_ms > 0 ? timeout_ms : 0);
	int			rv = 0;

	if (len > UINT32_MAX)
		return NNG_EMSGSIZE;
	aurora_put_le32(prefix, (uint32_t) len);
	iov[0].iov_buf = prefix;
	iov[0].iov_len = sizeof(prefix);
	iov[1].iov_buf = (void *) msg;
	iov[1].iov_len = len;

	nng_mtx_lock(l->send_mtx);
	while (niov > 0)
	{
		size_t		sent;

		nng_aio_set_iov(l->send_aio, niov, &iov[2 - niov]);
		nng_aio_set_timeout(l->send_aio, time_left(deadline, timeout_ms < 0));
		if ((rv = start_io(l, l->send_aio, true)) != 0)
			break;
		nng_aio_wait(l->send_aio);
		if ((rv = nng_aio_result(l->send_aio)) != 0)
			break;
		/* a non-blocking socket may take part of it: send the rest */
		sent = nng_aio_count(l->send_aio);
		while (niov > 0 && sent >= iov[2 - niov].iov_len)
		{
			sent -= iov[2 - niov].iov_len;
			niov--;
		}
		if (niov > 0)
		{
			iov[2 - niov].iov_buf = (uint8_t *) iov[2 - niov].iov_buf + sent;
			iov[2 - niov].iov_len -= sent;
		}
	}
	nng_mtx_unlock(l->send_mtx);
	if (rv != 0)
		aurora_link_shutdown(l);	/* a message may be cut: nothing can follow it */
	return rv;
}

/* Room for need bytes from start; false when out of memory. */
static bool
make_room(aurora_link *l, size_t need)
{
	if (l->start > 0 && l->start + need > l->cap)
	{
		memmove(l->buf, l->buf + l->start, l->end - l->start);
		l->end -= l->start;
		l->start = 0;
	}
	if (need > l->cap)
	{
		uint8_t    *bigger = realloc(l->buf, need);

		if (bigger == NULL)
			return false;
		l->buf = bigger;
		l->cap = need;
	}
	return true;
}

int
aurora_link_recv(aurora_link *l, size_t max_len, int timeout_ms,
				 const uint8_t **msg, size_t *len)
{
	nng_time	deadline = nng_clock() + (nng_time) (timeout_ms > 0 ? timeout_ms : 0);

	/* the previous message is no longer the caller's */
	l->start += l->last_len;
	l->last_len = 0;
	if (l->start == l->end)
	{
		l->start = l->end = 0;
		if (l->cap > LINK_BUFFER_SIZE)
		{
			uint8_t    *smaller = realloc(l->buf, LINK_BUFFER_SIZE);

			if (smaller != NULL)
			{
				l->buf = smaller;
				l->cap = LINK_BUFFER_SIZE;
			}
		}
	}

	for (;;)
	{
		size_t		avail = l->end - l->start;
		size_t		need = AURORA_LINK_PREFIX_SIZE;
		nng_iov		iov;
		int			rv;

		if (avail >= AURORA_LINK_PREFIX_SIZE)
		{
			size_t		n = aurora_get_le32(l->buf + l->start);

			if (n > max_len)
				return NNG_EMSGSIZE;
			need += n;
			if (avail >= need)
			{
				*msg = l->buf + l->start + AURORA_LINK_PREFIX_SIZE;
				*len = n;
				l->last_len = need;
				return 0;
			}
		}
		if (!make_room(l, need))
			return NNG_ENOMEM;
		iov.iov_buf = l->buf + l->end;
		iov.iov_len = l->cap - l->end;
		nng_aio_set_iov(l->recv_aio, 1, &iov);
		nng_aio_set_timeout(l->recv_aio, time_left(deadline, timeout_ms < 0));
		if ((rv = start_io(l, l->recv_aio, false)) != 0)
			return rv;
		nng_aio_wait(l->recv_aio);
		if ((rv = nng_aio_result(l->recv_aio)) != 0)
			return rv;
		l->end += nng_aio_count(l->recv_aio);
	}
}

bool
aurora_link_buffered(const aurora_link *l)
{
	size_t		start = l->start + l->last_len;
	size_t		avail = l->end - start;

	return avail >= AURORA_LINK_PREFIX_SIZE &&
		avail - AURORA_LINK_PREFIX_SIZE >= aurora_get_le32(l->buf + start);
}

void
aurora_link_shutdown(aurora_link *l)
{
	if (l == NULL || l->stream == NULL)
		return;
	nng_mtx_lock(l->state_mtx);
	l->closed = true;
	nng_stream_close(l->stream);
	nng_mtx_unlock(l->state_mtx);
}

void
aurora_link_free(aurora_link *l)
{
	if (l == NULL)
		return;
	if (l->stream != NULL)
	{
		if (l->state_mtx != NULL)
			aurora_link_shutdown(l);
		else
			nng_stream_close(l->stream);
		if (l->send_aio != NULL)
			nng_aio_stop(l->send_aio);
		if (l->recv_aio != NULL)
			nng_aio_stop(l->recv_aio);
		nng_stream_free(l->stream);
	}
	if (l->send_aio != NULL)
		nng_aio_free(l->send_aio);
	if (l->recv_aio != NULL)
		nng_aio_free(l->recv_aio);
	if (l->send_mtx != NULL)
		nng_mtx_free(l->send_mtx);
	if (l->state_mtx != NULL)
		nng_mtx_free(l->state_mtx);
	free(l->buf);
	free(l);
}
