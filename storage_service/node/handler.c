/*
 * handler.c - decode, dispatch and answer one request (handler.h).
 *
 * Replies echo the request's request_id, volume/membership epochs, volume
 * id and PG id whenever the decoder could read them, so a client can match
 * an ERROR to the request that caused it even when the request was damaged.
 */
#define _POSIX_C_SOURCE 200809L

#include "handler.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

void
aurora_handler_init(aurora_handler *h, const char *node_id, const char *az,
					uint32_t max_body)
{
	int			i;

	memset(h, 0, sizeof(*h));
	snprintf(h->node_id, sizeof(h->node_id), "%s", node_id);
	snprintf(h->az, sizeof(h->az), "%s", az);
	h->max_body = max_body;
	h->pid = (uint32_t) getpid();
	h->started_ms = monotonic_ms();
	atomic_init(&h->requests_total, 0);
	atomic_init(&h->errors_total, 0);
	for (i = 0; i < AURORA_ERR_COUNT; i++)
		atomic_init(&h->errors_by_code[i], 0);
}

void
aurora_handler_status(aurora_handler *h, aurora_status_body *s)
{
	int			i;

	memset(s, 0, sizeof(*s));
	snprintf(s->node_id, sizeof(s->node_id), "%s", h->node_id);
	snprintf(s->az, sizeof(s->az), "%s", h->az);
	snprintf(s->state, sizeof(s->state), "serving");
	s->pid = h->pid;
	s->uptime_ms = monotonic_ms() - h->started_ms;
	s->protocol_version = AURORA_PROTOCOL_VERSION;
	s->requests_total = atomic_load(&h->requests_total);
	s->errors_total = atomic_load(&h->errors_total);
	for (i = 0; i < AURORA_ERR_COUNT; i++)
		s->errors_by_code[i] = atomic_load(&h->errors_by_code[i]);
	/* Segments arrive with the log store; a node hosts none yet. */
	s->segments = 0;
}

/* Reply header: our version, the request's identifying fields, a new type. */
static void
reply_header(const aurora_header *req, uint16_t type, aurora_header *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->type = type;
	rep->volume_id = req->volume_id;
	rep->volume_epoch = req->volume_epoch;
	rep->membership_epoch = req->membership_epoch;
	rep->request_id = req->request_id;
	rep->pg_id = req->pg_id;
}

static size_t
error_reply(aurora_handler *h, const aurora_header *req, uint32_t code,
			const char *message, uint8_t *out, size_t cap)
{
	aurora_header rep;
	aurora_error_body e;
	uint8_t		body[AURORA_ERROR_BODY_MAX];
	size_t		n;

	atomic_fetch_add(&h->errors_total, 1);
	if (code < AURORA_ERR_COUNT)
		atomic_fetch_add(&h->errors_by_code[code], 1);

	memset(&e, 0, sizeof(e));
	e.code = code;
	snprintf(e.message, sizeof(e.message), "%s", message);
	n = aurora_error_body_encode(&e, body, sizeof(body));
	reply_header(req, AURORA_MSG_ERROR, &rep);
	return aurora_encode(&rep, body, n, out, cap);
}

/* Human-readable explanation of a decode failure, for the ERROR body. */
static void
describe_decode_error(const aurora_handler *h, int code, const aurora_header *req,
					  size_t len, char *msg, size_t cap)
{
	switch (code)
	{
		case AURORA_ERR_MALFORMED:
			if (len < AURORA_HEADER_SIZE)
				snprintf(msg, cap, "message is %zu bytes, shorter than the %d-byte header",
						 len, AURORA_HEADER_SIZE);
			else if (len - AURORA_HEADER_SIZE != req->body_len)
				snprintf(msg, cap, "header body_len %u does not match the %zu body bytes received",
						 (unsigned) req->body_len, len - AURORA_HEADER_SIZE);
			else
				snprintf(msg, cap, "reserved header flags 0x%08x must be zero",
						 (unsigned) req->flags);
			break;
		case AURORA_ERR_BAD_MAGIC:
			snprintf(msg, cap, "bad magic 0x%08x, expected 0x%08x (\"AURA\")",
					 (unsigned) req->magic, (unsigned) AURORA_MAGIC);
			break;
		case AURORA_ERR_BAD_VERSION:
			snprintf(msg, cap, "protocol version %u is not supported; this node speaks version %d",
					 (unsigned) req->version, AURORA_PROTOCOL_VERSION);
			break;
		case AURORA_ERR_TOO_LARGE:
			snprintf(msg, cap, "body_len %u exceeds this node's limit of %u bytes",
					 (unsigned) req->body_len, (unsigned) h->max_body);
			break;
		case AURORA_ERR_BAD_CRC:
			snprintf(msg, cap, "CRC32C mismatch (header carries 0x%08x)",
					 (unsigned) req->crc32c);
			break;
		default:
			snprintf(msg, cap, "decode failed: %s", aurora_error_name((uint32_t) code));
			break;
	}
}

static size_t
handle_status(aurora_handler *h, const aurora_header *req, uint8_t *out, size_t cap)
{
	aurora_status_body s;
	aurora_header rep;
	uint8_t		body[AURORA_STATUS_BODY_MAX];
	size_t		n;

	if (req->body_len != 0)
	{
		char		msg[96];

		snprintf(msg, sizeof(msg), "STATUS_REQ must have an empty body, got %u bytes",
				 (unsigned) req->body_len);
		return error_reply(h, req, AURORA_ERR_MALFORMED, msg, out, cap);
	}
	aurora_handler_status(h, &s);
	n = aurora_status_body_encode(&s, body, sizeof(body));
	if (n == 0)
		return error_reply(h, req, AURORA_ERR_INTERNAL, "cannot encode STATUS_RESP body",
						   out, cap);
	reply_header(req, AURORA_MSG_STATUS_RESP, &rep);
	return aurora_encode(&rep, body, n, out, cap);
}

size_t
aurora_handler_handle(aurora_handler *h, const uint8_t *req, size_t len,
					  uint8_t *out, size_t cap)
{
	aurora_header hdr;
	const uint8_t *body;
	int			rc;
	char		msg[160];

	atomic_fetch_add(&h->requests_total, 1);
	rc = aurora_decode(req, len, h->max_body, &hdr, &body);
	if (rc != 0)
	{
		describe_decode_error(h, rc, &hdr, len, msg, sizeof(msg));
		return error_reply(h, &hdr, (uint32_t) rc, msg, out, cap);
	}

	switch (hdr.type)
	{
		case AURORA_MSG_STATUS_REQ:
			return handle_status(h, &hdr, out, cap);
		case AURORA_MSG_ERROR:
		case AURORA_MSG_STATUS_RESP:
			snprintf(msg, sizeof(msg), "message type %s (%u) is a reply, not a request",
					 aurora_msg_type_name(hdr.type), (unsigned) hdr.type);
			break;
		default:
			snprintf(msg, sizeof(msg), "unknown message type %u", (unsigned) hdr.type);
			break;
	}
	return error_reply(h, &hdr, AURORA_ERR_UNKNOWN_TYPE, msg, out, cap);
}
