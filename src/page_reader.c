/*
 * page_reader.c
 *	  How the compute reads from the storage service (docs/architecture.md
 *	  "A read's path"): the storage manager (smgr.c) asks for one page or one
 *	  fork's size, this module picks a segment of the right protection group
 *	  and retries on another when one fails.
 *
 *	  Read point.  A page is asked for at an LSN at which the segment can
 *	  serve it and which is at least the page's last change.  While the
 *	  shipper streams, a PG's read point is the PGCL it published with VDL
 *	  (watermarks.c): every record of the PG that VDL covers ends at or below
 *	  it, and the compute evicts a page only once VDL covers it.  During
 *	  crash recovery no shipper runs and nothing new reaches storage, so the
 *	  read point is the highest SCL that a read quorum of the PG's segments
 *	  reports, asked once per process (docs/architecture.md "Epochs and
 *	  recovery"): it covers every record that a write quorum acknowledged,
 *	  and storage never holds WAL that the compute has not flushed, so redo
 *	  sees pages no newer than stock crash recovery would find on disk.  Any other process waits until the
 *	  shipper has made the recovered WAL durable.
 *
 *	  Segment choice: those whose SCL (as last acknowledged) covers the LSN
 *	  and whose acknowledgement latency is near the lowest take the reads in
 *	  turn, by a hash of what is read; then the other covering segments,
 *	  lowest latency first; then the others, highest SCL first.  A node that
 *	  did not answer is tried last for a few seconds.  Spreading matters
 *	  because the fastest acknowledger is nearly always the same node: given
 *	  every read, it queued them behind its page threads and redo helpers
 *	  while five others idled, and a given block still goes to one node, whose
 *	  caches keep it.  Each process keeps one connection per node, opened on
 *	  first use.
 *
 *	  A read that no segment answered is asked again, pass after pass, until
 *	  aurora.read_timeout: a node busy materializing pages, or one restarting,
 *	  makes a read slow, as a busy disk would, rather than fail the query.
 *	  The wait between passes can be cancelled (statement_timeout, a cancel
 *	  request) and ends with the postmaster.
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "common/hashfn.h"
#include "storage/buf_internals.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "client.h"
#include "compute_volume.h"
#include "node_list.h"
#include "page_reader.h"
#include "pagemsg.h"
#include "shipping_status.h"
#include "util.h"
#include "volume.h"
#include "watermarks.h"
#include "volume_start.h"

/* how long a node that did not answer goes to the end of the line */
#define NODE_PENALTY_MS		5000
/* how long a process outside recovery waits for the shipper to be ready */
#define READY_WAIT_MS		10000
/* the pause between two passes over a PG's segments, doubling up to the max */
#define PASS_PAUSE_MIN_MS	10
#define PASS_PAUSE_MAX_MS	500

static int	aurora_read_timeout_ms = 60000;

typedef struct ReaderPG
{
	bool		placed;
	int			node[AURORA_PG_COPIES]; /* index into the configured nodes */
	XLogRecPtr	recovery_read_point;	/* 0 = not probed yet */
	XLogRecPtr	recovery_scl[AURORA_PG_COPIES];
} ReaderPG;

static ReaderPG *reader_pgs = NULL;
static aurora_conn **conns = NULL;
static TimestampTz *node_failed_at = NULL;
static aurora_read_counter count_read = NULL;


static void
reader_init(void)
{
	int			n = aurora_configured_nodes()->count;

	if (reader_pgs != NULL)
		return;
	reader_pgs = MemoryContextAllocZero(TopMemoryContext, sizeof(ReaderPG) * aurora_protection_groups);
	conns = MemoryContextAllocZero(TopMemoryContext, sizeof(aurora_conn *) * Max(n, 1));
	node_failed_at = MemoryContextAllocZero(TopMemoryContext, sizeof(TimestampTz) * Max(n, 1));
}

