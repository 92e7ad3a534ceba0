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

#include "node_list.h"

#define AURORA_MIN_AZS			3
#define AURORA_MIN_NODES_PER_AZ	2

static char *storage_nodes_string = NULL;
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
 * Copy the next comma-separated entry of *p into entry (at most entry_size
 * bytes), trimmed, and move *p past it.  Returns false with a message when
 * the entry is too long.
 */
static bool
next_entry(const char **p, char *entry, size_t entry_size, int number,
		   char *error, size_t errlen)
{
	const char *end = strchr(*p, ',');
	size_t		len;
	char	   *e,
			   *ee;

	if (end == NULL)
		end = *p + strlen(*p);
	len = end - *p;
	if (len >= entry_size)
	{
		snprintf(error, errlen, "entry %d is too long", number);
		return false;
	}
	e = entry;
	memcpy(e, *p, len);
	e[len] = '\0';
	*p = *end ? end + 1 : end;

	while (isspace((unsigned char) *e))
		e++;
	ee = e + strlen(e);
	while (ee > e && isspace((unsigned char) ee[-1]))
		*--ee = '\0';
	memmove(entry, e, strlen(e) + 1);
	return true;
}

/* Parse one non-empty "id:az:url" entry into node. */
static bool
parse_entry(const char *e, AuroraNode *node, char *error, size_t errlen)
{
	const char *c1 = strchr(e, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

	/* "tcp://..." alone: the first colon is the URL's, not ours */
	if (c1 == NULL || c2 == NULL || strncmp(c1, "://", 3) == 0)
	{
		snprintf(error, errlen, "entry \"%s\" is not of the form id:az:url", e);
		return false;
	}
	if (!valid_name(e, c1 - e, sizeof(node->id) - 1))
	{
		snprintf(error, errlen,
				 "entry \"%s\": node id must be 1 to %d letters, digits, '_' or '-'",
				 e, (int) sizeof(node->id) - 1);
		return false;
	}
	if (!valid_name(c1 + 1, c2 - c1 - 1, sizeof(node->az) - 1))
	{
		snprintf(error, errlen,
				 "entry \"%s\": availability zone must be 1 to %d letters, digits, '_' or '-'",
				 e, (int) sizeof(node->az) - 1);
		return false;
	}
	if (!valid_url(c2 + 1) || strlen(c2 + 1) >= sizeof(node->url))
	{
		snprintf(error, errlen,
				 "entry \"%s\": URL must start with tcp://, tls+tcp:// or ipc:// and be shorter than %d bytes",
				 e, (int) sizeof(node->url));
		return false;
	}
	memcpy(node->id, e, c1 - e);
	node->id[c1 - e] = '\0';
	memcpy(node->az, c1 + 1, c2 - c1 - 1);
	node->az[c2 - c1 - 1] = '\0';
	strcpy(node->url, c2 + 1);
	return true;
}

/* The node just parsed (list->nodes[list->count]) repeats no id or URL. */
static bool
node_is_new(const AuroraNodeList *list, char *error, size_t errlen)
{
	const AuroraNode *node = &list->nodes[list->count];

	for (int i = 0; i < list->count; i++)
	{
		if (strcmp(list->nodes[i].id, node->id) == 0)
		{
			snprintf(error, errlen, "node id \"%s\" appears twice", node->id);
			return false;
		}
		if (strcmp(list->nodes[i].url, node->url) == 0)
		{
			snprintf(error, errlen, "URL \"%s\" appears twice", node->url);
			return false;
		}
	}
	return true;
}

/* Placement needs two nodes in each of at least three AZs. */
static bool
placement_possible(const AuroraNodeList *list, char *error, size_t errlen)
{
	int			azs = 0;
	char		az_names[64][32];
	int			az_counts[64];
	int			usable = 0;

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
				return false;
			}
			strcpy(az_names[azs], list->nodes[i].az);
			az_counts[azs++] = 0;
		}
		az_counts[a]++;
	}
	for (int a = 0; a < azs; a++)
		if (az_counts[a] >= AURORA_MIN_NODES_PER_AZ)
			usable++;
	if (usable < AURORA_MIN_AZS)
	{
		snprintf(error, errlen,
				 "a protection group needs %d nodes in each of %d availability zones, but only %d of the %d zones listed have %d nodes",
				 AURORA_MIN_NODES_PER_AZ, AURORA_MIN_AZS, usable, azs,
				 AURORA_MIN_NODES_PER_AZ);
		return false;
	}
	return true;
}

/*
 * Parse and validate a value of aurora.storage_nodes (see the top of the
 * file).  Returns a malloc'd list (GUC extra), or NULL with a message.
 */
AuroraNodeList *
aurora_parse_node_list(const char *value, char *error, size_t errlen)
{
	AuroraNodeList *list;
	int			capacity = 1;
	const char *p;

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
		char		entry[512];

		if (!next_entry(&p, entry, sizeof(entry), list->count + 1, error, errlen))
			goto fail;
		if (entry[0] == '\0')
		{
			/* no comma after this entry: the value ended with one */
			if (*p == '\0' && list->count > 0 && p[-1] != ',')
				break;			/* tolerate a trailing comma */
			snprintf(error, errlen, "entry %d is empty", list->count + 1);
			goto fail;
		}
		if (!parse_entry(entry, &list->nodes[list->count], error, errlen) ||
			!node_is_new(list, error, errlen))
			goto fail;
		list->count++;
	}
	if (list->count > 0 && !placement_possible(list, error, errlen))
		goto fail;
	return list;

fail:
	free(list);
	return NULL;
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
