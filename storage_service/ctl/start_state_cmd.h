/*
 * start_state_cmd.h - aurora-ctl start-state (list, get, restore, put):
 * the start states a volume keeps on the six segments of PG 0
 * (PROTOCOL.md 5.11, 13), and storing one from a data directory, which
 * seed (seed_cmd.c) does for the first one.
 */
#ifndef AURORA_CTL_START_STATE_CMD_H
#define AURORA_CTL_START_STATE_CMD_H

#include <stdint.h>

#include "cluster.h"
#include "pgwriter.h"

/* aurora-ctl --cluster DIR start-state SUBCOMMAND ARGS...; returns the exit status. */
int			ctl_start_state_command(const ctl_cluster *c, char **args, int n, int timeout_ms);

/* PG 0 of volume_id as the compute places it over the cluster's nodes, at the given epoch. */
int			ctl_start_state_target(const ctl_cluster *c, uint64_t volume_id, uint64_t epoch,
								   aurora_pg_target *t, char *err, size_t errlen);

/*
 * Build a start state from datadir (consistent at lsn, naming checkpoint
 * and redo) and store it on PG 0 of t with a write quorum; prints one line.
 * Returns 0, or 1 after saying why on stderr (prefix names the command).
 */
int			ctl_start_state_store(const aurora_pg_target *t, const char *datadir, uint64_t lsn,
								  uint64_t checkpoint, uint64_t redo, uint32_t piece_bytes,
								  int timeout_ms, const char *prefix);

#endif
