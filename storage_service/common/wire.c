/*
 * wire.c - encoder/decoder for the aurora message header and bodies.
 *
 * Everything that touches bytes from the network goes through aurora_decode
 * and the aurora_buf reader, which never read past the bounds they were
 * given; the fuzz target in test/fuzz exercises exactly these entry points.
 * See wire.h for the API contract and PROTOCOL.md for the byte layout.
 */
#include "wire.h"

#include <string.h>

#include "crc32c.h"
#include "byteorder.h"

/* The CRC covers the header with its crc field zeroed, then the body. */
static uint32_t
message_crc(const uint8_t *hdr, const uint8_t *body, size_t body_len)
{
	uint8_t		tmp[AURORA_HEADER_SIZE];
	uint32_t	crc;

	memcpy(tmp, hdr, AURORA_HEADER_SIZE);
	aurora_put_le32(tmp + AURORA_OFF_CRC, 0);
	crc = aurora_crc32c(0, tmp, AURORA_HEADER_SIZE);
	if (body_len > 0)
		crc = aurora_crc32c(crc, body, body_len);
	return crc;
}

size_t
aurora_encode(const aurora_header *h, const void *body, size_t body_len,
			  uint8_t *out, size_t out_cap)
{
	uint8_t    *p = out;

	if (body_len > UINT32_MAX || out_cap < AURORA_HEADER_SIZE ||
		out_cap - AURORA_HEADER_SIZE < body_len)
		return 0;

	aurora_put_le32(p + AURORA_OFF_MAGIC, AURORA_MAGIC);
	aurora_put_le16(p + AURORA_OFF_VERSION, AURORA_PROTOCOL_VERSION);
	aurora_put_le16(p + AURORA_OFF_TYPE, h->type);
	aurora_put_le32(p + AURORA_OFF_FLAGS, h->flags);
	aurora_put_le32(p + AURORA_OFF_BODY_LEN, (uint32_t) body_len);
	aurora_put_le64(p + AURORA_OFF_VOLUME_ID, h->volume_id);
	aurora_put_le64(p + AURORA_OFF_VOLUME_EPOCH, h->volume_epoch);
	aurora_put_le64(p + AURORA_OFF_MEMBERSHIP_EPOCH, h->membership_epoch);
	aurora_put_le64(p + AURORA_OFF_REQUEST_ID, h->request_id);
	aurora_put_le32(p + AURORA_OFF_PG_ID, h->pg_id);
	if (body_len > 0)
		memmove(p + AURORA_HEADER_SIZE, body, body_len);
	aurora_put_le32(p + AURORA_OFF_CRC,
			 message_crc(p, p + AURORA_HEADER_SIZE, body_len));
	return AURORA_HEADER_SIZE + body_len;
}

/*
 * Fill every header field that lies wholly inside the first len bytes, so
 * even a truncated or foreign message yields whatever context it carries.
 */
static void
read_header_fields(const uint8_t *msg, size_t len, aurora_header *h)
{
	memset(h, 0, sizeof(*h));
#define FIELD(off, sz, dst, getter) \
	if (len >= (size_t) (off) + (sz)) \
		(dst) = getter(msg + (off))
	FIELD(AURORA_OFF_MAGIC, 4, h->magic, aurora_get_le32);
	FIELD(AURORA_OFF_VERSION, 2, h->version, aurora_get_le16);
	FIELD(AURORA_OFF_TYPE, 2, h->type, aurora_get_le16);
	FIELD(AURORA_OFF_FLAGS, 4, h->flags, aurora_get_le32);
	FIELD(AURORA_OFF_BODY_LEN, 4, h->body_len, aurora_get_le32);
	FIELD(AURORA_OFF_VOLUME_ID, 8, h->volume_id, aurora_get_le64);
	FIELD(AURORA_OFF_VOLUME_EPOCH, 8, h->volume_epoch, aurora_get_le64);
	FIELD(AURORA_OFF_MEMBERSHIP_EPOCH, 8, h->membership_epoch, aurora_get_le64);
	FIELD(AURORA_OFF_REQUEST_ID, 8, h->request_id, aurora_get_le64);
	FIELD(AURORA_OFF_PG_ID, 4, h->pg_id, aurora_get_le32);
	FIELD(AURORA_OFF_CRC, 4, h->crc32c, aurora_get_le32);
#undef FIELD
}

