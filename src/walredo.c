/*-------------------------------------------------------------------------
 *
 * walredo.c - the WAL-redo helper: `postgres --wal-redo`.
 *
 * A storage node rebuilds a page from the log by running PostgreSQL's own
 * redo routines on it, in this helper process (docs/architecture.md "The
 * storage node").  Core patch
 * 0003 only adds the --wal-redo switch, which loads this library and calls
 * aurora_walredo_main(); everything else is here:
 *
 *	- a standalone process without data directory, postmaster or real shared
 *	  memory: the "shared" memory is private (malloc'd), sized and laid out
 *	  like a server's so buffers, LWLocks and the rest work as usual;
 *	- an in-memory storage manager (through smgr_hook) that holds one page,
 *	  the target block; every other block reads as zeros and writes to it are
 *	  dropped, and every fork claims to be large enough that redo routines
 *	  never extend anything to reach a block;
 *	- the redo read-buffer filter (core hook in XLogReadBufferForRedoExtended)
 *	  so that a record touching several blocks changes only the target;
 *	- a loop reading framed requests on stdin and answering on stdout
 *	  (the framing is walredo_pipe.c; storage_service/PROTOCOL.md): begin a block, push its base page,
 *	  apply records, get the page (checksum stamped), or mask a page the way
 *	  wal_consistency_checking does.
 *
 * An ERROR while applying is remembered (with the record's LSN and resource
 * manager) and becomes the answer to the request's GET_PAGE; later records
 * of that request are not applied.  FATAL and PANIC end the process after
 * telling the node why (an EXIT frame); the node's pool starts another.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <unistd.h>

#include "access/clog.h"
#include "access/commit_ts.h"
#include "access/heapam_xlog.h"
#include "access/multixact.h"
#include "access/nbtree.h"
#include "access/subtrans.h"
#include "access/syncscan.h"
#include "access/twophase.h"
#include "access/visibilitymap.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogprefetcher.h"
#include "access/xlogreader.h"
#include "access/xlogrecord.h"
#include "access/xlogrecovery.h"
#include "access/xlogutils.h"
#include "catalog/pg_control.h"
#include "libpq/pqsignal.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "postmaster/autovacuum.h"
#include "postmaster/bgworker_internals.h"
#include "postmaster/bgwriter.h"
#include "postmaster/pgarch.h"
#include "replication/logicallauncher.h"
#include "replication/origin.h"
#include "replication/slot.h"
#include "replication/walreceiver.h"
#include "replication/walsender.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/checksum.h"
#include "storage/condition_variable.h"
#include "storage/dsm.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/pg_sema.h"
#include "storage/pg_shmem.h"
#include "storage/pmsignal.h"
#include "storage/predicate.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/procsignal.h"
#include "storage/shmem.h"
#include "storage/sinvaladt.h"
#include "storage/smgr.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "walredo_pipe.h"

/* Buffers of the helper: a request pins a handful at a time. */
#define WALREDO_SHARED_BUFFERS	"64"

/*
 * Every fork claims this many blocks: redo routines that read or zero a
 * block below the size never extend the relation to reach it (extending to
 * block 100000 of a fork would mean 100000 writes to drop).
 */
#define WALREDO_FORK_NBLOCKS	MaxBlockNumber

PGDLLEXPORT void aurora_walredo_main(int argc, char *argv[]);

/* The request being served. */
typedef enum
{
	REQ_IDLE,					/* no BEGIN yet, or GET_PAGE answered */
	REQ_BEGUN,					/* BEGIN seen; PUSH_PAGE allowed */
	REQ_APPLYING				/* at least one APPLY seen */
} RequestState;

static RequestState req_state = REQ_IDLE;
static RelFileNode target_rnode;
static ForkNumber target_fork;
static BlockNumber target_blkno;

/* The target page as the storage manager sees it (buffers may hold a newer copy). */
static PGAlignedBlock target_page;

/*
 * Whether the target page may still be all zeros: a record that references
 * the block but leaves it new was skipped by its redo routine (PostgreSQL
 * assumes a later truncation), which for us means the chain given lacked its
 * base page.
 */
