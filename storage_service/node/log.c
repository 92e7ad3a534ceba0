/*
 * log.c - implementation of the daemon's event log (log.h).
 *
 * Each line is formatted completely and written with a single write(2), so
 * lines from different threads, or from two processes sharing a log file
 * opened with O_APPEND, never interleave.  Format:
 *     2025-01-31T12:00:00.123Z aurora-storage[4242] a1: message
 */
#define _POSIX_C_SOURCE 200809L

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set once at start-up before any thread exists, read-only afterwards. */
static char log_ident[64] = "-";

void
aurora_log_set_ident(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
}

void
aurora_log(const char *fmt,...)
{
	char		line[1024];
	struct timespec ts;
	struct tm	tm;
	size_t		n;
	int			rc;
	va_list		ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	rc = snprintf(line + n, sizeof(line) - n, ".%03ldZ aurora-storage[%ld] %s: ",
				  ts.tv_nsec / 1000000L, (long) getpid(), log_ident);
	if (rc > 0)
		n += (size_t) rc;
	if (n < sizeof(line))
	{
		va_start(ap, fmt);
		rc = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		if (rc > 0)
			n += (size_t) rc;
	}
	/* Overlong lines are cut, but always end with a newline. */
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
	{
		/* Nowhere left to report a failing log; the event is lost. */
	}
}
