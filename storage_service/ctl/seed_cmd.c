/*
 * seed_cmd.c - aurora-ctl seed (pagecmd.h).
 *
 * seed bootstraps a volume's page store from a data directory: every page
 * of every relation file (base/, global/, pg_tblspc/) is sent as a base
 * image at the cluster's checkpoint LSN (SEED_PAGES) to the six segments
 * of its block's PG, placed and created exactly as the compute's shipper
 * does (aurora_place_pg over the cluster's nodes, CREATE_SEGMENT with
 * epoch 1, base LSN 0 and the volume geometry), so the compute's own
 * CREATE_SEGMENT later is an idempotent retry.  Each batch needs a write
 * quorum of acknowledgements.  The data directory must have been shut down
 * cleanly (pg_controldata says so), or its files could be older than the
 * LSN they are seeded at.  Last, it stores the volume's first start state
 * (start_state_cmd.h): the directory's non-relation files at the seed LSN,
 * on PG 0.
 */
#define _DEFAULT_SOURCE

#include "pagecmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "logtool.h"
#include "pagemsg.h"
#include "pgwriter.h"
#include "quorum.h"
#include "start_state_cmd.h"
#include "util.h"
#include "volume.h"
#include "wire.h"

#define SEED_BATCH_DEFAULT	32
#define RELSEG_BLOCKS		131072u	/* PostgreSQL's RELSEG_SIZE (1 GiB files) */
#define DEFAULT_SPC_OID		1663u
#define GLOBAL_SPC_OID		1664u

/* ---- seed ---- */

typedef struct seed_pg
{
	aurora_member members[AURORA_PG_COPIES];
	aurora_conn *conns[AURORA_PG_COPIES];
	/* a member that did not answer is not asked again (each would wait a timeout) */
	bool		gone[AURORA_PG_COPIES];
	char		gone_why[AURORA_PG_COPIES][300];
	bool		created;
	aurora_seed_page *pages;	/* batch being filled */
	uint8_t    *bytes;			/* their page bytes */
	int			n;
	uint64_t	seeded;
} seed_pg;

typedef struct seed_state
{
	const ctl_cluster *cluster;
	aurora_geometry geom;
	uint64_t	volume_id;
	uint64_t	lsn;
	int			batch;
	int			timeout_ms;
	seed_pg    *pgs;
	uint64_t	files;
	uint64_t	pages;
	char		err[1024];
} seed_state;

/* CREATE_SEGMENT on the PG's six members as the compute does it. */
static int
create_pg(seed_state *st, uint32_t pg)
{
	seed_pg    *p = &st->pgs[pg];
	aurora_pg_target t;
	aurora_pgwriter *w;
	int			created;

	memset(&t, 0, sizeof(t));
	t.volume_id = st->volume_id;
	t.pg_id = pg;
	t.volume_epoch = 1;
	t.membership_epoch = 1;
	t.base_lsn = 0;
	t.n_pgs = st->geom.n_pgs;
	t.blocks_per_segment = st->geom.blocks_per_segment;
	memcpy(t.members, p->members, sizeof(t.members));
	if (aurora_pgwriter_open(&t, AURORA_DEFAULT_WRITE_QUORUM, st->timeout_ms, &w, st->err, sizeof(st->err)) != 0)
		return -1;
	created = aurora_pgwriter_create_segments(w, st->err, sizeof(st->err));
	aurora_pgwriter_close(w);
	if (created < AURORA_DEFAULT_WRITE_QUORUM)
	{
		size_t		l = strlen(st->err);

		snprintf(st->err + l, sizeof(st->err) - l,
				 "%sonly %d segments of PG %u could be created; a write quorum needs %d",
				 l ? "; " : "", created, pg, AURORA_DEFAULT_WRITE_QUORUM);
		return -1;
	}
	p->created = true;
	return 0;
}

