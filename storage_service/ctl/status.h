/*
 * status.h - aurora-ctl's "status" command: query nodes concurrently and
 * print one aligned table row per node.
 */
#ifndef AURORA_CTL_STATUS_H
#define AURORA_CTL_STATUS_H

#include <stdio.h>

/*
 * Query urls[0..n) with one shared timeout and print the table to out.
 * expected_ids may be NULL; when given (cluster mode), expected_ids[i]
 * labels an unreachable node and must match the id the node reports.
 * Returns 0 if every node answered with a valid status, else 1.
 */
int			ctl_status(FILE *out, const char *const *urls, const char *const *expected_ids,
					   int n, int timeout_ms);

#endif
