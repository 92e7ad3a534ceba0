/*
 * start_state_msg.h - bodies of the start state messages (PROTOCOL.md 5.11):
 * START_STATE_PUT / START_STATE_ACK (a compute stores a bundle on a
 * segment, in pieces) and START_STATE_GET / START_STATE (a starting compute
 * or aurora-ctl fetches the newest one at or below an LSN, in pieces).
 * The bundle itself is start_state.h; these messages carry its bytes
 * opaquely.
 *
 * Decoders never copy the bytes: a decoded piece points into the message.
 * Every decoder checks that the body is consumed exactly and returns 0 or
 * AURORA_ERR_MALFORMED.
 */
#ifndef AURORA_START_STATE_MSG_H
#define AURORA_START_STATE_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Fixed part of START_STATE_PUT and of START_STATE in front of the bytes. */
#define AURORA_START_STATE_PUT_FIXED	24
#define AURORA_START_STATE_RESP_FIXED	25
/* What a piece leaves of max_message_bytes for the fixed fields and slack. */
#define AURORA_START_STATE_PIECE_HEADROOM	4096

/* ---- START_STATE_PUT ---- */
typedef struct aurora_start_state_put
{
	uint64_t	consistent_lsn; /* which bundle the piece belongs to */
	uint64_t	total_len;		/* the whole bundle's length */
	uint64_t	offset;			/* where the piece goes; pieces arrive in order */
	uint32_t	len;
	const uint8_t *data;		/* len bytes (into the message) */
} aurora_start_state_put;

size_t		aurora_start_state_put_encode(const aurora_start_state_put *p, uint8_t *out, size_t cap);
int			aurora_start_state_put_decode(const uint8_t *body, size_t len, aurora_start_state_put *p);

/* ---- START_STATE_ACK ---- */
typedef struct aurora_start_state_ack
{
	uint64_t	consistent_lsn;
	uint64_t	received;		/* bytes of that bundle the segment holds so far */
	uint8_t		complete;		/* 1: verified, durable and visible */
} aurora_start_state_ack;

#define AURORA_START_STATE_ACK_SIZE	17

size_t		aurora_start_state_ack_encode(const aurora_start_state_ack *a, uint8_t *out, size_t cap);
int			aurora_start_state_ack_decode(const uint8_t *body, size_t len, aurora_start_state_ack *a);

/* ---- START_STATE_GET ---- */
typedef struct aurora_start_state_get
{
	uint64_t	max_lsn;		/* the newest complete bundle with consistent_lsn <= max_lsn */
	uint64_t	offset;			/* its bytes from here */
	uint32_t	max_bytes;		/* at most this many (capped by the node) */
} aurora_start_state_get;

#define AURORA_START_STATE_GET_SIZE	20

size_t		aurora_start_state_get_encode(const aurora_start_state_get *g, uint8_t *out, size_t cap);
int			aurora_start_state_get_decode(const uint8_t *body, size_t len, aurora_start_state_get *g);

/* ---- START_STATE: reply to START_STATE_GET ---- */
typedef struct aurora_start_state_resp
{
	uint8_t		found;			/* 0: no complete bundle at or below max_lsn (rest 0) */
	uint64_t	consistent_lsn;
	uint64_t	total_len;
	uint64_t	offset;
	uint32_t	len;
	const uint8_t *data;		/* len bytes (into the message) */
} aurora_start_state_resp;

size_t		aurora_start_state_resp_encode(const aurora_start_state_resp *r, uint8_t *out, size_t cap);
int			aurora_start_state_resp_decode(const uint8_t *body, size_t len, aurora_start_state_resp *r);

#endif