/* Send the PG's batch to its six segments; a write quorum must store it. */
static int
flush_pg(seed_state *st, uint32_t pg)
{
	seed_pg    *p = &st->pgs[pg];
	size_t		cap;
	uint8_t    *body;
	size_t		len;
	int			acks = 0;
	char		why[AURORA_PG_COPIES][300];

	if (p->n == 0)
		return 0;
	if (!p->created && create_pg(st, pg) != 0)
		return -1;
	cap = aurora_seed_pages_size(p->n);
	body = malloc(cap);
	if (body == NULL)
	{
		snprintf(st->err, sizeof(st->err), "out of memory");
		return -1;
	}
	len = aurora_seed_pages_encode(st->lsn, p->pages, p->n, body, cap);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		aurora_header h,
					rh;
		uint8_t    *reply = NULL;
		const uint8_t *rbody;
		uint32_t	stored;
		ctl_req_result r;

		why[i][0] = '\0';
		if (p->gone[i])
		{
			snprintf(why[i], sizeof(why[i]), "%.280s", p->gone_why[i]);
			continue;
		}
		if (p->conns[i] == NULL &&
			aurora_conn_open(p->members[i].url, &p->conns[i], why[i], sizeof(why[i])) != 0)
			continue;
		memset(&h, 0, sizeof(h));
		h.type = AURORA_MSG_SEED_PAGES;
		h.volume_id = st->volume_id;
		h.pg_id = pg;
		h.volume_epoch = 1;
		h.membership_epoch = 1;
		h.request_id = st->pages + (uint64_t) i;
		r = ctl_request(p->conns[i], st->timeout_ms, &h, body, len, AURORA_MSG_SEED_ACK, &rh,
						&reply, &rbody, why[i], sizeof(why[i]));
		if (r == CTL_REQ_OK && aurora_seed_ack_decode(rbody, rh.body_len, &stored) == 0 &&
			stored == (uint32_t) p->n)
			acks++;
		else if (r == CTL_REQ_NO_REPLY)
		{
			p->gone[i] = true;
			snprintf(p->gone_why[i], sizeof(p->gone_why[i]), "%.280s", why[i]);
		}
		else if (why[i][0] == '\0')
			snprintf(why[i], sizeof(why[i]), "bad SEED_ACK");
		free(reply);
	}
	free(body);
	if (acks < AURORA_DEFAULT_WRITE_QUORUM)
	{
		int			l = snprintf(st->err, sizeof(st->err),
								 "PG %u: only %d of 6 segments stored a batch of %d pages "
								 "(a write quorum needs %d):", pg, acks, p->n, AURORA_DEFAULT_WRITE_QUORUM);

		for (int i = 0; i < AURORA_PG_COPIES && l > 0 && (size_t) l < sizeof(st->err); i++)
			if (why[i][0] != '\0')
				l += snprintf(st->err + l, sizeof(st->err) - (size_t) l, " %s: %s;",
							  p->members[i].node_id, why[i]);
		return -1;
	}
	p->seeded += (uint64_t) p->n;
	p->n = 0;
	return 0;
}

static int
add_page_to(seed_state *st, uint32_t pg, const aurora_block_ref *b, const uint8_t *page)
{
	seed_pg    *p = &st->pgs[pg];

	if (p->pages == NULL)
	{
		p->pages = calloc((size_t) st->batch, sizeof(*p->pages));
		p->bytes = malloc((size_t) st->batch * AURORA_PAGE_BYTES);
		if (p->pages == NULL || p->bytes == NULL)
		{
			snprintf(st->err, sizeof(st->err), "out of memory");
			return -1;
		}
	}
	memcpy(p->bytes + (size_t) p->n * AURORA_PAGE_BYTES, page, AURORA_PAGE_BYTES);
	p->pages[p->n].block = *b;
	p->pages[p->n].page = p->bytes + (size_t) p->n * AURORA_PAGE_BYTES;
	p->n++;
	if (b->blkno != AURORA_SEED_FORK_EXISTS)
		st->pages++;
	if (p->n == st->batch)
		return flush_pg(st, pg);
	return 0;
}

static int
add_page(seed_state *st, const aurora_block_ref *b, const uint8_t *page)
{
	return add_page_to(st, aurora_block_pg(&st->geom, b), b, page);
}

/* An empty fork: storage must know it exists (every PG, like relation events). */
static int
add_empty_fork(seed_state *st, uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork)
{
	static const uint8_t zeros[AURORA_PAGE_BYTES];
	aurora_block_ref b = {spc, db, rel, fork, AURORA_SEED_FORK_EXISTS};

	for (uint32_t pg = 0; pg < st->geom.n_pgs; pg++)
		if (add_page_to(st, pg, &b, zeros) != 0)
			return -1;
	return 0;
}

/*
 * A relation file name: <relfilenode>[_fsm|_vm|_init][.<segno>].  Returns
 * false for anything else (PG_VERSION, pg_filenode.map, temp relations...).
 */
