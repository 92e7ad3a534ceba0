/*
 * main.c - aurora-ctl, the storage service admin CLI: argument parsing and
 * dispatch to the status table (status.c), local cluster management
 * (cluster.c, procctl.c), the segment log tools (logtool.c) and the volume
 * placement check (placement.c).
 *
 * Exit status: 0 success; 1 a node was unreachable or an action failed;
 * 2 bad usage, unreadable cluster configuration or unknown target.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "epoch_cmd.h"
#include "logtool.h"
#include "placement.h"
#include "quorum.h"
#include "pagecmd.h"
#include "procctl.h"
#include "redo_cmd.h"
#include "start_state_cmd.h"
#include "status.h"
#include "version.h"
#include "wire.h"

#define DEFAULT_TIMEOUT_MS 2000

static void
usage(FILE *out)
{
	fprintf(out,
			"Usage: aurora-ctl [--timeout MS] status URL...\n"
			"       aurora-ctl [--timeout MS] --cluster DIR status [TARGET...]\n"
			"       aurora-ctl --cluster DIR start|stop|kill TARGET...\n"
			"       aurora-ctl --cluster DIR stream --pg N [--records N] [--batch N] [--payload BYTES]\n"
			"                  [--after LSN] [--epoch E] [--volume ID] [--wait-ms MS] [--write-quorum W]\n"
			"                  [--window N] [--drop-to NODE[,NODE...] [--drop-every K]]\n"
			"       aurora-ctl [--cluster DIR] segments [URL... | TARGET...]\n"
			"       aurora-ctl --cluster DIR fence --pg N --epoch E [--volume ID]\n"
			"       aurora-ctl --cluster DIR truncate --pg N --epoch E --at LSN [--history E1@LSN1,...] [--volume ID]\n"
			"       aurora-ctl [--timeout MS] --cluster DIR placement [--pgs N] [--volume ID]\n"
			"       aurora-ctl read-log URL --pg N [--volume ID] [--from LSN] [--to LSN] [--epoch E] [--wal]\n"
			"       aurora-ctl redo --postgres PATH --node URL (--pg N | --pgs N --blocks-per-segment B)\n"
			"                  --block SPC/DB/REL/FORK/BLKNO --lsn LSN [--mask | --mask-rmgr ID] [--skip LSN] [--list] -o FILE\n"
			"       aurora-ctl redo --postgres PATH --mask-rmgr ID --block SPC/DB/REL/FORK/BLKNO -i FILE -o FILE\n"
			"       aurora-ctl [--timeout MS] --cluster DIR seed --datadir D (--postgres-bin DIR | --lsn LSN)\n"
			"                  [--pgs N] [--blocks-per-segment B] [--volume ID] [--batch PAGES]\n"
			"       aurora-ctl [--timeout MS] --cluster DIR start-state list [--volume ID]\n"
			"       aurora-ctl [--timeout MS] --cluster DIR start-state get [--max-lsn L] --out FILE [--volume ID]\n"
			"       aurora-ctl [--timeout MS] --cluster DIR start-state restore [--max-lsn L] --datadir DIR\n"
			"                  [--keep-config] [--replace] [--volume ID]\n"
			"       aurora-ctl [--timeout MS] --cluster DIR start-state put --datadir DIR --lsn L --checkpoint C\n"
			"                  --redo R [--epoch E] [--piece BYTES] [--volume ID]\n"
			"       aurora-ctl getpage --node URL --pg N --block SPC/DB/REL/FORK/BLKNO --lsn LSN\n"
			"                  [--volume ID] [--wait-ms MS] [--epoch E] -o FILE\n"
			"       aurora-ctl getpage --node URL --batch LIST [--pgs N --blocks-per-segment B]\n"
			"                  [--volume ID] [--wait-ms MS] -o FILE\n"
			"       aurora-ctl relsize --node URL --pg N --rel SPC/DB/REL/FORK --lsn LSN [--volume ID] [--wait-ms MS]\n"
			"       aurora-ctl relsize --node URL --batch LIST [--volume ID] [--wait-ms MS]\n"
			"       aurora-ctl --version | --help\n"
			"\n"
			"URL     tcp://HOST:PORT or ipc://PATH of a storage node\n"
			"DIR     directory of node config files (*.conf)\n"
			"TARGET  a node id, az:NAME (every node of that AZ), or all\n"
			"\n"
			"status  query nodes concurrently (default timeout %d ms) and print a table\n"
			"start   start nodes that are not running; wait until they answer\n"
			"stop    SIGTERM nodes and wait until they exit\n"
			"kill    SIGKILL nodes (leaves the pid file behind, like a crash)\n"
			"stream  create the PG's segments on the first six nodes and stream synthetic\n"
			"        records in batches, waiting for a write quorum (PGCL) after each\n"
			"        (with --window N, once N batches are in flight: pipelining);\n"
			"        --drop-to withholds every K-th batch (default every batch) from those\n"
			"        nodes, as if the messages were lost\n"
			"segments  list the segments of nodes: SCL, records, holes, epochs, truncations\n"
			"fence   raise the volume epoch of a PG's six segments (the first six nodes) to E:\n"
			"        from then on they refuse lower epochs; prints each one's SCL and history.\n"
			"        Exit 0 when a write quorum (4 of 6) acknowledged\n"
			"truncate  discard every record at or above LSN on the six segments and open\n"
			"        epoch E there; --history: the volume's earlier truncations.  Exit 0\n"
			"        when a write quorum acknowledged\n"
			"placement  where each replica of every PG of a volume belongs (the compute's\n"
			"          placement over DIR's nodes) and whether that node holds it:\n"
			"          STATE ok, missing, down or misplaced; EPOCHS volume/membership.\n"
			"          --pgs N: number of PGs (default: the geometry the segments record);\n"
			"          --volume ID (0x... for hex; default %d, the compute's volume).\n"
			"          Exit 0 only when every node answers and every PG has its six\n"
			"          replicas ok (no missing, down or misplaced rows)\n"
			"read-log  read a PG's log back from one node and verify content and backlinks\n"
			"          (--wal: the records are a compute's, envelope + WAL; list the committed xids)\n"
			"redo    rebuild one page from a node's log with local WAL-redo helpers (the\n"
			"        patched server PATH --wal-redo), starting from the newest record that\n"
			"        initializes it, and write it to FILE; --mask: masked like\n"
			"        wal_consistency_checking (-i: mask a page from a file)\n"
			"seed    store every page of a cleanly shut down data directory as a base image at\n"
			"        its checkpoint LSN (from DIR/pg_controldata; --lsn: given, unchecked) in\n"
			"        the segments of its PG (created like the compute does: epoch 1; geometry\n"
			"        --pgs/--blocks-per-segment, default the compute's 4/131072); a write\n"
			"        quorum must store each batch; then it stores the data directory's start\n"
			"        state on PG 0 at that LSN (its redo point from pg_controldata)\n"
			"start-state  the start states of PG 0 (a compute's non-relation files): list what\n"
			"        each member holds; get the newest at or below --max-lsn (default: newest;\n"
			"        a read quorum must answer) into FILE; restore it as a data directory (an\n"
			"        empty or new DIR; --replace: an existing one's start state files only;\n"
			"        --keep-config: keep DIR's configuration); put one built from DIR at LSN L\n"
			"        naming checkpoint C with redo point R (a write quorum must store it)\n"
			"getpage  GETPAGE from one node: write the page as of LSN (X/Y or a number) to FILE\n"
			"         (--batch: one request per line \"PG SPC/DB/REL/FORK/BLKNO LSN\" of LIST on one\n"
			"         connection, pages back to back in FILE, one \"ok|error ... us N\" line each;\n"
			"         PG \"-\": the block's, from --pgs and --blocks-per-segment)\n"
			"relsize  the fork's size as one PG knows it (a relation's size is the max over its PGs)\n"
			"\n"
			"Exit status: 0 ok, 1 unreachable node or failed action, 2 usage or config error.\n",
			DEFAULT_TIMEOUT_MS, AURORA_COMPUTE_VOLUME_ID);
}

static int
parse_timeout(const char *s, int *out)
{
	char	   *end;
	long		v = strtol(s, &end, 10);

	if (end == s || *end != '\0' || v < 1 || v > 3600000)
		return -1;
	*out = (int) v;
	return 0;
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char	   *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	v = strtoull(s, &end, 0);
	if (*end != '\0')
		return -1;
	*out = (uint64_t) v;
	return 0;
}

/* --name VALUE options of stream and read-log; returns 0 or 2 (usage). */
static int
log_options(char **args, int n, ctl_stream_opts *o, uint64_t *from, uint64_t *to,
			bool *have_pg)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		const char *name = args[i];
		uint64_t	v;

		if (strcmp(name, "--drop-to") == 0 && i + 1 < n &&
			strlen(args[i + 1]) < sizeof(o->drop_to))
		{
			snprintf(o->drop_to, sizeof(o->drop_to), "%s", args[++i]);
			continue;
		}
		if (i + 1 >= n || parse_u64(args[i + 1], &v) != 0)
		{
			fprintf(stderr, "aurora-ctl: option '%s' needs a non-negative number\n", name);
			return 2;
		}
		i++;
		if (strcmp(name, "--pg") == 0 && v <= UINT32_MAX)
		{
			o->pg_id = (uint32_t) v;
			*have_pg = true;
		}
		else if (strcmp(name, "--volume") == 0)
			o->volume_id = v;
		else if (strcmp(name, "--epoch") == 0 && v >= 1)
			o->epoch = v;
		else if (strcmp(name, "--after") == 0)
			o->after_lsn = v;
		else if (strcmp(name, "--records") == 0 && v >= 1 && v <= 100000000)
			o->records = (int) v;
		else if (strcmp(name, "--batch") == 0 && v >= 1 && v <= 100000)
			o->batch = (int) v;
		else if (strcmp(name, "--payload") == 0 && v <= 1048576)
			o->payload = (int) v;
		else if (strcmp(name, "--wait-ms") == 0 && v >= 1 && v <= 3600000)
			o->wait_ms = (int) v;
		else if (strcmp(name, "--write-quorum") == 0 && v >= 1 && v <= AURORA_PG_COPIES)
			o->write_quorum = (int) v;
		else if (strcmp(name, "--window") == 0 && v >= 1 && v <= CTL_STREAM_WINDOW_MAX)
			o->window = (int) v;
		else if (strcmp(name, "--drop-every") == 0 && v >= 1 && v <= 1000000)
			o->drop_every = (int) v;
		else if (strcmp(name, "--from") == 0 && from != NULL)
			*from = v;
		else if (strcmp(name, "--to") == 0 && to != NULL)
			*to = v;
		else
		{
			fprintf(stderr, "aurora-ctl: unknown option or value out of range: %s %s\n",
					name, args[i]);
			return 2;
		}
	}
	return 0;
}

