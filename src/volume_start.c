/*
 * volume_start.c
 *	  The volume epoch this compute runs under, and what became of it.
 *
 *	  A shipping compute never opens the volume itself: `aurora-compute-init
 *	  start` (src/compute_init/start.c) fences the writer before, truncates
 *	  the ragged edge under a new epoch and prepares the data directory, and
 *	  leaves DATADIR/aurora_start.  The postmaster reads that file once, in
 *	  _PG_init (PostgreSQL reads pg_control before it loads libraries, so the
 *	  data directory must be ready before it starts), and renames it
 *	  aurora_start.used: a later postmaster start without a new
 *	  `aurora-compute-init start` is refused, since its local WAL may hold
 *	  records above VDL that must never be replayed, and its epoch may have
 *	  been taken over.  Crash restarts inside one postmaster keep the epoch.
 *
 *	  Every request to storage carries aurora_volume_epoch(); the shipper
 *	  hands the truncation history to its writers, which reopen segments
 *	  that missed the truncation.  When storage answers STALE_EPOCH (a newer
 *	  compute opened the volume) this compute is fenced: aurora_fenced()
 *	  says so in shared memory and the log, commits still waiting end
 *	  without an answer, and the server stops at once (an immediate
 *	  shutdown: no checkpoint, nothing written to storage), since it can
 *	  neither make anything durable nor vouch for what its buffers hold.
 */
#include "postgres.h"

#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "start_state.h"

#include "compute_volume.h"
#include "volume_start.h"

#define START_FILE		AURORA_START_FILE
#define START_FILE_USED	AURORA_START_FILE ".used"
#define DURABLE_FILE	AURORA_DURABLE_FILE

/* What aurora_start said, read by the postmaster; every child inherits it. */
static AuroraVolumeStart start_info;

/* Postmaster-local: how many times shared memory was (re)initialized. */
static int	shmem_generation = 0;

typedef struct FenceShared
{
	slock_t		mutex;
	bool		fenced;
	TimestampTz fenced_at;
	char		reason[256];
} FenceShared;

static FenceShared *fence = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
fence_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(FenceShared)));
}

