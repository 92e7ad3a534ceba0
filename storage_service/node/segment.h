/*
 * segment.h - one segment: this node's durable copy of the log of one
 * protection group (PG) of one volume (docs/architecture.md, "The storage
 * node").
 *
 * A segment is the unit the foreground write path works on: a batch of log
 * records is validated and appended to the segment's log file
 * (aurora_segment_append), made durable by a group-commit fdatasync
 * (aurora_segment_sync), and acknowledged with the segment's SCL, the point up
 * to which its backlink chain is unbroken and durable ("Watermarks").  Later
 * background work (gossip, page materialization, scrubbing) reads records
 * back with aurora_segment_read and finds what to fetch from peers with
 * aurora_segment_get_holes.
 *
 * Files: <segment dir>/log (the records, format at the top of segment.c) and
 * <segment dir>/meta (identity, membership, epochs; format at the top of
 * segment_meta.c).  segment_table.h owns the
 * directory layout of a node and the table of its segments; this module
 * knows only one directory.
 *
 * Thread safety: every function may be called concurrently from several
 * threads (server workers append/read/status, a syncer thread syncs), except
 * aurora_segment_close, which must run after all other use has stopped.
 */
#ifndef AURORA_NODE_SEGMENT_H
#define AURORA_NODE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * aurora_member, aurora_log_record and AURORA_PG_COPIES (quorum.h) are the
 * wire's types (logmsg.h), so a record is described one way everywhere.  A
 * record's prev_lsn is the start_lsn of the PG's previous record (the
 * backlink, "A write's path"); its payload belongs to whoever built the struct.
 */
#include "logmsg.h"

/* Error codes (0 is success).  Messages go to the caller's err buffer. */
#define AURORA_SEG_OK					0
#define AURORA_SEG_ERR_INVALID			1	/* bad record/meta fields, malformed batch */
#define AURORA_SEG_ERR_INCONSISTENT		2	/* contradicts records already held */
#define AURORA_SEG_ERR_TOO_LARGE		3	/* payload over the caller's limit */
#define AURORA_SEG_ERR_IO				4	/* the OS refused; or an earlier I/O failure */
#define AURORA_SEG_ERR_CORRUPT			5	/* bytes on disk fail their checksum/format */
#define AURORA_SEG_ERR_CONFLICT			6	/* store: create conflicts with what exists */
#define AURORA_SEG_ERR_NOT_FOUND		7
#define AURORA_SEG_ERR_STALE			8	/* an epoch below the segment's */

/* On-disk constants of the log file (see the format comment in segment.c). */
#define AURORA_SEG_LOG_MAGIC_TEXT		"AURORALOG"
#define AURORA_SEG_LOG_HEADER_SIZE		16
#define AURORA_SEG_LOG_VERSION			1
#define AURORA_SEG_RECORD_MAGIC			0x474F4C41u	/* "ALOG" little-endian */
#define AURORA_SEG_RECORD_HEADER_SIZE	36

typedef struct aurora_segment aurora_segment;

typedef struct aurora_segment_meta
{
	uint64_t	volume_id;
	uint32_t	pg_id;
	uint32_t	replica_index;	/* 0..5, this node's position in members[] */
	aurora_member members[AURORA_PG_COPIES];
	uint64_t	volume_epoch;
	uint64_t	membership_epoch;
	/*
	 * Where this segment's chain starts: the prev_lsn of the first record it
	 * must hold (0 for a new volume).  The record starting at base_lsn and
	 * everything before it are covered by the base and never stored.
	 */
	uint64_t	base_lsn;
	/* the volume's geometry (volume.h) as its writer declared it; 0, 0: none */
	uint32_t	n_pgs;
	uint32_t	blocks_per_segment;
	/*
	 * Volume epochs (PROTOCOL.md 5, 9): the epoch of the last truncation
	 * applied (the creation epoch for a new segment).  The segment serves
	 * writes and pages only when truncated_epoch == volume_epoch and no cut
	 * is pending (aurora_segment_is_open).
	 */
	uint64_t	truncated_epoch;
	uint64_t	records_dropped;	/* by truncations, in total */
	bool		cut_pending;	/* a truncation is committed, its cut not finished */
	uint64_t	cut_lsn;		/* where that cut starts */
} aurora_segment_meta;

