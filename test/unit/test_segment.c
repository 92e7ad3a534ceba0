/*
 * test_segment.c - unit tests of the durable segment log and the node's
 * segment table (storage_service/node/segment*.c, segment_table.c): the on-disk
 * format and its recovery (torn tails, flipped bits, bad headers, corrupt
 * meta), SCL and holes under out-of-order arrival, durability of pending
 * records, batch validation that never writes on error, reads, epochs,
 * membership rules of segment creation, and concurrent appends with a
 * syncer thread.  Each test works in its own temporary data directory.
 */
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "segment.h"
#include "segment_table.h"
#include "tap.h"
#include "testutil.h"

#define VOL		0x00c0ffee12345678ULL
#define MAXPAY	(1u << 20)

/* ---- helpers ---- */

static void log_capture_begin(const char *path);
static void log_capture_end(void);
static char default_log[300];

static void
make_meta(aurora_segment_meta *m, uint64_t volume_id, uint32_t pg_id, uint32_t idx,
		  uint64_t base_lsn)
{
	static const char *const azs[AURORA_PG_COPIES] = {"az1", "az1", "az2", "az2", "az3", "az3"};

	memset(m, 0, sizeof(*m));
	m->volume_id = volume_id;
	m->pg_id = pg_id;
	m->replica_index = idx;
	m->volume_epoch = 1;
	m->membership_epoch = 1;
	m->base_lsn = base_lsn;
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		snprintf(m->members[i].node_id, sizeof(m->members[i].node_id), "n%d", i);
		snprintf(m->members[i].az, sizeof(m->members[i].az), "%s", azs[i]);
		snprintf(m->members[i].url, sizeof(m->members[i].url), "tcp://127.0.0.1:%d", 7100 + i);
	}
}

/* Node ids are n0..n5; this node is n<idx>. */
static const char *
self_of(uint32_t idx)
{
	static char id[8];

	snprintf(id, sizeof(id), "n%u", idx);
	return id;
}

static aurora_segment_table *
open_store(const char *dir)
{
	aurora_segment_table *st;
	char		err[512] = "";
	int			rc;

	log_capture_begin(default_log);
	rc = aurora_segment_table_open(dir, &st, err, sizeof(err));
	log_capture_end();
	if (rc != AURORA_SEG_OK)
		bail_out("aurora_segment_table_open(%s): %s", dir, err);
	return st;
}

static aurora_segment *
create_seg(aurora_segment_table *st, uint32_t pg_id, uint64_t base_lsn)
{
	aurora_segment_meta m;
	aurora_segment *seg;
	char		err[512] = "";

	int			rc;

	make_meta(&m, VOL, pg_id, 2, base_lsn);
	log_capture_begin(default_log);
	rc = aurora_segment_table_create_segment(st, &m, "n2", &seg, err, sizeof(err));
	log_capture_end();
	if (rc != AURORA_SEG_OK)
		bail_out("create_segment pg %u: %s", pg_id, err);
	return seg;
}

static void
seg_path(const char *dir, uint32_t pg_id, const char *file, char *out, size_t cap)
{
	char		name[64];

	aurora_segment_dir_name(VOL, pg_id, name, sizeof(name));
	snprintf(out, cap, "%s/segments/%s/%s", dir, name, file);
}

static long long
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long long) sb.st_size : -1;
}

/* A record with a payload derived from its start, so contents can be checked. */
typedef struct trec
{
	aurora_log_record r;
	uint8_t		buf[256];
} trec;

static void
mkrec(trec *t, uint64_t start, uint64_t end, uint64_t prev, uint32_t len)
{
	if (len > sizeof(t->buf))
		bail_out("test record too large");
	t->r.start_lsn = start;
	t->r.end_lsn = end;
	t->r.prev_lsn = prev;
	t->r.len = len;
	for (uint32_t i = 0; i < len; i++)
		t->buf[i] = (uint8_t) (start * 31 + i * 7);
	t->r.payload = t->buf;
}

static int
append1(aurora_segment *s, const trec *t, char *err, size_t errlen)
{
	int			n_new;

	return aurora_segment_append(s, &t->r, 1, MAXPAY, &n_new, err, errlen);
}

static int
append_many(aurora_segment *s, trec *t, int n, int *n_new, char *err, size_t errlen)
{
	aurora_log_record recs[64];

	if (n > 64)
		bail_out("batch too large");
	for (int i = 0; i < n; i++)
		recs[i] = t[i].r;
	return aurora_segment_append(s, recs, n, MAXPAY, n_new, err, errlen);
}

static void
must_sync(aurora_segment *s)
{
	char		err[512] = "";

	if (aurora_segment_sync(s, err, sizeof(err)) != AURORA_SEG_OK)
		bail_out("sync: %s", err);
}

static aurora_segment_stats
stats(aurora_segment *s)
{
	aurora_segment_stats st;

	aurora_segment_get_stats(s, &st);
	return st;
}

/* Collects what aurora_segment_read emits (payloads copied). */
typedef struct collected
{
	int			n;
	uint64_t	start[8192];
	uint64_t	end[8192];
	uint64_t	prev[8192];
	uint32_t	len[8192];
	uint32_t	sum[8192];		/* byte sum of the payload */
	bool		payload_ok;		/* every payload matched mkrec's pattern */
	int			stop_after;		/* emit returns 99 after this many (0: never) */
} collected;

static int
collect_emit(void *arg, const aurora_log_record *r)
{
	collected  *c = arg;

	if (c->n >= 8192)
		return -1;
	c->start[c->n] = r->start_lsn;
	c->end[c->n] = r->end_lsn;
	c->prev[c->n] = r->prev_lsn;
	c->len[c->n] = r->len;
	c->sum[c->n] = 0;
	for (uint32_t i = 0; i < r->len; i++)
	{
		c->sum[c->n] += r->payload[i];
		if (r->payload[i] != (uint8_t) (r->start_lsn * 31 + i * 7))
			c->payload_ok = false;
	}
	c->n++;
	if (c->stop_after > 0 && c->n >= c->stop_after)
		return 99;
	return 0;
}

static int
read_range(aurora_segment *s, uint64_t from, uint64_t to, size_t max_bytes, collected *c,
		   bool *truncated)
{
	memset(c, 0, sizeof(*c));
	c->payload_ok = true;
	return aurora_segment_read(s, from, to, max_bytes, collect_emit, c, truncated);
}

/*
 * Node-log lines (aurora_log writes fd 2) of the enclosed calls go to a
 * file instead of the TAP stream; tests that check them use their own file.
 * Captures nest: an inner one (a helper's) keeps the outer file.
 */
static int	saved_stderr = -1;
static int	capture_depth;

static void
log_capture_begin(const char *path)
{
	int			fd;

	if (capture_depth++ > 0)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	if (fd < 0 || saved_stderr < 0 || dup2(fd, STDERR_FILENO) < 0)
		bail_out("cannot capture the node log in %s", path);
	close(fd);
}

static void
log_capture_end(void)
{
	if (--capture_depth > 0)
		return;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
}

static void
flip_byte(const char *path, long long off, uint8_t mask)
{
	int			fd = open(path, O_RDWR);
	uint8_t		b;

	if (fd < 0 || pread(fd, &b, 1, off) != 1)
		bail_out("cannot read %s at %lld", path, off);
	b ^= mask;
	if (pwrite(fd, &b, 1, off) != 1)
		bail_out("cannot write %s at %lld", path, off);
	close(fd);
}

static void
truncate_to(const char *path, long long size)
{
	if (truncate(path, size) != 0)
		bail_out("truncate %s: %s", path, strerror(errno));
}

/* The standard chain of n records: start 1000+100i, end +60, len 10+i. */
static void
chain(trec *t, int n)
{
	for (int i = 0; i < n; i++)
	{
		uint64_t	start = 1000 + 100 * (uint64_t) i;

		mkrec(&t[i], start, start + 60, i == 0 ? 0 : start - 100, (uint32_t) (10 + i));
	}
}

