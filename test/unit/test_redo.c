/*
 * test_redo.c - unit tests of the node's WAL-redo helper pool
 * (storage_service/node/redo.c) against the real helper: the patched server
 * started as `postgres --wal-redo` (src/walredo.c, PROTOCOL.md 12).
 *
 * The WAL records are built here byte for byte (XLOG full-page images and
 * heap inserts, PostgreSQL 15's record format), so the test needs no running
 * compute: a rebuilt page is the image with the record's end LSN and a
 * checksum; a record for another block leaves the page alone; a record the
 * helper cannot apply is an error naming its LSN and resource manager, also
 * when redo PANICs, and the next request works; a killed or hung helper is
 * replaced; a binary that is not the helper, or one that talks garbage, is a
 * clear error; many threads share a small pool.  And the helper itself,
 * fed malformed frames, says why in an EXIT frame and ends.
 *
 * Needs the patched server: $AURORA_POSTGRES, or $AURORA_PG_PREFIX/bin/postgres;
 * skipped without one, and when run as root (PostgreSQL refuses to).
 */
#define _GNU_SOURCE

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crc32c.h"
#include "redo.h"
#include "tap.h"
#include "testutil.h"
#include "util.h"

#define PAGE	AURORA_PAGE_SIZE

static const aurora_block_ref target = {1663, 5, 16384, 0, 3};
static const aurora_block_ref other = {1663, 5, 16384, 0, 4};

static void
le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static void
le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* An empty heap page: header only, no line pointers. */
static void
empty_page(uint8_t *page, uint8_t fill)
{
	memset(page, 0, PAGE);
	le16(page + 12, 24);		/* pd_lower */
	le16(page + 14, PAGE);		/* pd_upper */
	le16(page + 16, PAGE);		/* pd_special */
	le16(page + 18, PAGE | 4);	/* pd_pagesize_version */
	/* something to recognize in the free space */
	memset(page + 1000, fill, 100);
}

/*
 * Finish a record: XLogRecord header (24 bytes) in front of body, with
 * xl_tot_len and xl_crc (CRC32C of the body, then the header up to xl_crc).
 */
static uint32_t
finish_record(uint8_t *rec, uint32_t body_len, uint8_t info, uint8_t rmid)
{
	uint32_t	tot = 24 + body_len;
	uint32_t	crc;

	memset(rec, 0, 24);
	le32(rec, tot);
	rec[16] = info;
	rec[17] = rmid;
	crc = aurora_crc32c(0, rec + 24, body_len);
	crc = aurora_crc32c(crc, rec, 20);
	le32(rec + 20, crc);
	return tot;
}

/* XLOG_FPI of block b with image (no hole, not compressed). */
static uint32_t
fpi_record(uint8_t *rec, const aurora_block_ref *b, const uint8_t *image)
{
	uint8_t    *p = rec + 24;

	p[0] = 0;					/* block id */
	p[1] = b->fork | 0x10;		/* BKPBLOCK_HAS_IMAGE */
	le16(p + 2, 0);				/* no block data */
	le16(p + 4, PAGE);			/* image length */
	le16(p + 6, 0);				/* hole offset */
	p[8] = 0x02;				/* BKPIMAGE_APPLY */
	le32(p + 9, b->spc_oid);
	le32(p + 13, b->db_oid);
	le32(p + 17, b->rel_number);
	le32(p + 21, b->blkno);
	memcpy(p + 25, image, PAGE);
	return finish_record(rec, 25 + PAGE, 0xB0 /* XLOG_FPI */ , 0 /* RM_XLOG_ID */ );
}

/* XLOG_HEAP_INSERT at offnum into block b, without init: tuple data dummy. */
static uint32_t
heap_insert_record(uint8_t *rec, const aurora_block_ref *b, uint16_t offnum)
{
	uint8_t    *p = rec + 24;
	const uint16_t data_len = 5 + 24;	/* xl_heap_header + a tiny tuple */

	p[0] = 0;
	p[1] = b->fork | 0x20;		/* BKPBLOCK_HAS_DATA */
	le16(p + 2, data_len);
	le32(p + 4, b->spc_oid);
	le32(p + 8, b->db_oid);
	le32(p + 12, b->rel_number);
	le32(p + 16, b->blkno);
	p[20] = 255;				/* XLR_BLOCK_ID_DATA_SHORT */
	p[21] = 3;					/* main data: xl_heap_insert */
	memset(p + 22, 0, data_len);
	le16(p + 22 + data_len, offnum);
	p[22 + data_len + 2] = 0;	/* flags */
	return finish_record(rec, 22 + data_len + 3, 0x00, 10 /* RM_HEAP_ID */ );
}

