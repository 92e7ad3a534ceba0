/*
 * start_state.c - a storage node's start states (start_state.h): pieces of
 * a put appended to a partial file, the complete bundle verified and
 * renamed into place, the newest three kept, reads in pieces, and the drop
 * above a truncation point.
 *
 * Everything is on disk; the only memory is one piece at a time.  A
 * partial file is never served, and the one rename that makes a bundle
 * visible comes after its bytes and CRCs are checked and fsynced.
 */
#define _DEFAULT_SOURCE

#include "start_state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "segment.h"
#include "segment_table.h"
#include "util.h"
#include "wire.h"
#include "../common/start_state.h"

struct aurora_start_states
{
	pthread_mutex_t mu;			/* serializes every operation of the store */
	aurora_segment_table *table;
};

/* One file of a segment's start-states directory. */
typedef struct ss_entry
{
	uint64_t	lsn;
	uint64_t	total;			/* partial files only */
	bool		partial;
	char		name[64];
} ss_entry;

static void
states_dir(aurora_start_states *ss, aurora_segment *seg, char *buf, size_t len)
{
	aurora_segment_meta meta;
	char		segdir[4096];

	aurora_segment_get_meta(seg, &meta);
	aurora_segment_table_segment_path(ss->table, meta.volume_id, meta.pg_id, segdir, sizeof(segdir));
	snprintf(buf, len, "%.4000s/" AURORA_START_STATES_DIR, segdir);
}

static bool
parse_hex16(const char *s, uint64_t *out)
{
	uint64_t	v = 0;

	for (int i = 0; i < 16; i++)
	{
		char		c = s[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t) (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t) (c - 'a' + 10);
		else
			return false;
	}
	*out = v;
	return true;
}

/* "<16 hex>.bundle" or "<16 hex>-<16 hex>.partial"; false for anything else. */
static bool
parse_name(const char *name, ss_entry *e)
{
	size_t		n = strlen(name);

	memset(e, 0, sizeof(*e));
	if (n == 23 && strcmp(name + 16, ".bundle") == 0 && parse_hex16(name, &e->lsn))
		e->partial = false;
	else if (n == 41 && name[16] == '-' && strcmp(name + 33, ".partial") == 0 &&
			 parse_hex16(name, &e->lsn) && parse_hex16(name + 17, &e->total))
		e->partial = true;
	else
		return false;
	snprintf(e->name, sizeof(e->name), "%s", name);
	return true;
}

static int
cmp_newest_first(const void *a, const void *b)
{
	const ss_entry *x = a,
			   *y = b;

	return x->lsn < y->lsn ? 1 : x->lsn > y->lsn ? -1 : 0;
}

/*
 * The entries of dir, complete bundles newest first, then partial files.
 * A missing directory has none.  *out malloc'd (free() it); -1 on error.
 */
static int
list_dir(const char *dir, ss_entry **out, int *n_complete, int *n_partial)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	ss_entry   *v = NULL;
	int			n = 0,
				cap = 0,
				nc = 0;

	*out = NULL;
	*n_complete = *n_partial = 0;
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL)
	{
		ss_entry	e;

		if (!parse_name(de->d_name, &e))
			continue;
		if (n == cap)
		{
			ss_entry   *g;

			cap = cap ? cap * 2 : 8;
			if ((g = realloc(v, (size_t) cap * sizeof(*v))) == NULL)
			{
				free(v);
				closedir(d);
				return -1;
			}
			v = g;
		}
		v[n++] = e;
	}
	closedir(d);
	/* complete ones first, newest first; then the partial ones */
	for (int i = 0; i < n; i++)
		if (!v[i].partial)
		{
			ss_entry	t = v[nc];

			v[nc++] = v[i];
			v[i] = t;
		}
	if (nc > 1)
		qsort(v, (size_t) nc, sizeof(*v), cmp_newest_first);
	*out = v;
	*n_complete = nc;
	*n_partial = n - nc;
	return 0;
}

