/*
 * test_ctl.c - tests of aurora-ctl against a two-node local cluster
 * (a1 in az1, b1 in az2): start/stop/kill by node id, az:NAME and all,
 * restart over a stale pid file after kill -9, the status table and exit
 * codes, and errors for unknown targets and bad cluster configs.
 */
#define _DEFAULT_SOURCE

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pidfile.h"
#include "tap.h"
#include "testutil.h"

static char tmpdir[512];
static char cluster[600];
static const char *ctl_bin;
static char out[16384];
static char url_a[64];
static char url_b[64];

/* Run aurora-ctl with up to 4 arguments after the binary name. */
static int
ctl(const char *a, const char *b, const char *c, const char *d)
{
	char	   *argv[6] = {(char *) ctl_bin, (char *) a, (char *) b, (char *) c, (char *) d, NULL};

	return run_capture(argv, out, sizeof(out));
}

static void
write_node(const char *id, const char *az, const char *url)
{
	char		path[800];
	char		text[1024];

	snprintf(path, sizeof(path), "%s/%s.conf", cluster, id);
	snprintf(text, sizeof(text),
			 "# node %s\nnode_id = %s\naz = %s\nlisten_url = %s\ndata_dir = data/%s\n",
			 id, id, az, url, id);
	write_text_file(path, text);
}

static pid_t
pid_of(const char *id)
{
	char		path[800];
	char		err[256];
	pid_t		pid = 0;

	snprintf(path, sizeof(path), "%s/data/%s/aurora-storage.pid", cluster, id);
	if (aurora_pidfile_read(path, &pid, err, sizeof(err)) != 1)
		return 0;
	return pid;
}

