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
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

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
} aurora_handler;

void		aurora_handler_init(aurora_handler *h, const char *node_id, const char *az,
								uint32_t max_body);

/*
 * Handle one request and write the reply into out (cap must be at least
 * AURORA_HANDLER_REPLY_MAX).  Always produces a reply: bad input yields an
 * ERROR reply and bumps the error counters.  Returns the reply length.
 */
size_t		aurora_handler_handle(aurora_handler *h, const uint8_t *req, size_t len,
								  uint8_t *out, size_t cap);

/* Current counters and identity as a STATUS_RESP body. */
void		aurora_handler_status(aurora_handler *h, aurora_status_body *s);

#endif
