/*
 * handler_int.h - what the request handler's two files share: the reply
 * helpers and the segment lookup and fencing every segment request goes
 * through.  Private to node/handler.c (decode, dispatch, the log
 * requests) and node/handler_page.c (the page requests).
 */
#ifndef AURORA_NODE_HANDLER_INT_H
#define AURORA_NODE_HANDLER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handler.h"
#include "wire.h"

struct aurora_segment;

/* Reply header: our version, the request's identifying fields, a new type. */
void		handler_reply_header(const aurora_header *req, uint16_t type, aurora_header *rep);
/* Header + body into a fresh malloc'd reply (data NULL if out of memory). */
void		handler_make_reply(const aurora_header *rep, const void *body, size_t n,
							   aurora_reply *out);
/* An ERROR reply with code and message to req (counted in the stats). */
void		handler_error_reply(aurora_handler *h, const aurora_header *req, uint32_t code,
								const char *message, aurora_reply *out);
/*
 * Epoch fencing for a request addressed to seg (PROTOCOL.md 5, "Epochs"):
 * false (and an ERROR in out) for a volume epoch below the segment's
 * (STALE_EPOCH) or above it (EPOCH_NOT_OPEN), and, with need_open, for a
 * segment fenced but not yet truncated for its epoch (EPOCH_NOT_OPEN).  A
 * higher membership epoch is still adopted durably.
 */
bool		handler_check_epochs(aurora_handler *h, const aurora_header *req,
								 struct aurora_segment *seg, bool need_open, aurora_reply *out);
/* The segment req addresses, or NULL with an ERROR in out. */
struct aurora_segment *handler_find_segment(aurora_handler *h, const aurora_header *req,
											aurora_reply *out);

/* handler_page.c: check a page request and defer it (false: answered in out). */
bool		handler_defer_page_request(aurora_handler *h, const aurora_header *req,
									   const uint8_t *msg, size_t len, aurora_reply *out,
									   aurora_deferred_ack *d);

/* handler_start_state.c: START_STATE_PUT and START_STATE_GET. */
void		handler_start_state_put(aurora_handler *h, const aurora_header *req,
									const uint8_t *body, aurora_reply *out);
void		handler_start_state_get(aurora_handler *h, const aurora_header *req,
									const uint8_t *body, aurora_reply *out);

#endif