static bool target_maybe_new;
static bool target_referenced;	/* by the record being applied */

/* First error of the request (TopMemoryContext), answered at GET_PAGE. */
static char *pending_error;

/* The record being applied, for error messages. */
static bool applying;
static XLogRecPtr apply_lsn;
static RmgrId apply_rmid;
static uint8 apply_info;

static XLogReaderState *reader;
static MemoryContext request_context;

/* Relations opened since the last BEGIN: their buffers are dropped at the next. */
static RelFileNode *opened_rels;
static int	n_opened_rels;
static int	max_opened_rels;

static emit_log_hook_type prev_emit_log_hook;


/*
 * FATAL and PANIC end the process: tell the node why before it only sees the
 * pipe close.  (ERROR is caught by the main loop and answered at GET_PAGE.)
 */
static void
walredo_emit_log(ErrorData *edata)
{
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);

	if (edata->elevel >= FATAL)
	{
		char		text[MAX_ERROR_TEXT + 1];

		if (applying)
			snprintf(text, sizeof(text),
					 "%s while applying WAL record at %X/%X (rmgr %s, info 0x%02X): %s",
					 edata->elevel >= PANIC ? "PANIC" : "FATAL",
					 LSN_FORMAT_ARGS(apply_lsn), GetRmgr(apply_rmid).rm_name,
					 apply_info, edata->message ? edata->message : "(no message)");
		else
			snprintf(text, sizeof(text), "%s: %s",
					 edata->elevel >= PANIC ? "PANIC" : "FATAL",
					 edata->message ? edata->message : "(no message)");
		walredo_pipe_in_log_hook = true;
		walredo_send_text(MSG_EXIT, text);
		walredo_pipe_in_log_hook = false;
	}
}


/* ---------------------------------------------------------------------
 * In-memory storage manager: one page, the target block
 * ---------------------------------------------------------------------
 */

static bool
is_target(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum)
{
	return req_state != REQ_IDLE &&
		RelFileNodeEquals(reln->smgr_rnode.node, target_rnode) &&
		forknum == target_fork && blocknum == target_blkno;
}

static void
mem_open(SMgrRelation reln)
{
	for (int i = 0; i < n_opened_rels; i++)
		if (RelFileNodeEquals(opened_rels[i], reln->smgr_rnode.node))
			return;
	if (n_opened_rels == max_opened_rels)
	{
		max_opened_rels = max_opened_rels ? max_opened_rels * 2 : 16;
		opened_rels = opened_rels
			? repalloc(opened_rels, max_opened_rels * sizeof(RelFileNode))
			: MemoryContextAlloc(TopMemoryContext, max_opened_rels * sizeof(RelFileNode));
	}
	opened_rels[n_opened_rels++] = reln->smgr_rnode.node;
}

static void
mem_close(SMgrRelation reln, ForkNumber forknum)
{
}

static void
mem_create(SMgrRelation reln, ForkNumber forknum, bool isRedo)
{
}

static bool
mem_exists(SMgrRelation reln, ForkNumber forknum)
{
	return true;
}

static void
mem_unlink(RelFileNodeBackend rnode, ForkNumber forknum, bool isRedo)
{
}

static void
mem_write(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
		  char *buffer, bool skipFsync)
{
	if (is_target(reln, forknum, blocknum))
		memcpy(target_page.data, buffer, BLCKSZ);
}

static void
mem_extend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
		   char *buffer, bool skipFsync)
{
	mem_write(reln, forknum, blocknum, buffer, skipFsync);
}

static bool
mem_prefetch(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum)
{
	return true;
}

static void
mem_read(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
		 char *buffer)
{
	if (is_target(reln, forknum, blocknum))
		memcpy(buffer, target_page.data, BLCKSZ);
	else
		MemSet(buffer, 0, BLCKSZ);
}

static void
mem_writeback(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			  BlockNumber nblocks)
{
}

static BlockNumber
mem_nblocks(SMgrRelation reln, ForkNumber forknum)
{
	return WALREDO_FORK_NBLOCKS;
}

