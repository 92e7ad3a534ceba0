/*
 * shipper.c
 *	  The WAL shipper background worker (aurora.shipping; issue 4, in
 *	  progress).
 *
 *	  The shipper reads the compute's WAL straight from pg_wal, up to the
 *	  local flush point, as soon as a committing backend sets its latch
 *	  (commit_wait.c) or, while WAL is being written without commits, every
 *	  few milliseconds.  Each VDL it reaches is published to the backends
 *	  waiting in commit_wait.c, which makes every commit wait, before it
 *	  becomes visible, until VDL covers its commit record (DESIGN.md 7).  A
 *	  physical replication slot, 'aurora_shipper', that the shipper holds and
 *	  advances to VDL keeps the WAL until then.
 *
 *	  WAL read is kept in a contiguous buffer and cut into records with
 *	  PostgreSQL's own XLogReader, whose page_read callback waits (latch, and
 *	  a pipe the quorum writers poke when a held-back batch may go) until the
 *	  bytes asked for are flushed.  Each record goes, whole, to the PGs of
 *	  the blocks it references (PG 0 if none; common/volume.c) with a per-PG
 *	  backlink, batched per PG while WAL keeps arriving and sent when it
 *	  pauses, through one quorum writer per PG (common/pgwriter.c).  VCL is
 *	  the end of the longest prefix of records at PGCL in all their PGs; each
 *	  record end is a CPL, so VDL = VCL.  The writer's thread that
 *	  reads the acknowledgement moving a PGCL moves VDL and releases the
 *	  commits it covers (see durable_lock).
 *
 *	  Restart: the slot's restart point is a VDL reported earlier, so every
 *	  record ending before it is on a write quorum; streaming resumes there
 *	  and each PG's next backlink comes from storage (RECORD_BEFORE).  The
 *	  slot is saved at checkpoints, so after a crash it may be older than
 *	  the last VDL: that only resends records.
 *	  Records resent after a crash are byte-identical duplicates.
 *
 *	  Every segment records the volume's geometry when it is created; a
 *	  compute whose settings disagree gets CONFLICT and shuts down.  After a
 *	  crash no session starts before VDL covers the recovered WAL.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "access/xlogrecord.h"
#include "access/xlogutils.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "replication/slot.h"
#include "replication/syncrep.h"
#include "storage/latch.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/tuplestore.h"
#include "datatype/timestamp.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "aurora.h"
#include "client.h"
#include "util.h"
#include "pgwriter.h"
#include "record_meta.h"
#include "smgr.h"
#include "volume.h"

PGDLLEXPORT void aurora_shipper_main(Datum main_arg);

/* WAL read from pg_wal and not yet released: [start, start + len) */
typedef struct StreamBuffer
{
	XLogRecPtr	start;
	char	   *data;
	Size		len;
	Size		cap;
} StreamBuffer;

/* GUCs (aurora.c defines them) */
bool		aurora_shipping = false;
int			aurora_protection_groups = 4;
int			aurora_blocks_per_segment = 131072;

/* the pages of one record (record_meta.h) lie in at most this many PGs */
#define MAX_RECORD_PGS	AURORA_WALMETA_MAX_BLOCKS
#define BATCH_MAX_BYTES	(1024 * 1024)

/*
 * Batches of one PG that may await their write quorum at once.  Records
 * that arrive while the window is full wait for an acknowledgement and
 * then go out together: under load every message carries more WAL, so the
 * per-message cost (six sends, six fdatasyncs, six replies, each a few
 * thread hand-offs) is paid per group of commits rather than per commit.
 * Unloaded, a batch goes out at once.  A batch that reaches BATCH_MAX_BYTES
 * goes out regardless.
 */
#define SHIP_WINDOW		8

/* One PG as the shipper writes it. */
typedef struct ShipPG
{
	aurora_pgwriter *writer;
	XLogRecPtr	last_start;		/* backlink of the next record */
	aurora_log_record *recs;	/* batch being filled */
	int			nrecs;
	int			caprecs;
	StringInfoData payloads;	/* the batch's record bytes, back to back */
	XLogRecPtr	pgcl;			/* last reported by the writer (durable_lock) */
	XLogRecPtr	seeded;			/* LSN of the PG's seeded base images, 0 = none */
	XLogRecPtr	window[SHIP_WINDOW];	/* end LSNs of the last batches sent */
	aurora_member members[AURORA_PG_COPIES];
} ShipPG;

/* A record sent and not yet at PGCL in all its PGs (for VCL). */
typedef struct InFlight
{
	XLogRecPtr	end;
	bool		cpl;			/* its end is a consistency point (DESIGN 7) */
	int			npgs;			/* -1: every PG (the record changes relations) */
	uint32		pgs[MAX_RECORD_PGS];
} InFlight;

static ShipPG *pgs = NULL;
static int	n_pgs = 0;
static volatile sig_atomic_t shutdown_requested = false;
static int	wake_pipe[2] = {-1, -1};

/*
 * VCL and VDL move on whichever thread learns first that they can: mostly
 * the writer thread whose acknowledgement advanced a PGCL, which publishes the
 * new VDL and releases the commits it covers itself, one hop fewer than
 * through this process's main loop; else the main loop.  durable_lock
 * guards the in-flight ring, every ShipPG.pgcl, vcl, vdl, publishing and
 * main_waits_for_acks.  Lock order: a writer's mutex (held while it calls
 * pgcl_advanced), then durable_lock.  So the main loop never calls into a
 * writer while holding durable_lock, and never allocates under it (an
 * ERROR would leave it locked for the exit callback).
 */
static pthread_mutex_t durable_lock = PTHREAD_MUTEX_INITIALIZER;
static InFlight *inflight = NULL;
static int	inflight_head = 0;
static int	inflight_count = 0;
static int	inflight_cap = 0;
static XLogRecPtr vcl = InvalidXLogRecPtr;
static XLogRecPtr vdl = InvalidXLogRecPtr;
static bool publishing = false; /* streaming: acknowledgements publish VDL */
static bool main_waits_for_acks = false;	/* a batch waits for window room */

/*
 * What the shipper publishes for SQL (aurora.watermarks()).  Written by the
 * shipper only, read by any backend; the spinlock makes a reader see one
 * consistent set.
 */
typedef struct ShipperShared
{
	slock_t		mutex;
	bool		running;		/* streaming, watermarks meaningful */
	XLogRecPtr	vcl;
	XLogRecPtr	vdl;
	TimestampTz vdl_advanced_at;
	XLogRecPtr	startup_flush;	/* end of the local WAL when the first shipper
								 * since the server started began; 0 = none yet */
	TimestampTz pgs_published_at;
	int			n_pgs;
	struct PGShared *pg;		/* n_pgs entries, right after this struct */
	int			n_nodes;
	struct NodeShared *node;	/* n_nodes entries, after the PGs */

	/*
	 * Per PG, the PGCL published with each VDL, before the commits it
	 * releases: every record of the PG that VDL covers ends at or below it,
	 * so a page read there is at least as new as any page the compute has
	 * evicted (smgr.c).  n_pgs entries, after the nodes.
	 */
	pg_atomic_uint64 *read_point;
} ShipperShared;

