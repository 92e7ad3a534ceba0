/*
 * shipper.c
 *	  The WAL shipper background worker (aurora.shipping; docs/architecture.md
 *	  "Processes" and "A write's path"): its main loop and its reading of WAL.
 *
 *	  The shipper reads the compute's WAL straight from pg_wal, up to the
 *	  local flush point, as soon as a committing backend sets its latch
 *	  (commit_wait.c) or, while WAL is being written without commits, every
 *	  few milliseconds.  WAL read is kept in a contiguous buffer and cut into
 *	  records with PostgreSQL's own XLogReader, whose page_read callback
 *	  waits (latch, and a pipe the quorum writers poke when a held-back batch
 *	  may go) until the bytes asked for are flushed.  Each record is routed
 *	  and batched to its PGs (wal_routing.c) and queued for VCL; VDL moves and
 *	  releases the commits it covers (watermarks.c, commit_wait.c).  A
 *	  physical replication slot that the shipper holds and advances to VDL
 *	  keeps the WAL until then (volume_session.c).
 *
 *	  Start: open the volume, hold the slot and resume (volume_session.c).
 *	  Stop: not while commits wait for VDL (shipper_sigterm).
 */
#include "postgres.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "access/xlogrecord.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "commit_wait.h"
#include "compute_volume.h"
#include "node_list.h"
#include "shipper.h"
#include "shipping_status.h"
#include "smgr.h"
#include "start_state_writer.h"
#include "volume_session.h"
#include "wal_routing.h"
#include "watermarks.h"
#include "volume_start.h"

PGDLLEXPORT void aurora_shipper_main(Datum main_arg);

/* WAL read from pg_wal and not yet released: [start, start + len) */
typedef struct StreamBuffer
{
	XLogRecPtr	start;
	char	   *data;
	Size		len;
	Size		cap;
} StreamBuffer;

static volatile sig_atomic_t shutdown_requested = false;
static int	wake_pipe[2] = {-1, -1};
static StreamBuffer stream;
static XLogReaderState *wal_files = NULL;	/* for WALRead's segment handling */
static TimestampTz last_heartbeat = 0;

/* how long storage that cannot take the last WAL may delay a shutdown */
#define SHUTDOWN_DRAIN_MS	5000

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

/*
 * Publish the status views (heartbeat: also probe every PG, so the views
 * stay true for PGs nobody writes to, and let the storage manager tidy up),
 * then VCL, VDL and the read points, and release the commits VDL covers.
 */
