/*
 * start_state_cmd.c - aurora-ctl start-state (start_state_cmd.h).
 *
 *   list     per member of PG 0: the LSNs of the complete start states it holds
 *   get      the newest at or below --max-lsn (read quorum) into a file
 *   restore  the same, written out as a data directory (start_state.h)
 *   put      a start state built from a data directory, stored on a write quorum
 *
 * PG 0's members are placed over the cluster's nodes exactly as the compute
 * places them (aurora_place_pg), so the tool talks to the segments the
 * compute writes.  The quorum work is start_state_client.h's.
 */
#define _POSIX_C_SOURCE 200809L

#include "start_state_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "logtool.h"			/* ctl_segment_epoch */
#include "pagecmd.h"			/* ctl_parse_lsn, ctl_parse_u32 */
#include "quorum.h"
#include "start_state.h"
#include "start_state_client.h"
#include "volume.h"

#define LIST_MAX	8

int
ctl_start_state_target(const ctl_cluster *c, uint64_t volume_id, uint64_t epoch,
					   aurora_pg_target *t, char *err, size_t errlen)
{
	aurora_member *all = calloc((size_t) (c->n > 0 ? c->n : 1), sizeof(*all));
	int			rc;

	memset(t, 0, sizeof(*t));
	if (all == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int k = 0; k < c->n; k++)
		ctl_node_member(&c->nodes[k], &all[k]);
	rc = aurora_place_pg(all, c->n, 0, t->members, err, errlen);
	free(all);
	t->volume_id = volume_id;
	t->pg_id = 0;
	t->volume_epoch = epoch;
	t->membership_epoch = 1;
	return rc;
}

static void
print_lsn(FILE *f, uint64_t lsn)
{
	fprintf(f, "%X/%X", (unsigned) (lsn >> 32), (unsigned) lsn);
}

int
ctl_start_state_store(const aurora_pg_target *t, const char *datadir, uint64_t lsn,
					  uint64_t checkpoint, uint64_t redo, uint32_t piece_bytes, int timeout_ms,
					  const char *prefix)
{
	aurora_start_state_build_opts o;
	aurora_start_state s;
	aurora_start_state_put_result res;
	uint8_t    *buf;
	size_t		len;
	uint32_t	n_files;
	char		err[2048];

	memset(&o, 0, sizeof(o));
	o.consistent_lsn = lsn;
	o.checkpoint_lsn = checkpoint;
	o.redo_lsn = redo;
	if (aurora_start_state_from_datadir(datadir, &o, &s, err, sizeof(err)) != 0 ||
		aurora_start_state_encode(&s, &buf, &len, err, sizeof(err)) != 0)
	{
		aurora_start_state_free(&s);
		fprintf(stderr, "aurora-ctl: %s: %s\n", prefix, err);
		return 1;
	}
	n_files = s.n_files;
	aurora_start_state_free(&s);
	if (aurora_start_state_put_pg(t, AURORA_DEFAULT_WRITE_QUORUM, buf, len, lsn, piece_bytes,
								  timeout_ms, &res, err, sizeof(err)) != 0)
	{
		free(buf);
		fprintf(stderr, "aurora-ctl: %s: %s\n", prefix, err);
		return 1;
	}
	free(buf);
	printf("stored start state ");
	print_lsn(stdout, lsn);
	printf(" (%u files, %zu bytes) on %d of 6 segments of PG 0\n", (unsigned) n_files, len,
		   res.complete);
	return 0;
}

typedef struct ss_opts
{
	uint64_t	volume_id;
	uint64_t	epoch;
	uint64_t	max_lsn;
	uint64_t	lsn,
				checkpoint,
				redo;
	bool		have_lsn,
				have_checkpoint,
				have_redo;
	const char *out;
	const char *datadir;
	uint32_t	piece;
	bool		keep_config;
	bool		replace;
} ss_opts;