static void
fence_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	if (!IsUnderPostmaster)
		shmem_generation++;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	fence = ShmemInitStruct("aurora volume fence", sizeof(FenceShared), &found);
	if (!found)
	{
		memset(fence, 0, sizeof(*fence));
		SpinLockInit(&fence->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

static bool
parse_lsn_value(const char *v, XLogRecPtr *out)
{
	unsigned int hi,
				lo;
	char		end;

	if (sscanf(v, "%X/%X%c", &hi, &lo, &end) != 2)
		return false;
	*out = ((uint64) hi << 32) | lo;
	return true;
}

static bool
parse_u64_value(const char *v, uint64 *out)
{
	char	   *end;

	errno = 0;
	*out = strtou64(v, &end, 10);
	return errno == 0 && end != v && *end == '\0' && v[0] != '-';
}

/* epoch:X/X,epoch:X/X,... into start_info.history (TopMemoryContext) */
static bool
parse_history(const char *v)
{
	int			n = 0,
				cap = 8;
	char	   *copy = pstrdup(v);
	char	   *save = NULL;
	AuroraTruncEntry *h = MemoryContextAlloc(TopMemoryContext, sizeof(*h) * cap);

	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
	{
		char	   *colon = strchr(tok, ':');

		if (colon == NULL)
			return false;
		*colon = '\0';
		if (n == cap)
		{
			cap *= 2;
			h = repalloc(h, sizeof(*h) * cap);
		}
		if (!parse_u64_value(tok, &h[n].epoch) || !parse_lsn_value(colon + 1, &h[n].lsn))
			return false;
		if (n > 0 && (h[n].epoch <= h[n - 1].epoch || h[n].lsn < h[n - 1].lsn))
			return false;
		n++;
	}
	start_info.history = h;
	start_info.n_history = n;
	return true;
}

/* X/X,X/X,... (one per PG) into start_info.read_points */
static bool
parse_read_points(const char *v)
{
	int			n = 0,
				cap = 8;
	char	   *copy = pstrdup(v);
	char	   *save = NULL;
	XLogRecPtr *rp = MemoryContextAlloc(TopMemoryContext, sizeof(*rp) * cap);

	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
	{
		if (n == cap)
		{
			cap *= 2;
			rp = repalloc(rp, sizeof(*rp) * cap);
		}
		if (!parse_lsn_value(tok, &rp[n]))
			return false;
		n++;
	}
	start_info.read_points = rp;
	start_info.n_read_points = n;
	return true;
}

/* One "key = value" line; false when the key is known and its value is not valid. */
static bool
parse_line(char *line)
{
	char	   *eq = strchr(line, '=');
	char	   *key = line,
			   *val;
	uint64		u;

	if (line[0] == '#' || line[0] == '\0' || eq == NULL)
		return true;
	*eq = '\0';
	val = eq + 1;
	while (*key == ' ')
		key++;
	for (char *p = eq - 1; p >= key && *p == ' '; p--)
		*p = '\0';
	while (*val == ' ')
		val++;
	for (char *p = val + strlen(val) - 1; p >= val && (*p == ' ' || *p == '\n'); p--)
		*p = '\0';

	if (strcmp(key, "version") == 0)
		return parse_u64_value(val, &u) && u == 1;
	if (strcmp(key, "volume_epoch") == 0)
		return parse_u64_value(val, &start_info.epoch) && start_info.epoch > 0;
	if (strcmp(key, "opened_vdl") == 0)
		return parse_lsn_value(val, &start_info.opened_vdl);
	if (strcmp(key, "how") == 0)
	{
		strlcpy(start_info.how, val, sizeof(start_info.how));
		return true;
	}
	if (strcmp(key, "start_state_lsn") == 0)
		return parse_lsn_value(val, &start_info.start_state_lsn);
	if (strcmp(key, "redo_lsn") == 0)
		return parse_lsn_value(val, &start_info.redo_lsn);
	if (strcmp(key, "wal_records") == 0)
		return parse_u64_value(val, &start_info.wal_records);
	if (strcmp(key, "wal_bytes") == 0)
		return parse_u64_value(val, &start_info.wal_bytes);
	if (strcmp(key, "truncated_records") == 0)
		return parse_u64_value(val, &start_info.truncated_records);
	if (strcmp(key, "truncated_bytes") == 0)
		return parse_u64_value(val, &start_info.truncated_bytes);
	if (strcmp(key, "pgs_open") == 0)
		return parse_u64_value(val, &u) && (start_info.pgs_open = (int) u) >= 0;
	if (strcmp(key, "pgs") == 0)
		return parse_u64_value(val, &u) && (start_info.pgs = (int) u) >= 0;
	if (strcmp(key, "blocks_per_segment") == 0)
		return parse_u64_value(val, &start_info.blocks_per_segment);
	if (strcmp(key, "init_ms") == 0)
		return parse_u64_value(val, &start_info.init_ms);
	if (strcmp(key, "created_at") == 0)
		return parse_u64_value(val, &u) && (start_info.created_at = (pg_time_t) u) > 0;
	if (strcmp(key, "history") == 0)
		return parse_history(val);
	if (strcmp(key, "read_points") == 0)
		return parse_read_points(val);
	return true;				/* a newer writer's extra key */
}

static void
refuse_start(const char *why, const char *detail)
pg_attribute_noreturn();

static void
refuse_start(const char *why, const char *detail)
{
	ereport(FATAL,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("aurora: %s", why),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("Prepare the data directory from the volume first: aurora-compute-init start --storage-nodes '%s' --pgdata %s (README, \"Starting and replacing a compute\").",
					 GetConfigOption("aurora.storage_nodes", true, false) ?
					 GetConfigOption("aurora.storage_nodes", true, false) : "", DataDir)));
}

/*
 * Read DATADIR/aurora_start (from _PG_init, with aurora.shipping on) and
 * mark it used.  Refuses the start when there is none, or only a used one.
 */
void
aurora_volume_start_init(void)
{
	FILE	   *f;
	char		line[8192];
	int			lineno = 0;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = fence_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = fence_shmem_startup;

	f = AllocateFile(START_FILE, "r");
	if (f == NULL)
	{
		struct stat st;

		if (errno != ENOENT)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("aurora: could not open \"%s/%s\": %m", DataDir, START_FILE)));
		if (stat(START_FILE_USED, &st) == 0)
			refuse_start("this data directory was already opened under its volume epoch",
						 "The compute must open the volume under a new epoch at every start: its local WAL may hold records storage never acknowledged, and another compute may have opened the volume since.");
		refuse_start("this data directory was not prepared from the volume (no aurora_start file)",
					 "A shipping compute starts only from what aurora-compute-init start prepared.");
	}
	start_info.how[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL)
	{
		lineno++;
		if (!parse_line(line))
			ereport(FATAL,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("aurora: \"%s/%s\" line %d is not valid", DataDir, START_FILE, lineno),
					 errhint("Run aurora-compute-init start again.")));
	}
	FreeFile(f);
	if (start_info.epoch == 0 || start_info.how[0] == '\0' ||
		(start_info.n_history == 0 && strcmp(start_info.how, "new-volume") != 0))
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("aurora: \"%s/%s\" is incomplete", DataDir, START_FILE),
				 errhint("Run aurora-compute-init start again.")));
	if (start_info.n_history > 0 &&
		start_info.history[start_info.n_history - 1].epoch != start_info.epoch)
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("aurora: \"%s/%s\": the history does not end at the volume epoch", DataDir, START_FILE),
				 errhint("Run aurora-compute-init start again.")));
	/* the geometry is fixed when the volume is created: a compute that disagrees would misroute */
	if (start_info.pgs > 0 &&
		(start_info.pgs != aurora_protection_groups ||
		 start_info.blocks_per_segment != (uint64) aurora_blocks_per_segment))
		ereport(FATAL,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("aurora: the volume in storage does not match this compute's settings"),
				 errdetail("The volume has %d protection groups of " UINT64_FORMAT "-block chunks; this compute declares %d of %d.",
						   start_info.pgs, start_info.blocks_per_segment,
						   aurora_protection_groups, aurora_blocks_per_segment),
				 errhint("Start the compute with the aurora.protection_groups and aurora.blocks_per_segment the volume was created with.")));
	if (durable_rename(START_FILE, START_FILE_USED, FATAL) != 0)
		refuse_start("could not mark aurora_start used", NULL);
	start_info.loaded = true;
	start_info.postmaster_started = time(NULL);
	ereport(LOG,
			(errmsg("aurora: opening the volume at epoch " UINT64_FORMAT ", VDL %X/%X (%s, prepared in " UINT64_FORMAT " ms)",
					start_info.epoch, LSN_FORMAT_ARGS(start_info.opened_vdl), start_info.how,
					start_info.init_ms)));
}

