/*
 * tap.h - a tiny Test Anything Protocol producer for the C unit tests, so
 * `prove` can run them like any other TAP suite.  Either call plan(N) first
 * or finish with done_testing(); main() should return done_testing().
 */
#ifndef AURORA_TAP_H
#define AURORA_TAP_H

#include <stdint.h>

void		plan(int n);
int			tap_ok(int pass, const char *file, int line, const char *fmt,...)
			__attribute__((format(printf, 4, 5)));
int			tap_is_int(long long got, long long expected, const char *file, int line,
					   const char *fmt,...) __attribute__((format(printf, 5, 6)));
int			tap_is_uint(unsigned long long got, unsigned long long expected,
						const char *file, int line, const char *fmt,...)
			__attribute__((format(printf, 5, 6)));
int			tap_is_str(const char *got, const char *expected, const char *file, int line,
					   const char *fmt,...) __attribute__((format(printf, 5, 6)));
int			tap_like(const char *got, const char *substring, const char *file, int line,
					 const char *fmt,...) __attribute__((format(printf, 5, 6)));
void		diag(const char *fmt,...) __attribute__((format(printf, 1, 2)));
/* Abort the whole test file (e.g. the daemon would not start). */
void		bail_out(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));
/* Print the plan if none was given; returns the process exit status. */
int			done_testing(void);

#define ok(cond, ...)		tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(g, e, ...)	tap_is_int((long long) (g), (long long) (e), __FILE__, __LINE__, __VA_ARGS__)
#define is_uint(g, e, ...)	tap_is_uint((unsigned long long) (g), (unsigned long long) (e), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(g, e, ...)	tap_is_str((g), (e), __FILE__, __LINE__, __VA_ARGS__)
#define like(g, s, ...)		tap_like((g), (s), __FILE__, __LINE__, __VA_ARGS__)

#endif
