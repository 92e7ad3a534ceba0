/*
 * main.c - the aurora-storage daemon: parse arguments and config, claim the
 * data directory, serve until SIGTERM/SIGINT, shut down cleanly.
 *
 * The process runs in the foreground and logs to stderr; aurora-ctl (or a
 * service manager) is responsible for detaching it and redirecting output.
 * Signals are blocked before NNG starts its threads and then collected with
 * sigwait() on the main thread, so shutdown runs as ordinary code rather
 * than inside an async signal handler.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "datadir.h"
#include "gossip.h"
#include "handler.h"
#include "log.h"
#include "pageservice.h"
#include "start_state.h"
#include "pidfile.h"
#include "segment_table.h"
#include "server.h"
#include "version.h"
#include "wire.h"

static void
usage(FILE *out)
{
	fprintf(out,
			"Usage: aurora-storage --config FILE\n"
			"       aurora-storage --version | --help\n"
			"\n"
			"Runs one aurora storage node in the foreground and logs to stderr.\n"
			"Stops cleanly on SIGTERM or SIGINT.\n"
			"\n"
			"FILE holds 'key = value' lines ('#' comments):\n"
			"  node_id            required, 1-63 of [A-Za-z0-9_-]\n"
			"  az                 required, 1-31 of [A-Za-z0-9_-]\n"
			"  listen_url         required, tcp://HOST:PORT or ipc://PATH\n"
			"  data_dir           required, created (0700) if missing\n"
			"  pid_file           default DATA_DIR/aurora-storage.pid\n"
			"  log_file           default DATA_DIR/aurora-storage.log (used by aurora-ctl)\n"
			"  max_message_bytes  default 16777216, 4096..1073741824 (largest body)\n"
			"  gossip_interval_ms default 250 (0 = off); peer_timeout_ms default 1000\n"
			"  walredo_postgres   patched postgres run as WAL-redo helper (unset: no redo)\n"
			"  walredo_helpers    default 2, 1..64; walredo_timeout_ms default 10000\n"
			"  coalesce_threshold default 16 (0 = never); page_threads default 4, 1..64\n"
			"Relative paths are relative to FILE's directory.\n");
}

/*
 * Refuse to start if the pid file names a live aurora-storage other than us;
 * a stale file (left by kill -9) is simply replaced later.
 */
static int
check_pid_file(const aurora_node_config *cfg)
{
	pid_t		pid;
	char		err[512];
	int			rc = aurora_pidfile_read(cfg->pid_file, &pid, err, sizeof(err));

	if (rc < 0)
	{
		aurora_log("ignoring unreadable pid file: %s", err);
		return 0;
	}
	if (rc == 1 && pid != getpid() && aurora_process_is_storage(pid))
	{
		aurora_log("pid file %s names running aurora-storage process %ld; not starting",
				   cfg->pid_file, (long) pid);
		return -1;
	}
	if (rc == 1)
		aurora_log("replacing stale pid file %s (pid %ld is not running)",
				   cfg->pid_file, (long) pid);
	return 0;
}

