/*
 * wal_routing.c
 *	  Routing and batching (docs/architecture.md "A write's path"): each WAL
 *	  record the shipper decodes goes, whole, to the PGs of the pages it
 *	  changes (PG 0 if none, every PG if it changes relations;
 *	  common/volume.c) with a per-PG backlink, batched per PG while WAL keeps
 *	  arriving and sent when it pauses, through one quorum writer per PG
 *	  (common/pgwriter.c).  Each record is also queued for VCL
 *	  (watermarks.c).
 *
 *	  Called by the shipper's main loop (shipper.c); the writers' threads
 *	  call back into aurora_routing_pgcl_advanced() with the writer's mutex
 *	  held, which takes durable_lock (watermarks.c) after it.
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "storage/latch.h"

#include "commit_wait.h"
#include "record_meta.h"
#include "watermark.h"
#include "wal_routing.h"
#include "watermarks.h"

/*
 * Under load a window of SHIP_WINDOW batches per PG awaits its quorum.
 * Records that arrive while the window is full wait for an acknowledgement
 * and then go out together: under load every message carries more WAL, so
 * the per-message cost (six sends, six fdatasyncs, six replies, each a few
 * thread hand-offs) is paid per group of commits rather than per commit.
 * Unloaded, a batch goes out at once.  A batch that reaches BATCH_MAX_BYTES
 * goes out regardless.
 */
#define BATCH_MAX_BYTES	(1024 * 1024)

ShipPG	   *aurora_ship_pgs = NULL;
int			aurora_ship_n_pgs = 0;
volatile sig_atomic_t aurora_routing_wake_on_every_ack = false;

static int	wake_fd = -1;

/* The write end of the pipe that wakes the shipper's main loop. */
void
aurora_routing_set_wake_fd(int fd)
{
	wake_fd = fd;
}

/*
 * A quorum writer's thread (the writer's mutex held): PG arg's PGCL moved.
 * VDL moves and the commits it covers are released from here.  The main
 * loop is woken (write(2) is thread-safe) only when it holds a batch back
 * for window room, or drains for shutdown; it needs no wake-up to release
 * commits.
 */
void
aurora_routing_pgcl_advanced(void *arg, uint64_t pgcl)
{
	bool		main_waited;
	XLogRecPtr	released;
	char		b = 0;

	released = aurora_watermarks_pgcl_advanced((int) (intptr_t) arg, pgcl, &main_waited);
	if (released != InvalidXLogRecPtr)
		aurora_commit_wait_release(released);
	if (main_waited || aurora_routing_wake_on_every_ack)
		(void) write(wake_fd, &b, 1);
}

/* Send PG p's batch (asynchronously; acks arrive on the writer's threads). */
static void
send_batch(int p)
{
	ShipPG	   *pg = &aurora_ship_pgs[p];
	Size		off = 0;
	char		err[256];

	/* payload pointers are set now: the buffer may have moved while filling */
	for (int i = 0; i < pg->nrecs; i++)
	{
		pg->recs[i].payload = (const uint8_t *) pg->payloads.data + off;
		off += pg->recs[i].len;
	}
	if (aurora_pgwriter_append(pg->writer, pg->recs, pg->nrecs, err, sizeof(err)) != 0)
		ereport(ERROR,
				(errmsg("aurora shipper: cannot send a batch to protection group %d: %s",
						p, err)));
	memmove(&pg->window[1], &pg->window[0], sizeof(XLogRecPtr) * (SHIP_WINDOW - 1));
	pg->window[0] = pg->recs[pg->nrecs - 1].end_lsn;
	pg->nrecs = 0;
	resetStringInfo(&pg->payloads);
}

/* Batches of PG p sent and not yet at its PGCL. */
static int
batches_awaiting_quorum(ShipPG *pg)
{
	int			n = 0;
	XLogRecPtr	pgcl = aurora_pgwriter_pgcl(pg->writer);

	for (int i = 0; i < SHIP_WINDOW; i++)
		n += pg->window[i] > pgcl;
	return n;
}

static bool
window_has_room(ShipPG *pg)
{
	return batches_awaiting_quorum(pg) < SHIP_WINDOW;
}

/*
 * Send the PGs' batches whose window has room.  A batch held back goes out
 * when an acknowledgement makes room: the next one wakes the main loop.
 */
