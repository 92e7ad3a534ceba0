/*
 * test_placement.c - tests of aurora-ctl placement (storage_service/ctl/
 * placement.c): seven in-process storage nodes on ipc:// (a1 a2 a3 in AZ a,
 * b1 b2, c1 c2), described by a cluster directory of node configs as
 * aurora-ctl sees it.  Volumes are created through the real CREATE_SEGMENT
 * path (the quorum writer, pgwriter.h), on the nodes aurora_place_pg()
 * chooses or, on purpose, elsewhere; the table ctl_placement_build()
 * returns is checked row by row: every replica ok, a node down (rows
 * "down", still a write quorum), a segment missing, replicas at the wrong
 * index, a segment on a node placement does not choose, PGs beyond n_pgs,
 * disagreeing or absent geometry, and no volume at all.  The printed format
 * and the binary's exit codes and option errors are checked once each.
 */
#define _DEFAULT_SOURCE

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "handler.h"
#include "pgwriter.h"
#include "placement.h"
#include "server.h"
#include "segment_table.h"
#include "tap.h"
#include "testutil.h"
#include "volume.h"

#define N_NODES		7
#define MAX_BODY	(1u << 20)
#define TIMEOUT_MS	400

typedef struct node
{
	const char *id;
	const char *az;
	char		url[700];
	aurora_segment_table *store;
	aurora_handler handler;
	aurora_server *server;
} node;

static node nodes[N_NODES] = {
	{.id = "a1",.az = "a"}, {.id = "a2",.az = "a"}, {.id = "a3",.az = "a"},
	{.id = "b1",.az = "b"}, {.id = "b2",.az = "b"},
	{.id = "c1",.az = "c"}, {.id = "c2",.az = "c"},
};
static char tmpdir[512];
static char cluster_dir[600];
static ctl_cluster cluster;
static const char *ctl_bin;
static char out[1 << 16];

static void
start_server(int k)
{
	char		err[512];

	if (aurora_server_start(nodes[k].url, &nodes[k].handler, &nodes[k].server,
							err, sizeof(err)) != 0)
		bail_out("server %s: %s", nodes[k].id, err);
}

static void
stop_server(int k)
{
	aurora_server_stop(nodes[k].server);
	nodes[k].server = NULL;
}

/* Each node: a store, a handler, a server, and a config file for aurora-ctl. */
static void
start_nodes(void)
{
	char		err[512];

	snprintf(cluster_dir, sizeof(cluster_dir), "%s/cluster", tmpdir);
	if (mkdir(cluster_dir, 0700) != 0)
		bail_out("mkdir %s failed", cluster_dir);
	for (int k = 0; k < N_NODES; k++)
	{
		node	   *n = &nodes[k];
		char		dir[700];
		char		conf[800];
		char		text[1024];

		snprintf(dir, sizeof(dir), "%s/%s", tmpdir, n->id);
		snprintf(n->url, sizeof(n->url), "ipc://%s/%s.sock", tmpdir, n->id);
		if (aurora_segment_table_open(dir, &n->store, err, sizeof(err)) != 0)
			bail_out("store %s: %s", n->id, err);
		aurora_handler_init(&n->handler, n->id, n->az, MAX_BODY);
		aurora_handler_set_store(&n->handler, n->store);
		start_server(k);
		snprintf(conf, sizeof(conf), "%s/%s.conf", cluster_dir, n->id);
		snprintf(text, sizeof(text), "node_id = %s\naz = %s\nlisten_url = %s\ndata_dir = %s\n",
				 n->id, n->az, n->url, dir);
		write_text_file(conf, text);
	}
	if (ctl_cluster_load(cluster_dir, &cluster, err, sizeof(err)) != 0)
		bail_out("cluster: %s", err);
}

static int
node_of(const char *id)
{
	for (int k = 0; k < N_NODES; k++)
		if (strcmp(cluster.nodes[k].cfg.node_id, id) == 0)
			return k;
	bail_out("no node %s", id);
}

/* Where aurora_place_pg puts pg on the cluster's nodes. */
static void
place(uint32_t pg, aurora_member members[AURORA_PG_COPIES])
{
	aurora_member all[N_NODES];
	char		err[256];

	for (int k = 0; k < N_NODES; k++)
		ctl_node_member(&cluster.nodes[k], &all[k]);
	if (aurora_place_pg(all, N_NODES, pg, members, err, sizeof(err)) != 0)
		bail_out("place: %s", err);
}

