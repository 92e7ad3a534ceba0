/*
 * test_config.c - unit tests of the node config parser
 * (storage_service/node/config.c): defaults, path resolution, and the exact
 * FILE:LINE message for every kind of mistake.
 */
#define _DEFAULT_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static char tmpdir[256];

static const char *
write_conf(const char *name, const char *text)
{
	static char path[512];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		bail_out("cannot write %s", path);
	return path;
}

/* Load text as a config and return the error message ("" on success). */
static const char *
load_error(const char *text, const char **path_out)
{
	static char err[1024];
	aurora_node_config cfg;
	const char *path = write_conf("t.conf", text);

	err[0] = '\0';
	if (aurora_node_config_load(path, &cfg, err, sizeof(err)) == 0)
		err[0] = '\0';
	if (path_out != NULL)
		*path_out = path;
	return err;
}

/* Expect the exact message "<path>:<suffix>" for text. */
static void
expect_error(const char *text, const char *suffix, const char *name)
{
	const char *path;
	const char *err = load_error(text, &path);
	char		expected[1024];

	snprintf(expected, sizeof(expected), "%s%s", path, suffix);
	is_str(err, expected, "%s", name);
}

#define BASE "node_id = a1\naz = az1\nlisten_url = tcp://127.0.0.1:5000\ndata_dir = /tmp/x\n"

static void
test_valid(void)
{
	aurora_node_config cfg;
	char		err[1024] = "";
	char		expect[600];
	const char *path = write_conf("ok.conf",
								  "# storage node a1\n"
								  "\n"
								  "   node_id   =   a1  \n"
								  "az=az-1_b\n"
								  "\tlisten_url = tcp://127.0.0.1:5000\t\n"
								  "  # indented comment\n"
								  "data_dir = data/a1\n");

	is_int(aurora_node_config_load(path, &cfg, err, sizeof(err)), 0, "minimal valid file loads");
	is_str(err, "", "no error message");
	is_str(cfg.node_id, "a1", "node_id trimmed");
	is_str(cfg.az, "az-1_b", "az without spaces around '='");
	is_str(cfg.listen_url, "tcp://127.0.0.1:5000", "listen_url trimmed of tabs");
	snprintf(expect, sizeof(expect), "%s/data/a1", tmpdir);
	is_str(cfg.data_dir, expect, "relative data_dir resolved against the config file's directory");
	snprintf(expect, sizeof(expect), "%s/data/a1/aurora-storage.pid", tmpdir);
	is_str(cfg.pid_file, expect, "pid_file defaults to data_dir/aurora-storage.pid");
	snprintf(expect, sizeof(expect), "%s/data/a1/aurora-storage.log", tmpdir);
	is_str(cfg.log_file, expect, "log_file defaults to data_dir/aurora-storage.log");
	is_uint(cfg.max_message_bytes, 16777216u, "max_message_bytes defaults to 16 MiB");
	is_uint(cfg.gossip_interval_ms, 250, "gossip_interval_ms defaults to 250");
	is_uint(cfg.peer_timeout_ms, 1000, "peer_timeout_ms defaults to 1000");
	snprintf(expect, sizeof(expect), "%s/ok.conf", tmpdir);
	is_str(cfg.source, expect, "source is the absolute config path");

	path = write_conf("full.conf",
					  "node_id = node_A-9\naz = c\nlisten_url = ipc:///tmp/a.sock\n"
					  "data_dir = /var/tmp/d\npid_file = /run/x.pid\nlog_file = l.log\n"
					  "max_message_bytes = 4096\ngossip_interval_ms = 0\npeer_timeout_ms = 10\n");
	is_int(aurora_node_config_load(path, &cfg, err, sizeof(err)), 0, "file with every key loads");
	is_uint(cfg.gossip_interval_ms, 0, "gossip_interval_ms 0 (off) accepted");
	is_uint(cfg.peer_timeout_ms, 10, "peer_timeout_ms lower bound accepted");
	is_str(cfg.listen_url, "ipc:///tmp/a.sock", "ipc:// URL accepted");
	is_str(cfg.pid_file, "/run/x.pid", "absolute pid_file kept");
	snprintf(expect, sizeof(expect), "%s/l.log", tmpdir);
	is_str(cfg.log_file, expect, "relative log_file resolved");
	is_uint(cfg.max_message_bytes, 4096, "max_message_bytes lower bound accepted");

	is_str(load_error("node_id=a\naz=b\nlisten_url=tcp://[::1]:7000\ndata_dir=/d\n"
					  "max_message_bytes=1073741824\n", NULL), "",
		   "IPv6 listen_url and max_message_bytes upper bound accepted");
	is_str(load_error("node_id=a\naz=b\nlisten_url=tcp://*:7000\ndata_dir=/d\n", NULL), "",
		   "wildcard host accepted");
}

