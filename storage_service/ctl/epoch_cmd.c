/*
 * epoch_cmd.c - aurora-ctl fence and truncate (epoch_cmd.h): one blocking
 * call per member (client.h's aurora_fence_segment and
 * aurora_truncate_segment), a line per node, and the write quorum rule of
 * quorum.h for the exit status.
 */
#define _POSIX_C_SOURCE 200809L

#include "epoch_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "epochmsg.h"
#include "quorum.h"

typedef struct epoch_opts
{
	uint64_t	volume_id;
	uint32_t	pg_id;
	uint64_t	epoch;
	uint64_t	at;
	bool		have_pg,
				have_epoch,
				have_at;
	aurora_trunc_entry *history;	/* --history, then (epoch, at) */
	int			n_history;
} epoch_opts;

static int
parse_num(const char *s, uint64_t *out)
{
	char	   *end;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/* "e1@lsn1,e2@lsn2,..." into o->history (room for AURORA_TRUNC_HISTORY_MAX). */
static int
parse_history(const char *s, epoch_opts *o)
{
	char	   *copy = strdup(s);
	char	   *save = NULL;
	int			rc = 0;

	if (copy == NULL)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
	{
		char	   *at = strchr(tok, '@');

		if (at == NULL || o->n_history >= AURORA_TRUNC_HISTORY_MAX - 1)
		{
			rc = -1;
			break;
		}
		*at = '\0';
		if (parse_num(tok, &o->history[o->n_history].epoch) != 0 ||
			parse_num(at + 1, &o->history[o->n_history].lsn) != 0)
		{
			rc = -1;
			break;
		}
		o->n_history++;
	}
	free(copy);
	return rc;
}

static int
parse_opts(const char *cmd, char **args, int n, epoch_opts *o)
{
	bool		truncate = strcmp(cmd, "truncate") == 0;

	for (int i = 0; i < n; i += 2)
	{
		uint64_t	v = 0;
		const char *val = i + 1 < n ? args[i + 1] : NULL;

		if (truncate && strcmp(args[i], "--history") == 0 && val != NULL)
		{
			if (parse_history(val, o) != 0)
			{
				fprintf(stderr, "aurora-ctl: truncate: --history takes EPOCH@LSN[,EPOCH@LSN...]\n");
				return 2;
			}
			continue;
		}
		if (parse_num(val, &v) != 0)
		{
			fprintf(stderr, "aurora-ctl: %s: option '%s' needs a non-negative number\n", cmd, args[i]);
			return 2;
		}
		if (strcmp(args[i], "--volume") == 0)
			o->volume_id = v;
		else if (strcmp(args[i], "--pg") == 0 && v <= UINT32_MAX)
		{
			o->pg_id = (uint32_t) v;
			o->have_pg = true;
		}
		else if (strcmp(args[i], "--epoch") == 0 && v >= 1)
		{
			o->epoch = v;
			o->have_epoch = true;
		}
		else if (truncate && strcmp(args[i], "--at") == 0)
		{
			o->at = v;
			o->have_at = true;
		}
		else
		{
			fprintf(stderr, "aurora-ctl: %s: unknown option or value out of range: %s %s\n",
					cmd, args[i], val);
			return 2;
		}
	}
	if (!o->have_pg || !o->have_epoch || (truncate && !o->have_at))
	{
		fprintf(stderr, "aurora-ctl: %s needs --pg N --epoch E%s\n", cmd,
				truncate ? " --at LSN" : "");
		return 2;
	}
	if (truncate)
	{
		/* the history ends with the truncation itself, unless --history already does */
		if (o->n_history == 0 || o->history[o->n_history - 1].epoch != o->epoch)
		{
			o->history[o->n_history].epoch = o->epoch;
			o->history[o->n_history].lsn = o->at;
			o->n_history++;
		}
		else if (o->history[o->n_history - 1].lsn != o->at)
		{
			fprintf(stderr, "aurora-ctl: truncate: --history ends at epoch %" PRIu64
					" with another LSN than --at\n", o->epoch);
			return 2;
		}
		if (!aurora_trunc_history_check(o->history, o->n_history, NULL, 0))
		{
			fprintf(stderr, "aurora-ctl: truncate: the history must have ascending epochs and "
					"non-decreasing LSNs, ending with --epoch E at --at LSN\n");
			return 2;
		}
	}
	return 0;
}

static void
print_history(const aurora_trunc_entry *h, int n)
{
	if (n == 0)
		printf("-");
	for (int i = 0; i < n; i++)
		printf("%s%" PRIu64 "@%" PRIu64, i ? "," : "", h[i].epoch, h[i].lsn);
}

/* One member; true if it acknowledged. */
static bool
one_node(const ctl_node *node, const char *cmd, const epoch_opts *o, int timeout_ms)
{
	aurora_conn *conn;
	char		err[512];
	uint32_t	code = 0;
	uint64_t	seg_epoch = 0;
	aurora_call_result r;

	if (aurora_conn_open(node->dial_url, &conn, err, sizeof(err)) != 0)
	{
		printf("%s: %s failed: %s\n", node->cfg.node_id, cmd, err);
		return false;
	}
	if (strcmp(cmd, "fence") == 0)
	{
		aurora_fence_result f;

		r = aurora_fence_segment(conn, timeout_ms, o->volume_id, o->pg_id, o->epoch, 1, &f,
								 &seg_epoch, &code, err, sizeof(err));
		if (r == AURORA_CALL_OK)
		{
			printf("%s: fenced at epoch %" PRIu64 ": scl %" PRIu64 " highest %" PRIu64
				   " truncated_epoch %" PRIu64 " history ", node->cfg.node_id, seg_epoch,
				   f.scl, f.highest_lsn, f.truncated_epoch);
			print_history(f.history, f.n_history);
			printf("\n");
			aurora_fence_result_free(&f);
		}
	}
	else
	{
		aurora_truncate_ack a;

		r = aurora_truncate_segment(conn, timeout_ms, o->volume_id, o->pg_id, 1, o->history,
									o->n_history, &a, &seg_epoch, &code, err, sizeof(err));
		if (r == AURORA_CALL_OK)
			printf("%s: truncated at epoch %" PRIu64 ": scl %" PRIu64 " highest %" PRIu64
				   " records_dropped %" PRIu64 " bytes_dropped %" PRIu64 "\n", node->cfg.node_id,
				   seg_epoch, a.scl, a.highest_lsn, a.records_dropped, a.bytes_dropped);
	}
	aurora_conn_close(conn);
	if (r != AURORA_CALL_OK)
	{
		printf("%s: %s failed: %s", node->cfg.node_id, cmd, err);
		if (code != 0)
			printf(" (segment at volume epoch %" PRIu64 ")", seg_epoch);
		printf("\n");
	}
	return r == AURORA_CALL_OK;
}

int
ctl_epoch_command(const ctl_cluster *c, const char *cmd, char **args, int n, int timeout_ms)
{
	epoch_opts	o;
	int			acks = 0;
	int			rc;

	memset(&o, 0, sizeof(o));
	o.volume_id = 1;
	o.history = calloc(AURORA_TRUNC_HISTORY_MAX, sizeof(*o.history));
	if (o.history == NULL)
	{
		fprintf(stderr, "aurora-ctl: out of memory\n");
		return 1;
	}
	if ((rc = parse_opts(cmd, args, n, &o)) != 0)
	{
		free(o.history);
		return rc;
	}
	if (c->n < AURORA_PG_COPIES)
	{
		fprintf(stderr, "aurora-ctl: %s needs %d nodes, the cluster has %d\n", cmd,
				AURORA_PG_COPIES, c->n);
		free(o.history);
		return 2;
	}
	/* the PG's members: the first six nodes, as stream creates them */
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		if (one_node(&c->nodes[i], cmd, &o, timeout_ms))
			acks++;
	printf("%s: %d of %d acknowledged (write quorum %d)\n", cmd, acks, AURORA_PG_COPIES,
		   AURORA_DEFAULT_WRITE_QUORUM);
	free(o.history);
	return aurora_quorum_met(acks, AURORA_DEFAULT_WRITE_QUORUM) ? 0 : 1;
}
