/*
 * util.h - two tiny helpers every module of the storage service and its
 * client needed: a monotonic clock in milliseconds and printf into a
 * caller's error buffer.  Kept here so there is one copy of each.
 */
#ifndef AURORA_UTIL_H
#define AURORA_UTIL_H

#include <stddef.h>

/* CLOCK_MONOTONIC in milliseconds (fractional). */
double		aurora_monotonic_ms(void);

/* vsnprintf into err (ignored when err is NULL or errlen is 0). */
void		aurora_seterr(char *err, size_t errlen, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/*
 * Sort v[0..n) (latency samples) and set *p50 and *p99 to its nearest-rank
 * percentiles; both untouched when n is 0.
 */
void		aurora_p50_p99(double *v, size_t n, double *p50, double *p99);

#endif
