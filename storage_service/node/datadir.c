/*
 * datadir.c - data directory creation and the LOCK file guard (datadir.h).
 */
#define _DEFAULT_SOURCE

#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int
aurora_mkdirs(const char *path, unsigned int mode, char *err, size_t errlen)
{
	char		buf[4096];
	char	   *p;
	struct stat st;

	if (path[0] == '\0')
	{
		snprintf(err, errlen, "empty directory path");
		return -1;
	}
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int) sizeof(buf))
	{
		snprintf(err, errlen, "%.200s...: path too long", path);
		return -1;
	}
	/* Create each missing ancestor in turn; existing ones are left as they are. */
	for (p = buf + 1; ; p++)
	{
		if (*p == '/' || *p == '\0')
		{
			char		saved = *p;

			*p = '\0';
			if (mkdir(buf, (mode_t) mode) != 0 && errno != EEXIST)
			{
				snprintf(err, errlen, "cannot create directory %s: %s", buf, strerror(errno));
				return -1;
			}
			*p = saved;
			if (saved == '\0')
				break;
		}
	}
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
	{
		snprintf(err, errlen, "%s exists but is not a directory", path);
		return -1;
	}
	return 0;
}

int
aurora_datadir_lock(const char *dir, char *err, size_t errlen)
{
	char		path[4200];
	int			fd;

	if (aurora_mkdirs(dir, 0700, err, errlen) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
	{
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen,
					 "data directory %s is in use by another aurora-storage process (%s is locked)",
					 dir, path);
		else
			snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

bool
aurora_datadir_in_use(const char *dir)
{
	char		path[4200];
	bool		in_use;
	int			fd;

	snprintf(path, sizeof(path), "%s/LOCK", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	in_use = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd);					/* drops our shared lock, if we got it */
	return in_use;
}
