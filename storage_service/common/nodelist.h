/*
 * nodelist.h - the storage node list in the aurora.storage_nodes format
 * ("id:az:url, id:az:url, ..."): parsing and validation.
 *
 * One parser for every program that is given the volume's nodes: the
 * compute's setting (src/node_list.c) and aurora-compute-init's
 * --storage-nodes, so both compute the same placement (volume.h) from the
 * same text.  No PostgreSQL headers.
 */
#ifndef AURORA_NODELIST_H
#define AURORA_NODELIST_H

#include <stddef.h>

#include "logmsg.h"				/* aurora_member */
#include "quorum.h"				/* AURORA_PG_AZS, AURORA_PG_COPIES */

/* Placement needs two nodes in each of at least three AZs (quorum.h). */
#define AURORA_NODELIST_MIN_AZS			AURORA_PG_AZS
#define AURORA_NODELIST_MIN_NODES_PER_AZ	(AURORA_PG_COPIES / AURORA_PG_AZS)

/*
 * Parse value: comma-separated "id:az:url" entries (blanks around entries
 * ignored, one trailing comma tolerated; ids and AZs are letters, digits,
 * '_' or '-'; URLs start with tcp://, tls+tcp:// or ipc://).  No id or URL
 * may repeat, and a non-empty list must allow placement (three AZs with two
 * nodes each).  Returns 0 with *nodes a malloc'd array (free() it, NULL when
 * empty) of *n members, or -1 with the reason in err.
 */
int			aurora_nodelist_parse(const char *value, aurora_member **nodes, int *n,
								  char *err, size_t errlen);

#endif							/* AURORA_NODELIST_H */
