/*
 * sql_functions.c
 *	  Every SQL-callable function of the extension (sql/aurora--*.sql), the
 *	  ones behind the monitoring views included: aurora.version(),
 *	  aurora.watermarks(), the protection group, segment and shipping views
 *	  (what the shipper published: watermarks.c, shipping_status.c), and
 *	  aurora.storage_node_status(), behind aurora.storage_nodes, and
 *	  aurora.storage_manager_stats() (the counters smgr.c keeps).
 *
 *	  aurora.storage_node_status() makes one STATUS round trip over NNG to
 *	  every configured storage node, all nodes at once, so the view costs one
 *	  timeout at worst, not one per node.  The NNG client
 *	  (storage_service/common/client.c) runs its own threads.  PostgreSQL
 *	  delivers signals to the process and its handlers assume they run in the
 *	  backend's thread, so signals are blocked while the client creates and
 *	  uses threads: those threads inherit the blocked mask and never run a
 *	  PostgreSQL handler.  Interrupts that arrive meanwhile are handled after
 *	  the call, which is bounded by aurora.request_timeout.
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "access/xlog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "client.h"
#include "compute_volume.h"
#include "lsn_allocation_limit.h"
#include "node_list.h"
#include "redo_filter.h"
#include "shipping_status.h"
#include "smgr.h"
#include "util.h"
#include "version.h"
#include "watermarks.h"
#include "volume_start.h"

/* An interval of ms milliseconds, as the views report ages. */
static Datum
interval_from_ms(double ms)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = (TimeOffset) (ms * 1000.0);
	return IntervalPGetDatum(iv);
}

PG_FUNCTION_INFO_V1(aurora_version);

Datum
aurora_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(AURORA_SERVICE_VERSION));
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
	AuroraWatermarkView wm;
	bool		running;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	running = aurora_watermarks_view(&wm);
	values[0] = LSNGetDatum(GetXLogInsertRecPtr());
	values[1] = LSNGetDatum(flush);
	if (running)
	{
		values[2] = LSNGetDatum(wm.vcl);
		values[3] = LSNGetDatum(wm.vdl);
		values[4] = Int64GetDatum(flush > wm.vdl ? (int64) (flush - wm.vdl) : 0);
		values[5] = DirectFunctionCall2(timestamp_mi,
										TimestampTzGetDatum(GetCurrentTimestamp()),
										TimestampTzGetDatum(wm.vdl_advanced_at));
	}
	else
		nulls[2] = nulls[3] = nulls[4] = nulls[5] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
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
segment_state(const SegmentStatus *sg, XLogRecPtr pgcl)
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

PG_FUNCTION_INFO_V1(aurora_protection_group_status);

