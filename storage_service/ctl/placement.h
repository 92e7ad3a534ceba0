/*
 * placement.h - aurora-ctl's "placement" command: for every protection group
 * (PG) of a volume, the node that aurora_place_pg() (common/volume.h) puts
 * each of its six replicas on, checked against what the nodes really hold.
 *
 * Placement depends only on the set of nodes, so for the nodes of a cluster
 * directory it is exactly where a compute given the same nodes
 * (aurora.storage_nodes) created the volume.  The nodes are asked
 * concurrently whether they answer (STATUS), then each one that does for its
 * segments (SEGMENTS_REQ) and the geometry every segment of the volume was
 * created with (SEGMENT_INFO_REQ), which gives the number of PGs unless the
 * caller names it.
 *
 * ctl_placement_build() returns the table as data (the tests check it);
 * ctl_placement_print() is its stable, greppable text form.
 */
#ifndef AURORA_CTL_PLACEMENT_H
#define AURORA_CTL_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cluster.h"
#include "volume.h"

typedef enum ctl_seg_state
{
	CTL_SEG_OK,					/* held at the placed replica index */
	CTL_SEG_MISSING,			/* the node answers but does not hold it */
	CTL_SEG_DOWN,				/* the node does not answer (or not usably) */
	CTL_SEG_MISPLACED			/* held at another replica index, or held where
								 * placement puts no replica of the PG (extra) */
} ctl_seg_state;

const char *ctl_seg_state_name(ctl_seg_state s);

typedef struct ctl_placement_row
{
	uint32_t	pg;
	uint32_t	replica;		/* the placed index; an extra row's: the index it holds */
	int			node;			/* index in the cluster */
	ctl_seg_state state;
	bool		extra;			/* a segment that placement does not put on this node */
	bool		held;			/* the node holds the segment; the fields below are its */
	uint32_t	held_replica;
	uint64_t	scl;
	uint64_t	volume_epoch;
	uint64_t	membership_epoch;
} ctl_placement_row;

typedef struct ctl_node_answer
{
	bool		up;
	char		error[256];		/* why it counts as down */
} ctl_node_answer;

typedef struct ctl_placement
{
	uint64_t	volume_id;
	/* n_pgs of the table; blocks_per_segment 0 when no segment tells it */
	aurora_geometry geometry;
	/* the segments disagree on the geometry (only with n_pgs given) */
	bool		geometry_mixed;
	/* a note for the operator when n_pgs overrides what the segments say */
	char		warning[512];
	int			n_nodes;
	ctl_node_answer *nodes;		/* in cluster order */
	ctl_placement_row *rows;	/* by PG: placed replicas 0-5, then extras */
	int			n_rows;
	int		   *pg_ok;			/* CTL_SEG_OK rows of each PG (n_pgs entries) */
	int			pgs_all_ok;		/* PGs with all six replicas ok */
	int			pgs_write_quorum;	/* at least a write quorum ok */
	int			pgs_read_quorum;	/* at least a read quorum ok */
	int			nodes_down;
	int			extra_rows;
} ctl_placement;

/*
 * Query the cluster's nodes (timeout_ms per request) and build the table of
 * volume_id with n_pgs PGs (0: the number the volume's segments record).
 * Returns 0, or the exit status with a message in err: 1 if the volume has
 * no segments or its segments disagree on the geometry (and n_pgs is 0),
 * 2 if the nodes cannot hold a PG (fewer than three AZs with two nodes).
 */
int			ctl_placement_build(const ctl_cluster *c, uint64_t volume_id, uint32_t n_pgs,
								int timeout_ms, ctl_placement *p, char *err, size_t errlen);
void		ctl_placement_free(ctl_placement *p);

/*
 * Every PG has its six replicas ok, every node answered, no extra segments
 * and the segments agree on the geometry.
 */
bool		ctl_placement_complete(const ctl_placement *p);

/*
 * The header line, one row per (PG, replica) and per extra segment, a line
 * per down node and per PG short of six, and the summary line.
 */
void		ctl_placement_print(FILE *out, const ctl_cluster *c, const ctl_placement *p);

/* The command: build, print, and return the exit status (0, 1 or 2). */
int			ctl_placement_command(const ctl_cluster *c, uint64_t volume_id, uint32_t n_pgs,
								  int timeout_ms);

#endif							/* AURORA_CTL_PLACEMENT_H */
