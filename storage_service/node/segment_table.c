/*
 * segment_table.c - the node's table of segments and their directories
 * (segment_table.h).
 *
 * Two mutexes: mu guards the table and is held only for lookups and
 * inserts, so the server's hot path (find, then work on the segment under
 * the segment's own mutex) never waits for a disk; create_mu serializes
 * creations, which fsync files and directories, so two requests creating the
 * same segment cannot race each other on disk.
 */
#define _DEFAULT_SOURCE

#include "segment_table.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "datadir.h"
#include "log.h"

#define SEGMENTS_DIR	"segments"
#define CREATING_PREFIX	".creating-"

typedef struct store_slot
{
	uint64_t	volume_id;
	uint32_t	pg_id;
	aurora_segment *seg;
} store_slot;

struct aurora_segment_table
{
	pthread_mutex_t mu;			/* slots, nslots, cap */
	pthread_mutex_t create_mu;	/* one creation at a time */
	char	   *seg_dir;		/* <data_dir>/segments */
	store_slot *slots;			/* sorted by (volume_id, pg_id) */
	size_t		nslots;
	size_t		cap;
	int			broken;			/* set at open, read-only afterwards */
};


static int
key_cmp(uint64_t va, uint32_t pa, uint64_t vb, uint32_t pb)
{
	if (va != vb)
		return va < vb ? -1 : 1;
	if (pa != pb)
		return pa < pb ? -1 : 1;
	return 0;
}

