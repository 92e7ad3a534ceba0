/*
 * smgr_probe.c
 *	  Test module for the core patch 0001-smgr-hook: when preloaded it installs
 *	  smgr_hook and smgr_init_hook and routes every relation through a copy of
 *	  md.c's function table whose entries count their calls.  The counts (per
 *	  backend) are visible through smgr_probe_counts(), so a test can show that
 *	  a storage manager supplied by an extension really receives the server's
 *	  storage calls, and that data written through it reads back.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/smgr.h"
#include "utils/builtins.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static const f_smgr *md_smgr;
static f_smgr probe_smgr;
static bool init_hook_called = false;
static int64 n_opens,
			n_creates,
			n_extends,
			n_reads,
			n_writes,
			n_nblocks;

static void
probe_open(SMgrRelation reln)
{
	n_opens++;
	md_smgr->smgr_open(reln);
}

static void
probe_create(SMgrRelation reln, ForkNumber forknum, bool isRedo)
{
	n_creates++;
	md_smgr->smgr_create(reln, forknum, isRedo);
}

static void
probe_extend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			 char *buffer, bool skipFsync)
{
	n_extends++;
	md_smgr->smgr_extend(reln, forknum, blocknum, buffer, skipFsync);
}

static void
probe_read(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
		   char *buffer)
{
	n_reads++;
	md_smgr->smgr_read(reln, forknum, blocknum, buffer);
}

static void
probe_write(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			char *buffer, bool skipFsync)
{
	n_writes++;
	md_smgr->smgr_write(reln, forknum, blocknum, buffer, skipFsync);
}

static BlockNumber
probe_nblocks(SMgrRelation reln, ForkNumber forknum)
{
	n_nblocks++;
	return md_smgr->smgr_nblocks(reln, forknum);
}

static const f_smgr *
probe_smgr_hook(BackendId backend, RelFileNode rnode)
{
	return &probe_smgr;
}

static void
probe_init_hook(void)
{
	init_hook_called = true;
}

void
_PG_init(void)
{
	RelFileNode none = {0, 0, 0};

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("smgr_probe must be loaded via shared_preload_libraries")));

	md_smgr = smgr_standard(InvalidBackendId, none);
	probe_smgr = *md_smgr;
	probe_smgr.smgr_open = probe_open;
	probe_smgr.smgr_create = probe_create;
	probe_smgr.smgr_extend = probe_extend;
	probe_smgr.smgr_read = probe_read;
	probe_smgr.smgr_write = probe_write;
	probe_smgr.smgr_nblocks = probe_nblocks;

	smgr_hook = probe_smgr_hook;
	smgr_init_hook = probe_init_hook;
}

PG_FUNCTION_INFO_V1(smgr_probe_counts);

Datum
smgr_probe_counts(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	values[0] = BoolGetDatum(init_hook_called);
	values[1] = Int64GetDatum(n_opens);
	values[2] = Int64GetDatum(n_creates);
	values[3] = Int64GetDatum(n_extends);
	values[4] = Int64GetDatum(n_reads);
	values[5] = Int64GetDatum(n_writes);
	values[6] = Int64GetDatum(n_nblocks);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