static long long
chain_bytes(int n)
{
	long long	b = AURORA_SEG_LOG_HEADER_SIZE;

	for (int i = 0; i < n; i++)
		b += AURORA_SEG_RECORD_HEADER_SIZE + 10 + i;
	return b;
}

/* ---- tests ---- */

static void
test_format_roundtrip(void)
{
	char		dir[256],
				path[512],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	trec		t[5];
	uint8_t    *bigbuf;
	aurora_log_record r;
	collected  *c = calloc(1, sizeof(*c));
	collected  *c2 = calloc(1, sizeof(*c2));
	aurora_segment_stats before,
				after;
	int			n_new = -1;
	uint8_t		hdr[52];
	int			fd;

	make_tmpdir("segment", dir, sizeof(dir));
	st = open_store(dir);
	s = create_seg(st, 7, 0);
	seg_path(dir, 7, "log", path, sizeof(path));
	is_int(file_size(path), AURORA_SEG_LOG_HEADER_SIZE, "a new log holds only its 16-byte header");

	chain(t, 5);
	mkrec(&t[2], 1200, 1260, 1100, 0);	/* an empty payload round-trips too */
	is_int(append_many(s, t, 5, &n_new, err, sizeof(err)), AURORA_SEG_OK, "append 5 records");
	is_int(n_new, 5, "all 5 are new");
	/* a payload larger than the recovery scan buffer (1 MiB) */
	bigbuf = malloc(3u << 19);
	for (size_t i = 0; i < (3u << 19); i++)
		bigbuf[i] = (uint8_t) (i * 13);
	r.start_lsn = 1500;
	r.end_lsn = 1560;
	r.prev_lsn = 1400;
	r.len = 3u << 19;
	r.payload = bigbuf;
	is_int(aurora_segment_append(s, &r, 1, 2u << 20, &n_new, err, sizeof(err)), AURORA_SEG_OK,
		   "append a 1.5 MiB record");
	must_sync(s);
	before = stats(s);
	is_uint(before.scl, 1560, "SCL is the end of the last record");
	is_uint(before.records, 6, "6 durable records");
	is_uint(before.highest_lsn, 1560, "highest_lsn");
	is_int(file_size(path), chain_bytes(5) - 12 + AURORA_SEG_RECORD_HEADER_SIZE + (3 << 19),
		   "file size = header + (36 + len) per record");

	/* The exact bytes of the file header and the first record header. */
	fd = open(path, O_RDONLY);
	ok(fd >= 0 && pread(fd, hdr, sizeof(hdr), 0) == (ssize_t) sizeof(hdr), "read the file head");
	close(fd);
	ok(memcmp(hdr, "AURORALOG\0\0\0\1\0\0\0", 16) == 0,
	   "file header: 'AURORALOG' NUL-padded to 12 bytes, u32 LE version 1");
	ok(memcmp(hdr + 16, "ALOG", 4) == 0, "record magic reads 'ALOG'");
	ok(hdr[24] == (1000 & 0xff) && hdr[25] == (1000 >> 8) && hdr[26] == 0,
	   "start_lsn is little-endian at record offset 8");
	ok(hdr[48] == 10 && hdr[49] == 0, "len is little-endian at record offset 32");

	is_int(read_range(s, 0, UINT64_MAX, SIZE_MAX, c, NULL), AURORA_SEG_OK, "read everything back");
	aurora_segment_table_close(st);

	st = open_store(dir);
	s = aurora_segment_table_find(st, VOL, 7);
	ok(s != NULL, "reopened store finds the segment");
	if (s == NULL)
		bail_out("segment missing after reopen");
	after = stats(s);
	is_uint(after.scl, before.scl, "SCL unchanged by restart");
	is_uint(after.records, 6, "records unchanged by restart");
	is_uint(after.bytes_on_disk, before.bytes_on_disk, "bytes_on_disk unchanged");
	is_uint(after.recovered_truncated_bytes, 0, "recovery cut nothing");
	is_str(after.recovery_note, "", "no recovery note");
	is_int(read_range(s, 0, UINT64_MAX, SIZE_MAX, c2, NULL), AURORA_SEG_OK, "read after reopen");
	is_int(c2->n, 6, "6 records read back");
	ok(c->n == c2->n && memcmp(c->start, c2->start, sizeof(c->start)) == 0 &&
	   memcmp(c->end, c2->end, sizeof(c->end)) == 0 &&
	   memcmp(c->prev, c2->prev, sizeof(c->prev)) == 0 &&
	   memcmp(c->len, c2->len, sizeof(c->len)) == 0 &&
	   memcmp(c->sum, c2->sum, sizeof(c->sum)) == 0, "identical records before and after reopen");
	is_uint(c2->len[2], 0, "empty payload kept");
	is_uint(c2->len[5], 3u << 19, "large payload length kept");
	{
		uint32_t	want = 0;

		for (size_t i = 0; i < (3u << 19); i++)
			want += (uint8_t) (i * 13);
		is_uint(c2->sum[5], want, "large payload bytes kept");
	}
	aurora_segment_table_close(st);
	free(bigbuf);
	free(c);
	free(c2);
	remove_tree(dir);
}

static void
test_torn_tail(void)
{
	char		dir[256],
				path[512],
				logpath[512],
				text[4096],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_stats ss;
	trec		t[3];
	collected  *c = calloc(1, sizeof(*c));

	make_tmpdir("segment", dir, sizeof(dir));
	snprintf(logpath, sizeof(logpath), "%s/node.log", dir);
	st = open_store(dir);
	s = create_seg(st, 1, 0);
	chain(t, 3);
	append_many(s, t, 3, NULL, err, sizeof(err));
	must_sync(s);
	aurora_segment_table_close(st);

	seg_path(dir, 1, "log", path, sizeof(path));
	/* cut the last record in the middle of its payload */
	truncate_to(path, chain_bytes(3) - 5);
	log_capture_begin(logpath);
	st = open_store(dir);
	log_capture_end();
	s = aurora_segment_table_find(st, VOL, 1);
	ok(s != NULL, "segment with a torn tail opens");
	if (s == NULL)
		bail_out("segment missing");
	ss = stats(s);
	is_uint(ss.records, 2, "the torn record is dropped, the 2 before it kept");
	is_uint(ss.scl, 1160, "SCL is the end of the last whole record");
	is_uint(ss.recovered_truncated_bytes, AURORA_SEG_RECORD_HEADER_SIZE + 12 - 5,
			"recovered_truncated_bytes counts the torn bytes");
	like(ss.recovery_note, "torn record payload", "recovery_note says why");
	is_int(file_size(path), chain_bytes(2), "file cut to the end of the last good record");
	read_text_file(logpath, text, sizeof(text));
	like(text, "recovery cut", "the cut is in the node log");
	is_int(read_range(s, 0, UINT64_MAX, SIZE_MAX, c, NULL), AURORA_SEG_OK, "read after recovery");
	is_int(c->n, 2, "2 records readable");
	/* the writer retries: the record is appended again after the cut */
	is_int(append1(s, &t[2], err, sizeof(err)), AURORA_SEG_OK, "torn record can be re-appended");
	must_sync(s);
	is_uint(stats(s).scl, 1260, "SCL back to the end of the chain");
	aurora_segment_table_close(st);

	/* cut inside a record header */
	truncate_to(path, chain_bytes(2) + 10);
	log_capture_begin(logpath);
	st = open_store(dir);
	log_capture_end();
	s = aurora_segment_table_find(st, VOL, 1);
	ss = stats(s);
	like(ss.recovery_note, "torn record header", "a header cut short is torn too");
	is_uint(ss.recovered_truncated_bytes, 10, "10 header bytes cut");
	is_uint(ss.scl, 1160, "SCL after a torn header");
	aurora_segment_table_close(st);

	/* a clean reopen after recovery reports nothing */
	st = open_store(dir);
	s = aurora_segment_table_find(st, VOL, 1);
	is_str(stats(s).recovery_note, "", "next open finds a clean log");
	aurora_segment_table_close(st);
	free(c);
	remove_tree(dir);
}

