/*
 * shipper.c
 *	  The WAL shipper background worker (WORK IN PROGRESS, issue 4).
 *
 *	  The shipper is a physical replication client of its own compute: it
 *	  connects to the postmaster with libpqwalreceiver (the library the
 *	  stock walreceiver and logical replication workers use), so WAL reaches
 *	  it in order straight from a walsender, and the position it reports
 *	  back as "flushed" is what PostgreSQL's synchronous replication waits
 *	  for.  With synchronous_standby_names naming the shipper, a commit is
 *	  acknowledged only once the shipper reports it durable: the plan is to
 *	  report VDL there (DESIGN.md 7).
 *
 *	  Received WAL is kept in a contiguous buffer and cut into records with
 *	  PostgreSQL's own XLogReader; its page_read callback blocks (waiting on
 *	  the latch and the socket) until the walsender has sent the bytes asked
 *	  for.  Each record is routed to the PGs of the blocks it references
 *	  (storage_service/common/volume.c).
 *
 *	  State of this spike: streaming, record cutting and routing work; the
 *	  position reported is the end of the last decoded record (not yet VDL),
 *	  nothing is sent to storage yet, and nothing is in shared memory.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "access/xlogrecord.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "replication/walreceiver.h"
#include "storage/latch.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "aurora.h"
#include "volume.h"

PGDLLEXPORT void aurora_shipper_main(Datum main_arg);

/* WAL received from the walsender: [start, start + len) */
typedef struct StreamBuffer
{
	XLogRecPtr	start;
	char	   *data;
	Size		len;
	Size		cap;
} StreamBuffer;

static WalReceiverConn *wrconn = NULL;
static StreamBuffer stream;
static XLogRecPtr reported = InvalidXLogRecPtr; /* last flush position sent */
static XLogRecPtr decoded_end = InvalidXLogRecPtr;
static TimestampTz last_feedback = 0;

void
aurora_shipper_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "aurora");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "aurora_shipper_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "aurora WAL shipper");
	snprintf(worker.bgw_type, BGW_MAXLEN, "aurora WAL shipper");
	RegisterBackgroundWorker(&worker);
}

/* Standby status update: written = flushed = applied = pos. */
static void
send_feedback(XLogRecPtr pos, bool force)
{
	StringInfoData reply;
	TimestampTz now = GetCurrentTimestamp();

	if (!force && pos == reported &&
		!TimestampDifferenceExceeds(last_feedback, now, 1000))
		return;
	initStringInfo(&reply);
	pq_sendbyte(&reply, 'r');
	pq_sendint64(&reply, pos);
	pq_sendint64(&reply, pos);
	pq_sendint64(&reply, pos);
	pq_sendint64(&reply, now);
	pq_sendbyte(&reply, 0);
	walrcv_send(wrconn, reply.data, reply.len);
	pfree(reply.data);
	reported = pos;
	last_feedback = now;
}

static void
stream_append(XLogRecPtr at, const char *data, Size n)
{
	if (stream.len == 0)
		stream.start = at;
	if (at != stream.start + stream.len)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("aurora shipper: WAL stream jumped from %X/%X to %X/%X",
						LSN_FORMAT_ARGS(stream.start + stream.len), LSN_FORMAT_ARGS(at))));
	if (stream.len + n > stream.cap)
	{
		Size		cap = Max(stream.cap * 2, stream.len + n + XLOG_BLCKSZ);

		stream.data = stream.data ? repalloc(stream.data, cap) : palloc(cap);
		stream.cap = cap;
	}
	memcpy(stream.data + stream.len, data, n);
	stream.len += n;
}

/* Forget WAL before keep (rounded down to a page: the reader rereads pages). */
static void
stream_trim(XLogRecPtr keep)
{
	XLogRecPtr	page = keep - (keep % XLOG_BLCKSZ);
	Size		drop;

	if (page <= stream.start)
		return;
	drop = Min((Size) (page - stream.start), stream.len);
	memmove(stream.data, stream.data + drop, stream.len - drop);
	stream.len -= drop;
	stream.start += drop;
}

