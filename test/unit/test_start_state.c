/*
 * test_start_state.c - the start state bundle (common/start_state.c): a
 * synthetic PostgreSQL 15 data directory round-trips through
 * from_datadir, encode, decode and to_datadir byte for byte; exactly the
 * listed files are taken (relation files, pg_wal, postmaster.pid and the
 * aurora_shipper slot are not); damaged, truncated and hostile bundles are
 * refused with a message; a replacing restore removes only start state
 * files and keeps the configuration when asked.
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "start_state.h"
#include "tap.h"
#include "testutil.h"

static void
mk(const char *root, const char *rel)
{
	char		p[4200];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	mkdir(p, 0700);
}

static void
put(const char *root, const char *rel, const char *text)
{
	char		p[4200];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	write_text_file(p, text);
}

static bool
exists(const char *root, const char *rel)
{
	char		p[4200];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return stat(p, &st) == 0;
}

static void
get(const char *root, const char *rel, char *out, size_t cap)
{
	char		p[4200];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	read_text_file(p, out, cap);
}

/* What a small PostgreSQL 15 data directory holds, and what must not be taken. */
static const char *const taken[] = {
	"PG_VERSION", "global/pg_control", "global/pg_filenode.map", "global/1262_init",
	"base/1/PG_VERSION", "base/1/pg_filenode.map", "base/5/PG_VERSION",
	"base/5/pg_filenode.map", "base/5/16384_init", "base/5/16384_init.1",
	"pg_xact/0000", "pg_multixact/offsets/0000", "pg_multixact/members/0000",
	"pg_commit_ts/0000", "pg_twophase/00000000000002E1", "pg_replslot/sub1/state",
	"pg_logical/replorigin_checkpoint", "postgresql.conf", "postgresql.auto.conf",
	"pg_hba.conf", "pg_ident.conf"
};
static const char *const not_taken[] = {
	"base/1/1259", "base/5/16384", "base/5/16384_fsm", "base/5/16384_vm", "global/1262",
	"pg_wal/000000010000000000000001", "postmaster.pid", "postmaster.opts",
	"pg_replslot/aurora_shipper/state", "pg_stat/pgstat.stat", "pg_xact/junk.tmp",
	"base/5/pg_internal.init", "current_logfiles"
};

static void
make_datadir(const char *d)
{
	static const char *const dirs[] = {
		"global", "base", "base/1", "base/5", "pg_wal", "pg_xact", "pg_multixact",
		"pg_multixact/offsets", "pg_multixact/members", "pg_commit_ts", "pg_twophase",
		"pg_replslot", "pg_replslot/sub1", "pg_replslot/aurora_shipper", "pg_logical", "pg_stat"
	};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		mk(d, dirs[i]);
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
	{
		char		text[256];

		snprintf(text, sizeof(text), "contents of %s\n", taken[i]);
		put(d, taken[i], text);
	}
	for (size_t i = 0; i < sizeof(not_taken) / sizeof(not_taken[0]); i++)
		put(d, not_taken[i], "must not be taken\n");
}

static const aurora_start_state_file *
find(const aurora_start_state *s, const char *path)
{
	for (uint32_t i = 0; i < s->n_files; i++)
		if (strcmp(s->files[i].path, path) == 0)
			return &s->files[i];
	return NULL;
}

