/*
 * cli.h
 *	  What the subcommands of aurora-compute-init share (main.c): error exit,
 *	  argument parsing, pg_control checks, and each subcommand's entry.
 */
#ifndef COMPUTE_INIT_CLI_H
#define COMPUTE_INIT_CLI_H

#include "postgres_fe.h"

#include "access/xlogdefs.h"

#include "wal_walk.h"
#include "wal_write.h"

extern const char *progname;

/* Print "aurora-compute-init: error: ..." and exit 1. */
extern void fail(const char *fmt,...) pg_attribute_printf(1, 2) pg_attribute_noreturn();
extern XLogRecPtr parse_lsn(const char *s);
extern uint64 parse_u64(const char *s, const char *what);

/* Check pg_control (CRC, version, sizes): system identifier, segment size, timeline. */
extern void check_control(const uint8 *buf, size_t len, const char *what, WalTarget *t);
extern void read_control(const char *path, WalTarget *t);
extern const char *stop_name(WalWalkStop s);

/* aurora-compute-init start (start.c) */
extern int	cmd_start(int argc, char **argv);

#endif							/* COMPUTE_INIT_CLI_H */