static bool
parse_rel_file(const char *name, uint32_t *rel, uint8_t *fork, uint32_t *segno)
{
	char	   *end;
	unsigned long v;

	if (name[0] < '1' || name[0] > '9')
		return false;
	errno = 0;
	v = strtoul(name, &end, 10);
	if (errno != 0 || v > UINT32_MAX)
		return false;
	*rel = (uint32_t) v;
	*fork = 0;
	if (strncmp(end, "_fsm", 4) == 0)
		*fork = 1, end += 4;
	else if (strncmp(end, "_vm", 3) == 0)
		*fork = 2, end += 3;
	else if (strncmp(end, "_init", 5) == 0)
		*fork = 3, end += 5;
	*segno = 0;
	if (*end == '.')
	{
		const char *s = end + 1;

		if (*s < '1' || *s > '9')
			return false;
		v = strtoul(s, &end, 10);
		if (v > 100000)
			return false;
		*segno = (uint32_t) v;
	}
	return *end == '\0';
}

static int
seed_file(seed_state *st, const char *path, uint32_t spc, uint32_t db, uint32_t rel,
		  uint8_t fork, uint32_t segno)
{
	int			fd = open(path, O_RDONLY);
	uint8_t		page[AURORA_PAGE_BYTES];
	uint32_t	blk = 0;
	ssize_t		n;

	if (fd < 0)
	{
		snprintf(st->err, sizeof(st->err), "cannot open %.900s: %s", path, strerror(errno));
		return -1;
	}
	st->files++;
	for (;;)
	{
		size_t		got = 0;
		aurora_block_ref b;

		while (got < sizeof(page) && (n = read(fd, page + got, sizeof(page) - got)) > 0)
			got += (size_t) n;
		if (got == 0)
			break;
		if (got != sizeof(page))
		{
			snprintf(st->err, sizeof(st->err), "%.900s: size is not a multiple of %d bytes", path,
					 AURORA_PAGE_BYTES);
			close(fd);
			return -1;
		}
		b.spc_oid = spc;
		b.db_oid = db;
		b.rel_number = rel;
		b.fork = fork;
		b.blkno = segno * RELSEG_BLOCKS + blk++;
		if (add_page(st, &b, page) != 0)
		{
			close(fd);
			return -1;
		}
	}
	close(fd);
	if (segno == 0 && blk == 0)
		return add_empty_fork(st, spc, db, rel, fork);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Every relation file of one database directory. */
static int
seed_db_dir(seed_state *st, const char *dir, uint32_t spc, uint32_t db)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	char	  **names = NULL;
	size_t		n = 0,
				cap = 0;
	int			rc = 0;

	if (d == NULL)
	{
		snprintf(st->err, sizeof(st->err), "cannot list %.900s: %s", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL)
	{
		uint32_t	rel,
					segno;
		uint8_t		fork;

		if (!parse_rel_file(e->d_name, &rel, &fork, &segno))
			continue;
		if (n == cap)
		{
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (names == NULL)
			{
				closedir(d);
				snprintf(st->err, sizeof(st->err), "out of memory");
				return -1;
			}
		}
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++)
	{
		char		path[4200];
		uint32_t	rel,
					segno;
		uint8_t		fork;

		if (rc == 0 && parse_rel_file(names[i], &rel, &fork, &segno))
		{
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			rc = seed_file(st, path, spc, db, rel, fork, segno);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/* Every <dboid> directory under dir (base/ or a tablespace's version dir). */
static int
seed_databases(seed_state *st, const char *dir, uint32_t spc)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	int			rc = 0;

	if (d == NULL)
	{
		snprintf(st->err, sizeof(st->err), "cannot list %.900s: %s", dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (e = readdir(d)) != NULL)
	{
		uint32_t	db;
		char		path[4200];

		if (ctl_parse_u32(e->d_name, &db) != 0 || db == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		rc = seed_db_dir(st, path, spc, db);
	}
	closedir(d);
	return rc;
}

/* pg_tblspc/<oid> -> <target>/PG_15_<catversion>/<dboid>/... */
static int
seed_tablespaces(seed_state *st, const char *datadir)
{
	char		dir[4200];
	DIR		   *d;
	struct dirent *e;
	int			rc = 0;

	snprintf(dir, sizeof(dir), "%s/pg_tblspc", datadir);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while (rc == 0 && (e = readdir(d)) != NULL)
	{
		uint32_t	spc;
		char		sdir[4600];
		DIR		   *vd;
		struct dirent *ve;

		if (ctl_parse_u32(e->d_name, &spc) != 0)
			continue;
		snprintf(sdir, sizeof(sdir), "%s/%s", dir, e->d_name);
		if ((vd = opendir(sdir)) == NULL)
			continue;
		while (rc == 0 && (ve = readdir(vd)) != NULL)
		{
			char		vdir[4900];

			if (strncmp(ve->d_name, "PG_15_", 6) != 0)
				continue;
			snprintf(vdir, sizeof(vdir), "%s/%s", sdir, ve->d_name);
			rc = seed_databases(st, vdir, spc);
		}
		closedir(vd);
	}
	closedir(d);
	return rc;
}

/*
 * The checkpoint LSN of a cleanly shut down data directory and its redo
 * point, from pg_controldata.  Returns 0, or -1 with err.
 */
static int
controldata_lsn(const char *bindir, const char *datadir, uint64_t *lsn, uint64_t *redo,
				char *err, size_t errlen)
{
	char		cmd[8600];
	char		line[512];
	FILE	   *f;
	bool		clean = false,
				have_lsn = false,
				have_redo = false;
	char		state[128] = "";

	if (strchr(bindir, '\'') != NULL || strchr(datadir, '\'') != NULL)
	{
		snprintf(err, errlen, "paths with a single quote are not supported");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "LC_ALL=C '%s/pg_controldata' '%s' 2>&1", bindir, datadir);
	if ((f = popen(cmd, "r")) == NULL)
	{
		snprintf(err, errlen, "cannot run pg_controldata: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char	   *v = strchr(line, ':');

		if (v == NULL)
			continue;
		*v++ = '\0';
		while (*v == ' ')
			v++;
		v[strcspn(v, "\n")] = '\0';
		if (strcmp(line, "Database cluster state") == 0)
		{
			snprintf(state, sizeof(state), "%s", v);
			clean = strcmp(v, "shut down") == 0;
		}
		else if (strcmp(line, "Latest checkpoint location") == 0)
			have_lsn = ctl_parse_lsn(v, lsn) == 0;
		else if (strcmp(line, "Latest checkpoint's REDO location") == 0)
			have_redo = ctl_parse_lsn(v, redo) == 0;
	}
	if (pclose(f) != 0 || !have_lsn || !have_redo)
	{
		snprintf(err, errlen, "pg_controldata %s failed or printed no checkpoint or redo location",
				 datadir);
		return -1;
	}
	if (!clean)
	{
		snprintf(err, errlen, "data directory %s was not shut down cleanly (state: %s); "
				 "start and stop it cleanly first", datadir, state[0] ? state : "unknown");
		return -1;
	}
	return 0;
}

/*
 * The volume's first start state: the data directory's non-relation files
 * at the seed LSN, on PG 0 (the segments the pages went to, epoch 1).  The
 * directory was shut down cleanly, so its checkpoint is the seed LSN and
 * its files are consistent there.
 */
static int
seed_start_state(const seed_state *st, const char *datadir, uint64_t redo)
{
	aurora_pg_target t;

	memset(&t, 0, sizeof(t));
	t.volume_id = st->volume_id;
	t.pg_id = 0;
	t.volume_epoch = 1;
	t.membership_epoch = 1;
	memcpy(t.members, st->pgs[0].members, sizeof(t.members));
	return ctl_start_state_store(&t, datadir, st->lsn, st->lsn, redo, 0, st->timeout_ms, "seed");
}

int
ctl_seed_command(const ctl_cluster *c, char **args, int n, int timeout_ms)
{
	const char *datadir = NULL;
	const char *bindir = NULL;
	seed_state	st;
	bool		have_lsn = false;
	uint64_t	redo = 0;
	aurora_member *all;
	char		dir[4200];
	int			rc = 0;

	memset(&st, 0, sizeof(st));
	st.cluster = c;
	st.geom.n_pgs = 4;			/* the compute's defaults (aurora.protection_groups, */
	st.geom.blocks_per_segment = 131072;	/* aurora.blocks_per_segment) */
	st.volume_id = AURORA_COMPUTE_VOLUME_ID;
	st.batch = SEED_BATCH_DEFAULT;
	st.timeout_ms = timeout_ms;
	for (int i = 0; i < n; i += 2)
	{
		const char *v = i + 1 < n ? args[i + 1] : NULL;
		uint32_t	u;
		bool		okv = v != NULL;

		if (okv && strcmp(args[i], "--datadir") == 0)
			datadir = v;
		else if (okv && strcmp(args[i], "--postgres-bin") == 0)
			bindir = v;
		else if (okv && strcmp(args[i], "--lsn") == 0)
			okv = have_lsn = ctl_parse_lsn(v, &st.lsn) == 0;
		else if (okv && strcmp(args[i], "--pgs") == 0)
			okv = ctl_parse_u32(v, &st.geom.n_pgs) == 0;
		else if (okv && strcmp(args[i], "--blocks-per-segment") == 0)
			okv = ctl_parse_u32(v, &st.geom.blocks_per_segment) == 0;
		else if (okv && strcmp(args[i], "--volume") == 0)
			okv = ctl_parse_lsn(v, &st.volume_id) == 0;
		else if (okv && strcmp(args[i], "--batch") == 0)
			okv = ctl_parse_u32(v, &u) == 0 && u >= 1 && u <= 1024 && (st.batch = (int) u) > 0;
		else
			okv = false;
		if (!okv)
		{
			fprintf(stderr, "aurora-ctl: seed: bad or incomplete option '%s'\n", args[i]);
			return 2;
		}
	}
	if (datadir == NULL || (bindir == NULL && !have_lsn))
	{
		fprintf(stderr, "aurora-ctl: seed needs --datadir D and --postgres-bin DIR (or --lsn LSN)\n");
		return 2;
	}
	if (!aurora_geometry_valid(&st.geom, st.err, sizeof(st.err)))
	{
		fprintf(stderr, "aurora-ctl: seed: %s\n", st.err);
		return 2;
	}
	if (bindir != NULL)
	{
		uint64_t	ckpt;

		if (controldata_lsn(bindir, datadir, &ckpt, &redo, st.err, sizeof(st.err)) != 0)
		{
			fprintf(stderr, "aurora-ctl: seed: %s\n", st.err);
			return 1;
		}
		if (!have_lsn)
			st.lsn = ckpt;
		else
			redo = st.lsn;
	}
	else
		redo = st.lsn;

	/* placement as the compute computes it */
	all = calloc((size_t) (c->n > 0 ? c->n : 1), sizeof(*all));
	st.pgs = calloc(st.geom.n_pgs, sizeof(*st.pgs));
	if (all == NULL || st.pgs == NULL)
	{
		free(all);
		free(st.pgs);
		fprintf(stderr, "aurora-ctl: out of memory\n");
		return 1;
	}
	for (int k = 0; k < c->n; k++)
		ctl_node_member(&c->nodes[k], &all[k]);
	for (uint32_t pg = 0; pg < st.geom.n_pgs && rc == 0; pg++)
		if (aurora_place_pg(all, c->n, pg, st.pgs[pg].members, st.err, sizeof(st.err)) != 0)
			rc = 2;
	free(all);

	if (rc == 0)
	{
		snprintf(dir, sizeof(dir), "%s/global", datadir);
		rc = seed_db_dir(&st, dir, GLOBAL_SPC_OID, 0);
	}
	if (rc == 0)
	{
		snprintf(dir, sizeof(dir), "%s/base", datadir);
		rc = seed_databases(&st, dir, DEFAULT_SPC_OID);
	}
	if (rc == 0)
		rc = seed_tablespaces(&st, datadir);
	for (uint32_t pg = 0; pg < st.geom.n_pgs && rc == 0; pg++)
		rc = flush_pg(&st, pg);
	/* PG 0 keeps the start states; its segments exist now unless it got no page */
	if (rc == 0 && !st.pgs[0].created)
		rc = create_pg(&st, 0);
	if (rc == 0)
	{
		printf("seeded %" PRIu64 " pages of %" PRIu64 " files at LSN %X/%X into volume %" PRIu64
			   " (%u PGs)\n", st.pages, st.files, (unsigned) (st.lsn >> 32), (unsigned) st.lsn,
			   st.volume_id, st.geom.n_pgs);
		for (uint32_t pg = 0; pg < st.geom.n_pgs; pg++)
			printf("  PG %u: %" PRIu64 " pages\n", pg, st.pgs[pg].seeded);
		fflush(stdout);
		rc = seed_start_state(&st, datadir, redo);
	}
	else
		fprintf(stderr, "aurora-ctl: seed: %s\n", st.err);
	for (uint32_t pg = 0; pg < st.geom.n_pgs; pg++)
	{
		for (int i = 0; i < AURORA_PG_COPIES; i++)
			if (st.pgs[pg].conns[i] != NULL)
				aurora_conn_close(st.pgs[pg].conns[i]);
		free(st.pgs[pg].pages);
		free(st.pgs[pg].bytes);
	}
	free(st.pgs);
	return rc == 0 ? 0 : rc == 2 ? 2 : 1;
}