static void
test_selection_and_round_trip(const char *tmp)
{
	char		src[1200],
				dst[1200],
				err[512] = "";
	aurora_start_state s,
				d;
	aurora_start_state_build_opts o = {0x3000028, 0x3000028, 0x2FFFFF0, NULL, 0};
	uint8_t    *buf;
	size_t		len;
	bool		all = true;

	snprintf(src, sizeof(src), "%s/src", tmp);
	snprintf(dst, sizeof(dst), "%s/dst", tmp);
	mkdir(src, 0700);
	make_datadir(src);
	ok(aurora_start_state_from_datadir(src, &o, &s, err, sizeof(err)) == 0, "built from a data directory %s", err);
	is_int(s.n_files, sizeof(taken) / sizeof(taken[0]), "exactly the start state files are taken");
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
		if (find(&s, taken[i]) == NULL)
		{
			diag("missing %s", taken[i]);
			all = false;
		}
	ok(all, "every listed file is in the bundle");
	all = true;
	for (size_t i = 0; i < sizeof(not_taken) / sizeof(not_taken[0]); i++)
		if (find(&s, not_taken[i]) != NULL)
		{
			diag("took %s", not_taken[i]);
			all = false;
		}
	ok(all, "relation files, pg_wal, postmaster.pid, stats and the aurora_shipper slot are not taken");

	ok(aurora_start_state_encode(&s, &buf, &len, err, sizeof(err)) == 0, "encoded (%zu bytes)", len);
	ok(len >= 4 && memcmp(buf, "ASST", 4) == 0, "a bundle starts with ASST");
	ok(aurora_start_state_decode(buf, len, &d, err, sizeof(err)) == 0, "decoded %s", err);
	ok(d.consistent_lsn == 0x3000028 && d.checkpoint_lsn == 0x3000028 && d.redo_lsn == 0x2FFFFF0,
	   "LSNs round-trip");
	ok(aurora_start_state_to_datadir(&d, dst, 0, err, sizeof(err)) == 0, "restored into a new directory %s", err);
	all = true;
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
	{
		char		a[256],
					b[256];

		get(src, taken[i], a, sizeof(a));
		get(dst, taken[i], b, sizeof(b));
		if (strcmp(a, b) != 0 || a[0] == '\0')
		{
			diag("%s differs", taken[i]);
			all = false;
		}
	}
	ok(all, "every file restored byte for byte");
	ok(exists(dst, "pg_wal/archive_status") && exists(dst, "pg_notify") && exists(dst, "pg_serial") &&
	   exists(dst, "pg_snapshots") && exists(dst, "pg_stat_tmp") && exists(dst, "pg_subtrans") &&
	   exists(dst, "pg_tblspc") && exists(dst, "pg_dynshmem") && exists(dst, "pg_logical/snapshots") &&
	   exists(dst, "pg_logical/mappings") && exists(dst, "base/5"),
	   "the standard empty directories and base/<oid> exist");
	ok(!exists(dst, "base/1/1259") && !exists(dst, "postmaster.pid") &&
	   !exists(dst, "pg_replslot/aurora_shipper"), "nothing else is written");
	{
		struct stat st;
		char		p[4200];

		stat(dst, &st);
		is_int(st.st_mode & 0777, 0700, "data directory mode 0700");
		snprintf(p, sizeof(p), "%s/global/pg_control", src);
		chmod(p, 0640);
	}

	/* a non-empty target is refused without REPLACE */
	err[0] = '\0';
	ok(aurora_start_state_to_datadir(&d, dst, 0, err, sizeof(err)) != 0, "a non-empty target is refused");
	like(err, "not empty", "with a message");

	/* REPLACE: start state files replaced, relation files and the rest kept */
	{
		char		text[256];

		put(dst, "base/1/1259", "relation\n");
		put(dst, "pg_xact/0001", "stale clog segment\n");
		put(dst, "postgresql.conf", "local config\n");
		ok(aurora_start_state_to_datadir(&d, dst, AURORA_START_STATE_REPLACE | AURORA_START_STATE_KEEP_CONFIG,
										 err, sizeof(err)) == 0, "replace into an existing data directory %s", err);
		ok(exists(dst, "base/1/1259"), "a relation file survives a replace");
		ok(!exists(dst, "pg_xact/0001"), "a start state file not in the bundle is removed");
		get(dst, "postgresql.conf", text, sizeof(text));
		is_str(text, "local config\n", "KEEP_CONFIG keeps the existing configuration");
		get(dst, "pg_xact/0000", text, sizeof(text));
		is_str(text, "contents of pg_xact/0000\n", "the bundle's files are written");
		ok(aurora_start_state_to_datadir(&d, dst, AURORA_START_STATE_REPLACE, err, sizeof(err)) == 0,
		   "replace without KEEP_CONFIG");
		get(dst, "postgresql.conf", text, sizeof(text));
		is_str(text, "contents of postgresql.conf\n", "without KEEP_CONFIG the bundle's configuration");
	}

	/* pg_control given by the caller replaces the file */
	{
		aurora_start_state_build_opts o2 = o;
		aurora_start_state s2;
		const aurora_start_state_file *f;

		o2.pg_control = (const uint8_t *) "CONTROL";
		o2.pg_control_len = 7;
		ok(aurora_start_state_from_datadir(src, &o2, &s2, err, sizeof(err)) == 0, "built with given pg_control");
		f = find(&s2, "global/pg_control");
		ok(f != NULL && f->size == 7 && memcmp(f->data, "CONTROL", 7) == 0 &&
		   s2.n_files == s.n_files, "the caller's pg_control bytes are used");
		aurora_start_state_free(&s2);
	}
	free(buf);
	aurora_start_state_free(&s);
	aurora_start_state_free(&d);
}

/* A bundle with one file of the given path, encoded by hand. */
static size_t
hand_bundle(uint8_t *b, const char *path, uint32_t n_files_field, uint64_t size_field)
{
	size_t		n = 0;
	uint16_t	plen = (uint16_t) strlen(path);
	uint32_t	crc;
#define PUT(v, w) do { for (int k_ = 0; k_ < (w); k_++) b[n++] = (uint8_t) ((uint64_t) (v) >> (8 * k_)); } while (0)

	PUT(AURORA_START_STATE_MAGIC, 4);
	PUT(1, 4);
	PUT(1, 8);
	PUT(2, 8);
	PUT(3, 8);
	PUT(n_files_field, 4);
	PUT(plen, 2);
	memcpy(b + n, path, plen);
	n += plen;
	PUT(0600, 4);
	PUT(size_field, 8);
	PUT(aurora_crc32c(0, "x", 1), 4);
	b[n++] = 'x';
	crc = aurora_crc32c(0, b, n);
	PUT(crc, 4);
#undef PUT
	return n;
}

