/*
 * aurora.c
 *	  Entry point of the aurora extension: _PG_init asks each module to
 *	  define its aurora.* settings, then, once every setting is final, to
 *	  check them and install its hooks and shared memory.  Nothing else
 *	  lives here.
 *
 *	  The library must be loaded through shared_preload_libraries: the
 *	  storage manager, the WAL shipper and the shared watermarks install
 *	  hooks and shared memory that only exist when the library is loaded at
 *	  postmaster start.  Loading it any other way (CREATE EXTENSION, LOAD) is
 *	  refused with a hint instead of half-working.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "compute_volume.h"
#include "lsn_allocation_limit.h"
#include "node_list.h"
#include "page_reader.h"
#include "redo_filter.h"
#include "shipper.h"
#include "volume_start.h"
#include "smgr.h"
#include "start_state_writer.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static const char *const aurora_guc_names[] = {
	"aurora.storage_nodes",
	"aurora.write_quorum",
	"aurora.read_quorum",
	"aurora.request_timeout",
	"aurora.read_timeout",
	"aurora.shipping",
	"aurora.protection_groups",
	"aurora.blocks_per_segment",
	"aurora.storage_manager",
	"aurora.local_store_size",
	"aurora.local_page_cache",
	"aurora.relsize_cache_size",
	"aurora.lwlsn_cache_size",
	"aurora.eviction_wait",
	"aurora.lsn_allocation_limit",
	"aurora.store_start_states",
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
	char	   *raw[lengthof(aurora_guc_names)];

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aurora must be loaded via shared_preload_libraries"),
				 errhint("Add aurora to shared_preload_libraries in postgresql.conf and restart the server, then run CREATE EXTENSION aurora.")));

	capture_placeholders(raw);
	aurora_node_list_define_gucs();
	aurora_compute_volume_define_gucs();
	aurora_smgr_define_gucs();
	aurora_page_reader_define_gucs();
	aurora_start_state_writer_define_gucs();
	aurora_lsn_allocation_limit_define_gucs();
	MarkGUCPrefixReserved("aurora");
	recheck_placeholders(raw);

	aurora_compute_volume_check();
	aurora_shipper_init();
	/* after the shipper's own checks: a wrong setting is the first thing to say */
	if (aurora_shipping)
		aurora_volume_start_init();
	aurora_smgr_init();
	aurora_redo_filter_init();
	if (aurora_shipping)
		aurora_lsn_allocation_limit_init();
}