int
aurora_decode(const uint8_t *msg, size_t len, size_t max_body,
			  aurora_header *h, const uint8_t **body)
{
	if (body != NULL)
		*body = NULL;
	read_header_fields(msg, len, h);

	if (len < AURORA_HEADER_SIZE)
		return AURORA_ERR_MALFORMED;
	if (h->magic != AURORA_MAGIC)
		return AURORA_ERR_BAD_MAGIC;
	if (h->version != AURORA_PROTOCOL_VERSION)
		return AURORA_ERR_BAD_VERSION;
	if (h->body_len > max_body)
		return AURORA_ERR_TOO_LARGE;
	if (len - AURORA_HEADER_SIZE != h->body_len)
		return AURORA_ERR_MALFORMED;
	if (message_crc(msg, msg + AURORA_HEADER_SIZE, h->body_len) != h->crc32c)
		return AURORA_ERR_BAD_CRC;
	/* Flags are reserved; a sender using them expects semantics we lack. */
	if (h->flags != 0)
		return AURORA_ERR_MALFORMED;

	if (body != NULL && h->body_len > 0)
		*body = msg + AURORA_HEADER_SIZE;
	return 0;
}

const char *
aurora_error_name(uint32_t code)
{
	switch (code)
	{
		case 0:
			return "OK";
		case AURORA_ERR_MALFORMED:
			return "MALFORMED";
		case AURORA_ERR_BAD_MAGIC:
			return "BAD_MAGIC";
		case AURORA_ERR_BAD_VERSION:
			return "BAD_VERSION";
		case AURORA_ERR_BAD_CRC:
			return "BAD_CRC";
		case AURORA_ERR_TOO_LARGE:
			return "TOO_LARGE";
		case AURORA_ERR_UNKNOWN_TYPE:
			return "UNKNOWN_TYPE";
		case AURORA_ERR_INTERNAL:
			return "INTERNAL";
		case AURORA_ERR_STALE_EPOCH:
			return "STALE_EPOCH";
		case AURORA_ERR_NO_SEGMENT:
			return "NO_SEGMENT";
		case AURORA_ERR_INCONSISTENT:
			return "INCONSISTENT";
		case AURORA_ERR_CONFLICT:
			return "CONFLICT";
		case AURORA_ERR_IO:
			return "IO_ERROR";
		case AURORA_ERR_CORRUPT:
			return "CORRUPT";
		case AURORA_ERR_NOT_READY:
			return "NOT_READY";
		case AURORA_ERR_BELOW_HORIZON:
			return "BELOW_HORIZON";
		case AURORA_ERR_NO_RELATION:
			return "NO_RELATION";
		case AURORA_ERR_NO_BLOCK:
			return "NO_BLOCK";
		case AURORA_ERR_REDO_FAILED:
			return "REDO_FAILED";
		case AURORA_ERR_UNAVAILABLE:
			return "UNAVAILABLE";
		case AURORA_ERR_EPOCH_NOT_OPEN:
			return "EPOCH_NOT_OPEN";
	}
	return "UNKNOWN_ERROR";
}