void
aurora_page_reader_define_gucs(void)
{
	DefineCustomIntVariable("aurora.read_timeout",
							"Time a page or size read keeps asking a protection group's segments before it fails.",
							"0 waits for ever.  Each pass asks every segment once, each for up to aurora.request_timeout.",
							&aurora_read_timeout_ms,
							60000, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/* Where each read's time and retries are counted (the storage manager's view). */
void
aurora_page_reader_count_reads(aurora_read_counter counter)
{
	count_read = counter;
}

static ReaderPG *
placed_pg(int pg)
{
	ReaderPG   *r;

	reader_init();
	r = &reader_pgs[pg];
	if (!r->placed)
	{
		const AuroraNodeList *nodes = aurora_configured_nodes();
		aurora_member members[AURORA_PG_COPIES];

		aurora_place_configured_pg(pg, members);
		for (int i = 0; i < AURORA_PG_COPIES; i++)
			for (int k = 0; k < nodes->count; k++)
				if (strcmp(members[i].node_id, nodes->nodes[k].id) == 0)
					r->node[i] = k;
		r->placed = true;
	}
	return r;
}

static aurora_conn *
node_conn(int k)
{
	if (conns[k] == NULL)
	{
		char		err[256];
		sigset_t	all,
					old;
		int			rc;

		/* NNG may start its threads here: they must never run our handlers */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = aurora_conn_open(aurora_configured_nodes()->nodes[k].url, &conns[k], err, sizeof(err));
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("aurora: cannot connect to storage node \"%s\": %s",
							aurora_configured_nodes()->nodes[k].id, err)));
	}
	return conns[k];
}

/*
 * One request to segment i of PG pg; false when no usable reply came (err
 * says why, *code is the ERROR code or 0).
 */
static bool
segment_call(ReaderPG *r, int pg, int i, uint16 type, const uint8_t *body, size_t len,
			 uint32 expect, int wait_ms, uint8_t **reply, const uint8_t **rbody,
			 aurora_header *rh, uint32 *code, char *err, size_t errlen)
{
	aurora_header h;
	aurora_call_result res;
	int			k = r->node[i];

	memset(&h, 0, sizeof(h));
	h.type = type;
	h.volume_id = AURORA_COMPUTE_VOLUME_ID;
	h.volume_epoch = aurora_volume_epoch();
	h.membership_epoch = 1;
	h.pg_id = (uint32) pg;
	h.request_id = 1;
	res = aurora_conn_call(node_conn(k), aurora_request_timeout_ms + wait_ms, &h, body, len,
						   expect, rh, reply, rbody, code, err, errlen);
	if (res == AURORA_CALL_NO_REPLY)
		node_failed_at[k] = GetCurrentTimestamp();
	return res == AURORA_CALL_OK;
}

/* Highest SCL among a read quorum of PG pg's segments (crash recovery). */
static void
probe_recovery_read_point(ReaderPG *r, int pg)
{
	int			answered = 0;
	XLogRecPtr	best = InvalidXLogRecPtr;
	char		lasterr[256] = "";

	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		uint8_t    *reply = NULL;
		const uint8_t *rbody;
		aurora_header rh;
		uint32		code;
		aurora_segment_info info;
		char		err[256];

		r->recovery_scl[i] = InvalidXLogRecPtr;
		if (!segment_call(r, pg, i, AURORA_MSG_SEGMENT_INFO_REQ, NULL, 0, AURORA_MSG_SEGMENT_INFO,
						  0, &reply, &rbody, &rh, &code, err, sizeof(err)))
		{
			snprintf(lasterr, sizeof(lasterr), "%s: %s",
					 aurora_configured_nodes()->nodes[r->node[i]].id, err);
			continue;
		}
		if (aurora_segment_info_decode(rbody, rh.body_len, &info) == 0)
		{
			answered++;
			r->recovery_scl[i] = info.scl;
			/* storage serves seeded images from their LSN on */
			best = Max(best, Max(info.scl, info.seeded_lsn));
		}
		free(reply);
	}
	if (answered < aurora_read_quorum)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("aurora: only %d segments of protection group %d answered; recovery needs a read quorum of %d",
						answered, pg, aurora_read_quorum),
				 lasterr[0] ? errdetail("Last failure: %s.", lasterr) : 0));
	r->recovery_read_point = Max(best, 1);
	ereport(DEBUG1,
			(errmsg_internal("aurora: recovery read point of PG %d is %X/%X",
							 pg, LSN_FORMAT_ARGS(best))));
}

