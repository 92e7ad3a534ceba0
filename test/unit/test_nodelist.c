/*
 * test_nodelist.c - unit tests of the storage node list parser
 * (common/nodelist.c), which the compute's aurora.storage_nodes and
 * aurora-compute-init --storage-nodes share: what is accepted, and that
 * every bad list is refused with its reason.
 */
#include <stdlib.h>
#include <string.h>

#include "nodelist.h"
#include "tap.h"

#define SIX "a1:a:tcp://h:1, a2:a:tcp://h:2, b1:b:tcp://h:3, b2:b:tcp://h:4, c1:c:ipc:///tmp/x, c2:c:tls+tcp://h:6"

static void
refused(const char *value, const char *why)
{
	aurora_member *nodes = NULL;
	int			n = -1;
	char		err[256] = "";

	is_int(aurora_nodelist_parse(value, &nodes, &n, err, sizeof(err)), -1, "refused: %s", value);
	like(err, why, "because: %s", why);
	ok(nodes == NULL && n == 0, "and nothing returned");
}

int
main(void)
{
	aurora_member *nodes;
	int			n;
	char		err[256] = "";

	is_int(aurora_nodelist_parse(SIX ",", &nodes, &n, err, sizeof(err)), 0, "six nodes (trailing comma)");
	is_int(n, 6, "all six");
	ok(strcmp(nodes[0].node_id, "a1") == 0 && strcmp(nodes[0].az, "a") == 0 &&
	   strcmp(nodes[0].url, "tcp://h:1") == 0, "id, AZ and URL of the first");
	is_str(nodes[4].url, "ipc:///tmp/x", "a URL keeps its colons");
	free(nodes);
	is_int(aurora_nodelist_parse("", &nodes, &n, err, sizeof(err)), 0, "an empty list");
	ok(nodes == NULL && n == 0, "is empty");

	refused("a1:a:tcp://h:1, a2:a:tcp://h:2, b1:b:tcp://h:3, b2:b:tcp://h:4, c1:c:tcp://h:5",
			"only 2 of the 3 zones");
	refused(SIX ", a1:d:tcp://h:9", "node id \"a1\" appears twice");
	refused(SIX ", d1:d:tcp://h:1", "URL \"tcp://h:1\" appears twice");
	refused("tcp://h:1", "not of the form id:az:url");
	refused("a 1:a:tcp://h:1", "node id must be");
	refused("a1:a:http://h:1", "URL must start with");
	refused("a1:a:tcp://h:1,,", "entry 2 is empty");
	return done_testing();
}
