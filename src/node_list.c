/*
 * node_list.c
 *	  Parsing and validation of the aurora.storage_nodes setting: the list of
 *	  storage nodes (id, availability zone, NNG URL) the compute talks to.
 *
 *	  Syntax: comma-separated entries "id:az:url", for example
 *	    a1:a:tcp://127.0.0.1:7101, a2:a:tcp://127.0.0.1:7102, ...
 *	  The id and AZ cannot contain ':' so the URL keeps its own colons.
 *
 *	  A protection group keeps two segments in each of three AZs, so a
 *	  non-empty list must name at least three AZs with at least two nodes
 *	  each.  An empty list is allowed: the extension is then loaded but has
 *	  no storage to talk to, and the views say so by being empty.
 */
#include "postgres.h"

#include <ctype.h>

#include "utils/guc.h"

#include "aurora.h"
#include "volume.h"

#define AURORA_MIN_AZS			3
#define AURORA_MIN_NODES_PER_AZ	2

static const AuroraNodeList *configured_nodes = NULL;

static bool
valid_name(const char *s, size_t len, size_t maxlen)
{
	if (len == 0 || len > maxlen)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (!isalnum((unsigned char) s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	}
	return true;
}

static bool
valid_url(const char *url)
{
	return strncmp(url, "tcp://", 6) == 0 ||
		strncmp(url, "tls+tcp://", 10) == 0 ||
		strncmp(url, "ipc://", 6) == 0;
}

/*
 * Parse a node list.  The result is malloc'd (GUC "extra" data must be), or
 * NULL with a message in error.
 */
AuroraNodeList *
aurora_parse_node_list(const char *value, char *error, size_t errlen)
{
	AuroraNodeList *list;
	int			capacity = 1;
	const char *p;
	int			azs = 0;
	char		az_names[64][32];
	int			az_counts[64];

	for (p = value; *p; p++)
		if (*p == ',')
			capacity++;
	list = malloc(offsetof(AuroraNodeList, nodes) + capacity * sizeof(AuroraNode));
	if (list == NULL)
	{
		snprintf(error, errlen, "out of memory");
		return NULL;
	}
	list->count = 0;

	p = value;
	while (*p)
	{
		const char *end = strchr(p, ',');
		const char *c1,
				   *c2;
		size_t		len;
		char		entry[512];
		char	   *e,
				   *ee;
		AuroraNode *node;

		if (end == NULL)
			end = p + strlen(p);
		len = end - p;
		if (len >= sizeof(entry))
		{
			snprintf(error, errlen, "entry %d is too long", list->count + 1);
			goto fail;
		}
		memcpy(entry, p, len);
		entry[len] = '\0';
		p = *end ? end + 1 : end;

		/* trim */
		e = entry;
		while (isspace((unsigned char) *e))
			e++;
		ee = e + strlen(e);
		while (ee > e && isspace((unsigned char) ee[-1]))
			*--ee = '\0';
		if (*e == '\0')
		{
			if (*p == '\0' && list->count > 0 && end[0] == '\0')
				break;			/* tolerate a trailing comma */
			snprintf(error, errlen, "entry %d is empty", list->count + 1);
			goto fail;
		}

		c1 = strchr(e, ':');
		c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		/* "tcp://..." alone: the first colon is the URL's, not ours */
		if (c1 == NULL || c2 == NULL || strncmp(c1, "://", 3) == 0)
		{
			snprintf(error, errlen, "entry \"%s\" is not of the form id:az:url", e);
			goto fail;
		}
		node = &list->nodes[list->count];
		if (!valid_name(e, c1 - e, sizeof(node->id) - 1))
		{
			snprintf(error, errlen,
					 "entry \"%s\": node id must be 1 to %d letters, digits, '_' or '-'",
					 e, (int) sizeof(node->id) - 1);
			goto fail;
		}
		if (!valid_name(c1 + 1, c2 - c1 - 1, sizeof(node->az) - 1))
		{
			snprintf(error, errlen,
					 "entry \"%s\": availability zone must be 1 to %d letters, digits, '_' or '-'",
					 e, (int) sizeof(node->az) - 1);
			goto fail;
		}
		if (!valid_url(c2 + 1) || strlen(c2 + 1) >= sizeof(node->url))
		{
			snprintf(error, errlen,
					 "entry \"%s\": URL must start with tcp://, tls+tcp:// or ipc:// and be shorter than %d bytes",
					 e, (int) sizeof(node->url));
			goto fail;
		}
		memcpy(node->id, e, c1 - e);
		node->id[c1 - e] = '\0';
		memcpy(node->az, c1 + 1, c2 - c1 - 1);
		node->az[c2 - c1 - 1] = '\0';
		strcpy(node->url, c2 + 1);

		for (int i = 0; i < list->count; i++)
		{
			if (strcmp(list->nodes[i].id, node->id) == 0)
			{
				snprintf(error, errlen, "node id \"%s\" appears twice", node->id);
				goto fail;
			}
			if (strcmp(list->nodes[i].url, node->url) == 0)
			{
				snprintf(error, errlen, "URL \"%s\" appears twice", node->url);
				goto fail;
			}
		}
		list->count++;
	}

	if (list->count == 0)
		return list;

	/* Placement needs two nodes in each of at least three AZs. */
	for (int i = 0; i < list->count; i++)
	{
		int			a;

		for (a = 0; a < azs; a++)
			if (strcmp(az_names[a], list->nodes[i].az) == 0)
				break;
		if (a == azs)
		{
			if (azs == lengthof(az_names))
			{
				snprintf(error, errlen, "more than %d availability zones", azs);
				goto fail;
			}
			strcpy(az_names[azs], list->nodes[i].az);
			az_counts[azs++] = 0;
		}
		az_counts[a]++;
	}
	{
		int			usable = 0;

		for (int a = 0; a < azs; a++)
			if (az_counts[a] >= AURORA_MIN_NODES_PER_AZ)
				usable++;
		if (usable < AURORA_MIN_AZS)
		{
			snprintf(error, errlen,
					 "a protection group needs %d nodes in each of %d availability zones, but only %d of the %d zones listed have %d nodes",
					 AURORA_MIN_NODES_PER_AZ, AURORA_MIN_AZS, usable, azs,
					 AURORA_MIN_NODES_PER_AZ);
			goto fail;
		}
	}
	return list;

fail:
	free(list);
	return NULL;
}

bool
aurora_check_storage_nodes(char **newval, void **extra, GucSource source)
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

void
aurora_assign_storage_nodes(const char *newval, void *extra)
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

/*
 * The six members of protection group pg among the configured nodes (the
 * storage contract's placement, common/volume.c); ERROR if there is none.
 */
void
aurora_place_configured_pg(int pg, struct aurora_member *members)
{
	const AuroraNodeList *nodes = aurora_configured_nodes();
	aurora_member *all = palloc0(sizeof(aurora_member) * Max(nodes->count, 1));
	char		err[256];

	for (int i = 0; i < nodes->count; i++)
	{
		strlcpy(all[i].node_id, nodes->nodes[i].id, sizeof(all[i].node_id));
		strlcpy(all[i].az, nodes->nodes[i].az, sizeof(all[i].az));
		strlcpy(all[i].url, nodes->nodes[i].url, sizeof(all[i].url));
	}
	if (aurora_place_pg(all, nodes->count, (uint32) pg, members, err, sizeof(err)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aurora: cannot place protection group %d: %s", pg, err)));
	pfree(all);
}