int
main(void)
{
	pid_t		a_pid;
	pid_t		a_killed;
	char		line[128];
	char		bad[800];

	ctl_bin = test_binary("AURORA_CTL_BIN", "aurora-ctl");
	/* aurora-ctl must find the daemon; the build puts it next to aurora-ctl. */
	test_binary("AURORA_STORAGE_BIN", "aurora-storage");
	make_tmpdir("ctl-test", tmpdir, sizeof(tmpdir));
	snprintf(cluster, sizeof(cluster), "%s/cluster", tmpdir);
	if (mkdir(cluster, 0700) != 0)
		bail_out("mkdir %s failed", cluster);
	snprintf(url_a, sizeof(url_a), "tcp://127.0.0.1:%d", free_tcp_port());
	snprintf(url_b, sizeof(url_b), "tcp://*:%d", free_tcp_port());
	write_node("a1", "az1", url_a);
	write_node("b1", "az2", url_b);

	is_int(ctl("--cluster", cluster, "start", "all"), 0, "start all exits 0");
	like(out, "a1: started (pid ", "a1 started");
	like(out, "b1: started (pid ", "b1 started");
	a_pid = pid_of("a1");
	ok(a_pid > 0 && aurora_process_is_storage(a_pid), "a1's pid file names a running daemon");

	is_int(ctl("--cluster", cluster, "start", "a1"), 0, "starting a running node exits 0");
	snprintf(line, sizeof(line), "a1: already running (pid %ld)", (long) a_pid);
	like(out, line, "starting a running node is a no-op");

	is_int(ctl("--cluster", cluster, "status", NULL), 0, "cluster status exits 0 when all serve");
	like(out, "NODE  AZ   URL", "status prints the header");
	like(out, "RTT_MS", "status header has RTT_MS");
	like(out, "REDO  COALESCE  INDEXED  GETPAGES  IMAGES  APPLIED  REDO_FAILS  INDEX_LAG  COALESCE_LAG",
		 "and the page service's columns");
	like(out, "a1    az1  tcp://127.0.0.1:", "a1 row (aligned)");
	like(out, "b1    az2  tcp://127.0.0.1:", "b1 row uses a dialable URL for the wildcard listener");
	ok(strstr(out, "serving") != NULL && strstr(strstr(out, "serving") + 1, "serving") != NULL,
	   "both nodes serving");

	is_int(ctl("status", url_a, NULL, NULL), 0, "status URL exits 0 for a live node");
	like(out, "serving", "status URL shows the node serving");

	is_int(ctl("--cluster", cluster, "kill", "a1"), 0, "kill a1 exits 0");
	snprintf(line, sizeof(line), "a1: killed (pid %ld)", (long) a_pid);
	like(out, line, "kill reports the pid");
	ok(!aurora_process_alive(a_pid), "a1 is gone");
	is_int(pid_of("a1"), a_pid, "kill leaves the pid file behind");
	a_killed = a_pid;

	is_int(ctl("--timeout", "500", "--cluster", cluster), 2, "missing command exits 2");
	{
		char	   *argv[] = {(char *) ctl_bin, (char *) "--timeout", (char *) "500",
		(char *) "--cluster", cluster, (char *) "status", NULL};

		is_int(run_capture(argv, out, sizeof(out)), 1, "status exits 1 with a node down");
	}
	like(out, "a1    -    tcp://127.0.0.1:", "down node keeps its id in the table");
	like(out, "unreachable", "down node is shown unreachable");

	is_int(ctl("--cluster", cluster, "start", "az:az1"), 0, "start az:az1 exits 0");
	like(out, "a1: started (pid ", "a1 restarted over its stale pid file");
	ok(strstr(out, "b1") == NULL, "az:az1 does not touch b1");
	a_pid = pid_of("a1");
	ok(a_pid > 0 && a_pid != a_killed, "a1 has a new pid");

	is_int(ctl("--cluster", cluster, "stop", "x9"), 2, "unknown node exits 2");
	like(out, "unknown node 'x9'; known: a1 b1", "unknown node message lists known nodes");
	is_int(ctl("--cluster", cluster, "start", "az:nowhere"), 2, "unknown az exits 2");
	like(out, "no node is in availability zone 'nowhere'; known: az1 az2", "unknown az message");
	is_int(ctl("--cluster", cluster, "stop", NULL), 2, "stop without a target exits 2");
	is_int(ctl("--cluster", cluster, "frob", "all"), 2, "unknown command exits 2");
	is_int(ctl("frob", NULL, NULL, NULL), 2, "command without --cluster exits 2");
	is_int(ctl(NULL, NULL, NULL, NULL), 2, "no arguments exits 2");
	is_int(ctl("--version", NULL, NULL, NULL), 0, "--version exits 0");
	like(out, "aurora-ctl 0.1.0", "--version prints the version");

	is_int(ctl("--cluster", cluster, "stop", "all"), 0, "stop all exits 0");
	snprintf(line, sizeof(line), "a1: stopped (pid %ld)", (long) a_pid);
	like(out, line, "a1 stopped");
	like(out, "b1: stopped (pid ", "b1 stopped");
	is_int(pid_of("a1"), 0, "clean stop removes a1's pid file");
	is_int(pid_of("b1"), 0, "clean stop removes b1's pid file");

	is_int(ctl("--cluster", cluster, "stop", "all"), 0, "stopping stopped nodes exits 0");
	like(out, "a1: not running", "stop of a stopped node says so");

	snprintf(bad, sizeof(bad), "%s/c1.conf", cluster);
	write_text_file(bad, "node_id = c1\naz = az3\nlisten_url = tcp://127.0.0.1:99999\ndata_dir = d\n");
	is_int(ctl("--cluster", cluster, "status", NULL), 2, "invalid node config exits 2");
	like(out, "c1.conf:3: invalid listen_url", "invalid node config reported with FILE:LINE");
	write_text_file(bad, "node_id = a1\naz = az3\nlisten_url = tcp://127.0.0.1:9\ndata_dir = d\n");
	is_int(ctl("--cluster", cluster, "status", NULL), 2, "duplicate node id exits 2");
	like(out, "node_id 'a1' is also used by", "duplicate node id reported");
	unlink(bad);

	remove_tree(tmpdir);
	return done_testing();
}
