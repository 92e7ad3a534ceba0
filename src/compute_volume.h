/*
 * compute_volume.h
 *	  The volume as this compute sees it (compute_volume.c): its geometry
 *	  and quorums (the aurora.* settings that describe it), which PG a block
 *	  lies in, and which storage nodes hold a PG.
 */
#ifndef AURORA_COMPUTE_VOLUME_H
#define AURORA_COMPUTE_VOLUME_H

#include "storage/buf_internals.h"

#include "volume.h"

extern bool aurora_shipping;
extern int	aurora_protection_groups;
extern int	aurora_blocks_per_segment;
extern int	aurora_write_quorum;
extern int	aurora_read_quorum;
extern int	aurora_request_timeout_ms;

extern void aurora_compute_volume_define_gucs(void);
extern void aurora_compute_volume_check(void);
extern void aurora_volume_geometry(aurora_geometry *g);
extern int	aurora_tag_pg(const BufferTag *tag);
extern void aurora_place_configured_pg(int pg, aurora_member *members);

#endif							/* AURORA_COMPUTE_VOLUME_H */
