/*
 * node_list.h
 *	  aurora.storage_nodes: the storage nodes the compute talks to
 *	  (node_list.c).
 */
#ifndef AURORA_NODE_LIST_H
#define AURORA_NODE_LIST_H

/* One storage node of aurora.storage_nodes. */
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

extern void aurora_node_list_define_gucs(void);
extern AuroraNodeList *aurora_parse_node_list(const char *value,
											  char *error, size_t errlen);
extern const AuroraNodeList *aurora_configured_nodes(void);

#endif							/* AURORA_NODE_LIST_H */
