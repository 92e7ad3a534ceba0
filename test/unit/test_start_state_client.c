/*
 * test_start_state_client.c - the quorum calls of common/start_state_client.c
 * against six real in-process storage servers (node/server.c over ipc://):
 * a put in pieces is stored complete on all six and fetched back byte for
 * byte; with two members down a put still reaches a write quorum, with three
 * it fails naming them; a get finds the newest start state even when only a
 * read quorum answers and most of them lack it; a copy that does not check
 * on one member is replaced by another member's; with four members down a
 * get fails saying no read quorum answered.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "quorum.h"
#include "segment.h"
#include "segment_table.h"
#include "server.h"
#include "start_state.h"		/* common/: the bundle */
#include "start_state_client.h"
#include "tap.h"
#include "testutil.h"
/* node/start_state.h has the same base name as the bundle's header */
#include "../../storage_service/node/start_state.h"

#define VOL			0x51ULL
#define MAX_BODY	(1u << 20)
#define PIECE		20000u

typedef struct node
{
	char		dir[600];
	char		url[700];
	aurora_segment_table *store;
	aurora_start_states *states;
	aurora_handler handler;
	aurora_server *server;
} node;

static node nodes[AURORA_PG_COPIES];
static char tmpdir[512];
static aurora_pg_target target;

static void
start_node(int k)
{
	node	   *n = &nodes[k];
	char		err[512];

	if (aurora_server_start(n->url, &n->handler, &n->server, err, sizeof(err)) != 0)
		bail_out("server n%d: %s", k, err);
}

static void
stop_node(int k)
{
	aurora_server_stop(nodes[k].server);
	nodes[k].server = NULL;
}

static void
setup(void)
{
	char		err[512];

	memset(&target, 0, sizeof(target));
	target.volume_id = VOL;
	target.pg_id = 0;
	target.volume_epoch = 1;
	target.membership_epoch = 1;
	for (int k = 0; k < AURORA_PG_COPIES; k++)
	{
		node	   *n = &nodes[k];

		snprintf(n->dir, sizeof(n->dir), "%s/n%d", tmpdir, k);
		snprintf(n->url, sizeof(n->url), "ipc://%s/n%d.sock", tmpdir, k);
		snprintf(target.members[k].node_id, sizeof(target.members[k].node_id), "n%d", k);
		snprintf(target.members[k].az, sizeof(target.members[k].az), "az%d", k / 2);
		snprintf(target.members[k].url, sizeof(target.members[k].url), "%s", n->url);
	}
	for (int k = 0; k < AURORA_PG_COPIES; k++)
	{
		node	   *n = &nodes[k];
		aurora_segment_meta m;
		char		id[8];

		snprintf(id, sizeof(id), "n%d", k);
		if (aurora_segment_table_open(n->dir, &n->store, err, sizeof(err)) != 0 ||
			aurora_start_states_open(n->store, &n->states, err, sizeof(err)) != 0)
			bail_out("store n%d: %s", k, err);
		memset(&m, 0, sizeof(m));
		m.volume_id = VOL;
		m.pg_id = 0;
		m.replica_index = (uint32_t) k;
		m.volume_epoch = 1;
		m.membership_epoch = 1;
		memcpy(m.members, target.members, sizeof(m.members));
		if (aurora_segment_table_create_segment(n->store, &m, id, NULL, err, sizeof(err)) != 0)
			bail_out("segment n%d: %s", k, err);
		aurora_handler_init(&n->handler, id, m.members[k].az, MAX_BODY);
		aurora_handler_set_store(&n->handler, n->store);
		aurora_handler_set_start_states(&n->handler, n->states);
		start_node(k);
	}
}

static uint8_t *
make_bundle(uint64_t lsn, size_t *len)
{
	static uint8_t xact[90000];
	aurora_start_state_file files[2] = {
		{(char *) "global/pg_control", 0600, 16, (uint8_t *) "pg_control bytes"},
		{(char *) "pg_xact/0000", 0600, sizeof(xact), xact}
	};
	aurora_start_state s = {lsn, lsn, lsn, 2, files};
	uint8_t    *buf;
	char		err[256];

	for (size_t i = 0; i < sizeof(xact); i++)
		xact[i] = (uint8_t) (i * 13 + lsn);
	if (aurora_start_state_encode(&s, &buf, len, err, sizeof(err)) != 0)
		bail_out("encode: %s", err);
	return buf;
}

static int
held_by(uint64_t lsn)
{
	int			n = 0;

	for (int k = 0; k < AURORA_PG_COPIES; k++)
	{
		uint64_t	lsns[4];
		aurora_segment *seg = aurora_segment_table_find(nodes[k].store, VOL, 0);
		int			c = aurora_start_states_list(nodes[k].states, seg, lsns, 4);

		for (int i = 0; i < c; i++)
			if (lsns[i] == lsn)
				n++;
	}
	return n;
}

