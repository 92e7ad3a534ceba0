/*
 * cluster.h - a local cluster as aurora-ctl sees it: a directory of node
 * config files (*.conf), and the TARGET syntax that selects nodes from it
 * (a node id, az:NAME, or all).
 */
#ifndef AURORA_CTL_CLUSTER_H
#define AURORA_CTL_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "logmsg.h"				/* aurora_member */

typedef struct ctl_node
{
	aurora_node_config cfg;
	/* listen_url rewritten into something a client can dial (no wildcard host). */
	char		dial_url[AURORA_CONFIG_URL_MAX + 16];
} ctl_node;

typedef struct ctl_cluster
{
	ctl_node   *nodes;			/* sorted by config file name */
	int			n;
} ctl_cluster;

/* Parse every "*.conf" file in dir.  Returns 0, or -1 with a message in err. */
int			ctl_cluster_load(const char *dir, ctl_cluster *c, char *err, size_t errlen);
void		ctl_cluster_free(ctl_cluster *c);

/*
 * Mark the nodes named by targets in selected[] (c->n entries, cleared
 * first).  Returns 0, or -1 with a message naming the unknown target.
 */
int			ctl_cluster_select(const ctl_cluster *c, char *const *targets, int n_targets,
							   bool *selected, char *err, size_t errlen);

/*
 * Turn a listen URL into a dialable one: a wildcard host (*, 0.0.0.0, [::])
 * becomes the matching loopback address; everything else is copied.
 */
void		ctl_dial_url(const char *listen_url, char *out, size_t cap);

/* The node as a PG member (id, AZ, dial URL): what writers and placement take. */
void		ctl_node_member(const ctl_node *node, aurora_member *m);

#endif