static uint8_t fpi_rec[24 + 25 + PAGE];
static uint32_t fpi_len;
static uint8_t image[PAGE];

static bool
is_image_at(const uint8_t *page, uint64_t lsn)
{
	return rd32(page) == (uint32_t) (lsn >> 32) && rd32(page + 4) == (uint32_t) lsn &&
		(page[8] | page[9]) != 0 &&	/* checksum stamped */
		memcmp(page + 10, image + 10, PAGE - 10) == 0;
}

static bool
all_zero(const uint8_t *page)
{
	for (int i = 0; i < PAGE; i++)
		if (page[i] != 0)
			return false;
	return true;
}

static aurora_redo_pool *
make_pool(const char *postgres, int helpers, int timeout_ms)
{
	aurora_redo_config cfg = {postgres, helpers, timeout_ms, 0};
	aurora_redo_pool *pool;
	char		err[512];

	if (aurora_redo_pool_create(&cfg, &pool, err, sizeof(err)) != 0)
		bail_out("pool: %s", err);
	return pool;
}

static int
one_fpi(aurora_redo_pool *pool, const aurora_block_ref *b, uint64_t start, uint8_t *page,
		char *err, size_t errlen)
{
	aurora_redo_record r = {start, start + fpi_len, fpi_rec, fpi_len};

	return aurora_redo_get_page(pool, b, NULL, &r, 1, page, err, errlen);
}

static void
test_apply(const char *postgres)
{
	aurora_redo_pool *pool = make_pool(postgres, 1, 10000);
	aurora_redo_stats st;
	uint8_t		page[PAGE];
	uint8_t		base[PAGE];
	char		err[1024] = "";
	int			rc;

	rc = one_fpi(pool, &target, 0x1000000, page, err, sizeof(err));
	if (!is_int(rc, AURORA_REDO_OK, "a full-page image rebuilds the page"))
		diag("%s", err);
	ok(is_image_at(page, 0x1000000 + fpi_len),
	   "it is the image, with pd_lsn = the record's end LSN and a checksum stamped");

	rc = one_fpi(pool, &other, 0x1000000, page, err, sizeof(err));
	if (!is_int(rc, AURORA_REDO_OK, "the same record, asked for another block"))
		diag("%s", err);
	ok(all_zero(page), "leaves that block alone (a page of zeros, no checksum on it)");

	empty_page(base, 0x5a);
	rc = aurora_redo_get_page(pool, &target, base, NULL, 0, page, err, sizeof(err));
	if (!is_int(rc, AURORA_REDO_OK, "a base image and no records"))
		diag("%s", err);
	ok(memcmp(page + 10, base + 10, PAGE - 10) == 0 && (page[8] | page[9]) != 0,
	   "comes back as it went, checksum stamped");

	aurora_redo_get_stats(pool, &st);
	is_uint(st.helper_starts, 1, "one helper served all three");
	is_uint(st.records_applied, 2, "two records applied");
	aurora_redo_pool_destroy(pool);
}

