/*
 * pagecmd.h - aurora-ctl's page service commands (PROTOCOL.md 5.9):
 * seed a volume from a cleanly shut down data directory, fetch one page as
 * of an LSN, and ask a PG for a relation fork's size.  seed is in
 * seed_cmd.c, getpage, relsize and the shared parsers in pagecmd.c.
 */
#ifndef AURORA_CTL_PAGECMD_H
#define AURORA_CTL_PAGECMD_H

#include "cluster.h"

/* aurora-ctl --cluster DIR seed ARGS...; returns the exit status. */
int			ctl_seed_command(const ctl_cluster *c, char **args, int n, int timeout_ms);

/* aurora-ctl getpage ARGS... / relsize ARGS...; return the exit status. */
int			ctl_getpage_command(char **args, int n, int timeout_ms);
int			ctl_relsize_command(char **args, int n, int timeout_ms);

/* "X/Y" (hex halves, as PostgreSQL prints LSNs) or a plain number. */
int			ctl_parse_lsn(const char *s, uint64_t *out);

/* A decimal (or 0x hex) number that fits in 32 bits; 0, or -1. */
int			ctl_parse_u32(const char *s, uint32_t *out);

#endif
