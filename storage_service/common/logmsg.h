/*
 * logmsg.h - bodies of the segment log messages (CREATE_SEGMENT, LOG_APPEND,
 * READ_LOG, SEGMENTS and their replies), built on the bounded reader/writer
 * of wire.h.  Shared by the storage node, aurora-ctl and the compute's
 * shipper, so a record is encoded one way everywhere.
 *
 * Decoders never copy payloads: a decoded record points into the message,
 * which must outlive it.  Every decoder checks that the body is consumed
 * exactly and returns 0 or AURORA_ERR_MALFORMED.
 */
#ifndef AURORA_LOGMSG_H
#define AURORA_LOGMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "epochmsg.h"			/* truncation history */
#include "quorum.h"				/* AURORA_PG_COPIES */
#include "wire.h"

#define AURORA_URL_MAX			255

/* One member (segment holder) of a protection group. */
typedef struct aurora_member
{
	char		node_id[AURORA_NODE_ID_MAX + 1];
	char		az[AURORA_AZ_MAX + 1];
	char		url[AURORA_URL_MAX + 1];
} aurora_member;

/* One WAL record as a protection group sees it. */
typedef struct aurora_log_record
{
	uint64_t	start_lsn;
	uint64_t	end_lsn;
	uint64_t	prev_lsn;		/* start of the previous record of this PG */
	uint32_t	len;
	const uint8_t *payload;
} aurora_log_record;

/*
 * Who reads a segment's log back (aurora_segment_read on a node,
 * ctl_read_log_each over READ_LOG) hands each record, in LSN order, to one
 * of these: 0 goes on, anything else stops the read.  r->payload is valid
 * only during the call.
 */
typedef int (*aurora_record_fn) (void *arg, const aurora_log_record *r);

/* Bytes a record takes in LOG_APPEND / READ_LOG_RESP besides its payload. */
#define AURORA_RECORD_OVERHEAD	28

/* ---- CREATE_SEGMENT (volume, PG and epochs in the header) ---- */
typedef struct aurora_create_segment
{
	uint32_t	replica_index;	/* receiver's position in members[] */
	uint64_t	base_lsn;		/* prev_lsn of the first record it must hold */
	aurora_member members[AURORA_PG_COPIES];
	/* the volume's geometry (volume.h); 0, 0 = not a routed volume (tools) */
	uint32_t	n_pgs;
	uint32_t	blocks_per_segment;
} aurora_create_segment;

size_t		aurora_create_segment_encode(const aurora_create_segment *c,
										 uint8_t *out, size_t out_cap);
int			aurora_create_segment_decode(const uint8_t *body, size_t len,
										 aurora_create_segment *c);

/* ---- SEGMENT_INFO: reply to CREATE_SEGMENT ---- */
typedef struct aurora_segment_info
{
	uint32_t	replica_index;
	uint64_t	scl;
	uint64_t	highest_lsn;
	uint32_t	n_pgs;			/* geometry recorded with the segment */
	uint32_t	blocks_per_segment;
	uint64_t	seeded_lsn;		/* LSN of the segment's base images (SEED_PAGES); 0 = none */
	/* volume epochs (PROTOCOL.md 5.3); 0 and empty from a node that predates them */
	uint64_t	truncated_epoch;	/* epoch of the last truncation the segment applied */
	aurora_trunc_list history;	/* its truncation history (points into the body) */
} aurora_segment_info;

size_t		aurora_segment_info_encode(const aurora_segment_info *i,
									   uint8_t *out, size_t out_cap);
int			aurora_segment_info_decode(const uint8_t *body, size_t len,
									   aurora_segment_info *i);

/*
 * ---- LOG_APPEND and READ_LOG_RESP record lists ----
 * Encoding: u32 count, then per record u64 start, u64 end, u64 prev,
 * u32 len, len bytes.  aurora_records_encoded_size() sizes the buffer.
 */
size_t		aurora_records_encoded_size(const aurora_log_record *recs, int n);
void		aurora_records_put(aurora_buf *b, const aurora_log_record *recs, int n);

/*
 * Decode a record list.  *recs is malloc'd (free() it); records point into
 * body.  The count is checked against the bytes present before allocating,
 * so a hostile count cannot make us allocate more than the body justifies.
 */
int			aurora_records_get(aurora_buf *b, aurora_log_record **recs, int *n);

size_t		aurora_log_append_encode(const aurora_log_record *recs, int n,
									 uint8_t *out, size_t out_cap);