/* CREATE_SEGMENT of (volume, pg) on members, as a writer does; how many succeeded. */
static int
create_pg(uint64_t volume, uint32_t pg, uint32_t n_pgs, const aurora_member *members)
{
	aurora_pg_target t;
	aurora_pgwriter *w;
	char		err[256];
	int			created;

	memset(&t, 0, sizeof(t));
	t.volume_id = volume;
	t.pg_id = pg;
	t.volume_epoch = 1;
	t.membership_epoch = 1;
	t.n_pgs = n_pgs;
	t.blocks_per_segment = n_pgs != 0 ? 16 : 0;
	memcpy(t.members, members, sizeof(t.members));
	if (aurora_pgwriter_open(&t, AURORA_DEFAULT_WRITE_QUORUM, TIMEOUT_MS, &w, err,
							 sizeof(err)) != 0)
		bail_out("pgwriter: %s", err);
	created = aurora_pgwriter_create_segments(w, err, sizeof(err));
	aurora_pgwriter_close(w);
	return created;
}

/* Create every PG of a volume where placement puts it. */
static void
create_placed_volume(uint64_t volume, uint32_t n_pgs)
{
	aurora_member m[AURORA_PG_COPIES];

	for (uint32_t pg = 0; pg < n_pgs; pg++)
	{
		place(pg, m);
		if (create_pg(volume, pg, n_pgs, m) != AURORA_PG_COPIES)
			bail_out("volume %" PRIx64 " PG %u: not all six segments created", volume, pg);
	}
}

static int
build(uint64_t volume, uint32_t n_pgs, ctl_placement *p, char *err, size_t errlen)
{
	return ctl_placement_build(&cluster, volume, n_pgs, TIMEOUT_MS, p, err, errlen);
}

static int
count_rows(const ctl_placement *p, ctl_seg_state state)
{
	int			n = 0;

	for (int i = 0; i < p->n_rows; i++)
		n += p->rows[i].state == state;
	return n;
}

static const ctl_placement_row *
row_of(const ctl_placement *p, uint32_t pg, const char *node_id)
{
	for (int i = 0; i < p->n_rows; i++)
		if (p->rows[i].pg == pg && p->rows[i].node == node_of(node_id))
			return &p->rows[i];
	return NULL;
}

/* Every placed row sits where aurora_place_pg says, in PG and replica order. */
static bool
rows_follow_placement(const ctl_placement *p)
{
	for (uint32_t pg = 0; pg < p->geometry.n_pgs; pg++)
	{
		aurora_member m[AURORA_PG_COPIES];

		place(pg, m);
		for (int r = 0; r < AURORA_PG_COPIES; r++)
		{
			const ctl_placement_row *row = &p->rows[pg * AURORA_PG_COPIES + (uint32_t) r];

			if (row->pg != pg || row->replica != (uint32_t) r || row->extra ||
				row->node != node_of(m[r].node_id))
				return false;
		}
	}
	return true;
}

static void
print_to(const ctl_placement *p, char *buf, size_t cap)
{
	FILE	   *f = fmemopen(buf, cap, "w");

	if (f == NULL)
		bail_out("fmemopen failed");
	ctl_placement_print(f, &cluster, p);
	fclose(f);
}

/* Run aurora-ctl --timeout T --cluster DIR placement ARGS...; output in out. */
static int
ctl_placement_run(const char *a, const char *b, const char *c, const char *d)
{
	char		timeout[16];
	char	   *argv[] = {(char *) ctl_bin, (char *) "--timeout", timeout,
		(char *) "--cluster", cluster_dir, (char *) "placement",
	(char *) a, (char *) b, (char *) c, (char *) d, NULL};

	snprintf(timeout, sizeof(timeout), "%d", test_ms(400));
	return run_capture(argv, out, sizeof(out));
}