static int
parse_opts(const char *sub, char **args, int n, ss_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->volume_id = AURORA_COMPUTE_VOLUME_ID;
	o->epoch = 0;				/* PG 0's own (pg0_epoch) unless --epoch */
	o->max_lsn = UINT64_MAX;
	for (int i = 0; i < n; i++)
	{
		const char *v = i + 1 < n ? args[i + 1] : NULL;
		bool		okv = true;

		if (strcmp(args[i], "--keep-config") == 0)
		{
			o->keep_config = true;
			continue;
		}
		if (strcmp(args[i], "--replace") == 0)
		{
			o->replace = true;
			continue;
		}
		if (v == NULL)
			okv = false;
		else if (strcmp(args[i], "--volume") == 0)
			okv = ctl_parse_lsn(v, &o->volume_id) == 0;
		else if (strcmp(args[i], "--epoch") == 0)
			okv = ctl_parse_lsn(v, &o->epoch) == 0 && o->epoch > 0;
		else if (strcmp(args[i], "--max-lsn") == 0)
			okv = ctl_parse_lsn(v, &o->max_lsn) == 0;
		else if (strcmp(args[i], "--lsn") == 0)
			okv = o->have_lsn = ctl_parse_lsn(v, &o->lsn) == 0;
		else if (strcmp(args[i], "--checkpoint") == 0)
			okv = o->have_checkpoint = ctl_parse_lsn(v, &o->checkpoint) == 0;
		else if (strcmp(args[i], "--redo") == 0)
			okv = o->have_redo = ctl_parse_lsn(v, &o->redo) == 0;
		else if (strcmp(args[i], "--out") == 0)
			o->out = v;
		else if (strcmp(args[i], "--datadir") == 0)
			o->datadir = v;
		else if (strcmp(args[i], "--piece") == 0)
			okv = ctl_parse_u32(v, &o->piece) == 0 && o->piece >= 1 &&
				o->piece <= AURORA_START_STATE_DEFAULT_PIECE;
		else
			okv = false;
		if (!okv)
		{
			fprintf(stderr, "aurora-ctl: start-state %s: bad or incomplete option '%s'\n", sub, args[i]);
			return 2;
		}
		i++;
	}
	return 0;
}

/*
 * The highest volume epoch PG 0's members are open at: the tool then acts as
 * the compute that opened the volume last, so it neither reads at a stale
 * epoch nor fences that compute.  1 when no member answers (the request that
 * follows then says why).
 */
static uint64_t
pg0_epoch(const aurora_pg_target *t, int timeout_ms)
{
	uint64_t	epoch = 1;

	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		aurora_conn *conn;
		char		err[256];
		uint64_t	e;

		if (aurora_conn_open(t->members[i].url, &conn, err, sizeof(err)) != 0)
			continue;
		e = ctl_segment_epoch(conn, t->volume_id, 0, timeout_ms);
		aurora_conn_close(conn);
		if (e > epoch)
			epoch = e;
	}
	return epoch;
}

/* Every member: the LSNs it holds, newest first (asking below each in turn). */
static int
list_command(const aurora_pg_target *t, int timeout_ms)
{
	int			rc = 0;

	printf("%-10s %-8s %s\n", "NODE", "AZ", "START STATES (newest first)");
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		uint64_t	max = UINT64_MAX;
		char		err[512];
		int			k = 0;

		printf("%-10s %-8s", t->members[i].node_id, t->members[i].az);
		for (; k < LIST_MAX; k++)
		{
			bool		found;
			uint64_t	lsn,
						total;

			if (aurora_start_state_probe(t->members[i].url, t, max, timeout_ms, &found, &lsn,
										 &total, err, sizeof(err)) != 0)
			{
				printf(" down: %s", err);
				rc = 1;
				break;
			}
			if (!found)
				break;
			putchar(' ');
			print_lsn(stdout, lsn);
			printf(" (%" PRIu64 " bytes)", total);
			if (lsn == 0)
				break;
			max = lsn - 1;
		}
		if (k == 0 && rc == 0)
			printf(" (none)");
		putchar('\n');
	}
	return rc;
}

/* The newest start state at or below o->max_lsn: 0 with *buf, 1 after a message. */
static int
fetch(const aurora_pg_target *t, const ss_opts *o, int timeout_ms, const char *sub,
	  uint8_t **buf, size_t *len, uint64_t *lsn)
{
	char		err[2048];
	int			rc = aurora_start_state_get_pg(t, AURORA_DEFAULT_READ_QUORUM, o->max_lsn, o->piece,
										   timeout_ms, buf, len, lsn, err, sizeof(err));

	if (rc < 0)
	{
		fprintf(stderr, "aurora-ctl: start-state %s: %s\n", sub, err);
		return 1;
	}
	if (rc == 0)
	{
		fprintf(stderr, "aurora-ctl: start-state %s: PG 0 holds no start state at or below ", sub);
		print_lsn(stderr, o->max_lsn);
		fputc('\n', stderr);
		return 1;
	}
	return 0;
}