Datum
aurora_protection_group_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n;
	PGStatus   *snap;

	InitMaterializedSRF(fcinfo, 0);
	snap = aurora_shipping_status_snapshot(&n);
	for (int p = 0; p < n; p++)
	{
		Datum		values[9];
		bool		nulls[9] = {false};
		int			up = 0;

		for (int i = 0; i < AURORA_PG_COPIES; i++)
			up += aurora_segment_reachable(&snap[p].seg[i]);
		values[0] = Int32GetDatum(p);
		values[1] = LSNGetDatum(snap[p].pgcl);
		values[2] = Int32GetDatum(up);
		values[3] = BoolGetDatum(up >= aurora_write_quorum);
		values[4] = BoolGetDatum(up >= aurora_read_quorum);
		values[5] = Int64GetDatum((int64) aurora_volume_epoch());
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
	PGStatus   *snap;
	double		now_ms = aurora_monotonic_ms();

	InitMaterializedSRF(fcinfo, 0);
	snap = aurora_shipping_status_snapshot(&n);
	for (int p = 0; p < n; p++)
	{
		for (int i = 0; i < AURORA_PG_COPIES; i++)
		{
			SegmentStatus *sg = &snap[p].seg[i];
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
				values[7] = interval_from_ms(now_ms - sg->last_ack_ms);
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
	PGStatus   *snap;
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
	snap = aurora_shipping_status_snapshot(&n);
	if (snap == NULL)
		return (Datum) 0;
	for (int k = 0; k < nodes->count; k++)
	{
		Datum		values[10];
		bool		nulls[10] = {false};
		NodeAckLatency	lat = {{0}};
		int64		segments = 0,
					batches = 0,
					records = 0,
					bytes = 0,
					acks = 0,
					errors = 0;

		for (int p = 0; p < n; p++)
			for (int i = 0; i < AURORA_PG_COPIES; i++)
			{
				SegmentStatus *sg = &snap[p].seg[i];

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
		(void) aurora_node_ack_latency(k, &lat);
		values[8] = Float8GetDatum(lat.ack_p50_ms);
		values[9] = Float8GetDatum(lat.ack_p99_ms);
		nulls[8] = nulls[9] = lat.ack_samples == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

#define STORAGE_NODE_STATUS_COLS 10

PG_FUNCTION_INFO_V1(aurora_storage_node_status);

Datum
aurora_storage_node_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const AuroraNodeList *nodes = aurora_configured_nodes();
	const char **urls;
	aurora_status_result *results;
	sigset_t	all,
				saved;

	InitMaterializedSRF(fcinfo, 0);
	if (nodes->count == 0)
		return (Datum) 0;

	urls = palloc(sizeof(char *) * nodes->count);
	results = palloc0(sizeof(aurora_status_result) * nodes->count);
	for (int i = 0; i < nodes->count; i++)
		urls[i] = nodes->nodes[i].url;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	aurora_status_many(urls, nodes->count, aurora_request_timeout_ms, results);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	CHECK_FOR_INTERRUPTS();

	for (int i = 0; i < nodes->count; i++)
	{
		const AuroraNode *node = &nodes->nodes[i];
		const aurora_status_result *r = &results[i];
		bool		answered = r->reachable && r->error[0] == '\0';
		Datum		values[STORAGE_NODE_STATUS_COLS];
		bool		nulls[STORAGE_NODE_STATUS_COLS];

		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(node->id);
		values[1] = CStringGetTextDatum(node->az);
		values[2] = CStringGetTextDatum(node->url);
		values[3] = BoolGetDatum(r->reachable);
		if (answered)
		{
			values[4] = CStringGetTextDatum(r->status.state);
			values[5] = interval_from_ms(r->rtt_ms);
			values[6] = interval_from_ms((double) r->status.uptime_ms);
			values[7] = Int64GetDatum((int64) r->status.requests_total);
			values[8] = Int64GetDatum((int64) r->status.errors_total);
			nulls[9] = true;

			/*
			 * A node answering under another name is misconfiguration that
			 * the operator must see: report it rather than trust the row.
			 */
			if (strcmp(r->status.node_id, node->id) != 0 ||
				strcmp(r->status.az, node->az) != 0)
			{
				char		msg[256];

				snprintf(msg, sizeof(msg),
						 "node at this URL reports id \"%s\" in AZ \"%s\"",
						 r->status.node_id, r->status.az);
				values[9] = CStringGetTextDatum(msg);
				nulls[9] = false;
			}
		}
		else
		{
			nulls[4] = nulls[5] = nulls[6] = nulls[7] = nulls[8] = true;
			if (r->reachable)
			{
				/* it answered, but not with a valid STATUS reply */
				values[5] = interval_from_ms(r->rtt_ms);
				nulls[5] = false;
			}
			values[9] = CStringGetTextDatum(r->error[0] ? r->error : "no reply");
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(aurora_storage_manager_stats);

/*
 * aurora.storage_manager_stats(): what the storage manager did since the
 * server started (enabled false and all zero when it is off).
 */
Datum
aurora_storage_manager_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[17];
	bool		nulls[17] = {false};
	AuroraSmgrStats st;
	int			i = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[i++] = BoolGetDatum(aurora_smgr_stats(&st));
	values[i++] = Int64GetDatum((int64) st.reads);
	if (st.reads > 0)
		values[i] = Float8GetDatum((double) st.read_us / st.reads / 1000.0);
	else
		nulls[i] = true;
	i++;
	values[i++] = Int64GetDatum((int64) st.read_retries);
	values[i++] = Int64GetDatum((int64) st.size_requests);
	values[i++] = Int64GetDatum((int64) st.evictions);
	values[i++] = Int64GetDatum((int64) st.evicted_to_storage);
	values[i++] = Int64GetDatum((int64) st.evicted_locally);
	values[i++] = Int64GetDatum((int64) st.eviction_waits);
	values[i++] = Int64GetDatum((int64) st.map_images);
	values[i++] = Int64GetDatum(st.local.reads);
	values[i++] = Int64GetDatum(st.local.pinned);
	values[i++] = Int64GetDatum(st.local.pinned_capacity);
	values[i++] = Int64GetDatum(st.local.reaped);
	values[i++] = Int64GetDatum(st.local.cache_reads);
	values[i++] = Int64GetDatum(st.local.cached);
	values[i++] = Int64GetDatum(st.local.cache_capacity);
	Assert(i == lengthof(values));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(aurora_recovery_stats);

/*
 * aurora.recovery_stats(): how the last start's recovery went: records
 * PostgreSQL replayed, records skipped because storage holds their pages
 * (redo_filter.c), their bytes, and relation pages the startup process read.
 */
Datum
aurora_recovery_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false};
	uint64		replayed,
				skipped,
				bytes_skipped;
	AuroraSmgrStats st;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	aurora_redo_filter_stats(&replayed, &skipped, &bytes_skipped);
	(void) aurora_smgr_stats(&st);
	values[0] = Int64GetDatum((int64) replayed);
	values[1] = Int64GetDatum((int64) skipped);
	values[2] = Int64GetDatum((int64) bytes_skipped);
	values[3] = Int64GetDatum((int64) st.recovery_reads);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(aurora_lsn_allocation_limit);

/*
 * aurora.lsn_allocation_limit(): the limit (bytes; NULL when off), how far
 * the WAL inserted runs beyond VDL now (NULL without VDL), and how often and
 * how long backends waited at the limit since the server started.
 */
Datum
aurora_lsn_allocation_limit(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false};
	uint64		waits,
				wait_us;
	int			limit_mb;
	XLogRecPtr	vdl = aurora_released_vdl();
	XLogRecPtr	insert = RecoveryInProgress() ? InvalidXLogRecPtr : GetXLogInsertRecPtr();

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	aurora_lsn_allocation_limit_stats(&waits, &wait_us, &limit_mb);
	if (limit_mb > 0 && aurora_shipping)
		values[0] = Int64GetDatum((int64) limit_mb * 1024 * 1024);
	else
		nulls[0] = true;
	if (vdl != InvalidXLogRecPtr && insert != InvalidXLogRecPtr)
		values[1] = Int64GetDatum(insert > vdl ? (int64) (insert - vdl) : 0);
	else
		nulls[1] = true;
	values[2] = Int64GetDatum((int64) waits);
	values[3] = Float8GetDatum((double) wait_us / 1000.0);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(aurora_last_start);

/*
 * aurora.last_start(): how this compute opened the volume (its aurora_start
 * file, volume_start.c) and whether storage has fenced it since.  One row;
 * NULLs for a compute that does not ship.
 */
Datum
aurora_last_start(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[16];
	bool		nulls[16] = {false};
	const AuroraVolumeStart *s = aurora_volume_start();
	char		reason[256];
	TimestampTz fenced_at = 0;
	bool		fenced;
	StringInfoData hist;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!s->loaded)
	{
		for (int i = 0; i < lengthof(nulls); i++)
			nulls[i] = true;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}
	fenced = aurora_fenced(reason, sizeof(reason), &fenced_at);
	initStringInfo(&hist);
	for (int i = 0; i < s->n_history; i++)
		appendStringInfo(&hist, "%s" UINT64_FORMAT ":%X/%X", i > 0 ? "," : "",
						 s->history[i].epoch, LSN_FORMAT_ARGS(s->history[i].lsn));
	values[0] = Int64GetDatum((int64) s->epoch);
	values[1] = LSNGetDatum(s->opened_vdl);
	values[2] = CStringGetTextDatum(s->how);
	values[3] = TimestampTzGetDatum(time_t_to_timestamptz(s->created_at));
	values[4] = Float8GetDatum((double) s->init_ms);
	values[5] = LSNGetDatum(s->start_state_lsn);
	values[6] = LSNGetDatum(s->redo_lsn);
	nulls[5] = nulls[6] = s->start_state_lsn == InvalidXLogRecPtr;
	values[7] = Int64GetDatum((int64) s->wal_records);
	values[8] = Int64GetDatum((int64) s->wal_bytes);
	values[9] = Int64GetDatum((int64) s->truncated_records);
	values[10] = Int64GetDatum((int64) s->truncated_bytes);
	values[11] = Int32GetDatum(s->pgs_open);
	values[12] = Int32GetDatum(s->pgs);
	values[13] = CStringGetTextDatum(hist.data);
	values[14] = BoolGetDatum(fenced);
	if (fenced)
		values[15] = CStringGetTextDatum(reason);
	else
		nulls[15] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