/* Acknowledgement latency of one storage node (aurora.shipping_stats()). */
typedef struct NodeShared
{
	char		node_id[64];
	uint64		ack_samples;	/* samples behind the percentiles; 0 = none yet */
	double		ack_p50_ms;
	double		ack_p99_ms;
} NodeShared;

/* One segment as the shipper's quorum writer sees it (for aurora.segments). */
typedef struct SegShared
{
	char		node_id[64];
	char		az[32];
	XLogRecPtr	scl;
	uint64		acks;
	uint64		errors;
	uint64		batches;
	uint64		records;
	uint64		bytes;
	double		last_ack_ms;	/* CLOCK_MONOTONIC ms; 0 = never */
	uint32		last_error_code;
	char		last_error[160];
	bool		fenced;
	TimestampTz behind_since;	/* SCL < PGCL since then; 0 = not behind */
} SegShared;

typedef struct PGShared
{
	XLogRecPtr	pgcl;
	XLogRecPtr	sent_end;
	uint64		batches;
	uint64		bytes;
	double		p50_ms;
	double		p99_ms;
	uint64		latency_samples;	/* behind p50/p99; 0 = none in the window */
	SegShared	seg[AURORA_PG_COPIES];
} PGShared;

static ShipperShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

/* How long a new session waits for storage before it is turned away. */
#define SESSION_GATE_WAIT_MS	10000

static StreamBuffer stream;
static XLogReaderState *wal_files = NULL;	/* for WALRead's segment handling */

static Size
pgs_offset(void)
{
	return MAXALIGN(sizeof(ShipperShared));
}

static Size
nodes_offset(void)
{
	return add_size(pgs_offset(), MAXALIGN(mul_size(aurora_protection_groups, sizeof(PGShared))));
}

static Size
read_points_offset(void)
{
	return add_size(nodes_offset(),
					MAXALIGN(mul_size(aurora_configured_nodes()->count, sizeof(NodeShared))));
}

static Size
shipper_shmem_size(void)
{
	return add_size(read_points_offset(),
					mul_size(aurora_protection_groups, sizeof(pg_atomic_uint64)));
}

static void
shipper_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shipper_shmem_size());
}

static void
shipper_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("aurora shipper", shipper_shmem_size(), &found);
	if (!found)
	{
		const AuroraNodeList *nodes = aurora_configured_nodes();

		memset(shared, 0, shipper_shmem_size());
		SpinLockInit(&shared->mutex);
		shared->n_pgs = aurora_protection_groups;
		shared->n_nodes = nodes->count;
		shared->node = (NodeShared *) ((char *) shared + nodes_offset());
		for (int k = 0; k < nodes->count; k++)
			strlcpy(shared->node[k].node_id, nodes->nodes[k].id, sizeof(shared->node[k].node_id));
		shared->read_point = (pg_atomic_uint64 *) ((char *) shared + read_points_offset());
		for (int p = 0; p < aurora_protection_groups; p++)
			pg_atomic_init_u64(&shared->read_point[p], 0);
	}
	/* EXEC_BACKEND: pointers into shared memory differ per process */
	shared->pg = (PGShared *) ((char *) shared + pgs_offset());
	shared->node = (NodeShared *) ((char *) shared + nodes_offset());
	shared->read_point = (pg_atomic_uint64 *) ((char *) shared + read_points_offset());
	LWLockRelease(AddinShmemInitLock);
}

static TimestampTz last_heartbeat = 0;

/*
 * Per node, the percentiles of recent acknowledgement latencies over all
 * its segments (each segment contributes an equal share of at most
 * NODE_LATENCY_SAMPLES).  Once a second: sorting is not free.
 */
#define NODE_LATENCY_SAMPLES 2048

/* the latency columns describe the last minute, not whatever came last */
#define LATENCY_WINDOW_MS	60000.0

static void
publish_node_latency(void)
{
	double	   *buf = palloc(sizeof(double) * NODE_LATENCY_SAMPLES);

	for (int k = 0; k < shared->n_nodes; k++)
	{
		NodeShared *nd = &shared->node[k];
		int			segs = 0;
		int			n = 0;
		int			share;

		for (int p = 0; p < n_pgs; p++)
			for (int i = 0; i < AURORA_PG_COPIES; i++)
				segs += strcmp(pgs[p].members[i].node_id, nd->node_id) == 0;
		if (segs == 0)
			continue;
		share = Max(NODE_LATENCY_SAMPLES / segs, 1);
		for (int p = 0; p < n_pgs && n < NODE_LATENCY_SAMPLES; p++)
			for (int i = 0; i < AURORA_PG_COPIES && n < NODE_LATENCY_SAMPLES; i++)
				if (strcmp(pgs[p].members[i].node_id, nd->node_id) == 0)
					n += aurora_pgwriter_ack_latencies(pgs[p].writer, i, LATENCY_WINDOW_MS, buf + n,
													   Min(share, NODE_LATENCY_SAMPLES - n));
		if (n == 0)
		{
			/* nothing acknowledged lately: the columns go NULL */
			SpinLockAcquire(&shared->mutex);
			nd->ack_samples = 0;
			SpinLockRelease(&shared->mutex);
			continue;
		}
		{
			double		p50 = 0,
						p99 = 0;

			aurora_p50_p99(buf, (size_t) n, &p50, &p99);
			SpinLockAcquire(&shared->mutex);
			nd->ack_samples = (uint64) n;
			nd->ack_p50_ms = p50;
			nd->ack_p99_ms = p99;
			SpinLockRelease(&shared->mutex);
		}
	}
	pfree(buf);
}

/* Copy every PG's writer view into shared memory (at most every 100 ms). */
static void
publish_pgs(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		heartbeat;

	if (!TimestampDifferenceExceeds(shared->pgs_published_at, now, 100) || pgs == NULL)
		return;
	heartbeat = TimestampDifferenceExceeds(last_heartbeat, now, 1000);
	for (int p = 0; p < n_pgs && p < shared->n_pgs; p++)
	{
		aurora_pgwriter_view v;
		PGShared	snap;

		aurora_pgwriter_view_get(pgs[p].writer, &v);
		memset(&snap, 0, sizeof(snap));
		snap.pgcl = v.pgcl;
		snap.sent_end = v.sent_end;
		snap.batches = v.batches_sent;
		snap.bytes = v.bytes_sent;
		/* percentiles sort: once a second (heartbeat), else keep the last */
		snap.p50_ms = shared->pg[p].p50_ms;
		snap.p99_ms = shared->pg[p].p99_ms;
		snap.latency_samples = shared->pg[p].latency_samples;
		if (heartbeat)
			snap.latency_samples =
				aurora_pgwriter_quorum_latency(pgs[p].writer, LATENCY_WINDOW_MS,
											   &snap.p50_ms, &snap.p99_ms);
		for (int i = 0; i < AURORA_PG_COPIES; i++)
		{
			SegShared  *sg = &snap.seg[i];

			strlcpy(sg->node_id, pgs[p].members[i].node_id, sizeof(sg->node_id));
			strlcpy(sg->az, pgs[p].members[i].az, sizeof(sg->az));
			sg->scl = v.seg[i].scl;
			sg->acks = v.seg[i].acks;
			sg->errors = v.seg[i].errors;
			sg->batches = v.seg[i].batches_sent;
			sg->records = v.seg[i].records_sent;
			sg->bytes = v.seg[i].bytes_sent;
			sg->last_ack_ms = v.seg[i].last_ack_ms;
			sg->last_error_code = v.seg[i].last_error_code;
			strlcpy(sg->last_error, v.seg[i].last_error, sizeof(sg->last_error));
			sg->fenced = v.seg[i].fenced;
			/* only this process writes shared->pg: reading it unlocked is fine */
			if (sg->scl >= snap.pgcl)
				sg->behind_since = 0;
			else if (shared->pg[p].seg[i].behind_since != 0)
				sg->behind_since = shared->pg[p].seg[i].behind_since;
			else
				sg->behind_since = now;
		}
		SpinLockAcquire(&shared->mutex);
		shared->pg[p] = snap;
		SpinLockRelease(&shared->mutex);
	}
	shared->pgs_published_at = now;

	/* a heartbeat, so the views stay true for PGs nobody writes to */
	if (heartbeat)
	{
		for (int p = 0; p < n_pgs; p++)
			(void) aurora_pgwriter_probe(pgs[p].writer, true);
		publish_node_latency();
		aurora_smgr_janitor();
		last_heartbeat = now;
	}
}

