/*
 * storage_nodes.c
 *	  aurora.storage_node_status(), behind the view aurora.storage_nodes: one
 *	  STATUS round trip over NNG to every configured storage node, all nodes
 *	  at once, so the view costs one timeout at worst, not one per node.
 *
 *	  The NNG client (storage_service/common/client.c) runs its own threads.
 *	  PostgreSQL delivers signals to the process and its handlers assume they
 *	  run in the backend's thread, so signals are blocked while the client
 *	  creates and uses threads: those threads inherit the blocked mask and
 *	  never run a PostgreSQL handler.  Interrupts that arrive meanwhile are
 *	  handled after the call, which is bounded by aurora.request_timeout.
 */
#include "postgres.h"

#include <signal.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "aurora.h"
#include "client.h"

#define STORAGE_NODE_STATUS_COLS 10

static Datum
interval_from_ms(double ms)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = (TimeOffset) (ms * 1000.0);
	return IntervalPGetDatum(iv);
}

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