static void
test_all_ok(void)
{
	ctl_placement p;
	char		err[1024];
	char		text[8192];
	char		row0[256];
	aurora_member m[AURORA_PG_COPIES];
	const ctl_placement_row *r;

	create_placed_volume(AURORA_COMPUTE_VOLUME_ID, 4);
	is_int(build(AURORA_COMPUTE_VOLUME_ID, 0, &p, err, sizeof(err)), 0, "builds: %s", err);
	is_uint(p.geometry.n_pgs, 4, "n_pgs discovered from the segments");
	is_uint(p.geometry.blocks_per_segment, 16, "blocks_per_segment too");
	is_int(p.n_rows, 24, "six rows per PG, nothing extra");
	is_int(count_rows(&p, CTL_SEG_OK), 24, "every replica ok");
	ok(rows_follow_placement(&p), "rows follow aurora_place_pg, by PG then replica");
	is_int(p.pgs_all_ok, 4, "four PGs all ok");
	is_int(p.nodes_down, 0, "no node down");
	ok(ctl_placement_complete(&p), "complete");
	ok(p.warning[0] == '\0', "no warning");
	r = &p.rows[0];
	ok(r->held && r->held_replica == 0 && r->volume_epoch == 1 && r->membership_epoch == 1,
	   "a row carries the segment's replica index and epochs");

	print_to(&p, text, sizeof(text));
	like(text, "placement: volume 0x0000000000000001 n_pgs 4 blocks_per_segment 16 nodes 7\n",
		 "header line: volume, geometry, node count");
	like(text, "\n   PG  REPLICA  NODE  AZ  STATE               SCL  EPOCHS   NOTE\n",
		 "column header");
	place(0, m);
	snprintf(row0, sizeof(row0), "\n    0        0  %-4s  %-2s  ok                    0  1/1      -\n",
			 m[0].node_id, m[0].az);
	like(text, row0, "a row: PG, replica, node, AZ, state, SCL, epochs, note");
	like(text, "\nsummary: pgs 4 all_ok 4 write_quorum 4 below_write_quorum 0 read_quorum 4 "
		 "nodes_down 0 extra_segments 0\n", "summary line");
	ok(strstr(text, "\npg ") == NULL && strstr(text, "\nnode ") == NULL,
	   "no PG or node lines when all is well");
	ctl_placement_free(&p);

	is_int(ctl_placement_run(NULL, NULL, NULL, NULL), 0, "aurora-ctl placement exits 0");
	like(out, "placement: volume 0x0000000000000001 n_pgs 4", "and prints the table");
}

static void
test_more_pgs_than_created(void)
{
	ctl_placement p;
	char		err[1024];

	is_int(build(AURORA_COMPUTE_VOLUME_ID, 5, &p, err, sizeof(err)), 0, "--pgs 5 builds: %s", err);
	is_int(p.n_rows, 30, "30 rows");
	is_int(count_rows(&p, CTL_SEG_MISSING), 6, "PG 4's six replicas are missing");
	ok(p.rows[24].pg == 4 && p.rows[24].state == CTL_SEG_MISSING && !p.rows[24].held,
	   "missing rows hold nothing");
	is_int(p.pgs_write_quorum, 4, "PG 4 is below write quorum");
	ok(!ctl_placement_complete(&p), "not complete");
	like(p.warning, "record n_pgs 4", "a warning says what the segments record");
	ctl_placement_free(&p);
}

/* PG 1 of volume 0x10 is created while one of its nodes is stopped. */
static void
test_missing(void)
{
	const uint64_t vol = 0x10;
	aurora_member m[AURORA_PG_COPIES];
	ctl_placement p;
	char		err[1024];
	const ctl_placement_row *r;
	int			gone;

	place(0, m);
	is_int(create_pg(vol, 0, 2, m), 6, "PG 0 created on six nodes");
	place(1, m);
	gone = node_of(m[3].node_id);
	stop_server(gone);
	is_int(create_pg(vol, 1, 2, m), 5, "PG 1 created on five nodes");
	start_server(gone);
	is_int(build(vol, 0, &p, err, sizeof(err)), 0, "builds: %s", err);
	r = row_of(&p, 1, m[3].node_id);
	ok(r != NULL && r->state == CTL_SEG_MISSING && r->replica == 3,
	   "the stopped node's replica is missing");
	is_int(count_rows(&p, CTL_SEG_MISSING), 1, "only that one");
	is_int(p.pg_ok[1], 5, "five of six ok");
	is_int(p.pgs_write_quorum, 2, "still a write quorum");
	ok(!ctl_placement_complete(&p), "not complete");
	ctl_placement_free(&p);
}

