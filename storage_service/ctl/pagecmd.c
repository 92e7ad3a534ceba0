/*
 * pagecmd.c - aurora-ctl getpage and relsize (pagecmd.h), and the argument
 * parsers the page commands share; seed is in seed_cmd.c.
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
#include "util.h"
#include "volume.h"
#include "wire.h"

int
ctl_parse_lsn(const char *s, uint64_t *out)
{
	const char *slash;
	char	   *end;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	if ((slash = strchr(s, '/')) != NULL)
	{
		unsigned long long hi,
					lo;

		hi = strtoull(s, &end, 16);
		if (end != slash || hi > 0xffffffffull)
			return -1;
		lo = strtoull(slash + 1, &end, 16);
		if (*end != '\0' || slash[1] == '\0' || lo > 0xffffffffull)
			return -1;
		*out = (hi << 32) | lo;
		return 0;
	}
	*out = strtoull(s, &end, 0);
	return *end == '\0' ? 0 : -1;
}

int
ctl_parse_u32(const char *s, uint32_t *out)
{
	char	   *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	v = strtoull(s, &end, 0);
	if (*end != '\0' || v > UINT32_MAX)
		return -1;
	*out = (uint32_t) v;
	return 0;
}

/* SPC/DB/REL/FORK[/BLKNO] */
static int
parse_tag(const char *s, aurora_block_ref *b, bool with_block)
{
	unsigned long v[5];
	int			n = 0;
	const char *p = s;

	while (n < 5)
	{
		char	   *end;

		if (*p < '0' || *p > '9')
			return -1;
		errno = 0;
		v[n++] = strtoul(p, &end, 10);
		if (errno != 0 || v[n - 1] > UINT32_MAX)
			return -1;
		if (*end == '\0')
			break;
		if (*end != '/')
			return -1;
		p = end + 1;
	}
	if (n != (with_block ? 5 : 4) || v[3] > 3)
		return -1;
	b->spc_oid = (uint32_t) v[0];
	b->db_oid = (uint32_t) v[1];
	b->rel_number = (uint32_t) v[2];
	b->fork = (uint8_t) v[3];
	b->blkno = with_block ? (uint32_t) v[4] : 0;
	return 0;
}


/* ---- getpage / relsize ---- */

typedef struct node_opts
{
	const char *url;
	uint64_t	volume_id;
	uint32_t	pg;
	bool		have_pg;
	aurora_block_ref block;
	bool		have_block;
	uint64_t	lsn;
	bool		have_lsn;
	uint32_t	wait_ms;
	uint64_t	epoch;			/* --epoch: the volume epoch sent (default 0: the segment's own) */
	const char *out;
	const char *batch;			/* --batch FILE: many requests, one connection */
	aurora_geometry geom;		/* --pgs/--blocks-per-segment: route "-" lines */
} node_opts;