static int
remove_entry(const char *dir, const ss_entry *e, char *err, size_t errlen)
{
	char		path[4300];

	snprintf(path, sizeof(path), "%s/%s", dir, e->name);
	if (unlink(path) != 0 && errno != ENOENT)
	{
		aurora_seterr(err, errlen, "cannot remove %.300s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
discard_partials_fn(void *arg, aurora_segment *seg)
{
	aurora_start_states *ss = arg;
	char		dir[4200];
	char		err[512];
	ss_entry   *v;
	int			nc,
				np;

	states_dir(ss, seg, dir, sizeof(dir));
	if (list_dir(dir, &v, &nc, &np) != 0)
	{
		aurora_log("start states: cannot list %s: %s", dir, strerror(errno));
		return 0;
	}
	for (int i = nc; i < nc + np; i++)
		if (remove_entry(dir, &v[i], err, sizeof(err)) != 0)
			aurora_log("start states: %s", err);
		else
			aurora_log("start states: discarded the unfinished put %s in %s", v[i].name, dir);
	if (np > 0 && aurora_fsync_path(dir, err, sizeof(err)) != 0)
		aurora_log("start states: %s", err);
	free(v);
	return 0;
}

int
aurora_start_states_open(aurora_segment_table *table, aurora_start_states **out,
						 char *err, size_t errlen)
{
	aurora_start_states *ss = calloc(1, sizeof(*ss));

	*out = NULL;
	if (ss == NULL)
	{
		aurora_seterr(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&ss->mu, NULL);
	ss->table = table;
	aurora_segment_table_foreach(table, discard_partials_fn, ss);
	*out = ss;
	return 0;
}

void
aurora_start_states_close(aurora_start_states *ss)
{
	if (ss == NULL)
		return;
	pthread_mutex_destroy(&ss->mu);
	free(ss);
}

/* pwrite all of len bytes at off. */
static int
write_at(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len > 0)
	{
		ssize_t		w = pwrite(fd, p, len, (off_t) off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t) w;
		off += (uint64_t) w;
	}
	return 0;
}

/*
 * The partial file is complete: fsync it, check the bundle (mapped, not
 * read into memory), rename it into place and fsync the directory.
 */
static int
finish_put(const char *dir, const char *partial, uint64_t lsn, uint64_t total, int fd,
		   char *err, size_t errlen)
{
	char		final[4300];
	char		why[512];
	void	   *map;
	uint64_t	blsn;
	int			rc;

	if (fsync(fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot fsync %.300s: %s", partial, strerror(errno));
		return AURORA_ERR_IO;
	}
	map = mmap(NULL, (size_t) total, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
	{
		aurora_seterr(err, errlen, "cannot map %.300s: %s", partial, strerror(errno));
		return AURORA_ERR_IO;
	}
	rc = aurora_start_state_check(map, (size_t) total, &blsn, NULL, NULL, why, sizeof(why));
	munmap(map, (size_t) total);
	if (rc != 0 || blsn != lsn)
	{
		if (rc == 0)
			snprintf(why, sizeof(why), "the bundle is consistent at %" PRIX64 ", not at the put's %" PRIX64,
					 blsn, lsn);
		aurora_seterr(err, errlen, "start state %016" PRIx64 " refused: %s", lsn, why);
		unlink(partial);
		return AURORA_ERR_CORRUPT;
	}
	snprintf(final, sizeof(final), "%s/%016" PRIx64 ".bundle", dir, lsn);
	if (rename(partial, final) != 0)
	{
		aurora_seterr(err, errlen, "cannot rename %.300s: %s", partial, strerror(errno));
		return AURORA_ERR_IO;
	}
	if (aurora_fsync_path(dir, err, errlen) != 0)
		return AURORA_ERR_IO;
	return 0;
}

/* Keep the newest AURORA_START_STATES_KEEP complete ones (after a new one is durable). */
static void
prune(const char *dir)
{
	ss_entry   *v;
	int			nc,
				np;
	char		err[512];

	if (list_dir(dir, &v, &nc, &np) != 0)
		return;
	for (int i = AURORA_START_STATES_KEEP; i < nc; i++)
		if (remove_entry(dir, &v[i], err, sizeof(err)) != 0)
			aurora_log("start states: %s", err);
	if (nc > AURORA_START_STATES_KEEP && aurora_fsync_path(dir, err, sizeof(err)) != 0)
		aurora_log("start states: %s", err);
	free(v);
}

static int
put_locked(aurora_start_states *ss, aurora_segment *seg, const aurora_start_state_put *p,
		   aurora_start_state_ack *ack, char *err, size_t errlen)
{
	char		dir[4200],
				partial[4300];
	ss_entry   *v;
	int			nc,
				np;
	bool		have_partial = false;
	uint64_t	received = 0;
	struct stat st;
	int			fd,
				rc;

	ack->consistent_lsn = p->consistent_lsn;
	ack->received = 0;
	ack->complete = 0;
	if (p->total_len < AURORA_START_STATE_HEADER_SIZE + AURORA_START_STATE_TRAILER_SIZE ||
		p->total_len > AURORA_START_STATE_MAX_BYTES)
	{
		aurora_seterr(err, errlen, "start state total_len %" PRIu64 " is outside 40..%u bytes",
					  p->total_len, AURORA_START_STATE_MAX_BYTES);
		return AURORA_ERR_MALFORMED;
	}
	states_dir(ss, seg, dir, sizeof(dir));
	if (mkdir(dir, 0700) == 0)
	{
		/* the new directory's entry must be durable before anything in it is */
		char		segdir[4200];

		snprintf(segdir, sizeof(segdir), "%s", dir);
		*strrchr(segdir, '/') = '\0';
		if (aurora_fsync_path(segdir, err, errlen) != 0)
			return AURORA_ERR_IO;
	}
	else if (errno != EEXIST)
	{
		aurora_seterr(err, errlen, "cannot create %.300s: %s", dir, strerror(errno));
		return AURORA_ERR_IO;
	}
	if (list_dir(dir, &v, &nc, &np) != 0)
	{
		aurora_seterr(err, errlen, "cannot list %.300s: %s", dir, strerror(errno));
		return AURORA_ERR_IO;
	}
	/* already held complete: a retry, acknowledged as it is */
	for (int i = 0; i < nc; i++)
		if (v[i].lsn == p->consistent_lsn)
		{
			snprintf(partial, sizeof(partial), "%s/%s", dir, v[i].name);
			free(v);
			if (stat(partial, &st) != 0 || (uint64_t) st.st_size != p->total_len)
			{
				aurora_seterr(err, errlen, "start state %016" PRIx64 " is held with another length",
							  p->consistent_lsn);
				return AURORA_ERR_INCONSISTENT;
			}
			ack->received = p->total_len;
			ack->complete = 1;
			return 0;
		}
	snprintf(partial, sizeof(partial), "%s/%016" PRIx64 "-%016" PRIx64 ".partial", dir,
			 p->consistent_lsn, p->total_len);
	for (int i = nc; i < nc + np; i++)
		if (v[i].lsn == p->consistent_lsn && v[i].total == p->total_len)
			have_partial = true;
	/* a later piece must continue the put in progress exactly; else nothing changes */
	if (p->offset > 0)
	{
		if (have_partial && stat(partial, &st) != 0)
		{
			aurora_seterr(err, errlen, "cannot stat %.300s: %s", partial, strerror(errno));
			free(v);
			return AURORA_ERR_IO;
		}
		received = have_partial ? (uint64_t) st.st_size : 0;
		if (p->offset != received)
		{
			aurora_seterr(err, errlen, "start state %016" PRIx64 ": piece at offset %" PRIu64
						  " out of order; the node has %" PRIu64 " bytes of it", p->consistent_lsn,
						  p->offset, received);
			free(v);
			return AURORA_ERR_INCONSISTENT;
		}
	}
	/* accepted: one put at a time, any other partial file goes (a first piece restarts its own) */
	for (int i = nc; i < nc + np; i++)
	{
		if (p->offset > 0 && v[i].lsn == p->consistent_lsn && v[i].total == p->total_len)
			continue;
		if (remove_entry(dir, &v[i], err, errlen) != 0)
		{
			free(v);
			return AURORA_ERR_IO;
		}
	}
	free(v);
	fd = open(partial, O_RDWR | O_CREAT | (p->offset == 0 ? O_TRUNC : 0), 0600);
	if (fd < 0)
	{
		aurora_seterr(err, errlen, "cannot open %.300s: %s", partial, strerror(errno));
		return AURORA_ERR_IO;
	}
	if (write_at(fd, p->data, p->len, p->offset) != 0)
	{
		aurora_seterr(err, errlen, "cannot write %.300s: %s", partial, strerror(errno));
		close(fd);
		unlink(partial);
		return AURORA_ERR_IO;
	}
	received = p->offset + p->len;
	rc = 0;
	if (received == p->total_len)
	{
		rc = finish_put(dir, partial, p->consistent_lsn, p->total_len, fd, err, errlen);
		if (rc == 0)
			ack->complete = 1;
	}
	close(fd);
	if (rc != 0)
		return rc;
	ack->received = received;
	if (ack->complete)
	{
		aurora_log("start states: stored %016" PRIx64 " (%" PRIu64 " bytes) in %s",
				   p->consistent_lsn, p->total_len, dir);
		prune(dir);
	}
	return 0;
}

int
aurora_start_states_put(aurora_start_states *ss, aurora_segment *seg,
						const aurora_start_state_put *p, aurora_start_state_ack *ack,
						char *err, size_t errlen)
{
	int			rc;

	pthread_mutex_lock(&ss->mu);
	rc = put_locked(ss, seg, p, ack, err, errlen);
	pthread_mutex_unlock(&ss->mu);
	return rc;
}

static int
get_locked(aurora_start_states *ss, aurora_segment *seg, const aurora_start_state_get *g,
		   uint32_t cap, aurora_start_state_resp *r, uint8_t **out, char *err, size_t errlen)
{
	char		dir[4200],
				path[4300];
	ss_entry   *v;
	int			nc,
				np,
				fd;
	struct stat st;
	uint64_t	want;
	uint8_t    *data;
	size_t		got = 0;
	int			pick = -1;

	memset(r, 0, sizeof(*r));
	*out = NULL;
	states_dir(ss, seg, dir, sizeof(dir));
	if (list_dir(dir, &v, &nc, &np) != 0)
	{
		aurora_seterr(err, errlen, "cannot list %.300s: %s", dir, strerror(errno));
		return AURORA_ERR_IO;
	}
	for (int i = 0; i < nc && pick < 0; i++)
		if (v[i].lsn <= g->max_lsn)
			pick = i;
	if (pick < 0)
	{
		free(v);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, v[pick].name);
	r->consistent_lsn = v[pick].lsn;
	free(v);
	if ((fd = open(path, O_RDONLY)) < 0 || fstat(fd, &st) != 0)
	{
		aurora_seterr(err, errlen, "cannot open %.300s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return AURORA_ERR_IO;
	}
	r->found = 1;
	r->total_len = (uint64_t) st.st_size;
	r->offset = g->offset;
	if (g->offset > r->total_len)
	{
		close(fd);
		aurora_seterr(err, errlen, "offset %" PRIu64 " is beyond the %" PRIu64 "-byte start state %016" PRIx64,
					  g->offset, r->total_len, r->consistent_lsn);
		return AURORA_ERR_MALFORMED;
	}
	want = r->total_len - g->offset;
	if (want > g->max_bytes)
		want = g->max_bytes;
	if (want > cap)
		want = cap;
	data = malloc(want > 0 ? (size_t) want : 1);
	if (data == NULL)
	{
		close(fd);
		aurora_seterr(err, errlen, "out of memory for %" PRIu64 " bytes", want);
		return AURORA_ERR_INTERNAL;
	}
	while (got < want)
	{
		ssize_t		n = pread(fd, data + got, (size_t) want - got, (off_t) (g->offset + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			aurora_seterr(err, errlen, "cannot read %.300s: %s", path,
						  n < 0 ? strerror(errno) : "unexpected end of file");
			free(data);
			close(fd);
			return AURORA_ERR_IO;
		}
		got += (size_t) n;
	}
	close(fd);
	r->len = (uint32_t) want;
	r->data = data;
	*out = data;
	return 0;
}

int
aurora_start_states_get(aurora_start_states *ss, aurora_segment *seg,
						const aurora_start_state_get *g, uint32_t cap,
						aurora_start_state_resp *r, uint8_t **data, char *err, size_t errlen)
{
	int			rc;

	pthread_mutex_lock(&ss->mu);
	rc = get_locked(ss, seg, g, cap, r, data, err, errlen);
	pthread_mutex_unlock(&ss->mu);
	return rc;
}

int
aurora_start_states_list(aurora_start_states *ss, aurora_segment *seg, uint64_t *lsns, int max)
{
	char		dir[4200];
	ss_entry   *v;
	int			nc,
				np,
				n = 0;

	pthread_mutex_lock(&ss->mu);
	states_dir(ss, seg, dir, sizeof(dir));
	if (list_dir(dir, &v, &nc, &np) == 0)
	{
		for (; n < nc && n < max; n++)
			lsns[n] = v[n].lsn;
		free(v);
	}
	pthread_mutex_unlock(&ss->mu);
	return n;
}

int
aurora_start_states_drop_above(aurora_start_states *ss, aurora_segment *seg, uint64_t lsn,
							   char *err, size_t errlen)
{
	char		dir[4200];
	ss_entry   *v;
	int			nc,
				np,
				dropped = 0,
				rc = 0;

	pthread_mutex_lock(&ss->mu);
	states_dir(ss, seg, dir, sizeof(dir));
	if (list_dir(dir, &v, &nc, &np) != 0)
	{
		aurora_seterr(err, errlen, "cannot list %.300s: %s", dir, strerror(errno));
		pthread_mutex_unlock(&ss->mu);
		return AURORA_ERR_IO;
	}
	for (int i = 0; i < nc + np && rc == 0; i++)
		if (v[i].lsn > lsn)
		{
			if (remove_entry(dir, &v[i], err, errlen) != 0)
				rc = AURORA_ERR_IO;
			else
				dropped++;
		}
	free(v);
	if (rc == 0 && dropped > 0)
	{
		if (aurora_fsync_path(dir, err, errlen) != 0)
			rc = AURORA_ERR_IO;
		else
			aurora_log("start states: dropped %d above %016" PRIx64 " in %s", dropped, lsn, dir);
	}
	pthread_mutex_unlock(&ss->mu);
	return rc;
}
