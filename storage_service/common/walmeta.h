/*
 * walmeta.h - the envelope a compute puts in front of every WAL record it
 * ships to a volume with geometry: which pages the record changes and what
 * it does to relation sizes (PROTOCOL.md 11).
 *
 * Why an envelope: storage must index records by page (page store,
 * docs/architecture.md "The storage node") and know relation sizes, but it has no PostgreSQL headers and must not
 * re-implement WAL decoding.  The compute already decodes every record with
 * PostgreSQL's own reader to route it, so it writes down what it learnt;
 * storage stores the envelope with the record (it is part of the payload,
 * so the log, gossip and READ_LOG carry it unchanged) and indexes from it.
 * The WAL bytes follow the envelope untouched: the WAL-redo helper applies
 * them with PostgreSQL's redo routines.
 *
 * Shared by the shipper (encoder), the storage node (decoder, indexer) and
 * aurora-ctl (log tools).  No PostgreSQL headers.
 */
#ifndef AURORA_WALMETA_H
#define AURORA_WALMETA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume.h"				/* aurora_block_ref */
#include "wire.h"				/* aurora_buf */

#define AURORA_WALMETA_VERSION		1
/* fixed part: u8 version, u8 flags, u16 n_blocks, u32 n_events */
#define AURORA_WALMETA_HEADER_SIZE	8
#define AURORA_WALMETA_BLOCK_SIZE	18
#define AURORA_WALMETA_EVENT_SIZE	18
/* PostgreSQL's XLogRecord header: the shortest WAL record there is */
#define AURORA_WAL_RECORD_MIN		24
/*
 * A record references at most 33 blocks (XLR_MAX_BLOCK_ID); implicit
 * visibility-map pages can add as many again.  Events are not capped: a
 * commit can drop any number of relations (the message size bounds them).
 */
#define AURORA_WALMETA_MAX_BLOCKS	128

/* Block flags. */
/* the record sets the whole page (full-page image applied, or page init) */
#define AURORA_BLOCK_WILL_INIT		0x01
/*
 * Redo changes the page although the record does not reference it (heap
 * records clearing visibility-map bits, a truncation trimming the last VM
 * page).  It does not imply that the block exists.
 */
#define AURORA_BLOCK_IMPLICIT		0x02
#define AURORA_BLOCK_FLAGS_KNOWN	(AURORA_BLOCK_WILL_INIT | AURORA_BLOCK_IMPLICIT)

/* A page the record changes. */
typedef struct aurora_walmeta_block
{
	aurora_block_ref ref;
	uint8_t		flags;			/* AURORA_BLOCK_* */
} aurora_walmeta_block;

/* Relation-level events, in the order redo performs them. */
typedef enum aurora_rel_op
{
	AURORA_REL_CREATE = 1,		/* fork exists from here (size 0 if new) */
	AURORA_REL_TRUNCATE = 2,	/* fork size = min(size, nblocks) */
	AURORA_REL_DROP = 3,		/* every fork of the relation is gone */
	AURORA_REL_DROP_DATABASE = 4	/* every relation of (spc, db) is gone */
} aurora_rel_op;

typedef struct aurora_walmeta_event
{
	uint8_t		op;				/* aurora_rel_op */
	uint32_t	spc_oid;
	uint32_t	db_oid;
	uint32_t	rel_number;		/* 0 for DROP_DATABASE */
	uint8_t		fork;			/* 0 for DROP and DROP_DATABASE */
	uint32_t	nblocks;		/* TRUNCATE only, else 0 */
} aurora_walmeta_event;

/*
 * A decoded envelope.  Blocks and events stay encoded in the payload (which
 * must outlive this) and are read with aurora_walmeta_block_at/_event_at.
 */
typedef struct aurora_walmeta
{
	int			n_blocks;
	int			n_events;
	const uint8_t *blocks;		/* encoded block list */
	const uint8_t *events;		/* encoded event list */
	const uint8_t *wal;			/* the WAL record */
	uint32_t	wal_len;
} aurora_walmeta;

/* Bytes the envelope takes in front of the WAL record. */
size_t		aurora_walmeta_size(int n_blocks, int n_events);

/*
 * Write an envelope with these blocks and events to b; the caller appends
 * the WAL record after it.
 */
void		aurora_walmeta_put(aurora_buf *b, const aurora_walmeta_block *blocks, int n_blocks,
							   const aurora_walmeta_event *events, int n_events);

/*
 * Decode payload (one record's bytes) into m.  Checks the version, the
 * flags of every block and the op of every event, and that the rest is one
 * whole WAL record (at least 24 bytes and exactly its own xl_tot_len).
 * Returns 0, or AURORA_ERR_MALFORMED with the reason in err.
 */
int			aurora_walmeta_decode(const uint8_t *payload, size_t len, aurora_walmeta *m,
								  char *err, size_t errlen);

/* Block i (0 <= i < m->n_blocks) and event i of a decoded envelope. */
void		aurora_walmeta_block_at(const aurora_walmeta *m, int i, aurora_walmeta_block *out);
void		aurora_walmeta_event_at(const aurora_walmeta *m, int i, aurora_walmeta_event *out);

/*
 * The PGs a decoded record belongs to (PROTOCOL.md 10 and 11): returns
 * AURORA_WALMETA_EVERY_PG when it has relation events (pgs untouched), else
 * the number of distinct PGs of its blocks written to pgs (PG 0 alone when it
 * lists none).  Readers of a volume (aurora-compute-init) use it to know in
 * which PGs a record must be found.
 */
#define AURORA_WALMETA_EVERY_PG	(-1)
int			aurora_walmeta_pgs(const aurora_walmeta *m, const aurora_geometry *g,
							   uint32_t pgs[AURORA_WALMETA_MAX_BLOCKS]);

/* The WAL record inside a payload, or NULL (with *len 0) if malformed. */
const uint8_t *aurora_walmeta_wal(const uint8_t *payload, size_t len, uint32_t *wal_len);

#endif							/* AURORA_WALMETA_H */