/*
 * Publish what VDL covers, in the order readers rely on: each PG's read
 * point (see ShipperShared), VCL and VDL for the views, then the commits
 * VDL releases.  Called with durable_lock held; releases it before waking
 * the commits (that scans every backend's slot, and the main loop and the
 * other PGs' acknowledgements need not wait for it).
 */
static void
publish_durable_unlock(void)
{
	XLogRecPtr	released = vdl;
	bool		running = publishing;

	if (running)
	{
		/* not below the seed: storage serves seeded images from their LSN on */
		for (int p = 0; p < n_pgs && p < shared->n_pgs; p++)
		{
			XLogRecPtr	rp = Max(pgs[p].pgcl, pgs[p].seeded);

			if (rp > pg_atomic_read_u64(&shared->read_point[p]))
				pg_atomic_write_u64(&shared->read_point[p], rp);
		}
		pg_write_barrier();
	}
	SpinLockAcquire(&shared->mutex);
	shared->running = running;
	if (vcl > shared->vcl || !running)
		shared->vcl = vcl;
	if (vdl > shared->vdl || !running)
	{
		shared->vdl = vdl;
		shared->vdl_advanced_at = GetCurrentTimestamp();
	}
	SpinLockRelease(&shared->mutex);
	pthread_mutex_unlock(&durable_lock);
	/* after the views: a released commit must see VDL past it there too */
	if (running)
		aurora_commit_wait_release(released);
}

/* Publish the views, VCL and VDL (equal today: every record end is a CPL). */
static void
publish(bool running)
{
	if (running)
		publish_pgs();
	pthread_mutex_lock(&durable_lock);
	publishing = running;
	publish_durable_unlock();
}

/*
 * After a crash the compute recovers from its local WAL, which may hold
 * commits that storage never acknowledged (their sessions were still
 * waiting).  Recovery makes them visible, so no session may start until
 * VDL covers everything recovered: new sessions wait up to 10 s for that,
 * then are turned away with SQLSTATE 57P03 (replication connections too:
 * a standby would otherwise replay those commits).
 */
static void
session_gate(Port *port, int status)
{
	TimestampTz deadline;

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status != STATUS_OK || shared == NULL)
		return;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SESSION_GATE_WAIT_MS);
	for (;;)
	{
		XLogRecPtr	v = aurora_commit_wait_vdl(),
					need;

		/* once VDL has covered the recovered WAL, a shipper restart changes nothing */
		SpinLockAcquire(&shared->mutex);
		need = shared->startup_flush;
		SpinLockRelease(&shared->mutex);
		if (need != InvalidXLogRecPtr && v >= need)
			return;
		if (GetCurrentTimestamp() >= deadline)
			ereport(FATAL,
					(errcode(ERRCODE_CANNOT_CONNECT_NOW),
					 errmsg("the database system is waiting for storage to hold its recovered WAL"),
					 need != InvalidXLogRecPtr ?
					 errdetail("The volume durable LSN is %X/%X; sessions start once it reaches %X/%X.",
							   LSN_FORMAT_ARGS(v), LSN_FORMAT_ARGS(need)) :
					 errdetail("The WAL shipper has not started shipping yet."),
					 errhint("Check that a write quorum of storage nodes is reachable (SELECT * FROM aurora.storage_nodes from a session that got in earlier, or aurora-ctl status).")));
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
}

PG_FUNCTION_INFO_V1(aurora_watermarks);

/*
 * aurora.watermarks(): insert and local flush LSN of the compute, VCL and
 * VDL of the volume (NULL while the shipper is not streaming), how far VDL
 * is behind the local flush, and since when it has not moved.
 */
Datum
aurora_watermarks(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false};
	XLogRecPtr	flush = GetFlushRecPtr(NULL);
	bool		running = false;
	XLogRecPtr	vcl = InvalidXLogRecPtr;
	XLogRecPtr	v = InvalidXLogRecPtr;
	TimestampTz at = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (shared != NULL)
	{
		SpinLockAcquire(&shared->mutex);
		running = shared->running;
		vcl = shared->vcl;
		v = shared->vdl;
		at = shared->vdl_advanced_at;
		SpinLockRelease(&shared->mutex);
	}
	values[0] = LSNGetDatum(GetXLogInsertRecPtr());
	values[1] = LSNGetDatum(flush);
	if (running)
	{
		values[2] = LSNGetDatum(vcl);
		values[3] = LSNGetDatum(v);
		values[4] = Int64GetDatum(flush > v ? (int64) (flush - v) : 0);
		values[5] = DirectFunctionCall2(timestamp_mi,
										TimestampTzGetDatum(GetCurrentTimestamp()),
										TimestampTzGetDatum(at));
	}
	else
		nulls[2] = nulls[3] = nulls[4] = nulls[5] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

void
aurora_shipper_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "aurora");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "aurora_shipper_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "aurora WAL shipper");
	snprintf(worker.bgw_type, BGW_MAXLEN, "aurora WAL shipper");
	RegisterBackgroundWorker(&worker);

	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = session_gate;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shipper_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shipper_shmem_startup;
}

/* WAL read per call at most: the loop keeps shipping while it catches up. */
#define READ_CHUNK	(4 * 1024 * 1024)

/*
 * Append WAL that the compute has flushed since the last call to the
 * buffer, straight from pg_wal (the slot keeps it there).  Returns whether
 * anything was read.
 */
