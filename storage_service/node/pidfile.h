/*
 * pidfile.h - pid files and process liveness for storage nodes.
 *
 * The daemon writes its pid file; aurora-ctl reads it to stop or kill a
 * node.  Both sides must treat a pid file left by a crashed (kill -9) node
 * as stale, and must never signal an unrelated process that happens to have
 * reused the pid, hence the liveness test checks the process name too.
 */
#ifndef AURORA_NODE_PIDFILE_H
#define AURORA_NODE_PIDFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define AURORA_STORAGE_PROCESS_NAME "aurora-storage"

/*
 * Read the pid in path.  Returns 1 with *pid set, 0 if the file does not
 * exist, -1 (with err) if it cannot be read or does not hold a positive pid.
 */
int			aurora_pidfile_read(const char *path, pid_t *pid, char *err, size_t errlen);

/* Atomically (write temp file, fsync, rename) store pid in path. */
int			aurora_pidfile_write(const char *path, pid_t pid, char *err, size_t errlen);

/* Remove path if it still names pid (a newer daemon may have replaced it). */
void		aurora_pidfile_remove_if_ours(const char *path, pid_t pid);

/* True if pid exists and is not a zombie. */
bool		aurora_process_alive(pid_t pid);

/* True if pid is alive and its command name is aurora-storage. */
bool		aurora_process_is_storage(pid_t pid);

#endif