/* placement [--pgs N] [--volume ID]; returns 0 or 2 (usage). */
static int
placement_options(char **args, int n, uint64_t *volume_id, uint32_t *n_pgs)
{
	int			i;

	for (i = 0; i < n; i += 2)
	{
		uint64_t	v;

		if (i + 1 >= n || parse_u64(args[i + 1], &v) != 0)
		{
			fprintf(stderr, "aurora-ctl: placement: option '%s' needs a non-negative number\n",
					args[i]);
			return 2;
		}
		if (strcmp(args[i], "--volume") == 0)
			*volume_id = v;
		else if (strcmp(args[i], "--pgs") == 0 && v >= 1 && v <= AURORA_VOLUME_MAX_PGS)
			*n_pgs = (uint32_t) v;
		else
		{
			fprintf(stderr, "aurora-ctl: placement: unknown option or value out of range: %s %s"
					" (--pgs takes 1..%u)\n", args[i], args[i + 1], AURORA_VOLUME_MAX_PGS);
			return 2;
		}
	}
	return 0;
}

static void
default_stream_opts(ctl_stream_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->volume_id = 1;
	o->epoch = 1;
	o->records = 1000;
	o->batch = 10;
	o->payload = 100;
	o->wait_ms = 5000;
	o->write_quorum = AURORA_DEFAULT_WRITE_QUORUM;
	o->window = 1;
}

