/*
 * start_state.c - the start state bundle (start_state.h): which files of a
 * PostgreSQL 15 data directory belong in it, its codec, building it from a
 * data directory and writing it back into one.
 *
 * Encoding (PROTOCOL.md 13), little-endian, written with wire.h's bounded
 * buffer:
 *
 *   u32 magic "ASST", u32 version 1, u64 consistent_lsn, u64 checkpoint_lsn,
 *   u64 redo_lsn, u32 n_files,
 *   n_files x (u16 path_len, path bytes, u32 mode, u64 size, u32 crc32c of
 *              the bytes, size bytes),
 *   u32 crc32c of everything before it.
 *
 * The decoder trusts nothing: every length is checked against the bytes
 * that are there before it is used, the limits cap what a bundle can make
 * anyone allocate, and a path must be one the builder could have taken
 * (relative, no "..", of a taken kind), so a hostile bundle cannot make a
 * restore write outside those files.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "start_state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "util.h"
#include "wire.h"

/* ---- which files ---- */

/* s[0..n) is a database or relfilenode number: digits, no leading zero. */
static bool
is_oid(const char *s, size_t n)
{
	if (n == 0 || n > 10 || s[0] < '1' || s[0] > '9')
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* An SLRU segment or two-phase file name: upper-case hex digits. */
static bool
is_hex_name(const char *s, size_t min, size_t max)
{
	size_t		n = strlen(s);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

/* "<relnode>_init" or "<relnode>_init.<N>" (N >= 1). */
static bool
is_init_fork(const char *s)
{
	const char *u = strstr(s, "_init");
	const char *rest;

	if (u == NULL || !is_oid(s, (size_t) (u - s)))
		return false;
	rest = u + 5;
	if (*rest == '\0')
		return true;
	if (*rest != '.')
		return false;
	return is_oid(rest + 1, strlen(rest + 1));
}

/* A replication slot name as PostgreSQL allows it: [a-z0-9_]{1,63}. */
static bool
is_slot_name(const char *s, size_t n)
{
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

aurora_start_state_kind
aurora_start_state_path_kind(const char *p)
{
	const char *slash;

	if (strcmp(p, "global/pg_control") == 0)
		return AURORA_SS_CONTROL;
	if (strcmp(p, "PG_VERSION") == 0)
		return AURORA_SS_VERSION;
	if (strcmp(p, "global/pg_filenode.map") == 0)
		return AURORA_SS_RELMAP;
	if (strcmp(p, "pg_logical/replorigin_checkpoint") == 0)
		return AURORA_SS_REPLORIGIN;
	if (strcmp(p, "postgresql.conf") == 0 || strcmp(p, "postgresql.auto.conf") == 0 ||
		strcmp(p, "pg_hba.conf") == 0 || strcmp(p, "pg_ident.conf") == 0)
		return AURORA_SS_CONFIG;
	if (strncmp(p, "global/", 7) == 0)
		return is_init_fork(p + 7) ? AURORA_SS_INIT_FORK : AURORA_SS_NOT_TAKEN;
	if (strncmp(p, "base/", 5) == 0)
	{
		const char *db = p + 5;

		slash = strchr(db, '/');
		if (slash == NULL || !is_oid(db, (size_t) (slash - db)))
			return AURORA_SS_NOT_TAKEN;
		if (strcmp(slash + 1, "PG_VERSION") == 0)
			return AURORA_SS_VERSION;
		if (strcmp(slash + 1, "pg_filenode.map") == 0)
			return AURORA_SS_RELMAP;
		return is_init_fork(slash + 1) ? AURORA_SS_INIT_FORK : AURORA_SS_NOT_TAKEN;
	}
	if (strncmp(p, "pg_xact/", 8) == 0)
		return is_hex_name(p + 8, 4, 15) ? AURORA_SS_SLRU : AURORA_SS_NOT_TAKEN;
	if (strncmp(p, "pg_multixact/offsets/", 21) == 0)
		return is_hex_name(p + 21, 4, 15) ? AURORA_SS_SLRU : AURORA_SS_NOT_TAKEN;
	if (strncmp(p, "pg_multixact/members/", 21) == 0)
		return is_hex_name(p + 21, 4, 15) ? AURORA_SS_SLRU : AURORA_SS_NOT_TAKEN;
	if (strncmp(p, "pg_commit_ts/", 13) == 0)
		return is_hex_name(p + 13, 4, 15) ? AURORA_SS_SLRU : AURORA_SS_NOT_TAKEN;
	if (strncmp(p, "pg_twophase/", 12) == 0)
		return is_hex_name(p + 12, 8, 16) ? AURORA_SS_TWOPHASE : AURORA_SS_NOT_TAKEN;
	if (strncmp(p, "pg_replslot/", 12) == 0)
	{
		const char *name = p + 12;

		slash = strchr(name, '/');
		if (slash == NULL || !is_slot_name(name, (size_t) (slash - name)) ||
			strcmp(slash + 1, "state") != 0)
			return AURORA_SS_NOT_TAKEN;
		if ((size_t) (slash - name) == strlen(AURORA_START_STATE_SHIPPER_SLOT) &&
			strncmp(name, AURORA_START_STATE_SHIPPER_SLOT, (size_t) (slash - name)) == 0)
			return AURORA_SS_NOT_TAKEN;
		return AURORA_SS_SLOT;
	}
	return AURORA_SS_NOT_TAKEN;
}

/*
 * A path a bundle may carry: 1..PATH_MAX bytes, relative, no empty, "." or
 * ".." component, no NUL (len is the wire length), of a taken kind.  The
 * kind rule alone would refuse "..", the component rule says why.
 */
static bool
path_ok(const char *p, size_t len, char *err, size_t errlen)
{
	const char *c = p;

	if (len == 0 || len > AURORA_START_STATE_PATH_MAX || memchr(p, '\0', len) != NULL)
	{
		aurora_seterr(err, errlen, "start state: a file path is empty, longer than %u bytes "
					  "or contains NUL", AURORA_START_STATE_PATH_MAX);
		return false;
	}
	if (p[0] == '/')
	{
		aurora_seterr(err, errlen, "start state: absolute path \"%.200s\"", p);
		return false;
	}
	while (*c != '\0')
	{
		size_t		n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
		{
			aurora_seterr(err, errlen, "start state: path \"%.200s\" has an empty, \".\" or "
						  "\"..\" component", p);
			return false;
		}
		c += n;
		if (*c == '/')
			c++;
	}
	if (p[len - 1] == '/')
	{
		aurora_seterr(err, errlen, "start state: path \"%.200s\" ends with '/'", p);
		return false;
	}
	if (aurora_start_state_path_kind(p) == AURORA_SS_NOT_TAKEN)
	{
		aurora_seterr(err, errlen, "start state: \"%.200s\" is not a start state file", p);
		return false;
	}
	return true;
}

void
aurora_start_state_free(aurora_start_state *s)
{
	for (uint32_t i = 0; i < s->n_files; i++)
	{
		free(s->files[i].path);
		free(s->files[i].data);
	}
	free(s->files);
	memset(s, 0, sizeof(*s));
}

/* ---- codec ---- */

size_t
aurora_start_state_encoded_size(const aurora_start_state *s)
{
	uint64_t	total = AURORA_START_STATE_HEADER_SIZE + AURORA_START_STATE_TRAILER_SIZE;

	if (s->n_files > AURORA_START_STATE_MAX_FILES)
		return 0;
	for (uint32_t i = 0; i < s->n_files; i++)
	{
		total += 2 + strlen(s->files[i].path) + 4 + 8 + 4 + s->files[i].size;
		if (total > AURORA_START_STATE_MAX_BYTES)
			return 0;
	}
	return (size_t) total;
}

int
aurora_start_state_encode(const aurora_start_state *s, uint8_t **out, size_t *len,
						  char *err, size_t errlen)
{
	size_t		total = aurora_start_state_encoded_size(s);
	uint8_t    *buf;
	aurora_buf	b;
	uint32_t	crc;

	*out = NULL;
	*len = 0;
	if (total == 0)
	{
		aurora_seterr(err, errlen, "start state: more than %u files or %u bytes",
					  AURORA_START_STATE_MAX_FILES, AURORA_START_STATE_MAX_BYTES);
		return -1;
	}
	for (uint32_t i = 0; i < s->n_files; i++)
	{
		const char *p = s->files[i].path;

		if (!path_ok(p, strlen(p), err, errlen))
			return -1;
		if (i > 0 && strcmp(s->files[i - 1].path, p) >= 0)
		{
			aurora_seterr(err, errlen, "start state: files not sorted or duplicated at \"%.200s\"", p);
			return -1;
		}
	}
	if ((buf = malloc(total)) == NULL)
	{
		aurora_seterr(err, errlen, "start state: out of memory for %zu bytes", total);
		return -1;
	}
	aurora_buf_init_writer(&b, buf, total);
	aurora_buf_put_u32(&b, AURORA_START_STATE_MAGIC);
	aurora_buf_put_u32(&b, AURORA_START_STATE_VERSION);
	aurora_buf_put_u64(&b, s->consistent_lsn);
	aurora_buf_put_u64(&b, s->checkpoint_lsn);
	aurora_buf_put_u64(&b, s->redo_lsn);
	aurora_buf_put_u32(&b, s->n_files);
	for (uint32_t i = 0; i < s->n_files; i++)
	{
		const aurora_start_state_file *f = &s->files[i];

		aurora_buf_put_str(&b, f->path);
		aurora_buf_put_u32(&b, f->mode);
		aurora_buf_put_u64(&b, f->size);
		aurora_buf_put_u32(&b, aurora_crc32c(0, f->data, (size_t) f->size));
		aurora_buf_put_bytes(&b, f->data, (size_t) f->size);
	}
	crc = aurora_crc32c(0, buf, aurora_buf_len(&b));
	aurora_buf_put_u32(&b, crc);
	if (aurora_buf_finish_write(&b) != total)
	{
		free(buf);
		aurora_seterr(err, errlen, "start state: encoding failed");
		return -1;
	}
	*out = buf;
	*len = total;
	return 0;
}

/*
 * Walk an encoded bundle.  With out == NULL only checks; otherwise also
 * copies every file into out (out->files already allocated).
 */
static int
walk(const uint8_t *buf, size_t len, aurora_start_state *out, uint64_t lsns[3],
	 char *err, size_t errlen)
{
	aurora_buf	b;
	uint32_t	magic,
				version,
				n_files;
	char		prev[AURORA_START_STATE_PATH_MAX + 1] = "";
	char		path[AURORA_START_STATE_PATH_MAX + 1];

	if (len > AURORA_START_STATE_MAX_BYTES)
	{
		aurora_seterr(err, errlen, "start state: %zu bytes, more than the limit of %u", len,
					  AURORA_START_STATE_MAX_BYTES);
		return -1;
	}
	if (len < AURORA_START_STATE_HEADER_SIZE + AURORA_START_STATE_TRAILER_SIZE)
	{
		aurora_seterr(err, errlen, "start state: %zu bytes, too short for a bundle", len);
		return -1;
	}
	aurora_buf_init_reader(&b, buf, len - AURORA_START_STATE_TRAILER_SIZE);
	magic = aurora_buf_get_u32(&b);
	version = aurora_buf_get_u32(&b);
	if (magic != AURORA_START_STATE_MAGIC)
	{
		aurora_seterr(err, errlen, "start state: bad magic 0x%08x", (unsigned) magic);
		return -1;
	}
	if (version != AURORA_START_STATE_VERSION)
	{
		aurora_seterr(err, errlen, "start state: format version %u, this build reads %d",
					  (unsigned) version, AURORA_START_STATE_VERSION);
		return -1;
	}
	{
		const uint8_t *t = buf + len - AURORA_START_STATE_TRAILER_SIZE;
		uint32_t	stored = (uint32_t) t[0] | (uint32_t) t[1] << 8 |
			(uint32_t) t[2] << 16 | (uint32_t) t[3] << 24;
		uint32_t	crc = aurora_crc32c(0, buf, len - AURORA_START_STATE_TRAILER_SIZE);

		if (stored != crc)
		{
			aurora_seterr(err, errlen, "start state: bundle CRC mismatch (stored 0x%08x, "
						  "computed 0x%08x)", (unsigned) stored, (unsigned) crc);
			return -1;
		}
	}
	lsns[0] = aurora_buf_get_u64(&b);
	lsns[1] = aurora_buf_get_u64(&b);
	lsns[2] = aurora_buf_get_u64(&b);
	n_files = aurora_buf_get_u32(&b);
	if (n_files > AURORA_START_STATE_MAX_FILES)
	{
		aurora_seterr(err, errlen, "start state: %u files, more than the limit of %u",
					  (unsigned) n_files, AURORA_START_STATE_MAX_FILES);
		return -1;
	}
	if (out != NULL && out->n_files != n_files)
	{
		aurora_seterr(err, errlen, "start state: internal file count mismatch");
		return -1;
	}
	for (uint32_t i = 0; i < n_files; i++)
	{
		uint16_t	plen = aurora_buf_get_u16(&b);
		uint32_t	mode,
					crc;
		uint64_t	size;
		const uint8_t *data;

		if (!aurora_buf_ok(&b) || plen > aurora_buf_remaining(&b) ||
			plen > AURORA_START_STATE_PATH_MAX || plen == 0)
		{
			aurora_seterr(err, errlen, "start state: file %u: bad or truncated path", (unsigned) i);
			return -1;
		}
		memcpy(path, buf + aurora_buf_len(&b), plen);
		path[plen] = '\0';
		if (!path_ok(path, plen, err, errlen))
			return -1;
		b.pos += plen;
		if (i > 0 && strcmp(prev, path) >= 0)
		{
			aurora_seterr(err, errlen, "start state: files not sorted or duplicated at \"%.200s\"", path);
			return -1;
		}
		memcpy(prev, path, (size_t) plen + 1);
		mode = aurora_buf_get_u32(&b);
		size = aurora_buf_get_u64(&b);
		crc = aurora_buf_get_u32(&b);
		if (!aurora_buf_ok(&b) || size > aurora_buf_remaining(&b))
		{
			aurora_seterr(err, errlen, "start state: \"%.200s\": truncated (%llu bytes announced)",
						  path, (unsigned long long) size);
			return -1;
		}
		if ((mode & ~0777u) != 0)
		{
			aurora_seterr(err, errlen, "start state: \"%.200s\": mode 0%o is not permission bits",
						  path, (unsigned) mode);
			return -1;
		}
		data = buf + aurora_buf_len(&b);
		if (aurora_crc32c(0, data, (size_t) size) != crc)
		{
			aurora_seterr(err, errlen, "start state: \"%.200s\": file CRC mismatch", path);
			return -1;
		}
		b.pos += (size_t) size;
		if (out != NULL)
		{
			aurora_start_state_file *f = &out->files[i];

			f->path = strdup(path);
			f->mode = mode;
			f->size = size;
			f->data = size > 0 ? malloc((size_t) size) : NULL;
			if (f->path == NULL || (size > 0 && f->data == NULL))
			{
				aurora_seterr(err, errlen, "start state: out of memory");
				return -1;
			}
			if (size > 0)
				memcpy(f->data, data, (size_t) size);
		}
	}
	if (aurora_buf_finish_read(&b) != 0)
	{
		aurora_seterr(err, errlen, "start state: %zu bytes after the last file",
					  aurora_buf_remaining(&b));
		return -1;
	}
	return 0;
}

int
aurora_start_state_check(const uint8_t *buf, size_t len, uint64_t *consistent_lsn,
						 uint64_t *checkpoint_lsn, uint64_t *redo_lsn, char *err, size_t errlen)
{
	uint64_t	lsns[3];

	if (walk(buf, len, NULL, lsns, err, errlen) != 0)
		return -1;
	if (consistent_lsn)
		*consistent_lsn = lsns[0];
	if (checkpoint_lsn)
		*checkpoint_lsn = lsns[1];
	if (redo_lsn)
		*redo_lsn = lsns[2];
	return 0;
}

int
aurora_start_state_decode(const uint8_t *buf, size_t len, aurora_start_state *out,
						  char *err, size_t errlen)
{
	uint64_t	lsns[3];
	uint32_t	n;

	memset(out, 0, sizeof(*out));
	if (walk(buf, len, NULL, lsns, err, errlen) != 0)
		return -1;
	/* checked: n_files is within the limit and every file is there */
	n = (uint32_t) buf[32] | (uint32_t) buf[33] << 8 | (uint32_t) buf[34] << 16 |
		(uint32_t) buf[35] << 24;
	out->files = calloc(n > 0 ? n : 1, sizeof(*out->files));
	if (out->files == NULL)
	{
		aurora_seterr(err, errlen, "start state: out of memory");
		return -1;
	}
	out->n_files = n;
	if (walk(buf, len, out, lsns, err, errlen) != 0)
	{
		aurora_start_state_free(out);
		return -1;
	}
	out->consistent_lsn = lsns[0];
	out->checkpoint_lsn = lsns[1];
	out->redo_lsn = lsns[2];
	return 0;
}

/* ---- building from a data directory ---- */

typedef struct collector
{
	const char *datadir;
	aurora_start_state *s;
	uint32_t	cap;
	uint64_t	bytes;
	bool		paths_only;		/* list paths, read nothing (a replacing restore) */
	char	   *err;
	size_t		errlen;
} collector;

static int
add_file(collector *c, const char *rel, const uint8_t *bytes, size_t n, uint32_t mode)
{
	aurora_start_state_file *f;

	if (c->s->n_files >= AURORA_START_STATE_MAX_FILES)
	{
		aurora_seterr(c->err, c->errlen, "start state: more than %u files",
					  AURORA_START_STATE_MAX_FILES);
		return -1;
	}
	if (c->s->n_files == c->cap)
	{
		uint32_t	cap = c->cap ? c->cap * 2 : 64;
		aurora_start_state_file *g = realloc(c->s->files, (size_t) cap * sizeof(*g));

		if (g == NULL)
		{
			aurora_seterr(c->err, c->errlen, "start state: out of memory");
			return -1;
		}
		c->s->files = g;
		c->cap = cap;
	}
	f = &c->s->files[c->s->n_files];
	memset(f, 0, sizeof(*f));
	f->path = strdup(rel);
	f->mode = mode & 0777u;
	f->size = n;
	if (n > 0 && (f->data = malloc(n)) != NULL)
		memcpy(f->data, bytes, n);
	if (f->path == NULL || (n > 0 && f->data == NULL))
	{
		free(f->path);
		free(f->data);
		aurora_seterr(c->err, c->errlen, "start state: out of memory");
		return -1;
	}
	c->s->n_files++;
	return 0;
}

/* Read DATADIR/rel whole; missing: 0 with *found false (when optional). */
static int
take_file(collector *c, const char *rel, bool required)
{
	char		path[4200];
	struct stat st;
	uint8_t    *data = NULL;
	size_t		got = 0;
	int			fd,
				rc;

	snprintf(path, sizeof(path), "%s/%s", c->datadir, rel);
	if (stat(path, &st) != 0)
	{
		if (errno == ENOENT && !required)
			return 0;
		aurora_seterr(c->err, c->errlen, "start state: cannot stat %.900s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode))
	{
		if (!required)
			return 0;
		aurora_seterr(c->err, c->errlen, "start state: %.900s is not a regular file", path);
		return -1;
	}
	if (c->paths_only)
		return add_file(c, rel, NULL, 0, (uint32_t) st.st_mode);
	if ((uint64_t) st.st_size > AURORA_START_STATE_MAX_BYTES - c->bytes)
	{
		aurora_seterr(c->err, c->errlen, "start state: files exceed the limit of %u bytes at %.900s",
					  AURORA_START_STATE_MAX_BYTES, path);
		return -1;
	}
	if ((fd = open(path, O_RDONLY)) < 0)
	{
		aurora_seterr(c->err, c->errlen, "start state: cannot open %.900s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_size > 0 && (data = malloc((size_t) st.st_size)) == NULL)
	{
		close(fd);
		aurora_seterr(c->err, c->errlen, "start state: out of memory for %.900s", path);
		return -1;
	}
	while (got < (size_t) st.st_size)
	{
		ssize_t		r = read(fd, data + got, (size_t) st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
		{
			aurora_seterr(c->err, c->errlen, "start state: cannot read %.900s: %s", path,
						  r < 0 ? strerror(errno) : "file shrank while reading");
			free(data);
			close(fd);
			return -1;
		}
		got += (size_t) r;
	}
	close(fd);
	c->bytes += got;
	rc = add_file(c, rel, data, got, (uint32_t) st.st_mode);
	free(data);
	return rc;
}

/*
 * Every entry of DATADIR/reldir whose relative path "reldir/name" is a taken
 * file; with sub, also "reldir/name/sub" for every subdirectory name (slots,
 * databases).  A missing directory has nothing.
 */
static int
take_dir(collector *c, const char *reldir, const char *sub)
{
	char		path[4200];
	DIR		   *d;
	struct dirent *e;
	int			rc = 0;

	snprintf(path, sizeof(path), "%s/%s", c->datadir, reldir);
	if ((d = opendir(path)) == NULL)
	{
		if (errno == ENOENT)
			return 0;
		aurora_seterr(c->err, c->errlen, "start state: cannot list %.900s: %s", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && (e = readdir(d)) != NULL)
	{
		char		rel[2200];

		if (e->d_name[0] == '.')
			continue;
		if (sub != NULL)
			snprintf(rel, sizeof(rel), "%s/%s/%s", reldir, e->d_name, sub);
		else
			snprintf(rel, sizeof(rel), "%s/%s", reldir, e->d_name);
		if (aurora_start_state_path_kind(rel) != AURORA_SS_NOT_TAKEN)
			rc = take_file(c, rel, false);
	}
	closedir(d);
	return rc;
}

/* Every database directory of base/: its PG_VERSION, relmap and init forks. */
static int
take_databases(collector *c)
{
	char		path[4200];
	DIR		   *d;
	struct dirent *e;
	int			rc = 0;

	snprintf(path, sizeof(path), "%s/base", c->datadir);
	if ((d = opendir(path)) == NULL)
	{
		if (errno == ENOENT)
			return 0;
		aurora_seterr(c->err, c->errlen, "start state: cannot list %.900s: %s", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && (e = readdir(d)) != NULL)
	{
		char		rel[512];

		if (!is_oid(e->d_name, strlen(e->d_name)))
			continue;
		snprintf(rel, sizeof(rel), "base/%s", e->d_name);
		rc = take_dir(c, rel, NULL);
	}
	closedir(d);
	return rc;
}

static int
cmp_file(const void *a, const void *b)
{
	return strcmp(((const aurora_start_state_file *) a)->path,
				  ((const aurora_start_state_file *) b)->path);
}

/* Collect into c->s every taken file of c->datadir, sorted. */
static int
collect(collector *c, bool need_core)
{
	static const char *const single[] = {
		"PG_VERSION", "pg_logical/replorigin_checkpoint",
		"postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"
	};
	static const char *const dirs[] = {
		"global", "pg_xact", "pg_multixact/offsets", "pg_multixact/members", "pg_commit_ts",
		"pg_twophase"
	};
	int			rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(single) / sizeof(single[0]); i++)
		rc = take_file(c, single[i], need_core && strcmp(single[i], "PG_VERSION") == 0);
	/* global/: pg_control, the shared relmap and the init forks of shared relations */
	for (size_t i = 0; rc == 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++)
		rc = take_dir(c, dirs[i], NULL);
	if (rc == 0)
		rc = take_dir(c, "pg_replslot", "state");
	if (rc == 0)
		rc = take_databases(c);
	if (rc == 0 && c->s->n_files > 1)
		qsort(c->s->files, c->s->n_files, sizeof(*c->s->files), cmp_file);
	return rc;
}

/* Drop the file at index i (pg_control when the caller brings its own). */
static void
remove_file_at(aurora_start_state *s, uint32_t i)
{
	free(s->files[i].path);
	free(s->files[i].data);
	memmove(&s->files[i], &s->files[i + 1], (size_t) (s->n_files - i - 1) * sizeof(*s->files));
	s->n_files--;
}

int
aurora_start_state_from_datadir(const char *datadir, const aurora_start_state_build_opts *opts,
								aurora_start_state *out, char *err, size_t errlen)
{
	collector	c;
	bool		have_control = false;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.datadir = datadir;
	c.s = out;
	c.err = err;
	c.errlen = errlen;
	if (collect(&c, true) != 0)
	{
		aurora_start_state_free(out);
		return -1;
	}
	for (uint32_t i = 0; i < out->n_files; i++)
		if (strcmp(out->files[i].path, "global/pg_control") == 0)
		{
			if (opts->pg_control != NULL)
				remove_file_at(out, i);
			else
				have_control = true;
			break;
		}
	if (opts->pg_control != NULL)
	{
		if (add_file(&c, "global/pg_control", opts->pg_control, opts->pg_control_len, 0600) != 0)
		{
			aurora_start_state_free(out);
			return -1;
		}
		qsort(out->files, out->n_files, sizeof(*out->files), cmp_file);
		have_control = true;
	}
	if (!have_control)
	{
		aurora_seterr(err, errlen, "start state: %.900s/global/pg_control is missing", datadir);
		aurora_start_state_free(out);
		return -1;
	}
	out->consistent_lsn = opts->consistent_lsn;
	out->checkpoint_lsn = opts->checkpoint_lsn;
	out->redo_lsn = opts->redo_lsn;
	if (aurora_start_state_encoded_size(out) == 0)
	{
		aurora_seterr(err, errlen, "start state: more than %u files or %u bytes",
					  AURORA_START_STATE_MAX_FILES, AURORA_START_STATE_MAX_BYTES);
		aurora_start_state_free(out);
		return -1;
	}
	return 0;
}

/* ---- writing a data directory ---- */

/* The empty directories PostgreSQL 15 needs in a data directory (initdb's list). */
static const char *const standard_dirs[] = {
	"global", "base", "pg_wal", "pg_wal/archive_status", "pg_commit_ts", "pg_dynshmem",
	"pg_notify", "pg_serial", "pg_snapshots", "pg_subtrans", "pg_twophase", "pg_multixact",
	"pg_multixact/members", "pg_multixact/offsets", "pg_replslot", "pg_tblspc", "pg_stat",
	"pg_stat_tmp", "pg_xact", "pg_logical", "pg_logical/snapshots", "pg_logical/mappings"
};

/* mkdir DATADIR/rel (0700) unless it exists as a directory. */
static int
make_dir(const char *datadir, const char *rel, char *err, size_t errlen)
{
	char		path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", datadir, rel);
	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	aurora_seterr(err, errlen, "start state: cannot create directory %.900s: %s", path,
				  strerror(errno));
	return -1;
}

/* Every parent directory of rel inside datadir (slot directories, base/<oid>). */
static int
make_parents(const char *datadir, const char *rel, char *err, size_t errlen)
{
	char		buf[AURORA_START_STATE_PATH_MAX + 1];
	char	   *p;

	snprintf(buf, sizeof(buf), "%s", rel);
	for (p = strchr(buf, '/'); p != NULL; p = strchr(p + 1, '/'))
	{
		*p = '\0';
		if (make_dir(datadir, buf, err, errlen) != 0)
			return -1;
		*p = '/';
	}
	return 0;
}

/* True when DATADIR does not exist or has no entries. */
static int
dir_is_empty(const char *datadir, bool *empty, bool *exists, char *err, size_t errlen)
{
	DIR		   *d = opendir(datadir);
	struct dirent *e;

	*empty = true;
	*exists = d != NULL;
	if (d == NULL)
	{
		if (errno == ENOENT)
			return 0;
		aurora_seterr(err, errlen, "start state: cannot list %.900s: %s", datadir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
		{
			*empty = false;
			break;
		}
	closedir(d);
	return 0;
}

static int
write_file(const char *datadir, const aurora_start_state_file *f, char *err, size_t errlen)
{
	char		path[4200];
	size_t		done = 0;
	int			fd;

	snprintf(path, sizeof(path), "%s/%s", datadir, f->path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, (mode_t) (f->mode ? f->mode : 0600));
	if (fd < 0)
	{
		aurora_seterr(err, errlen, "start state: cannot create %.900s: %s", path, strerror(errno));
		return -1;
	}
	while (done < f->size)
	{
		ssize_t		w = write(fd, f->data + done, (size_t) f->size - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
		{
			aurora_seterr(err, errlen, "start state: cannot write %.900s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		done += (size_t) w;
	}
	if (fchmod(fd, (mode_t) (f->mode ? f->mode : 0600)) != 0 || fsync(fd) != 0)
	{
		aurora_seterr(err, errlen, "start state: cannot fsync %.900s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) != 0)
	{
		aurora_seterr(err, errlen, "start state: cannot close %.900s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Remove the start state files of an existing data directory (REPLACE). */
static int
remove_taken(const char *datadir, unsigned flags, char *err, size_t errlen)
{
	aurora_start_state old;
	collector	c;
	int			rc = 0;

	memset(&old, 0, sizeof(old));
	memset(&c, 0, sizeof(c));
	c.datadir = datadir;
	c.s = &old;
	c.paths_only = true;
	c.err = err;
	c.errlen = errlen;
	if (collect(&c, false) != 0)
	{
		aurora_start_state_free(&old);
		return -1;
	}
	for (uint32_t i = 0; rc == 0 && i < old.n_files; i++)
	{
		char		path[4200];

		if ((flags & AURORA_START_STATE_KEEP_CONFIG) &&
			aurora_start_state_path_kind(old.files[i].path) == AURORA_SS_CONFIG)
			continue;
		snprintf(path, sizeof(path), "%s/%s", datadir, old.files[i].path);
		if (unlink(path) != 0 && errno != ENOENT)
		{
			aurora_seterr(err, errlen, "start state: cannot remove %.900s: %s", path, strerror(errno));
			rc = -1;
		}
	}
	aurora_start_state_free(&old);
	return rc;
}

/* The parent directory of rel ("" for the data directory itself). */
static void
parent_of(const char *rel, char *out, size_t cap)
{
	const char *slash = strrchr(rel, '/');

	if (slash == NULL)
		snprintf(out, cap, "%s", "");
	else
		snprintf(out, cap, "%.*s", (int) (slash - rel), rel);
}

int
aurora_start_state_to_datadir(const aurora_start_state *s, const char *datadir, unsigned flags,
							  char *err, size_t errlen)
{
	bool		empty,
				exists;
	char		last_parent[AURORA_START_STATE_PATH_MAX + 1] = "\x01";

	for (uint32_t i = 0; i < s->n_files; i++)
		if (!path_ok(s->files[i].path, strlen(s->files[i].path), err, errlen))
			return -1;
	if (dir_is_empty(datadir, &empty, &exists, err, errlen) != 0)
		return -1;
	if (!empty && !(flags & AURORA_START_STATE_REPLACE))
	{
		aurora_seterr(err, errlen, "start state: %.900s is not empty (replacing the start state "
					  "of an existing data directory must be asked for)", datadir);
		return -1;
	}
	if (!exists && mkdir(datadir, 0700) != 0)
	{
		aurora_seterr(err, errlen, "start state: cannot create %.900s: %s", datadir, strerror(errno));
		return -1;
	}
	if (chmod(datadir, 0700) != 0)
	{
		aurora_seterr(err, errlen, "start state: cannot chmod %.900s: %s", datadir, strerror(errno));
		return -1;
	}
	if (!empty && remove_taken(datadir, flags, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(standard_dirs) / sizeof(standard_dirs[0]); i++)
		if (make_dir(datadir, standard_dirs[i], err, errlen) != 0)
			return -1;
	for (uint32_t i = 0; i < s->n_files; i++)
	{
		const aurora_start_state_file *f = &s->files[i];

		if (make_parents(datadir, f->path, err, errlen) != 0)
			return -1;
		if ((flags & AURORA_START_STATE_KEEP_CONFIG) &&
			aurora_start_state_path_kind(f->path) == AURORA_SS_CONFIG)
		{
			char		path[4200];
			struct stat st;

			snprintf(path, sizeof(path), "%s/%s", datadir, f->path);
			if (stat(path, &st) == 0)
				continue;
		}
		if (write_file(datadir, f, err, errlen) != 0)
			return -1;
	}
	/* every directory that got an entry, children before parents, then the top */
	for (uint32_t i = 0; i < s->n_files; i++)
	{
		char		parent[AURORA_START_STATE_PATH_MAX + 1];
		char		path[4200];

		parent_of(s->files[i].path, parent, sizeof(parent));
		if (parent[0] == '\0' || strcmp(parent, last_parent) == 0)
			continue;
		snprintf(last_parent, sizeof(last_parent), "%s", parent);
		snprintf(path, sizeof(path), "%s/%s", datadir, parent);
		if (aurora_fsync_path(path, err, errlen) != 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof(standard_dirs) / sizeof(standard_dirs[0]); i++)
	{
		char		path[4200];

		snprintf(path, sizeof(path), "%s/%s", datadir, standard_dirs[i]);
		if (aurora_fsync_path(path, err, errlen) != 0)
			return -1;
	}
	if (aurora_fsync_path(datadir, err, errlen) != 0)
		return -1;
	return 0;
}
