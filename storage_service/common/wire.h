/*
 * wire.h - the aurora wire protocol: the 56-byte versioned message header,
 * the bounded body reader/writer every body codec is written with, and the
 * codecs of the message bodies defined so far.
 *
 * This is the single definition of the protocol; storage_service/PROTOCOL.md
 * documents the same bytes for humans.  It is compiled into the storage
 * daemon, aurora-ctl and the PostgreSQL extension, so it uses only libc and
 * never depends on host byte order or struct layout: every field is encoded
 * and decoded one at a time, little-endian.
 */
#ifndef AURORA_WIRE_H
#define AURORA_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The magic is chosen so that the first four bytes on the wire spell "AURA"
 * ('A' 0x41, 'U' 0x55, 'R' 0x52, 'A' 0x41); read as a little-endian u32 that
 * is 0x41525541.  A hexdump of any aurora message therefore starts "AURA".
 */
#define AURORA_MAGIC			0x41525541u
#define AURORA_PROTOCOL_VERSION	1
#define AURORA_HEADER_SIZE		56

/* Default limit on a message body (the daemon's max_message_bytes). */
#define AURORA_DEFAULT_MAX_BODY	16777216u

/* Header field offsets, shared with PROTOCOL.md and the tests. */
#define AURORA_OFF_MAGIC			0
#define AURORA_OFF_VERSION			4
#define AURORA_OFF_TYPE				6
#define AURORA_OFF_FLAGS			8
#define AURORA_OFF_BODY_LEN			12
#define AURORA_OFF_VOLUME_ID		16
#define AURORA_OFF_VOLUME_EPOCH		24
#define AURORA_OFF_MEMBERSHIP_EPOCH	32
#define AURORA_OFF_REQUEST_ID		40
#define AURORA_OFF_PG_ID			48
#define AURORA_OFF_CRC				52

/* Message types.  Values are never reused; new ones are appended. */
#define AURORA_MSG_ERROR		1
#define AURORA_MSG_STATUS_REQ	2
#define AURORA_MSG_STATUS_RESP	3
/* The segment log path (bodies in logmsg.h). */
#define AURORA_MSG_CREATE_SEGMENT	4
#define AURORA_MSG_SEGMENT_INFO		5
#define AURORA_MSG_LOG_APPEND		6
#define AURORA_MSG_LOG_ACK			7
#define AURORA_MSG_READ_LOG			8
#define AURORA_MSG_READ_LOG_RESP	9
#define AURORA_MSG_SEGMENTS_REQ		10
#define AURORA_MSG_SEGMENTS_RESP	11
/* Gossip between a PG's segments. */
#define AURORA_MSG_SEGMENT_INFO_REQ	12	/* reply: SEGMENT_INFO */
/* Resuming a writer. */
#define AURORA_MSG_RECORD_BEFORE_REQ	13
#define AURORA_MSG_RECORD_BEFORE		14
/* Pages from the log (bodies in pagemsg.h). */
#define AURORA_MSG_GETPAGE_REQ		15
#define AURORA_MSG_PAGE				16
#define AURORA_MSG_REL_SIZE_REQ		17
#define AURORA_MSG_REL_SIZE			18
#define AURORA_MSG_SEED_PAGES		19
#define AURORA_MSG_SEED_ACK			20
/* Volume epochs: fencing an old writer, truncating the ragged edge (bodies in logmsg.h). */
#define AURORA_MSG_FENCE_REQ		21
#define AURORA_MSG_FENCE_ACK		22
#define AURORA_MSG_TRUNCATE_REQ		23
#define AURORA_MSG_TRUNCATE_ACK		24
/* Start states: the compute's non-relation files (bodies in start_state_msg.h). */
#define AURORA_MSG_START_STATE_PUT	25
#define AURORA_MSG_START_STATE_ACK	26
#define AURORA_MSG_START_STATE_GET	27
#define AURORA_MSG_START_STATE		28

