/*
 * tap.c - implementation of the TAP helpers in tap.h.  Failures print the
 * source location and the got/expected values as TAP diagnostics ('#'
 * lines on stderr) so a failing `prove -v` run explains itself.
 */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	tests_run;
static int	tests_failed;
static int	planned = -1;

void
plan(int n)
{
	planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static int
vreport(int pass, const char *file, int line, const char *fmt, va_list ap)
{
	tests_run++;
	if (!pass)
		tests_failed++;
	printf("%s %d - ", pass ? "ok" : "not ok", tests_run);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	if (!pass)
		fprintf(stderr, "#   Failed test at %s line %d.\n", file, line);
	return pass;
}

int
tap_ok(int pass, const char *file, int line, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vreport(pass, file, line, fmt, ap);
	va_end(ap);
	return pass;
}

int
tap_is_int(long long got, long long expected, const char *file, int line,
		   const char *fmt,...)
{
	va_list		ap;
	int			pass = got == expected;

	va_start(ap, fmt);
	vreport(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass)
		fprintf(stderr, "#          got: %lld\n#     expected: %lld\n", got, expected);
	return pass;
}

int
tap_is_uint(unsigned long long got, unsigned long long expected, const char *file,
			int line, const char *fmt,...)
{
	va_list		ap;
	int			pass = got == expected;

	va_start(ap, fmt);
	vreport(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass)
		fprintf(stderr, "#          got: %llu (0x%llx)\n#     expected: %llu (0x%llx)\n",
				got, got, expected, expected);
	return pass;
}

int
tap_is_str(const char *got, const char *expected, const char *file, int line,
		   const char *fmt,...)
{
	va_list		ap;
	int			pass = got != NULL && expected != NULL && strcmp(got, expected) == 0;

	va_start(ap, fmt);
	vreport(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass)
		fprintf(stderr, "#          got: '%s'\n#     expected: '%s'\n",
				got ? got : "(null)", expected ? expected : "(null)");
	return pass;
}

int
tap_like(const char *got, const char *substring, const char *file, int line,
		 const char *fmt,...)
{
	va_list		ap;
	int			pass = got != NULL && strstr(got, substring) != NULL;

	va_start(ap, fmt);
	vreport(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass)
		fprintf(stderr, "#          got: '%s'\n#  not containing: '%s'\n",
				got ? got : "(null)", substring);
	return pass;
}

void
diag(const char *fmt,...)
{
	va_list		ap;

	fflush(stdout);
	fprintf(stderr, "# ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

void
bail_out(const char *fmt,...)
{
	va_list		ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(255);
}

int
done_testing(void)
{
	if (planned < 0)
		printf("1..%d\n", tests_run);
	else if (planned != tests_run)
		fprintf(stderr, "# planned %d tests but ran %d\n", planned, tests_run);
	fflush(stdout);
	if (tests_failed > 0)
		fprintf(stderr, "# %d of %d tests failed\n", tests_failed, tests_run);
	return (tests_failed > 0 || (planned >= 0 && planned != tests_run)) ? 1 : 0;
}
