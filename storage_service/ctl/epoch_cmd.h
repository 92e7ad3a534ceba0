/*
 * epoch_cmd.h - aurora-ctl's volume epoch commands: fence a PG's six
 * segments at a new volume epoch, and truncate them at a VDL (PROTOCOL.md
 * 5.10), the storage half of opening a volume, by hand or from the tests.
 */
#ifndef AURORA_CTL_EPOCH_CMD_H
#define AURORA_CTL_EPOCH_CMD_H

#include "cluster.h"

/*
 * fence --volume V --pg P --epoch E
 * truncate --volume V --pg P --epoch E --at LSN [--history e1@lsn1,...]
 * against the PG's six members (the cluster's first six nodes, as stream
 * places them).  Prints one line per node; returns 0 when a write quorum
 * (4 of 6) acknowledged, 1 when not, 2 on bad usage.
 */
int			ctl_epoch_command(const ctl_cluster *c, const char *cmd, char **args, int n,
							  int timeout_ms);

#endif