static bool
read_flushed_wal(void)
{
	XLogRecPtr	from = stream.start + stream.len;
	XLogRecPtr	flush = GetFlushRecPtr(NULL);
	Size		n;
	WALReadError errinfo;

	if (flush <= from)
		return false;
	n = Min((Size) (flush - from), (Size) READ_CHUNK);

	/*
	 * A chunk that stops short of the flush point ends on a page boundary,
	 * as a walsender's does: the XLogReader copies the first page of a
	 * record that spans pages whole once it has the record's header, and the
	 * server's own flush points only fall inside a record at page ends.
	 */
	if (from + n < flush)
		n -= (from + n) % XLOG_BLCKSZ;
	if (stream.len + n > stream.cap)
	{
		Size		cap = Max(stream.cap * 2, stream.len + n + XLOG_BLCKSZ);

		stream.data = stream.data ? repalloc(stream.data, cap) : palloc(cap);
		stream.cap = cap;
	}
	if (!WALRead(wal_files, stream.data + stream.len, from, n,
				 GetWALInsertionTimeLine(), &errinfo))
		WALReadRaiseError(&errinfo);
	stream.len += n;
	return true;
}

/* Forget WAL before keep (rounded down to a page: the reader rereads pages). */
static void
stream_trim(XLogRecPtr keep)
{
	XLogRecPtr	page = keep - (keep % XLOG_BLCKSZ);
	Size		drop;

	if (page <= stream.start)
		return;
	drop = Min((Size) (page - stream.start), stream.len);
	memmove(stream.data, stream.data + drop, stream.len - drop);
	stream.len -= drop;
	stream.start += drop;
}

static void advance_durable_locked(void);

/*
 * A quorum writer's thread (the writer's mutex held): PG arg's PGCL moved.  Move VDL and
 * release the commits it covers from here.  The main loop is woken (write(2)
 * is thread-safe) only when it holds a batch back for window room, or
 * drains for shutdown; it needs no wake-up to release commits.
 */
static void
pgcl_advanced(void *arg, uint64_t pgcl)
{
	ShipPG	   *pg = &pgs[(intptr_t) arg];
	bool		wake;
	char		b = 0;

	pthread_mutex_lock(&durable_lock);
	if (pgcl > pg->pgcl)
		pg->pgcl = pgcl;
	advance_durable_locked();
	wake = main_waits_for_acks || shutdown_requested;
	main_waits_for_acks = false;
	if (publishing)
		publish_durable_unlock();
	else
		pthread_mutex_unlock(&durable_lock);
	if (wake)
		(void) write(wake_pipe[1], &b, 1);
}

/* The main loop's view of the watermark state (durable_lock is brief). */
static XLogRecPtr
current_vdl(void)
{
	XLogRecPtr	v;

	pthread_mutex_lock(&durable_lock);
	v = vdl;
	pthread_mutex_unlock(&durable_lock);
	return v;
}

static int
records_in_flight(void)
{
	int			n;

	pthread_mutex_lock(&durable_lock);
	n = inflight_count;
	pthread_mutex_unlock(&durable_lock);
	return n;
}

/*
 * Sleep until a committing backend or a signal sets the latch, PGCL moves
 * (wake pipe), or it is time to look for WAL written without a commit (a
 * bulk load, asynchronous commits): every few milliseconds while WAL is
 * flushed that the shipper has not read, else at the heartbeat.  WAL that
 * is inserted but not flushed cannot be read yet: whoever needs it durable
 * flushes it and sets the latch (commits, evictions), and the WAL writer
 * flushes the rest within wal_writer_delay, so it is looked for only every
 * POLL_UNFLUSHED_MS.  Polling it every few milliseconds woke the shipper 200
 * times a second, for nothing, during read-only work that prunes pages (WAL
 * without commits), and on a busy machine each wake-up can preempt a
 * backend.  The wait set lives as long as the worker: building one per wait
 * cost an epoll instance and five system calls per wake-up.
 */
#define POLL_WAL_MS		5
#define POLL_UNFLUSHED_MS	50