static void
publish(bool running)
{
	XLogRecPtr	released;

	if (running)
	{
		TimestampTz now = GetCurrentTimestamp();
		bool		heartbeat = TimestampDifferenceExceeds(last_heartbeat, now, 1000);

		/* the heartbeat rides on a status publication, as often as that */
		bool		published = aurora_publish_shipping_status(heartbeat);

		/* what the segments answered includes whether a newer compute fenced them */
		if (published)
			aurora_check_fenced();
		if (published && heartbeat)
		{
			aurora_probe_all_pgs(true);
			aurora_smgr_janitor();
			aurora_start_state_writer_tick();
			last_heartbeat = now;
		}
	}
	released = aurora_watermarks_publish(running);
	if (running)
		aurora_commit_wait_release(released);
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
	else if (shutdown_requested || aurora_watermarks_in_flight() > 0)
		timeout = 100L;		/* records waiting for quorum: probe (see below) */
	else
		timeout = 1000L;
	(void) WaitEventSetWait(set, timeout, &ev, 1, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	while (read(wake_pipe[0], drain, sizeof(drain)) > 0)
		;
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
	XLogRecPtr	v = aurora_watermarks_vdl();

	if (aurora_watermarks_in_flight() == 0 || v != last_vdl)
	{
		last_vdl = v;
		since = now;
		return;
	}
	if (!TimestampDifferenceExceeds(since, now, 200))
		return;
	aurora_probe_all_pgs(false);
	since = now;
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
	aurora_routing_wake_on_every_ack = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

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
			aurora_warn_if_standby_names_name_shipper();
		}

		/*
		 * Everything decoded so far is whole records: send it (as the
		 * window allows) and release the commits VDL covers now, not only
		 * when the WAL pauses; under a steady stream of commits it rarely
		 * does.
		 */
		aurora_flush_batches();
		aurora_watermarks_advance();
		publish(true);
		aurora_advance_shipper_slot();
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
			(aurora_watermarks_in_flight() == 0 ||
			 TimestampDifferenceExceeds(shutdown_requested_at, GetCurrentTimestamp(),
										SHUTDOWN_DRAIN_MS)))
		{
			ereport(LOG,
					(errmsg("aurora shipper: stopping at VDL %X/%X",
							LSN_FORMAT_ARGS(aurora_watermarks_vdl()))));
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

	aurora_volume_geometry(&geometry);

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
	aurora_routing_set_wake_fd(wake_pipe[1]);
	{
		/* NNG starts its threads here; they must never run our signal handlers */
		sigset_t	all,
					old;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		aurora_open_volume(&geometry);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}

	resume = aurora_hold_shipper_slot();
	/*
	 * A compute prepared from the volume (aurora-compute-init start) has no
	 * slot of its own: it resumes where the volume was opened, which its
	 * recovery replayed exactly.
	 */
	if (XLogRecPtrIsInvalid(resume) && !XLogRecPtrIsInvalid(aurora_opened_vdl()))
	{
		resume = aurora_opened_vdl();
		aurora_resume_pgs(resume);
		start = resume - XLogSegmentOffset(resume, wal_segment_size);
	}
	else if (XLogRecPtrIsInvalid(resume))
	{
		/* a new volume: from the start of the segment holding the flush point */
		start = GetFlushRecPtr(NULL);
		start -= XLogSegmentOffset(start, wal_segment_size);
		resume = start;
	}
	else
	{
		aurora_resume_pgs(resume);
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
	/*
	 * Sessions may start once VDL covers what recovery made visible: the
	 * opened VDL after a start from the volume (storage holds it, so even
	 * with only a read quorum reachable the compute opens for reads), all
	 * the local WAL after a crash restart inside this postmaster.
	 */
	aurora_note_recovered_wal_end(!XLogRecPtrIsInvalid(aurora_opened_vdl()) ?
								  aurora_opened_vdl() : GetFlushRecPtr(NULL));
	aurora_watermarks_advance();	/* the PGCLs the segments reported: read points */
	publish(true);
	ereport(LOG, (errmsg("aurora shipper: shipping WAL from %X/%X (first record %X/%X, VDL %X/%X)",
						 LSN_FORMAT_ARGS(start), LSN_FORMAT_ARGS(first),
						 LSN_FORMAT_ARGS(aurora_watermarks_vdl()))));
	aurora_warn_if_standby_names_name_shipper();

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
		aurora_route_record(reader, &geometry, copy_record_bytes);
		stream_trim(reader->ReadRecPtr);
		aurora_watermarks_advance();

		now = GetCurrentTimestamp();
		if (TimestampDifferenceExceeds(last_log, now, 10000))
		{
			ereport(LOG, (errmsg("aurora shipper: %llu records, %llu bytes; VDL %X/%X",
								 (unsigned long long) records, (unsigned long long) bytes,
								 LSN_FORMAT_ARGS(aurora_watermarks_vdl()))));
			last_log = now;
		}
	}
}

/*
 * With aurora.shipping on: check the settings shipping needs, register the
 * worker and everything it publishes (from _PG_init, after the settings
 * are final).
 */
void
aurora_shipper_init(void)
{
	BackgroundWorker worker;

	if (!aurora_shipping)
		return;
	/* shipping to nowhere would leave every commit waiting forever */
	if (aurora_configured_nodes()->count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aurora.shipping is on but aurora.storage_nodes is empty"),
				 errhint("Name the storage nodes (id:az:url, ...) or turn aurora.shipping off.")));
	/* the shipper's slot keeps WAL in pg_wal until storage holds it */
	if (max_replication_slots <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aurora.shipping needs a replication slot, but max_replication_slots = 0"),
				 errhint("Set max_replication_slots to at least 1 (the default is 10).")));
	if (wal_level < WAL_LEVEL_REPLICA)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aurora.shipping needs wal_level replica or logical"),
				 errdetail("With wal_level = minimal some changes are not WAL-logged, so storage could not hold them."),
				 errhint("Set wal_level = replica (the default).")));

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "aurora");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "aurora_shipper_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "aurora WAL shipper");
	snprintf(worker.bgw_type, BGW_MAXLEN, "aurora WAL shipper");
	RegisterBackgroundWorker(&worker);

	aurora_session_gate_init();
	aurora_watermarks_init();
	aurora_shipping_status_init();
	aurora_commit_wait_init();
}