static void
mem_truncate(SMgrRelation reln, ForkNumber forknum, BlockNumber old_blocks,
			 BlockNumber nblocks)
{
	/* smgrtruncate() already dropped the buffers past the new end */
	if (req_state != REQ_IDLE &&
		RelFileNodeEquals(reln->smgr_rnode.node, target_rnode) &&
		forknum == target_fork && target_blkno >= nblocks)
	{
		MemSet(target_page.data, 0, BLCKSZ);
		target_maybe_new = true;
	}
}

static void
mem_immedsync(SMgrRelation reln, ForkNumber forknum)
{
}

static const f_smgr walredo_smgr = {
	.smgr_init = NULL,
	.smgr_shutdown = NULL,
	.smgr_open = mem_open,
	.smgr_close = mem_close,
	.smgr_create = mem_create,
	.smgr_exists = mem_exists,
	.smgr_unlink = mem_unlink,
	.smgr_extend = mem_extend,
	.smgr_prefetch = mem_prefetch,
	.smgr_read = mem_read,
	.smgr_write = mem_write,
	.smgr_writeback = mem_writeback,
	.smgr_nblocks = mem_nblocks,
	.smgr_truncate = mem_truncate,
	.smgr_immedsync = mem_immedsync,
};

static const f_smgr *
walredo_smgr_select(BackendId backend, RelFileNode rnode)
{
	return &walredo_smgr;
}

/* Core hook: skip every block reference but the target's. */
static bool
walredo_filter(XLogReaderState *record, uint8 block_id)
{
	RelFileNode rnode;
	ForkNumber	forknum;
	BlockNumber blkno;

	XLogRecGetBlockTag(record, block_id, &rnode, &forknum, &blkno);
	if (!RelFileNodeEquals(rnode, target_rnode) || forknum != target_fork ||
		blkno != target_blkno)
		return true;
	target_referenced = true;
	return false;
}


/* ---------------------------------------------------------------------
 * Process setup
 * ---------------------------------------------------------------------
 */

/*
 * What CreateSharedMemoryAndSemaphores() does, on private memory: the helper
 * is a single process, and a System V segment or a file in /dev/shm would
 * outlive a helper that the node kills.  AsyncShmemInit() is left out (it
 * scans pg_notify/ in the data directory we do not have), and so is dynamic
 * shared memory, which nothing in redo uses.
 */
static void
create_private_shared_memory(void)
{
	PGShmemHeader *hdr;
	Size		size;
	int			numSemas;

	size = CalculateShmemSize(&numSemas);
	hdr = (PGShmemHeader *) malloc(size);
	if (hdr == NULL)
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not allocate %zu bytes of memory for the WAL-redo helper", size)));
	MemSet(hdr, 0, sizeof(PGShmemHeader));
	hdr->creatorPID = getpid();
	hdr->magic = PGShmemMagic;
	hdr->totalsize = size;
	hdr->freeoffset = MAXALIGN(sizeof(PGShmemHeader));
	InitShmemAccess(hdr);

	/* posix_sema.c seeds a key from the data directory's inode; any directory does */
	DataDir = "/";
	PGReserveSemaphores(numSemas);
	DataDir = NULL;

	InitShmemAllocation();
	CreateLWLocks();
	InitShmemIndex();
	dsm_shmem_init();
	XLOGShmemInit();
	XLogPrefetchShmemInit();
	XLogRecoveryShmemInit();
	CLOGShmemInit();
	CommitTsShmemInit();
	SUBTRANSShmemInit();
	MultiXactShmemInit();
	InitBufferPool();
	InitLocks();
	InitPredicateLocks();
	InitProcGlobal();
	CreateSharedProcArray();
	CreateSharedBackendStatus();
	TwoPhaseShmemInit();
	BackgroundWorkerShmemInit();
	CreateSharedInvalidationState();
	PMSignalShmemInit();
	ProcSignalShmemInit();
	CheckpointerShmemInit();
	AutoVacuumShmemInit();
	ReplicationSlotsShmemInit();
	ReplicationOriginShmemInit();
	WalSndShmemInit();
	WalRcvShmemInit();
	PgArchShmemInit();
	ApplyLauncherShmemInit();
	SnapMgrInit();
	BTreeShmemInit();
	SyncScanShmemInit();
	StatsShmemInit();
}