static void
test_errors(const char *postgres)
{
	aurora_redo_pool *pool = make_pool(postgres, 1, 10000);
	aurora_redo_stats st;
	uint8_t		bad[sizeof(fpi_rec)];
	uint8_t		ins[256];
	uint32_t	ins_len;
	uint8_t		page[PAGE];
	uint8_t		base[PAGE];
	char		err[1024] = "";
	aurora_redo_record r[2];
	int			rc;
	int			pid;
	int			pids[4];

	/* a damaged record: CRC mismatch */
	memcpy(bad, fpi_rec, fpi_len);
	bad[3000] ^= 1;
	r[0] = (aurora_redo_record) {0x2000000, 0x2000000 + fpi_len, bad, fpi_len};
	rc = aurora_redo_get_page(pool, &target, NULL, r, 1, page, err, sizeof(err));
	is_int(rc, AURORA_REDO_FAILED, "a damaged record fails the request");
	like(err, "0/2000000", "the error names the record's LSN");
	like(err, "rmgr XLOG", "and its resource manager");
	like(err, "checksum", "and what is wrong");

	rc = one_fpi(pool, &target, 0x1000000, page, err, sizeof(err));
	if (!is_int(rc, AURORA_REDO_OK, "the next request works"))
		diag("%s", err);
	ok(is_image_at(page, 0x1000000 + fpi_len), "and returns the right page");
	aurora_redo_get_stats(pool, &st);
	is_uint(st.helper_starts, 1, "on the same helper (an ERROR does not end it)");

	/* a chain without its base: a heap insert into a page that does not exist */
	ins_len = heap_insert_record(ins, &target, 1);
	r[0] = (aurora_redo_record) {0x3000000, 0x3000000 + ins_len, ins, ins_len};
	rc = aurora_redo_get_page(pool, &target, NULL, r, 1, page, err, sizeof(err));
	is_int(rc, AURORA_REDO_FAILED, "a record changing a page nobody initialized fails");
	like(err, "0/3000000 (rmgr Heap", "naming LSN and resource manager");
	like(err, "no page yet", "and saying the base is missing");

	/* the first error wins; later records of the request are not applied */
	r[1] = (aurora_redo_record) {0x4000000, 0x4000000 + fpi_len, fpi_rec, fpi_len};
	rc = aurora_redo_get_page(pool, &target, NULL, r, 2, page, err, sizeof(err));
	is_int(rc, AURORA_REDO_FAILED, "an image after the failing record does not rescue the request");
	like(err, "0/3000000", "the error is the first one");

	/* redo PANICs: insert at offset 5 of an empty page */
	empty_page(base, 0);
	ins_len = heap_insert_record(ins, &target, 5);
	r[0] = (aurora_redo_record) {0x5000000, 0x5000000 + ins_len, ins, ins_len};
	rc = aurora_redo_get_page(pool, &target, base, r, 1, page, err, sizeof(err));
	is_int(rc, AURORA_REDO_FAILED, "a record whose redo PANICs fails the request");
	like(err, "PANIC while applying WAL record at 0/5000000 (rmgr Heap", "naming LSN and rmgr");
	like(err, "invalid max offset number", "with redo's own message");
	rc = one_fpi(pool, &target, 0x1000000, page, err, sizeof(err));
	if (!is_int(rc, AURORA_REDO_OK, "the next request works on a new helper"))
		diag("%s", err);
	aurora_redo_get_stats(pool, &st);
	is_uint(st.helper_starts, 2, "the helper that died was replaced");

	/* a garbage base page is an error, not a page */
	memset(base, 0xee, sizeof(base));
	rc = aurora_redo_get_page(pool, &target, base, NULL, 0, page, err, sizeof(err));
	is_int(rc, AURORA_REDO_FAILED, "a base image that is not a page fails");
	like(err, "invalid page", "saying so");

	/* kill -9 the helper between requests */
	is_int(aurora_redo_helper_pids(pool, pids, 4), 1, "one helper running");
	pid = pids[0];
	kill(pid, SIGKILL);
	usleep(100 * 1000);
	rc = one_fpi(pool, &target, 0x1000000, page, err, sizeof(err));
	if (!is_int(rc, AURORA_REDO_OK, "the next request gets a new helper"))
		diag("%s", err);
	ok(aurora_redo_helper_pids(pool, pids, 4) == 1 && pids[0] != pid, "with another process id");
	aurora_redo_get_stats(pool, &st);
	is_uint(st.helper_starts, 3, "a third helper start");
	is_int(st.helpers_running, 1, "one running");

	/* masking: heap's rm_mask; XLOG has none */
	rc = aurora_redo_mask_page(pool, 10, 3, image, page, err, sizeof(err));
	if (!is_int(rc, AURORA_REDO_OK, "heap masking"))
		diag("%s", err);
	ok(memcmp(page + 24, image + 24, 900) == 0 && page[1000] != image[1000],
	   "masks the unused space, keeps the header's line pointer area");
	rc = aurora_redo_mask_page(pool, 0, 3, image, page, err, sizeof(err));
	is_int(rc, AURORA_REDO_FAILED, "XLOG has no masking function");
	like(err, "no masking function", "it says so");
	aurora_redo_pool_destroy(pool);
}

static void
write_script(const char *path, const char *body)
{
	char		text[1024];

	snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
	write_text_file(path, text);
	chmod(path, 0755);
}