/* Wait for and process one batch of walsender messages. */
static void
receive_more(void)
{
	for (;;)
	{
		char	   *buf;
		pgsocket	fd = PGINVALID_SOCKET;
		int			len;
		bool		got = false;

		CHECK_FOR_INTERRUPTS();
		while ((len = walrcv_receive(wrconn, &buf, &fd)) != 0)
		{
			StringInfoData m;

			if (len < 0)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("aurora shipper: the WAL stream ended")));
			m.data = buf;
			m.len = len;
			m.cursor = 1;
			m.maxlen = -1;
			if (buf[0] == 'w')
			{
				XLogRecPtr	data_start = pq_getmsgint64(&m);

				(void) pq_getmsgint64(&m);	/* walEnd */
				(void) pq_getmsgint64(&m);	/* sendTime */
				stream_append(data_start, buf + m.cursor, len - m.cursor);
				got = true;
			}
			else if (buf[0] == 'k')
			{
				bool		reply_requested;

				(void) pq_getmsgint64(&m);	/* walEnd */
				(void) pq_getmsgint64(&m);	/* sendTime */
				reply_requested = pq_getmsgbyte(&m);
				if (reply_requested)
					send_feedback(decoded_end, true);
			}
		}
		if (got)
			return;
		send_feedback(decoded_end, false);
		(void) WaitLatchOrSocket(MyLatch,
								 WL_LATCH_SET | WL_SOCKET_READABLE | WL_TIMEOUT |
								 WL_EXIT_ON_PM_DEATH,
								 fd, 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* XLogReader page_read: block until [page, page + reqLen) has arrived. */
static int
stream_page_read(XLogReaderState *state, XLogRecPtr page, int reqLen,
				 XLogRecPtr targetRecPtr, char *readBuf)
{
	Size		avail;

	if (stream.len > 0 && page < stream.start)
		ereport(ERROR,
				(errmsg("aurora shipper: WAL at %X/%X was already released",
						LSN_FORMAT_ARGS(page))));
	while (stream.len == 0 || stream.start + stream.len < page + reqLen)
		receive_more();
	avail = Min((Size) XLOG_BLCKSZ, (Size) (stream.start + stream.len - page));
	memcpy(readBuf, stream.data + (page - stream.start), avail);
	return (int) avail;
}

/* The PGs of one record, as a bitmap over at most 64 PGs in this spike. */
static uint64
record_pgs(XLogReaderState *r, const aurora_geometry *g)
{
	uint64		pgs = 0;

	for (int b = 0; b <= XLogRecMaxBlockId(r); b++)
	{
		RelFileNode rnode;
		ForkNumber	fork;
		BlockNumber blkno;
		aurora_block_ref ref;

		if (!XLogRecGetBlockTagExtended(r, b, &rnode, &fork, &blkno, NULL))
			continue;
		ref.spc_oid = rnode.spcNode;
		ref.db_oid = rnode.dbNode;
		ref.rel_number = rnode.relNode;
		ref.fork = (uint8) fork;
		ref.blkno = blkno;
		pgs |= UINT64CONST(1) << (aurora_block_pg(g, &ref) % 64);
	}
	return pgs != 0 ? pgs : 1;	/* no block: PG 0 */
}

void
aurora_shipper_main(Datum main_arg)
{
	WalRcvStreamOptions options;
	XLogReaderState *reader;
	TimeLineID	tli;
	XLogRecPtr	start;
	XLogRecPtr	first;
	char	   *err = NULL;
	char		conninfo[MAXPGPATH + 64];
	aurora_geometry geometry = {16, 1024};
	uint64		records = 0;
	uint64		bytes = 0;
	uint64		pg_records[64] = {0};
	TimestampTz last_log = GetCurrentTimestamp();

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	load_file("libpqwalreceiver", false);
	if (WalReceiverFunctions == NULL)
		elog(ERROR, "libpqwalreceiver did not initialize");

	{
		/* the first socket directory, else the first listen address */
		const char *host = Unix_socket_directories && Unix_socket_directories[0] ?
			Unix_socket_directories : ListenAddresses;
		int			n = (int) strcspn(host, ", ");

		if (n == 0 || strncmp(host, "*", n) == 0)
			host = "127.0.0.1", n = 9;
		snprintf(conninfo, sizeof(conninfo), "host=%.*s port=%d", n, host, PostPortNumber);
	}
	wrconn = walrcv_connect(conninfo, false, "aurora_shipper", &err);
	if (wrconn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("aurora shipper: cannot connect to the compute for its WAL: %s", err)));
	(void) walrcv_identify_system(wrconn, &tli);

	/* spike: from the start of the segment holding the current flush point */
	start = GetFlushRecPtr(NULL);
	start -= XLogSegmentOffset(start, wal_segment_size);
	options.logical = false;
	options.startpoint = start;
	options.slotname = NULL;
	options.proto.physical.startpointTLI = tli;
	if (!walrcv_startstreaming(wrconn, &options))
		ereport(ERROR,
				(errmsg("aurora shipper: the compute refused to stream WAL from %X/%X",
						LSN_FORMAT_ARGS(start))));

	reader = XLogReaderAllocate(wal_segment_size, NULL,
								XL_ROUTINE(.page_read = stream_page_read), NULL);
	if (reader == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	first = XLogFindNextRecord(reader, start);
	if (XLogRecPtrIsInvalid(first))
		ereport(ERROR, (errmsg("aurora shipper: no WAL record after %X/%X", LSN_FORMAT_ARGS(start))));
	XLogBeginRead(reader, first);
	ereport(LOG, (errmsg("aurora shipper: streaming WAL from %X/%X (first record %X/%X)",
						 LSN_FORMAT_ARGS(start), LSN_FORMAT_ARGS(first))));

	for (;;)
	{
		XLogRecord *rec = XLogReadRecord(reader, &err);
		uint64		pgs;
		TimestampTz now;

		if (rec == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("aurora shipper: cannot decode WAL at %X/%X: %s",
							LSN_FORMAT_ARGS(reader->EndRecPtr), err ? err : "(no detail)")));
		records++;
		bytes += rec->xl_tot_len;
		pgs = record_pgs(reader, &geometry);
		for (int p = 0; p < 64; p++)
			if (pgs & (UINT64CONST(1) << p))
				pg_records[p]++;
		decoded_end = reader->EndRecPtr;
		stream_trim(reader->ReadRecPtr);
		send_feedback(decoded_end, false);

		now = GetCurrentTimestamp();
		if (TimestampDifferenceExceeds(last_log, now, 10000))
		{
			ereport(LOG, (errmsg("aurora shipper: %llu records, %llu bytes, up to %X/%X; PG 0 %llu records",
								 (unsigned long long) records, (unsigned long long) bytes,
								 LSN_FORMAT_ARGS(decoded_end),
								 (unsigned long long) pg_records[0])));
			last_log = now;
		}
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}