static void
test_preallocation(void)
{
	char		dir[256],
				path[512],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_stats ss;
	trec		t[4];
	long long	size;
	int			fd;

	make_tmpdir("segment", dir, sizeof(dir));
	st = open_store(dir);
	s = create_seg(st, 1, 0);
	chain(t, 4);
	append_many(s, t, 2, NULL, err, sizeof(err));
	must_sync(s);
	seg_path(dir, 1, "log", path, sizeof(path));
	is_int(aurora_segment_preallocate(s, err, sizeof(err)), AURORA_SEG_OK, "preallocate: %s", err);
	size = file_size(path);
	is_int(size, chain_bytes(2) + (1 << 20), "1 MiB of zeros after the records");
	is_int(aurora_segment_preallocate(s, err, sizeof(err)), AURORA_SEG_OK, "preallocate again");
	is_int(file_size(path), size, "nothing more while half of it is free");
	is_int(append1(s, &t[2], err, sizeof(err)), AURORA_SEG_OK, "append into the zeros");
	must_sync(s);
	is_int(file_size(path), size, "the file does not grow");
	is_uint(stats(s).bytes_on_disk, (uint64_t) chain_bytes(3), "bytes_on_disk counts records only");
	aurora_segment_table_close(st);

	st = open_store(dir);
	s = aurora_segment_table_find(st, VOL, 1);
	ss = stats(s);
	is_uint(ss.records, 3, "reopen: all 3 records");
	is_uint(ss.scl, 1260, "reopen: SCL at the third");
	is_str(ss.recovery_note, "", "a zero tail is free space, not damage");
	is_uint(ss.recovered_truncated_bytes, 0, "nothing cut");
	is_int(file_size(path), size, "the zeros stay");
	is_int(append1(s, &t[3], err, sizeof(err)), AURORA_SEG_OK, "append after reopen");
	must_sync(s);
	aurora_segment_table_close(st);

	/* a torn record inside the preallocated space is still cut */
	fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, "ALOGxx", 6, chain_bytes(4)) != 6)
		bail_out("cannot write %s", path);
	close(fd);
	log_capture_begin(default_log);
	st = open_store(dir);
	log_capture_end();
	s = aurora_segment_table_find(st, VOL, 1);
	ss = stats(s);
	is_uint(ss.records, 4, "torn bytes after the records: the 4 records kept");
	ok(ss.recovery_note[0] != '\0', "and the cut is reported (%s)", ss.recovery_note);
	is_int(file_size(path), chain_bytes(4), "cut back to the last record");
	aurora_segment_table_close(st);
	remove_tree(dir);
}

static void
test_bit_flip(void)
{
	char		dir[256],
				path[512],
				logpath[512],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_stats ss;
	trec		t[5];
	int			n_new;
	long long	off3 = chain_bytes(2);	/* record index 2 starts here */

	make_tmpdir("segment", dir, sizeof(dir));
	snprintf(logpath, sizeof(logpath), "%s/node.log", dir);
	st = open_store(dir);
	s = create_seg(st, 2, 0);
	chain(t, 5);
	append_many(s, t, 5, NULL, err, sizeof(err));
	must_sync(s);
	aurora_segment_table_close(st);

	seg_path(dir, 2, "log", path, sizeof(path));
	flip_byte(path, off3 + AURORA_SEG_RECORD_HEADER_SIZE + 3, 0x10);
	log_capture_begin(logpath);
	st = open_store(dir);
	log_capture_end();
	s = aurora_segment_table_find(st, VOL, 2);
	ok(s != NULL, "segment with a flipped bit opens");
	if (s == NULL)
		bail_out("segment missing");
	ss = stats(s);
	is_uint(ss.records, 2, "records before the damaged one are kept");
	is_uint(ss.scl, 1160, "SCL stops before the damaged record");
	like(ss.recovery_note, "CRC mismatch", "recovery_note names the CRC mismatch");
	is_uint(ss.recovered_truncated_bytes, chain_bytes(5) - off3,
			"the damaged record and everything after it are cut");
	is_int(file_size(path), off3, "file ends where the damaged record began");
	is_int(append_many(s, t + 2, 3, &n_new, err, sizeof(err)), AURORA_SEG_OK,
		   "the cut records can be refilled");
	is_int(n_new, 3, "3 records refilled");
	must_sync(s);
	is_uint(stats(s).scl, 1460, "SCL complete again after refill");
	aurora_segment_table_close(st);

	/* a damaged magic is caught the same way */
	flip_byte(path, chain_bytes(1), 0x01);
	log_capture_begin(logpath);
	st = open_store(dir);
	log_capture_end();
	s = aurora_segment_table_find(st, VOL, 2);
	like(stats(s).recovery_note, "bad record magic", "bad record magic detected");
	is_uint(stats(s).records, 1, "only the record before it survives");
	aurora_segment_table_close(st);
	remove_tree(dir);
}

static void
test_bad_header(void)
{
	char		dir[256],
				segdir[512],
				path[512],
				logpath[512],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	trec		t[2];
	long long	size;
	int			rc;

	make_tmpdir("segment", dir, sizeof(dir));
	snprintf(logpath, sizeof(logpath), "%s/node.log", dir);
	st = open_store(dir);
	s = create_seg(st, 3, 0);
	chain(t, 2);
	append_many(s, t, 2, NULL, err, sizeof(err));
	must_sync(s);
	create_seg(st, 4, 0);
	aurora_segment_table_close(st);

	seg_path(dir, 3, "", segdir, sizeof(segdir));
	seg_path(dir, 3, "log", path, sizeof(path));
	size = file_size(path);
	flip_byte(path, 2, 0x20);	/* "AURORALOG" -> "AUrORALOG" */
	err[0] = '\0';
	rc = aurora_segment_open(segdir, &s, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CORRUPT, "open fails with CORRUPT on a bad header");
	like(err, "bad file header", "message names the bad header");
	is_int(file_size(path), size, "the log is left untouched");

	log_capture_begin(logpath);
	st = open_store(dir);
	log_capture_end();
	is_int(aurora_segment_table_count(st), 1, "store opens the healthy segment");
	is_int(aurora_segment_table_broken_count(st), 1, "and counts the broken one");
	ok(aurora_segment_table_find(st, VOL, 3) == NULL, "the broken segment is not served");
	aurora_segment_table_close(st);

	flip_byte(path, 2, 0x20);	/* repair the magic, break the version */
	flip_byte(path, 12, 0x03);	/* version 1 -> 2 */
	rc = aurora_segment_open(segdir, &s, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CORRUPT, "unknown format version refused");
	like(err, "format version 2", "message names the version");
	flip_byte(path, 12, 0x03);

	truncate_to(path, 7);
	rc = aurora_segment_open(segdir, &s, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CORRUPT, "a log shorter than its header is refused");
	is_int(file_size(path), 7, "and not reset");

	truncate_to(path, 0);
	rc = aurora_segment_open(segdir, &s, err, sizeof(err));
	is_int(rc, AURORA_SEG_OK, "an empty log (no records) opens");
	if (rc == AURORA_SEG_OK)
	{
		is_int(file_size(path), AURORA_SEG_LOG_HEADER_SIZE, "and gets its header");
		aurora_segment_close(s);
	}
	remove_tree(dir);
}

