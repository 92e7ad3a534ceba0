/*
 * segment_table.h - the segment table: all segments hosted by one storage
 * node (docs/architecture.md, "Volume geometry", "The storage node").  Not
 * the page store (pagestore.h), which indexes one segment's pages.
 *
 * The table owns <data_dir>/segments/, one directory per segment named
 * <volume_id as 16 lowercase hex digits>-<pg_id decimal>, and the table the
 * server looks segments up in.  A node holds at most one segment of a PG
 * (the six copies of a PG must sit on six distinct nodes, two per AZ, or one
 * node or AZ failure could take out more than the quorum tolerates), so
 * (volume_id, pg_id) identifies a segment on a node.
 *
 * Start-up opens every segment found (with log recovery, segment.h); a
 * segment that cannot be opened is logged and skipped, never deleted, so
 * one damaged directory does not keep the node's other segments offline.
 *
 * Thread safety: every function except aurora_segment_table_close may be
 * called concurrently.  Segments are never removed while the table is open, so a
 * pointer returned by find/create/foreach stays valid until close.
 */
#ifndef AURORA_NODE_SEGMENT_TABLE_H
#define AURORA_NODE_SEGMENT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "segment.h"

typedef struct aurora_segment_table aurora_segment_table;

/*
 * Create <data_dir>/segments if missing and open every segment in it.
 * Broken segments are skipped with a log line (aurora_segment_table_broken_count).
 * Fails (IO) only if the directory itself cannot be created or listed.
 */
int			aurora_segment_table_open(const char *data_dir, aurora_segment_table **out,
							  char *err, size_t errlen);

/* Close every segment's files and free; no other thread may use st. */
void		aurora_segment_table_close(aurora_segment_table *st);

/*
 * Check a membership for a segment this node (self_node_id) is to hold:
 * replica_index 0..5, valid node ids, AZs and URLs (INVALID); six distinct
 * node ids, two per AZ across three AZs, members[replica_index] is this
 * node and no other member is (CONFLICT).
 */
int			aurora_segment_table_validate_meta(const aurora_segment_meta *meta, const char *self_node_id,
									   char *err, size_t errlen);

/*
 * Create the segment meta describes (after aurora_segment_table_validate_meta) and
 * make it durable before returning: it appears on disk complete or not at
 * all (built in segments/.creating-<name>, then renamed).  If it already
 * exists with the same replica_index and members this is a success that
 * may raise the stored epochs (idempotent retry); with a different
 * membership or replica index it is CONFLICT.  A segment directory that
 * exists but failed to open at start-up is CONFLICT too (repair it by hand).
 * *out (may be NULL) receives the segment.
 */
int			aurora_segment_table_create_segment(aurora_segment_table *st, const aurora_segment_meta *meta,
										const char *self_node_id, aurora_segment **out,
										char *err, size_t errlen);

/* The segment of (volume_id, pg_id), or NULL if this node has none. */
aurora_segment *aurora_segment_table_find(aurora_segment_table *st, uint64_t volume_id, uint32_t pg_id);

/*
 * The directory of segment (volume_id, pg_id), whether or not it exists:
 * other per-segment state (the page store) lives inside it.
 */
void		aurora_segment_table_segment_path(aurora_segment_table *st, uint64_t volume_id, uint32_t pg_id,
									  char *buf, size_t len);

/* Segments open. */
int			aurora_segment_table_count(aurora_segment_table *st);

/* Segment directories skipped at open because they could not be opened. */
int			aurora_segment_table_broken_count(aurora_segment_table *st);

/*
 * Call fn for every segment (in (volume_id, pg_id) order, over a snapshot
 * of the table, so fn may call store functions).  Stops at the first
 * non-zero return of fn and returns it; 0 otherwise.
 */
int			aurora_segment_table_foreach(aurora_segment_table *st, int (*fn) (void *arg, aurora_segment *s),
								 void *arg);

/*
 * Sync every segment that has unsynced appends (the server's syncer thread:
 * one fdatasync per segment covers all batches appended since the last).
 * Every segment is attempted; returns the first error (message in err).
 */
int			aurora_segment_table_sync_all(aurora_segment_table *st, char *err, size_t errlen);

#endif