XLogRecPtr
aurora_read_point(int pg)
{
	ReaderPG   *r = placed_pg(pg);
	TimestampTz deadline = 0;

	for (;;)
	{
		if (aurora_watermarks_ready())
			return Max(aurora_published_read_point(pg), 1);
		if (RecoveryInProgress())
		{
			/*
			 * Prepared from the volume: every PG holds everything below the
			 * VDL it was opened at, which is exactly what recovery replays.
			 */
			if (!XLogRecPtrIsInvalid(aurora_opened_read_point(pg)))
				return aurora_opened_read_point(pg);
			if (r->recovery_read_point == InvalidXLogRecPtr)
				probe_recovery_read_point(r, pg);
			return r->recovery_read_point;
		}
		if (deadline == 0)
			deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), READY_WAIT_MS);
		else if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_CANNOT_CONNECT_NOW),
					 errmsg("the database system is waiting for storage to hold its recovered WAL"),
					 errdetail("No page can be read from storage before then."),
					 errhint("Check that a write quorum of storage nodes is reachable.")));
		CHECK_FOR_INTERRUPTS();
		/* a latch wait, so that a backend left behind by a crashed postmaster exits */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * A segment takes its turn at reads when its acknowledgement latency is
 * within this factor (plus the slack, in ms) of the lowest: the fast
 * segments share the reads, a slow one is not given them.
 */
#define NEAR_LATENCY_FACTOR	2.0
#define NEAR_LATENCY_SLACK_MS	0.5

/*
 * Segments of PG pg in the order to try them for a read at lsn; spread (a
 * hash of what is read) picks which of the near-fastest segments goes first.
 */
static int
segment_order(ReaderPG *r, int pg, XLogRecPtr lsn, uint32 spread, int *order)
{
	XLogRecPtr	scl[AURORA_PG_COPIES];
	bool		up[AURORA_PG_COPIES];
	double		lat[AURORA_PG_COPIES];
	double		key[AURORA_PG_COPIES];
	double		best = 1e6;
	int			near[AURORA_PG_COPIES];
	int			n_near = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (!aurora_shipping_segments(pg, scl, up, lat))
	{
		for (int i = 0; i < AURORA_PG_COPIES; i++)
		{
			scl[i] = r->recovery_scl[i];
			up[i] = scl[i] != InvalidXLogRecPtr;
			lat[i] = 0;
		}
	}
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		bool		penalized = node_failed_at[r->node[i]] != 0 &&
			!TimestampDifferenceExceeds(node_failed_at[r->node[i]], now, NODE_PENALTY_MS);

		/* covering and up: by latency; then by SCL; recent failures last */
		if (scl[i] >= lsn && up[i] && !penalized)
			key[i] = lat[i] > 0 ? lat[i] : 1e6;
		else
			key[i] = 1e9 + (penalized ? 1e12 : 0) - (double) (scl[i] >> 20);
		best = Min(best, key[i]);
	}
	/* the near-fastest covering segments come first, rotated by spread */
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		if (key[i] < 1e9 && key[i] <= best * NEAR_LATENCY_FACTOR + NEAR_LATENCY_SLACK_MS)
			near[n_near++] = i;
	for (int i = 0; i < n_near; i++)
		key[near[(spread + (uint32) i) % (uint32) n_near]] = -(double) (n_near - i);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		order[i] = i;
	for (int a = 1; a < AURORA_PG_COPIES; a++)
		for (int b = a; b > 0 && key[order[b]] < key[order[b - 1]]; b--)
		{
			int			t = order[b];

			order[b] = order[b - 1];
			order[b - 1] = t;
		}
	return AURORA_PG_COPIES;
}

/* Which of the near-fastest segments a read goes to first. */
static uint32
spread_of(const void *what, size_t len)
{
	return DatumGetUInt32(hash_any((const unsigned char *) what, (int) len));
}

/* Append "node: err" to the list of failures of one request. */
static void
note_failure(char *failures, size_t cap, ReaderPG *r, int i, const char *err)
{
	size_t		used = strlen(failures);

	snprintf(failures + used, cap - used, "%s%s: %s", used > 0 ? "; " : "",
			 aurora_configured_nodes()->nodes[r->node[i]].id, err);
}

static char *
describe_tag(const BufferTag *tag)
{
	return psprintf("block %u of relation %u/%u/%u fork %d", tag->blockNum, tag->rnode.spcNode,
					tag->rnode.dbNode, tag->rnode.relNode, (int) tag->forkNum);
}