static int
run(const char *config_path)
{
	aurora_node_config cfg;
	aurora_handler handler;
	aurora_segment_table *store;
	aurora_server *srv;
	aurora_gossip *gossip;
	aurora_gossip_config gcfg;
	aurora_pageservice *pages;
	aurora_pageservice_config pcfg;
	aurora_start_states *start_states;
	sigset_t	sigs;
	char		err[1024];
	int			lock_fd;
	int			sig;

	if (aurora_node_config_load(config_path, &cfg, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-storage: %s\n", err);
		return 1;
	}
	aurora_log_set_ident(cfg.node_id);

	lock_fd = aurora_datadir_lock(cfg.data_dir, err, sizeof(err));
	if (lock_fd < 0)
	{
		aurora_log("cannot start: %s", err);
		return 1;
	}
	if (check_pid_file(&cfg) != 0)
		return 1;

	/* Block before any NNG thread exists so every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	aurora_log("started: aurora-storage %s, protocol %d, node %s, az %s, data_dir %s, "
			   "max_message_bytes %u, gossip_interval_ms %u, peer_timeout_ms %u",
			   AURORA_SERVICE_VERSION, AURORA_PROTOCOL_VERSION, cfg.node_id, cfg.az,
			   cfg.data_dir, (unsigned) cfg.max_message_bytes,
			   (unsigned) cfg.gossip_interval_ms, (unsigned) cfg.peer_timeout_ms);

	/* Recovery (cutting torn tails) happens here, before anything is served. */
	if (aurora_segment_table_open(cfg.data_dir, &store, err, sizeof(err)) != 0)
	{
		aurora_log("cannot start: %s", err);
		return 1;
	}
	aurora_log("segment store open: %d segments", aurora_segment_table_count(store));
	/* discards puts a previous run left unfinished */
	if (aurora_start_states_open(store, &start_states, err, sizeof(err)) != 0)
	{
		aurora_log("cannot start: %s", err);
		aurora_segment_table_close(store);
		return 1;
	}

	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.walredo_postgres = cfg.walredo_postgres;
	pcfg.walredo_helpers = (int) cfg.walredo_helpers;
	pcfg.walredo_timeout_ms = (int) cfg.walredo_timeout_ms;
	pcfg.coalesce_threshold = cfg.coalesce_threshold;
	if (aurora_pageservice_start(store, &pcfg, &pages, err, sizeof(err)) != 0)
	{
		aurora_log("cannot start: %s", err);
		aurora_start_states_close(start_states);
		aurora_segment_table_close(store);
		return 1;
	}
	aurora_log("page service: walredo_postgres %s, %u helpers, coalesce_threshold %u, "
			   "%u page threads", cfg.walredo_postgres[0] ? cfg.walredo_postgres : "(unset)",
			   (unsigned) cfg.walredo_helpers, (unsigned) cfg.coalesce_threshold,
			   (unsigned) cfg.page_threads);

	aurora_handler_init(&handler, cfg.node_id, cfg.az, cfg.max_message_bytes);
	aurora_handler_set_store(&handler, store);
	aurora_handler_set_pages(&handler, pages);
	aurora_handler_set_start_states(&handler, start_states);
	handler.page_threads = (int) cfg.page_threads;
	if (aurora_server_start(cfg.listen_url, &handler, &srv, err, sizeof(err)) != 0)
	{
		aurora_log("cannot start: %s", err);
		aurora_pageservice_stop(pages);
		aurora_start_states_close(start_states);
		aurora_segment_table_close(store);
		return 1;
	}
	aurora_log("listening on %s", cfg.listen_url);

	gcfg.self_node_id = cfg.node_id;
	gcfg.interval_ms = cfg.gossip_interval_ms;
	gcfg.peer_timeout_ms = cfg.peer_timeout_ms;
	gcfg.max_body = cfg.max_message_bytes;
	gcfg.pages = pages;
	gcfg.states = start_states;
	if (aurora_gossip_start(store, &gcfg, &gossip, err, sizeof(err)) != 0)
	{
		aurora_log("cannot start: %s", err);
		aurora_pageservice_interrupt(pages);
		aurora_server_stop(srv);
		aurora_pageservice_stop(pages);
		aurora_start_states_close(start_states);
		aurora_segment_table_close(store);
		return 1;
	}
	if (cfg.gossip_interval_ms == 0)
		aurora_log("gossip is off (gossip_interval_ms = 0): segments catch up only from the writer");

	/* Written only once serving, so a present pid file means "up". */
	if (aurora_pidfile_write(cfg.pid_file, getpid(), err, sizeof(err)) != 0)
	{
		aurora_log("cannot start: %s", err);
		aurora_gossip_stop(gossip);
		aurora_pageservice_interrupt(pages);
		aurora_server_stop(srv);
		aurora_pageservice_stop(pages);
		aurora_start_states_close(start_states);
		aurora_segment_table_close(store);
		return 1;
	}

	for (;;)
	{
		int			rc = sigwait(&sigs, &sig);

		if (rc == 0)
			break;
		if (rc != EINTR)
		{
			aurora_log("sigwait failed: %s; shutting down", strerror(rc));
			sig = 0;
			break;
		}
	}

	aurora_log("shutting down (%s)", sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "error");
	/* gossip first: it appends to segments the store is about to close */
	aurora_gossip_stop(gossip);
	/* page requests waiting for the log give up, then the server stops */
	aurora_pageservice_interrupt(pages);
	aurora_server_stop(srv);
	aurora_pageservice_stop(pages);
	aurora_start_states_close(start_states);
	aurora_segment_table_close(store);
	aurora_pidfile_remove_if_ours(cfg.pid_file, getpid());
	close(lock_fd);
	aurora_log("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	const char *config_path = NULL;
	int			i;

	for (i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0)
		{
			printf("aurora-storage %s (protocol %d)\n", AURORA_SERVICE_VERSION,
				   AURORA_PROTOCOL_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc && config_path == NULL)
		{
			config_path = argv[++i];
			continue;
		}
		if (strncmp(argv[i], "--config=", 9) == 0 && config_path == NULL)
		{
			config_path = argv[i] + 9;
			continue;
		}
		fprintf(stderr, "aurora-storage: unexpected argument '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (config_path == NULL)
	{
		fprintf(stderr, "aurora-storage: --config FILE is required\n");
		usage(stderr);
		return 2;
	}
	return run(config_path);
}
