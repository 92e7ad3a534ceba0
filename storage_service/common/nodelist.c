/*
 * nodelist.c - parsing of a storage node list (nodelist.h), moved here from
 * the compute's src/node_list.c so that tools without PostgreSQL's backend
 * (aurora-compute-init) read the setting exactly as the compute does.
 *
 * The id and AZ cannot contain ':', so the URL keeps its own colons.
 */
#include "nodelist.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_AZS	64

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
		   char *err, size_t errlen)
{
	const char *end = strchr(*p, ',');
	size_t		len;
	char	   *e,
			   *ee;

	if (end == NULL)
		end = *p + strlen(*p);
	len = (size_t) (end - *p);
	if (len >= entry_size)
	{
		snprintf(err, errlen, "entry %d is too long", number);
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
parse_entry(const char *e, aurora_member *node, char *err, size_t errlen)
{
	const char *c1 = strchr(e, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

	/* "tcp://..." alone: the first colon is the URL's, not ours */
	if (c1 == NULL || c2 == NULL || strncmp(c1, "://", 3) == 0)
	{
		snprintf(err, errlen, "entry \"%s\" is not of the form id:az:url", e);
		return false;
	}
	if (!valid_name(e, (size_t) (c1 - e), sizeof(node->node_id) - 1))
	{
		snprintf(err, errlen,
				 "entry \"%s\": node id must be 1 to %d letters, digits, '_' or '-'",
				 e, (int) sizeof(node->node_id) - 1);
		return false;
	}
	if (!valid_name(c1 + 1, (size_t) (c2 - c1 - 1), sizeof(node->az) - 1))
	{
		snprintf(err, errlen,
				 "entry \"%s\": availability zone must be 1 to %d letters, digits, '_' or '-'",
				 e, (int) sizeof(node->az) - 1);
		return false;
	}
	if (!valid_url(c2 + 1) || strlen(c2 + 1) >= sizeof(node->url))
	{
		snprintf(err, errlen,
				 "entry \"%s\": URL must start with tcp://, tls+tcp:// or ipc:// and be shorter than %d bytes",
				 e, (int) sizeof(node->url));
		return false;
	}
	memset(node, 0, sizeof(*node));
	memcpy(node->node_id, e, (size_t) (c1 - e));
	memcpy(node->az, c1 + 1, (size_t) (c2 - c1 - 1));
	strcpy(node->url, c2 + 1);
	return true;
}

/* nodes[n], just parsed, repeats no id or URL of nodes[0..n). */
static bool
node_is_new(const aurora_member *nodes, int n, char *err, size_t errlen)
{
	const aurora_member *node = &nodes[n];

	for (int i = 0; i < n; i++)
	{
		if (strcmp(nodes[i].node_id, node->node_id) == 0)
		{
			snprintf(err, errlen, "node id \"%s\" appears twice", node->node_id);
			return false;
		}
		if (strcmp(nodes[i].url, node->url) == 0)
		{
			snprintf(err, errlen, "URL \"%s\" appears twice", node->url);
			return false;
		}
	}
	return true;
}

/* Placement needs two nodes in each of at least three AZs. */
static bool
placement_possible(const aurora_member *nodes, int n, char *err, size_t errlen)
{
	int			azs = 0;
	const char *az_names[MAX_AZS];
	int			az_counts[MAX_AZS];
	int			usable = 0;

	for (int i = 0; i < n; i++)
	{
		int			a;

		for (a = 0; a < azs; a++)
			if (strcmp(az_names[a], nodes[i].az) == 0)
				break;
		if (a == azs)
		{
			if (azs == MAX_AZS)
			{
				snprintf(err, errlen, "more than %d availability zones", azs);
				return false;
			}
			az_names[azs] = nodes[i].az;
			az_counts[azs++] = 0;
		}
		az_counts[a]++;
	}
	for (int a = 0; a < azs; a++)
		if (az_counts[a] >= AURORA_NODELIST_MIN_NODES_PER_AZ)
			usable++;
	if (usable < AURORA_NODELIST_MIN_AZS)
	{
		snprintf(err, errlen,
				 "a protection group needs %d nodes in each of %d availability zones, but only %d of the %d zones listed have %d nodes",
				 AURORA_NODELIST_MIN_NODES_PER_AZ, AURORA_NODELIST_MIN_AZS, usable, azs,
				 AURORA_NODELIST_MIN_NODES_PER_AZ);
		return false;
	}
	return true;
}

int
aurora_nodelist_parse(const char *value, aurora_member **nodes_out, int *n_out,
					  char *err, size_t errlen)
{
	aurora_member *nodes;
	int			capacity = 1;
	int			n = 0;
	const char *p;

	*nodes_out = NULL;
	*n_out = 0;
	for (p = value; *p; p++)
		if (*p == ',')
			capacity++;
	nodes = calloc((size_t) capacity, sizeof(*nodes));
	if (nodes == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}

	p = value;
	while (*p)
	{
		char		entry[512];

		if (!next_entry(&p, entry, sizeof(entry), n + 1, err, errlen))
			goto fail;
		if (entry[0] == '\0')
		{
			/* no comma after this entry: the value ended with one */
			if (*p == '\0' && n > 0 && p[-1] != ',')
				break;			/* tolerate a trailing comma */
			snprintf(err, errlen, "entry %d is empty", n + 1);
			goto fail;
		}
		if (!parse_entry(entry, &nodes[n], err, errlen) ||
			!node_is_new(nodes, n, err, errlen))
			goto fail;
		n++;
	}
	if (n > 0 && !placement_possible(nodes, n, err, errlen))
		goto fail;
	if (n == 0)
	{
		free(nodes);
		nodes = NULL;
	}
	*nodes_out = nodes;
	*n_out = n;
	return 0;

fail:
	free(nodes);
	return -1;
}