/* How a request to a PG's segments ended (ask_pg). */
typedef enum AskResult
{
	ASK_ANSWERED,				/* a segment answered and decode accepted it */
	ASK_ABSENT,					/* a segment said NO_BLOCK or NO_RELATION */
	ASK_FAILED					/* no segment could answer: see failures */
} AskResult;

/*
 * Send one request to PG pg's segments in segment_order(), one after the
 * other, until one answers with a reply that decode(body, len, out)
 * accepts (returns 0).  *tries: the segments tried after the first.
 */
static AskResult
ask_pg_once(ReaderPG *r, int pg, XLogRecPtr lsn, uint32 spread, uint16 type, const uint8_t *body,
			size_t len, uint32 expect, int (*decode) (const uint8_t *, size_t, void *), void *out,
			int *tries, char *failures, size_t cap)
{
	int			order[AURORA_PG_COPIES];

	failures[0] = '\0';
	segment_order(r, pg, lsn, spread, order);
	for (int n = 0; n < AURORA_PG_COPIES; n++)
	{
		int			i = order[n];
		uint8_t    *reply = NULL;
		const uint8_t *rbody;
		aurora_header rh;
		uint32		code = 0;
		char		err[256];
		bool		ok;

		*tries = n;
		pgstat_report_wait_start(PG_WAIT_EXTENSION);
		ok = segment_call(r, pg, i, type, body, len, expect, aurora_request_timeout_ms,
						  &reply, &rbody, &rh, &code, err, sizeof(err));
		pgstat_report_wait_end();
		if (ok)
		{
			int			rc = decode(rbody, rh.body_len, out);

			free(reply);
			if (rc == 0)
				return ASK_ANSWERED;
			snprintf(err, sizeof(err), "%s reply does not decode", aurora_msg_type_name(expect));
		}
		if (code == AURORA_ERR_NO_BLOCK || code == AURORA_ERR_NO_RELATION)
			return ASK_ABSENT;
		if (code == AURORA_ERR_STALE_EPOCH)
		{
			char		why[256];

			snprintf(why, sizeof(why), "Segment %d of protection group %d (node %s) refused a read: %s",
					 i, pg, aurora_configured_nodes()->nodes[r->node[i]].id, err);
			aurora_note_fenced(why);
			ereport(FATAL,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("terminating connection: this compute no longer owns the volume"),
					 errdetail("%s.", why),
					 errhint("A newer compute opened the volume; connect to it.")));
		}
		note_failure(failures, cap, r, i, err);
	}
	return ASK_FAILED;
}

/*
 * ask_pg_once, pass after pass, until a segment answers or
 * aurora.read_timeout has passed; failures then says how the last pass went
 * and how many there were.  *tries counts every segment tried after the first.
 */
static AskResult
ask_pg(ReaderPG *r, int pg, XLogRecPtr lsn, uint32 spread, uint16 type, const uint8_t *body,
	   size_t len, uint32 expect, int (*decode) (const uint8_t *, size_t, void *), void *out,
	   int *tries, char *failures, size_t cap)
{
	TimestampTz start = GetCurrentTimestamp();
	long		pause = PASS_PAUSE_MIN_MS;
	int			passes = 0;

	*tries = 0;
	for (;;)
	{
		int			n;
		AskResult	res = ask_pg_once(r, pg, lsn, spread, type, body, len, expect, decode, out,
									  &n, failures, cap);

		*tries += n + (passes > 0 ? 1 : 0);
		passes++;
		if (res != ASK_FAILED)
			return res;
		if (aurora_read_timeout_ms > 0 &&
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), aurora_read_timeout_ms))
		{
			size_t		used = strlen(failures);

			snprintf(failures + used, cap - used, "%s(%d passes over the segments in %d ms, aurora.read_timeout)",
					 used > 0 ? "; " : "", passes, aurora_read_timeout_ms);
			return ASK_FAILED;
		}
		CHECK_FOR_INTERRUPTS();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 pause, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		pause = Min(pause * 2, PASS_PAUSE_MAX_MS);
	}
}

static int
decode_page(const uint8_t *body, size_t len, void *out)
{
	return aurora_page_resp_decode(body, len, (aurora_page_resp *) out);
}

