/*
 * test_wal.c
 *	  Unit test (TAP) of the walk to VDL (wal_walk.c) and of the WAL layout
 *	  written (wal_layout.c, wal_write.c), on synthetic records: no cluster.
 *	  The records are laid out across page and segment boundaries (1 MB
 *	  segments), with continuation records, an XLOG_SWITCH, a record at a
 *	  page start; the walk is given a gap, a record missing from one of its
 *	  PGs, copies that differ between PGs, an SCL below a record, a bad CRC.
 *	  The written files are checked by a reader written here from
 *	  PostgreSQL's rules, independent of the writer: every page header, every
 *	  record's bytes, and zeros where PostgreSQL leaves zeros.  The local
 *	  WAL cache (local_wal.c) is checked against those files, and continuing
 *	  them from a durable point (wal_write_segments_from) must give the same
 *	  bytes as writing them whole.
 */
#include "postgres_fe.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/rmgr.h"
#include "access/xlog_internal.h"
#include "access/xlogrecord.h"
#include "catalog/pg_control.h"
#include "port/pg_crc32c.h"

#include "local_wal.h"
#include "tap.h"
#include "walmeta.h"
#include "wal_layout.h"
#include "wal_walk.h"
#include "wal_write.h"

#define SEG		(1024 * 1024)
#define SYSID	UINT64CONST(7301234567890123456)
#define MAXREC	64

/* A synthetic WAL: records laid out from R as PostgreSQL would. */
typedef struct Synth
{
	int			n;
	XLogRecPtr	start[MAXREC];
	XLogRecPtr	end[MAXREC];
	uint32		len[MAXREC];
	uint8	   *payload[MAXREC];	/* envelope + WAL record */
	uint32		plen[MAXREC];
	uint8	   *wal[MAXREC];
} Synth;

static aurora_geometry geom = {2, 131072};

/* A relation whose chunk 0 routes to PG pg (geometry geom). */
static aurora_block_ref
block_in_pg(uint32 pg)
{
	aurora_block_ref b = {1663, 5, 16384, 0, 0};

	while (aurora_block_pg(&geom, &b) != pg)
		b.rel_number++;
	return b;
}

/*
 * Append a record of tot_len bytes (rmid/info as given) to s, changing
 * blocks in the PGs of pgmask (bit p: PG p; 0: no block, PG 0).
 */
static void
add_record(Synth *s, XLogRecPtr redo, uint32 tot_len, RmgrId rmid, uint8 info, int pgmask)
{
	int			i = s->n++;
	XLogRecord	hdr;
	pg_crc32c	crc;
	aurora_walmeta_block blocks[2];
	int			nb = 0;
	aurora_buf	b;
	size_t		env;
	uint8	   *wal;

	for (uint32 p = 0; p < 2; p++)
		if (pgmask & (1 << p))
		{
			blocks[nb].ref = block_in_pg(p);
			blocks[nb++].flags = 0;
		}
	s->start[i] = i == 0 ? redo : wal_next_record_start(s->end[i - 1], SEG);
	memset(&hdr, 0, sizeof(hdr));
	hdr.xl_tot_len = tot_len;
	hdr.xl_xid = 700 + i;
	hdr.xl_prev = i == 0 ? redo - 200 : s->start[i - 1];
	hdr.xl_info = info;
	hdr.xl_rmid = rmid;
	env = aurora_walmeta_size(nb, 0);
	s->plen[i] = (uint32) env + tot_len;
	s->payload[i] = malloc(s->plen[i]);
	aurora_buf_init_writer(&b, s->payload[i], env);
	aurora_walmeta_put(&b, blocks, nb, NULL, 0);
	wal = s->payload[i] + env;
	for (uint32 k = SizeOfXLogRecord; k < tot_len; k++)
		wal[k] = (uint8) (k * 7 + i);
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, wal + SizeOfXLogRecord, tot_len - SizeOfXLogRecord);
	COMP_CRC32C(crc, &hdr, offsetof(XLogRecord, xl_crc));
	FIN_CRC32C(crc);
	hdr.xl_crc = crc;
	memcpy(wal, &hdr, SizeOfXLogRecord);
	s->wal[i] = wal;
	s->len[i] = tot_len;
	s->end[i] = wal_record_end(s->start[i], tot_len,
							   rmid == RM_XLOG_ID && info == XLOG_SWITCH, SEG);
}