static void
test_scl_holes(void)
{
	char		dir[256],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_stats ss;
	aurora_hole holes[8];
	trec		r100,
				r200,
				r300,
				r400;
	int			n;

	make_tmpdir("segment", dir, sizeof(dir));
	st = open_store(dir);
	s = create_seg(st, 5, 0);
	/* chain 0 -> 100 -> 200 -> 300 -> 400 (each record 50 long) */
	mkrec(&r100, 100, 150, 0, 8);
	mkrec(&r200, 200, 250, 100, 8);
	mkrec(&r300, 300, 350, 200, 8);
	mkrec(&r400, 400, 450, 300, 8);
	is_int(append1(s, &r400, err, sizeof(err)), AURORA_SEG_OK, "400 arrives first");
	is_int(append1(s, &r100, err, sizeof(err)), AURORA_SEG_OK, "then 100");
	is_int(append1(s, &r300, err, sizeof(err)), AURORA_SEG_OK, "then 300");
	must_sync(s);
	ss = stats(s);
	is_uint(ss.scl, 150, "SCL = end of 100 (200 missing)");
	is_uint(ss.highest_lsn, 450, "highest_lsn = end of 400");
	is_uint(ss.n_holes, 1, "one hole");
	n = aurora_segment_get_holes(s, holes, 8);
	is_int(n, 1, "get_holes returns 1");
	is_uint(holes[0].from_lsn, 150, "hole starts at SCL");
	is_uint(holes[0].to_lsn, 300, "hole ends at the next held record");

	is_int(append1(s, &r200, err, sizeof(err)), AURORA_SEG_OK, "200 arrives");
	is_uint(stats(s).scl, 150, "SCL unchanged while 200 is not synced");
	is_int(aurora_segment_get_holes(s, holes, 8), 0, "a pending record with the right backlink is no hole");
	ok(aurora_segment_needs_sync(s), "needs_sync after the append");
	must_sync(s);
	ok(!aurora_segment_needs_sync(s), "no sync needed afterwards");
	ss = stats(s);
	is_uint(ss.scl, 450, "SCL = end of 400 once 200 is durable");
	is_uint(ss.n_holes, 0, "no holes");
	aurora_segment_table_close(st);

	st = open_store(dir);
	s = aurora_segment_table_find(st, VOL, 5);
	is_uint(stats(s).scl, 450, "SCL recomputed after restart from out-of-order file");
	aurora_segment_table_close(st);

	/* the first record missing: SCL stays at the base */
	st = open_store(dir);
	s = create_seg(st, 6, 0);
	append1(s, &r200, err, sizeof(err));
	append1(s, &r400, err, sizeof(err));
	must_sync(s);
	is_uint(stats(s).scl, 0, "SCL = base_lsn while the chain's first record is missing");
	n = aurora_segment_get_holes(s, holes, 1);
	is_int(n, 2, "two holes counted");
	ok(holes[0].from_lsn == 0 && holes[0].to_lsn == 200, "first hole [0,200)");
	n = aurora_segment_get_holes(s, holes, 8);
	ok(holes[1].from_lsn == 250 && holes[1].to_lsn == 400, "second hole [250,400)");
	aurora_segment_table_close(st);

	/* a segment whose chain starts at a base */
	st = open_store(dir);
	s = create_seg(st, 8, 200);
	is_uint(stats(s).scl, 200, "a new segment's SCL is its base_lsn");
	is_int(append1(s, &r100, err, sizeof(err)), AURORA_SEG_OK, "record before the base accepted");
	is_int(append1(s, &r200, err, sizeof(err)), AURORA_SEG_OK, "record at the base accepted");
	is_uint(stats(s).pending_records, 0, "both ignored (covered by the base)");
	{
		trec		bad;

		mkrec(&bad, 320, 330, 150, 4);
		is_int(append1(s, &bad, err, sizeof(err)), AURORA_SEG_ERR_INCONSISTENT,
			   "a backlink reaching behind the base is inconsistent");
	}
	append1(s, &r300, err, sizeof(err));
	must_sync(s);
	is_uint(stats(s).scl, 350, "the chain starts at the record whose prev_lsn is the base");
	aurora_segment_table_close(st);
	remove_tree(dir);
}

static void
test_pending(void)
{
	char		dir[256],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_stats ss;
	trec		t[3];
	collected  *c = calloc(1, sizeof(*c));

	make_tmpdir("segment", dir, sizeof(dir));
	st = open_store(dir);
	s = create_seg(st, 1, 0);
	chain(t, 3);
	ok(!aurora_segment_needs_sync(s), "a new segment needs no sync");
	append_many(s, t, 2, NULL, err, sizeof(err));
	ss = stats(s);
	is_uint(ss.scl, 0, "unsynced records do not count in SCL");
	is_uint(ss.records, 0, "nor as durable records");
	is_uint(ss.pending_records, 2, "they are pending");
	is_uint(ss.highest_lsn, 0, "highest_lsn counts durable records only");
	read_range(s, 0, UINT64_MAX, SIZE_MAX, c, NULL);
	is_int(c->n, 0, "pending records are not readable");
	must_sync(s);
	ss = stats(s);
	is_uint(ss.scl, 1160, "SCL after sync");
	is_uint(ss.pending_records, 0, "nothing pending after sync");
	/* one sync covers several batches (group commit) */
	append1(s, &t[2], err, sizeof(err));
	{
		trec		t4;

		mkrec(&t4, 1300, 1360, 1200, 5);
		append1(s, &t4, err, sizeof(err));
	}
	is_uint(stats(s).pending_records, 2, "two batches pending");
	must_sync(s);
	is_uint(stats(s).scl, 1360, "one sync made both batches durable");
	aurora_segment_table_close(st);
	free(c);
	remove_tree(dir);
}

static void
test_duplicates(void)
{
	char		dir[256],
				path[512],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	trec		t[4];
	int			n_new = -1;
	long long	size;

	make_tmpdir("segment", dir, sizeof(dir));
	st = open_store(dir);
	s = create_seg(st, 1, 0);
	seg_path(dir, 1, "log", path, sizeof(path));
	chain(t, 4);
	append_many(s, t, 3, &n_new, err, sizeof(err));
	must_sync(s);
	size = file_size(path);
	is_int(append_many(s, t, 3, &n_new, err, sizeof(err)), AURORA_SEG_OK, "the same batch again succeeds");
	is_int(n_new, 0, "nothing new");
	is_int(file_size(path), size, "nothing written");
	ok(!aurora_segment_needs_sync(s), "nothing to sync");
	is_int(append_many(s, t + 1, 3, &n_new, err, sizeof(err)), AURORA_SEG_OK,
		   "a batch of 2 duplicates and 1 new record");
	is_int(n_new, 1, "only the new record is stored");
	must_sync(s);
	is_uint(stats(s).records, 4, "4 records held");
	is_uint(stats(s).scl, 1360, "SCL");
	/* a duplicate of a record that is still pending is a duplicate too */
	{
		trec		t5;

		mkrec(&t5, 1400, 1460, 1300, 3);
		append1(s, &t5, err, sizeof(err));
		is_int(append_many(s, &t5, 1, &n_new, err, sizeof(err)), AURORA_SEG_OK, "retry of a pending record");
		is_int(n_new, 0, "is a duplicate");
	}
	aurora_segment_table_close(st);
	remove_tree(dir);
}