/* Error codes carried in an ERROR body (and returned by aurora_decode). */
#define AURORA_ERR_MALFORMED	1
#define AURORA_ERR_BAD_MAGIC	2
#define AURORA_ERR_BAD_VERSION	3
#define AURORA_ERR_BAD_CRC		4
#define AURORA_ERR_TOO_LARGE	5
#define AURORA_ERR_UNKNOWN_TYPE	6
#define AURORA_ERR_INTERNAL		7
#define AURORA_ERR_STALE_EPOCH	8
#define AURORA_ERR_NO_SEGMENT	9
#define AURORA_ERR_INCONSISTENT	10
#define AURORA_ERR_CONFLICT		11
#define AURORA_ERR_IO			12
#define AURORA_ERR_CORRUPT		13
/* Page service (GETPAGE, REL_SIZE, SEED_PAGES). */
#define AURORA_ERR_NOT_READY	14	/* segment not complete/indexed to the LSN in time */
#define AURORA_ERR_BELOW_HORIZON	15	/* the block existed at the LSN; nothing stored rebuilds it */
#define AURORA_ERR_NO_RELATION	16	/* the relation fork does not exist at the LSN */
#define AURORA_ERR_NO_BLOCK		17	/* the block does not exist at the LSN */
#define AURORA_ERR_REDO_FAILED	18	/* a record could not be applied */
#define AURORA_ERR_UNAVAILABLE	19	/* no WAL-redo helper configured or startable */
/* Volume epochs. */
#define AURORA_ERR_EPOCH_NOT_OPEN	20	/* segment not truncated for this epoch */
/* Size of per-code counter arrays: index = error code, index 0 unused. */
#define AURORA_ERR_COUNT		21

typedef struct aurora_header
{
	uint32_t	magic;
	uint16_t	version;
	uint16_t	type;
	uint32_t	flags;			/* reserved, must be 0 */
	uint32_t	body_len;
	uint64_t	volume_id;
	uint64_t	volume_epoch;
	uint64_t	membership_epoch;
	uint64_t	request_id;
	uint32_t	pg_id;
	uint32_t	crc32c;
} aurora_header;

/*
 * Encode header + body into out.  magic, version, body_len and crc32c are
 * filled in here (the values in *h are ignored), so callers set only the
 * fields that carry meaning.  Returns the number of bytes written
 * (AURORA_HEADER_SIZE + body_len), or 0 if out_cap is too small or the body
 * does not fit in a u32 length.
 */
size_t		aurora_encode(const aurora_header *h, const void *body, size_t body_len,
						  uint8_t *out, size_t out_cap);

/*
 * Decode and validate one complete message.  Checks, in this order: length
 * >= header (MALFORMED), magic (BAD_MAGIC), version (BAD_VERSION), body_len
 * <= max_body (TOO_LARGE), len == header + body_len (MALFORMED), CRC
 * (BAD_CRC), reserved flags == 0 (MALFORMED).  Returns 0 or an AURORA_ERR_*
 * code.  Every header field that lies entirely within msg is left in *h even
 * on error, so an ERROR reply can echo request_id and epochs.  On success
 * *body points into msg (or is NULL when body_len is 0).  body may be NULL.
 */
int			aurora_decode(const uint8_t *msg, size_t len, size_t max_body,
						  aurora_header *h, const uint8_t **body);

const char *aurora_error_name(uint32_t code);
const char *aurora_msg_type_name(uint32_t type);

/*
 * Bounded little-endian reader/writer.  Any access beyond the bounds (or a
 * string that is too long, or contains NUL) sets the sticky 'failed' flag
 * and makes later puts/gets no-ops returning zero, so a codec can do all its
 * gets and check once at the end.  A writer may be given data == NULL and
 * cap == 0 only if it never writes.
 */
typedef struct aurora_buf
{
	uint8_t    *wdata;			/* writer storage, NULL for a reader */
	const uint8_t *rdata;		/* reader storage (== wdata for a writer) */
	size_t		cap;
	size_t		pos;
	bool		failed;
} aurora_buf;