static void
synth_free(Synth *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->payload[i]);
	s->n = 0;
}

/* Give PG p the records of s whose index is in [from, to) and route to p. */
static void
give(WalPgLog *log, const Synth *s, const int *pgmask, int from, int to)
{
	char		err[256];

	for (int i = from; i < to; i++)
	{
		aurora_log_record r;

		if (!(pgmask[i] & (1 << log->pg)) && !(pgmask[i] == 0 && log->pg == 0))
			continue;
		r.start_lsn = s->start[i];
		r.end_lsn = s->end[i];
		r.prev_lsn = 0;
		r.len = s->plen[i];
		r.payload = s->payload[i];
		if (wal_pg_log_add(log, &r, err, sizeof(err)) != 0)
			bail_out("wal_pg_log_add: %s", err);
	}
}

static void
logs_init(WalPgLog logs[2])
{
	memset(logs, 0, sizeof(WalPgLog) * 2);
	logs[0].pg = 0;
	logs[1].pg = 1;
}

static void
logs_reset(WalPgLog logs[2])
{
	wal_pg_log_reset(&logs[0]);
	wal_pg_log_reset(&logs[1]);
}

/* ---- an independent reader of the written segment files ---- */

typedef struct Files
{
	char		dir[MAXPGPATH];
	XLogSegNo	first;
	int			n;
	uint8	   *seg[8];
} Files;

static void
read_files(Files *f, XLogRecPtr redo)
{
	XLByteToSeg(redo, f->first, SEG);
	f->n = 0;
	for (;;)
	{
		char		name[MAXFNAMELEN],
					path[MAXPGPATH + MAXFNAMELEN];
		int			fd;

		XLogFileName(name, 1, f->first + f->n, SEG);
		snprintf(path, sizeof(path), "%s/%s", f->dir, name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			break;
		f->seg[f->n] = malloc(SEG);
		if (read(fd, f->seg[f->n], SEG) != SEG)
			bail_out("short segment %s", path);
		close(fd);
		f->n++;
	}
}

static uint8 *
byte_at(Files *f, XLogRecPtr pos)
{
	XLogSegNo	seg;

	XLByteToSeg(pos, seg, SEG);
	if (seg < f->first || seg >= f->first + f->n)
		return NULL;
	return f->seg[seg - f->first] + XLogSegmentOffset(pos, SEG);
}

static XLogPageHeaderData *
page_at(Files *f, XLogRecPtr page)
{
	return (XLogPageHeaderData *) byte_at(f, page);
}

/*
 * Check one page header as PostgreSQL writes it: magic, address, timeline,
 * the long header on a segment's first page, and the continuation flag.
 */
static bool
page_ok(Files *f, XLogRecPtr page, bool contrecord, uint32 rem_len)
{
	XLogLongPageHeaderData h;
	bool		first = XLogSegmentOffset(page, SEG) == 0;
	uint16		info = XLP_BKP_REMOVABLE | (first ? XLP_LONG_HEADER : 0) |
		(contrecord ? XLP_FIRST_IS_CONTRECORD : 0);

	if (byte_at(f, page) == NULL)
		return false;
	memcpy(&h, page_at(f, page), first ? SizeOfXLogLongPHD : SizeOfXLogShortPHD);
	if (h.std.xlp_magic != XLOG_PAGE_MAGIC || h.std.xlp_info != info ||
		h.std.xlp_tli != 1 || h.std.xlp_pageaddr != page || h.std.xlp_rem_len != rem_len)
	{
		diag("page %X/%X: magic %04X info %04X tli %u addr %X/%X rem_len %u (want info %04X rem_len %u)",
			 LSN_FORMAT_ARGS(page), h.std.xlp_magic, h.std.xlp_info, h.std.xlp_tli,
			 LSN_FORMAT_ARGS(h.std.xlp_pageaddr), h.std.xlp_rem_len, info, rem_len);
		return false;
	}
	if (first && (h.xlp_sysid != SYSID || h.xlp_seg_size != SEG || h.xlp_xlog_blcksz != XLOG_BLCKSZ))
	{
		diag("segment %X/%X: long header fields wrong", LSN_FORMAT_ARGS(page));
		return false;
	}
	return true;
}

static bool
zeros(Files *f, XLogRecPtr from, XLogRecPtr to)
{
	for (XLogRecPtr p = from; p < to; p++)
	{
		uint8	   *b = byte_at(f, p);

		if (b != NULL && *b != 0)
		{
			diag("byte at %X/%X is %02X, not 0", LSN_FORMAT_ARGS(p), *b);
			return false;
		}
	}
	return true;
}

/*
 * Read record i back from the files, page by page, checking the headers of
 * the pages it crosses; true if its bytes and headers are right and the
 * padding after it is zero.
 */
static bool
record_ok(Files *f, const Synth *s, int i)
{
	XLogRecPtr	pos = s->start[i];
	uint32		off = 0;
	XLogRecPtr	page = pos - pos % XLOG_BLCKSZ;

	if (i > 0 && pos - page == wal_page_header_size(page, SEG) &&
		!page_ok(f, page, false, 0))
		return false;
	while (off < s->len[i])
	{
		uint32		room;

		if (pos % XLOG_BLCKSZ == 0)
		{
			if (!page_ok(f, pos, true, s->len[i] - off))
				return false;
			pos += XLogSegmentOffset(pos, SEG) == 0 ? SizeOfXLogLongPHD : SizeOfXLogShortPHD;
		}
		room = Min(XLOG_BLCKSZ - (uint32) (pos % XLOG_BLCKSZ), s->len[i] - off);
		if (byte_at(f, pos) == NULL || memcmp(byte_at(f, pos), s->wal[i] + off, room) != 0)
		{
			diag("record %d: bytes at %X/%X differ", i, LSN_FORMAT_ARGS(pos));
			return false;
		}
		pos += room;
		off += room;
	}
	return zeros(f, pos, MAXALIGN64(pos));
}

static void
files_free(Files *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->seg[i]);
	f->n = 0;
}