static int
node_options(const char *cmd, char **args, int n, node_opts *o, bool want_block)
{
	memset(o, 0, sizeof(*o));
	o->volume_id = AURORA_COMPUTE_VOLUME_ID;
	o->wait_ms = 5000;
	o->epoch = 0;
	for (int i = 0; i < n; i += 2)
	{
		const char *v = i + 1 < n ? args[i + 1] : NULL;
		bool		okv = v != NULL;

		if (okv && strcmp(args[i], "--node") == 0)
			o->url = v;
		else if (okv && strcmp(args[i], "--pg") == 0)
			okv = o->have_pg = ctl_parse_u32(v, &o->pg) == 0;
		else if (okv && strcmp(args[i], "--volume") == 0)
			okv = ctl_parse_lsn(v, &o->volume_id) == 0;
		else if (okv && strcmp(args[i], want_block ? "--block" : "--rel") == 0)
			okv = o->have_block = parse_tag(v, &o->block, want_block) == 0;
		else if (okv && strcmp(args[i], "--lsn") == 0)
			okv = o->have_lsn = ctl_parse_lsn(v, &o->lsn) == 0;
		else if (okv && strcmp(args[i], "--wait-ms") == 0)
			okv = ctl_parse_u32(v, &o->wait_ms) == 0;
		else if (okv && strcmp(args[i], "--epoch") == 0)
			okv = ctl_parse_lsn(v, &o->epoch) == 0;
		else if (okv && want_block && strcmp(args[i], "-o") == 0)
			o->out = v;
		else if (okv && strcmp(args[i], "--batch") == 0)
			o->batch = v;
		else if (okv && strcmp(args[i], "--pgs") == 0)
			okv = ctl_parse_u32(v, &o->geom.n_pgs) == 0;
		else if (okv && strcmp(args[i], "--blocks-per-segment") == 0)
			okv = ctl_parse_u32(v, &o->geom.blocks_per_segment) == 0;
		else
			okv = false;
		if (!okv)
		{
			fprintf(stderr, "aurora-ctl: %s: bad or incomplete option '%s'\n", cmd, args[i]);
			return 2;
		}
	}
	if (o->batch != NULL && o->url != NULL && (o->out != NULL || !want_block) &&
		!o->have_pg && !o->have_block && !o->have_lsn)
		return 0;
	if (o->url == NULL || !o->have_pg || !o->have_block || !o->have_lsn ||
		(want_block && o->out == NULL) || o->batch != NULL)
	{
		fprintf(stderr, "aurora-ctl: %s needs --node URL --pg N %s --lsn LSN%s\n", cmd,
				want_block ? "--block SPC/DB/REL/FORK/BLKNO" : "--rel SPC/DB/REL/FORK",
				want_block ? " -o FILE" : "");
		return 2;
	}
	return 0;
}

