/*
 * redo_cmd.c - `aurora-ctl redo` (redo_cmd.h).
 *
 *   redo --postgres PATH --node URL (--pg N | --pgs N --blocks-per-segment B)
 *        --block SPC/DB/REL/FORK/BLKNO --lsn LSN [--mask | --mask-rmgr ID]
 *        [--skip LSN] [--list] [--volume ID] [--epoch E] -o FILE
 *   redo --postgres PATH --mask-rmgr ID --block ... -i FILE -o FILE
 *
 * The first form reads the PG's log from one node (READ_LOG), keeps the
 * records whose envelope (walmeta.h) lists the block and that end at or
 * before LSN, starts from the newest one that initializes the page
 * (WILL_INIT: a full-page image or a page init) and has the rest applied by
 * a WAL-redo helper; the page is written to FILE.  Without such a record the
 * page cannot be built from the log alone, and a truncation or drop of the
 * block after it means the page does not exist at LSN: both are errors.
 * --mask applies the masking of the resource manager of the newest record
 * that is not an XLOG one (full-page images); --mask-rmgr names it.  The
 * second form masks the pages of a file, one or more back to back (the
 * compute's copies, or what getpage --batch wrote).
 * --skip leaves one record out (to see how a broken chain is reported);
 * --list prints the records applied, one "record START END rmgr ID [init]"
 * line each.
 *
 * Prints one line: "redo: records N init_lsn X/X page_lsn X/X mask_rmgr R".
 */
#define _POSIX_C_SOURCE 200809L

#include "redo_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "logmsg.h"
#include "logtool.h"
#include "redo.h"
#include "volume.h"
#include "walmeta.h"
#include "wire.h"

#define REDO_DEFAULT_TIMEOUT_MS	30000
#define WAL_RM_XLOG_ID			0
#define NO_RMGR					-1

typedef struct redo_opts
{
	const char *postgres;
	const char *node;
	const char *out;
	const char *in;
	bool		have_pg;
	uint32_t	pg;
	aurora_geometry geometry;
	bool		have_block;
	aurora_block_ref block;
	bool		have_lsn;
	uint64_t	lsn;
	bool		mask;
	bool		list;
	int			mask_rmgr;		/* NO_RMGR: from the records */
	bool		have_skip;
	uint64_t	skip_lsn;
	uint64_t	volume_id;
	uint64_t	epoch;
} redo_opts;

/* A record of the block's chain, copied out of the READ_LOG reply. */
typedef struct chain_rec
{
	uint64_t	start_lsn;
	uint64_t	end_lsn;
	bool		will_init;
	uint8_t		rmid;
	uint8_t    *wal;
	uint32_t	wal_len;
} chain_rec;

typedef struct chain
{
	chain_rec  *recs;
	int			n;
	int			cap;
	/* the last event that removed the block, and where (0: none) */
	uint64_t	gone_lsn;
	const char *gone_why;
} chain;

static void
usage_error(const char *msg)
{
	fprintf(stderr, "aurora-ctl: redo: %s\n"
			"usage: aurora-ctl redo --postgres PATH --node URL (--pg N | --pgs N --blocks-per-segment B)\n"
			"                       --block SPC/DB/REL/FORK/BLKNO --lsn LSN [--mask | --mask-rmgr ID]\n"
			"                       [--skip LSN] [--list] [--volume ID] [--epoch E] -o FILE\n"
			"       aurora-ctl redo --postgres PATH --mask-rmgr ID --block SPC/DB/REL/FORK/BLKNO -i FILE -o FILE\n",
			msg);
}