static void
wait_for_work(void)
{
	static WaitEventSet *set = NULL;
	WaitEvent	ev;
	char		drain[64];
	long		timeout;

	if (set == NULL)
	{
		set = CreateWaitEventSet(TopMemoryContext, 3);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		AddWaitEventToSet(set, WL_SOCKET_READABLE, wake_pipe[0], NULL, NULL);
	}
	/* (at a page boundary the insert position is past the page header) */
	if (GetFlushRecPtr(NULL) > stream.start + stream.len + SizeOfXLogLongPHD)
		timeout = POLL_WAL_MS;
	else if (GetXLogInsertRecPtr() > stream.start + stream.len + SizeOfXLogLongPHD)
		timeout = POLL_UNFLUSHED_MS;
	else if (shutdown_requested || records_in_flight() > 0)
		timeout = 100L;		/* records waiting for quorum: probe (see below) */
	else
		timeout = 1000L;
	(void) WaitEventSetWait(set, timeout, &ev, 1, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	while (read(wake_pipe[0], drain, sizeof(drain)) > 0)
		;
}

/* Send PG p's batch (asynchronously; acks arrive on the writer's threads). */
static void
send_batch(int p)
{
	ShipPG	   *pg = &pgs[p];
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

/*
 * Send the PGs' batches whose window has room.  A batch held back goes out
 * when an acknowledgement makes room: the next one wakes the main loop.
 */
static void
flush_batches(void)
{
	bool		held = false;

	for (int p = 0; p < n_pgs; p++)
	{
		if (pgs[p].nrecs == 0)
			continue;
		if (batches_awaiting_quorum(&pgs[p]) < SHIP_WINDOW)
			send_batch(p);
		else
			held = true;
	}
	pthread_mutex_lock(&durable_lock);
	main_waits_for_acks = held;
	pthread_mutex_unlock(&durable_lock);
	/* room made between the count and the flag woke nobody: look again */
	for (int p = 0; held && p < n_pgs; p++)
		if (pgs[p].nrecs > 0 && batches_awaiting_quorum(&pgs[p]) < SHIP_WINDOW)
			SetLatch(MyLatch);
}

/*
 * Segments that missed batches (down, restarting) catch up by gossip, and
 * the writer only hears of it when they acknowledge something.  When VDL
 * has not moved for a while although records are in flight, ask the
 * segments for their SCL so a waiting commit does not depend on new WAL.
 */
static void
probe_if_stuck(void)
{
	static XLogRecPtr last_vdl = InvalidXLogRecPtr;
	static TimestampTz since = 0;
	TimestampTz now = GetCurrentTimestamp();
	XLogRecPtr	v = current_vdl();

	if (records_in_flight() == 0 || v != last_vdl)
	{
		last_vdl = v;
		since = now;
		return;
	}
	if (!TimestampDifferenceExceeds(since, now, 200))
		return;
	for (int p = 0; p < n_pgs; p++)
		(void) aurora_pgwriter_probe(pgs[p].writer, false);
	since = now;
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
 * VCL: the end of the longest prefix of records at PGCL in all their PGs.
 * VDL: the highest CPL at or below VCL.  durable_lock held.
 */
static void
advance_durable_locked(void)
{
	while (inflight_count > 0)
	{
		InFlight   *r = &inflight[inflight_head];
		bool		durable = true;

		if (r->npgs < 0)
			for (int p = 0; p < n_pgs && durable; p++)
				durable = pgs[p].pgcl >= r->end;
		for (int i = 0; i < r->npgs && durable; i++)
			durable = pgs[r->pgs[i]].pgcl >= r->end;
		if (!durable)
			break;
		vcl = r->end;
		if (r->cpl)
			vdl = r->end;
		inflight_head = (inflight_head + 1) % inflight_cap;
		inflight_count--;
	}
}

/* A record just queued may already be durable (its batch went out at once). */
static void
advance_vdl(void)
{
	pthread_mutex_lock(&durable_lock);
	advance_durable_locked();
	pthread_mutex_unlock(&durable_lock);
}

/* Queue a record for VCL (see durable_lock: the ring grows outside it). */
static void
inflight_push(XLogRecPtr end, bool cpl, int npgs, const uint32 *rec_pgs)
{
	InFlight   *f;
	InFlight   *grown = NULL;
	InFlight   *old = NULL;
	int			cap;

	pthread_mutex_lock(&durable_lock);
	cap = inflight_count == inflight_cap ? (inflight_cap ? inflight_cap * 2 : 1024) : 0;
	pthread_mutex_unlock(&durable_lock);
	if (cap > 0)
		grown = palloc(sizeof(InFlight) * cap);

	pthread_mutex_lock(&durable_lock);
	/* only this thread adds: acknowledgements meanwhile only made room */
	if (grown != NULL)
	{
		for (int i = 0; i < inflight_count; i++)
			grown[i] = inflight[(inflight_head + i) % inflight_cap];
		old = inflight;
		inflight = grown;
		inflight_cap = cap;
		inflight_head = 0;
	}
	f = &inflight[(inflight_head + inflight_count) % inflight_cap];
	f->end = end;
	f->cpl = cpl;
	f->npgs = npgs;
	if (npgs > 0)
		memcpy(f->pgs, rec_pgs, sizeof(uint32) * npgs);
	inflight_count++;
	pthread_mutex_unlock(&durable_lock);
	if (old != NULL)
		pfree(old);
}

/* Copy the record's bytes [start, start + len) out of the stream, skipping page headers. */
static void
copy_record_bytes(XLogRecPtr start, uint32 len, StringInfo out)
{
	XLogRecPtr	pos = start;

	while (len > 0)
	{
		Size		in_page;
		Size		n;

		if (pos % XLOG_BLCKSZ == 0)
			pos += XLogSegmentOffset(pos, wal_segment_size) == 0 ?
				SizeOfXLogLongPHD : SizeOfXLogShortPHD;
		in_page = XLOG_BLCKSZ - pos % XLOG_BLCKSZ;
		n = Min(in_page, (Size) len);
		Assert(pos >= stream.start && pos + n <= stream.start + stream.len);
		appendBinaryStringInfo(out, stream.data + (pos - stream.start), (int) n);
		pos += n;
		len -= n;
	}
}

/*
 * Queue the record just decoded for each of its PGs and for VCL.  Its PGs
 * are those of the pages it changes (referenced or implicit, see
 * record_meta.c), every PG when it changes relations (any PG may hold
 * chunks of them), else PG 0.  Each gets envelope + WAL record.
 */
static void
ship_record(XLogReaderState *r, const aurora_geometry *g)
{
	static RecordMeta meta;
	uint32		rec_pgs[MAX_RECORD_PGS];
	int			npgs = 0;
	bool		every_pg;
	uint32		wal_len = XLogRecGetTotalLen(r);

	aurora_record_meta(r, &meta);
	every_pg = meta.nevents > 0;
	for (int b = 0; !every_pg && b < meta.nblocks; b++)
	{
		uint32		p = aurora_block_pg(g, &meta.blocks[b].ref);
		bool		seen = false;

		for (int i = 0; i < npgs; i++)
			seen |= rec_pgs[i] == p;
		if (!seen)
			rec_pgs[npgs++] = p;
	}
	if (npgs == 0 && !every_pg)
		rec_pgs[npgs++] = 0;	/* no page: PG 0 (DESIGN.md 5) */

	for (int i = 0; i < (every_pg ? n_pgs : npgs); i++)
	{
		uint32		p = every_pg ? (uint32) i : rec_pgs[i];
		ShipPG	   *pg = &pgs[p];
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
		lr->payload = NULL;		/* set in flush_batches */
		aurora_record_meta_append(&meta, &pg->payloads);
		copy_record_bytes(r->ReadRecPtr, wal_len, &pg->payloads);
		lr->len = (uint32) (pg->payloads.len - before);
		pg->last_start = r->ReadRecPtr;
		if (pg->payloads.len >= BATCH_MAX_BYTES)
			send_batch((int) p);
	}

	inflight_push(r->EndRecPtr, record_end_is_cpl(r), every_pg ? -1 : npgs, rec_pgs);
}

/* the physical replication slot that keeps the WAL until VDL covers it */
#define SHIPPER_SLOT "aurora_shipper"

/*
 * Find or create the shipper's slot and hold it.  Returns its restart
 * point, a VDL published earlier, or Invalid when the slot had to be
 * created (a new volume).
 */
static XLogRecPtr
ensure_slot(void)
{
	ReplicationSlot *slot;
	XLogRecPtr	restart = InvalidXLogRecPtr;

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	slot = SearchNamedReplicationSlot(SHIPPER_SLOT, false);
	if (slot != NULL)
	{
		SpinLockAcquire(&slot->mutex);
		restart = slot->data.restart_lsn;
		SpinLockRelease(&slot->mutex);
	}
	LWLockRelease(ReplicationSlotControlLock);
	if (slot != NULL)
	{
		ReplicationSlotAcquire(SHIPPER_SLOT, true);
		return restart;
	}

	CheckSlotRequirements();
	ReplicationSlotCreate(SHIPPER_SLOT, false, RS_PERSISTENT, false);
	ReplicationSlotReserveWal();
	ReplicationSlotMarkDirty();
	ReplicationSlotSave();
	return InvalidXLogRecPtr;
}

/*
 * Let the checkpointer recycle WAL below VDL, as a walsender does for the
 * flush position its standby reports.  The slot reaches disk at the next
 * checkpoint; until then a crash resumes from an older VDL, which only
 * resends records.  At most every 100 ms: it takes locks and scans slots.
 */
static void
advance_slot(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();
	ReplicationSlot *slot = MyReplicationSlot;
	bool		changed = false;
	XLogRecPtr	vdl;

	if (slot == NULL || !TimestampDifferenceExceeds(last, now, 100))
		return;
	vdl = current_vdl();
	if (XLogRecPtrIsInvalid(vdl))
		return;
	last = now;
	SpinLockAcquire(&slot->mutex);
	if (slot->data.restart_lsn < vdl)
	{
		slot->data.restart_lsn = vdl;
		changed = true;
	}
	SpinLockRelease(&slot->mutex);
	if (changed)
	{
		ReplicationSlotMarkDirty();
		ReplicationSlotsComputeRequiredLSN();
	}
}

/*
 * The backlink a resumed PG's next record needs: the start of its last
 * record before resume.  Every record ending at or before resume (a VDL the
 * shipper reported) is on a write quorum, so any three reachable segments
 * include one that has it; the highest start any of them reports wins.
 */
static XLogRecPtr
last_start_before(int p, XLogRecPtr resume)
{
	XLogRecPtr	best = InvalidXLogRecPtr;
	int			answered = 0;
	aurora_member members[AURORA_PG_COPIES];
	char		err[256];

	aurora_place_configured_pg(p, members);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		aurora_header h,
					rh;
		uint8_t		req[AURORA_HEADER_SIZE + 8];
		uint8_t		body[8];
		uint8_t    *rep = NULL;
		size_t		rep_len = 0;
		const uint8_t *rbody;
		aurora_record_before rb;

		memset(&h, 0, sizeof(h));
		h.type = AURORA_MSG_RECORD_BEFORE_REQ;
		h.volume_id = AURORA_COMPUTE_VOLUME_ID;
		h.pg_id = (uint32) p;
		h.volume_epoch = 1;
		h.membership_epoch = 1;
		h.request_id = (uint64) i + 1;
		aurora_record_before_req_encode(resume, body, sizeof(body));
		if (aurora_request(members[i].url, aurora_request_timeout_ms, req,
						   aurora_encode(&h, body, sizeof(body), req, sizeof(req)),
						   &rep, &rep_len, err, sizeof(err)) != 0)
			continue;
		if (aurora_decode(rep, rep_len, AURORA_CLIENT_MAX_REPLY, &rh, &rbody) == 0 &&
			rh.type == AURORA_MSG_RECORD_BEFORE &&
			aurora_record_before_decode(rbody, rh.body_len, &rb) == 0)
		{
			answered++;
			if (rb.found && rb.start_lsn > best)
				best = rb.start_lsn;
		}
		free(rep);
	}
	if (answered < AURORA_PG_COPIES - aurora_write_quorum + 1)
		ereport(ERROR,
				(errmsg("aurora shipper: only %d segments of protection group %d answered; resuming needs %d",
						answered, p, AURORA_PG_COPIES - aurora_write_quorum + 1)));
	return best;
}

/*
 * A segment that already exists with another geometry or membership means
 * this compute's settings (aurora.protection_groups, aurora.blocks_per_segment,
 * aurora.storage_nodes) do not describe the volume: shipping would misroute
 * records.  The compute refuses to run: it logs why and shuts down.
 */
static void
refuse_on_conflict(aurora_pgwriter *w, int p)
{
	aurora_pgwriter_view v;

	aurora_pgwriter_view_get(w, &v);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		if (v.seg[i].last_error_code != AURORA_ERR_CONFLICT)
			continue;
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("aurora: the volume in storage does not match this compute's settings; shutting down"),
				 errdetail("Protection group %d, segment %d: %s", p, i, v.seg[i].last_error),
				 errhint("Start the compute with the aurora.protection_groups, aurora.blocks_per_segment and aurora.storage_nodes the volume was created with.")));
		kill(PostmasterPid, SIGINT);
		proc_exit(1);
	}
}

