/*
 * compute_volume.c
 *	  The volume as this compute sees it: the settings that describe it
 *	  (aurora.shipping: whether the compute writes to it at all,
 *	  aurora.protection_groups, aurora.blocks_per_segment, the write and
 *	  read quorums, aurora.request_timeout), the PG a block lies in, and the
 *	  six storage nodes of a PG (the storage contract's placement,
 *	  storage_service/common/volume.c, over aurora.storage_nodes).
 *
 *	  The shipper (routing records), the reader (asking for pages) and the
 *	  storage manager all ask here, so none of them asks another; this
 *	  module calls none of them.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "compute_volume.h"
#include "node_list.h"
#include "quorum.h"

bool		aurora_shipping = false;
int			aurora_protection_groups = 4;
int			aurora_blocks_per_segment = 131072;
int			aurora_write_quorum = 4;
int			aurora_read_quorum = 3;
int			aurora_request_timeout_ms = 1000;

/* Define the volume's settings (from _PG_init). */
void
aurora_compute_volume_define_gucs(void)
{
	DefineCustomBoolVariable("aurora.shipping",
							 "Ship the compute's WAL to the storage nodes.",
							 "Starts the WAL shipper background worker, and makes every commit "
							 "wait until the volume durable LSN covers it.",
							 &aurora_shipping,
							 false,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("aurora.write_quorum",
							"Acknowledgements out of six segments that make a write durable.",
							NULL,
							&aurora_write_quorum,
							4, 1, AURORA_PG_COPIES,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("aurora.read_quorum",
							"Segments out of six that must answer a quorum read (recovery).",
							NULL,
							&aurora_read_quorum,
							3, 1, AURORA_PG_COPIES,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("aurora.request_timeout",
							"Time to wait for a storage node to answer one request.",
							NULL,
							&aurora_request_timeout_ms,
							1000, 1, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("aurora.protection_groups",
							"Number of protection groups of the volume (fixed when it is created).",
							NULL,
							&aurora_protection_groups,
							4, 1, 65536,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("aurora.blocks_per_segment",
							"Blocks of one relation fork that stay together in one protection group.",
							NULL,
							&aurora_blocks_per_segment,
							131072, 1, 1 << 30,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}

/*
 * The two quorums are only meaningful together (writes must overlap each
 * other and every read), so they are checked together once both are set.
 */
void
aurora_compute_volume_check(void)
{
	char		error[256];

	if (!aurora_quorum_config_valid(AURORA_PG_COPIES, aurora_write_quorum,
									aurora_read_quorum, error, sizeof(error)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid aurora quorum configuration: aurora.write_quorum = %d, aurora.read_quorum = %d",
						aurora_write_quorum, aurora_read_quorum),
				 errdetail("%s", error)));
}

void
aurora_volume_geometry(aurora_geometry *g)
{
	g->n_pgs = (uint32) aurora_protection_groups;
	g->blocks_per_segment = (uint32) aurora_blocks_per_segment;
}

/* The PG that holds the block (common/volume.c). */
int
aurora_tag_pg(const BufferTag *tag)
{
	aurora_geometry g;
	aurora_block_ref b;

	aurora_volume_geometry(&g);
	b.spc_oid = tag->rnode.spcNode;
	b.db_oid = tag->rnode.dbNode;
	b.rel_number = tag->rnode.relNode;
	b.fork = (uint8) tag->forkNum;
	b.blkno = tag->blockNum;
	return (int) aurora_block_pg(&g, &b);
}

/*
 * The six members of protection group pg among the configured nodes (the
 * storage contract's placement, common/volume.c); ERROR if there is none.
 */
void
aurora_place_configured_pg(int pg, aurora_member *members)
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
