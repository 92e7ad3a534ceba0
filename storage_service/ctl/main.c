/*
 * main.c - aurora-ctl, the storage service admin CLI: argument parsing and
 * dispatch to the status table (status.c) and local cluster management
 * (cluster.c, procctl.c).
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
#include "procctl.h"
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
			"\n"
			"Exit status: 0 ok, 1 unreachable node or failed action, 2 usage or config error.\n",
			DEFAULT_TIMEOUT_MS);
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
cluster_command(const char *dir, const char *cmd, char **targets, int n_targets,
				int timeout_ms)
{
	ctl_cluster cluster;
	bool	   *selected = NULL;
	char		err[1024];
	char		daemon_bin[4096];
	int			rc = 0;
	int			i;
	bool		is_status = strcmp(cmd, "status") == 0;

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
	if (ctl_cluster_load(dir, &cluster, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s\n", err);
		return 2;
	}
	selected = calloc((size_t) cluster.n, sizeof(*selected));
	if (selected == NULL)
	{
		fprintf(stderr, "aurora-ctl: out of memory\n");
		ctl_cluster_free(&cluster);
		return 1;
	}
	if (n_targets == 0)
	{
		for (i = 0; i < cluster.n; i++)
			selected[i] = true;
	}
	else if (ctl_cluster_select(&cluster, targets, n_targets, selected, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s (cluster %s)\n", err, dir);
		rc = 2;
		goto out;
	}

	if (is_status)
	{
		const char **urls = calloc((size_t) cluster.n, sizeof(*urls));
		const char **ids = calloc((size_t) cluster.n, sizeof(*ids));
		int			n = 0;

		if (urls == NULL || ids == NULL)
		{
			fprintf(stderr, "aurora-ctl: out of memory\n");
			free(urls);
			free(ids);
			rc = 1;
			goto out;
		}
		for (i = 0; i < cluster.n; i++)
		{
			if (!selected[i])
				continue;
			urls[n] = cluster.nodes[i].dial_url;
			ids[n] = cluster.nodes[i].cfg.node_id;
			n++;
		}
		rc = ctl_status(stdout, urls, ids, n, timeout_ms);
		free(urls);
		free(ids);
		goto out;
	}

	if (strcmp(cmd, "start") == 0 &&
		ctl_find_daemon(daemon_bin, sizeof(daemon_bin), err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s\n", err);
		rc = 1;
		goto out;
	}
	for (i = 0; i < cluster.n; i++)
	{
		int			one;

		if (!selected[i])
			continue;
		if (strcmp(cmd, "start") == 0)
			one = ctl_start_node(&cluster.nodes[i], daemon_bin);
		else
			one = ctl_signal_node(&cluster.nodes[i],
								  strcmp(cmd, "kill") == 0 ? SIGKILL : SIGTERM);
		fflush(stdout);
		if (one != 0)
			rc = 1;
	}

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