const char *
aurora_msg_type_name(uint32_t type)
{
	switch (type)
	{
		case AURORA_MSG_ERROR:
			return "ERROR";
		case AURORA_MSG_STATUS_REQ:
			return "STATUS_REQ";
		case AURORA_MSG_STATUS_RESP:
			return "STATUS_RESP";
		case AURORA_MSG_CREATE_SEGMENT:
			return "CREATE_SEGMENT";
		case AURORA_MSG_SEGMENT_INFO:
			return "SEGMENT_INFO";
		case AURORA_MSG_LOG_APPEND:
			return "LOG_APPEND";
		case AURORA_MSG_LOG_ACK:
			return "LOG_ACK";
		case AURORA_MSG_READ_LOG:
			return "READ_LOG";
		case AURORA_MSG_READ_LOG_RESP:
			return "READ_LOG_RESP";
		case AURORA_MSG_SEGMENTS_REQ:
			return "SEGMENTS_REQ";
		case AURORA_MSG_SEGMENTS_RESP:
			return "SEGMENTS_RESP";
		case AURORA_MSG_SEGMENT_INFO_REQ:
			return "SEGMENT_INFO_REQ";
		case AURORA_MSG_RECORD_BEFORE_REQ:
			return "RECORD_BEFORE_REQ";
		case AURORA_MSG_RECORD_BEFORE:
			return "RECORD_BEFORE";
		case AURORA_MSG_GETPAGE_REQ:
			return "GETPAGE_REQ";
		case AURORA_MSG_PAGE:
			return "PAGE";
		case AURORA_MSG_REL_SIZE_REQ:
			return "REL_SIZE_REQ";
		case AURORA_MSG_REL_SIZE:
			return "REL_SIZE";
		case AURORA_MSG_SEED_PAGES:
			return "SEED_PAGES";
		case AURORA_MSG_SEED_ACK:
			return "SEED_ACK";
		case AURORA_MSG_FENCE_REQ:
			return "FENCE_REQ";
		case AURORA_MSG_FENCE_ACK:
			return "FENCE_ACK";
		case AURORA_MSG_TRUNCATE_REQ:
			return "TRUNCATE_REQ";
		case AURORA_MSG_TRUNCATE_ACK:
			return "TRUNCATE_ACK";
		case AURORA_MSG_START_STATE_PUT:
			return "START_STATE_PUT";
		case AURORA_MSG_START_STATE_ACK:
			return "START_STATE_ACK";
		case AURORA_MSG_START_STATE_GET:
			return "START_STATE_GET";
		case AURORA_MSG_START_STATE:
			return "START_STATE";
	}
	return "UNKNOWN";
}

/* ---- bounded buffer ---- */

void
aurora_buf_init_writer(aurora_buf *b, uint8_t *data, size_t cap)
{
	b->wdata = data;
	b->rdata = data;
	b->cap = cap;
	b->pos = 0;
	b->failed = false;
}

void
aurora_buf_init_reader(aurora_buf *b, const uint8_t *data, size_t len)
{
	b->wdata = NULL;
	b->rdata = data;
	b->cap = len;
	b->pos = 0;
	b->failed = false;
}

/* Reserve n bytes for writing; NULL (and the sticky flag) when impossible. */
static uint8_t *
buf_reserve(aurora_buf *b, size_t n)
{
	uint8_t    *p;

	if (b->failed || b->wdata == NULL || b->cap - b->pos < n)
	{
		b->failed = true;
		return NULL;
	}
	p = b->wdata + b->pos;
	b->pos += n;
	return p;
}

/* Consume n bytes for reading; NULL (and the sticky flag) when short. */
static const uint8_t *
buf_take(aurora_buf *b, size_t n)
{
	const uint8_t *p;

	if (b->failed || b->cap - b->pos < n)
	{
		b->failed = true;
		return NULL;
	}
	p = b->rdata + b->pos;
	b->pos += n;
	return p;
}

void
aurora_buf_put_u8(aurora_buf *b, uint8_t v)
{
	uint8_t    *p = buf_reserve(b, 1);

	if (p != NULL)
		p[0] = v;
}

void
aurora_buf_put_u16(aurora_buf *b, uint16_t v)
{
	uint8_t    *p = buf_reserve(b, 2);

	if (p != NULL)
		aurora_put_le16(p, v);
}

void
aurora_buf_put_u32(aurora_buf *b, uint32_t v)
{
	uint8_t    *p = buf_reserve(b, 4);

	if (p != NULL)
		aurora_put_le32(p, v);
}

void
aurora_buf_put_u64(aurora_buf *b, uint64_t v)
{
	uint8_t    *p = buf_reserve(b, 8);

	if (p != NULL)
		aurora_put_le64(p, v);
}

void
aurora_buf_put_bytes(aurora_buf *b, const void *src, size_t n)
{
	uint8_t    *p = buf_reserve(b, n);

	if (p != NULL && n > 0)
		memcpy(p, src, n);
}

