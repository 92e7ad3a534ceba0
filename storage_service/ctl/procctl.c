/*
 * procctl.c - process management behind "aurora-ctl start|stop|kill"
 * (procctl.h).
 *
 * start forks, detaches the child into its own session (so a Ctrl-C in the
 * operator's terminal does not reach the nodes) and execs the daemon with
 * stdout/stderr appended to the node's log_file.  Readiness is judged by the
 * node answering STATUS with the child's pid, not by the pid file appearing,
 * because only a reply proves the listener works.  stop/kill identify the
 * process from the pid file and refuse to signal a pid that is not an
 * aurora-storage process (the pid may have been reused since).
 */
#define _DEFAULT_SOURCE		/* initgroups() */
#define _POSIX_C_SOURCE 200809L

#include "procctl.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "datadir.h"
#include "pidfile.h"
#include "util.h"

static void
sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int
ctl_find_daemon(char *out, size_t cap, char *err, size_t errlen)
{
	const char *env = getenv("AURORA_STORAGE_BIN");
	char		self[4096];
	ssize_t		n;
	char	   *slash;

	if (env != NULL && env[0] != '\0')
	{
		snprintf(out, cap, "%s", env);
	}
	else
	{
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
		{
			snprintf(err, errlen, "cannot find own executable (/proc/self/exe): %s; "
					 "set AURORA_STORAGE_BIN", strerror(errno));
			return -1;
		}
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL)
			*slash = '\0';
		if (snprintf(out, cap, "%s/aurora-storage", self) >= (int) cap)
		{
			snprintf(err, errlen, "daemon path too long");
			return -1;
		}
	}
	if (access(out, X_OK) != 0)
	{
		snprintf(err, errlen, "storage daemon %s is not executable: %s", out, strerror(errno));
		return -1;
	}
	return 0;
}

/* Last non-empty line of the log, to show why a node failed to start. */
static void
last_log_line(const char *path, char *out, size_t cap)
{
	FILE	   *f = fopen(path, "r");
	char		line[1024];

	out[0] = '\0';
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
	{
		line[strcspn(line, "\n")] = '\0';
		if (line[0] != '\0')
			snprintf(out, cap, "%s", line);
	}
	fclose(f);
}

static char *
dirname_of(const char *path, char *out, size_t cap)
{
	char	   *slash;

	snprintf(out, cap, "%s", path);
	slash = strrchr(out, '/');
	if (slash == NULL)
		snprintf(out, cap, ".");
	else if (slash == out)
		out[1] = '\0';
	else
		*slash = '\0';
	return out;
}

/*
 * Run as the owner of the node's configuration file when started by root.
 * The local cluster's files belong to an unprivileged user (PostgreSQL
 * refuses root, so the whole cluster runs as one user); a node started by
 * root would create root-owned files there and could no longer be stopped by
 * that user.
 */
static int
drop_to_config_owner(const ctl_node *node)
{
	struct stat st;
	struct passwd *pw;

	if (geteuid() != 0 || stat(node->cfg.source, &st) != 0 || st.st_uid == 0)
		return 0;
	pw = getpwuid(st.st_uid);
	if ((pw != NULL && initgroups(pw->pw_name, st.st_gid) != 0) ||
		setgid(st.st_gid) != 0 || setuid(st.st_uid) != 0)
	{
		dprintf(STDERR_FILENO, "%s: cannot start: cannot switch to uid %ld: %s\n",
				node->cfg.node_id, (long) st.st_uid, strerror(errno));
		return -1;
	}
	return 0;
}