int
main(void)
{
	char		err[2048],
				logp[700];
	size_t		l1,
				l2,
				len;
	uint8_t    *b1,
			   *b2,
			   *got;
	uint64_t	lsn;
	aurora_start_state_put_result res;
	int			rc;

	make_tmpdir("start_state_client", tmpdir, sizeof(tmpdir));
	redirect_stderr_to_log(tmpdir, logp, sizeof(logp));
	setup();
	b1 = make_bundle(0x100, &l1);
	b2 = make_bundle(0x200, &l2);

	rc = aurora_start_state_get_pg(&target, AURORA_DEFAULT_READ_QUORUM, UINT64_MAX, PIECE, 2000,
								   &got, &len, &lsn, err, sizeof(err));
	is_int(rc, 0, "get before any put: none found");

	rc = aurora_start_state_put_pg(&target, AURORA_DEFAULT_WRITE_QUORUM, b1, l1, 0x100, PIECE, 2000,
								   &res, err, sizeof(err));
	is_int(rc, 0, "put in pieces succeeds %s", err);
	is_int(res.complete, 6, "all six hold it complete");
	is_int(held_by(0x100), 6, "and list it");
	rc = aurora_start_state_get_pg(&target, AURORA_DEFAULT_READ_QUORUM, UINT64_MAX, PIECE, 2000,
								   &got, &len, &lsn, err, sizeof(err));
	ok(rc == 1 && lsn == 0x100 && len == l1 && memcmp(got, b1, l1) == 0, "get gives it back byte for byte");
	free(got);
	rc = aurora_start_state_put_pg(&target, AURORA_DEFAULT_WRITE_QUORUM, b1, l1, 0x100, PIECE, 2000,
								   &res, err, sizeof(err));
	ok(rc == 0 && res.complete == 6, "putting it again succeeds at once (members answer complete) %s", err);

	/* two members down: still a write quorum; the newest wins in a read quorum */
	stop_node(0);
	stop_node(1);
	rc = aurora_start_state_put_pg(&target, AURORA_DEFAULT_WRITE_QUORUM, b2, l2, 0x200, PIECE, 1000,
								   &res, err, sizeof(err));
	is_int(rc, 0, "with two members down a put reaches a write quorum");
	ok(res.complete == 4 && !res.member_complete[0] && !res.member_complete[1], "on the four up");
	start_node(0);
	start_node(1);
	stop_node(3);
	stop_node(4);
	stop_node(5);
	rc = aurora_start_state_get_pg(&target, AURORA_DEFAULT_READ_QUORUM, UINT64_MAX, PIECE, 1000,
								   &got, &len, &lsn, err, sizeof(err));
	ok(rc == 1 && lsn == 0x200 && len == l2 && memcmp(got, b2, l2) == 0,
	   "a read quorum where two of three lack the newest still gets the newest");
	free(got);
	rc = aurora_start_state_get_pg(&target, AURORA_DEFAULT_READ_QUORUM, 0x1FF, PIECE, 1000,
								   &got, &len, &lsn, err, sizeof(err));
	ok(rc == 1 && lsn == 0x100 && memcmp(got, b1, l1) == 0, "max_lsn picks the newest at or below it");
	free(got);

	/* a damaged copy on the only member that has the newest: no one can deliver it */
	{
		char		path[1200];
		FILE	   *f;

		snprintf(path, sizeof(path), "%s/segments/0000000000000051-0/start-states/0000000000000200.bundle",
				 nodes[2].dir);
		f = fopen(path, "r+b");
		if (f == NULL)
			bail_out("cannot open %s", path);
		fseek(f, 5000, SEEK_SET);
		fputc(0xEE, f);
		fclose(f);
		rc = aurora_start_state_get_pg(&target, AURORA_DEFAULT_READ_QUORUM, UINT64_MAX, PIECE, 1000,
									   &got, &len, &lsn, err, sizeof(err));
		is_int(rc, -1, "a damaged copy is not returned");
		like(err, "CRC", "the error says why");
		start_node(3);
		rc = aurora_start_state_get_pg(&target, AURORA_DEFAULT_READ_QUORUM, UINT64_MAX, PIECE, 1000,
									   &got, &len, &lsn, err, sizeof(err));
		ok(rc == 1 && lsn == 0x200 && len == l2 && memcmp(got, b2, l2) == 0,
		   "with another member holding it, the get falls back to that one");
		free(got);
		stop_node(3);
	}

	/* three members down: a put fails; four down: a get fails */
	free(b1);
	b1 = make_bundle(0x300, &l1);
	rc = aurora_start_state_put_pg(&target, AURORA_DEFAULT_WRITE_QUORUM, b1, l1, 0x300, PIECE, 1000,
								   &res, err, sizeof(err));
	is_int(rc, -1, "with three members down a put fails");
	like(err, "only 3 of 6 segments stored the start state", "saying how many stored it");
	like(err, "n3:", "naming the members that failed");
	stop_node(2);
	rc = aurora_start_state_get_pg(&target, AURORA_DEFAULT_READ_QUORUM, UINT64_MAX, PIECE, 1000,
								   &got, &len, &lsn, err, sizeof(err));
	is_int(rc, -1, "with four members down a get fails");
	like(err, "only 2 of 6 segments answered; a read quorum needs 3", "saying so");

	for (int k = 0; k < AURORA_PG_COPIES; k++)
	{
		if (nodes[k].server != NULL)
			stop_node(k);
		aurora_start_states_close(nodes[k].states);
		aurora_segment_table_close(nodes[k].store);
	}
	free(b1);
	free(b2);
	remove_tree(tmpdir);
	return done_testing();
}