/* First slot whose key is >= (volume_id, pg_id); caller holds mu. */
static size_t
slot_lower_bound(aurora_segment_table *st, uint64_t volume_id, uint32_t pg_id)
{
	size_t		lo = 0,
				hi = st->nslots;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (key_cmp(st->slots[mid].volume_id, st->slots[mid].pg_id, volume_id, pg_id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static aurora_segment *
find_locked(aurora_segment_table *st, uint64_t volume_id, uint32_t pg_id)
{
	size_t		p = slot_lower_bound(st, volume_id, pg_id);

	if (p < st->nslots && st->slots[p].volume_id == volume_id && st->slots[p].pg_id == pg_id)
		return st->slots[p].seg;
	return NULL;
}

static int
insert_locked(aurora_segment_table *st, uint64_t volume_id, uint32_t pg_id, aurora_segment *seg)
{
	size_t		p;

	if (st->nslots == st->cap)
	{
		size_t		ncap = st->cap ? st->cap * 2 : 16;
		store_slot *n = realloc(st->slots, ncap * sizeof(*n));

		if (n == NULL)
			return -1;
		st->slots = n;
		st->cap = ncap;
	}
	p = slot_lower_bound(st, volume_id, pg_id);
	memmove(&st->slots[p + 1], &st->slots[p], (st->nslots - p) * sizeof(*st->slots));
	st->slots[p].volume_id = volume_id;
	st->slots[p].pg_id = pg_id;
	st->slots[p].seg = seg;
	st->nslots++;
	return 0;
}

/* Parse a canonical segment directory name; false for anything else. */
static bool
parse_dir_name(const char *name, uint64_t *volume_id, uint32_t *pg_id)
{
	char		canon[64];
	uint64_t	v = 0,
				p = 0;
	const char *c;

	for (int i = 0; i < 16; i++)
	{
		char		h = name[i];

		if (h >= '0' && h <= '9')
			v = (v << 4) | (uint64_t) (h - '0');
		else if (h >= 'a' && h <= 'f')
			v = (v << 4) | (uint64_t) (h - 'a' + 10);
		else
			return false;
	}
	if (name[16] != '-' || name[17] == '\0')
		return false;
	for (c = name + 17; *c != '\0'; c++)
	{
		if (*c < '0' || *c > '9' || c - (name + 17) >= 10)
			return false;
		p = p * 10 + (uint64_t) (*c - '0');
	}
	if (p > UINT32_MAX)
		return false;
	/* Reject leading zeros and the like: exactly one name per segment. */
	aurora_segment_dir_name(v, (uint32_t) p, canon, sizeof(canon));
	if (strcmp(canon, name) != 0)
		return false;
	*volume_id = v;
	*pg_id = (uint32_t) p;
	return true;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Open one segment directory found at start-up; false if it is broken. */
static bool
open_found(aurora_segment_table *st, const char *name, uint64_t volume_id, uint32_t pg_id)
{
	char		path[4200];
	char		err[512];
	aurora_segment *seg;
	aurora_segment_meta m;

	snprintf(path, sizeof(path), "%s/%s", st->seg_dir, name);
	if (aurora_segment_open(path, &seg, err, sizeof(err)) != AURORA_SEG_OK)
	{
		aurora_log("skipping segment %s: %s", name, err);
		return false;
	}
	aurora_segment_get_meta(seg, &m);
	if (m.volume_id != volume_id || m.pg_id != pg_id)
	{
		aurora_log("skipping segment %s: its meta names volume %016" PRIx64 " pg %" PRIu32
				   " (the directory was renamed or copied?)", name, m.volume_id, m.pg_id);
		aurora_segment_close(seg);
		return false;
	}
	if (insert_locked(st, volume_id, pg_id, seg) != 0)
	{
		aurora_log("skipping segment %s: out of memory", name);
		aurora_segment_close(seg);
		return false;
	}
	return true;
}

int
aurora_segment_table_open(const char *data_dir, aurora_segment_table **out, char *err, size_t errlen)
{
	aurora_segment_table *st;
	size_t		plen = strlen(data_dir) + sizeof("/" SEGMENTS_DIR);
	DIR		   *d;
	struct dirent *de;
	char	  **names = NULL;
	size_t		nnames = 0,
				ncap = 0;
	int			rc = AURORA_SEG_OK;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (st == NULL || (st->seg_dir = malloc(plen)) == NULL)
	{
		free(st);
		aurora_seterr(err, errlen, "out of memory");
		return AURORA_SEG_ERR_IO;
	}
	snprintf(st->seg_dir, plen, "%s/" SEGMENTS_DIR, data_dir);
	pthread_mutex_init(&st->mu, NULL);
	pthread_mutex_init(&st->create_mu, NULL);

	/* The segments directory's own entry must survive a crash too. */
	if (aurora_mkdirs(st->seg_dir, 0700, err, errlen) != 0 ||
		aurora_fsync_path(data_dir, err, errlen) != 0)
	{
		aurora_segment_table_close(st);
		return AURORA_SEG_ERR_IO;
	}

	d = opendir(st->seg_dir);
	if (d == NULL)
	{
		aurora_seterr(err, errlen, "cannot list %s: %s", st->seg_dir, strerror(errno));
		aurora_segment_table_close(st);
		return AURORA_SEG_ERR_IO;
	}
	/* Collect then sort, so start-up opens and logs in a stable order. */
	while ((errno = 0, de = readdir(d)) != NULL)
	{
		char	   *copy;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (nnames == ncap)
		{
			size_t		nc = ncap ? ncap * 2 : 64;
			char	  **nn = realloc(names, nc * sizeof(*nn));

			if (nn == NULL)
				break;
			names = nn;
			ncap = nc;
		}
		copy = strdup(de->d_name);
		if (copy == NULL)
			break;
		names[nnames++] = copy;
	}
	if (errno != 0)
	{
		aurora_seterr(err, errlen, "cannot list %s: %s", st->seg_dir, strerror(errno));
		rc = AURORA_SEG_ERR_IO;
	}
	closedir(d);
	if (rc == AURORA_SEG_OK && nnames > 0)
		qsort(names, nnames, sizeof(*names), cmp_names);

	for (size_t i = 0; i < nnames && rc == AURORA_SEG_OK; i++)
	{
		uint64_t	volume_id;
		uint32_t	pg_id;

		if (parse_dir_name(names[i], &volume_id, &pg_id))
		{
			if (!open_found(st, names[i], volume_id, pg_id))
				st->broken++;
		}
		else if (strncmp(names[i], CREATING_PREFIX, strlen(CREATING_PREFIX)) == 0)
			aurora_log("ignoring %s/%s: a segment creation that never completed "
					   "(cleared when that segment is created again)", st->seg_dir, names[i]);
		else
			aurora_log("ignoring %s/%s: not a segment directory name", st->seg_dir, names[i]);
	}
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	if (rc != AURORA_SEG_OK)
	{
		aurora_segment_table_close(st);
		return rc;
	}
	if (st->nslots > 0 || st->broken > 0)
		aurora_log("opened %zu segments from %s (%d skipped as broken)",
				   st->nslots, st->seg_dir, st->broken);
	*out = st;
	return AURORA_SEG_OK;
}

void
aurora_segment_table_close(aurora_segment_table *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nslots; i++)
		aurora_segment_close(st->slots[i].seg);
	free(st->slots);
	free(st->seg_dir);
	pthread_mutex_destroy(&st->mu);
	pthread_mutex_destroy(&st->create_mu);
	free(st);
}

int
aurora_segment_table_validate_meta(const aurora_segment_meta *m, const char *self_node_id,
						   char *err, size_t errlen)
{
	const aurora_member *mb = m->members;
	char		why[200];

	if (self_node_id == NULL || !aurora_segment_name_ok(self_node_id, (AURORA_NODE_ID_MAX + 1)))
	{
		aurora_seterr(err, errlen, "invalid node id of this node");
		return AURORA_SEG_ERR_INVALID;
	}
	if (m->replica_index >= AURORA_PG_COPIES)
	{
		aurora_seterr(err, errlen, "replica_index %" PRIu32 " out of range 0..%d",
			   m->replica_index, AURORA_PG_COPIES - 1);
		return AURORA_SEG_ERR_INVALID;
	}
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		if (!aurora_segment_name_ok(mb[i].node_id, sizeof(mb[i].node_id)))
		{
			aurora_seterr(err, errlen, "member %d: invalid node_id: use 1-%zu characters from [A-Za-z0-9_-]",
				   i, sizeof(mb[i].node_id) - 1);
			return AURORA_SEG_ERR_INVALID;
		}
		if (!aurora_segment_name_ok(mb[i].az, sizeof(mb[i].az)))
		{
			aurora_seterr(err, errlen, "member %d (%s): invalid az: use 1-%zu characters from [A-Za-z0-9_-]",
				   i, mb[i].node_id, sizeof(mb[i].az) - 1);
			return AURORA_SEG_ERR_INVALID;
		}
		if (strnlen(mb[i].url, sizeof(mb[i].url)) >= sizeof(mb[i].url) ||
			aurora_validate_url(mb[i].url, why, sizeof(why)) != 0)
		{
			aurora_seterr(err, errlen, "member %d (%s): invalid url: %s", i, mb[i].node_id,
				   strnlen(mb[i].url, sizeof(mb[i].url)) >= sizeof(mb[i].url) ?
				   "not NUL-terminated" : why);
			return AURORA_SEG_ERR_INVALID;
		}
	}
	if (strcmp(mb[m->replica_index].node_id, self_node_id) != 0)
	{
		aurora_seterr(err, errlen, "member %" PRIu32 " (replica_index) is node %s, not this node %s",
			   m->replica_index, mb[m->replica_index].node_id, self_node_id);
		return AURORA_SEG_ERR_CONFLICT;
	}
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		for (int j = i + 1; j < AURORA_PG_COPIES; j++)
			if (strcmp(mb[i].node_id, mb[j].node_id) == 0)
			{
				if (strcmp(mb[i].node_id, self_node_id) == 0)
					aurora_seterr(err, errlen, "a node may not hold two replicas of one PG: "
						   "this node (%s) is members %d and %d", self_node_id, i, j);
				else
					aurora_seterr(err, errlen, "a node may not hold two replicas of one PG: "
						   "node %s is members %d and %d", mb[i].node_id, i, j);
				return AURORA_SEG_ERR_CONFLICT;
			}
	/* Two copies in each of three AZs: losing an AZ leaves 4/6 (write quorum). */
	{
		int			n_az = 0;

		for (int i = 0; i < AURORA_PG_COPIES; i++)
		{
			int			same = 0,
						first = i;

			for (int j = 0; j < AURORA_PG_COPIES; j++)
				if (strcmp(mb[i].az, mb[j].az) == 0)
				{
					same++;
					if (j < first)
						first = j;
				}
			if (same != AURORA_PG_COPIES / AURORA_PG_AZS)
			{
				aurora_seterr(err, errlen, "members must be spread %d per AZ across %d AZs, "
					   "but AZ %s has %d", AURORA_PG_COPIES / AURORA_PG_AZS, AURORA_PG_AZS,
					   mb[i].az, same);
				return AURORA_SEG_ERR_CONFLICT;
			}
			if (first == i)
				n_az++;
		}
		/* Implied by the per-AZ count; kept so a change of constants stays safe. */
		if (n_az != AURORA_PG_AZS)
		{
			aurora_seterr(err, errlen, "members span %d AZs, %d needed", n_az, AURORA_PG_AZS);
			return AURORA_SEG_ERR_CONFLICT;
		}
	}
	return AURORA_SEG_OK;
}

static bool
same_membership(const aurora_segment_meta *a, const aurora_segment_meta *b)
{
	if (a->replica_index != b->replica_index)
		return false;
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		if (strcmp(a->members[i].node_id, b->members[i].node_id) != 0 ||
			strcmp(a->members[i].az, b->members[i].az) != 0 ||
			strcmp(a->members[i].url, b->members[i].url) != 0)
			return false;
	return true;
}

/*
 * Remove a leftover .creating-* directory of an earlier, interrupted
 * creation.  Only the files a creation writes are removed; anything else
 * in it makes rmdir fail and the creation is refused.
 */
static int
clear_creating(const char *tmp, char *err, size_t errlen)
{
	static const char *const files[] = {"log", "meta", "meta.tmp"};
	char		path[4300];
	struct stat sb;

	if (lstat(tmp, &sb) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
	{
		snprintf(path, sizeof(path), "%s/%s", tmp, files[i]);
		if (unlink(path) != 0 && errno != ENOENT)
		{
			aurora_seterr(err, errlen, "cannot remove %s: %s", path, strerror(errno));
			return -1;
		}
	}
	if (rmdir(tmp) != 0)
	{
		aurora_seterr(err, errlen, "cannot remove leftover %s: %s", tmp, strerror(errno));
		return -1;
	}
	aurora_log("removed %s, left by an interrupted segment creation", tmp);
	return 0;
}

int
aurora_segment_table_create_segment(aurora_segment_table *st, const aurora_segment_meta *meta,
							const char *self_node_id, aurora_segment **out,
							char *err, size_t errlen)
{
	char		name[64];
	char		final[4200],
				tmp[4200];
	aurora_segment *seg;
	struct stat sb;
	int			rc;

	if (out != NULL)
		*out = NULL;
	rc = aurora_segment_table_validate_meta(meta, self_node_id, err, errlen);
	if (rc != AURORA_SEG_OK)
		return rc;
	aurora_segment_dir_name(meta->volume_id, meta->pg_id, name, sizeof(name));

	pthread_mutex_lock(&st->create_mu);
	seg = aurora_segment_table_find(st, meta->volume_id, meta->pg_id);
	if (seg != NULL)
	{
		aurora_segment_meta cur;

		aurora_segment_get_meta(seg, &cur);
		if (cur.n_pgs != meta->n_pgs || cur.blocks_per_segment != meta->blocks_per_segment)
		{
			aurora_seterr(err, errlen,
						  "segment %s belongs to a volume of %" PRIu32 " protection groups of %" PRIu32
						  "-block chunks; this request declares %" PRIu32 " of %" PRIu32
						  " (a volume's geometry never changes)",
						  name, cur.n_pgs, cur.blocks_per_segment, meta->n_pgs,
						  meta->blocks_per_segment);
			rc = AURORA_SEG_ERR_CONFLICT;
		}
		else if (!same_membership(&cur, meta))
		{
			aurora_seterr(err, errlen, "segment %s already exists on this node with a different %s",
				   name, cur.replica_index != meta->replica_index ?
				   "replica index" : "membership");
			rc = AURORA_SEG_ERR_CONFLICT;
		}
		else
			rc = aurora_segment_set_epochs(seg, meta->volume_epoch, meta->membership_epoch,
										   err, errlen);
		goto done;
	}

	snprintf(final, sizeof(final), "%s/%s", st->seg_dir, name);
	snprintf(tmp, sizeof(tmp), "%s/" CREATING_PREFIX "%s", st->seg_dir, name);
	if (lstat(final, &sb) == 0)
	{
		aurora_seterr(err, errlen, "segment directory %s exists but did not open at start-up "
			   "(see the node log); repair or move it by hand", final);
		rc = AURORA_SEG_ERR_CONFLICT;
		goto done;
	}
	rc = AURORA_SEG_ERR_IO;
	if (clear_creating(tmp, err, errlen) != 0)
		goto done;
	if (mkdir(tmp, 0700) != 0)
	{
		aurora_seterr(err, errlen, "cannot create directory %s: %s", tmp, strerror(errno));
		goto done;
	}
	rc = aurora_segment_format(tmp, meta, err, errlen);
	if (rc != AURORA_SEG_OK)
		goto done;
	rc = AURORA_SEG_ERR_IO;
	/* The rename is the commit point; the fsync of the parent makes it durable. */
	if (rename(tmp, final) != 0)
	{
		aurora_seterr(err, errlen, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
		goto done;
	}
	if (aurora_fsync_path(st->seg_dir, err, errlen) != 0)
		goto done;
	rc = aurora_segment_open(final, &seg, err, errlen);
	if (rc != AURORA_SEG_OK)
		goto done;
	pthread_mutex_lock(&st->mu);
	if (insert_locked(st, meta->volume_id, meta->pg_id, seg) != 0)
	{
		pthread_mutex_unlock(&st->mu);
		aurora_segment_close(seg);
		seg = NULL;
		aurora_seterr(err, errlen, "out of memory adding segment %s", name);
		rc = AURORA_SEG_ERR_IO;
		goto done;
	}
	pthread_mutex_unlock(&st->mu);
	aurora_log("created segment %s (replica %" PRIu32 " of volume %016" PRIx64 " pg %" PRIu32
			   ", base_lsn %" PRIu64 ")", name, meta->replica_index, meta->volume_id,
			   meta->pg_id, meta->base_lsn);

done:
	pthread_mutex_unlock(&st->create_mu);
	if (rc == AURORA_SEG_OK && out != NULL)
		*out = seg;
	return rc;
}

aurora_segment *
aurora_segment_table_find(aurora_segment_table *st, uint64_t volume_id, uint32_t pg_id)
{
	aurora_segment *seg;

	pthread_mutex_lock(&st->mu);
	seg = find_locked(st, volume_id, pg_id);
	pthread_mutex_unlock(&st->mu);
	return seg;
}

void
aurora_segment_table_segment_path(aurora_segment_table *st, uint64_t volume_id, uint32_t pg_id,
						  char *buf, size_t len)
{
	char		name[64];

	aurora_segment_dir_name(volume_id, pg_id, name, sizeof(name));
	snprintf(buf, len, "%s/%s", st->seg_dir, name);
}

int
aurora_segment_table_count(aurora_segment_table *st)
{
	int			n;

	pthread_mutex_lock(&st->mu);
	n = (int) st->nslots;
	pthread_mutex_unlock(&st->mu);
	return n;
}

int
aurora_segment_table_broken_count(aurora_segment_table *st)
{
	return st->broken;
}

/* Copy of the segment pointers, so callbacks run without the table lock. */
static aurora_segment **
snapshot(aurora_segment_table *st, size_t *n)
{
	aurora_segment **v;

	pthread_mutex_lock(&st->mu);
	*n = st->nslots;
	v = malloc((st->nslots ? st->nslots : 1) * sizeof(*v));
	if (v != NULL)
		for (size_t i = 0; i < st->nslots; i++)
			v[i] = st->slots[i].seg;
	pthread_mutex_unlock(&st->mu);
	return v;
}

int
aurora_segment_table_foreach(aurora_segment_table *st, int (*fn) (void *arg, aurora_segment *s), void *arg)
{
	size_t		n;
	aurora_segment **v = snapshot(st, &n);
	int			rc = 0;

	if (v == NULL)
		return AURORA_SEG_ERR_IO;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(arg, v[i]);
	free(v);
	return rc;
}

int
aurora_segment_table_sync_all(aurora_segment_table *st, char *err, size_t errlen)
{
	size_t		n;
	aurora_segment **v = snapshot(st, &n);
	int			first = AURORA_SEG_OK;

	if (v == NULL)
	{
		aurora_seterr(err, errlen, "out of memory");
		return AURORA_SEG_ERR_IO;
	}
	for (size_t i = 0; i < n; i++)
	{
		char		e[512];
		int			rc;

		if (!aurora_segment_needs_sync(v[i]))
			continue;
		rc = aurora_segment_sync(v[i], e, sizeof(e));
		if (rc != AURORA_SEG_OK && first == AURORA_SEG_OK)
		{
			first = rc;
			aurora_seterr(err, errlen, "%s", e);
		}
	}
	free(v);
	return first;
}