void
aurora_buf_put_str(aurora_buf *b, const char *s)
{
	size_t		n = strlen(s);

	if (n > UINT16_MAX)
	{
		b->failed = true;
		return;
	}
	aurora_buf_put_u16(b, (uint16_t) n);
	aurora_buf_put_bytes(b, s, n);
}

uint8_t
aurora_buf_get_u8(aurora_buf *b)
{
	const uint8_t *p = buf_take(b, 1);

	return p != NULL ? p[0] : 0;
}

uint16_t
aurora_buf_get_u16(aurora_buf *b)
{
	const uint8_t *p = buf_take(b, 2);

	return p != NULL ? aurora_get_le16(p) : 0;
}

uint32_t
aurora_buf_get_u32(aurora_buf *b)
{
	const uint8_t *p = buf_take(b, 4);

	return p != NULL ? aurora_get_le32(p) : 0;
}

uint64_t
aurora_buf_get_u64(aurora_buf *b)
{
	const uint8_t *p = buf_take(b, 8);

	return p != NULL ? aurora_get_le64(p) : 0;
}

void
aurora_buf_get_bytes(aurora_buf *b, void *dst, size_t n)
{
	const uint8_t *p = buf_take(b, n);

	if (p != NULL && n > 0)
		memcpy(dst, p, n);
	else if (p == NULL && n > 0)
		memset(dst, 0, n);
}