/* Missing: records of the PG with start in [from_lsn, to_lsn) may exist. */
typedef struct aurora_hole
{
	uint64_t	from_lsn;
	uint64_t	to_lsn;
} aurora_hole;

typedef struct aurora_segment_stats
{
	uint64_t	scl;
	uint64_t	highest_lsn;	/* highest end_lsn held durably (base_lsn if none) */
	uint64_t	records;		/* durable records */
	uint64_t	pending_records;	/* appended, not yet synced */
	uint64_t	bytes_on_disk;	/* log file bytes written, header included */
	uint64_t	volume_epoch;
	uint64_t	membership_epoch;
	uint32_t	n_holes;
	uint64_t	recovered_truncated_bytes;	/* cut from the log at the last open */
	char		recovery_note[200];	/* "" or what recovery cut and why */
	/* gossip (aurora_segment_note_gossip); 0 until the first round */
	uint64_t	peer_scl;		/* highest SCL a same-epoch peer reported last round */
	uint64_t	records_from_peers; /* records fetched from peers since open */
} aurora_segment_stats;

/*
 * Write meta and an empty log (header only) into the existing, empty
 * directory dir and make them durable (files and dir fsynced).  The store
 * calls this on a temporary directory and renames it into place, so a
 * segment directory is either complete or absent.  meta is not validated
 * beyond what the meta file format needs (see aurora_segment_table_validate_meta).
 */
int			aurora_segment_format(const char *dir, const aurora_segment_meta *meta,
								  char *err, size_t errlen);

/*
 * Open the segment in dir: read meta, scan the log and cut a torn or
 * corrupt tail (reported in the stats' recovery fields and the node log),
 * make what survived durable and compute SCL from it.  Errors: IO, CORRUPT
 * (meta or log header unusable; nothing is modified).
 */
int			aurora_segment_open(const char *dir, aurora_segment **out,
								char *err, size_t errlen);

/* Close files and free.  No other thread may use s any more. */
void		aurora_segment_close(aurora_segment *s);

/*
 * Append a batch.  The whole batch is validated first and nothing is
 * written if any record fails:
 *   INVALID       n < 0; start_lsn >= end_lsn; prev_lsn >= start_lsn;
 *                 NULL payload with len > 0; two batch records overlap
 *   TOO_LARGE     len > max_payload
 *   INCONSISTENT  overlaps a held record without being byte-identical to
 *                 it, or contradicts the backlinks of its neighbours
 * A record identical to a held one (same start, end, prev and payload CRC)
 * is skipped, so retries are idempotent; a record starting at or before
 * base_lsn is skipped (covered by the base).  New records are written with
 * write(2) but are NOT durable until the next aurora_segment_sync; records
 * may arrive out of order, leaving holes.  *n_new (may be NULL) receives the
 * number of records written.  IO: the write failed (the file is restored to
 * its previous length; if even that fails the segment refuses all further
 * writes until reopened).
 */
int			aurora_segment_append(aurora_segment *s, const aurora_log_record *recs, int n,
								  uint32_t max_payload, int *n_new, char *err, size_t errlen);

/*
 * Make everything appended before the call durable and advance SCL over it.
 * Group commit: the fdatasync runs outside the segment mutex so appends
 * continue meanwhile, and a caller whose records are already covered by a
 * sync in flight waits for that one instead of issuing another.  After a
 * failed fdatasync the segment is marked failed (the kernel may have dropped
 * the dirty pages, so a retry could falsely succeed): every later append and
 * sync returns IO until the segment is reopened and recovered from disk.
 */
int			aurora_segment_sync(aurora_segment *s, char *err, size_t errlen);

/*
 * Keep zero-filled space ahead of the log (1 MiB, renewed when half is
 * used), so that syncs after appends write only data.  Off the
 * acknowledgement path: the node's syncers call it after acking.  Returns
 * AURORA_SEG_OK (also when nothing was needed) or an error; a failed
 * preallocation loses nothing.
 */
int			aurora_segment_preallocate(aurora_segment *s, char *err, size_t errlen);

/* True if records were appended since the last sync (and s has not failed). */
bool		aurora_segment_needs_sync(aurora_segment *s);