static void
test_bad_helpers(void)
{
	char		dir[256];
	char		path[512];
	aurora_redo_pool *pool;
	aurora_redo_config cfg = {"/nonexistent/postgres", 1, 1000, 0};
	uint8_t		page[PAGE];
	char		err[1024] = "";
	int64_t		t0;
	int			rc;

	ok(aurora_redo_pool_create(&cfg, &pool, err, sizeof(err)) != 0, "a missing binary is refused");
	like(err, "/nonexistent/postgres", "naming it");

	make_tmpdir("redo", dir, sizeof(dir));

	pool = make_pool("/bin/true", 1, 1000);
	rc = one_fpi(pool, &target, 0x1000000, page, err, sizeof(err));
	is_int(rc, AURORA_REDO_UNAVAILABLE, "a binary that exits at once: unavailable");
	like(err, "did not start", "it did not start");
	aurora_redo_pool_destroy(pool);

	snprintf(path, sizeof(path), "%s/garbage", dir);
	write_script(path, "echo 'this is not a WAL-redo helper'; sleep 5");
	pool = make_pool(path, 1, 1000);
	rc = one_fpi(pool, &target, 0x1000000, page, err, sizeof(err));
	is_int(rc, AURORA_REDO_UNAVAILABLE, "a binary that talks garbage: unavailable");
	like(err, "not a hello", "it is not a hello");
	aurora_redo_pool_destroy(pool);

	/* hello of protocol 1, PostgreSQL 15.18, but 4 kB pages */
	snprintf(path, sizeof(path), "%s/mismatch", dir);
	write_script(path, "printf 'H\\020\\000\\000\\000\\001\\000\\000\\000\\002\\112\\002\\000"
				 "\\000\\020\\000\\000\\020\\321\\000\\000'; sleep 5");
	pool = make_pool(path, 1, 1000);
	rc = one_fpi(pool, &target, 0x1000000, page, err, sizeof(err));
	is_int(rc, AURORA_REDO_UNAVAILABLE, "a helper built differently: unavailable");
	like(err, "page size 4096", "saying how it differs");
	aurora_redo_pool_destroy(pool);

	/* says hello, then never answers */
	snprintf(path, sizeof(path), "%s/hang", dir);
	write_script(path, "printf 'H\\020\\000\\000\\000\\001\\000\\000\\000\\002\\112\\002\\000"
				 "\\000\\040\\000\\000\\020\\321\\000\\000'; exec sleep 30");
	pool = make_pool(path, 1, 500);
	t0 = (int64_t) aurora_monotonic_ms();
	rc = one_fpi(pool, &target, 0x1000000, page, err, sizeof(err));
	is_int(rc, AURORA_REDO_TIMEOUT, "a helper that hangs: timeout");
	ok((int64_t) aurora_monotonic_ms() - t0 < 3000, "after about the request timeout");
	like(err, "killed", "and it was killed");
	{
		aurora_redo_stats st;

		aurora_redo_get_stats(pool, &st);
		is_int(st.helpers_running, 0, "no helper left running");
	}
	aurora_redo_pool_destroy(pool);
	remove_tree(dir);
}

/*
 * Talk to a helper directly: send raw bytes, return the first frame it
 * answers (type, text) and whether it then exited with status 1.
 */