const AuroraVolumeStart *
aurora_volume_start(void)
{
	return &start_info;
}

/*
 * The volume epoch of every request: the one aurora_start opened, or 1 for
 * a compute that does not ship (it writes nothing; its page reads, if any,
 * are those of a test) .
 */
uint64
aurora_volume_epoch(void)
{
	return start_info.loaded ? start_info.epoch : 1;
}

/*
 * The VDL storage holds everything below and this postmaster's first
 * recovery replayed exactly: valid only before the first crash restart
 * inside this postmaster (after one, the local WAL replayed may reach
 * beyond it).  Invalid otherwise.
 */
XLogRecPtr
aurora_opened_vdl(void)
{
	if (!start_info.loaded || shmem_generation > 1 ||
		strcmp(start_info.how, "new-volume") == 0 || strcmp(start_info.how, "local-files") == 0 ||
		strcmp(start_info.how, "first-start") == 0)
		return InvalidXLogRecPtr;
	return start_info.opened_vdl;
}

/*
 * The read point of PG pg while the first recovery of this postmaster runs
 * (the shipper publishes read points only afterwards): the end of pg's last
 * record below the opened VDL.  Invalid when the start was not from the
 * volume.
 */
XLogRecPtr
aurora_opened_read_point(int pg)
{
	if (XLogRecPtrIsInvalid(aurora_opened_vdl()))
		return InvalidXLogRecPtr;
	if (pg < 0 || pg >= start_info.n_read_points)
		return aurora_opened_vdl();
	return Max(start_info.read_points[pg], 1);
}