/* -c name=value arguments (debugging: -c log_min_messages=debug1). */
static void
process_arguments(int argc, char *argv[])
{
	for (int i = 2; i < argc; i++)
	{
		char	   *name;
		char	   *value;

		if (strcmp(argv[i], "-c") != 0 || i + 1 >= argc)
			ereport(FATAL,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("invalid argument for --wal-redo: \"%s\"", argv[i]),
					 errhint("The only option is -c name=value.")));
		ParseLongOption(argv[++i], &name, &value);
		if (value == NULL)
			ereport(FATAL,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("-c %s requires a value", name)));
		SetConfigOption(name, value, PGC_POSTMASTER, PGC_S_ARGV);
	}
}

static void
send_hello(void)
{
	char		body[16];

	walredo_put_u32(body, WALREDO_PROTOCOL_VERSION);
	walredo_put_u32(body + 4, PG_VERSION_NUM);
	walredo_put_u32(body + 8, BLCKSZ);
	walredo_put_u32(body + 12, XLOG_PAGE_MAGIC);
	walredo_send_frame(MSG_HELLO, body, sizeof(body), NULL, 0);
}


/* ---------------------------------------------------------------------
 * Requests
 * ---------------------------------------------------------------------
 */

/*
 * Drop every buffer of the previous request (its target and the throwaway
 * pages other blocks were zeroed into) and forget cached relation sizes.
 */
static void
reset_buffers(void)
{
	for (int i = 0; i < n_opened_rels; i++)
	{
		SMgrRelation reln = smgropen(opened_rels[i], InvalidBackendId);

		DropRelFileNodesAllBuffers(&reln, 1);
	}
	smgrcloseall();
	n_opened_rels = 0;
}

static void
handle_begin(const char *body, uint32 len)
{
	uint8		fork;

	if (len != BEGIN_BODY_SIZE)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("BEGIN body is %u bytes, expected %d", len, BEGIN_BODY_SIZE)));
	fork = (uint8) body[12];
	if (fork > MAX_FORKNUM)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("BEGIN names fork %u, the highest is %d", fork, MAX_FORKNUM)));

	req_state = REQ_IDLE;		/* the storage manager forgets the old target */
	reset_buffers();

	target_rnode.spcNode = walredo_get_u32(body);
	target_rnode.dbNode = walredo_get_u32(body + 4);
	target_rnode.relNode = walredo_get_u32(body + 8);
	target_fork = (ForkNumber) fork;
	target_blkno = walredo_get_u32(body + 13);
	if (target_blkno == InvalidBlockNumber)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("BEGIN names block number %u", target_blkno)));
	MemSet(target_page.data, 0, BLCKSZ);
	target_maybe_new = true;
	if (pending_error)
		pfree(pending_error);
	pending_error = NULL;
	req_state = REQ_BEGUN;
}

static void
handle_push_page(const char *body, uint32 len)
{
	if (req_state != REQ_BEGUN)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("PUSH_PAGE must follow BEGIN directly")));
	if (len != BLCKSZ)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("PUSH_PAGE body is %u bytes, expected %d", len, BLCKSZ)));
	memcpy(target_page.data, body, BLCKSZ);
	target_maybe_new = PageIsNew((Page) target_page.data);
}

/*
 * Resource managers (and record kinds) that never change a relation page.
 * Their redo routines would act on the data directory or on the state of a
 * starting server (control file, transaction status, files of databases),
 * none of which the helper has, so their records are accepted and skipped.
 */