static void
raw_exchange(const char *postgres, const uint8_t *in, size_t len, char *type, char *text,
			 size_t cap, bool *exited_1)
{
	int			to[2],
				from[2];
	pid_t		pid;
	uint8_t		hdr[5];
	int			status = 0;

	if (pipe(to) != 0 || pipe(from) != 0)
		bail_out("pipe");
	pid = fork();
	if (pid == 0)
	{
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[1]);
		close(from[0]);
		execl(postgres, postgres, "--wal-redo", (char *) NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	*type = 0;
	text[0] = '\0';
	if (read(from[0], hdr, 5) == 5 && hdr[0] == 'H')
	{
		uint8_t		hello[16];

		if (read(from[0], hello, 16) == 16 && write(to[1], in, len) == (ssize_t) len)
		{
			size_t		n;

			close(to[1]);
			to[1] = -1;
			if (read(from[0], hdr, 5) == 5)
			{
				n = rd32(hdr + 1) < cap - 1 ? rd32(hdr + 1) : cap - 1;
				*type = (char) hdr[0];
				n = (size_t) read(from[0], text, n);
				text[n] = '\0';
			}
		}
	}
	if (to[1] >= 0)
		close(to[1]);
	close(from[0]);
	*exited_1 = wait_child(pid, 5000, &status) && WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

static void
test_malformed(const char *postgres)
{
	static const uint8_t unknown[] = {'Z', 0, 0, 0, 0};
	static const uint8_t cut[] = {'B', 17, 0, 0, 0, 1, 2, 3};
	static const uint8_t apply_first[] = {'A', 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t huge[] = {'A', 0xff, 0xff, 0xff, 0x7f};
	static const uint8_t bad_fork[] = {'B', 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0};
	char		type;
	char		text[512];
	bool		exited;

	raw_exchange(postgres, unknown, sizeof(unknown), &type, text, sizeof(text), &exited);
	ok(type == 'X' && exited, "an unknown message type: EXIT, and the helper ends");
	like(text, "unknown message type 0x5A", "saying what it got");
	raw_exchange(postgres, cut, sizeof(cut), &type, text, sizeof(text), &exited);
	ok(type == 'X' && exited, "a frame cut short: EXIT");
	like(text, "middle of a message", "saying so");
	raw_exchange(postgres, apply_first, sizeof(apply_first), &type, text, sizeof(text), &exited);
	ok(type == 'X' && exited, "APPLY before BEGIN: EXIT");
	like(text, "APPLY without BEGIN", "saying so");
	raw_exchange(postgres, huge, sizeof(huge), &type, text, sizeof(text), &exited);
	ok(type == 'X' && exited, "a body longer than any WAL record: EXIT before reading it");
	like(text, "more than a WAL record can be", "saying so");
	raw_exchange(postgres, bad_fork, sizeof(bad_fork), &type, text, sizeof(text), &exited);
	ok(type == 'X' && exited, "BEGIN with fork 9: EXIT");
	like(text, "fork 9", "saying so");
}

typedef struct worker_arg
{
	aurora_redo_pool *pool;
	int			failures;
} worker_arg;

static void *
worker(void *p)
{
	worker_arg *a = p;

	for (int i = 0; i < 25; i++)
	{
		uint8_t		page[PAGE];
		char		err[512];
		uint64_t	start = 0x1000000 + (uint64_t) i * 0x10000;

		if (one_fpi(a->pool, &target, start, page, err, sizeof(err)) != AURORA_REDO_OK ||
			!is_image_at(page, start + fpi_len))
			a->failures++;
	}
	return NULL;
}

static void
test_threads(const char *postgres)
{
	aurora_redo_pool *pool = make_pool(postgres, 2, 20000);
	pthread_t	th[6];
	worker_arg	args[6];
	int			failures = 0;
	aurora_redo_stats st;

	for (int i = 0; i < 6; i++)
	{
		args[i] = (worker_arg) {pool, 0};
		pthread_create(&th[i], NULL, worker, &args[i]);
	}
	for (int i = 0; i < 6; i++)
	{
		pthread_join(th[i], NULL);
		failures += args[i].failures;
	}
	is_int(failures, 0, "6 threads x 25 requests on 2 helpers: every page right");
	aurora_redo_get_stats(pool, &st);
	is_uint(st.requests, 150, "150 requests counted");
	is_uint(st.helper_starts, 2, "two helpers started");
	aurora_redo_pool_destroy(pool);
}

int
main(void)
{
	const char *postgres = getenv("AURORA_POSTGRES");
	char		buf[1024];

	if (postgres == NULL && getenv("AURORA_PG_PREFIX") != NULL)
	{
		snprintf(buf, sizeof(buf), "%s/bin/postgres", getenv("AURORA_PG_PREFIX"));
		postgres = buf;
	}
	if (postgres == NULL || access(postgres, X_OK) != 0)
	{
		printf("1..0 # SKIP no patched server (set AURORA_PG_PREFIX or AURORA_POSTGRES)\n");
		return 0;
	}
	if (geteuid() == 0)
	{
		printf("1..0 # SKIP PostgreSQL does not run as root\n");
		return 0;
	}
	signal(SIGPIPE, SIG_DFL);	/* the pool must cope without the node's SIG_IGN */

	empty_page(image, 0x77);
	fpi_len = fpi_record(fpi_rec, &target, image);

	test_apply(postgres);
	test_errors(postgres);
	test_malformed(postgres);
	test_bad_helpers();
	test_threads(postgres);
	return done_testing();
}
