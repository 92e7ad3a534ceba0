/*
 * pidfile.c - pid file handling and /proc-based liveness checks (pidfile.h).
 *
 * A zombie counts as dead: a daemon killed with SIGKILL stays a zombie until
 * its parent reaps it, and in containers nobody may ever reap it, yet for
 * every purpose here (restart, stop, kill) it is gone.
 */
#define _POSIX_C_SOURCE 200809L

#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
aurora_pidfile_read(const char *path, pid_t *pid, char *err, size_t errlen)
{
	FILE	   *f;
	char		buf[32];
	char	   *end;
	long		v;

	*pid = 0;
	f = fopen(path, "r");
	if (f == NULL)
	{
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	errno = 0;
	v = strtol(buf, &end, 10);
	while (*end == '\n' || *end == ' ')
		end++;
	if (end == buf || *end != '\0' || errno != 0 || v <= 0 || v > 0x7fffffffL)
	{
		snprintf(err, errlen, "%s: does not contain a pid", path);
		return -1;
	}
	*pid = (pid_t) v;
	return 1;
}

int
aurora_pidfile_write(const char *path, pid_t pid, char *err, size_t errlen)
{
	char		tmp[4200];
	char		line[32];
	int			fd;
	int			n;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long) pid) >= (int) sizeof(tmp))
	{
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	n = snprintf(line, sizeof(line), "%ld\n", (long) pid);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
	{
		snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
		return -1;
	}
	if (write(fd, line, (size_t) n) != n || fsync(fd) != 0)
	{
		snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0)
	{
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

void
aurora_pidfile_remove_if_ours(const char *path, pid_t pid)
{
	pid_t		found;
	char		err[64];

	if (aurora_pidfile_read(path, &found, err, sizeof(err)) == 1 && found == pid)
		unlink(path);
}

/* Read /proc/PID/stat's state letter; '\0' if the process does not exist. */
static char
process_state(pid_t pid)
{
	char		path[64];
	char		buf[512];
	FILE	   *f;
	char	   *rparen;
	size_t		n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long) pid);
	f = fopen(path, "r");
	if (f == NULL)
		return '\0';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may contain spaces and ')'; the state follows the last ')'. */
	rparen = strrchr(buf, ')');
	if (rparen == NULL || rparen[1] != ' ' || rparen[2] == '\0')
		return '\0';
	return rparen[2];
}

bool
aurora_process_alive(pid_t pid)
{
	char		state;

	if (pid <= 0)
		return false;
	if (kill(pid, 0) != 0 && errno != EPERM)
		return false;
	state = process_state(pid);
	/* Without /proc, trust kill(); with it, zombies and dead tasks are gone. */
	return state != 'Z' && state != 'X' && state != 'x';
}

bool
aurora_process_is_storage(pid_t pid)
{
	char		path[64];
	char		comm[64];
	FILE	   *f;
	size_t		n;

	if (!aurora_process_alive(pid))
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/comm", (long) pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	n = fread(comm, 1, sizeof(comm) - 1, f);
	fclose(f);
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, AURORA_STORAGE_PROCESS_NAME) == 0;
}
