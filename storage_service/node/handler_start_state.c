/*
 * handler_start_state.c - the start state requests of the request handler
 * (PROTOCOL.md 5.11): START_STATE_PUT, fenced like LOG_APPEND because it
 * writes, and START_STATE_GET, which changes nothing and so is neither
 * fenced nor adopts epochs.  Both replies carry the segment's epochs.  The
 * store itself is node/start_state.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "handler.h"
#include "handler_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "segment.h"
#include "start_state.h"
#include "start_state_msg.h"

void
aurora_handler_set_start_states(aurora_handler *h, struct aurora_start_states *ss)
{
	h->start_states = ss;
}

/* A reply header about seg: the request's fields, the segment's epochs. */
static void
segment_reply_header(const aurora_header *req, struct aurora_segment *seg, uint16_t type,
					 aurora_header *rep)
{
	aurora_segment_meta meta;

	aurora_segment_get_meta(seg, &meta);
	handler_reply_header(req, type, rep);
	rep->volume_epoch = meta.volume_epoch;
	rep->membership_epoch = meta.membership_epoch;
}

static struct aurora_segment *
find_with_store(aurora_handler *h, const aurora_header *req, aurora_reply *out)
{
	struct aurora_segment *seg = handler_find_segment(h, req, out);

	if (seg != NULL && h->start_states == NULL)
	{
		handler_error_reply(h, req, AURORA_ERR_UNAVAILABLE, "this node keeps no start states", out);
		return NULL;
	}
	return seg;
}

void
handler_start_state_put(aurora_handler *h, const aurora_header *req, const uint8_t *body,
						aurora_reply *out)
{
	struct aurora_segment *seg;
	aurora_start_state_put p;
	aurora_start_state_ack ack;
	aurora_header rep;
	uint8_t		buf[AURORA_START_STATE_ACK_SIZE];
	char		err[512];
	int			rc;

	if ((seg = find_with_store(h, req, out)) == NULL)
		return;
	if (!handler_check_epochs(h, req, seg, true, out))
		return;
	if (aurora_start_state_put_decode(body, req->body_len, &p) != 0)
	{
		handler_error_reply(h, req, AURORA_ERR_MALFORMED,
							"START_STATE_PUT body does not decode (or the piece lies outside total_len)", out);
		return;
	}
	rc = aurora_start_states_put(h->start_states, seg, &p, &ack, err, sizeof(err));
	if (rc != 0)
	{
		handler_error_reply(h, req, (uint32_t) rc, err, out);
		return;
	}
	segment_reply_header(req, seg, AURORA_MSG_START_STATE_ACK, &rep);
	handler_make_reply(&rep, buf, aurora_start_state_ack_encode(&ack, buf, sizeof(buf)), out);
}

void
handler_start_state_get(aurora_handler *h, const aurora_header *req, const uint8_t *body,
						aurora_reply *out)
{
	struct aurora_segment *seg;
	aurora_start_state_get g;
	aurora_start_state_resp r;
	aurora_header rep;
	uint8_t    *data;
	uint8_t    *buf;
	size_t		n;
	char		err[512];
	int			rc;

	if ((seg = find_with_store(h, req, out)) == NULL)
		return;
	if (aurora_start_state_get_decode(body, req->body_len, &g) != 0)
	{
		handler_error_reply(h, req, AURORA_ERR_MALFORMED, "START_STATE_GET body does not decode", out);
		return;
	}
	rc = aurora_start_states_get(h->start_states, seg, &g,
								 h->max_body - AURORA_START_STATE_RESP_FIXED, &r, &data, err,
								 sizeof(err));
	if (rc != 0)
	{
		handler_error_reply(h, req, (uint32_t) rc, err, out);
		return;
	}
	n = AURORA_START_STATE_RESP_FIXED + r.len;
	if ((buf = malloc(n)) == NULL)
	{
		free(data);
		handler_error_reply(h, req, AURORA_ERR_INTERNAL, "out of memory for a START_STATE reply", out);
		return;
	}
	n = aurora_start_state_resp_encode(&r, buf, n);
	free(data);
	segment_reply_header(req, seg, AURORA_MSG_START_STATE, &rep);
	handler_make_reply(&rep, buf, n, out);
	free(buf);
}