static void
test_rejections(void)
{
	char		dir[256],
				path[512],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_stats before;
	trec		t[3],
				x[3];
	int			n_new;
	long long	size;
	int			rc;

	make_tmpdir("segment", dir, sizeof(dir));
	st = open_store(dir);
	s = create_seg(st, 1, 0);
	seg_path(dir, 1, "log", path, sizeof(path));
	chain(t, 3);
	append_many(s, t, 2, NULL, err, sizeof(err));	/* [1000,1060) [1100,1160) */
	must_sync(s);
	size = file_size(path);
	before = stats(s);

	/* same start, different payload; in a batch with a good record */
	x[0] = t[2];
	x[0].r.payload = x[0].buf;
	mkrec(&x[1], 1100, 1160, 1000, 11);
	x[1].buf[0] ^= 1;
	rc = append_many(s, x, 2, &n_new, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_INCONSISTENT, "same start with a different payload is inconsistent");
	like(err, "differs from the held record", "message says so");
	is_int(file_size(path), size, "file size unchanged");
	ok(!aurora_segment_needs_sync(s), "nothing pending");
	is_uint(stats(s).pending_records, 0, "the good record of the batch was not stored either");

	mkrec(&x[0], 1100, 1170, 1000, 11);
	is_int(append_many(s, x, 1, &n_new, err, sizeof(err)), AURORA_SEG_ERR_INCONSISTENT,
		   "same start with a different end is inconsistent");
	mkrec(&x[0], 1130, 1190, 1000, 4);
	is_int(append_many(s, x, 1, &n_new, err, sizeof(err)), AURORA_SEG_ERR_INCONSISTENT,
		   "overlap with the tail of a held record");
	like(err, "overlaps the held record [1100,1160)", "message names the held record");
	mkrec(&x[0], 950, 1010, 900, 4);
	is_int(append_many(s, x, 1, &n_new, err, sizeof(err)), AURORA_SEG_ERR_INCONSISTENT,
		   "overlap with the head of a held record");
	mkrec(&x[0], 1070, 1080, 1000, 4);
	is_int(append_many(s, x, 1, &n_new, err, sizeof(err)), AURORA_SEG_ERR_INCONSISTENT,
		   "a record between two chained records contradicts their backlink");
	mkrec(&x[0], 1300, 1310, 1030, 4);
	is_int(append_many(s, x, 1, &n_new, err, sizeof(err)), AURORA_SEG_ERR_INCONSISTENT,
		   "a backlink into the middle of a held record");

	mkrec(&x[0], 2000, 2060, 1900, 4);
	mkrec(&x[1], 2050, 2070, 1950, 4);
	rc = append_many(s, x, 2, &n_new, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_INVALID, "overlap within the batch rejected");
	like(err, "of the batch overlap", "message says so");
	x[1] = x[0];
	x[1].r.payload = x[1].buf;
	is_int(append_many(s, x, 2, &n_new, err, sizeof(err)), AURORA_SEG_ERR_INVALID,
		   "the same record twice in one batch is a batch overlap");

	mkrec(&x[0], 2000, 2000, 1900, 4);
	is_int(append_many(s, x, 1, &n_new, err, sizeof(err)), AURORA_SEG_ERR_INVALID, "start == end rejected");
	mkrec(&x[0], 2000, 2060, 2000, 4);
	is_int(append_many(s, x, 1, &n_new, err, sizeof(err)), AURORA_SEG_ERR_INVALID, "prev == start rejected");
	mkrec(&x[0], 2000, 2060, 1900, 4);
	x[0].r.payload = NULL;
	is_int(append_many(s, x, 1, &n_new, err, sizeof(err)), AURORA_SEG_ERR_INVALID,
		   "missing payload rejected");
	is_int(aurora_segment_append(s, NULL, -1, MAXPAY, &n_new, err, sizeof(err)), AURORA_SEG_ERR_INVALID,
		   "negative count rejected");

	mkrec(&x[0], 2000, 2060, 1900, 200);
	mkrec(&x[1], 2100, 2160, 2000, 10);
	{
		aurora_log_record recs[2] = {x[1].r, x[0].r};

		rc = aurora_segment_append(s, recs, 2, 100, &n_new, err, sizeof(err));
	}
	is_int(rc, AURORA_SEG_ERR_TOO_LARGE, "payload over the limit rejected");
	like(err, "exceeds the limit of 100", "message names the limit");

	is_int(file_size(path), size, "no rejected batch changed the file");
	is_uint(stats(s).scl, before.scl, "SCL unchanged");
	is_uint(stats(s).records + stats(s).pending_records, 2, "still exactly 2 records");
	is_int(append_many(s, t + 2, 1, &n_new, err, sizeof(err)), AURORA_SEG_OK, "a good record still appends");
	aurora_segment_table_close(st);
	remove_tree(dir);
}

static void
test_geometry(void)
{
	char		dir[256],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_meta m,
				got;

	make_tmpdir("segment", dir, sizeof(dir));
	st = open_store(dir);
	make_meta(&m, VOL, 3, 2, 0);
	m.n_pgs = 16;
	m.blocks_per_segment = 1024;
	log_capture_begin(default_log);
	is_int(aurora_segment_table_create_segment(st, &m, "n2", &s, err, sizeof(err)), AURORA_SEG_OK,
		   "a segment is created with the volume's geometry");
	is_int(aurora_segment_table_create_segment(st, &m, "n2", &s, err, sizeof(err)), AURORA_SEG_OK,
		   "creating it again with the same geometry is an idempotent retry");
	m.n_pgs = 8;
	is_int(aurora_segment_table_create_segment(st, &m, "n2", &s, err, sizeof(err)), AURORA_SEG_ERR_CONFLICT,
		   "a different number of protection groups is a conflict");
	log_capture_end();
	like(err, "16 protection groups of 1024-block chunks; this request declares 8 of 1024",
		 "which says both geometries");
	aurora_segment_table_close(st);
	st = open_store(dir);
	aurora_segment_get_meta(aurora_segment_table_find(st, VOL, 3), &got);
	ok(got.n_pgs == 16 && got.blocks_per_segment == 1024, "the geometry survives a restart (meta file)");
	aurora_segment_table_close(st);
	remove_tree(dir);
}

static void
test_record_before(void)
{
	char		dir[256],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_log_record r;
	trec		t[6];
	int			n_new;

	make_tmpdir("segment", dir, sizeof(dir));
	st = open_store(dir);
	s = create_seg(st, 1, 0);
	ok(!aurora_segment_record_before(s, UINT64_MAX, &r), "empty segment: no record before anything");
	/* records 0, 1, 2 and 4 (a hole at 3) durable, then 5 appended but not synced */
	for (int i = 0; i < 6; i++)
		mkrec(&t[i], 1000 + 100 * (uint64_t) i, 1060 + 100 * (uint64_t) i,
			  i == 0 ? 0 : 900 + 100 * (uint64_t) i, 10);
	append_many(s, t, 3, &n_new, err, sizeof(err));
	append1(s, &t[4], err, sizeof(err));
	must_sync(s);
	append1(s, &t[5], err, sizeof(err));

	ok(!aurora_segment_record_before(s, 1000, &r), "nothing starts before the first record");
	ok(aurora_segment_record_before(s, 1001, &r) && r.start_lsn == 1000 && r.prev_lsn == 0 &&
	   r.end_lsn == 1060 && r.len == 10 && r.payload == NULL,
	   "just after the first start: the first record's header");
	ok(aurora_segment_record_before(s, 1200, &r) && r.start_lsn == 1100 && r.prev_lsn == 1000,
	   "strictly before: 1200 gives 1100");
	ok(aurora_segment_record_before(s, 1350, &r) && r.start_lsn == 1200,
	   "inside the hole: the last record before it");
	ok(aurora_segment_record_before(s, UINT64_MAX, &r) && r.start_lsn == 1400,
	   "an unsynced record is not reported (1500 is pending, 1400 is durable)");
	must_sync(s);
	ok(aurora_segment_record_before(s, UINT64_MAX, &r) && r.start_lsn == 1500,
	   "once synced it is");
	aurora_segment_table_close(st);
	remove_tree(dir);
}

