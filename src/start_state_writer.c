/*
 * start_state_writer.c
 *	  Keeps the volume's start state current (docs/architecture.md "Epochs
 *	  and recovery", "Start states"): after every checkpoint the shipper
 *	  stores the compute's non-relation files (pg_control, the SLRUs,
 *	  relation maps, two-phase files, slots, unlogged init forks, the
 *	  configuration; storage_service/common/start_state.c chooses them) on
 *	  the six segments of PG 0, so that a new compute can start from the
 *	  volume alone.
 *
 *	  Consistency: the files are read after the checkpoint completed
 *	  (pg_control names it), and may hold changes newer than it, as a base
 *	  backup's do; replaying the WAL from the checkpoint's redo point makes
 *	  them consistent.  Local CLOG pages may say "committed" for a commit that
 *	  is flushed locally but not yet durable in storage, so the bundle is
 *	  consistent only at an LSN taken after all files were read (every commit
 *	  they show ends below it), and is stored only once VDL covers that LSN:
 *	  a start state never names a commit a restart could discard.
 *
 *	  Runs in the shipper at its heartbeat (once a second): a pending bundle
 *	  waits there for VDL; storing it is one quorum call (a write quorum of
 *	  PG 0's segments).  A failure is logged and retried at the next
 *	  heartbeat with a fresh bundle.
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "catalog/pg_control.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "start_state.h"
#include "start_state_client.h"

#include "compute_volume.h"
#include "smgr.h"
#include "start_state_writer.h"
#include "watermarks.h"
#include "volume_start.h"

/*
 * Off: no start state is stored, so a new compute starts from the last one
 * stored and replays more WAL.  For measuring the writer's cost and for
 * tests that need a long replay; never needed in operation.
 */
static bool aurora_store_start_states = true;

/* the checkpoint whose start state storage holds (0: none yet) */
static XLogRecPtr stored_checkpoint = InvalidXLogRecPtr;

/* a bundle built and waiting for VDL to cover its consistent LSN */
static uint8 *pending = NULL;
static size_t pending_len = 0;
static XLogRecPtr pending_lsn = InvalidXLogRecPtr;
static XLogRecPtr pending_checkpoint = InvalidXLogRecPtr;
static uint32 pending_files = 0;

/* after a failure, the next attempt (so a storage outage logs once in a while) */
#define RETRY_MS	10000
static TimestampTz next_attempt = 0;

/*
 * pg_control as the file holds it, CRC checked (a checkpoint may be
 * rewriting it right now: then false, and the next heartbeat tries again).
 */
static bool
read_control_file(uint8 *buf, ControlFileData *cf)
{
	char		path[MAXPGPATH];
	int			fd;
	ssize_t		n;
	pg_crc32c	crc;

	snprintf(path, sizeof(path), "%s/%s", DataDir, XLOG_CONTROL_FILE);
	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		return false;
	n = read(fd, buf, PG_CONTROL_FILE_SIZE);
	close(fd);
	if (n != PG_CONTROL_FILE_SIZE)
		return false;
	memcpy(cf, buf, sizeof(ControlFileData));
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, (char *) cf, offsetof(ControlFileData, crc));
	FIN_CRC32C(crc);
	return EQ_CRC32C(crc, cf->crc);
}

static void
drop_pending(void)
{
	free(pending);
	pending = NULL;
	pending_len = 0;
	pending_lsn = pending_checkpoint = InvalidXLogRecPtr;
}

/* Build the bundle of the checkpoint pg_control names now. */
static void
build_pending(const uint8 *control, const ControlFileData *cf)
{
	aurora_start_state s;
	aurora_start_state_build_opts opts;
	char		err[512];

	memset(&opts, 0, sizeof(opts));
	opts.checkpoint_lsn = cf->checkPoint;
	opts.redo_lsn = cf->checkPointCopy.redo;
	opts.pg_control = control;
	opts.pg_control_len = PG_CONTROL_FILE_SIZE;
	if (aurora_start_state_from_datadir(DataDir, &opts, &s, err, sizeof(err)) != 0)
	{
		ereport(WARNING,
				(errmsg("aurora shipper: cannot collect the start state of checkpoint %X/%X: %s",
						LSN_FORMAT_ARGS(cf->checkPoint), err)));
		return;
	}
	/* every commit the files show ends below this */
	s.consistent_lsn = GetXLogInsertRecPtr();
	if (aurora_start_state_encode(&s, &pending, &pending_len, err, sizeof(err)) != 0)
	{
		ereport(WARNING,
				(errmsg("aurora shipper: cannot encode the start state of checkpoint %X/%X: %s",
						LSN_FORMAT_ARGS(cf->checkPoint), err)));
		aurora_start_state_free(&s);
		pending = NULL;
		return;
	}
	pending_lsn = s.consistent_lsn;
	pending_checkpoint = cf->checkPoint;
	pending_files = s.n_files;
	aurora_start_state_free(&s);
}

static void
store_pending(void)
{
	aurora_pg_target t;
	aurora_start_state_put_result res;
	char		err[1024];
	TimestampTz started = GetCurrentTimestamp();
	long		secs;
	int			usecs;

	memset(&t, 0, sizeof(t));
	t.volume_id = AURORA_COMPUTE_VOLUME_ID;
	t.pg_id = 0;
	t.volume_epoch = aurora_volume_epoch();
	t.membership_epoch = 1;
	aurora_place_configured_pg(0, t.members);
	if (aurora_start_state_put_pg(&t, aurora_write_quorum, pending, pending_len, pending_lsn, 0,
								  aurora_request_timeout_ms * 10, &res, err, sizeof(err)) != 0)
	{
		ereport(WARNING,
				(errmsg("aurora shipper: storing the start state of checkpoint %X/%X failed: %s",
						LSN_FORMAT_ARGS(pending_checkpoint), err),
				 errdetail("A compute started from the volume now would start from an older one and replay more WAL.")));
		drop_pending();
		next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RETRY_MS);
		return;
	}
	/* the shipper ships nothing while it stores: the time is the writer's cost to commits */
	TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
	ereport(LOG,
			(errmsg("aurora shipper: start state of checkpoint %X/%X stored at %X/%X (%u files, %zu bytes) on %d of 6 segments of PG 0 in %.1f ms",
					LSN_FORMAT_ARGS(pending_checkpoint), LSN_FORMAT_ARGS(pending_lsn),
					pending_files, pending_len, res.complete, secs * 1000.0 + usecs / 1000.0)));
	stored_checkpoint = pending_checkpoint;
	drop_pending();
}

void
aurora_start_state_writer_define_gucs(void)
{
	DefineCustomBoolVariable("aurora.store_start_states",
							 "Stores the compute's start state on the volume after every checkpoint.",
							 "Off: a compute created from the volume starts from the last start state stored and replays the WAL since it.",
							 &aurora_store_start_states,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
}

void
aurora_start_state_writer_tick(void)
{
	uint8		control[PG_CONTROL_FILE_SIZE];
	ControlFileData cf;

	if (!aurora_storage_manager || GetCurrentTimestamp() < next_attempt)
		return;
	if (!aurora_store_start_states)
	{
		drop_pending();
		return;
	}
	if (pending == NULL)
	{
		if (!read_control_file(control, &cf) || cf.checkPoint == stored_checkpoint)
			return;
		build_pending(control, &cf);
		if (pending == NULL)
			return;
	}
	if (aurora_released_vdl() >= pending_lsn)
		store_pending();
}
