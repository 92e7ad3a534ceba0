/*
 * cluster.c - loading a cluster directory and resolving targets (cluster.h).
 *
 * Node ids must be unique across the directory, otherwise "stop a1" would
 * be ambiguous; that is checked here once, so the commands can trust it.
 */
#define _POSIX_C_SOURCE 200809L

#include "cluster.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool
has_conf_suffix(const char *name)
{
	size_t		n = strlen(name);

	return n > 5 && strcmp(name + n - 5, ".conf") == 0 && name[0] != '.';
}

void
ctl_dial_url(const char *listen_url, char *out, size_t cap)
{
	static const struct
	{
		const char *prefix;
		const char *replacement;
	}			wild[] = {
		{"tcp://*:", "tcp://127.0.0.1:"},
		{"tcp://0.0.0.0:", "tcp://127.0.0.1:"},
		{"tcp://[::]:", "tcp://[::1]:"},
	};
	size_t		i;

	for (i = 0; i < sizeof(wild) / sizeof(wild[0]); i++)
	{
		size_t		plen = strlen(wild[i].prefix);

		if (strncmp(listen_url, wild[i].prefix, plen) == 0)
		{
			snprintf(out, cap, "%s%s", wild[i].replacement, listen_url + plen);
			return;
		}
	}
	snprintf(out, cap, "%s", listen_url);
}

void
ctl_node_member(const ctl_node *node, aurora_member *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->node_id, sizeof(m->node_id), "%s", node->cfg.node_id);
	snprintf(m->az, sizeof(m->az), "%s", node->cfg.az);
	snprintf(m->url, sizeof(m->url), "%.*s", (int) sizeof(m->url) - 1, node->dial_url);
}

int
ctl_cluster_load(const char *dir, ctl_cluster *c, char *err, size_t errlen)
{
	DIR		   *d;
	struct dirent *de;
	char	  **names = NULL;
	int			n_names = 0;
	int			cap_names = 0;
	int			i;
	int			j;
	int			rc = -1;

	memset(c, 0, sizeof(*c));
	d = opendir(dir);
	if (d == NULL)
	{
		snprintf(err, errlen, "cannot open cluster directory %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL)
	{
		if (!has_conf_suffix(de->d_name))
			continue;
		if (n_names == cap_names)
		{
			char	  **grown;

			cap_names = cap_names ? cap_names * 2 : 16;
			grown = realloc(names, (size_t) cap_names * sizeof(*names));
			if (grown == NULL)
				goto oom;
			names = grown;
		}
		if ((names[n_names] = strdup(de->d_name)) == NULL)
			goto oom;
		n_names++;
	}
	closedir(d);
	d = NULL;

	if (n_names == 0)
	{
		snprintf(err, errlen, "cluster directory %s contains no *.conf files", dir);
		goto out;
	}
	qsort(names, (size_t) n_names, sizeof(*names), cmp_names);

	c->nodes = calloc((size_t) n_names, sizeof(*c->nodes));
	if (c->nodes == NULL)
		goto oom;
	for (i = 0; i < n_names; i++)
	{
		char		path[AURORA_CONFIG_PATH_MAX];
		ctl_node   *node = &c->nodes[i];

		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int) sizeof(path))
		{
			snprintf(err, errlen, "%s/%s: path too long", dir, names[i]);
			goto out;
		}
		if (aurora_node_config_load(path, &node->cfg, err, errlen) != 0)
			goto out;
		for (j = 0; j < i; j++)
		{
			if (strcmp(c->nodes[j].cfg.node_id, node->cfg.node_id) == 0)
			{
				snprintf(err, errlen, "%s: node_id '%s' is also used by %s", path,
						 node->cfg.node_id, c->nodes[j].cfg.source);
				goto out;
			}
		}
		ctl_dial_url(node->cfg.listen_url, node->dial_url, sizeof(node->dial_url));
		c->n = i + 1;
	}
	rc = 0;
	goto out;

oom:
	snprintf(err, errlen, "out of memory reading %s", dir);
out:
	if (d != NULL)
		closedir(d);
	for (i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	if (rc != 0)
		ctl_cluster_free(c);
	return rc;
}

void
ctl_cluster_free(ctl_cluster *c)
{
	free(c->nodes);
	c->nodes = NULL;
	c->n = 0;
}

int
ctl_cluster_select(const ctl_cluster *c, char *const *targets, int n_targets,
				   bool *selected, char *err, size_t errlen)
{
	int			t;
	int			i;

	memset(selected, 0, (size_t) c->n * sizeof(*selected));
	for (t = 0; t < n_targets; t++)
	{
		const char *target = targets[t];
		bool		matched = false;

		for (i = 0; i < c->n; i++)
		{
			const aurora_node_config *cfg = &c->nodes[i].cfg;

			if (strcmp(target, "all") == 0 ||
				strcmp(target, cfg->node_id) == 0 ||
				(strncmp(target, "az:", 3) == 0 && strcmp(target + 3, cfg->az) == 0))
			{
				selected[i] = true;
				matched = true;
			}
		}
		if (!matched)
		{
			size_t		used;

			if (strncmp(target, "az:", 3) == 0)
				used = (size_t) snprintf(err, errlen, "no node is in availability zone '%s'; known:",
										 target + 3);
			else
				used = (size_t) snprintf(err, errlen, "unknown node '%s'; known:", target);
			for (i = 0; i < c->n && used < errlen; i++)
			{
				const char *name = strncmp(target, "az:", 3) == 0 ?
					c->nodes[i].cfg.az : c->nodes[i].cfg.node_id;
				int			j;
				bool		listed = false;

				for (j = 0; j < i; j++)
					if (strcmp(name, strncmp(target, "az:", 3) == 0 ?
							   c->nodes[j].cfg.az : c->nodes[j].cfg.node_id) == 0)
						listed = true;
				if (!listed)
					used += (size_t) snprintf(err + used, errlen - used, " %s", name);
			}
			return -1;
		}
	}
	return 0;
}
