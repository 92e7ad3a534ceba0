/*
 * shipping_status.c
 *	  The shipper's view of every PG, segment and storage node (PGCL, SCLs,
 *	  what was sent, errors, acknowledgement latencies), copied from its
 *	  quorum writers (wal_routing.c) into shared memory by the shipper's
 *	  main loop (shipper.c) and read by the views (sql_functions.c) and by
 *	  the reader when it picks a segment (page_reader.c).  Written by the
 *	  shipper only; the spinlock makes a reader see one consistent set.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "compute_volume.h"
#include "node_list.h"
#include "shipping_status.h"
#include "util.h"
#include "wal_routing.h"
#include "watermarks.h"

typedef struct ShippingStatusShared
{
	slock_t		mutex;
	TimestampTz pgs_published_at;
	int			n_pgs;
	PGStatus   *pg;				/* n_pgs entries, right after this struct */
	int			n_nodes;
	NodeAckLatency *node;		/* n_nodes entries, after the PGs */
} ShippingStatusShared;

static ShippingStatusShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
pgs_offset(void)
{
	return MAXALIGN(sizeof(ShippingStatusShared));
}

static Size
nodes_offset(void)
{
	return add_size(pgs_offset(), MAXALIGN(mul_size(aurora_protection_groups, sizeof(PGStatus))));
}

static Size
shipping_status_shmem_size(void)
{
	return add_size(nodes_offset(),
					mul_size(aurora_configured_nodes()->count, sizeof(NodeAckLatency)));
}

static void
shipping_status_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shipping_status_shmem_size());
}

static void
shipping_status_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("aurora shipping status", shipping_status_shmem_size(), &found);
	if (!found)
	{
		const AuroraNodeList *nodes = aurora_configured_nodes();

		memset(shared, 0, shipping_status_shmem_size());
		SpinLockInit(&shared->mutex);
		shared->n_pgs = aurora_protection_groups;
		shared->n_nodes = nodes->count;
		shared->node = (NodeAckLatency *) ((char *) shared + nodes_offset());
		for (int k = 0; k < nodes->count; k++)
			strlcpy(shared->node[k].node_id, nodes->nodes[k].id, sizeof(shared->node[k].node_id));
	}
	/* EXEC_BACKEND: pointers into shared memory differ per process */
	shared->pg = (PGStatus *) ((char *) shared + pgs_offset());
	shared->node = (NodeAckLatency *) ((char *) shared + nodes_offset());
	LWLockRelease(AddinShmemInitLock);
}

/* Request the shared memory (from _PG_init, when shipping). */
void
aurora_shipping_status_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shipping_status_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shipping_status_shmem_startup;
}

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
		NodeAckLatency *nd = &shared->node[k];
		int			segs = 0;
		int			n = 0;
		int			share;

		for (int p = 0; p < aurora_ship_n_pgs; p++)
			for (int i = 0; i < AURORA_PG_COPIES; i++)
				segs += strcmp(aurora_ship_pgs[p].members[i].node_id, nd->node_id) == 0;
		if (segs == 0)
			continue;
		share = Max(NODE_LATENCY_SAMPLES / segs, 1);
		for (int p = 0; p < aurora_ship_n_pgs && n < NODE_LATENCY_SAMPLES; p++)
			for (int i = 0; i < AURORA_PG_COPIES && n < NODE_LATENCY_SAMPLES; i++)
				if (strcmp(aurora_ship_pgs[p].members[i].node_id, nd->node_id) == 0)
					n += aurora_pgwriter_ack_latencies(aurora_ship_pgs[p].writer, i, LATENCY_WINDOW_MS, buf + n,
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

/*
 * Copy every PG's writer view into shared memory (at most every 100 ms:
 * returns whether it did); at a heartbeat also the latency percentiles,
 * which sort.
 */
bool
aurora_publish_shipping_status(bool heartbeat)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!TimestampDifferenceExceeds(shared->pgs_published_at, now, 100) || aurora_ship_pgs == NULL)
		return false;
	for (int p = 0; p < aurora_ship_n_pgs && p < shared->n_pgs; p++)
	{
		aurora_pgwriter_view v;
		PGStatus	snap;

		aurora_pgwriter_view_get(aurora_ship_pgs[p].writer, &v);
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
				aurora_pgwriter_quorum_latency(aurora_ship_pgs[p].writer, LATENCY_WINDOW_MS,
											   &snap.p50_ms, &snap.p99_ms);
		for (int i = 0; i < AURORA_PG_COPIES; i++)
		{
			SegmentStatus  *sg = &snap.seg[i];

			strlcpy(sg->node_id, aurora_ship_pgs[p].members[i].node_id, sizeof(sg->node_id));
			strlcpy(sg->az, aurora_ship_pgs[p].members[i].az, sizeof(sg->az));
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
	if (heartbeat)
		publish_node_latency();
	return true;
}

/*
 * The shipper's view of PG pg's six segments (SCL as last acknowledged,
 * reachable, acknowledgement p50 of their node in ms; 0 when unknown).
 * False while the shipper does not stream.
 */
bool
aurora_shipping_segments(int pg, XLogRecPtr *scl, bool *reachable, double *latency_ms)
{
	if (shared == NULL || pg < 0 || pg >= shared->n_pgs || !aurora_watermarks_streaming())
		return false;
	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		const SegmentStatus *sg = &shared->pg[pg].seg[i];

		scl[i] = sg->scl;
		reachable[i] = aurora_segment_reachable(sg);
		latency_ms[i] = 0;
		for (int k = 0; k < shared->n_nodes; k++)
			if (shared->node[k].ack_samples > 0 &&
				strcmp(shared->node[k].node_id, sg->node_id) == 0)
				latency_ms[i] = shared->node[k].ack_p50_ms;
	}
	SpinLockRelease(&shared->mutex);
	return true;
}

/* A copy of the per-PG state, or NULL (0 rows) while not shipping. */
PGStatus *
aurora_shipping_status_snapshot(int *n)
{
	PGStatus   *copy;

	*n = 0;
	if (shared == NULL || !aurora_watermarks_streaming())
		return NULL;
	*n = shared->n_pgs;
	copy = palloc(sizeof(PGStatus) * Max(*n, 1));
	SpinLockAcquire(&shared->mutex);
	memcpy(copy, shared->pg, sizeof(PGStatus) * *n);
	SpinLockRelease(&shared->mutex);
	return copy;
}

/* Storage node k's acknowledgement latency; false when k is not configured. */
bool
aurora_node_ack_latency(int k, NodeAckLatency *lat)
{
	if (shared == NULL || k >= shared->n_nodes)
		return false;
	SpinLockAcquire(&shared->mutex);
	*lat = shared->node[k];
	SpinLockRelease(&shared->mutex);
	return true;
}

/* A segment whose last request succeeded and that is not fenced. */
bool
aurora_segment_reachable(const SegmentStatus *sg)
{
	return !sg->fenced && sg->last_error_code == 0;
}