static bool
record_changes_no_page(RmgrId rmid, uint8 info)
{
	switch (rmid)
	{
		case RM_XLOG_ID:
			return info != XLOG_FPI && info != XLOG_FPI_FOR_HINT;
		case RM_XACT_ID:
		case RM_CLOG_ID:
		case RM_DBASE_ID:
		case RM_TBLSPC_ID:
		case RM_MULTIXACT_ID:
		case RM_RELMAP_ID:
		case RM_STANDBY_ID:
		case RM_COMMIT_TS_ID:
		case RM_REPLORIGIN_ID:
		case RM_LOGICALMSG_ID:
			return true;
		case RM_HEAP2_ID:
			return (info & XLOG_HEAP_OPMASK) == XLOG_HEAP2_REWRITE ||
				(info & XLOG_HEAP_OPMASK) == XLOG_HEAP2_NEW_CID;
		default:
			return false;
	}
}

/* Read the target page through the buffer manager (it may be newer there). */
static void
read_target(char *out)
{
	Buffer		buf;

	buf = ReadBufferWithoutRelcache(target_rnode, target_fork, target_blkno,
									RBM_NORMAL, NULL, true);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(out, BufferGetPage(buf), BLCKSZ);
	UnlockReleaseBuffer(buf);
}

static void
handle_apply(char *body, uint32 len)
{
	XLogRecPtr	start_lsn;
	XLogRecPtr	end_lsn;
	XLogRecord *rec;
	uint32		rec_len;
	pg_crc32c	crc;
	DecodedXLogRecord *decoded;
	char	   *errormsg = NULL;

	if (req_state == REQ_IDLE)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("APPLY without BEGIN")));
	if (len < APPLY_HEADER_SIZE + SizeOfXLogRecord)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("APPLY body is %u bytes, shorter than a WAL record", len)));
	req_state = REQ_APPLYING;
	if (pending_error)
		return;					/* the request failed already */

	start_lsn = walredo_get_u64(body);
	end_lsn = walredo_get_u64(body + 8);
	rec_len = len - APPLY_HEADER_SIZE;
	/* the record must be aligned for DecodeXLogRecord: copy it */
	rec = (XLogRecord *) palloc(rec_len);
	memcpy(rec, body + APPLY_HEADER_SIZE, rec_len);

	apply_lsn = start_lsn;
	apply_rmid = rec->xl_rmid;
	apply_info = rec->xl_info & ~XLR_INFO_MASK;

	if (!RmgrIdIsValid(rec->xl_rmid) || !RmgrIdExists(rec->xl_rmid))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("WAL record at %X/%X has unknown resource manager ID %u",
						LSN_FORMAT_ARGS(start_lsn), rec->xl_rmid)));
	applying = true;
	if (rec->xl_tot_len != rec_len)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("record length %u does not match the %u bytes sent",
						rec->xl_tot_len, rec_len)));
	if (end_lsn <= start_lsn)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("end LSN %X/%X is not after the start",
						LSN_FORMAT_ARGS(end_lsn))));

	/* the same check as xlogreader.c's ValidXLogRecord() */
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, ((char *) rec) + SizeOfXLogRecord, rec_len - SizeOfXLogRecord);
	COMP_CRC32C(crc, (char *) rec, offsetof(XLogRecord, xl_crc));
	FIN_CRC32C(crc);
	if (!EQ_CRC32C(rec->xl_crc, crc))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("incorrect resource manager data checksum")));

	if (record_changes_no_page(rec->xl_rmid, apply_info))
	{
		applying = false;
		return;
	}

	decoded = palloc(DecodeXLogRecordRequiredSpace(rec_len));
	if (!DecodeXLogRecord(reader, decoded, rec, start_lsn, &errormsg))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decode: %s", errormsg ? errormsg : "malformed record")));
	decoded->next_lsn = end_lsn;
	reader->record = decoded;
	reader->ReadRecPtr = start_lsn;
	reader->EndRecPtr = end_lsn;

	target_referenced = false;
	GetRmgr(rec->xl_rmid).rm_redo(reader);
	reader->record = NULL;

	/*
	 * A redo routine silently skips a block that is all zeros (PostgreSQL
	 * expects a later truncation or drop to explain it); here it means that
	 * the records given do not start from the page's base.
	 */
	if (target_referenced && target_maybe_new)
	{
		PGAlignedBlock page;

		read_target(page.data);
		if (PageIsNew((Page) page.data))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the record changes block %u of fork %d of relation %u/%u/%u, "
							"which has no page yet (no base image or initializing record before it)",
							target_blkno, target_fork, target_rnode.spcNode,
							target_rnode.dbNode, target_rnode.relNode)));
		target_maybe_new = false;
	}
	applying = false;
}