void		aurora_buf_init_writer(aurora_buf *b, uint8_t *data, size_t cap);
void		aurora_buf_init_reader(aurora_buf *b, const uint8_t *data, size_t len);
void		aurora_buf_put_u8(aurora_buf *b, uint8_t v);
void		aurora_buf_put_u16(aurora_buf *b, uint16_t v);
void		aurora_buf_put_u32(aurora_buf *b, uint32_t v);
void		aurora_buf_put_u64(aurora_buf *b, uint64_t v);
void		aurora_buf_put_bytes(aurora_buf *b, const void *p, size_t n);
/* u16 length prefix then the bytes, no terminator; fails if > 65535 bytes. */
void		aurora_buf_put_str(aurora_buf *b, const char *s);
uint8_t		aurora_buf_get_u8(aurora_buf *b);
uint16_t	aurora_buf_get_u16(aurora_buf *b);
uint32_t	aurora_buf_get_u32(aurora_buf *b);
uint64_t	aurora_buf_get_u64(aurora_buf *b);
void		aurora_buf_get_bytes(aurora_buf *b, void *p, size_t n);
/*
 * Read a u16-prefixed string into dst and NUL-terminate it.  Fails (and
 * leaves dst empty) if the string needs more than dst_cap - 1 bytes or
 * contains a NUL byte.
 */
void		aurora_buf_get_str(aurora_buf *b, char *dst, size_t dst_cap);
size_t		aurora_buf_remaining(const aurora_buf *b);
/* Bytes written (writer) or consumed (reader) so far. */
size_t		aurora_buf_len(const aurora_buf *b);
bool		aurora_buf_ok(const aurora_buf *b);

/*
 * The last step of every body codec.  A reader: 0 if nothing failed and the
 * body was consumed exactly, else AURORA_ERR_MALFORMED.  A writer: the
 * encoded length, 0 if anything failed (too small a buffer).
 */
int			aurora_buf_finish_read(const aurora_buf *b);
size_t		aurora_buf_finish_write(const aurora_buf *b);

/* STATUS_RESP body. */
#define AURORA_NODE_ID_MAX	63
#define AURORA_AZ_MAX		31
#define AURORA_STATE_MAX	31
/* Upper bound of an encoded STATUS_RESP body, for buffer sizing. */
#define AURORA_STATUS_BODY_MAX	512

typedef struct aurora_status_body
{
	char		node_id[AURORA_NODE_ID_MAX + 1];
	char		az[AURORA_AZ_MAX + 1];
	char		state[AURORA_STATE_MAX + 1];
	uint32_t	pid;
	uint64_t	uptime_ms;
	uint16_t	protocol_version;
	uint64_t	requests_total;
	uint64_t	errors_total;
	uint64_t	errors_by_code[AURORA_ERR_COUNT];
	uint32_t	segments;
	/* page service (PROTOCOL.md 5.2, 5.9); all 0 on a node without one */
	uint8_t		redo_configured;	/* 1 when walredo_postgres is set */
	uint32_t	coalesce_threshold;
	uint64_t	records_indexed;	/* envelopes indexed since start */
	uint64_t	getpage_requests;
	uint64_t	pages_seeded;		/* images stored by SEED_PAGES */
	uint64_t	images_written;		/* images made by coalescing */
	uint64_t	records_applied;	/* records applied by redo helpers */
	uint64_t	redo_failures;		/* redo requests that failed */
	uint64_t	index_errors;		/* segments whose indexing stopped at a bad record */
	/* background backlog (PROTOCOL.md 5.2); 0 from a node that does not send it */
	uint64_t	index_backlog_bytes;	/* log bytes below SCL not indexed yet */
	uint64_t	coalesce_backlog;	/* blocks waiting for a coalescing look */
} aurora_status_body;

/* Returns bytes written, or 0 if out_cap is too small or a string is too long. */
size_t		aurora_status_body_encode(const aurora_status_body *s, uint8_t *out, size_t out_cap);
/* Returns 0, or AURORA_ERR_MALFORMED for short, long or badly encoded bodies. */
int			aurora_status_body_decode(const uint8_t *body, size_t len, aurora_status_body *s);

/* ERROR body: code u32, message length u16, message bytes (UTF-8, no NUL). */
#define AURORA_ERROR_MESSAGE_MAX	1024
#define AURORA_ERROR_BODY_MAX		(4 + 2 + AURORA_ERROR_MESSAGE_MAX)

typedef struct aurora_error_body
{
	uint32_t	code;
	char		message[AURORA_ERROR_MESSAGE_MAX + 1];
} aurora_error_body;

size_t		aurora_error_body_encode(const aurora_error_body *e, uint8_t *out, size_t out_cap);
int			aurora_error_body_decode(const uint8_t *body, size_t len, aurora_error_body *e);

#endif
