/*
 * datadir.h - creation and exclusive ownership of a node's data directory.
 *
 * Exactly one daemon may use a data directory: later issues keep the log and
 * page stores there, and two writers would corrupt them.  The guard is an
 * flock on <data_dir>/LOCK, which the kernel drops when the process dies,
 * so unlike the pid file it can never go stale.
 */
#ifndef AURORA_NODE_DATADIR_H
#define AURORA_NODE_DATADIR_H

#include <stdbool.h>
#include <stddef.h>

/* mkdir -p with the given mode for every directory created. */
int			aurora_mkdirs(const char *path, unsigned int mode, char *err, size_t errlen);

/*
 * Create dir (0700) if missing and take the exclusive lock.  Returns the
 * lock's file descriptor (keep it open for the life of the process) or -1
 * with a message in err.
 */
int			aurora_datadir_lock(const char *dir, char *err, size_t errlen);

/*
 * Whether a process holds dir's lock right now.  A killed daemon's threads
 * may outlive its main thread by a moment, and the lock goes only with the
 * last of them, so "the pid is gone" is not yet "the directory is free".
 */
bool		aurora_datadir_in_use(const char *dir);

#endif