static void
make_dir(Files *f)
{
	strcpy(f->dir, "/tmp/test_wal.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		bail_out("mkdtemp failed");
}

static void
remove_dir(Files *f)
{
	DIR		   *d = opendir(f->dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL)
	{
		char		path[MAXPGPATH * 2];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(f->dir);
}

/* ---- the tests ---- */

/* R, in the middle of the second page of segment 2 */
#define REDO	(UINT64CONST(2) * SEG + XLOG_BLCKSZ + 0x1A8)

static const WalTarget target = {SEG, 1, SYSID};

/* The records of the layout test and the PGs they go to. */
static void
build_layout(Synth *s, int *pgmask)
{
	int			i = 0;

	s->n = 0;
	/* fits in its page */
	pgmask[i++] = 1, add_record(s, REDO, 120, RM_HEAP_ID, 0, 1);
	/* crosses into the next page: a contrecord */
	pgmask[i++] = 2, add_record(s, REDO, 8000, RM_HEAP_ID, 0, 2);
	/* in both PGs */
	pgmask[i++] = 3, add_record(s, REDO, 300, RM_HEAP_ID, 0, 3);
	/* spans several pages */
	pgmask[i++] = 1, add_record(s, REDO, 30000, RM_HEAP_ID, 0, 1);
	/* no block: PG 0 */
	pgmask[i++] = 0, add_record(s, REDO, 50, RM_XACT_ID, 0, 0);
	/* then enough to cross into segment 3 with a record */
	while (s->end[i - 1] < UINT64CONST(3) * SEG - 20000)
		pgmask[i++] = 1, add_record(s, REDO, 60000, RM_HEAP_ID, 0, 1);
	pgmask[i++] = 2, add_record(s, REDO, 50000, RM_HEAP_ID, 0, 2);
	/* fill up to a page end exactly, then a record that begins a page */
	{
		XLogRecPtr	pos = s->end[i - 1];
		uint32		left = XLOG_BLCKSZ - (uint32) (pos % XLOG_BLCKSZ);

		pgmask[i++] = 1, add_record(s, REDO, left, RM_HEAP_ID, 0, 1);
	}
	pgmask[i++] = 1, add_record(s, REDO, 64, RM_HEAP_ID, 0, 1);
	/* an XLOG_SWITCH: the rest of segment 3 is zeros */
	pgmask[i++] = 0, add_record(s, REDO, SizeOfXLogRecord, RM_XLOG_ID, XLOG_SWITCH, 0);
	/* the first record of segment 4, after its long header */
	pgmask[i++] = 1, add_record(s, REDO, 200, RM_HEAP_ID, 0, 1);
	pgmask[i++] = 0, add_record(s, REDO, 40, RM_XACT_ID, 0, 0);
}

static void
test_layout_arithmetic(void)
{
	/* by hand: 8000 bytes from REDO + 120 (aligned to REDO + 120) */
	XLogRecPtr	s1 = REDO + 120;
	uint32		first_page = XLOG_BLCKSZ - (uint32) (s1 % XLOG_BLCKSZ);

	is_uint(wal_record_end(REDO, 120, false, SEG), REDO + 120, "a record inside a page ends after its bytes");
	is_uint(wal_record_end(REDO, 121, false, SEG), REDO + 128, "MAXALIGNed");
	is_uint(wal_record_end(s1, 8000, false, SEG),
			s1 + first_page + SizeOfXLogShortPHD + MAXALIGN(8000 - first_page),
			"a record crossing a page skips the short header");
	is_uint(wal_record_end(UINT64CONST(3) * SEG - 16, 100, false, SEG),
			UINT64CONST(3) * SEG + SizeOfXLogLongPHD + MAXALIGN(84),
			"crossing a segment skips the long header");
	is_uint(wal_record_end(REDO, SizeOfXLogRecord, true, SEG), UINT64CONST(3) * SEG,
			"an XLOG_SWITCH ends at the next segment");
	is_uint(wal_next_record_start(UINT64CONST(3) * SEG, SEG), UINT64CONST(3) * SEG + SizeOfXLogLongPHD,
			"after a segment boundary the next record follows the long header");
	is_uint(wal_next_record_start(REDO + XLOG_BLCKSZ - 0x1A8, SEG),
			REDO + XLOG_BLCKSZ - 0x1A8 + SizeOfXLogShortPHD, "after a page boundary, the short one");
}

static void
test_layout(void)
{
	Synth		s;
	int			pgmask[MAXREC];
	WalPgLog	logs[2];
	WalWalk		w;
	Files		f;
	char		err[512];
	int			files;
	bool		all = true;
	int			sw = -1;

	build_layout(&s, pgmask);
	logs_init(logs);
	give(&logs[0], &s, pgmask, 0, s.n);
	give(&logs[1], &s, pgmask, 0, s.n);
	logs[0].scl = s.end[s.n - 1];
	logs[1].scl = s.end[s.n - 1];
	is_int(wal_walk_run(logs, &geom, REDO, SEG, &w, err, sizeof(err)), 0, "the walk over %d records succeeds", s.n);
	is_int(w.n_kept, s.n, "it keeps every record");
	is_uint(w.vdl, s.end[s.n - 1], "VDL is the end of the last");
	is_int(w.stop, WAL_WALK_END_OF_LOG, "it stopped at the end of the log");
	is_int(w.n_beyond, 0, "no ragged edge");
	ok(w.n_records == s.n, "a record held by both PGs is kept once");

	make_dir(&f);
	files = wal_write_segments(f.dir, &target, REDO, w.records, w.n_kept, w.vdl, err, sizeof(err));
	is_int(files, 3, "segments 2, 3 and 4 written");
	read_files(&f, REDO);
	is_int(f.n, 3, "and only those");
	ok(f.n == 3, "files readable");
	if (f.n != 3)
		bail_out("cannot check the layout");

	/* R's page: what precedes R is described as continuation data */
	ok(page_ok(&f, REDO - REDO % XLOG_BLCKSZ, true,
			   (uint32) (REDO % XLOG_BLCKSZ) - SizeOfXLogShortPHD),
	   "R's page says its bytes before R are a continuation, so a reader scanning it lands on R");
	ok(page_ok(&f, UINT64CONST(2) * SEG, false, 0),
	   "R's segment has its long header on its first page, which readers check first");
	ok(zeros(&f, UINT64CONST(2) * SEG + SizeOfXLogLongPHD, REDO - REDO % XLOG_BLCKSZ) &&
	   zeros(&f, REDO - REDO % XLOG_BLCKSZ + SizeOfXLogShortPHD, REDO),
	   "nothing before R is made up");
	for (int i = 0; i < s.n; i++)
	{
		if (!record_ok(&f, &s, i))
		{
			all = false;
			diag("record %d at %X/%X laid out wrongly", i, LSN_FORMAT_ARGS(s.start[i]));
		}
		if (s.len[i] == SizeOfXLogRecord)
			sw = i;
	}
	ok(all, "every record's bytes where PostgreSQL puts them, with every page header it crosses (contrecords, long headers)");
	ok(sw > 0 && page_ok(&f, s.start[sw - 1] - s.start[sw - 1] % XLOG_BLCKSZ, false, 0),
	   "the record that begins a page follows a page header without XLP_FIRST_IS_CONTRECORD");
	ok(sw > 0 && zeros(&f, s.start[sw] + SizeOfXLogRecord, UINT64CONST(4) * SEG),
	   "after the XLOG_SWITCH the rest of the segment is zeros");
	ok(page_ok(&f, UINT64CONST(4) * SEG, false, 0) &&
	   s.start[sw + 1] == UINT64CONST(4) * SEG + SizeOfXLogLongPHD,
	   "the next segment starts with a long header and the next record");
	ok(zeros(&f, w.vdl, UINT64CONST(5) * SEG), "after VDL, zeros");

	/* a file that exists is never overwritten */
	files = wal_write_segments(f.dir, &target, REDO, w.records, w.n_kept, w.vdl, err, sizeof(err));
	is_int(files, -1, "writing again into the same directory is refused");
	like(err, "exists already", "saying why");

	files_free(&f);
	remove_dir(&f);
	wal_walk_free(&w);
	logs_reset(logs);
	synth_free(&s);
}

/* Five small records: 0,2,4 in PG 0, 1,3 in both PGs. */
static void
build_small(Synth *s, int *pgmask)
{
	s->n = 0;
	for (int i = 0; i < 5; i++)
	{
		pgmask[i] = (i % 2) ? 3 : 1;
		add_record(s, REDO, 100 + i * 10, RM_HEAP_ID, 0, pgmask[i]);
	}
}

static void
test_gap(void)
{
	Synth		s;
	int			pgmask[MAXREC];
	WalPgLog	logs[2];
	WalWalk		w;
	char		err[512];

	build_small(&s, pgmask);
	logs_init(logs);
	give(&logs[0], &s, pgmask, 0, 2);
	give(&logs[0], &s, pgmask, 3, 5);	/* record 2 is missing */
	give(&logs[1], &s, pgmask, 0, 5);
	logs[0].scl = logs[1].scl = s.end[4];
	is_int(wal_walk_run(logs, &geom, REDO, SEG, &w, err, sizeof(err)), 0, "a gap is not an error");
	is_int(w.n_kept, 2, "the walk keeps the records before the gap");
	is_uint(w.vdl, s.end[1], "VDL is the end of the last record before it");
	is_int(w.stop, WAL_WALK_GAP, "stopped at a gap");
	like(w.stop_reason, "xl_prev", "saying the next record does not follow");
	is_int(w.n_beyond, 2, "two records beyond: the ragged edge");
	ok(w.beyond_from == s.start[3] && w.beyond_to == s.end[4], "with their LSN range");
	wal_walk_free(&w);
	logs_reset(logs);
	synth_free(&s);
}

static void
test_missing_from_pg(void)
{
	Synth		s;
	int			pgmask[MAXREC];
	WalPgLog	logs[2];
	WalWalk		w;
	char		err[512] = "";

	build_small(&s, pgmask);
	logs_init(logs);
	give(&logs[0], &s, pgmask, 0, 5);
	give(&logs[1], &s, pgmask, 0, 3);	/* PG 1 lacks record 3 */
	logs[0].scl = s.end[4];
	logs[1].scl = s.end[1];
	is_int(wal_walk_run(logs, &geom, REDO, SEG, &w, err, sizeof(err)), 0,
		   "a record not yet durable in one of its PGs");
	is_int(w.n_kept, 3, "ends the walk before it");
	is_uint(w.vdl, s.end[2], "VDL: the end of the record before");
	is_int(w.stop, WAL_WALK_ABOVE_SCL, "stopped above a PG's SCL");
	like(w.stop_reason, "above the SCL", "saying so");
	is_int(w.n_beyond, 2, "two records on the ragged edge");
	wal_walk_free(&w);

	/* PG 1 claims durability up to the end but lacks record 3 */
	logs[1].scl = s.end[4];
	is_int(wal_walk_run(logs, &geom, REDO, SEG, &w, err, sizeof(err)), -1,
		   "a record missing from a PG whose SCL covers it is an error");
	like(err, "PG 1 does not hold it", "naming the PG");
	logs_reset(logs);
	synth_free(&s);
}

static void
test_mismatch(void)
{
	Synth		s;
	int			pgmask[MAXREC];
	WalPgLog	logs[2];
	WalWalk		w;
	char		err[512] = "";

	build_small(&s, pgmask);
	logs_init(logs);
	give(&logs[0], &s, pgmask, 0, 5);
	s.payload[3][s.plen[3] - 1] ^= 1;	/* PG 1's copy of record 3 differs */
	give(&logs[1], &s, pgmask, 0, 5);
	logs[0].scl = logs[1].scl = s.end[4];
	is_int(wal_walk_run(logs, &geom, REDO, SEG, &w, err, sizeof(err)), -1,
		   "copies of a record that differ between PGs are an error");
	like(err, "differs between PG 0 and PG 1", "naming both");
	logs_reset(logs);
	synth_free(&s);
}

static void
test_bad_crc(void)
{
	Synth		s;
	int			pgmask[MAXREC];
	WalPgLog	logs[2];
	WalWalk		w;
	char		err[512];

	build_small(&s, pgmask);
	s.wal[2][SizeOfXLogRecord + 3] ^= 0x40;	/* a bit flipped in record 2 */
	logs_init(logs);
	give(&logs[0], &s, pgmask, 0, 5);
	give(&logs[1], &s, pgmask, 0, 5);
	logs[0].scl = logs[1].scl = s.end[4];
	is_int(wal_walk_run(logs, &geom, REDO, SEG, &w, err, sizeof(err)), 0, "the walk runs");
	is_int(w.stop, WAL_WALK_BAD_CRC, "a bad CRC ends it");
	is_int(w.n_kept, 2, "before the damaged record");
	like(w.stop_reason, "bad CRC", "with a clear message");
	ok(!wal_record_crc_ok(s.wal[2], s.len[2]) && wal_record_crc_ok(s.wal[1], s.len[1]),
	   "wal_record_crc_ok tells a damaged record from a good one");
	wal_walk_free(&w);
	logs_reset(logs);
	synth_free(&s);
}

static void
test_first_record(void)
{
	Synth		s;
	int			pgmask[MAXREC];
	WalPgLog	logs[2];
	WalWalk		w;
	char		err[512] = "";

	build_small(&s, pgmask);
	logs_init(logs);
	give(&logs[0], &s, pgmask, 1, 5);
	give(&logs[1], &s, pgmask, 1, 5);
	logs[0].scl = logs[1].scl = s.end[4];
	is_int(wal_walk_run(logs, &geom, REDO, SEG, &w, err, sizeof(err)), -1,
		   "no record at R is an error");
	like(err, "no record starts at", "saying so");
	logs_reset(logs);

	logs_init(logs);
	give(&logs[0], &s, pgmask, 0, 5);
	give(&logs[1], &s, pgmask, 0, 5);
	logs[0].scl = logs[1].scl = REDO - 8;
	is_int(wal_walk_run(logs, &geom, REDO, SEG, &w, err, sizeof(err)), 0, "SCLs below R");
	ok(w.n_kept == 0 && w.vdl == REDO && w.n_beyond == 5, "keep nothing: VDL is R");
	wal_walk_free(&w);
	logs_reset(logs);
	synth_free(&s);
}

static void
test_log_order(void)
{
	WalPgLog	log;
	uint8		payload[64] = {0};
	aurora_log_record r = {REDO + 64, REDO + 128, 0, sizeof(payload), payload};
	char		err[256] = "";

	memset(&log, 0, sizeof(log));
	is_int(wal_pg_log_add(&log, &r, err, sizeof(err)), 0, "a PG log takes a record");
	ok(log.n == 1 && log.recs[0].payload != payload && memcmp(log.recs[0].payload, payload, 64) == 0,
	   "as a copy");
	r.start_lsn = REDO;
	is_int(wal_pg_log_add(&log, &r, err, sizeof(err)), -1, "a record out of order is refused");
	like(err, "comes after", "saying so");
	wal_pg_log_reset(&log);
	ok(log.n == 0 && log.recs == NULL, "reset empties it");
}

/* Write bytes at pos into the segment file of dir that holds it. */
static void
poke(const char *dir, XLogRecPtr pos, const void *data, size_t len)
{
	char		name[MAXFNAMELEN],
				path[MAXPGPATH + MAXFNAMELEN];
	XLogSegNo	seg;
	int			fd;

	XLByteToSeg(pos, seg, SEG);
	XLogFileName(name, 1, seg, SEG);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd < 0 || pwrite(fd, data, len, (off_t) XLogSegmentOffset(pos, SEG)) != (ssize_t) len)
		bail_out("cannot write %s", path);
	if (ftruncate(fd, SEG) != 0)
		bail_out("cannot size %s", path);
	close(fd);
}

/* Do the segment files of a and b hold the same bytes, and no others? */
static bool
same_files(Files *a, Files *b)
{
	read_files(a, REDO);
	read_files(b, REDO);
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (memcmp(a->seg[i], b->seg[i], SEG) != 0)
			return false;
	return true;
}

static void
test_local_wal(void)
{
	Synth		s;
	int			pgmask[MAXREC];
	WalPgLog	logs[2];
	WalWalk		w;
	Files		whole,
				cont;
	char		err[512];
	int			at_page_end = -1;
	XLogRecPtr	last;
	int			records;
	uint64		bytes;
	uint8		junk[64];

	build_layout(&s, pgmask);
	for (int i = 0; i < s.n; i++)
		if (s.end[i] % XLOG_BLCKSZ == 0 && s.len[i] != SizeOfXLogRecord)
			at_page_end = i;
	logs_init(logs);
	give(&logs[0], &s, pgmask, 0, s.n);
	give(&logs[1], &s, pgmask, 0, s.n);
	logs[0].scl = logs[1].scl = s.end[s.n - 1];
	if (wal_walk_run(logs, &geom, REDO, SEG, &w, err, sizeof(err)) != 0)
		bail_out("walk: %s", err);
	make_dir(&whole);
	if (wal_write_segments(whole.dir, &target, REDO, w.records, w.n_kept, w.vdl, err, sizeof(err)) < 0)
		bail_out("write: %s", err);
	wal_walk_free(&w);
	logs_reset(logs);

	is_int(local_wal_verify(whole.dir, &target, REDO, s.end[s.n - 1], &last, &records, &bytes,
							err, sizeof(err)), 0, "the local WAL checks out from R to its last record's end");
	ok(last == s.start[s.n - 1] && records == s.n, "... naming the last record (%d records)", records);
	is_int(local_wal_verify(whole.dir, &target, REDO, s.end[3], &last, &records, &bytes,
							err, sizeof(err)), 0, "and up to a record in the middle");
	ok(last == s.start[3] && records == 4, "... which is the last one taken");
	is_int(local_wal_verify(whole.dir, &target, REDO, s.end[3] + 8, &last, &records, &bytes,
							err, sizeof(err)), -1, "a point that is no record's end is refused");
	like(err, "past", "saying the record crosses it");
	{
		WalTarget	other = target;

		other.sysid++;
		is_int(local_wal_verify(whole.dir, &other, REDO, s.end[3], &last, &records, &bytes,
								err, sizeof(err)), -1, "WAL of another database system is refused");
	}

	/* continuing from a durable point gives the bytes of the whole write */
	for (int pass = 0; pass < 2; pass++)
	{
		int			k = pass == 0 ? 3 : at_page_end;
		int			files;

		if (k < 0)
			bail_out("no record ends at a page end");
		make_dir(&cont);
		/* the directory as the old compute left it: its own WAL, junk after k, a later file */
		logs_init(logs);
		give(&logs[0], &s, pgmask, 0, s.n);
		give(&logs[1], &s, pgmask, 0, s.n);
		logs[0].scl = logs[1].scl = s.end[s.n - 1];
		if (wal_walk_run(logs, &geom, REDO, SEG, &w, err, sizeof(err)) != 0 ||
			wal_write_segments(cont.dir, &target, REDO, w.records, w.n_kept, w.vdl, err, sizeof(err)) < 0)
			bail_out("write: %s", err);
		wal_walk_free(&w);
		logs_reset(logs);
		memset(junk, 0x5A, sizeof(junk));
		poke(cont.dir, s.end[k] + (s.end[k] % XLOG_BLCKSZ == 0 ? SizeOfXLogShortPHD : 0), junk, sizeof(junk));
		poke(cont.dir, UINT64CONST(6) * SEG + 100, junk, sizeof(junk));

		/* storage's records after k, walked from there */
		logs_init(logs);
		give(&logs[0], &s, pgmask, k + 1, s.n);
		give(&logs[1], &s, pgmask, k + 1, s.n);
		logs[0].scl = logs[1].scl = s.end[s.n - 1];
		is_int(wal_walk_run(logs, &geom, wal_next_record_start(s.end[k], SEG), SEG, &w, err, sizeof(err)), 0,
			   "%s: the walk from a durable point succeeds", pass == 0 ? "mid-page" : "at a page end");
		files = wal_write_segments_from(cont.dir, &target, s.end[k], w.records, w.n_kept, w.vdl,
										err, sizeof(err));
		ok(files > 0, "%s: the WAL is continued from there (%d files): %s",
		   pass == 0 ? "mid-page" : "at a page end", files, files > 0 ? "ok" : err);
		ok(same_files(&whole, &cont), "%s: byte for byte the files of the whole write, the later file gone",
		   pass == 0 ? "mid-page" : "at a page end");
		wal_walk_free(&w);
		logs_reset(logs);
		files_free(&whole);

		/* a damaged record below the point: not taken */
		if (pass == 0)
		{
			poke(cont.dir, s.start[2] + SizeOfXLogRecord + 4, junk, 1);
			is_int(local_wal_verify(cont.dir, &target, REDO, s.end[3], &last, &records, &bytes,
									err, sizeof(err)), -1, "a damaged record below the point is refused");
			like(err, "CRC", "by its CRC");
		}
		files_free(&cont);
		remove_dir(&cont);
	}
	{
		char		name[MAXFNAMELEN],
					path[MAXPGPATH + MAXFNAMELEN];

		XLogFileName(name, 1, 3, SEG);
		snprintf(path, sizeof(path), "%s/%s", whole.dir, name);
		unlink(path);
		is_int(local_wal_verify(whole.dir, &target, REDO, s.end[s.n - 1], &last, &records, &bytes,
								err, sizeof(err)), -1, "a missing segment is refused");
	}
	files_free(&whole);
	remove_dir(&whole);
	synth_free(&s);
}

int
main(void)
{
	test_log_order();
	test_layout_arithmetic();
	test_layout();
	test_gap();
	test_missing_from_pg();
	test_mismatch();
	test_bad_crc();
	test_first_record();
	test_local_wal();
	return done_testing();
}