static void
test_read(void)
{
	char		dir[256],
				path[512],
				logpath[512],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	trec		t[10];
	collected  *c = calloc(1, sizeof(*c));
	bool		trunc;
	int			rc;

	make_tmpdir("segment", dir, sizeof(dir));
	snprintf(logpath, sizeof(logpath), "%s/node.log", dir);
	st = open_store(dir);
	s = create_seg(st, 1, 0);
	for (int i = 0; i < 10; i++)
		mkrec(&t[i], 1000 + 100 * (uint64_t) i, 1060 + 100 * (uint64_t) i,
			  i == 0 ? 0 : 900 + 100 * (uint64_t) i, 100);
	append_many(s, t, 10, NULL, err, sizeof(err));
	must_sync(s);

	rc = read_range(s, 0, UINT64_MAX, SIZE_MAX, c, &trunc);
	ok(rc == AURORA_SEG_OK && c->n == 10 && !trunc, "whole log, not truncated");
	ok(c->payload_ok, "payloads intact");
	rc = read_range(s, 1200, 1500, SIZE_MAX, c, &trunc);
	ok(rc == AURORA_SEG_OK && c->n == 3 && c->start[0] == 1200 && c->start[2] == 1400 && !trunc,
	   "from <= start < to: 1200, 1300, 1400");
	rc = read_range(s, 1150, 1201, SIZE_MAX, c, &trunc);
	ok(c->n == 1 && c->start[0] == 1200, "from inside a record skips it (start < from)");
	rc = read_range(s, 1000, 2000, 250, c, &trunc);
	ok(rc == AURORA_SEG_OK && c->n == 2 && trunc, "max_bytes 250 gives 2 records of 100, truncated");
	rc = read_range(s, 1000, 2000, 50, c, &trunc);
	ok(c->n == 1 && trunc, "a budget below one record still returns one record");
	rc = read_range(s, 1000, 2000, 1000, c, &trunc);
	ok(c->n == 10 && !trunc, "budget exactly the total is not truncated");
	rc = read_range(s, 5000, 6000, 10, c, &trunc);
	ok(rc == AURORA_SEG_OK && c->n == 0 && !trunc, "empty range");
	memset(c, 0, sizeof(*c));
	c->payload_ok = true;
	c->stop_after = 3;
	rc = aurora_segment_read(s, 0, UINT64_MAX, SIZE_MAX, collect_emit, c, NULL);
	ok(rc == 99 && c->n == 3, "emit's non-zero return stops the read and is returned");

	/*
	 * A run of back-to-back records longer than one read span (1 MiB) is
	 * read in pieces, every record whole: 4 000 records of 256 bytes.
	 */
	{
		aurora_segment *big = create_seg(st, 2, 0);
		trec	   *bt = malloc(50 * sizeof(*bt));
		uint64_t	lsn = 1000;

		for (int batch = 0; batch < 80; batch++)
		{
			for (int i = 0; i < 50; i++, lsn += 300)
				mkrec(&bt[i], lsn, lsn + 300, lsn == 1000 ? 0 : lsn - 300, 256);
			if (append_many(big, bt, 50, NULL, err, sizeof(err)) != 0)
				bail_out("append: %s", err);
		}
		must_sync(big);
		rc = read_range(big, 0, UINT64_MAX, SIZE_MAX, c, &trunc);
		ok(rc == AURORA_SEG_OK && c->n == 4000 && c->payload_ok && c->start[3999] == lsn - 300,
		   "4 000 records (1.2 MB back to back) read whole and in order (%d)", c->n);
		free(bt);
	}

	/* corruption behind the segment's back is found when reading */
	seg_path(dir, 1, "log", path, sizeof(path));
	flip_byte(path, chain_bytes(0) + 4 * (AURORA_SEG_RECORD_HEADER_SIZE + 100) +
			  AURORA_SEG_RECORD_HEADER_SIZE + 50, 0x80);
	log_capture_begin(logpath);
	rc = read_range(s, 0, UINT64_MAX, SIZE_MAX, c, &trunc);
	log_capture_end();
	is_int(rc, AURORA_SEG_ERR_CORRUPT, "a record whose bytes changed on disk reads as CORRUPT");
	is_int(c->n, 4, "records before it were emitted, the bad one was not");
	rc = read_range(s, 1000, 1400, SIZE_MAX, c, &trunc);
	ok(rc == AURORA_SEG_OK && c->n == 4, "ranges that avoid it still read");
	aurora_segment_table_close(st);
	free(c);
	remove_tree(dir);
}

static void
test_epochs(void)
{
	char		dir[256],
				path[512],
				text[4096],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	aurora_segment_meta m;

	make_tmpdir("segment", dir, sizeof(dir));
	st = open_store(dir);
	s = create_seg(st, 1, 0);
	is_int(aurora_segment_set_epochs(s, 5, 3, err, sizeof(err)), AURORA_SEG_OK, "raise both");
	aurora_segment_get_meta(s, &m);
	ok(m.volume_epoch == 5 && m.membership_epoch == 3, "epochs 5, 3");
	is_int(aurora_segment_set_epochs(s, 4, 7, err, sizeof(err)), AURORA_SEG_OK, "lower one, raise other");
	aurora_segment_get_meta(s, &m);
	ok(m.volume_epoch == 5 && m.membership_epoch == 7, "volume epoch kept at 5, membership raised to 7");
	is_int(aurora_segment_set_epochs(s, 1, 1, err, sizeof(err)), AURORA_SEG_OK, "lower both");
	aurora_segment_get_meta(s, &m);
	ok(m.volume_epoch == 5 && m.membership_epoch == 7, "nothing lowered");
	is_uint(stats(s).volume_epoch, 5, "stats show the volume epoch");
	aurora_segment_table_close(st);

	seg_path(dir, 1, "meta", path, sizeof(path));
	read_text_file(path, text, sizeof(text));
	like(text, "volume_epoch 5\nmembership_epoch 7\n", "meta file holds the epochs");
	seg_path(dir, 1, "meta.tmp", path, sizeof(path));
	ok(access(path, F_OK) != 0, "no meta.tmp left behind");
	st = open_store(dir);
	s = aurora_segment_table_find(st, VOL, 1);
	aurora_segment_get_meta(s, &m);
	ok(m.volume_epoch == 5 && m.membership_epoch == 7, "epochs survive reopen");
	ok(m.volume_id == VOL && m.pg_id == 1 && m.replica_index == 2, "identity survives reopen");
	is_str(m.members[4].url, "tcp://127.0.0.1:7104", "member urls survive reopen");
	aurora_segment_table_close(st);
	remove_tree(dir);
}

static void
test_store_create(void)
{
	char		dir[256],
				logpath[512],
				path[512],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s,
			   *s2;
	aurora_segment_meta m,
				m2;
	int			rc;

	make_tmpdir("segment", dir, sizeof(dir));
	snprintf(logpath, sizeof(logpath), "%s/node.log", dir);
	st = open_store(dir);
	is_int(aurora_segment_table_count(st), 0, "empty store");
	make_meta(&m, VOL, 9, 3, 0);
	log_capture_begin(logpath);
	rc = aurora_segment_table_create_segment(st, &m, self_of(3), &s, err, sizeof(err));
	log_capture_end();
	is_int(rc, AURORA_SEG_OK, "create segment");
	ok(aurora_segment_table_find(st, VOL, 9) == s, "find returns it");
	ok(aurora_segment_table_find(st, VOL, 10) == NULL, "find of another PG returns NULL");
	ok(aurora_segment_table_find(st, VOL + 1, 9) == NULL, "find of another volume returns NULL");

	m2 = m;
	m2.volume_epoch = 4;
	rc = aurora_segment_table_create_segment(st, &m2, self_of(3), &s2, err, sizeof(err));
	is_int(rc, AURORA_SEG_OK, "identical create is idempotent");
	ok(s2 == s, "and returns the same segment");
	is_uint(stats(s).volume_epoch, 4, "a retried create may raise the epoch");
	is_int(aurora_segment_table_count(st), 1, "still one segment");

	make_meta(&m2, VOL, 9, 4, 0);
	rc = aurora_segment_table_create_segment(st, &m2, self_of(4), NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CONFLICT, "same PG with another replica index conflicts");
	like(err, "different replica index", "message says so");
	m2 = m;
	snprintf(m2.members[0].node_id, sizeof(m2.members[0].node_id), "other");
	rc = aurora_segment_table_create_segment(st, &m2, self_of(3), NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CONFLICT, "same PG with other members conflicts");
	like(err, "different membership", "message says so");

	make_meta(&m2, VOL, 11, 3, 0);
	snprintf(m2.members[5].node_id, sizeof(m2.members[5].node_id), "n3");
	rc = aurora_segment_table_create_segment(st, &m2, self_of(3), NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CONFLICT, "two replicas of one PG on this node rejected");
	like(err, "a node may not hold two replicas of one PG", "message says why");
	make_meta(&m2, VOL, 11, 3, 0);
	snprintf(m2.members[0].node_id, sizeof(m2.members[0].node_id), "n1");
	rc = aurora_segment_table_create_segment(st, &m2, self_of(3), NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CONFLICT, "duplicate member node rejected");
	make_meta(&m2, VOL, 11, 3, 0);
	rc = aurora_segment_table_create_segment(st, &m2, "n5", NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CONFLICT, "members[replica_index] must be this node");
	like(err, "not this node n5", "message says so");
	make_meta(&m2, VOL, 11, 3, 0);
	snprintf(m2.members[2].az, sizeof(m2.members[2].az), "az1");
	rc = aurora_segment_table_create_segment(st, &m2, self_of(3), NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CONFLICT, "three members in one AZ rejected");
	like(err, "2 per AZ across 3 AZs", "message names the rule");
	make_meta(&m2, VOL, 11, 3, 0);
	snprintf(m2.members[0].az, sizeof(m2.members[0].az), "az4");
	snprintf(m2.members[1].az, sizeof(m2.members[1].az), "az5");
	rc = aurora_segment_table_create_segment(st, &m2, self_of(3), NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CONFLICT, "four AZs rejected");
	make_meta(&m2, VOL, 11, 6, 0);
	rc = aurora_segment_table_create_segment(st, &m2, self_of(3), NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_INVALID, "replica_index 6 is invalid");
	make_meta(&m2, VOL, 11, 3, 0);
	snprintf(m2.members[1].url, sizeof(m2.members[1].url), "http://x:1");
	rc = aurora_segment_table_create_segment(st, &m2, self_of(3), NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_INVALID, "bad member url is invalid");
	make_meta(&m2, VOL, 11, 3, 0);
	snprintf(m2.members[1].node_id, sizeof(m2.members[1].node_id), "a b");
	rc = aurora_segment_table_create_segment(st, &m2, self_of(3), NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_INVALID, "node id with a space is invalid");
	is_int(aurora_segment_table_count(st), 1, "no rejected create added a segment");

	/* an interrupted creation left a temp dir behind; it does not block */
	{
		char		name[64];

		aurora_segment_dir_name(VOL, 12, name, sizeof(name));
		snprintf(path, sizeof(path), "%s/segments/.creating-%s", dir, name);
		mkdir(path, 0700);
		snprintf(path, sizeof(path), "%s/segments/.creating-%s/log", dir, name);
		write_text_file(path, "partial");
	}
	make_meta(&m2, VOL, 12, 3, 0);
	log_capture_begin(logpath);
	rc = aurora_segment_table_create_segment(st, &m2, self_of(3), NULL, err, sizeof(err));
	log_capture_end();
	is_int(rc, AURORA_SEG_OK, "create succeeds over a leftover of an interrupted creation");
	aurora_segment_table_close(st);

	log_capture_begin(logpath);
	st = open_store(dir);
	log_capture_end();
	is_int(aurora_segment_table_count(st), 2, "reopen finds both segments");
	ok(aurora_segment_table_find(st, VOL, 9) != NULL && aurora_segment_table_find(st, VOL, 12) != NULL,
	   "by volume and PG");
	aurora_segment_table_close(st);
	remove_tree(dir);
}

