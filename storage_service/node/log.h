/*
 * log.h - one-line, timestamped event log of the storage daemon.
 *
 * Lines go to stderr, which aurora-ctl points at the node's log_file, so a
 * node's history is a plain append-only text file.
 */
#ifndef AURORA_NODE_LOG_H
#define AURORA_NODE_LOG_H

/* Text shown after the pid on every line (the node id); copied. */
void		aurora_log_set_ident(const char *ident);

/* Log one event; a trailing newline is added. */
void		aurora_log(const char *fmt,...) __attribute__((format(printf, 1, 2)));

#endif