/* Place every PG on the configured nodes and create its segments (epoch 1). */
static void
open_volume(const aurora_geometry *g)
{
	char		err[512];

	n_pgs = (int) g->n_pgs;
	pgs = palloc0(sizeof(ShipPG) * n_pgs);
	for (int p = 0; p < n_pgs; p++)
	{
		aurora_pg_target t;
		int			created;

		memset(&t, 0, sizeof(t));
		t.volume_id = AURORA_COMPUTE_VOLUME_ID;
		t.pg_id = (uint32) p;
		t.volume_epoch = 1;
		t.membership_epoch = 1;
		t.base_lsn = 0;
		t.n_pgs = g->n_pgs;
		t.blocks_per_segment = g->blocks_per_segment;
		aurora_place_configured_pg(p, t.members);
		if (aurora_pgwriter_open(&t, aurora_write_quorum, aurora_request_timeout_ms,
								 &pgs[p].writer, err, sizeof(err)) != 0)
			ereport(ERROR,
					(errmsg("aurora shipper: protection group %d: %s", p, err)));
		created = aurora_pgwriter_create_segments(pgs[p].writer, err, sizeof(err));
		refuse_on_conflict(pgs[p].writer, p);
		if (created < aurora_write_quorum)
			ereport(ERROR,
					(errmsg("aurora shipper: only %d segments of protection group %d could be created; a write quorum needs %d",
							created, p, aurora_write_quorum)));
		{
			aurora_pgwriter_view v;

			aurora_pgwriter_view_get(pgs[p].writer, &v);
			pgs[p].seeded = v.seeded_lsn;
		}
		memcpy(pgs[p].members, t.members, sizeof(t.members));
		initStringInfo(&pgs[p].payloads);
		aurora_pgwriter_on_pgcl(pgs[p].writer, pgcl_advanced, (void *) (intptr_t) p);
		/* what the segments reported before the callback was in place */
		{
			XLogRecPtr	pgcl = aurora_pgwriter_pgcl(pgs[p].writer);

			pthread_mutex_lock(&durable_lock);
			pgs[p].pgcl = Max(pgs[p].pgcl, pgcl);
			pthread_mutex_unlock(&durable_lock);
		}
	}
}

/*
 * SIGTERM (fast shutdown, pg_terminate_backend): the shipper does not stop
 * while commits wait for VDL.  Those backends refuse to end before their
 * commit is durable (commit_wait.c): a shipper that left first would leave
 * them, and so the shutdown, waiting for ever.
 */
static void
shipper_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	shutdown_requested = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void warn_if_standby_names_name_shipper(void);

#define SHUTDOWN_DRAIN_MS	5000

/* Ship what is ready and wait until more WAL is flushed, then read it. */
static void
receive_more(void)
{
	static TimestampTz shutdown_requested_at = 0;
	static bool flushed_for_shutdown = false;

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (shutdown_requested && shutdown_requested_at == 0)
			shutdown_requested_at = GetCurrentTimestamp();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			warn_if_standby_names_name_shipper();
		}

		/*
		 * Everything decoded so far is whole records: send it (as the
		 * window allows) and release the commits VDL covers now, not only
		 * when the WAL pauses; under a steady stream of commits it rarely
		 * does.
		 */
		flush_batches();
		advance_vdl();
		publish(true);
		advance_slot();
		if (read_flushed_wal())
			return;
		/*
		 * Stop once nothing waits and everything read is durable, so that
		 * the shutdown checkpoint finds every page it writes covered by VDL
		 * (smgr.c); storage that cannot take it delays the stop at most
		 * SHUTDOWN_DRAIN_MS.
		 */
		/*
		 * WAL inserted but not flushed yet (pruning, vacuum) changed pages
		 * the shutdown checkpoint will write: ship it too.
		 */
		if (shutdown_requested && !flushed_for_shutdown)
		{
			XLogFlush(GetXLogInsertRecPtr());
			flushed_for_shutdown = true;
			continue;
		}
		if (shutdown_requested && !aurora_commit_wait_pending() &&
			(records_in_flight() == 0 ||
			 TimestampDifferenceExceeds(shutdown_requested_at, GetCurrentTimestamp(),
										SHUTDOWN_DRAIN_MS)))
		{
			ereport(LOG,
					(errmsg("aurora shipper: stopping at VDL %X/%X",
							LSN_FORMAT_ARGS(current_vdl()))));
			proc_exit(1);
		}
		probe_if_stuck();
		wait_for_work();
	}
}