static void
handle_get_page(uint32 len)
{
	PGAlignedBlock page;

	if (len != 0)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("GET_PAGE has a %u-byte body", len)));
	if (req_state == REQ_IDLE)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("GET_PAGE without BEGIN")));

	if (pending_error == NULL)
		read_target(page.data);	/* may ERROR (a pushed page that is not a page) */

	/* from here on nothing can fail: the request ends with this answer */
	req_state = REQ_IDLE;
	if (pending_error)
	{
		walredo_send_text(MSG_ERROR, pending_error);
		pfree(pending_error);
		pending_error = NULL;
		return;
	}
	if (!PageIsNew((Page) page.data))
		((PageHeader) page.data)->pd_checksum = pg_checksum_page(page.data, target_blkno);
	walredo_send_frame(MSG_PAGE, page.data, BLCKSZ, NULL, 0);
}

static void
handle_mask(const char *body, uint32 len)
{
	PGAlignedBlock page;
	uint8		rmid;
	BlockNumber blkno;

	if (len != MASK_HEADER_SIZE + BLCKSZ)
		ereport(FATAL,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("MASK body is %u bytes, expected %d", len, MASK_HEADER_SIZE + BLCKSZ)));
	rmid = (uint8) body[0];
	blkno = walredo_get_u32(body + 1);
	if (!RmgrIdExists(rmid) || GetRmgr(rmid).rm_mask == NULL)
	{
		char		text[100];

		snprintf(text, sizeof(text), "resource manager %u has no masking function", rmid);
		walredo_send_text(MSG_ERROR, text);
		return;
	}
	memcpy(page.data, body + MASK_HEADER_SIZE, BLCKSZ);
	GetRmgr(rmid).rm_mask(page.data, blkno);
	walredo_send_frame(MSG_PAGE, page.data, BLCKSZ, NULL, 0);
}

/*
 * An ERROR in a request: log it, clean up like an auxiliary process does,
 * and return its text (TopMemoryContext), naming the record being applied.
 */
static char *
recover_from_error(void)
{
	ErrorData  *edata;
	char	   *text;

	HOLD_INTERRUPTS();
	EmitErrorReport();			/* to stderr: the node's log */
	MemoryContextSwitchTo(TopMemoryContext);
	edata = CopyErrorData();
	FlushErrorState();

	LWLockReleaseAll();
	ConditionVariableCancelSleep();
	AbortBufferIO();
	UnlockBuffers();
	ReleaseAuxProcessResources(false);
	AtEOXact_Buffers(false);
	AtEOXact_SMgr();
	/*
	 * Relations still owned by fake relcache entries of the failed redo
	 * routine: disown them now, while those entries (in the request's memory
	 * context, reset next) still exist.
	 */
	smgrcloseall();
	AtEOXact_Files(false);
	AtEOXact_HashTables(false);
	error_context_stack = NULL;
	reader->record = NULL;

	if (applying)
		text = psprintf("could not apply WAL record at %X/%X (rmgr %s, info 0x%02X): %s",
						LSN_FORMAT_ARGS(apply_lsn), GetRmgr(apply_rmid).rm_name,
						apply_info, edata->message ? edata->message : "(no message)");
	else
		text = pstrdup(edata->message ? edata->message : "(no message)");
	applying = false;
	FreeErrorData(edata);
	RESUME_INTERRUPTS();
	return text;
}


/* ---------------------------------------------------------------------
 * Entry point
 * ---------------------------------------------------------------------
 */