static int
parse_num(const char *s, uint64_t max, uint64_t *out)
{
	char	   *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* An LSN as PostgreSQL prints it (16/B374D848) or as a plain number. */
static int
parse_lsn(const char *s, uint64_t *out)
{
	const char *slash = s ? strchr(s, '/') : NULL;

	if (slash != NULL)
	{
		char		hi[20];
		char	   *end;
		unsigned long long h,
					l;

		if (slash == s || (size_t) (slash - s) >= sizeof(hi))
			return -1;
		memcpy(hi, s, (size_t) (slash - s));
		hi[slash - s] = '\0';
		errno = 0;
		h = strtoull(hi, &end, 16);
		if (errno != 0 || *end != '\0' || h > UINT32_MAX)
			return -1;
		l = strtoull(slash + 1, &end, 16);
		if (errno != 0 || *end != '\0' || slash[1] == '\0' || l > UINT32_MAX)
			return -1;
		*out = ((uint64_t) h << 32) | l;
		return 0;
	}
	return parse_num(s, UINT64_MAX, out);
}

static int
parse_fork(const char *s, uint8_t *fork)
{
	static const char *const names[] = {"main", "fsm", "vm", "init"};
	uint64_t	v;

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
		{
			*fork = (uint8_t) i;
			return 0;
		}
	if (parse_num(s, 3, &v) != 0)
		return -1;
	*fork = (uint8_t) v;
	return 0;
}

/* SPC/DB/REL/FORK/BLKNO */
static int
parse_block(const char *s, aurora_block_ref *b)
{
	char		buf[128];
	char	   *part[5];
	char	   *save = NULL;
	uint64_t	v[5];
	int			n = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *p = strtok_r(buf, "/", &save); p != NULL; p = strtok_r(NULL, "/", &save))
	{
		if (n == 5)
			return -1;
		part[n++] = p;
	}
	if (n != 5)
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 3 && parse_num(part[i], UINT32_MAX, &v[i]) != 0)
			return -1;
	if (parse_fork(part[3], &b->fork) != 0 || v[4] == UINT32_MAX)
		return -1;
	b->spc_oid = (uint32_t) v[0];
	b->db_oid = (uint32_t) v[1];
	b->rel_number = (uint32_t) v[2];
	b->blkno = (uint32_t) v[4];
	return 0;
}

static int
parse_options(char **args, int n, redo_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mask_rmgr = NO_RMGR;
	o->volume_id = AURORA_COMPUTE_VOLUME_ID;
	o->epoch = 1;
	for (int i = 0; i < n; i++)
	{
		const char *name = args[i];
		const char *val = i + 1 < n ? args[i + 1] : NULL;
		uint64_t	v;
		char		msg[300];

		if (strcmp(name, "--mask") == 0)
		{
			o->mask = true;
			continue;
		}
		if (strcmp(name, "--list") == 0)
		{
			o->list = true;
			continue;
		}
		if (val == NULL)
		{
			snprintf(msg, sizeof(msg), "option %s needs a value", name);
			usage_error(msg);
			return 2;
		}
		i++;
		if (strcmp(name, "--postgres") == 0)
			o->postgres = val;
		else if (strcmp(name, "--node") == 0)
			o->node = val;
		else if (strcmp(name, "-o") == 0)
			o->out = val;
		else if (strcmp(name, "-i") == 0)
			o->in = val;
		else if (strcmp(name, "--pg") == 0 && parse_num(val, UINT32_MAX, &v) == 0)
		{
			o->pg = (uint32_t) v;
			o->have_pg = true;
		}
		else if (strcmp(name, "--pgs") == 0 && parse_num(val, AURORA_VOLUME_MAX_PGS, &v) == 0 && v >= 1)
			o->geometry.n_pgs = (uint32_t) v;
		else if (strcmp(name, "--blocks-per-segment") == 0 &&
				 parse_num(val, AURORA_VOLUME_MAX_BLOCKS_PER_SEGMENT, &v) == 0 && v >= 1)
			o->geometry.blocks_per_segment = (uint32_t) v;
		else if (strcmp(name, "--block") == 0 && parse_block(val, &o->block) == 0)
			o->have_block = true;
		else if (strcmp(name, "--lsn") == 0 && parse_lsn(val, &o->lsn) == 0)
			o->have_lsn = true;
		else if (strcmp(name, "--skip") == 0 && parse_lsn(val, &o->skip_lsn) == 0)
			o->have_skip = true;
		else if (strcmp(name, "--mask-rmgr") == 0 && parse_num(val, 255, &v) == 0)
		{
			o->mask = true;
			o->mask_rmgr = (int) v;
		}
		else if (strcmp(name, "--volume") == 0 && parse_num(val, UINT64_MAX, &v) == 0)
			o->volume_id = v;
		else if (strcmp(name, "--epoch") == 0 && parse_num(val, UINT64_MAX, &v) == 0 && v >= 1)
			o->epoch = v;
		else
		{
			snprintf(msg, sizeof(msg), "unknown option or bad value: %s %s", name, val);
			usage_error(msg);
			return 2;
		}
	}
	if (o->postgres == NULL || o->out == NULL || !o->have_block)
	{
		usage_error("--postgres, --block and -o are required");
		return 2;
	}
	if (o->in != NULL)
	{
		if (o->mask_rmgr == NO_RMGR || o->node != NULL)
		{
			usage_error("-i masks a page from a file: give --mask-rmgr ID and no --node");
			return 2;
		}
		return 0;
	}
	if (o->node == NULL || !o->have_lsn)
	{
		usage_error("--node and --lsn are required to rebuild a page");
		return 2;
	}
	if (!o->have_pg)
	{
		char		err[200];

		if (o->geometry.n_pgs == 0 || o->geometry.blocks_per_segment == 0)
		{
			usage_error("give --pg N, or the volume's geometry with --pgs N --blocks-per-segment B");
			return 2;
		}
		if (!aurora_geometry_valid(&o->geometry, err, sizeof(err)))
		{
			usage_error(err);
			return 2;
		}
		o->pg = aurora_block_pg(&o->geometry, &o->block);
	}
	return 0;
}