/* XLogReader page_read: block until [page, page + reqLen) has arrived. */
static int
stream_page_read(XLogReaderState *state, XLogRecPtr page, int reqLen,
				 XLogRecPtr targetRecPtr, char *readBuf)
{
	Size		avail;

	if (page < stream.start)
		ereport(ERROR,
				(errmsg("aurora shipper: WAL at %X/%X was already released",
						LSN_FORMAT_ARGS(page))));
	while (stream.len == 0 || stream.start + stream.len < page + reqLen)
		receive_more();
	avail = Min((Size) XLOG_BLCKSZ, (Size) (stream.start + stream.len - page));
	memcpy(readBuf, stream.data + (page - stream.start), avail);
	return (int) avail;
}

/*
 * Earlier builds made commits wait for the shipper as a synchronous standby
 * named aurora_shipper.  Nothing connects under that name any more, so a
 * configuration that still requires it makes every commit wait for ever
 * after its VDL wait: say so (at start and after each reload).
 */
static void
warn_if_standby_names_name_shipper(void)
{
	bool		named = false;

	if (SyncRepConfig != NULL)
	{
		const char *name = SyncRepConfig->member_names;

		for (int i = 0; i < SyncRepConfig->nmembers; i++)
		{
			named |= pg_strcasecmp(name, SHIPPER_SLOT) == 0;
			name += strlen(name) + 1;
		}
	}
	if (named)
		ereport(WARNING,
				(errmsg("aurora shipper: synchronous_standby_names names \"%s\", which is no longer a standby",
						SHIPPER_SLOT),
				 errdetail("Commits wait for storage without it; with it they also wait for a standby that never connects."),
				 errhint("Remove \"%s\" from synchronous_standby_names.", SHIPPER_SLOT)));
}

static void
shipper_exit(int code, Datum arg)
{
	aurora_commit_wait_set_shipper(NULL);
	publish(false);
}

void
aurora_shipper_main(Datum main_arg)
{
	XLogReaderState *reader;
	XLogRecPtr	start;
	XLogRecPtr	resume;
	XLogRecPtr	first;
	char	   *err = NULL;
	aurora_geometry geometry;
	uint64		records = 0;
	uint64		bytes = 0;
	TimestampTz last_log = GetCurrentTimestamp();

	geometry.n_pgs = (uint32) aurora_protection_groups;
	geometry.blocks_per_segment = (uint32) aurora_blocks_per_segment;

	pqsignal(SIGTERM, shipper_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	/*
	 * No database: this only gives the worker a row in pg_stat_activity, so
	 * operators see it (backend_type "aurora WAL shipper") and its waits.
	 */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	if (pipe(wake_pipe) != 0 ||
		fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK) != 0)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not create pipe: %m")));
	{
		/* NNG starts its threads here; they must never run our signal handlers */
		sigset_t	all,
					old;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		open_volume(&geometry);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}

	resume = ensure_slot();
	if (XLogRecPtrIsInvalid(resume))
	{
		/* a new volume: from the start of the segment holding the flush point */
		start = GetFlushRecPtr(NULL);
		start -= XLogSegmentOffset(start, wal_segment_size);
		resume = start;
	}
	else
	{
		/* resume where VDL stood; every PG's next backlink comes from storage */
		sigset_t	all,
					old;

		pthread_mutex_lock(&durable_lock);
		vcl = vdl = resume;
		pthread_mutex_unlock(&durable_lock);
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		for (int p = 0; p < n_pgs; p++)
			pgs[p].last_start = last_start_before(p, resume);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		start = resume - XLogSegmentOffset(resume, wal_segment_size);
	}
	stream.start = start;
	stream.len = 0;
	wal_files = XLogReaderAllocate(wal_segment_size, NULL,
								   XL_ROUTINE(.segment_open = wal_segment_open,
											  .segment_close = wal_segment_close),
								   NULL);
	reader = XLogReaderAllocate(wal_segment_size, NULL,
								XL_ROUTINE(.page_read = stream_page_read), NULL);
	if (reader == NULL || wal_files == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	first = XLogFindNextRecord(reader, resume);
	if (XLogRecPtrIsInvalid(first))
		ereport(ERROR, (errmsg("aurora shipper: no WAL record after %X/%X", LSN_FORMAT_ARGS(start))));
	XLogBeginRead(reader, first);
	before_shmem_exit(shipper_exit, (Datum) 0);
	aurora_commit_wait_set_shipper(MyLatch);
	SpinLockAcquire(&shared->mutex);
	if (shared->startup_flush == InvalidXLogRecPtr)
		shared->startup_flush = GetFlushRecPtr(NULL);
	SpinLockRelease(&shared->mutex);
	advance_vdl();				/* the PGCLs the segments reported: read points */
	publish(true);
	ereport(LOG, (errmsg("aurora shipper: shipping WAL from %X/%X (first record %X/%X, VDL %X/%X)",
						 LSN_FORMAT_ARGS(start), LSN_FORMAT_ARGS(first),
						 LSN_FORMAT_ARGS(current_vdl()))));
	warn_if_standby_names_name_shipper();

	for (;;)
	{
		XLogRecord *rec = XLogReadRecord(reader, &err);
		TimestampTz now;

		if (rec == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("aurora shipper: cannot decode WAL at %X/%X: %s",
							LSN_FORMAT_ARGS(reader->EndRecPtr), err ? err : "(no detail)")));
		records++;
		bytes += rec->xl_tot_len;
		ship_record(reader, &geometry);
		stream_trim(reader->ReadRecPtr);
		advance_vdl();

		now = GetCurrentTimestamp();
		if (TimestampDifferenceExceeds(last_log, now, 10000))
		{
			ereport(LOG, (errmsg("aurora shipper: %llu records, %llu bytes; VDL %X/%X",
								 (unsigned long long) records, (unsigned long long) bytes,
								 LSN_FORMAT_ARGS(current_vdl()))));
			last_log = now;
		}
	}
}

/*
 * For the storage manager (smgr.c): whether the shipper streams and VDL
 * covers the WAL the compute recovered, so that the read points are
 * meaningful; and the read point of a PG.
 */
bool
aurora_shipper_ready(void)
{
	bool		ready;

	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	ready = shared->running && shared->startup_flush != InvalidXLogRecPtr &&
		shared->vdl >= shared->startup_flush;
	SpinLockRelease(&shared->mutex);
	return ready;
}

XLogRecPtr
aurora_shipper_read_point(int pg)
{
	if (shared == NULL || pg < 0 || pg >= shared->n_pgs)
		return InvalidXLogRecPtr;
	pg_read_barrier();
	return pg_atomic_read_u64(&shared->read_point[pg]);
}

/*
 * The shipper's view of PG pg's six segments (SCL as last acknowledged,
 * reachable, acknowledgement p50 of their node in ms; 0 when unknown).
 * False while the shipper does not stream.
 */
bool
aurora_shipper_segments(int pg, XLogRecPtr *scl, bool *reachable, double *latency_ms)
{
	if (shared == NULL || pg < 0 || pg >= shared->n_pgs)
		return false;
	SpinLockAcquire(&shared->mutex);
	if (!shared->running)
	{
		SpinLockRelease(&shared->mutex);
		return false;
	}
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		const SegShared *sg = &shared->pg[pg].seg[i];

		scl[i] = sg->scl;
		reachable[i] = !sg->fenced && sg->last_error_code == 0;
		latency_ms[i] = 0;
		for (int k = 0; k < shared->n_nodes; k++)
			if (shared->node[k].ack_samples > 0 &&
				strcmp(shared->node[k].node_id, sg->node_id) == 0)
				latency_ms[i] = shared->node[k].ack_p50_ms;
	}
	SpinLockRelease(&shared->mutex);
	return true;
}