void
aurora_walredo_main(int argc, char *argv[])
{
	sigjmp_buf	local_sigjmp_buf;
	char		hdr[FRAME_HEADER_SIZE];
	volatile char msg_type = 0;
	volatile bool hello_sent = false;

	Assert(!IsUnderPostmaster);

	/* like a compute with the aurora storage manager (core patch 0005) */
	heap_visible_sets_page_lsn = true;

	/* stdout is the pipe to the node; PostgreSQL logs go to stderr */
	InitStandaloneProcess(argv[0]);
	SetProcessingMode(InitProcessing);
	InitializeGUCOptions();
	SetConfigOption("shared_buffers", WALREDO_SHARED_BUFFERS, PGC_POSTMASTER, PGC_S_OVERRIDE);
	SetConfigOption("max_connections", "1", PGC_POSTMASTER, PGC_S_OVERRIDE);
	SetConfigOption("max_worker_processes", "0", PGC_POSTMASTER, PGC_S_OVERRIDE);
	SetConfigOption("max_wal_senders", "0", PGC_POSTMASTER, PGC_S_OVERRIDE);
	SetConfigOption("max_prepared_transactions", "0", PGC_POSTMASTER, PGC_S_OVERRIDE);
	process_arguments(argc, argv);

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = walredo_emit_log;

	InitializeMaxBackends();
	create_private_shared_memory();
	PgStartTime = GetCurrentTimestamp();

	smgr_hook = walredo_smgr_select;
	redo_read_buffer_filter_hook = walredo_filter;

	InitAuxiliaryProcess();
	BaseInit();
	CreateAuxProcessResourceOwner();
	SetProcessingMode(NormalProcessing);

	/* redo routines only work "in recovery"; no hot standby to look after */
	InRecovery = true;
	standbyState = STANDBY_DISABLED;

	for (int rmid = 0; rmid <= RM_MAX_ID; rmid++)
		if (RmgrIdExists(rmid) && GetRmgr(rmid).rm_startup != NULL)
			GetRmgr(rmid).rm_startup();

	reader = XLogReaderAllocate(wal_segment_size, NULL,
								XL_ROUTINE(.page_read = NULL), NULL);
	if (reader == NULL)
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	request_context = AllocSetContextCreate(TopMemoryContext,
											"WAL-redo request",
											ALLOCSET_DEFAULT_SIZES);

	/* the node stops a helper with SIGKILL or by closing stdin */
	PG_SETMASK(&UnBlockSig);

	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		char	   *text = recover_from_error();

		if (msg_type == MSG_MASK)
			walredo_send_text(MSG_ERROR, text);
		else if (msg_type == MSG_GET_PAGE)
		{
			/* reading the page failed: the request ends with the error */
			req_state = REQ_IDLE;
			walredo_send_text(MSG_ERROR, text);
		}
		else if (pending_error == NULL && req_state != REQ_IDLE)
		{
			/* answered at GET_PAGE; later records of the request are skipped */
			pending_error = text;
			text = NULL;
		}
		if (text)
			pfree(text);
	}
	PG_exception_stack = &local_sigjmp_buf;

	if (!hello_sent)
	{
		send_hello();
		hello_sent = true;
	}

	for (;;)
	{
		uint32		len;
		char	   *body;

		MemoryContextSwitchTo(request_context);
		MemoryContextReset(request_context);
		msg_type = 0;

		if (!walredo_read_all(hdr, sizeof(hdr), true))
			proc_exit(0);		/* the node closed the pipe */
		len = walredo_get_u32(hdr + 1);
		if (len > MAX_BODY_SIZE)
			ereport(FATAL,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("message of type 0x%02X has a %u-byte body, more than a WAL record can be",
							(uint8) hdr[0], len)));
		body = len > 0 ? palloc(len) : NULL;
		if (len > 0)
			walredo_read_all(body, len, false);
		msg_type = hdr[0];

		switch (msg_type)
		{
			case MSG_BEGIN:
				handle_begin(body, len);
				break;
			case MSG_PUSH_PAGE:
				handle_push_page(body, len);
				break;
			case MSG_APPLY:
				handle_apply(body, len);
				break;
			case MSG_GET_PAGE:
				handle_get_page(len);
				break;
			case MSG_MASK:
				handle_mask(body, len);
				break;
			default:
				ereport(FATAL,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("unknown message type 0x%02X on the WAL-redo pipe",
								(uint8) msg_type)));
		}
	}
}