static void
test_refused(const char *tmp)
{
	aurora_start_state s;
	aurora_start_state_build_opts o = {1, 2, 3, NULL, 0};
	char		src[1200],
				err[512];
	uint8_t    *buf;
	size_t		len;
	uint8_t		h[2048];
	size_t		n;
	int			refused_trunc = 0;

	snprintf(src, sizeof(src), "%s/src", tmp);
	if (aurora_start_state_from_datadir(src, &o, &s, err, sizeof(err)) != 0 ||
		aurora_start_state_encode(&s, &buf, &len, err, sizeof(err)) != 0)
		bail_out("cannot build: %s", err);
	aurora_start_state_free(&s);

	n = hand_bundle(h, "pg_xact/0000", 1, 1);
	ok(aurora_start_state_check(h, n, NULL, NULL, NULL, err, sizeof(err)) == 0,
	   "a hand-made bundle is accepted (the format is as documented) %s", err);

	for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 97))
		if (aurora_start_state_check(buf, cut, NULL, NULL, NULL, err, sizeof(err)) != 0)
			refused_trunc++;
		else
			diag("truncated to %zu accepted", cut);
	ok(refused_trunc == (int) (64 + (len - 64 + 96) / 97), "every truncation is refused");

	buf[len / 2] ^= 0x40;
	err[0] = '\0';
	ok(aurora_start_state_check(buf, len, NULL, NULL, NULL, err, sizeof(err)) != 0, "a flipped byte is refused");
	like(err, "CRC", "as a CRC mismatch");
	buf[len / 2] ^= 0x40;
	ok(aurora_start_state_decode(buf, len, &s, err, sizeof(err)) == 0, "restored byte decodes again");
	aurora_start_state_free(&s);

	n = hand_bundle(h, "../etc/passwd", 1, 1);
	ok(aurora_start_state_check(h, n, NULL, NULL, NULL, err, sizeof(err)) != 0, "a ../ path is refused");
	like(err, "..", "naming the component");
	n = hand_bundle(h, "base/../../x", 1, 1);
	ok(aurora_start_state_check(h, n, NULL, NULL, NULL, err, sizeof(err)) != 0, "an inner .. is refused");
	n = hand_bundle(h, "/etc/passwd", 1, 1);
	ok(aurora_start_state_check(h, n, NULL, NULL, NULL, err, sizeof(err)) != 0, "an absolute path is refused");
	like(err, "absolute", "as absolute");
	n = hand_bundle(h, "postmaster.pid", 1, 1);
	ok(aurora_start_state_check(h, n, NULL, NULL, NULL, err, sizeof(err)) != 0, "a file of another kind is refused");
	n = hand_bundle(h, "pg_replslot/aurora_shipper/state", 1, 1);
	ok(aurora_start_state_check(h, n, NULL, NULL, NULL, err, sizeof(err)) != 0, "the shipper's slot is refused");
	n = hand_bundle(h, "pg_xact/0000", 4000000000u, 1);
	ok(aurora_start_state_check(h, n, NULL, NULL, NULL, err, sizeof(err)) != 0, "a huge file count is refused");
	like(err, "limit", "naming the limit");
	n = hand_bundle(h, "pg_xact/0000", 2, 1);
	ok(aurora_start_state_check(h, n, NULL, NULL, NULL, err, sizeof(err)) != 0, "a count beyond the files is refused");
	n = hand_bundle(h, "pg_xact/0000", 1, UINT64_MAX - 3);
	ok(aurora_start_state_check(h, n, NULL, NULL, NULL, err, sizeof(err)) != 0, "a huge file size is refused");
	like(err, "truncated", "as truncated");
	h[0] = 'X';
	ok(aurora_start_state_check(h, n, NULL, NULL, NULL, err, sizeof(err)) != 0, "bad magic is refused");
	free(buf);

	/* the encoder refuses what the decoder would */
	{
		aurora_start_state_file f = {(char *) "../x", 0600, 0, NULL};
		aurora_start_state bad = {1, 1, 1, 1, &f};

		ok(aurora_start_state_encode(&bad, &buf, &len, err, sizeof(err)) != 0, "the encoder refuses a bad path");
	}
	/* a data directory without pg_control is refused */
	{
		char		p[4200];

		snprintf(p, sizeof(p), "%s/src/global/pg_control", tmp);
		unlink(p);
		ok(aurora_start_state_from_datadir(src, &o, &s, err, sizeof(err)) != 0, "no pg_control: refused");
		like(err, "pg_control", "naming it");
	}
}

int
main(void)
{
	char		tmp[1024];

	make_tmpdir("start_state", tmp, sizeof(tmp));
	test_selection_and_round_trip(tmp);
	test_refused(tmp);
	remove_tree(tmp);
	return done_testing();
}
