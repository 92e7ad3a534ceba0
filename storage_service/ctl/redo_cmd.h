/*
 * redo_cmd.h - `aurora-ctl redo`: rebuild one page of a compute's volume
 * from a storage node's log with a local pool of WAL-redo helpers
 * (node/redo.h), without the page store; and mask pages the way
 * wal_consistency_checking does, so a rebuilt page can be compared with the
 * compute's own.  An operator's tool, and the cluster tests' oracle of the
 * redo path (test/cluster/008_walredo.t).
 */
#ifndef AURORA_CTL_REDO_CMD_H
#define AURORA_CTL_REDO_CMD_H

/* args: everything after "redo"; returns the exit status (0, 1 or 2). */
int			ctl_redo_command(char **args, int n, int timeout_ms);

#endif