static void
test_errors(void)
{
	char		err[1024];
	char		expected[600];
	aurora_node_config cfg;
	char		longid[80];

	expect_error(BASE "colour = blue\n", ":5: unknown key 'colour'", "unknown key");
	expect_error("node_id = a1\naz = az1\naz = az2\n",
				 ":3: duplicate key 'az' (first set on line 2)", "duplicate key");
	expect_error("node_id = a1\naz = az1\nlisten_url = tcp://127.0.0.1:5000\n",
				 ": missing required key 'data_dir'", "missing data_dir");
	expect_error("# nothing\n", ": missing required key 'node_id'", "empty file misses node_id");
	expect_error("node_id = a1\nlisten_url tcp://x:1\n",
				 ":2: expected 'key = value', found no '='", "line without '='");
	expect_error("node_id =\n", ":1: empty value for key 'node_id'", "empty value");
	expect_error("node_id = a b\n",
				 ":1: invalid node_id 'a b': use 1-63 characters from [A-Za-z0-9_-]",
				 "node_id with a space");
	expect_error("node_id = a/1\n",
				 ":1: invalid node_id 'a/1': use 1-63 characters from [A-Za-z0-9_-]",
				 "node_id with a slash");
	memset(longid, 'a', 64);
	longid[64] = '\0';
	snprintf(expected, sizeof(expected), "node_id = %s\n", longid);
	like(load_error(expected, NULL), ":1: invalid node_id", "64-character node_id rejected");
	expect_error("node_id = a\naz = a.z\n",
				 ":2: invalid az 'a.z': use 1-31 characters from [A-Za-z0-9_-]", "az with a dot");
	memset(longid, 'z', 32);
	longid[32] = '\0';
	snprintf(expected, sizeof(expected), "az = %s\n", longid);
	like(load_error(expected, NULL), ":1: invalid az", "32-character az rejected");

	expect_error("listen_url = tcp://127.0.0.1:70000\n",
				 ":1: invalid listen_url 'tcp://127.0.0.1:70000': port must be a number between 1 and 65535",
				 "port out of range");
	expect_error("listen_url = tcp://127.0.0.1:0\n",
				 ":1: invalid listen_url 'tcp://127.0.0.1:0': port must be a number between 1 and 65535",
				 "port 0");
	expect_error("listen_url = tcp://127.0.0.1:http\n",
				 ":1: invalid listen_url 'tcp://127.0.0.1:http': port must be a number between 1 and 65535",
				 "non-numeric port");
	expect_error("listen_url = tcp://127.0.0.1\n",
				 ":1: invalid listen_url 'tcp://127.0.0.1': tcp URL must be tcp://HOST:PORT",
				 "missing port");
	expect_error("listen_url = http://127.0.0.1:80\n",
				 ":1: invalid listen_url 'http://127.0.0.1:80': URL must be tcp://HOST:PORT or ipc://PATH",
				 "unsupported scheme");
	expect_error("listen_url = tcp://::1:80\n",
				 ":1: invalid listen_url 'tcp://::1:80': IPv6 host must be written tcp://[ADDRESS]:PORT",
				 "unbracketed IPv6");
	expect_error("listen_url = ipc://\n",
				 ":1: invalid listen_url 'ipc://': ipc:// URL needs a path", "ipc without path");

	expect_error("max_message_bytes = 4095\n",
				 ":1: max_message_bytes must be an integer between 4096 and 1073741824 (got '4095')",
				 "max_message_bytes below range");
	expect_error("max_message_bytes = 1073741825\n",
				 ":1: max_message_bytes must be an integer between 4096 and 1073741824 (got '1073741825')",
				 "max_message_bytes above range");
	expect_error("gossip_interval_ms = 3600001\n",
				 ":1: gossip_interval_ms must be an integer between 0 and 3600000 (got '3600001')",
				 "gossip_interval_ms above range");
	expect_error("peer_timeout_ms = 9\n",
				 ":1: peer_timeout_ms must be an integer between 10 and 600000 (got '9')",
				 "peer_timeout_ms below range");
	expect_error("peer_timeout_ms = 1s\n",
				 ":1: peer_timeout_ms must be an integer between 10 and 600000 (got '1s')",
				 "peer_timeout_ms with a unit");
	expect_error("max_message_bytes = 64k\n",
				 ":1: max_message_bytes must be an integer between 4096 and 1073741824 (got '64k')",
				 "max_message_bytes with a suffix");
	expect_error("max_message_bytes = -5000\n",
				 ":1: max_message_bytes must be an integer between 4096 and 1073741824 (got '-5000')",
				 "negative max_message_bytes");
	expect_error("max_message_bytes = 99999999999999999999999\n",
				 ":1: max_message_bytes must be an integer between 4096 and 1073741824 (got '99999999999999999999999')",
				 "overflowing max_message_bytes");

	snprintf(expected, sizeof(expected), "%s/missing.conf", tmpdir);
	ok(aurora_node_config_load(expected, &cfg, err, sizeof(err)) != 0, "missing file fails");
	strcat(expected, ": cannot open: No such file or directory");
	is_str(err, expected, "missing file message names the file");
}

