/*
 * procctl.h - starting and signalling local storage node processes for
 * aurora-ctl's start/stop/kill commands.  Each function prints exactly one
 * line describing what it did ("a1: started (pid 123)") to stdout, or the
 * failure to stderr, and returns 0 on success or 1 on failure.
 */
#ifndef AURORA_CTL_PROCCTL_H
#define AURORA_CTL_PROCCTL_H

#include <stddef.h>

#include "cluster.h"

/* How long start/stop/kill wait for the node to come up or go away. */
#define CTL_WAIT_MS	10000

/*
 * Locate the daemon: $AURORA_STORAGE_BIN if set, else aurora-storage next
 * to the running aurora-ctl (via /proc/self/exe).  Returns 0 or -1 with err.
 */
int			ctl_find_daemon(char *out, size_t cap, char *err, size_t errlen);

/* Start the node unless already running, then wait until it answers STATUS. */
int			ctl_start_node(const ctl_node *node, const char *daemon_bin);

/* SIGTERM (stop) or SIGKILL (kill) the node and wait until it has exited. */
int			ctl_signal_node(const ctl_node *node, int sig);

#endif