static bool
same_block(const aurora_block_ref *a, const aurora_block_ref *b)
{
	return a->spc_oid == b->spc_oid && a->db_oid == b->db_oid &&
		a->rel_number == b->rel_number && a->fork == b->fork && a->blkno == b->blkno;
}

static void
format_lsn(char *buf, size_t len, uint64_t lsn)
{
	snprintf(buf, len, "%X/%X", (unsigned) (lsn >> 32), (unsigned) lsn);
}

static int
chain_add(chain *c, const aurora_log_record *r, const aurora_walmeta *m, bool will_init)
{
	chain_rec  *cr;

	if (c->n == c->cap)
	{
		int			cap = c->cap ? c->cap * 2 : 64;
		chain_rec  *p = realloc(c->recs, (size_t) cap * sizeof(*p));

		if (p == NULL)
			return -1;
		c->recs = p;
		c->cap = cap;
	}
	cr = &c->recs[c->n];
	cr->wal = malloc(m->wal_len);
	if (cr->wal == NULL)
		return -1;
	memcpy(cr->wal, m->wal, m->wal_len);
	cr->wal_len = m->wal_len;
	cr->start_lsn = r->start_lsn;
	cr->end_lsn = r->end_lsn;
	cr->will_init = will_init;
	cr->rmid = m->wal[17];		/* XLogRecord.xl_rmid */
	c->n++;
	return 0;
}

static void
chain_free(chain *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->recs[i].wal);
	free(c->recs);
}

/*
 * What one record does to the block: change it (appended to the chain), or
 * make it not exist (truncation below it, drop of its relation or database).
 */
