/*
 * volume_session.c
 *	  The shipper's session with the volume: open every PG's segments
 *	  (epoch 1) and refuse a volume whose geometry disagrees, resume after a
 *	  restart from the slot's restart point, hold and advance the
 *	  replication slot 'aurora_shipper' that keeps WAL until VDL covers it,
 *	  and the session gate that keeps clients out until VDL covers the
 *	  recovered WAL (docs/architecture.md "Epochs and recovery").
 *
 *	  Restart: the slot's restart point is a VDL reported earlier, so every
 *	  record ending before it is on a write quorum; streaming resumes there
 *	  and each PG's next backlink comes from storage (RECORD_BEFORE).  The
 *	  slot is saved at checkpoints, so after a crash it may be older than
 *	  the last VDL: that only resends records, byte-identical duplicates.
 *
 *	  Everything but the session gate runs in the shipper (shipper.c); the
 *	  gate runs in every new backend, in ClientAuthentication_hook.
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>

#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "replication/slot.h"
#include "replication/syncrep.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "client.h"
#include "compute_volume.h"
#include "volume_session.h"
#include "wal_routing.h"
#include "watermarks.h"
#include "volume_start.h"

/* How long a new session waits for storage before it is turned away. */
#define SESSION_GATE_WAIT_MS	10000

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

static XLogRecPtr last_start_before(int p, XLogRecPtr resume);
static bool member_unreachable(int p, int i);

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
	if (status != STATUS_OK)
		return;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SESSION_GATE_WAIT_MS);
	for (;;)
	{
		XLogRecPtr	v = aurora_released_vdl(),
					need = aurora_recovered_wal_end();

		/* once VDL has covered the recovered WAL, a shipper restart changes nothing */
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
		/* a latch wait, so that a backend left behind by a crashed postmaster exits */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* Install the session gate (from _PG_init, when shipping). */
void
aurora_session_gate_init(void)
{
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = session_gate;
}

/*
 * Resume where VDL stood (a VDL published before): VCL and VDL start there
 * and every PG's next backlink comes from storage.  NNG threads start
 * here: they must never run PostgreSQL's signal handlers.
 */
void
aurora_resume_pgs(XLogRecPtr resume)
{
	sigset_t	all,
				old;

	aurora_watermarks_resume(resume);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int p = 0; p < aurora_ship_n_pgs; p++)
		aurora_ship_pgs[p].last_start = last_start_before(p, resume);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
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

		if (member_unreachable(p, i))
			continue;
		memset(&h, 0, sizeof(h));
		h.type = AURORA_MSG_RECORD_BEFORE_REQ;
		h.volume_id = AURORA_COMPUTE_VOLUME_ID;
		h.pg_id = (uint32) p;
		h.volume_epoch = aurora_volume_epoch();
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
 * A member that did not answer the writer's CREATE_SEGMENT just before (no
 * reply, refused): asking it again would only wait out another timeout per
 * PG while a node or an AZ is down.
 */
