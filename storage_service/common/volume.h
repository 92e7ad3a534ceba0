/*
 * volume.h - volume geometry (docs/architecture.md, "Volume geometry"):
 * which protection group a block belongs to, and which six storage nodes
 * hold each protection group.
 *
 * Both are part of the storage contract, not tuning: once a volume exists,
 * every record of a block must keep going to the same PG and every PG to the
 * same six members, so the functions here are pure, deterministic and
 * documented bit for bit in PROTOCOL.md ("Volume geometry").  The compute's
 * shipper routes with them; storage tools and tests use them to know where
 * things are.  No PostgreSQL headers: a block is described by plain numbers.
 */
#ifndef AURORA_VOLUME_H
#define AURORA_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logmsg.h"				/* aurora_member */

#define AURORA_VOLUME_MAX_PGS				65536u
#define AURORA_VOLUME_MAX_BLOCKS_PER_SEGMENT	(1u << 30)

/*
 * The id of the volume a compute writes (its segments are named by it).  One
 * compute has one volume; aurora-ctl uses it as its default.
 */
#define AURORA_COMPUTE_VOLUME_ID			1

/* Fixed when the volume is created ("Volume geometry"). */
typedef struct aurora_geometry
{
	uint32_t	n_pgs;			/* PG 0 .. n_pgs - 1 */
	uint32_t	blocks_per_segment; /* blocks of one relation fork per chunk */
} aurora_geometry;

/* 1 <= n_pgs <= MAX_PGS and 1 <= blocks_per_segment <= MAX; err says which. */
bool		aurora_geometry_valid(const aurora_geometry *g, char *err, size_t errlen);

/* PostgreSQL's fork numbers (ForkNumber), as the wire carries them */
#define AURORA_FORK_MAIN	0
#define AURORA_FORK_FSM		1
#define AURORA_FORK_VM		2
#define AURORA_FORK_INIT	3

/* A block as PostgreSQL names it (RelFileNode + fork + block number). */
typedef struct aurora_block_ref
{
	uint32_t	spc_oid;
	uint32_t	db_oid;
	uint32_t	rel_number;
	uint8_t		fork;
	uint32_t	blkno;
} aurora_block_ref;

/*
 * PostgreSQL's fork numbers and its visibility map's layout (8192-byte
 * pages, a 24-byte header, two bits per heap block), which routing needs
 * and which storage cannot take from PostgreSQL's headers.
 */
#define AURORA_MAIN_FORK				0
#define AURORA_VM_FORK					2
#define AURORA_HEAP_BLOCKS_PER_VM_PAGE	((8192 - 24) * 4)

/*
 * A block on the wire (PROTOCOL.md 5.9, 11): u32 spc_oid, u32 db_oid, u32
 * rel_number, u8 fork, u32 blkno, little-endian (17 bytes).
 */
#define AURORA_BLOCK_TAG_SIZE 17
void		aurora_block_tag_put(aurora_buf *b, const aurora_block_ref *ref);
void		aurora_block_tag_get(aurora_buf *b, aurora_block_ref *ref);

/*
 * The PG of a block: chunk = blkno / blocks_per_segment, and the (relation,
 * fork, chunk) triple hashed onto n_pgs; a visibility-map page is routed as
 * the main-fork chunk of the first heap block it covers (PROTOCOL.md 10).
 * Consecutive blocks of a relation stay together up to a chunk, so one
 * chunk's records share a PG's log.
 * Records that reference no block go to PG 0 (the caller's rule).
 */
uint32_t	aurora_block_pg(const aurora_geometry *g, const aurora_block_ref *b);

/*
 * The six members of PG pg chosen from the n nodes: two nodes in each of
 * three distinct AZs, so losing an AZ leaves four copies (a write quorum)
 * and an AZ plus one node leaves three (a read quorum).  AZs with fewer
 * than two nodes are not used.  The choice depends only on the set of
 * nodes (they are ordered by AZ name, then node id), not on their order in
 * nodes[], and it rotates so that over many PGs every AZ and every node of
 * an AZ carries the same number of segments, give or take one.  members[i]
 * becomes replica i.  Returns 0, or -1 with err if fewer than three AZs
 * have two nodes, or nodes repeat an id.
 */
int			aurora_place_pg(const aurora_member *nodes, int n, uint32_t pg,
							aurora_member members[AURORA_PG_COPIES], char *err, size_t errlen);

#endif							/* AURORA_VOLUME_H */