static int
count_cb(void *arg, aurora_segment *seg)
{
	aurora_segment_meta m;

	aurora_segment_get_meta(seg, &m);
	((uint32_t *) arg)[0]++;
	((uint32_t *) arg)[1] += m.pg_id;
	return 0;
}

static void
test_corrupt_meta(void)
{
	char		dir[256],
				path[512],
				logpath[512],
				text[4096],
				before[4096],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment_meta m;
	uint32_t	acc[2] = {0, 0};
	int			rc;

	make_tmpdir("segment", dir, sizeof(dir));
	snprintf(logpath, sizeof(logpath), "%s/node.log", dir);
	st = open_store(dir);
	create_seg(st, 1, 0);
	create_seg(st, 2, 0);
	create_seg(st, 3, 0);
	create_seg(st, 4, 0);
	is_int(aurora_segment_table_foreach(st, count_cb, acc), 0, "foreach visits");
	ok(acc[0] == 4 && acc[1] == 10, "every segment once");
	aurora_segment_table_close(st);

	seg_path(dir, 2, "meta", path, sizeof(path));
	read_text_file(path, before, sizeof(before));
	flip_byte(path, 40, 0x01);	/* a digit inside the file; the CRC catches it */
	seg_path(dir, 3, "meta", path, sizeof(path));
	write_text_file(path, "garbage\n");
	/* a meta with a correct checksum over a malformed line */
	seg_path(dir, 4, "meta", path, sizeof(path));
	read_text_file(path, text, sizeof(text));
	{
		char	   *p = strstr(text, "\npg_id 4\n");
		char	   *crcline = strstr(text, "crc32c ");
		char		fixed[8192];

		if (p == NULL || crcline == NULL)
			bail_out("unexpected meta layout: %s", text);
		memcpy(p, "\npg_id x\n", 9);
		*crcline = '\0';
		snprintf(fixed, sizeof(fixed), "%scrc32c %08" PRIx32 "\n", text,
				 aurora_crc32c(0, text, strlen(text)));
		write_text_file(path, fixed);
	}
	log_capture_begin(logpath);
	st = open_store(dir);
	log_capture_end();
	is_int(aurora_segment_table_count(st), 1, "only the healthy segment opens");
	is_int(aurora_segment_table_broken_count(st), 3, "three broken segments counted");
	ok(aurora_segment_table_find(st, VOL, 2) == NULL, "corrupt-meta segment not served");
	read_text_file(logpath, text, sizeof(text));
	like(text, "checksum mismatch", "node log says the meta checksum failed");
	like(text, "last line is not 'crc32c", "node log says a meta has no checksum line");
	like(text, "malformed line: 'pg_id x'", "node log names the malformed line");
	seg_path(dir, 2, "meta", path, sizeof(path));
	read_text_file(path, text, sizeof(text));
	is_int((int) strlen(text), (int) strlen(before), "the corrupt meta is left in place");
	seg_path(dir, 2, "log", path, sizeof(path));
	ok(access(path, F_OK) == 0, "its log is left in place");

	make_meta(&m, VOL, 2, 2, 0);
	rc = aurora_segment_table_create_segment(st, &m, "n2", NULL, err, sizeof(err));
	is_int(rc, AURORA_SEG_ERR_CONFLICT, "creating over a broken segment directory is refused");
	like(err, "did not open at start-up", "message explains");
	aurora_segment_table_close(st);
	remove_tree(dir);
}

/*
 * Random arrival order, random batch sizes, retries and syncs: after every
 * step SCL and the holes must equal what a simple model of the chain says.
 */
#define RAND_RECS	300

