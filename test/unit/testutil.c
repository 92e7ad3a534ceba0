/*
 * testutil.c - implementation of the test helpers in testutil.h.
 */
#define _DEFAULT_SOURCE

#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "tap.h"
#include "util.h"

#ifndef AURORA_TEST_BUILD_DIR
#define AURORA_TEST_BUILD_DIR "build"
#endif

const char *
test_binary(const char *env_name, const char *file_name)
{
	static char path[4][1024];
	static int	next;
	const char *env = getenv(env_name);
	char	   *slot = path[next++ % 4];

	if (env != NULL && env[0] != '\0')
		snprintf(slot, sizeof(path[0]), "%s", env);
	else
		snprintf(slot, sizeof(path[0]), "%s/%s", AURORA_TEST_BUILD_DIR, file_name);
	if (access(slot, X_OK) != 0)
		bail_out("binary %s is missing; build it first (make -C storage_service)", slot);
	return slot;
}

int
test_ms(int ms)
{
	const char *env = getenv("AURORA_TEST_TIME_SCALE");
	int			scale = env != NULL ? atoi(env) : 1;

	return ms * (scale >= 1 ? scale : 1);
}

int
free_tcp_port(void)
{
	struct sockaddr_in sa;
	socklen_t	len = sizeof(sa);
	int			fd = socket(AF_INET, SOCK_STREAM, 0);
	int			port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
		getsockname(fd, (struct sockaddr *) &sa, &len) != 0)
		bail_out("cannot find a free port: %s", strerror(errno));
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

void
make_tmpdir(const char *tag, char *out, size_t cap)
{
	char		tmpl[256];
	char	   *real;

	snprintf(tmpl, sizeof(tmpl), "/tmp/aurora-%s-XXXXXX", tag);
	if (mkdtemp(tmpl) == NULL)
		bail_out("mkdtemp failed: %s", strerror(errno));
	real = realpath(tmpl, NULL);
	if (real == NULL)
		bail_out("realpath failed: %s", strerror(errno));
	snprintf(out, cap, "%s", real);
	free(real);
}

void
redirect_stderr_to_log(const char *dir, char *path_out, size_t cap)
{
	int			fd;

	snprintf(path_out, cap, "%s/node.log", dir);
	fd = open(path_out, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
		bail_out("cannot redirect stderr to %s", path_out);
	close(fd);
}

void
remove_tree(const char *path)
{
	char	   *argv[] = {(char *) "rm", (char *) "-rf", (char *) path, NULL};
	char		out[256];

	if (strncmp(path, "/tmp/aurora-", 12) != 0)
		bail_out("refusing to remove %s", path);
	run_capture(argv, out, sizeof(out));
}

void
write_text_file(const char *path, const char *text)
{
	FILE	   *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		bail_out("cannot write %s", path);
}

void
read_text_file(const char *path, char *out, size_t cap)
{
	FILE	   *f = fopen(path, "r");
	size_t		n = 0;

	if (f != NULL)
	{
		n = fread(out, 1, cap - 1, f);
		fclose(f);
	}
	out[n] = '\0';
}

pid_t
spawn_logged(char *const argv[], const char *log_path)
{
	pid_t		pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		bail_out("fork failed: %s", strerror(errno));
	if (pid == 0)
	{
		int			fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0)
		{
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static void
pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

bool
wait_child(pid_t pid, int timeout_ms, int *status)
{
	double		deadline = aurora_monotonic_ms() + timeout_ms;

	do
	{
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		pause_ms(10);
	} while (aurora_monotonic_ms() < deadline);
	return false;
}

bool
wait_for_status(const char *url, pid_t child, int timeout_ms)
{
	double		deadline = aurora_monotonic_ms() + timeout_ms;
	const char *const urls[1] = {url};

	do
	{
		aurora_status_result r;
		int			status;

		if (child > 0 && waitpid(child, &status, WNOHANG) == child)
			return false;
		aurora_status_many(urls, 1, 200, &r);
		if (r.reachable && r.error[0] == '\0' &&
			(child <= 0 || (pid_t) r.status.pid == child))
			return true;
		pause_ms(20);
	} while (aurora_monotonic_ms() < deadline);
	return false;
}

int
run_capture(char *const argv[], char *out, size_t cap)
{
	int			pipefd[2];
	pid_t		pid;
	size_t		used = 0;
	ssize_t		n;
	int			status;

	fflush(NULL);
	if (pipe(pipefd) != 0)
		bail_out("pipe failed");
	pid = fork();
	if (pid < 0)
		bail_out("fork failed");
	if (pid == 0)
	{
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	/* Drain everything so the child never blocks; keep what fits. */
	for (;;)
	{
		char		chunk[1024];

		n = read(pipefd[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (used + 1 < cap)
		{
			size_t		take = (size_t) n < cap - 1 - used ? (size_t) n : cap - 1 - used;

			memcpy(out + used, chunk, take);
			used += take;
		}
	}
	close(pipefd[0]);
	out[used] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
fake_wal(uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t) (i * 7);
	p[0] = (uint8_t) len;
	p[1] = (uint8_t) (len >> 8);
	p[2] = (uint8_t) (len >> 16);
	p[3] = (uint8_t) (len >> 24);
}
