/*
 * util.h - tiny helpers every module of the storage service and its client
 * needed: a monotonic clock in milliseconds, the deadline a timed condition
 * wait takes, printf into a caller's error buffer and latency percentiles.
 * Kept here so there is one copy of each.
 */
#ifndef AURORA_UTIL_H
#define AURORA_UTIL_H

#include <stddef.h>
#include <stdint.h>

struct timespec;

/* CLOCK_MONOTONIC in milliseconds (fractional). */
double		aurora_monotonic_ms(void);

/*
 * Move *ts (a clock_gettime reading) ms milliseconds on, normalized: the
 * absolute deadline pthread_cond_timedwait takes.  The caller picks the
 * clock, which must be the condition variable's.
 */
void		aurora_timespec_add_ms(struct timespec *ts, uint64_t ms);

/* vsnprintf into err (ignored when err is NULL or errlen is 0). */
/*
 * fsync a file or directory by path (a directory: its entries are durable).
 * Returns 0, or -1 with err naming the path and errno.
 */
int			aurora_fsync_path(const char *path, char *err, size_t errlen);

void		aurora_seterr(char *err, size_t errlen, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/*
 * Sort v[0..n) (latency samples) and set *p50 and *p99 to its nearest-rank
 * percentiles; both untouched when n is 0.
 */
void		aurora_p50_p99(double *v, size_t n, double *p50, double *p99);

#endif