/*
 * Emit the durable records with from_lsn <= start_lsn < to_lsn in start
 * order.  Each record is read back with pread into a buffer owned by this
 * call (r->payload is valid only during emit) and its CRC verified: a
 * mismatch returns CORRUPT and nothing of that record is emitted.  Stops
 * with *truncated = true before the payload total would exceed max_bytes,
 * but always emits at least one record if any matches.  If emit returns
 * non-zero the read stops and returns that value.  truncated may be NULL.
 */
int			aurora_segment_read(aurora_segment *s, uint64_t from_lsn, uint64_t to_lsn,
								size_t max_bytes,
								aurora_record_fn emit,
								void *arg, bool *truncated);

/*
 * Raise the epochs (each is only ever raised, never lowered) and persist
 * the meta durably before returning.  Nothing is written if neither rises.
 */
int			aurora_segment_set_epochs(aurora_segment *s, uint64_t volume_epoch,
									  uint64_t membership_epoch, char *err, size_t errlen);

void		aurora_segment_get_meta(aurora_segment *s, aurora_segment_meta *out);
void		aurora_segment_get_stats(aurora_segment *s, aurora_segment_stats *out);

/*
 * The durable record with the highest start_lsn < lsn: its start, end, prev
 * and len go to *out (payload NULL).  False if there is none.  The writer
 * resuming a PG uses it to learn the backlink its next record must carry.
 */
bool		aurora_segment_record_before(aurora_segment *s, uint64_t lsn,
										 aurora_log_record *out);

/*
 * Record what a gossip round learned: the highest SCL among the segment's
 * same-epoch peers, and how many records it fetched from them (added to the
 * running total).
 */
void		aurora_segment_note_gossip(aurora_segment *s, uint64_t peer_scl,
									   uint64_t records_fetched);

/* ---- volume epochs (segment_truncate.c; PROTOCOL.md 5.10, 9) ---- */

/* What a truncation did. */
typedef struct aurora_segment_truncation
{
	bool		repeat;			/* the history already ended with this (E, V): nothing done */
	uint64_t	cut_lsn;		/* records with start >= it are gone */
	uint64_t	records_dropped;
	uint64_t	bytes_dropped;
} aurora_segment_truncation;

/*
 * Fence: raise the volume epoch to epoch durably (nothing written if it is
 * already there).  STALE if epoch is below the segment's.
 */
int			aurora_segment_fence(aurora_segment *s, uint64_t epoch, char *err, size_t errlen);

/*
 * Truncate to the history hist[0..n) whose last entry (E, V) opens epoch E:
 * INVALID (not a valid history), STALE (E below the volume epoch), CONFLICT
 * (the segment has an entry for E with another lsn), OK with res->repeat
 * (the history already ends with (E, V)).  Otherwise the new history and
 * epochs are committed durably with a pending cut at L, the lsn of the
 * first entry above the segment's truncated epoch, and every record with
 * start >= L is dropped from the log; the segment stays closed
 * (aurora_segment_is_open false) until aurora_segment_truncate_done, which
 * the caller calls once what it derived from the log (the page store) is
 * cut too.
 */
int			aurora_segment_truncate(aurora_segment *s, const aurora_trunc_entry *hist, int n,
									aurora_segment_truncation *res, char *err, size_t errlen);
/* Finish a pending cut durably (no-op if none): the segment is open again. */
int			aurora_segment_truncate_done(aurora_segment *s, char *err, size_t errlen);
/*
 * Open for its epoch: truncated_epoch == volume_epoch and no cut pending.
 * Only an open segment takes records or serves pages.
 */
bool		aurora_segment_is_open(aurora_segment *s);
/* The history's last entry into *out; false if the history is empty. */
bool		aurora_segment_last_truncation(aurora_segment *s, aurora_trunc_entry *out);
/* Copy up to max history entries into out (may be NULL); returns how many there are. */
int			aurora_segment_get_history(aurora_segment *s, aurora_trunc_entry *out, int max);

/* Copy up to max holes in LSN order into out; returns the total count. */
int			aurora_segment_get_holes(aurora_segment *s, aurora_hole *out, int max);

/* Whether s is a valid node id / AZ name: 1..size-1 of [A-Za-z0-9_-]. */
bool		aurora_segment_name_ok(const char *s, size_t size);

/* Name of the segment's directory under <data_dir>/segments ("%016x-%u"). */
void		aurora_segment_dir_name(uint64_t volume_id, uint32_t pg_id, char *buf, size_t len);

#endif