static int
decode_rel_size(const uint8_t *body, size_t len, void *out)
{
	return aurora_rel_size_resp_decode(body, len, (aurora_rel_size_resp *) out);
}

bool
aurora_fetch_page(const BufferTag *tag, XLogRecPtr lsn, char *page)
{
	int			pg = aurora_tag_pg(tag);
	ReaderPG   *r = placed_pg(pg);
	aurora_getpage_req req;
	aurora_page_resp *resp = palloc(sizeof(aurora_page_resp));
	uint8_t		body[64];
	size_t		len;
	char		failures[1024] = "";
	instr_time	start,
				elapsed;
	int			tries = 0;
	AskResult	res;

	memset(&req, 0, sizeof(req));
	req.block.spc_oid = tag->rnode.spcNode;
	req.block.db_oid = tag->rnode.dbNode;
	req.block.rel_number = tag->rnode.relNode;
	req.block.fork = (uint8) tag->forkNum;
	req.block.blkno = tag->blockNum;
	req.lsn = lsn;
	req.wait_ms = (uint32) aurora_request_timeout_ms;
	len = aurora_getpage_req_encode(&req, body, sizeof(body));
	INSTR_TIME_SET_CURRENT(start);
	res = ask_pg(r, pg, lsn, spread_of(tag, sizeof(*tag)), AURORA_MSG_GETPAGE_REQ, body, len,
				 AURORA_MSG_PAGE, decode_page, resp, &tries, failures, sizeof(failures));
	if (res == ASK_FAILED)
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("aurora: could not read %s at %X/%X from any segment of protection group %d",
						describe_tag(tag), LSN_FORMAT_ARGS(lsn), pg),
				 errdetail("%s", failures)));
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	if (count_read != NULL)
		count_read(INSTR_TIME_GET_MICROSEC(elapsed), tries);
	if (res == ASK_ANSWERED)
		memcpy(page, resp->page, BLCKSZ);
	pfree(resp);
	return res == ASK_ANSWERED;
}

/* What PG pg knows of a fork's size at its read point. */
static void
pg_rel_size(int pg, RelFileNode rnode, ForkNumber fork, bool *exists, BlockNumber *nblocks)
{
	ReaderPG   *r = placed_pg(pg);
	XLogRecPtr	lsn = aurora_read_point(pg);
	aurora_rel_size_req req;
	aurora_rel_size_resp resp;
	uint8_t		body[64];
	size_t		len;
	char		failures[1024] = "";
	int			tries;

	req.spc_oid = rnode.spcNode;
	req.db_oid = rnode.dbNode;
	req.rel_number = rnode.relNode;
	req.fork = (uint8) fork;
	req.lsn = lsn;
	req.wait_ms = (uint32) aurora_request_timeout_ms;
	len = aurora_rel_size_req_encode(&req, body, sizeof(body));
	switch (ask_pg(r, pg, lsn, spread_of(&rnode, sizeof(rnode)) + (uint32) fork,
				   AURORA_MSG_REL_SIZE_REQ, body, len, AURORA_MSG_REL_SIZE, decode_rel_size,
				   &resp, &tries, failures, sizeof(failures)))
	{
		case ASK_ANSWERED:
			*exists = resp.exists;
			*nblocks = resp.nblocks;
			return;
		case ASK_ABSENT:
			*exists = false;
			*nblocks = 0;
			return;
		case ASK_FAILED:
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_IO_ERROR),
			 errmsg("aurora: could not get the size of relation %u/%u/%u fork %d from any segment of protection group %d",
					rnode.spcNode, rnode.dbNode, rnode.relNode, (int) fork, pg),
			 errdetail("%s", failures)));
}

/*
 * A fork's size as storage derives it from the log: the chunks of a fork
 * are spread over the PGs, so it is the largest answer of all of them.
 */
bool
aurora_fetch_rel_size(RelFileNode rnode, ForkNumber fork, BlockNumber *nblocks)
{
	bool		any = false;

	reader_init();
	*nblocks = 0;
	for (int pg = 0; pg < aurora_protection_groups; pg++)
	{
		bool		exists = false;
		BlockNumber n = 0;

		pg_rel_size(pg, rnode, fork, &exists, &n);
		any |= exists;
		*nblocks = Max(*nblocks, n);
	}
	return any;
}