void
aurora_flush_batches(void)
{
	bool		held = false;

	for (int p = 0; p < aurora_ship_n_pgs; p++)
	{
		if (aurora_ship_pgs[p].nrecs == 0)
			continue;
		if (window_has_room(&aurora_ship_pgs[p]))
			send_batch(p);
		else
			held = true;
	}
	aurora_watermarks_main_waits(held);
	/* room made between the count and the flag woke nobody: look again */
	for (int p = 0; held && p < aurora_ship_n_pgs; p++)
		if (aurora_ship_pgs[p].nrecs > 0 && window_has_room(&aurora_ship_pgs[p]))
			SetLatch(MyLatch);
}

/* Ask every PG's segments for their SCL (heartbeat, or VDL stuck). */
void
aurora_probe_all_pgs(bool heartbeat)
{
	for (int p = 0; p < aurora_ship_n_pgs; p++)
		(void) aurora_pgwriter_probe(aurora_ship_pgs[p].writer, heartbeat);
}

/*
 * A record whose end leaves the database consistent.  Every PostgreSQL WAL
 * record is atomic for redo, so every end is one; this is where a
 * multi-record atomic unit would say otherwise.
 */
static bool
record_end_is_cpl(XLogReaderState *r)
{
	return true;
}

/*
 * The PGs of a record: those of the pages it changes (referenced or
 * implicit, see record_meta.c), or PG 0 when it changes none.  Returns
 * AURORA_RECORD_EVERY_PG when it changes relations (any PG may hold chunks
 * of them).
 */
static int
record_pgs(const RecordMeta *meta, const aurora_geometry *g, uint32 *rec_pgs)
{
	int			npgs = 0;

	if (meta->nevents > 0)
		return AURORA_RECORD_EVERY_PG;
	for (int b = 0; b < meta->nblocks; b++)
	{
		uint32		p = aurora_block_pg(g, &meta->blocks[b].ref);
		bool		seen = false;

		for (int i = 0; i < npgs; i++)
			seen |= rec_pgs[i] == p;
		if (!seen)
			rec_pgs[npgs++] = p;
	}
	if (npgs == 0)
		rec_pgs[npgs++] = 0;	/* no page: PG 0 (docs/architecture.md "A write's path") */
	return npgs;
}

/* Append the record r has decoded to PG p's batch: envelope + WAL record. */
static void
batch_record(int p, XLogReaderState *r, const RecordMeta *meta, aurora_wal_copier copy_bytes)
{
	ShipPG	   *pg = &aurora_ship_pgs[p];
	aurora_log_record *lr;
	int			before = pg->payloads.len;

	if (pg->nrecs == pg->caprecs)
	{
		pg->caprecs = pg->caprecs ? pg->caprecs * 2 : 64;
		pg->recs = pg->recs ? repalloc(pg->recs, sizeof(*pg->recs) * pg->caprecs) :
			palloc(sizeof(*pg->recs) * pg->caprecs);
	}
	lr = &pg->recs[pg->nrecs++];
	lr->start_lsn = r->ReadRecPtr;
	lr->end_lsn = r->EndRecPtr;
	lr->prev_lsn = pg->last_start;
	lr->payload = NULL;			/* set in send_batch */
	aurora_record_meta_append(meta, &pg->payloads);
	copy_bytes(r->ReadRecPtr, XLogRecGetTotalLen(r), &pg->payloads);
	lr->len = (uint32) (pg->payloads.len - before);
	pg->last_start = r->ReadRecPtr;
	if (pg->payloads.len >= BATCH_MAX_BYTES)
		send_batch(p);
}

/* Queue the record just decoded for each of its PGs and for VCL. */
void
aurora_route_record(XLogReaderState *r, const aurora_geometry *g, aurora_wal_copier copy_bytes)
{
	static RecordMeta meta;
	uint32		rec_pgs[AURORA_RECORD_MAX_PGS];
	int			npgs;

	aurora_record_meta(r, &meta);
	npgs = record_pgs(&meta, g, rec_pgs);
	if (npgs == AURORA_RECORD_EVERY_PG)
		for (int p = 0; p < aurora_ship_n_pgs; p++)
			batch_record(p, r, &meta, copy_bytes);
	else
		for (int i = 0; i < npgs; i++)
			batch_record((int) rec_pgs[i], r, &meta, copy_bytes);
	aurora_watermarks_track(r->EndRecPtr, record_end_is_cpl(r), npgs, rec_pgs);
}