/* Child side of start: never returns. */
static void
exec_daemon(const ctl_node *node, const char *daemon_bin)
{
	int			devnull = open("/dev/null", O_RDONLY);
	char	   *argv[4];
	char		err[1024];
	char		dir[AURORA_CONFIG_PATH_MAX];
	sigset_t	none;
	int			log_fd;

	if (drop_to_config_owner(node) != 0)
		_exit(1);
	if (aurora_mkdirs(dirname_of(node->cfg.log_file, dir, sizeof(dir)), 0700,
					  err, sizeof(err)) != 0)
	{
		dprintf(STDERR_FILENO, "%s: cannot start: %s\n", node->cfg.node_id, err);
		_exit(1);
	}
	log_fd = open(node->cfg.log_file, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (log_fd < 0)
	{
		dprintf(STDERR_FILENO, "%s: cannot start: cannot open log file %s: %s\n",
				node->cfg.node_id, node->cfg.log_file, strerror(errno));
		_exit(1);
	}

	setsid();
	if (devnull >= 0)
		dup2(devnull, STDIN_FILENO);
	dup2(log_fd, STDOUT_FILENO);
	dup2(log_fd, STDERR_FILENO);
	close(log_fd);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	argv[0] = (char *) "aurora-storage";
	argv[1] = (char *) "--config";
	argv[2] = (char *) node->cfg.source;
	argv[3] = NULL;
	execv(daemon_bin, argv);
	dprintf(STDERR_FILENO, "aurora-ctl: cannot execute %s: %s\n", daemon_bin, strerror(errno));
	_exit(127);
}

int
ctl_start_node(const ctl_node *node, const char *daemon_bin)
{
	const char *id = node->cfg.node_id;
	const char *url = node->dial_url;
	char		err[1024];
	pid_t		pid;
	pid_t		file_pid;
	double		deadline;

	if (aurora_pidfile_read(node->cfg.pid_file, &pid, err, sizeof(err)) == 1 &&
		aurora_process_is_storage(pid))
	{
		printf("%s: already running (pid %ld)\n", id, (long) pid);
		return 0;
	}

	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		fprintf(stderr, "%s: cannot start: fork failed: %s\n", id, strerror(errno));
		return 1;
	}
	if (pid == 0)
		exec_daemon(node, daemon_bin);

	deadline = aurora_monotonic_ms() + CTL_WAIT_MS;
	for (;;)
	{
		aurora_status_result r;
		int			status;
		const char *const urls[1] = {url};

		if (waitpid(pid, &status, WNOHANG) == pid)
		{
			char		line[1024];

			last_log_line(node->cfg.log_file, line, sizeof(line));
			fprintf(stderr, "%s: failed to start (%s %d); last log line: %s\n", id,
					WIFEXITED(status) ? "exit status" : "signal",
					WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
					line[0] ? line : "(none)");
			return 1;
		}
		aurora_status_many(urls, 1, 200, &r);

		/*
		 * The daemon writes its pid file just after its listener answers;
		 * wait for both, so that a stop right after start finds the pid.
		 */
		if (r.reachable && r.error[0] == '\0' && (pid_t) r.status.pid == pid &&
			aurora_pidfile_read(node->cfg.pid_file, &file_pid, err, sizeof(err)) == 1 &&
			file_pid == pid)
		{
			printf("%s: started (pid %ld)\n", id, (long) pid);
			return 0;
		}
		if (aurora_monotonic_ms() >= deadline)
		{
			fprintf(stderr, "%s: process %ld did not answer STATUS on %s within %d s; see %s\n",
					id, (long) pid, url, CTL_WAIT_MS / 1000, node->cfg.log_file);
			return 1;
		}
		sleep_ms(50);
	}
}

int
ctl_signal_node(const ctl_node *node, int sig)
{
	const char *id = node->cfg.node_id;
	const char *verb = sig == SIGKILL ? "killed" : "stopped";
	char		err[1024];
	pid_t		pid;
	double		deadline;
	int			rc;

	rc = aurora_pidfile_read(node->cfg.pid_file, &pid, err, sizeof(err));
	if (rc < 0)
	{
		fprintf(stderr, "%s: %s\n", id, err);
		return 1;
	}
	if (rc == 0)
	{
		printf("%s: not running (no pid file)\n", id);
		return 0;
	}
	if (!aurora_process_alive(pid))
	{
		printf("%s: not running (stale pid file names pid %ld)\n", id, (long) pid);
		return 0;
	}
	if (!aurora_process_is_storage(pid))
	{
		fprintf(stderr, "%s: pid file %s names pid %ld, which is not aurora-storage; "
				"not signalling it\n", id, node->cfg.pid_file, (long) pid);
		return 1;
	}
	if (kill(pid, sig) != 0)
	{
		fprintf(stderr, "%s: cannot signal pid %ld: %s\n", id, (long) pid, strerror(errno));
		return 1;
	}

	deadline = aurora_monotonic_ms() + CTL_WAIT_MS;
	while (aurora_process_alive(pid) || aurora_datadir_in_use(node->cfg.data_dir))
	{
		if (aurora_monotonic_ms() >= deadline)
		{
			fprintf(stderr, "%s: pid %ld still running %d s after %s\n", id, (long) pid,
					CTL_WAIT_MS / 1000, sig == SIGKILL ? "SIGKILL" : "SIGTERM");
			return 1;
		}
		sleep_ms(20);
	}
	printf("%s: %s (pid %ld)\n", id, verb, (long) pid);
	return 0;
}