static int
get_command(const aurora_pg_target *t, const ss_opts *o, int timeout_ms)
{
	uint8_t    *buf;
	size_t		len;
	uint64_t	lsn;
	FILE	   *f;

	if (o->out == NULL)
	{
		fprintf(stderr, "aurora-ctl: start-state get needs --out FILE\n");
		return 2;
	}
	if (fetch(t, o, timeout_ms, "get", &buf, &len, &lsn) != 0)
		return 1;
	f = fopen(o->out, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
	{
		fprintf(stderr, "aurora-ctl: start-state get: cannot write %s: %s\n", o->out, strerror(errno));
		free(buf);
		return 1;
	}
	free(buf);
	printf("start state ");
	print_lsn(stdout, lsn);
	printf(" (%zu bytes) written to %s\n", len, o->out);
	return 0;
}

static int
restore_command(const aurora_pg_target *t, const ss_opts *o, int timeout_ms)
{
	uint8_t    *buf;
	size_t		len;
	uint64_t	lsn;
	aurora_start_state s;
	char		err[2048];
	unsigned	flags = (o->keep_config ? AURORA_START_STATE_KEEP_CONFIG : 0) |
		(o->replace ? AURORA_START_STATE_REPLACE : 0);

	if (o->datadir == NULL)
	{
		fprintf(stderr, "aurora-ctl: start-state restore needs --datadir DIR\n");
		return 2;
	}
	if (fetch(t, o, timeout_ms, "restore", &buf, &len, &lsn) != 0)
		return 1;
	if (aurora_start_state_decode(buf, len, &s, err, sizeof(err)) != 0 ||
		aurora_start_state_to_datadir(&s, o->datadir, flags, err, sizeof(err)) != 0)
	{
		free(buf);
		aurora_start_state_free(&s);
		fprintf(stderr, "aurora-ctl: start-state restore: %s\n", err);
		return 1;
	}
	printf("restored start state ");
	print_lsn(stdout, lsn);
	printf(" (%u files; checkpoint ", (unsigned) s.n_files);
	print_lsn(stdout, s.checkpoint_lsn);
	printf(", redo ");
	print_lsn(stdout, s.redo_lsn);
	printf(") into %s\n", o->datadir);
	free(buf);
	aurora_start_state_free(&s);
	return 0;
}

int
ctl_start_state_command(const ctl_cluster *c, char **args, int n, int timeout_ms)
{
	const char *sub = n > 0 ? args[0] : "";
	aurora_pg_target t;
	ss_opts		o;
	char		err[512];
	int			rc;

	if (strcmp(sub, "list") != 0 && strcmp(sub, "get") != 0 && strcmp(sub, "restore") != 0 &&
		strcmp(sub, "put") != 0)
	{
		fprintf(stderr, "aurora-ctl: start-state needs list, get, restore or put\n");
		return 2;
	}
	if ((rc = parse_opts(sub, args + 1, n - 1, &o)) != 0)
		return rc;
	if (ctl_start_state_target(c, o.volume_id, o.epoch, &t, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: start-state: %s\n", err);
		return 2;
	}
	if (o.epoch == 0)
		t.volume_epoch = pg0_epoch(&t, timeout_ms);
	if (strcmp(sub, "list") == 0)
		return list_command(&t, timeout_ms);
	if (strcmp(sub, "get") == 0)
		return get_command(&t, &o, timeout_ms);
	if (strcmp(sub, "restore") == 0)
		return restore_command(&t, &o, timeout_ms);
	if (o.datadir == NULL || !o.have_lsn || !o.have_checkpoint || !o.have_redo)
	{
		fprintf(stderr, "aurora-ctl: start-state put needs --datadir DIR --lsn L --checkpoint C --redo R\n");
		return 2;
	}
	return ctl_start_state_store(&t, o.datadir, o.lsn, o.checkpoint, o.redo, o.piece, timeout_ms,
								 "start-state put");
}
