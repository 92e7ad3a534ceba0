/*
 * link.h - one connection between a client and a storage node: an NNG byte
 * stream (nng_stream over tcp:// or ipc://) carrying aurora messages, each
 * preceded by its length (PROTOCOL.md 1).
 *
 * The transport under client.c, pgwriter.c and the node's server.c.  It
 * replaced NNG's req0/rep0 sockets because every message through those
 * crossed several of NNG's task threads on each side (a context switch
 * each); here a send is written by the calling thread and a receive wakes
 * only the thread waiting for it.  Replies are matched to requests by the
 * header's request_id, which lets a connection carry several requests at
 * once.
 */
#ifndef AURORA_LINK_H
#define AURORA_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

/* Bytes of the length prefix in front of every message. */
#define AURORA_LINK_PREFIX_SIZE	4

/* Wait for ever (timeout_ms arguments). */
#define AURORA_LINK_FOREVER		(-1)

typedef struct aurora_link aurora_link;

/*
 * Parse url and prepare to dial it; no connection is made yet.  Fails only
 * on a malformed or unsupported URL (or out of memory), with NNG's error.
 * Starts NNG's threads on first use: callers that must keep signals off
 * them block signals around this call.
 */
int			aurora_dialer_open(const char *url, nng_stream_dialer **out,
							   char *err, size_t errlen);

/*
 * Connect with d within timeout_ms.  With retry_refused, a refused
 * connection is tried again every few milliseconds until then (a node that
 * is starting up is reached as soon as it listens).  Returns 0 with a new
 * link, or NNG's error.
 */
int			aurora_link_dial(nng_stream_dialer *d, int timeout_ms, bool retry_refused,
							 aurora_link **out);

/* A link over an accepted stream (the link owns it).  NULL: out of memory. */
aurora_link *aurora_link_wrap(nng_stream *s);

/*
 * Send one message.  Safe from several threads at once: each message goes
 * out whole, one after the other.  A send that does not complete within
 * timeout_ms (the peer stopped reading) shuts the link down, since part of
 * the message may be gone.  Returns 0 or NNG's error.
 */
int			aurora_link_send(aurora_link *l, const uint8_t *msg, size_t len, int timeout_ms);

/*
 * Receive the next message (one thread at a time): 0 with *msg pointing
 * into the link's buffer, valid until the next receive.  NNG_ETIMEDOUT
 * after timeout_ms keeps whatever part arrived, so the next call goes on
 * where this one stopped.  NNG_EMSGSIZE: the next message is longer than
 * max_len; the link cannot skip it and is unusable.  NNG_ECLOSED and other
 * errors: the connection is gone.
 */
int			aurora_link_recv(aurora_link *l, size_t max_len, int timeout_ms,
							 const uint8_t **msg, size_t *len);

/* True when a whole message is already buffered: receiving would not wait. */
bool		aurora_link_buffered(const aurora_link *l);

/*
 * Close the connection: sends and receives in progress in other threads
 * and all later ones fail at once.  Safe from any thread, more than once.
 */
void		aurora_link_shutdown(aurora_link *l);

/* Shut down and free; no other thread may still use l. */
void		aurora_link_free(aurora_link *l);

#endif