/* Volume 0x20: PG 1 created in PG 0's order, as a tool that ignores placement would. */
static void
test_misplaced(void)
{
	const uint64_t vol = 0x20;
	aurora_member m0[AURORA_PG_COPIES];
	aurora_member m1[AURORA_PG_COPIES];
	ctl_placement p;
	char		err[1024];
	char		text[8192];
	int			misplaced = 0;

	place(0, m0);
	place(1, m1);
	is_int(create_pg(vol, 0, 2, m0), 6, "PG 0 created where placed");
	is_int(create_pg(vol, 1, 2, m0), 6, "PG 1 created on PG 0's members, in PG 0's order");
	is_int(build(vol, 0, &p, err, sizeof(err)), 0, "builds: %s", err);
	for (int r = 0; r < AURORA_PG_COPIES; r++)
	{
		const ctl_placement_row *row = &p.rows[AURORA_PG_COPIES + r];

		if (strcmp(m0[r].node_id, m1[r].node_id) != 0)
			misplaced += row->state == CTL_SEG_MISPLACED && row->held &&
				row->held_replica != row->replica && !row->extra;
	}
	ok(misplaced > 0, "PG 1 replicas held at another index are misplaced (%d)", misplaced);
	is_int(p.pg_ok[0], 6, "PG 0 all ok");
	ok(p.pg_ok[1] < AURORA_PG_COPIES, "PG 1 is not");
	print_to(&p, text, sizeof(text));
	like(text, "  misplaced  ", "printed as misplaced");
	like(text, "  holds-replica-", "with the index the node holds");
	like(text, "\npg 1: ", "and a line for PG 1");
	ctl_placement_free(&p);

	/* with --pgs 1, PG 1's segments are outside the volume: extra rows */
	is_int(build(vol, 1, &p, err, sizeof(err)), 0, "--pgs 1 builds: %s", err);
	is_int(p.extra_rows, 6, "PG 1's six segments are extra rows");
	ok(p.rows[6].extra && p.rows[6].pg == 1 && p.rows[6].state == CTL_SEG_MISPLACED,
	   "after PG 0's rows, misplaced");
	print_to(&p, text, sizeof(text));
	like(text, "  pg-beyond-n_pgs\n", "noted as beyond n_pgs");
	ok(!ctl_placement_complete(&p), "not complete");
	ctl_placement_free(&p);
}

/* Volume 0x30: a2 replaced by a3, as a compute given another node list would do. */
static void
test_not_placed_here(void)
{
	const uint64_t vol = 0x30;
	aurora_member m[AURORA_PG_COPIES];
	ctl_placement p;
	char		err[1024];
	const ctl_placement_row *r;
	int			swapped = -1;

	place(0, m);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		if (strcmp(m[i].node_id, "a2") == 0)
			swapped = i;
	if (swapped < 0)
		bail_out("PG 0 is expected on a2");
	ctl_node_member(&cluster.nodes[node_of("a3")], &m[swapped]);
	is_int(create_pg(vol, 0, 1, m), 6, "PG 0 created with a3 instead of a2");
	is_int(build(vol, 0, &p, err, sizeof(err)), 0, "builds: %s", err);
	r = row_of(&p, 0, "a2");
	ok(r != NULL && r->state == CTL_SEG_MISSING, "a2's replica is missing");
	r = row_of(&p, 0, "a3");
	ok(r != NULL && r->extra && r->state == CTL_SEG_MISPLACED &&
	   r->replica == (uint32_t) swapped, "a3's segment is an extra row at the index it holds");
	is_int(p.n_rows, 7, "six placed rows and one extra");
	is_int(p.pg_ok[0], 5, "five ok");
	ctl_placement_free(&p);
}

