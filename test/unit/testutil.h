/*
 * testutil.h - helpers shared by the unit tests: processes and files for the
 * tests that run the real binaries (the daemon and aurora-ctl), and the fake
 * WAL records the page store and envelope tests index.
 */
#ifndef AURORA_TESTUTIL_H
#define AURORA_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Path of a built binary: $ENV_NAME if set, else the build directory's. */
const char *test_binary(const char *env_name, const char *file_name);

/*
 * ms stretched by $AURORA_TEST_TIME_SCALE (a whole number, default 1), for the
 * few tests that assert how soon something happens: the sanitizer runs slow
 * the code down several times (check-tsan sets 5, check-asan 2), and a bound
 * that holds on a plain build would fail there without a bug.
 */
int			test_ms(int ms);

/* A loopback TCP port that was free a moment ago. */
int			free_tcp_port(void);

/* mkdtemp under /tmp, realpath'd; never returns on failure. */
void		make_tmpdir(const char *tag, char *out, size_t cap);
/* Send stderr (in-process nodes' log lines) to DIR/node.log, not the TAP stream. */
void		redirect_stderr_to_log(const char *dir, char *path_out, size_t cap);
void		remove_tree(const char *path);
void		write_text_file(const char *path, const char *text);
/* Whole file as a NUL-terminated string in out ("" if unreadable). */
void		read_text_file(const char *path, char *out, size_t cap);

/* fork+exec argv with stdout and stderr appended to log_path. */
pid_t		spawn_logged(char *const argv[], const char *log_path);

/* Wait up to timeout_ms for child pid; returns true and *status if it exited. */
bool		wait_child(pid_t pid, int timeout_ms, int *status);

/* True once url answers STATUS with pid == expected_pid (0: any). */
bool		wait_for_status(const char *url, pid_t child, int timeout_ms);

/* Run argv to completion, capturing stdout+stderr in out; returns exit code. */
int			run_capture(char *const argv[], char *out, size_t cap);

/*
 * A WAL record of len bytes in p, as the page service reads one: xl_tot_len
 * (its first four bytes, little-endian) = len, the rest a pattern.
 */
void		fake_wal(uint8_t *p, uint32_t len);

#endif
