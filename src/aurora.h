/*
 * aurora.h
 *	  Declarations shared by the modules of the aurora extension (compute
 *	  side).  The storage service's own code (wire codec, client, quorum
 *	  arithmetic) is included from storage_service/common and compiled into
 *	  the extension unchanged.
 */
#ifndef AURORA_H
#define AURORA_H

#include "access/xlogdefs.h"
#include "utils/guc.h"

/* One storage node of aurora.storage_nodes, as parsed by node_list.c. */
typedef struct AuroraNode
{
	char		id[64];
	char		az[32];
	char		url[256];
} AuroraNode;

typedef struct AuroraNodeList
{
	int			count;
	AuroraNode	nodes[FLEXIBLE_ARRAY_MEMBER];
} AuroraNodeList;

/* GUC values (aurora.c) */
extern char *aurora_storage_nodes_string;
extern int	aurora_write_quorum;
extern int	aurora_read_quorum;
extern int	aurora_request_timeout_ms;

/* node_list.c */
extern AuroraNodeList *aurora_parse_node_list(const char *value,
											  char *error, size_t errlen);
extern const AuroraNodeList *aurora_configured_nodes(void);
extern bool aurora_check_storage_nodes(char **newval, void **extra,
									   GucSource source);
extern void aurora_assign_storage_nodes(const char *newval, void *extra);
struct aurora_member;
extern void aurora_place_configured_pg(int pg, struct aurora_member *members);

/* shipper.c */
extern bool aurora_shipping;
extern int	aurora_protection_groups;
extern int	aurora_blocks_per_segment;
extern void aurora_shipper_register(void);
extern bool aurora_shipper_ready(void);
extern XLogRecPtr aurora_shipper_read_point(int pg);
extern bool aurora_shipper_segments(int pg, XLogRecPtr *scl, bool *reachable,
									double *latency_ms);

/* commit_wait.c */
struct Latch;
extern void aurora_commit_wait_register(void);
extern void aurora_commit_wait_set_shipper(struct Latch *latch);
extern void aurora_commit_wait_release(XLogRecPtr vdl);
extern bool aurora_commit_wait_pending(void);
extern XLogRecPtr aurora_commit_wait_vdl(void);
extern bool aurora_wait_for_vdl(XLogRecPtr lsn, int timeout_ms);

#endif							/* AURORA_H */