/* Load the cluster directory; 0, or 2 after saying why on stderr. */
static int
load_cluster(const char *dir, ctl_cluster *cluster)
{
	char		err[1024];

	if (ctl_cluster_load(dir, cluster, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s\n", err);
		return 2;
	}
	return 0;
}

/*
 * The cluster commands that take options rather than node targets (stream,
 * seed, start-state, placement).  *handled: cmd was one of them; then the exit code.
 */
static int
option_command(const char *dir, const char *cmd, char **args, int n_args, int timeout_ms,
			   bool *handled)
{
	ctl_cluster cluster;
	int			rc;

	*handled = true;
	if (strcmp(cmd, "stream") == 0)
	{
		ctl_stream_opts o;
		bool		have_pg = false;

		default_stream_opts(&o);
		if (log_options(args, n_args, &o, NULL, NULL, &have_pg) != 0)
			return 2;
		if (!have_pg)
		{
			fprintf(stderr, "aurora-ctl: stream needs --pg N\n");
			return 2;
		}
		if (load_cluster(dir, &cluster) != 0)
			return 2;
		rc = ctl_stream(&cluster, &o, timeout_ms);
	}
	else if (strcmp(cmd, "fence") == 0 || strcmp(cmd, "truncate") == 0)
	{
		if (load_cluster(dir, &cluster) != 0)
			return 2;
		rc = ctl_epoch_command(&cluster, cmd, args, n_args, timeout_ms);
	}
	else if (strcmp(cmd, "seed") == 0)
	{
		if (load_cluster(dir, &cluster) != 0)
			return 2;
		rc = ctl_seed_command(&cluster, args, n_args, timeout_ms);
	}
	else if (strcmp(cmd, "start-state") == 0)
	{
		if (load_cluster(dir, &cluster) != 0)
			return 2;
		rc = ctl_start_state_command(&cluster, args, n_args, timeout_ms);
	}
	else if (strcmp(cmd, "placement") == 0)
	{
		uint64_t	volume_id = AURORA_COMPUTE_VOLUME_ID;
		uint32_t	n_pgs = 0;

		if (placement_options(args, n_args, &volume_id, &n_pgs) != 0)
			return 2;
		if (load_cluster(dir, &cluster) != 0)
			return 2;
		rc = ctl_placement_command(&cluster, volume_id, n_pgs, timeout_ms);
	}
	else
	{
		*handled = false;
		return 0;
	}
	ctl_cluster_free(&cluster);
	return rc;
}

/* status or segments (is_segments) of the selected nodes. */
static int
query_selected(const ctl_cluster *cluster, const bool *selected, bool is_segments,
			   int timeout_ms)
{
	const char **urls = calloc((size_t) cluster->n, sizeof(*urls));
	const char **ids = calloc((size_t) cluster->n, sizeof(*ids));
	int			n = 0;
	int			rc;

	if (urls == NULL || ids == NULL)
	{
		fprintf(stderr, "aurora-ctl: out of memory\n");
		free(urls);
		free(ids);
		return 1;
	}
	for (int i = 0; i < cluster->n; i++)
	{
		if (!selected[i])
			continue;
		urls[n] = cluster->nodes[i].dial_url;
		ids[n] = cluster->nodes[i].cfg.node_id;
		n++;
	}
	rc = is_segments ? ctl_segments(urls, n, timeout_ms) :
		ctl_status(stdout, urls, ids, n, timeout_ms);
	free(urls);
	free(ids);
	return rc;
}

/* start, stop or kill (cmd) of the selected nodes. */
static int
control_selected(ctl_cluster *cluster, const bool *selected, const char *cmd)
{
	char		err[1024];
	char		daemon_bin[4096];
	int			rc = 0;

	if (strcmp(cmd, "start") == 0 &&
		ctl_find_daemon(daemon_bin, sizeof(daemon_bin), err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s\n", err);
		return 1;
	}
	for (int i = 0; i < cluster->n; i++)
	{
		int			one;

		if (!selected[i])
			continue;
		if (strcmp(cmd, "start") == 0)
			one = ctl_start_node(&cluster->nodes[i], daemon_bin);
		else
			one = ctl_signal_node(&cluster->nodes[i],
								  strcmp(cmd, "kill") == 0 ? SIGKILL : SIGTERM);
		fflush(stdout);
		if (one != 0)
			rc = 1;
	}
	return rc;
}

static int
cluster_command(const char *dir, const char *cmd, char **targets, int n_targets,
				int timeout_ms)
{
	ctl_cluster cluster;
	bool	   *selected = NULL;
	char		err[1024];
	int			rc = 0;
	bool		handled;
	bool		is_segments = strcmp(cmd, "segments") == 0;
	/* segments: the same node selection as status, a different request */
	bool		is_status = is_segments || strcmp(cmd, "status") == 0;

	rc = option_command(dir, cmd, targets, n_targets, timeout_ms, &handled);
	if (handled)
		return rc;
	if (!is_status && strcmp(cmd, "start") != 0 && strcmp(cmd, "stop") != 0 &&
		strcmp(cmd, "kill") != 0)
	{
		fprintf(stderr, "aurora-ctl: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	if (!is_status && n_targets == 0)
	{
		fprintf(stderr, "aurora-ctl: %s needs at least one TARGET (node id, az:NAME or all)\n", cmd);
		return 2;
	}
	if (load_cluster(dir, &cluster) != 0)
		return 2;
	selected = calloc((size_t) cluster.n, sizeof(*selected));
	if (selected == NULL)
	{
		fprintf(stderr, "aurora-ctl: out of memory\n");
		ctl_cluster_free(&cluster);
		return 1;
	}
	if (n_targets == 0)
	{
		for (int i = 0; i < cluster.n; i++)
			selected[i] = true;
	}
	else if (ctl_cluster_select(&cluster, targets, n_targets, selected, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s (cluster %s)\n", err, dir);
		rc = 2;
		goto out;
	}
	rc = is_status ? query_selected(&cluster, selected, is_segments, timeout_ms) :
		control_selected(&cluster, selected, cmd);

out:
	free(selected);
	ctl_cluster_free(&cluster);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cluster_dir = NULL;
	int			timeout_ms = DEFAULT_TIMEOUT_MS;
	int			i = 1;

	/* A node that dies mid-reply must not kill the CLI. */
	signal(SIGPIPE, SIG_IGN);

	while (i < argc && strncmp(argv[i], "-", 1) == 0)
	{
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0)
		{
			printf("aurora-ctl %s (protocol %d)\n", AURORA_SERVICE_VERSION,
				   AURORA_PROTOCOL_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--cluster") == 0 && i + 1 < argc)
		{
			cluster_dir = argv[i + 1];
			i += 2;
			continue;
		}
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
		{
			if (parse_timeout(argv[i + 1], &timeout_ms) != 0)
			{
				fprintf(stderr, "aurora-ctl: --timeout needs milliseconds between 1 and 3600000\n");
				return 2;
			}
			i += 2;
			continue;
		}
		fprintf(stderr, "aurora-ctl: unknown or incomplete option '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (i >= argc)
	{
		usage(stderr);
		return 2;
	}

	if (cluster_dir != NULL)
		return cluster_command(cluster_dir, argv[i], argv + i + 1, argc - i - 1, timeout_ms);

	if (strcmp(argv[i], "segments") == 0)
	{
		if (argc - i - 1 < 1)
		{
			fprintf(stderr, "aurora-ctl: segments needs at least one URL (or --cluster DIR)\n");
			return 2;
		}
		return ctl_segments((const char *const *) (argv + i + 1), argc - i - 1, timeout_ms);
	}
	if (strcmp(argv[i], "redo") == 0)
		return ctl_redo_command(argv + i + 1, argc - i - 1, timeout_ms);
	if (strcmp(argv[i], "getpage") == 0)
		return ctl_getpage_command(argv + i + 1, argc - i - 1, timeout_ms);
	if (strcmp(argv[i], "relsize") == 0)
		return ctl_relsize_command(argv + i + 1, argc - i - 1, timeout_ms);
	if (strcmp(argv[i], "read-log") == 0)
	{
		ctl_stream_opts o;
		uint64_t	from = 0,
					to = UINT64_MAX;
		bool		have_pg = false;
		bool		wal = false;
		int			nargs = argc - i - 2;

		default_stream_opts(&o);
		o.epoch = 0;			/* without --epoch: the segment's own (reading changes nothing) */
		if (argc - i - 1 < 1 || strncmp(argv[i + 1], "-", 1) == 0)
		{
			fprintf(stderr, "aurora-ctl: read-log needs a URL\n");
			return 2;
		}
		/* --wal (no value) may come last */
		if (nargs > 0 && strcmp(argv[argc - 1], "--wal") == 0)
		{
			wal = true;
			nargs--;
		}
		if (log_options(argv + i + 2, nargs, &o, &from, &to, &have_pg) != 0)
			return 2;
		if (!have_pg)
		{
			fprintf(stderr, "aurora-ctl: read-log needs --pg N\n");
			return 2;
		}
		return ctl_read_log(argv[i + 1], o.volume_id, o.pg_id, from, to, o.epoch, wal,
							timeout_ms);
	}
	if (strcmp(argv[i], "status") != 0)
	{
		fprintf(stderr, "aurora-ctl: '%s' needs --cluster DIR (or use: status URL...)\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (argc - i - 1 < 1)
	{
		fprintf(stderr, "aurora-ctl: status needs at least one URL (or --cluster DIR)\n");
		return 2;
	}
	return ctl_status(stdout, (const char *const *) (argv + i + 1), NULL, argc - i - 1, timeout_ms);
}