static void
test_geometry_problems(void)
{
	aurora_member m[AURORA_PG_COPIES];
	ctl_placement p;
	char		err[1024];

	place(0, m);
	create_pg(0x40, 0, 2, m);
	place(1, m);
	create_pg(0x40, 1, 3, m);
	is_int(build(0x40, 0, &p, err, sizeof(err)), 1, "disagreeing geometry: exit status 1");
	like(err, "disagree on its geometry: n_pgs 2 blocks_per_segment 16 on 6 segments",
		 "the message names each geometry");
	like(err, "n_pgs 3 blocks_per_segment 16 on 6 segments", "both of them");
	is_int(build(0x40, 2, &p, err, sizeof(err)), 0, "with --pgs the table is still built");
	ok(p.geometry_mixed && !ctl_placement_complete(&p), "but it is not complete");
	like(p.warning, "disagree", "and warns");
	ctl_placement_free(&p);

	place(0, m);
	create_pg(0x50, 0, 0, m);
	is_int(build(0x50, 0, &p, err, sizeof(err)), 1, "segments without geometry: 1");
	like(err, "record no geometry", "says so, and asks for --pgs");
	is_int(build(0x50, 1, &p, err, sizeof(err)), 0, "with --pgs 1 it builds");
	is_int(p.pgs_all_ok, 1, "and the PG is ok");
	ctl_placement_free(&p);

	is_int(build(0x60, 0, &p, err, sizeof(err)), 1, "no volume: 1");
	like(err, "no node holds a segment of volume 0x0000000000000060: no volume yet",
		 "the message says there is no volume yet");
	is_int(ctl_placement_run("--volume", "0x60", NULL, NULL), 1, "aurora-ctl: exit 1");
	like(out, "no volume yet", "with the message");
}

static void
test_node_down(void)
{
	ctl_placement p;
	char		err[1024];
	char		text[8192];
	int			b1 = node_of("b1");
	int			down_rows = 0;
	bool		others_ok = true;

	stop_server(b1);
	is_int(build(AURORA_COMPUTE_VOLUME_ID, 0, &p, err, sizeof(err)), 0, "builds: %s", err);
	ok(!p.nodes[b1].up, "b1 is down");
	like(p.nodes[b1].error, "no reply within", "and why");
	for (int i = 0; i < p.n_rows; i++)
	{
		if (p.rows[i].node == b1)
			down_rows += p.rows[i].state == CTL_SEG_DOWN;
		else
			others_ok = others_ok && p.rows[i].state == CTL_SEG_OK;
	}
	is_int(down_rows, 4, "b1's replica of each of the four PGs is down");
	ok(others_ok, "every other replica ok");
	is_int(p.pgs_all_ok, 0, "no PG has all six");
	is_int(p.pgs_write_quorum, 4, "every PG keeps a write quorum");
	is_int(p.nodes_down, 1, "one node down");
	ok(!ctl_placement_complete(&p), "not complete");
	print_to(&p, text, sizeof(text));
	like(text, "  down  ", "rows printed as down");
	like(text, "\nnode b1 down: no reply within", "a line says why the node is down");
	like(text, "\npg 0: 5/6 ok, write quorum\n", "a line per PG short of six");
	like(text, "\nsummary: pgs 4 all_ok 0 write_quorum 4 below_write_quorum 0 read_quorum 4 "
		 "nodes_down 1 extra_segments 0\n", "summary line");
	ctl_placement_free(&p);

	is_int(ctl_placement_run(NULL, NULL, NULL, NULL), 1, "aurora-ctl placement exits 1");
	like(out, "node b1 down", "and names the down node");
	start_server(b1);
}

static void
test_usage(void)
{
	char	   *no_cluster[] = {(char *) ctl_bin, (char *) "placement", NULL};

	is_int(ctl_placement_run("--pgs", "0", NULL, NULL), 2, "--pgs 0: usage error");
	like(out, "--pgs takes 1..65536", "says the range");
	is_int(ctl_placement_run("--pgs", NULL, NULL, NULL), 2, "--pgs without a value: 2");
	is_int(ctl_placement_run("--frob", "1", NULL, NULL), 2, "unknown option: 2");
	is_int(ctl_placement_run("--volume", "0x1", "--pgs", "4"), 0, "--volume 0x1 --pgs 4: 0");
	is_int(run_capture(no_cluster, out, sizeof(out)), 2, "placement without --cluster: 2");
}

int
main(void)
{
	char		log_path[700];

	ctl_bin = test_binary("AURORA_CTL_BIN", "aurora-ctl");
	make_tmpdir("placement", tmpdir, sizeof(tmpdir));
	redirect_stderr_to_log(tmpdir, log_path, sizeof(log_path));
	start_nodes();

	test_all_ok();
	test_more_pgs_than_created();
	test_missing();
	test_misplaced();
	test_not_placed_here();
	test_geometry_problems();
	test_usage();
	test_node_down();

	for (int k = 0; k < N_NODES; k++)
	{
		stop_server(k);
		aurora_segment_table_close(nodes[k].store);
	}
	ctl_cluster_free(&cluster);
	remove_tree(tmpdir);
	return done_testing();
}