static bool
member_unreachable(int p, int i)
{
	aurora_pgwriter_view v;

	if (aurora_ship_pgs == NULL || aurora_ship_pgs[p].writer == NULL)
		return false;
	aurora_pgwriter_view_get(aurora_ship_pgs[p].writer, &v);
	return v.seg[i].last_error_code == AURORA_ERR_INTERNAL && v.seg[i].acks == 0;
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

/* One PG's writer being opened (open_pg_writer, in a thread of its own). */
typedef struct PGOpenJob
{
	aurora_pg_target target;
	aurora_pgwriter *writer;
	int			created;
	int			rc;
	char		err[512];
} PGOpenJob;

/* No PostgreSQL calls here: it runs outside the backend's thread. */
static void *
open_pg_writer(void *arg)
{
	PGOpenJob  *job = arg;

	job->rc = aurora_pgwriter_open(&job->target, aurora_write_quorum, aurora_request_timeout_ms,
								   &job->writer, job->err, sizeof(job->err));
	if (job->rc == 0)
		job->created = aurora_pgwriter_create_segments(job->writer, job->err, sizeof(job->err));
	return NULL;
}

/*
 * Place every PG on the configured nodes, open its writer under this
 * compute's epoch and create (or find) its segments, then let each PG's
 * writer report its PGCL (watermarks.c).  The PGs open side by side: with a
 * node or an AZ down each waits out a request timeout for it, once, not
 * once per PG.  Called with signals blocked (NNG threads start here).
 */
void
aurora_open_volume(const aurora_geometry *g)
{
	int			n_pgs = (int) g->n_pgs;
	ShipPG	   *pgs = palloc0(sizeof(ShipPG) * n_pgs);
	PGOpenJob  *jobs = palloc0(sizeof(PGOpenJob) * n_pgs);
	pthread_t  *threads = palloc0(sizeof(pthread_t) * n_pgs);
	bool	   *started = palloc0(sizeof(bool) * n_pgs);
	const AuroraVolumeStart *vs = aurora_volume_start();

	aurora_ship_pgs = pgs;
	aurora_ship_n_pgs = n_pgs;
	aurora_watermarks_start(n_pgs);
	for (int p = 0; p < n_pgs; p++)
	{
		aurora_pg_target *t = &jobs[p].target;

		t->volume_id = AURORA_COMPUTE_VOLUME_ID;
		t->pg_id = (uint32) p;
		t->volume_epoch = aurora_volume_epoch();
		t->membership_epoch = 1;
		t->base_lsn = 0;
		t->n_pgs = g->n_pgs;
		t->blocks_per_segment = g->blocks_per_segment;
		/* segments that missed the truncation are reopened with it (PROTOCOL.md 5.10) */
		StaticAssertStmt(sizeof(AuroraTruncEntry) == sizeof(aurora_trunc_entry),
						 "one truncation entry layout");
		t->history = (const aurora_trunc_entry *) vs->history;
		t->n_history = vs->n_history;
		aurora_place_configured_pg(p, t->members);
	}
	for (int p = 0; p < n_pgs; p++)
		started[p] = pthread_create(&threads[p], NULL, open_pg_writer, &jobs[p]) == 0;
	for (int p = 0; p < n_pgs; p++)
	{
		if (started[p])
			pthread_join(threads[p], NULL);
		else
			open_pg_writer(&jobs[p]);
	}
	for (int p = 0; p < n_pgs; p++)
	{
		aurora_pgwriter_view v;

		if (jobs[p].rc != 0)
			ereport(ERROR,
					(errmsg("aurora shipper: protection group %d: %s", p, jobs[p].err)));
		pgs[p].writer = jobs[p].writer;
		refuse_on_conflict(pgs[p].writer, p);
		/*
		 * Fewer than a write quorum (an AZ and a node down): ship anyway;
		 * commits wait until enough segments are back, which the writer
		 * reopens under this epoch.  None at all: try again.
		 */
		if (jobs[p].created == 0)
			ereport(ERROR,
					(errmsg("aurora shipper: no segment of protection group %d answered", p)));
		if (jobs[p].created < aurora_write_quorum)
			ereport(LOG,
					(errmsg("aurora shipper: only %d segments of protection group %d answered; commits wait until a write quorum of %d is reachable",
							jobs[p].created, p, aurora_write_quorum)));
		aurora_pgwriter_view_get(pgs[p].writer, &v);
		aurora_watermarks_seeded(p, v.seeded_lsn);
		memcpy(pgs[p].members, jobs[p].target.members, sizeof(jobs[p].target.members));
		initStringInfo(&pgs[p].payloads);
		aurora_pgwriter_on_pgcl(pgs[p].writer, aurora_routing_pgcl_advanced,
								(void *) (intptr_t) p);
		/* what the segments reported before the callback was in place */
		aurora_routing_pgcl_advanced((void *) (intptr_t) p, aurora_pgwriter_pgcl(pgs[p].writer));
	}
	pfree(jobs);
	pfree(threads);
	pfree(started);
}

/*
 * Find or create the shipper's slot and hold it.  Returns its restart
 * point, a VDL published earlier, or Invalid when the slot had to be
 * created (a new volume).
 */
XLogRecPtr
aurora_hold_shipper_slot(void)
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
 * flush position its standby reports.  At most every 100 ms: it takes locks
 * and scans slots.  A crash resumes from the restart point on disk and
 * resends what lies above it (byte-identical duplicates), and the first
 * sessions wait until VDL passes the recovered WAL again: the slot is
 * saved whenever it moved SLOT_SAVE_BYTES, not only at checkpoints, so that
 * wait stays short however long ago the last checkpoint was.
 */
#define SLOT_SAVE_BYTES		((XLogRecPtr) 16 * 1024 * 1024)
void
aurora_advance_shipper_slot(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();
	ReplicationSlot *slot = MyReplicationSlot;
	bool		changed = false;
	XLogRecPtr	vdl;

	if (slot == NULL || !TimestampDifferenceExceeds(last, now, 100))
		return;
	vdl = aurora_watermarks_vdl();
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
		static XLogRecPtr saved = InvalidXLogRecPtr;

		ReplicationSlotMarkDirty();
		ReplicationSlotsComputeRequiredLSN();
		if (vdl - saved >= SLOT_SAVE_BYTES)
		{
			ReplicationSlotSave();
			/* and for a restart over this directory: its WAL below vdl is durable */
			aurora_save_durable_lsn(vdl);
			saved = vdl;
		}
	}
}

/*
 * Earlier builds made commits wait for the shipper as a synchronous standby
 * named aurora_shipper.  Nothing connects under that name any more, so a
 * configuration that still requires it makes every commit wait for ever
 * after its VDL wait: say so (at start and after each reload).
 */
void
aurora_warn_if_standby_names_name_shipper(void)
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

/*
 * Fenced: once more than 6 - write quorum segments of a PG refuse this
 * compute's epoch (STALE_EPOCH, or a newer epoch in their SEGMENT_INFO),
 * it can never again collect a write quorum there: a newer compute opened
 * the volume.  Called on every status publication (at most every 100 ms;
 * the heartbeat probes every segment once a second, so an idle compute
 * notices too).
 */
void
aurora_check_fenced(void)
{
	for (int p = 0; p < aurora_ship_n_pgs; p++)
	{
		aurora_pgwriter_view v;
		int			fenced = 0;
		char		why[256];

		aurora_pgwriter_view_get(aurora_ship_pgs[p].writer, &v);
		for (int i = 0; i < AURORA_PG_COPIES; i++)
			fenced += v.seg[i].fenced;
		if (fenced > AURORA_PG_COPIES - aurora_write_quorum)
		{
			snprintf(why, sizeof(why),
					 "%d of %d segments of protection group %d refuse volume epoch " UINT64_FORMAT,
					 fenced, AURORA_PG_COPIES, p, aurora_volume_epoch());
			aurora_note_fenced(why);
			return;
		}
	}
}