bool
aurora_fenced(char *reason, size_t len, TimestampTz *at)
{
	bool		f;

	if (fence == NULL)
		return false;
	SpinLockAcquire(&fence->mutex);
	f = fence->fenced;
	if (f && reason != NULL)
		strlcpy(reason, fence->reason, len);
	if (f && at != NULL)
		*at = fence->fenced_at;
	SpinLockRelease(&fence->mutex);
	return f;
}

/*
 * Storage says a newer compute owns the volume: remember why, say it once,
 * and stop the server at once.  Safe from any process; returns (the caller
 * ends its work: an ERROR, or the shipper's exit).
 */
void
aurora_note_fenced(const char *reason)
{
	bool		first;

	if (fence == NULL)
		return;
	SpinLockAcquire(&fence->mutex);
	first = !fence->fenced;
	if (first)
	{
		fence->fenced = true;
		fence->fenced_at = GetCurrentTimestamp();
		strlcpy(fence->reason, reason, sizeof(fence->reason));
	}
	SpinLockRelease(&fence->mutex);
	if (!first)
		return;
	ereport(LOG,
			(errcode(ERRCODE_ADMIN_SHUTDOWN),
			 errmsg("aurora: this compute was fenced: a newer compute opened the volume; shutting down at once"),
			 errdetail("%s. This compute ran at volume epoch " UINT64_FORMAT "; it can make nothing durable and must not serve what its buffers hold.",
					   reason, aurora_volume_epoch()),
			 errhint("The compute that opened the volume is its writer now. To use this data directory again, run aurora-compute-init start, which opens the volume under a newer epoch.")));
	kill(PostmasterPid, SIGQUIT);
}

/*
 * Record in DATADIR/aurora_durable that the volume holds this directory's
 * WAL up to lsn (a VDL the shipper reached), so that a restart over the
 * directory takes the WAL below it from pg_wal instead of storage
 * (src/compute_init/local_wal.c).  A hint: if it is missing or old the
 * restart reads more from storage, so a failure is only logged.  Written
 * whole and renamed, so it is never half there.
 */
void
aurora_save_durable_lsn(XLogRecPtr lsn)
{
	char		buf[128];
	int			len;
	int			fd;

	len = snprintf(buf, sizeof(buf), "version 1\nvolume_epoch " UINT64_FORMAT "\ndurable_lsn %X/%X\n",
				   aurora_volume_epoch(), LSN_FORMAT_ARGS(lsn));
	fd = OpenTransientFile(DURABLE_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("aurora: could not create \"%s\": %m", DURABLE_FILE ".tmp")));
		return;
	}
	if (write(fd, buf, len) != len || pg_fsync(fd) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("aurora: could not write \"%s\": %m", DURABLE_FILE ".tmp")));
		CloseTransientFile(fd);
		return;
	}
	CloseTransientFile(fd);
	(void) durable_rename(DURABLE_FILE ".tmp", DURABLE_FILE, LOG);
}
