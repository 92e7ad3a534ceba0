/*
 * util.c - monotonic milliseconds, timed-wait deadlines, error-buffer
 * formatting and latency percentiles (util.h).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double
aurora_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

void
aurora_timespec_add_ms(struct timespec *ts, uint64_t ms)
{
	ts->tv_sec += (time_t) (ms / 1000);
	ts->tv_nsec += (long) (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L)
	{
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void
aurora_seterr(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

void
aurora_p50_p99(double *v, size_t n, double *p50, double *p99)
{
	if (n == 0)
		return;
	qsort(v, n, sizeof(double), cmp_double);
	*p50 = v[(n - 1) / 2];
	*p99 = v[(size_t) ((double) (n - 1) * 0.99)];
}

int
aurora_fsync_path(const char *path, char *err, size_t errlen)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot fsync %.900s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}
