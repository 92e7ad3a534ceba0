/*
 * node_list.c
 *	  Parsing and validation of the aurora.storage_nodes setting: the list of
 *	  storage nodes (id, availability zone, NNG URL) the compute talks to.
 *
 *	  Syntax (parsed by storage_service/common/nodelist.c): comma-separated
 *	  entries "id:az:url", for example
 *	    a1:a:tcp://127.0.0.1:7101, a2:a:tcp://127.0.0.1:7102, ...
 *	  The id and AZ cannot contain ':' so the URL keeps its own colons.
 *
 *	  A protection group keeps two segments in each of three AZs, so a
 *	  non-empty list must name at least three AZs with at least two nodes
 *	  each.  An empty list is allowed: the extension is then loaded but has
 *	  no storage to talk to, and the views say so by being empty.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "node_list.h"
#include "nodelist.h"

static char *storage_nodes_string = NULL;
static const AuroraNodeList *configured_nodes = NULL;

/*
 * Parse and validate a value of aurora.storage_nodes with the storage
 * service's parser (storage_service/common/nodelist.c, shared with
 * aurora-compute-init).  Returns a malloc'd list (GUC extra), or NULL with a
 * message.
 */
AuroraNodeList *
aurora_parse_node_list(const char *value, char *error, size_t errlen)
{
	AuroraNodeList *list;
	aurora_member *nodes;
	int			n;

	if (aurora_nodelist_parse(value, &nodes, &n, error, errlen) != 0)
		return NULL;
	list = malloc(offsetof(AuroraNodeList, nodes) + Max(n, 1) * sizeof(AuroraNode));
	if (list == NULL)
	{
		free(nodes);
		snprintf(error, errlen, "out of memory");
		return NULL;
	}
	list->count = n;
	for (int i = 0; i < n; i++)
	{
		strlcpy(list->nodes[i].id, nodes[i].node_id, sizeof(list->nodes[i].id));
		strlcpy(list->nodes[i].az, nodes[i].az, sizeof(list->nodes[i].az));
		strlcpy(list->nodes[i].url, nodes[i].url, sizeof(list->nodes[i].url));
	}
	free(nodes);
	return list;
}

static bool
check_storage_nodes(char **newval, void **extra, GucSource source)
{
	char		error[512];
	AuroraNodeList *list;

	list = aurora_parse_node_list(*newval ? *newval : "", error, sizeof(error));
	if (list == NULL)
	{
		GUC_check_errdetail("%s", error);
		return false;
	}
	*extra = list;
	return true;
}

static void
assign_storage_nodes(const char *newval, void *extra)
{
	configured_nodes = (const AuroraNodeList *) extra;
}

/* The parsed aurora.storage_nodes (never NULL once the GUC is defined). */
const AuroraNodeList *
aurora_configured_nodes(void)
{
	static const AuroraNodeList empty = {0};

	return configured_nodes ? configured_nodes : &empty;
}

/* Define aurora.storage_nodes (from _PG_init). */
void
aurora_node_list_define_gucs(void)
{
	DefineCustomStringVariable("aurora.storage_nodes",
							   "Storage nodes of the volume, as comma-separated id:az:url entries.",
							   "At least three availability zones with two nodes each, e.g. "
							   "'a1:a:tcp://127.0.0.1:7101, a2:a:tcp://127.0.0.1:7102, ...'.",
							   &storage_nodes_string,
							   "",
							   PGC_POSTMASTER,
							   0,
							   check_storage_nodes,
							   assign_storage_nodes,
							   NULL);
}