/* The page service's keys (node/config.c, PROTOCOL.md 5.9). */
static void
test_page_keys(void)
{
	aurora_node_config cfg;
	char		err[1024] = "";
	char		expect[600];
	const char *path = write_conf("pages.conf", BASE);

	is_int(aurora_node_config_load(path, &cfg, err, sizeof(err)), 0, "no page keys: loads");
	is_str(cfg.walredo_postgres, "", "walredo_postgres unset by default (no redo)");
	is_uint(cfg.walredo_helpers, 2, "walredo_helpers defaults to 2");
	is_uint(cfg.walredo_timeout_ms, 10000, "walredo_timeout_ms defaults to 10000");
	is_uint(cfg.coalesce_threshold, 16, "coalesce_threshold defaults to 16");
	is_uint(cfg.page_threads, 4, "page_threads defaults to 4");
	path = write_conf("pages2.conf", BASE "walredo_postgres = pg/bin/postgres\nwalredo_helpers = 64\n"
					  "walredo_timeout_ms = 100\ncoalesce_threshold = 0\npage_threads = 1\n");
	is_int(aurora_node_config_load(path, &cfg, err, sizeof(err)), 0, "every page key: loads");
	snprintf(expect, sizeof(expect), "%s/pg/bin/postgres", tmpdir);
	is_str(cfg.walredo_postgres, expect, "relative walredo_postgres resolved against the file");
	ok(cfg.walredo_helpers == 64 && cfg.walredo_timeout_ms == 100 && cfg.coalesce_threshold == 0 &&
	   cfg.page_threads == 1, "bounds accepted (coalescing off with 0)");
	expect_error("walredo_helpers = 0\n",
				 ":1: walredo_helpers must be an integer between 1 and 64 (got '0')",
				 "walredo_helpers below range");
	expect_error("walredo_timeout_ms = 99\n",
				 ":1: walredo_timeout_ms must be an integer between 100 and 600000 (got '99')",
				 "walredo_timeout_ms below range");
	expect_error("coalesce_threshold = 1000001\n",
				 ":1: coalesce_threshold must be an integer between 0 and 1000000 (got '1000001')",
				 "coalesce_threshold above range");
	expect_error("page_threads = 65\n",
				 ":1: page_threads must be an integer between 1 and 64 (got '65')",
				 "page_threads above range");
}

int
main(void)
{
	char		cmd[300];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/aurora-config-test-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		bail_out("mkdtemp failed");
	{
		/* The parser reports absolute paths; compare against the real one. */
		char	   *real = realpath(tmpdir, NULL);

		if (real == NULL || strlen(real) >= sizeof(tmpdir))
			bail_out("realpath(%s) failed", tmpdir);
		strcpy(tmpdir, real);
		free(real);
	}
	test_valid();
	test_errors();
	test_page_keys();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		diag("could not remove %s", tmpdir);
	return done_testing();
}