static int
scan_record(const redo_opts *o, const aurora_log_record *r, chain *c, char *err, size_t errlen)
{
	aurora_walmeta m;
	char		why[200];
	bool		changes = false;
	bool		will_init = false;

	if (aurora_walmeta_decode(r->payload, r->len, &m, why, sizeof(why)) != 0)
	{
		char		l[32];

		format_lsn(l, sizeof(l), r->start_lsn);
		snprintf(err, errlen, "record at %s has no valid envelope (%s): is this a compute's log?",
				 l, why);
		return -1;
	}
	for (int i = 0; i < m.n_blocks; i++)
	{
		aurora_walmeta_block b;

		aurora_walmeta_block_at(&m, i, &b);
		if (same_block(&b.ref, &o->block))
		{
			changes = true;
			if (b.flags & AURORA_BLOCK_WILL_INIT)
				will_init = true;
		}
	}
	for (int i = 0; i < m.n_events; i++)
	{
		aurora_walmeta_event e;
		bool		same_rel;

		aurora_walmeta_event_at(&m, i, &e);
		same_rel = e.spc_oid == o->block.spc_oid && e.db_oid == o->block.db_oid;
		if (e.op == AURORA_REL_DROP_DATABASE && same_rel)
			c->gone_why = "its database was dropped";
		else if (e.op == AURORA_REL_DROP && same_rel && e.rel_number == o->block.rel_number)
			c->gone_why = "its relation was dropped";
		else if (e.op == AURORA_REL_TRUNCATE && same_rel && e.rel_number == o->block.rel_number &&
				 e.fork == o->block.fork && e.nblocks <= o->block.blkno)
			c->gone_why = "its fork was truncated below it";
		else
			continue;
		c->gone_lsn = r->start_lsn;
	}
	if (changes && !(o->have_skip && r->start_lsn == o->skip_lsn))
	{
		if (chain_add(c, r, &m, will_init) != 0)
		{
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

typedef struct chain_scan
{
	const redo_opts *o;
	chain	   *c;
} chain_scan;

/* ctl_read_log_each's emit: records that end by o->lsn go into the chain. */
static int
scan_emit(void *arg, const aurora_log_record *r)
{
	chain_scan *cs = arg;
	char		err[512];

	if (r->end_lsn > cs->o->lsn)
		return 1;
	if (scan_record(cs->o, r, cs->c, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: redo: %s\n", err);
		return -1;
	}
	return 0;
}

/* Read the PG's log up to o->lsn from the node and collect the block's chain. */
static int
read_chain(const redo_opts *o, int timeout_ms, chain *c)
{
	chain_scan	cs = {o, c};
	uint64_t	scl;

	/* records starting before LSN; their ends are checked in scan_emit */
	if (ctl_read_log_each(o->node, o->volume_id, o->pg, o->epoch, 0, o->lsn, timeout_ms,
						  "redo: ", scan_emit, &cs, &scl) != 0)
		return 1;
	if (scl < o->lsn)
	{
		char		a[32],
					b[32];

		format_lsn(a, sizeof(a), scl);
		format_lsn(b, sizeof(b), o->lsn);
		/*
		 * Not an error: SCL only moves with the PG's own records, so a quiet
		 * PG's SCL stays below later LSNs of the volume.  But records the
		 * node has not received yet are missing from the page.
		 */
		fprintf(stderr, "aurora-ctl: redo: note: %s holds PG %u's log complete up to %s (SCL), "
				"below %s: records of the PG after its SCL are not applied\n",
				o->node, o->pg, a, b);
	}
	return 0;
}

static int
write_page_file(const char *path, const uint8_t *page)
{
	FILE	   *f = fopen(path, "wb");

	if (f == NULL || fwrite(page, 1, AURORA_PAGE_SIZE, f) != AURORA_PAGE_SIZE)
	{
		fprintf(stderr, "aurora-ctl: redo: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	if (fclose(f) != 0)
	{
		fprintf(stderr, "aurora-ctl: redo: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static uint64_t
page_lsn(const uint8_t *page)
{
	uint32_t	hi = (uint32_t) page[0] | (uint32_t) page[1] << 8 |
		(uint32_t) page[2] << 16 | (uint32_t) page[3] << 24;
	uint32_t	lo = (uint32_t) page[4] | (uint32_t) page[5] << 8 |
		(uint32_t) page[6] << 16 | (uint32_t) page[7] << 24;

	return ((uint64_t) hi << 32) | lo;
}

/*
 * -i FILE: mask every page of FILE (one or more pages back to back, as
 * aurora-ctl getpage --batch writes them) with one helper, into -o FILE.
 */
static int
mask_pages_file(const redo_opts *o, aurora_redo_pool *pool)
{
	FILE	   *in = fopen(o->in, "rb");
	FILE	   *out;
	uint8_t		page[AURORA_PAGE_SIZE];
	uint8_t		masked[AURORA_PAGE_SIZE];
	char		err[1024];
	char		l1[32];
	long		pages = 0;
	size_t		n;
	int			rc = 0;

	if (in == NULL)
	{
		fprintf(stderr, "aurora-ctl: redo: %s: %s\n", o->in, strerror(errno));
		return 1;
	}
	if ((out = fopen(o->out, "wb")) == NULL)
	{
		fprintf(stderr, "aurora-ctl: redo: %s: %s\n", o->out, strerror(errno));
		fclose(in);
		return 1;
	}
	while ((n = fread(page, 1, AURORA_PAGE_SIZE, in)) == AURORA_PAGE_SIZE)
	{
		if (aurora_redo_mask_page(pool, (uint8_t) o->mask_rmgr, o->block.blkno, page, masked,
								  err, sizeof(err)) != AURORA_REDO_OK)
		{
			fprintf(stderr, "aurora-ctl: redo: masking page %ld failed: %s\n", pages, err);
			rc = 1;
			break;
		}
		if (fwrite(masked, 1, AURORA_PAGE_SIZE, out) != AURORA_PAGE_SIZE)
		{
			fprintf(stderr, "aurora-ctl: redo: %s: %s\n", o->out, strerror(errno));
			rc = 1;
			break;
		}
		pages++;
	}
	if (rc == 0 && (n != 0 || pages == 0))
	{
		fprintf(stderr, "aurora-ctl: redo: %s is not a whole number of %d-byte pages\n",
				o->in, AURORA_PAGE_SIZE);
		rc = 1;
	}
	fclose(in);
	if (fclose(out) != 0 && rc == 0)
	{
		fprintf(stderr, "aurora-ctl: redo: %s: %s\n", o->out, strerror(errno));
		rc = 1;
	}
	if (rc == 0 && pages == 1)
		printf("redo: masked page_lsn %s mask_rmgr %d\n",
			   (format_lsn(l1, sizeof(l1), page_lsn(page)), l1), o->mask_rmgr);
	else if (rc == 0)
		printf("redo: masked %ld pages mask_rmgr %d\n", pages, o->mask_rmgr);
	return rc;
}

int
ctl_redo_command(char **args, int n, int timeout_ms)
{
	redo_opts	o;
	aurora_redo_config cfg;
	aurora_redo_pool *pool = NULL;
	aurora_redo_record *recs = NULL;
	chain		c = {0};
	uint8_t		page[AURORA_PAGE_SIZE];
	uint8_t		masked[AURORA_PAGE_SIZE];
	char		err[2048];
	char		l1[32],
				l2[32];
	int			first = -1;
	int			rc;

	rc = parse_options(args, n, &o);
	if (rc != 0)
		return rc;

	cfg.postgres = o.postgres;
	cfg.helpers = 1;
	cfg.timeout_ms = REDO_DEFAULT_TIMEOUT_MS;
	cfg.nice = 0;
	if (aurora_redo_pool_create(&cfg, &pool, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: redo: %s\n", err);
		return 1;
	}

	if (o.in != NULL)
	{
		rc = mask_pages_file(&o, pool);
		goto out;
	}

	rc = read_chain(&o, timeout_ms, &c);
	if (rc != 0)
		goto out;
	rc = 1;
	for (int i = c.n - 1; i >= 0; i--)
		if (c.recs[i].will_init)
		{
			first = i;
			break;
		}
	if (first < 0)
	{
		fprintf(stderr, "aurora-ctl: redo: block %u/%u/%u/%u/%u: none of the %d records of PG %u "
				"that change it up to the LSN initializes it (no full-page image or page init): "
				"the page cannot be built from the log alone\n",
				o.block.spc_oid, o.block.db_oid, o.block.rel_number, o.block.fork,
				o.block.blkno, c.n, o.pg);
		goto out;
	}
	if (c.gone_lsn > c.recs[first].start_lsn)
	{
		format_lsn(l1, sizeof(l1), c.gone_lsn);
		fprintf(stderr, "aurora-ctl: redo: block %u/%u/%u/%u/%u does not exist at that LSN: "
				"%s at %s\n", o.block.spc_oid, o.block.db_oid, o.block.rel_number,
				o.block.fork, o.block.blkno, c.gone_why, l1);
		goto out;
	}

	recs = calloc((size_t) (c.n - first), sizeof(*recs));
	if (recs == NULL)
	{
		fprintf(stderr, "aurora-ctl: redo: out of memory\n");
		goto out;
	}
	for (int i = first; i < c.n; i++)
		recs[i - first] = (aurora_redo_record) {
			.start_lsn = c.recs[i].start_lsn,
			.end_lsn = c.recs[i].end_lsn,
			.wal = c.recs[i].wal,
			.wal_len = c.recs[i].wal_len
		};
	if (o.list)
		for (int i = first; i < c.n; i++)
		{
			format_lsn(l1, sizeof(l1), c.recs[i].start_lsn);
			format_lsn(l2, sizeof(l2), c.recs[i].end_lsn);
			printf("record %s %s rmgr %u%s\n", l1, l2, c.recs[i].rmid,
				   c.recs[i].will_init ? " init" : "");
		}
	fflush(stdout);
	if (aurora_redo_get_page(pool, &o.block, NULL, recs, c.n - first, page,
							 err, sizeof(err)) != AURORA_REDO_OK)
	{
		fprintf(stderr, "aurora-ctl: redo: %s\n", err);
		goto out;
	}

	if (o.mask)
	{
		if (o.mask_rmgr == NO_RMGR)
		{
			for (int i = c.n - 1; i >= first; i--)
				if (c.recs[i].rmid != WAL_RM_XLOG_ID)
				{
					o.mask_rmgr = c.recs[i].rmid;
					break;
				}
			if (o.mask_rmgr == NO_RMGR)
			{
				fprintf(stderr, "aurora-ctl: redo: only full-page images changed the block: "
						"say which masking applies with --mask-rmgr ID\n");
				goto out;
			}
		}
		if (aurora_redo_mask_page(pool, (uint8_t) o.mask_rmgr, o.block.blkno, page, masked,
								  err, sizeof(err)) != AURORA_REDO_OK)
		{
			fprintf(stderr, "aurora-ctl: redo: masking failed: %s\n", err);
			goto out;
		}
	}
	if (write_page_file(o.out, o.mask ? masked : page) != 0)
		goto out;
	format_lsn(l1, sizeof(l1), c.recs[first].start_lsn);
	format_lsn(l2, sizeof(l2), page_lsn(page));
	printf("redo: records %d init_lsn %s page_lsn %s mask_rmgr %d\n",
		   c.n - first, l1, l2, o.mask ? o.mask_rmgr : NO_RMGR);
	rc = 0;

out:
	free(recs);
	chain_free(&c);
	aurora_redo_pool_destroy(pool);
	return rc;
}