/*
 * The monitoring views.  A segment is "up" when its last request succeeded
 * and it holds what a write quorum holds, "catching up" when it answers but
 * has been behind PGCL for a while (gossip is filling it), "down" when its
 * last request failed (no reply, refused), "fenced" when it reported a newer
 * epoch.  Under load the two slowest of six are always a batch or two behind
 * PGCL for the milliseconds their acknowledgement takes; that is not
 * catching up, hence the grace period.
 */
#define CATCHING_UP_AFTER_MS 1000

static const char *
segment_state(const SegShared *sg, XLogRecPtr pgcl)
{
	if (sg->fenced)
		return "fenced";
	if (sg->last_error_code != 0)
		return "down";
	if (sg->acks == 0 && sg->scl < pgcl)
		return "down";
	if (sg->scl >= pgcl || sg->behind_since == 0 ||
		!TimestampDifferenceExceeds(sg->behind_since, GetCurrentTimestamp(), CATCHING_UP_AFTER_MS))
		return "up";
	return "catching up";
}

static bool
segment_reachable(const SegShared *sg)
{
	return !sg->fenced && sg->last_error_code == 0;
}

/* A copy of the per-PG state, or NULL (0 rows) while not shipping. */
static PGShared *
snapshot_pgs(int *n)
{
	PGShared   *copy;

	*n = 0;
	if (shared == NULL || !shared->running)
		return NULL;
	*n = shared->n_pgs;
	copy = palloc(sizeof(PGShared) * Max(*n, 1));
	SpinLockAcquire(&shared->mutex);
	memcpy(copy, shared->pg, sizeof(PGShared) * *n);
	SpinLockRelease(&shared->mutex);
	return copy;
}

PG_FUNCTION_INFO_V1(aurora_protection_group_status);

Datum
aurora_protection_group_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n;
	PGShared   *snap;

	InitMaterializedSRF(fcinfo, 0);
	snap = snapshot_pgs(&n);
	for (int p = 0; p < n; p++)
	{
		Datum		values[9];
		bool		nulls[9] = {false};
		int			up = 0;

		for (int i = 0; i < AURORA_PG_COPIES; i++)
			up += segment_reachable(&snap[p].seg[i]);
		values[0] = Int32GetDatum(p);
		values[1] = LSNGetDatum(snap[p].pgcl);
		values[2] = Int32GetDatum(up);
		values[3] = BoolGetDatum(up >= aurora_write_quorum);
		values[4] = BoolGetDatum(up >= aurora_read_quorum);
		values[5] = Int64GetDatum(1);	/* epochs: the shipper writes under epoch 1 */
		values[6] = Int64GetDatum(1);
		values[7] = Float8GetDatum(snap[p].p50_ms);
		values[8] = Float8GetDatum(snap[p].p99_ms);
		nulls[7] = nulls[8] = snap[p].latency_samples == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(aurora_segment_status);

Datum
aurora_segment_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n;
	PGShared   *snap;
	double		now_ms = aurora_monotonic_ms();

	InitMaterializedSRF(fcinfo, 0);
	snap = snapshot_pgs(&n);
	for (int p = 0; p < n; p++)
	{
		for (int i = 0; i < AURORA_PG_COPIES; i++)
		{
			SegShared  *sg = &snap[p].seg[i];
			Datum		values[10];
			bool		nulls[10] = {false};

			values[0] = Int32GetDatum(p);
			values[1] = Int32GetDatum(i);
			values[2] = CStringGetTextDatum(sg->node_id);
			values[3] = CStringGetTextDatum(sg->az);
			values[4] = LSNGetDatum(sg->scl);
			values[5] = Int64GetDatum(snap[p].sent_end > sg->scl ?
									  (int64) (snap[p].sent_end - sg->scl) : 0);
			values[6] = CStringGetTextDatum(segment_state(sg, snap[p].pgcl));
			if (sg->last_ack_ms > 0)
			{
				Interval   *age = palloc0(sizeof(Interval));

				age->time = (TimeOffset) ((now_ms - sg->last_ack_ms) * 1000.0);
				values[7] = IntervalPGetDatum(age);
			}
			else
				nulls[7] = true;
			values[8] = Int64GetDatum((int64) sg->acks);
			if (sg->last_error_code != 0 || sg->fenced)
				values[9] = CStringGetTextDatum(sg->last_error[0] ? sg->last_error : "fenced");
			else
				nulls[9] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(aurora_shipping_stats);

/*
 * aurora.shipping_stats(): per storage node, what the shipper sent it since
 * it started (all segments of the node summed) and what came back, so the
 * network cost per transaction can be computed against pg_stat_database.
 */
Datum
aurora_shipping_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n;
	PGShared   *snap;
	const AuroraNodeList *nodes = aurora_configured_nodes();

	int			natts;

	InitMaterializedSRF(fcinfo, 0);
	/* 0.2 declared the first 8 columns, 0.3 adds the latencies */
	natts = rsinfo->setDesc->natts;
	if (natts != 8 && natts != 10)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("aurora.shipping_stats() is declared with %d columns, expected 8 or 10", natts),
				 errhint("Run ALTER EXTENSION aurora UPDATE.")));
	snap = snapshot_pgs(&n);
	if (snap == NULL)
		return (Datum) 0;
	for (int k = 0; k < nodes->count; k++)
	{
		Datum		values[10];
		bool		nulls[10] = {false};
		NodeShared	lat = {{0}};
		int64		segments = 0,
					batches = 0,
					records = 0,
					bytes = 0,
					acks = 0,
					errors = 0;

		for (int p = 0; p < n; p++)
			for (int i = 0; i < AURORA_PG_COPIES; i++)
			{
				SegShared  *sg = &snap[p].seg[i];

				if (strcmp(sg->node_id, nodes->nodes[k].id) != 0)
					continue;
				segments++;
				batches += (int64) sg->batches;
				records += (int64) sg->records;
				bytes += (int64) sg->bytes;
				acks += (int64) sg->acks;
				errors += (int64) sg->errors;
			}
		values[0] = CStringGetTextDatum(nodes->nodes[k].id);
		values[1] = CStringGetTextDatum(nodes->nodes[k].az);
		values[2] = Int64GetDatum(segments);
		values[3] = Int64GetDatum(batches);
		values[4] = Int64GetDatum(records);
		values[5] = Int64GetDatum(bytes);
		values[6] = Int64GetDatum(acks);
		values[7] = Int64GetDatum(errors);
		if (k < shared->n_nodes)
		{
			SpinLockAcquire(&shared->mutex);
			lat = shared->node[k];
			SpinLockRelease(&shared->mutex);
		}
		values[8] = Float8GetDatum(lat.ack_p50_ms);
		values[9] = Float8GetDatum(lat.ack_p99_ms);
		nulls[8] = nulls[9] = lat.ack_samples == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
