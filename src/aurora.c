/*
 * aurora.c
 *	  Entry point of the aurora extension: module initialization, the
 *	  aurora.* settings, and aurora.version().
 *
 *	  The library must be loaded through shared_preload_libraries: later
 *	  parts (the storage manager, the WAL shipper, shared watermarks) install
 *	  hooks and shared memory that only exist when the library is loaded at
 *	  postmaster start.  Loading it any other way (CREATE EXTENSION, LOAD) is
 *	  refused with a hint instead of half-working.
 */
#include "postgres.h"

#include "access/visibilitymap.h"
#include "access/xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "aurora.h"
#include "smgr.h"
#include "quorum.h"
#include "version.h"

PG_MODULE_MAGIC;

char	   *aurora_storage_nodes_string = NULL;
int			aurora_write_quorum = 4;
int			aurora_read_quorum = 3;
int			aurora_request_timeout_ms = 1000;

void		_PG_init(void);

static const char *const aurora_guc_names[] = {
	"aurora.storage_nodes",
	"aurora.write_quorum",
	"aurora.read_quorum",
	"aurora.request_timeout",
	"aurora.shipping",
	"aurora.protection_groups",
	"aurora.blocks_per_segment",
	"aurora.storage_manager",
	"aurora.local_store_size",
	"aurora.local_page_cache",
	"aurora.relsize_cache_size",
	"aurora.lwlsn_cache_size",
	"aurora.eviction_wait",
};

/*
 * A value given for a custom setting before its module is loaded (in
 * postgresql.conf or on the command line) is held as a placeholder.  When the
 * module defines the setting, PostgreSQL only WARNs about an invalid
 * placeholder value and silently keeps the default; for settings that say
 * where the data lives and how many copies make it durable that is not
 * acceptable, so the raw values are captured first and checked again after
 * definition, failing the start with PostgreSQL's own message.
 */
static void
capture_placeholders(char **raw)
{
	for (int i = 0; i < lengthof(aurora_guc_names); i++)
	{
		const char *v = GetConfigOption(aurora_guc_names[i], true, false);

		raw[i] = v ? pstrdup(v) : NULL;
	}
}

static void
recheck_placeholders(char **raw)
{
	for (int i = 0; i < lengthof(aurora_guc_names); i++)
	{
		if (raw[i] == NULL)
			continue;
		/* changeVal = false: validate only, raising ERROR when invalid */
		(void) set_config_option(aurora_guc_names[i], raw[i],
								 PGC_POSTMASTER, PGC_S_FILE,
								 GUC_ACTION_SET, false, ERROR, false);
	}
}

void
_PG_init(void)
{
	char		error[256];
	char	   *raw[lengthof(aurora_guc_names)];

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aurora must be loaded via shared_preload_libraries"),
				 errhint("Add aurora to shared_preload_libraries in postgresql.conf and restart the server, then run CREATE EXTENSION aurora.")));

	capture_placeholders(raw);

	DefineCustomStringVariable("aurora.storage_nodes",
							   "Storage nodes of the volume, as comma-separated id:az:url entries.",
							   "At least three availability zones with two nodes each, e.g. "
							   "'a1:a:tcp://127.0.0.1:7101, a2:a:tcp://127.0.0.1:7102, ...'.",
							   &aurora_storage_nodes_string,
							   "",
							   PGC_POSTMASTER,
							   0,
							   aurora_check_storage_nodes,
							   aurora_assign_storage_nodes,
							   NULL);

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

	DefineCustomBoolVariable("aurora.shipping",
							 "Ship the compute's WAL to the storage nodes (work in progress).",
							 "Starts the WAL shipper background worker, and makes every commit "
							 "wait until the volume durable LSN covers it.",
							 &aurora_shipping,
							 false,
							 PGC_POSTMASTER,
							 0,
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

	aurora_smgr_define_gucs();

	MarkGUCPrefixReserved("aurora");
	recheck_placeholders(raw);

	/*
	 * The two quorums are only meaningful together (writes must overlap each
	 * other and every read), so they are checked together once both are set.
	 */
	if (!aurora_quorum_config_valid(AURORA_PG_COPIES, aurora_write_quorum,
									aurora_read_quorum, error, sizeof(error)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid aurora quorum configuration: aurora.write_quorum = %d, aurora.read_quorum = %d",
						aurora_write_quorum, aurora_read_quorum),
				 errdetail("%s", error)));

	if (aurora_shipping)
	{
		/* shipping to nowhere would leave every commit waiting forever */
		if (aurora_configured_nodes()->count == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("aurora.shipping is on but aurora.storage_nodes is empty"),
					 errhint("Name the storage nodes (id:az:url, ...) or turn aurora.shipping off.")));
		/* the shipper's slot keeps WAL in pg_wal until storage holds it */
		if (max_replication_slots <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("aurora.shipping needs a replication slot, but max_replication_slots = 0"),
					 errhint("Set max_replication_slots to at least 1 (the default is 10).")));
		if (wal_level < WAL_LEVEL_REPLICA)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("aurora.shipping needs wal_level replica or logical"),
					 errdetail("With wal_level = minimal some changes are not WAL-logged, so storage could not hold them."),
					 errhint("Set wal_level = replica (the default).")));
		aurora_shipper_register();
		aurora_commit_wait_register();
	}
	if (aurora_storage_manager)
	{
		/* pages are dropped once VDL covers them: that needs the shipper */
		if (!aurora_shipping)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("aurora.storage_manager needs aurora.shipping"),
					 errdetail("Storage can only serve pages whose WAL the compute ships to it."),
					 errhint("Turn aurora.shipping on, or aurora.storage_manager off.")));
		aurora_smgr_register();
		/* the heap page's LSN must cover XLOG_HEAP2_VISIBLE (core patch 0005) */
		heap_visible_sets_page_lsn = true;
	}
}

PG_FUNCTION_INFO_V1(aurora_version);

Datum
aurora_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(AURORA_SERVICE_VERSION));
}