/* One request to o->url; the reply body in *reply (free it). */
static int
node_request(const node_opts *o, uint16_t type, const uint8_t *body, size_t len,
			 uint16_t expect, int timeout_ms, uint8_t **reply, const uint8_t **rbody,
			 aurora_header *rh)
{
	aurora_conn *conn;
	aurora_header h;
	char		err[1200];
	ctl_req_result r;

	if (aurora_conn_open(o->url, &conn, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s\n", err);
		return 2;
	}
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.volume_id = o->volume_id;
	h.pg_id = o->pg;
	/* page requests are fenced like writes (PROTOCOL.md 5) */
	h.volume_epoch = o->epoch != 0 ? o->epoch : ctl_segment_epoch(conn, o->volume_id, o->pg, timeout_ms);
	h.membership_epoch = 1;
	h.request_id = 1;
	r = ctl_request(conn, timeout_ms + (int) o->wait_ms, &h, body, len, expect, rh, reply, rbody,
					err, sizeof(err));
	aurora_conn_close(conn);
	if (r != CTL_REQ_OK)
	{
		fprintf(stderr, "aurora-ctl: %s: %s\n", o->url, err);
		return 1;
	}
	return 0;
}

/*
 * --batch FILE: one request per line of FILE ("PG SPC/DB/REL/FORK[/BLKNO]
 * LSN"), all over one connection to o->url, answered one line each on
 * stdout: "ok ..." or "error MESSAGE", with the request's round trip in
 * microseconds ("us N") so that the benchmark can time GETPAGE without a
 * process per request.  getpage writes each page (zeros after an error) to
 * -o FILE, back to back in the order of the lines.  Exit 0 when every line
 * was answered (errors included), 1 when the node stopped answering, 2 for
 * a bad line.
 */
static int
batch_requests(const node_opts *o, bool getpage, int timeout_ms)
{
	/* without --epoch, each PG's own, asked once */
	enum
	{
		lengthof_epochs = 256
	};
	uint64_t	pg_epoch[lengthof_epochs] = {0};
	FILE	   *in = fopen(o->batch, "r");
	FILE	   *out = NULL;
	aurora_conn *conn = NULL;
	char		line[512];
	char		err[1200];
	int			lineno = 0;
	int			rc = 0;
	static const uint8_t zeros[AURORA_PAGE_BYTES];

	if (in == NULL)
	{
		fprintf(stderr, "aurora-ctl: cannot read %s: %s\n", o->batch, strerror(errno));
		return 2;
	}
	if (getpage && (out = fopen(o->out, "wb")) == NULL)
	{
		fprintf(stderr, "aurora-ctl: cannot write %s: %s\n", o->out, strerror(errno));
		fclose(in);
		return 2;
	}
	if (aurora_conn_open(o->url, &conn, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "aurora-ctl: %s\n", err);
		fclose(in);
		if (out)
			fclose(out);
		return 2;
	}
	while (rc == 0 && fgets(line, sizeof(line), in) != NULL)
	{
		char		pg_text[32],
					tag[128],
					lsn_text[64];
		uint32_t	pg = 0;
		aurora_block_ref block;
		uint64_t	lsn;
		aurora_header h,
					rh;
		uint8_t		body[64];
		size_t		len;
		uint8_t    *reply = NULL;
		const uint8_t *rbody;
		ctl_req_result r;
		double		started;
		const uint8_t *page = zeros;
		aurora_page_resp *p = NULL;

		lineno++;
		if (sscanf(line, "%31s %127s %63s", pg_text, tag, lsn_text) != 3 ||
			parse_tag(tag, &block, getpage) != 0 || ctl_parse_lsn(lsn_text, &lsn) != 0 ||
			(strcmp(pg_text, "-") == 0 ? !getpage || o->geom.n_pgs == 0 ||
			 o->geom.blocks_per_segment == 0 : ctl_parse_u32(pg_text, &pg) != 0))
		{
			fprintf(stderr, "aurora-ctl: %s:%d: want \"PG %s LSN\" (PG \"-\": the block's, "
					"with --pgs and --blocks-per-segment)\n", o->batch, lineno,
					getpage ? "SPC/DB/REL/FORK/BLKNO" : "SPC/DB/REL/FORK");
			rc = 2;
			break;
		}
		if (strcmp(pg_text, "-") == 0)
			pg = aurora_block_pg(&o->geom, &block);
		memset(&h, 0, sizeof(h));
		h.volume_id = o->volume_id;
		h.pg_id = pg;
		if (o->epoch != 0)
			h.volume_epoch = o->epoch;
		else if (pg < lengthof_epochs)
		{
			if (pg_epoch[pg] == 0)
				pg_epoch[pg] = ctl_segment_epoch(conn, o->volume_id, pg, timeout_ms);
			h.volume_epoch = pg_epoch[pg];
		}
		else
			h.volume_epoch = ctl_segment_epoch(conn, o->volume_id, pg, timeout_ms);
		h.membership_epoch = 1;
		h.request_id = (uint64_t) lineno;
		if (getpage)
		{
			aurora_getpage_req g = {block, lsn, o->wait_ms};

			h.type = AURORA_MSG_GETPAGE_REQ;
			len = aurora_getpage_req_encode(&g, body, sizeof(body));
		}
		else
		{
			aurora_rel_size_req q = {block.spc_oid, block.db_oid, block.rel_number, block.fork,
			lsn, o->wait_ms};

			h.type = AURORA_MSG_REL_SIZE_REQ;
			len = aurora_rel_size_req_encode(&q, body, sizeof(body));
		}
		started = aurora_monotonic_ms();
		r = ctl_request(conn, timeout_ms + (int) o->wait_ms, &h, body, len,
						getpage ? AURORA_MSG_PAGE : AURORA_MSG_REL_SIZE, &rh, &reply, &rbody,
						err, sizeof(err));
		if (r == CTL_REQ_NO_REPLY)
		{
			fprintf(stderr, "aurora-ctl: %s: %s\n", o->url, err);
			rc = 1;
			break;
		}
		if (r != CTL_REQ_OK)
			printf("error %s us %.0f\n", err, (aurora_monotonic_ms() - started) * 1000.0);
		else if (getpage)
		{
			p = malloc(sizeof(*p));
			if (p != NULL && aurora_page_resp_decode(rbody, rh.body_len, p) == 0)
			{
				page = p->page;
				printf("ok page_lsn %X/%X us %.0f\n", (unsigned) (p->page_lsn >> 32),
					   (unsigned) p->page_lsn, (aurora_monotonic_ms() - started) * 1000.0);
			}
			else
				printf("error the PAGE reply does not decode\n");
		}
		else
		{
			aurora_rel_size_resp rs;

			if (aurora_rel_size_resp_decode(rbody, rh.body_len, &rs) == 0)
				printf("ok exists %s nblocks %u us %.0f\n", rs.exists ? "yes" : "no",
					   (unsigned) rs.nblocks, (aurora_monotonic_ms() - started) * 1000.0);
			else
				printf("error the REL_SIZE reply does not decode\n");
		}
		if (out != NULL && fwrite(page, 1, AURORA_PAGE_BYTES, out) != AURORA_PAGE_BYTES)
		{
			fprintf(stderr, "aurora-ctl: cannot write %s: %s\n", o->out, strerror(errno));
			rc = 1;
		}
		free(p);
		free(reply);
	}
	aurora_conn_close(conn);
	fclose(in);
	if (out != NULL && fclose(out) != 0 && rc == 0)
	{
		fprintf(stderr, "aurora-ctl: cannot write %s: %s\n", o->out, strerror(errno));
		rc = 1;
	}
	return rc;
}

int
ctl_getpage_command(char **args, int n, int timeout_ms)
{
	node_opts	o;
	aurora_getpage_req g;
	aurora_page_resp *p;
	uint8_t		body[64];
	uint8_t    *reply = NULL;
	const uint8_t *rbody;
	aurora_header rh;
	int			rc;
	FILE	   *f;

	if ((rc = node_options("getpage", args, n, &o, true)) != 0)
		return rc;
	if (o.batch != NULL)
		return batch_requests(&o, true, timeout_ms);
	g.block = o.block;
	g.lsn = o.lsn;
	g.wait_ms = o.wait_ms;
	rc = node_request(&o, AURORA_MSG_GETPAGE_REQ, body, aurora_getpage_req_encode(&g, body, sizeof(body)),
					  AURORA_MSG_PAGE, timeout_ms, &reply, &rbody, &rh);
	if (rc != 0)
		return rc;
	p = malloc(sizeof(*p));
	if (p == NULL || aurora_page_resp_decode(rbody, rh.body_len, p) != 0)
	{
		fprintf(stderr, "aurora-ctl: getpage: the PAGE reply does not decode\n");
		free(p);
		free(reply);
		return 1;
	}
	free(reply);
	f = fopen(o.out, "wb");
	if (f == NULL || fwrite(p->page, 1, AURORA_PAGE_BYTES, f) != AURORA_PAGE_BYTES || fclose(f) != 0)
	{
		fprintf(stderr, "aurora-ctl: getpage: cannot write %s: %s\n", o.out, strerror(errno));
		free(p);
		return 1;
	}
	printf("page_lsn %X/%X checksum 0x%04x\n", (unsigned) (p->page_lsn >> 32),
		   (unsigned) p->page_lsn, (unsigned) p->checksum);
	free(p);
	return 0;
}

int
ctl_relsize_command(char **args, int n, int timeout_ms)
{
	node_opts	o;
	aurora_rel_size_req q;
	aurora_rel_size_resp rs;
	uint8_t		body[64];
	uint8_t    *reply = NULL;
	const uint8_t *rbody;
	aurora_header rh;
	int			rc;

	if ((rc = node_options("relsize", args, n, &o, false)) != 0)
		return rc;
	if (o.batch != NULL)
		return batch_requests(&o, false, timeout_ms);
	q.spc_oid = o.block.spc_oid;
	q.db_oid = o.block.db_oid;
	q.rel_number = o.block.rel_number;
	q.fork = o.block.fork;
	q.lsn = o.lsn;
	q.wait_ms = o.wait_ms;
	rc = node_request(&o, AURORA_MSG_REL_SIZE_REQ, body,
					  aurora_rel_size_req_encode(&q, body, sizeof(body)), AURORA_MSG_REL_SIZE,
					  timeout_ms, &reply, &rbody, &rh);
	if (rc != 0)
		return rc;
	rc = aurora_rel_size_resp_decode(rbody, rh.body_len, &rs);
	free(reply);
	if (rc != 0)
	{
		fprintf(stderr, "aurora-ctl: relsize: the REL_SIZE reply does not decode\n");
		return 1;
	}
	printf("exists %s nblocks %u\n", rs.exists ? "yes" : "no", (unsigned) rs.nblocks);
	return 0;
}