void
aurora_buf_get_str(aurora_buf *b, char *dst, size_t dst_cap)
{
	uint16_t	n = aurora_buf_get_u16(b);
	const uint8_t *p;

	if (dst_cap > 0)
		dst[0] = '\0';
	if (b->failed)
		return;
	if ((size_t) n >= dst_cap)
	{
		b->failed = true;
		return;
	}
	p = buf_take(b, n);
	if (p == NULL)
		return;
	/* An embedded NUL would silently truncate the string for C callers. */
	if (n > 0 && memchr(p, '\0', n) != NULL)
	{
		b->failed = true;
		return;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
}

size_t
aurora_buf_remaining(const aurora_buf *b)
{
	return b->cap - b->pos;
}

size_t
aurora_buf_len(const aurora_buf *b)
{
	return b->pos;
}

bool
aurora_buf_ok(const aurora_buf *b)
{
	return !b->failed;
}

int
aurora_buf_finish_read(const aurora_buf *b)
{
	return (aurora_buf_ok(b) && aurora_buf_remaining(b) == 0) ? 0 : AURORA_ERR_MALFORMED;
}

size_t
aurora_buf_finish_write(const aurora_buf *b)
{
	return aurora_buf_ok(b) ? aurora_buf_len(b) : 0;
}

/* ---- body codecs ---- */

size_t
aurora_status_body_encode(const aurora_status_body *s, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;
	int			i;

	if (strlen(s->node_id) > AURORA_NODE_ID_MAX || strlen(s->az) > AURORA_AZ_MAX ||
		strlen(s->state) > AURORA_STATE_MAX)
		return 0;
	aurora_buf_init_writer(&b, out, out_cap);
	aurora_buf_put_str(&b, s->node_id);
	aurora_buf_put_str(&b, s->az);
	aurora_buf_put_str(&b, s->state);
	aurora_buf_put_u32(&b, s->pid);
	aurora_buf_put_u64(&b, s->uptime_ms);
	aurora_buf_put_u16(&b, s->protocol_version);
	aurora_buf_put_u64(&b, s->requests_total);
	aurora_buf_put_u64(&b, s->errors_total);
	/* counted, so that new error codes do not change the layout */
	aurora_buf_put_u16(&b, AURORA_ERR_COUNT);
	for (i = 0; i < AURORA_ERR_COUNT; i++)
		aurora_buf_put_u64(&b, s->errors_by_code[i]);
	aurora_buf_put_u32(&b, s->segments);
	aurora_buf_put_u8(&b, s->redo_configured);
	aurora_buf_put_u32(&b, s->coalesce_threshold);
	aurora_buf_put_u64(&b, s->records_indexed);
	aurora_buf_put_u64(&b, s->getpage_requests);
	aurora_buf_put_u64(&b, s->pages_seeded);
	aurora_buf_put_u64(&b, s->images_written);
	aurora_buf_put_u64(&b, s->records_applied);
	aurora_buf_put_u64(&b, s->redo_failures);
	aurora_buf_put_u64(&b, s->index_errors);
	aurora_buf_put_u64(&b, s->index_backlog_bytes);
	aurora_buf_put_u64(&b, s->coalesce_backlog);
	return aurora_buf_finish_write(&b);
}

int
aurora_status_body_decode(const uint8_t *body, size_t len, aurora_status_body *s)
{
	aurora_buf	b;
	int			i;

	memset(s, 0, sizeof(*s));
	aurora_buf_init_reader(&b, body, len);
	aurora_buf_get_str(&b, s->node_id, sizeof(s->node_id));
	aurora_buf_get_str(&b, s->az, sizeof(s->az));
	aurora_buf_get_str(&b, s->state, sizeof(s->state));
	s->pid = aurora_buf_get_u32(&b);
	s->uptime_ms = aurora_buf_get_u64(&b);
	s->protocol_version = aurora_buf_get_u16(&b);
	s->requests_total = aurora_buf_get_u64(&b);
	s->errors_total = aurora_buf_get_u64(&b);
	{
		/* a peer may know more codes than we do: keep what we know */
		uint16_t	n_codes = aurora_buf_get_u16(&b);

		for (i = 0; i < n_codes && aurora_buf_ok(&b); i++)
		{
			uint64_t	v = aurora_buf_get_u64(&b);

			if (i < AURORA_ERR_COUNT)
				s->errors_by_code[i] = v;
		}
	}
	s->segments = aurora_buf_get_u32(&b);
	/* a node without the page service fields (older) ends here: they stay 0 */
	if (aurora_buf_ok(&b) && aurora_buf_remaining(&b) == 0)
		return 0;
	s->redo_configured = aurora_buf_get_u8(&b);
	s->coalesce_threshold = aurora_buf_get_u32(&b);
	s->records_indexed = aurora_buf_get_u64(&b);
	s->getpage_requests = aurora_buf_get_u64(&b);
	s->pages_seeded = aurora_buf_get_u64(&b);
	s->images_written = aurora_buf_get_u64(&b);
	s->records_applied = aurora_buf_get_u64(&b);
	s->redo_failures = aurora_buf_get_u64(&b);
	s->index_errors = aurora_buf_get_u64(&b);
	/* a node from before the backlog fields ends here: they stay 0 */
	if (aurora_buf_ok(&b) && aurora_buf_remaining(&b) > 0)
	{
		s->index_backlog_bytes = aurora_buf_get_u64(&b);
		s->coalesce_backlog = aurora_buf_get_u64(&b);
	}
	if (!aurora_buf_ok(&b) || aurora_buf_remaining(&b) != 0)
	{
		memset(s, 0, sizeof(*s));
		return AURORA_ERR_MALFORMED;
	}
	return 0;
}

size_t
aurora_error_body_encode(const aurora_error_body *e, uint8_t *out, size_t out_cap)
{
	aurora_buf	b;

	if (strlen(e->message) > AURORA_ERROR_MESSAGE_MAX)
		return 0;
	aurora_buf_init_writer(&b, out, out_cap);
	aurora_buf_put_u32(&b, e->code);
	aurora_buf_put_str(&b, e->message);
	return aurora_buf_finish_write(&b);
}

int
aurora_error_body_decode(const uint8_t *body, size_t len, aurora_error_body *e)
{
	aurora_buf	b;

	memset(e, 0, sizeof(*e));
	aurora_buf_init_reader(&b, body, len);
	e->code = aurora_buf_get_u32(&b);
	aurora_buf_get_str(&b, e->message, sizeof(e->message));
	if (!aurora_buf_ok(&b) || aurora_buf_remaining(&b) != 0)
	{
		memset(e, 0, sizeof(*e));
		return AURORA_ERR_MALFORMED;
	}
	return 0;
}