static uint32_t
lcg(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

static void
test_random_order(void)
{
	char		dir[256],
				err[512] = "";
	aurora_segment_table *st;
	aurora_segment *s;
	static trec t[RAND_RECS];
	int			order[RAND_RECS];
	bool		held[RAND_RECS] = {false},
				durable[RAND_RECS] = {false};
	static aurora_hole holes[RAND_RECS];
	uint32_t	seed = 20240601u;
	int			bad_scl = 0,
				bad_holes = 0,
				bad_append = 0,
				steps = 0;

	make_tmpdir("segment", dir, sizeof(dir));
	st = open_store(dir);
	s = create_seg(st, 30, 0);
	for (int i = 0; i < RAND_RECS; i++)
		mkrec(&t[i], 1000 + 100 * (uint64_t) i, 1060 + 100 * (uint64_t) i,
			  i == 0 ? 0 : 900 + 100 * (uint64_t) i, (uint32_t) (i % 50));
	for (int i = 0; i < RAND_RECS; i++)
		order[i] = i;
	for (int i = RAND_RECS - 1; i > 0; i--)
	{
		int			j = (int) (lcg(&seed) % (uint32_t) (i + 1));
		int			tmp = order[i];

		order[i] = order[j];
		order[j] = tmp;
	}
	for (int next = 0; next < RAND_RECS; steps++)
	{
		aurora_log_record recs[10];
		int			n = 1 + (int) (lcg(&seed) % 8);
		int			m = 0,
					n_new;
		int			want_new = 0;

		for (int k = 0; k < n && next < RAND_RECS; k++)
		{
			recs[m++] = t[order[next]].r;
			held[order[next++]] = true;
			want_new++;
		}
		/* now and then resend something already held (a retry) */
		if (next > want_new && lcg(&seed) % 3 == 0)
		{
			int			old = order[lcg(&seed) % (uint32_t) (next - want_new)];

			recs[m++] = t[old].r;
		}
		if (aurora_segment_append(s, recs, m, MAXPAY, &n_new, err, sizeof(err)) != 0 ||
			n_new != want_new)
		{
			diag("step %d: append: %s (n_new %d, want %d)", steps, err, n_new, want_new);
			bad_append++;
		}
		if (lcg(&seed) % 3 == 0 || next == RAND_RECS)
		{
			must_sync(s);
			for (int i = 0; i < RAND_RECS; i++)
				durable[i] = held[i];
		}
		{
			uint64_t	want_scl = 0;
			int			want_holes = 0,
						got,
						prev_held = -1;
			bool		match = true;

			for (int i = 0; i < RAND_RECS && durable[i]; i++)
				want_scl = t[i].r.end_lsn;
			got = aurora_segment_get_holes(s, holes, RAND_RECS);
			for (int i = 0; i < RAND_RECS; i++)
			{
				if (!held[i])
					continue;
				if (i > 0 && prev_held != i - 1)
				{
					uint64_t	from = prev_held < 0 ? 0 : t[prev_held].r.end_lsn;

					if (want_holes >= got || holes[want_holes].from_lsn != from ||
						holes[want_holes].to_lsn != t[i].r.start_lsn)
						match = false;
					want_holes++;
				}
				prev_held = i;
			}
			if (stats(s).scl != want_scl)
				bad_scl++;
			if (got != want_holes || stats(s).n_holes != (uint32_t) want_holes || !match)
			{
				if (bad_holes++ == 0)
					diag("step %d: %d holes, want %d", steps, got, want_holes);
			}
		}
	}
	is_int(bad_append, 0, "every append stored exactly its new records (%d steps)", steps);
	is_int(bad_scl, 0, "SCL matched the model after every step");
	is_int(bad_holes, 0, "holes matched the model after every step");
	is_uint(stats(s).scl, t[RAND_RECS - 1].r.end_lsn, "complete chain at the end");
	aurora_segment_table_close(st);
	st = open_store(dir);
	s = aurora_segment_table_find(st, VOL, 30);
	is_uint(stats(s).scl, t[RAND_RECS - 1].r.end_lsn, "and after reopen");
	is_uint(stats(s).n_holes, 0, "no holes after reopen");
	aurora_segment_table_close(st);
	remove_tree(dir);
}

/* ---- concurrency ---- */

#define CONC_RECS	6000
#define CONC_THREADS 4
#define CONC_BATCH	6

typedef struct conc
{
	aurora_segment_table *st;
	aurora_segment *seg[2];
	atomic_int	writers_left;
	atomic_int	errors;
	atomic_int	scl_regressions;
	int			tid;
} conc;

static void
conc_rec(trec *t, int i)
{
	uint64_t	start = 10000 + 40 * (uint64_t) i;

	mkrec(t, start, start + 30, i == 0 ? 0 : start - 40, (uint32_t) ((i * 37) % 200));
}

static void *
conc_writer(void *arg)
{
	conc	   *c = ((conc **) arg)[0];
	int			tid = (int) (intptr_t) ((void **) arg)[1];
	trec	   *t = malloc(sizeof(trec) * CONC_BATCH);
	char		err[512];

	/* Thread tid owns records i with i % threads == tid, so arrival interleaves. */
	for (int base = tid, b = 0; base < CONC_RECS; b++)
	{
		int			n = 0;

		while (n < CONC_BATCH && base < CONC_RECS)
		{
			conc_rec(&t[n++], base);
			base += CONC_THREADS;
		}
		for (int k = 0; k < 2; k++)
		{
			aurora_log_record recs[CONC_BATCH];
			int			n_new;

			for (int j = 0; j < n; j++)
				recs[j] = t[j].r;
			if (aurora_segment_append(c->seg[k], recs, n, MAXPAY, &n_new, err, sizeof(err)) != 0)
			{
				diag("append: %s", err);
				c->errors++;
			}
		}
		/* some writers also wait for durability themselves (shared fdatasync) */
		if (b % 5 == 0 && aurora_segment_sync(c->seg[b % 2], err, sizeof(err)) != 0)
			c->errors++;
		if (b % 7 == 0)
		{
			collected  *col = malloc(sizeof(*col));

			if (read_range(c->seg[0], 0, UINT64_MAX, 4096, col, NULL) != 0 || !col->payload_ok)
				c->errors++;
			free(col);
		}
	}
	free(t);
	c->writers_left--;
	return NULL;
}

static void *
conc_syncer(void *arg)
{
	conc	   *c = arg;
	uint64_t	last[2] = {0, 0};
	char		err[512];

	while (c->writers_left > 0)
	{
		if (aurora_segment_table_sync_all(c->st, err, sizeof(err)) != 0)
		{
			diag("sync_all: %s", err);
			c->errors++;
		}
		for (int k = 0; k < 2; k++)
		{
			aurora_segment_stats ss;

			aurora_segment_get_stats(c->seg[k], &ss);
			if (ss.scl < last[k] || ss.scl > ss.highest_lsn)
				c->scl_regressions++;
			last[k] = ss.scl;
		}
	}
	return NULL;
}

static void
test_concurrent(void)
{
	char		dir[256],
				err[512] = "";
	conc		c;
	pthread_t	w[CONC_THREADS],
				sy;
	void	   *args[CONC_THREADS][2];
	conc	   *cp = &c;
	collected  *col = calloc(1, sizeof(*col));
	uint64_t	last_end = 10000 + 40 * (uint64_t) (CONC_RECS - 1) + 30;

	make_tmpdir("segment", dir, sizeof(dir));
	memset(&c, 0, sizeof(c));
	c.st = open_store(dir);
	c.seg[0] = create_seg(c.st, 20, 0);
	c.seg[1] = create_seg(c.st, 21, 0);
	c.writers_left = CONC_THREADS;
	for (int i = 0; i < CONC_THREADS; i++)
	{
		args[i][0] = cp;
		args[i][1] = (void *) (intptr_t) i;
		pthread_create(&w[i], NULL, conc_writer, args[i]);
	}
	pthread_create(&sy, NULL, conc_syncer, &c);
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(w[i], NULL);
	pthread_join(sy, NULL);
	is_int(c.errors, 0, "no append, sync or read failed");
	is_int(c.scl_regressions, 0, "SCL never went backwards or beyond highest_lsn");
	is_int(aurora_segment_table_sync_all(c.st, err, sizeof(err)), AURORA_SEG_OK, "final sync_all");
	for (int k = 0; k < 2; k++)
	{
		aurora_segment_stats ss = stats(c.seg[k]);

		is_uint(ss.records, CONC_RECS, "segment %d: all records present", k);
		is_uint(ss.scl, last_end, "segment %d: SCL is the end of the last record", k);
		is_uint(ss.n_holes, 0, "segment %d: no holes", k);
		read_range(c.seg[k], 0, UINT64_MAX, SIZE_MAX, col, NULL);
		ok(col->n == CONC_RECS && col->payload_ok, "segment %d: every record reads back intact", k);
	}
	aurora_segment_table_close(c.st);
	c.st = open_store(dir);
	c.seg[0] = aurora_segment_table_find(c.st, VOL, 20);
	is_uint(stats(c.seg[0]).scl, last_end, "SCL the same after reopen");
	is_uint(stats(c.seg[0]).records, CONC_RECS, "records the same after reopen");
	aurora_segment_table_close(c.st);
	free(col);
	remove_tree(dir);
}

int
main(void)
{
	char		logdir[256];

	make_tmpdir("segment-log", logdir, sizeof(logdir));
	snprintf(default_log, sizeof(default_log), "%s/node.log", logdir);
	test_format_roundtrip();
	test_torn_tail();
	test_preallocation();
	test_bit_flip();
	test_bad_header();
	test_scl_holes();
	test_pending();
	test_duplicates();
	test_rejections();
	test_read();
	test_record_before();
	test_geometry();
	test_epochs();
	test_store_create();
	test_corrupt_meta();
	test_random_order();
	test_concurrent();
	remove_tree(logdir);
	return done_testing();
}