int			aurora_log_append_decode(const uint8_t *body, size_t len,
									 aurora_log_record **recs, int *n);

/* ---- LOG_ACK: the segment's SCL after the batch is durable ---- */
typedef struct aurora_log_ack
{
	uint64_t	scl;
	uint64_t	highest_lsn;
	uint32_t	n_new;			/* records stored by this request */
	uint32_t	n_duplicate;	/* records it already held */
} aurora_log_ack;

size_t		aurora_log_ack_encode(const aurora_log_ack *a, uint8_t *out, size_t out_cap);
int			aurora_log_ack_decode(const uint8_t *body, size_t len, aurora_log_ack *a);

/* ---- READ_LOG: durable records with from_lsn <= start_lsn < to_lsn ---- */
typedef struct aurora_read_log
{
	uint64_t	from_lsn;
	uint64_t	to_lsn;
	uint32_t	max_bytes;		/* payload budget of the reply; >= 1 record */
} aurora_read_log;

size_t		aurora_read_log_encode(const aurora_read_log *r, uint8_t *out, size_t out_cap);
int			aurora_read_log_decode(const uint8_t *body, size_t len, aurora_read_log *r);

typedef struct aurora_read_log_resp
{
	uint64_t	scl;
	bool		truncated;		/* more records in range than max_bytes allowed */
	int			n;
	aurora_log_record *recs;	/* malloc'd by decode; free() it */
} aurora_read_log_resp;

/* Encoding is done by the node with aurora_buf directly (records streamed). */
int			aurora_read_log_resp_decode(const uint8_t *body, size_t len,
										aurora_read_log_resp *r);

/*
 * ---- RECORD_BEFORE_REQ (u64 lsn) and RECORD_BEFORE: the header of the
 * segment's last durable record starting before lsn ----
 */
typedef struct aurora_record_before
{
	bool		found;
	uint64_t	start_lsn;		/* 0 when !found */
	uint64_t	end_lsn;
	uint64_t	prev_lsn;
	uint64_t	scl;			/* the segment's SCL when it answered */
} aurora_record_before;

size_t		aurora_record_before_req_encode(uint64_t lsn, uint8_t *out, size_t out_cap);
int			aurora_record_before_req_decode(const uint8_t *body, size_t len, uint64_t *lsn);
size_t		aurora_record_before_encode(const aurora_record_before *r, uint8_t *out,
										size_t out_cap);
int			aurora_record_before_decode(const uint8_t *body, size_t len,
										aurora_record_before *r);

/* ---- SEGMENTS_RESP: per-segment state of a node ---- */
#define AURORA_HOLES_LISTED_MAX	16
#define AURORA_NOTE_MAX			199

typedef struct aurora_segment_state
{
	uint64_t	volume_id;
	uint32_t	pg_id;
	uint32_t	replica_index;
	uint64_t	scl;
	uint64_t	highest_lsn;
	uint64_t	records;
	uint64_t	bytes_on_disk;
	uint64_t	volume_epoch;
	uint64_t	membership_epoch;
	uint32_t	n_holes;		/* all holes */
	uint16_t	n_holes_listed; /* the first ones, below */
	uint64_t	holes[AURORA_HOLES_LISTED_MAX][2];	/* [from, to) */
	char		recovery_note[AURORA_NOTE_MAX + 1];
	uint64_t	peer_scl;		/* highest same-epoch peer SCL seen by gossip */
	uint64_t	records_from_peers; /* records gossip fetched since the node started */
	/* page service (PROTOCOL.md 5.9); 0 for a segment without geometry */
	uint64_t	indexed_lsn;	/* the page index covers every record ending <= it */
	uint64_t	page_images;	/* page images held (seeded and coalesced) */
	/* volume epochs (PROTOCOL.md 5.6) */
	uint64_t	truncated_epoch;
	uint64_t	last_trunc_epoch;	/* last history entry; 0, 0 if none */
	uint64_t	last_trunc_lsn;
	uint64_t	records_dropped;	/* records truncations dropped, in total */
} aurora_segment_state;

void		aurora_segment_state_put(aurora_buf *b, const aurora_segment_state *s);
void		aurora_segment_state_get(aurora_buf *b, aurora_segment_state *s);

/* u32 count then the states; *states malloc'd by decode. */
int			aurora_segments_resp_decode(const uint8_t *body, size_t len,
										aurora_segment_state **states, int *n);

#endif							/* AURORA_LOGMSG_H */
