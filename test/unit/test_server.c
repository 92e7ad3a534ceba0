/*
 * test_server.c - end-to-end tests of the aurora-storage daemon through the
 * client library: start the real binary on a free loopback port, query
 * STATUS, send malformed messages and check each gets the right ERROR while
 * the node keeps serving, several requests on one connection (pipelining,
 * a damaged one among them), the fan-out timeout with a dead node, the
 * data directory lock, pid file rules and clean shutdown on SIGTERM.
 */
#define _DEFAULT_SOURCE

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "link.h"
#include "tap.h"
#include "testutil.h"
#include "util.h"
#include "wire.h"

#define MAX_BODY 65536

static char tmpdir[512];
static char conf_path[700];
static char log_path[700];
static char pid_path[700];
static char url[128];
static const char *daemon_bin;

static void
write_config(const char *path, const char *node_id, const char *data_dir,
			 const char *listen, const char *extra)
{
	char		text[2048];

	snprintf(text, sizeof(text),
			 "node_id = %s\naz = az-test\nlisten_url = %s\ndata_dir = %s\n"
			 "max_message_bytes = %d\n%s",
			 node_id, listen, data_dir, MAX_BODY, extra);
	write_text_file(path, text);
}

/* Start the daemon on a fresh port; retry if another process grabs it first. */
static pid_t
start_daemon(void)
{
	int			attempt;

	for (attempt = 0; attempt < 5; attempt++)
	{
		char		data_dir[700];
		char	   *argv[] = {(char *) daemon_bin, (char *) "--config", conf_path, NULL};
		pid_t		pid;
		int			status;

		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_tcp_port());
		snprintf(data_dir, sizeof(data_dir), "%s/data", tmpdir);
		write_config(conf_path, "t1", data_dir, url, "");
		pid = spawn_logged(argv, log_path);
		if (wait_for_status(url, pid, 10000))
			return pid;
		kill(pid, SIGKILL);
		wait_child(pid, 5000, &status);
		diag("daemon did not come up on %s (attempt %d), retrying", url, attempt + 1);
	}
	{
		char		log[4096];

		read_text_file(log_path, log, sizeof(log));
		bail_out("daemon never answered STATUS; log:\n%s", log);
	}
}

static aurora_status_body
get_status(void)
{
	const char *const urls[1] = {url};
	aurora_status_result r;

	aurora_status_many(urls, 1, 2000, &r);
	if (!r.reachable || r.error[0] != '\0')
		diag("STATUS failed: %s", r.error);
	return r.status;
}

static size_t
valid_message(uint16_t type, const void *body, size_t body_len, uint64_t request_id,
			  uint8_t *out, size_t cap)
{
	aurora_header h;

	memset(&h, 0, sizeof(h));
	h.type = type;
	h.request_id = request_id;
	h.volume_epoch = 11;
	h.membership_epoch = 12;
	h.pg_id = 13;
	return aurora_encode(&h, body, body_len, out, cap);
}

/*
 * Send raw bytes and expect an ERROR reply with the given code; checks the
 * reply itself is well formed and echoes request_id when one was readable.
 */
static void
expect_error_reply(const char *name, const uint8_t *msg, size_t len, uint32_t code,
				   uint64_t echo_request_id, const char *text)
{
	uint8_t    *reply = NULL;
	size_t		reply_len = 0;
	char		err[256];
	aurora_header h;
	const uint8_t *body;
	aurora_error_body e;
	int			rc;

	rc = aurora_request(url, 2000, msg, len, &reply, &reply_len, err, sizeof(err));
	if (!ok(rc == 0, "%s: node replies", name))
	{
		diag("aurora_request: %s", err);
		return;
	}
	rc = aurora_decode(reply, reply_len, AURORA_ERROR_BODY_MAX, &h, &body);
	is_int(rc, 0, "%s: reply is a valid message", name);
	is_uint(h.type, AURORA_MSG_ERROR, "%s: reply is ERROR", name);
	is_uint(h.version, AURORA_PROTOCOL_VERSION, "%s: reply carries our protocol version", name);
	is_uint(h.request_id, echo_request_id, "%s: reply echoes request_id", name);
	is_int(aurora_error_body_decode(body, h.body_len, &e), 0, "%s: ERROR body decodes", name);
	is_str(aurora_error_name(e.code), aurora_error_name(code), "%s: error code", name);
	if (text != NULL)
		like(e.message, text, "%s: message explains", name);
	free(reply);
}

static void
test_status(pid_t pid)
{
	const char *const urls[1] = {url};
	aurora_status_result r;
	char		pidtext[64];
	char		expect[64];

	aurora_status_many(urls, 1, 2000, &r);
	ok(r.reachable, "node is reachable");
	is_str(r.error, "", "STATUS has no error");
	is_str(r.status.node_id, "t1", "STATUS node_id");
	is_str(r.status.az, "az-test", "STATUS az");
	is_str(r.status.state, "serving", "STATUS state");
	is_int(r.status.pid, pid, "STATUS pid is the daemon's");
	is_int(r.status.protocol_version, AURORA_PROTOCOL_VERSION, "STATUS protocol version");
	is_int(r.status.segments, 0, "no segments yet");
	ok(r.status.requests_total >= 1, "requests are counted");
	ok(r.rtt_ms > 0 && r.rtt_ms < 2000, "rtt measured (%.3f ms)", r.rtt_ms);

	read_text_file(pid_path, pidtext, sizeof(pidtext));
	snprintf(expect, sizeof(expect), "%ld\n", (long) pid);
	is_str(pidtext, expect, "pid file holds the daemon's pid");
}

static void
test_malformed(void)
{
	aurora_status_body before = get_status();
	aurora_status_body after;
	uint8_t		msg[MAX_BODY + 2 * AURORA_HEADER_SIZE];
	uint8_t	   *big;
	size_t		n;
	int			sent = 0;
	uint8_t		errors[AURORA_ERR_COUNT] = {0};

	n = valid_message(AURORA_MSG_STATUS_REQ, NULL, 0, 101, msg, sizeof(msg));
	msg[0] = 'X';
	expect_error_reply("bad magic", msg, n, AURORA_ERR_BAD_MAGIC, 101, "magic");
	errors[AURORA_ERR_BAD_MAGIC]++;

	n = valid_message(AURORA_MSG_STATUS_REQ, "ab", 2, 102, msg, sizeof(msg));
	msg[AURORA_HEADER_SIZE + 1] ^= 0x40;
	expect_error_reply("bad crc", msg, n, AURORA_ERR_BAD_CRC, 102, "CRC32C");
	errors[AURORA_ERR_BAD_CRC]++;

	n = valid_message(AURORA_MSG_STATUS_REQ, NULL, 0, 103, msg, sizeof(msg));
	expect_error_reply("truncated header", msg, 30, AURORA_ERR_MALFORMED, 0, "shorter than the 56-byte header");
	errors[AURORA_ERR_MALFORMED]++;

	expect_error_reply("empty message", msg, 0, AURORA_ERR_MALFORMED, 0, NULL);
	errors[AURORA_ERR_MALFORMED]++;

	n = valid_message(999, NULL, 0, 104, msg, sizeof(msg));
	expect_error_reply("unknown type", msg, n, AURORA_ERR_UNKNOWN_TYPE, 104, "unknown message type 999");
	errors[AURORA_ERR_UNKNOWN_TYPE]++;

	n = valid_message(AURORA_MSG_STATUS_RESP, NULL, 0, 105, msg, sizeof(msg));
	expect_error_reply("reply type sent as request", msg, n, AURORA_ERR_UNKNOWN_TYPE, 105, "not a request");
	errors[AURORA_ERR_UNKNOWN_TYPE]++;

	n = valid_message(AURORA_MSG_STATUS_REQ, NULL, 0, 106, msg, sizeof(msg));
	msg[AURORA_OFF_BODY_LEN + 3] = 0x7f;
	expect_error_reply("oversized body_len", msg, n, AURORA_ERR_TOO_LARGE, 106, "exceeds this node's limit of 65536");
	errors[AURORA_ERR_TOO_LARGE]++;

	big = calloc(1, MAX_BODY + 1 + AURORA_HEADER_SIZE);
	n = valid_message(AURORA_MSG_STATUS_REQ, big, MAX_BODY + 1, 107, big, MAX_BODY + 1 + AURORA_HEADER_SIZE);
	expect_error_reply("real body one byte over the limit", big, n, AURORA_ERR_TOO_LARGE, 107, NULL);
	errors[AURORA_ERR_TOO_LARGE]++;
	free(big);

	n = valid_message(AURORA_MSG_STATUS_REQ, NULL, 0, 108, msg, sizeof(msg));
	msg[AURORA_OFF_VERSION] = 9;
	expect_error_reply("unknown version", msg, n, AURORA_ERR_BAD_VERSION, 108, "speaks version 1");
	errors[AURORA_ERR_BAD_VERSION]++;

	n = valid_message(AURORA_MSG_STATUS_REQ, "xyz", 3, 109, msg, sizeof(msg));
	expect_error_reply("body_len mismatch", msg, n - 1, AURORA_ERR_MALFORMED, 109, "does not match");
	errors[AURORA_ERR_MALFORMED]++;

	n = valid_message(AURORA_MSG_STATUS_REQ, "xyz", 3, 110, msg, sizeof(msg));
	expect_error_reply("STATUS_REQ with a body", msg, n, AURORA_ERR_MALFORMED, 110, "empty body");
	errors[AURORA_ERR_MALFORMED]++;

	after = get_status();
	for (n = 0; n < AURORA_ERR_COUNT; n++)
		sent += errors[n];
	is_uint(after.errors_total - before.errors_total, sent, "errors_total grew by %d", sent);
	for (n = 1; n < AURORA_ERR_COUNT; n++)
		is_uint(after.errors_by_code[n] - before.errors_by_code[n], errors[n],
				"errors_by_code[%s] grew by %d", aurora_error_name((uint32_t) n), errors[n]);
	/* The requests, plus the STATUS that fetched "after". */
	is_uint(after.requests_total - before.requests_total, sent + 1, "requests_total counts every message");
	is_str(after.state, "serving", "node still serving after malformed input");
}

static void
test_beyond_receive_limit(void)
{
	size_t		len = MAX_BODY + AURORA_HEADER_SIZE + 4096 + 1000;
	uint8_t    *msg = calloc(1, len);
	uint8_t    *reply = NULL;
	size_t		reply_len;
	char		err[256];
	int			rc;
	aurora_status_body s;

	rc = aurora_request(url, 700, msg, len, &reply, &reply_len, err, sizeof(err));
	ok(rc != 0 && reply == NULL, "message above the receive limit gets no reply (%s)", err);
	free(msg);
	s = get_status();
	is_str(s.state, "serving", "node still serving after an oversized message");
}

/*
 * Three requests written back to back on one connection, the middle one
 * damaged: three replies, in order, and the connection survives the bad one.
 */
static void
test_pipelining(void)
{
	nng_stream_dialer *d;
	aurora_link *link;
	uint8_t		req[AURORA_HEADER_SIZE];
	uint8_t		junk[AURORA_HEADER_SIZE];
	size_t		n;
	char		err[256];
	static const struct
	{
		uint16_t	type;
		uint64_t	request_id;
	}			expect[3] = {
		{AURORA_MSG_STATUS_RESP, 501}, {AURORA_MSG_ERROR, 0}, {AURORA_MSG_STATUS_RESP, 503}
	};
	int			in_order = 0;

	if (aurora_dialer_open(url, &d, err, sizeof(err)) != 0 ||
		aurora_link_dial(d, 2000, true, &link) != 0)
		bail_out("cannot connect to %s: %s", url, err);
	n = valid_message(AURORA_MSG_STATUS_REQ, NULL, 0, 501, req, sizeof(req));
	ok(aurora_link_send(link, req, n, 2000) == 0, "first request sent");
	memset(junk, 0xA5, sizeof(junk));
	memset(junk + 40, 0, 8);	/* where request_id would be */
	ok(aurora_link_send(link, junk, sizeof(junk), 2000) == 0, "damaged request sent on the same connection");
	n = valid_message(AURORA_MSG_STATUS_REQ, NULL, 0, 503, req, sizeof(req));
	ok(aurora_link_send(link, req, n, 2000) == 0, "third request sent without waiting");
	for (int i = 0; i < 3; i++)
	{
		const uint8_t *msg;
		size_t		len;
		aurora_header h;

		if (aurora_link_recv(link, 1 << 20, 2000, &msg, &len) != 0 ||
			aurora_decode(msg, len, 1 << 20, &h, NULL) != 0)
			break;
		if (h.type == expect[i].type && h.request_id == expect[i].request_id)
			in_order++;
		else
			diag("reply %d: %s, request_id %llu", i, aurora_msg_type_name(h.type),
				 (unsigned long long) h.request_id);
	}
	is_int(in_order, 3, "three replies in request order, an ERROR for the damaged one");
	{
		/* NNG 1.5.2 never ends an operation started after its stream closed */
		const uint8_t *msg;
		size_t		len;

		aurora_link_shutdown(link);
		is_int(aurora_link_recv(link, 1 << 20, 3000, &msg, &len), NNG_ECLOSED,
			   "a receive after shutdown fails at once, not after its timeout");
		is_int(aurora_link_send(link, req, n, 3000), NNG_ECLOSED, "so does a send");
	}
	aurora_link_free(link);
	nng_stream_dialer_free(d);
}

static void
test_fanout(void)
{
	char		dead[64];
	const char *urls[3];
	aurora_status_result r[3];
	double		t0;
	double		elapsed;
	const char *many[8];
	aurora_status_result rm[8];
	int			good = 0;
	int			i;

	snprintf(dead, sizeof(dead), "tcp://127.0.0.1:%d", free_tcp_port());
	urls[0] = url;
	urls[1] = dead;
	urls[2] = "bogus://nowhere";
	t0 = aurora_monotonic_ms();
	aurora_status_many(urls, 3, 1000, r);
	elapsed = aurora_monotonic_ms() - t0;
	ok(elapsed < 1000 + test_ms(300), "fan-out with a dead node returns within timeout + epsilon (%.0f ms)", elapsed);
	ok(r[0].reachable && r[0].error[0] == '\0', "live node answered");
	is_str(r[0].status.node_id, "t1", "live node's status decoded");
	ok(!r[1].reachable, "dead node is unreachable");
	ok(r[1].error[0] != '\0', "dead node has an error (%s)", r[1].error);
	ok(!r[2].reachable, "invalid URL is unreachable");
	like(r[2].error, "cannot dial", "invalid URL error says so");

	for (i = 0; i < 8; i++)
		many[i] = url;
	aurora_status_many(many, 8, 2000, rm);
	for (i = 0; i < 8; i++)
		if (rm[i].reachable && rm[i].error[0] == '\0')
			good++;
	is_int(good, 8, "8 concurrent STATUS requests to one node all succeed");
}

static void
test_second_daemon(void)
{
	char		log2[800];
	char		text[4096];
	char	   *argv[] = {(char *) daemon_bin, (char *) "--config", conf_path, NULL};
	pid_t		pid;
	int			status = 0;

	snprintf(log2, sizeof(log2), "%s/second.log", tmpdir);
	pid = spawn_logged(argv, log2);
	ok(wait_child(pid, 5000, &status), "second daemon on the same data_dir exits");
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 1, "second daemon exits with status 1");
	read_text_file(log2, text, sizeof(text));
	like(text, "in use by another aurora-storage", "second daemon explains the data_dir lock");
}

static void
test_pid_file_guard(pid_t running)
{
	char		conf2[800];
	char		data2[800];
	char		extra[900];
	char		log2[800];
	char		text[4096];
	char	   *argv[] = {(char *) daemon_bin, (char *) "--config", conf2, NULL};
	pid_t		pid;
	int			status = 0;

	/* Another data_dir, but the same pid file as the running node. */
	snprintf(conf2, sizeof(conf2), "%s/other.conf", tmpdir);
	snprintf(data2, sizeof(data2), "%s/data-other", tmpdir);
	snprintf(extra, sizeof(extra), "pid_file = %s\n", pid_path);
	snprintf(log2, sizeof(log2), "%s/other.log", tmpdir);
	write_config(conf2, "t2", data2, "tcp://127.0.0.1:1", extra);
	pid = spawn_logged(argv, log2);
	ok(wait_child(pid, 5000, &status), "daemon whose pid file names a live node exits");
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 1, "...with status 1");
	read_text_file(log2, text, sizeof(text));
	snprintf(extra, sizeof(extra), "names running aurora-storage process %ld", (long) running);
	like(text, extra, "...explaining which process holds the pid file");
}

static void
test_arguments(void)
{
	char		out[4096];
	char		bad[800];
	char	   *version[] = {(char *) daemon_bin, (char *) "--version", NULL};
	char	   *unknown[] = {(char *) daemon_bin, (char *) "--frobnicate", NULL};
	char	   *none[] = {(char *) daemon_bin, NULL};
	char	   *badconf[] = {(char *) daemon_bin, (char *) "--config", bad, NULL};

	is_int(run_capture(version, out, sizeof(out)), 0, "--version exits 0");
	like(out, "aurora-storage 0.1.0 (protocol 1)", "--version prints version and protocol");
	is_int(run_capture(unknown, out, sizeof(out)), 2, "unknown argument exits 2");
	like(out, "Usage:", "unknown argument prints usage");
	is_int(run_capture(none, out, sizeof(out)), 2, "missing --config exits 2");

	snprintf(bad, sizeof(bad), "%s/bad.conf", tmpdir);
	write_text_file(bad, "node_id = ok\nbogus = 1\n");
	is_int(run_capture(badconf, out, sizeof(out)), 1, "config error exits 1");
	like(out, "bad.conf:2: unknown key 'bogus'", "config error is reported with FILE:LINE");
}

static void
test_stale_pid_file(void)
{
	char	   *argv[] = {(char *) daemon_bin, (char *) "--config", conf_path, NULL};
	pid_t		dead;
	pid_t		pid;
	int			status;
	char		text[64];

	/* A pid that certainly belongs to no process: a reaped child's. */
	dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, &status, 0);
	snprintf(text, sizeof(text), "%ld\n", (long) dead);
	write_text_file(pid_path, text);

	pid = spawn_logged(argv, log_path);
	ok(wait_for_status(url, pid, 10000), "daemon starts over a stale pid file");
	kill(pid, SIGTERM);
	ok(wait_child(pid, 10000, &status) && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "restarted daemon stops cleanly");
}

int
main(void)
{
	pid_t		pid;
	int			status = -1;
	char		log[16384];

	daemon_bin = test_binary("AURORA_STORAGE_BIN", "aurora-storage");
	make_tmpdir("server-test", tmpdir, sizeof(tmpdir));
	snprintf(conf_path, sizeof(conf_path), "%s/t1.conf", tmpdir);
	snprintf(log_path, sizeof(log_path), "%s/daemon.log", tmpdir);
	snprintf(pid_path, sizeof(pid_path), "%s/data/aurora-storage.pid", tmpdir);

	test_arguments();
	pid = start_daemon();
	test_status(pid);
	test_malformed();
	test_beyond_receive_limit();
	test_pipelining();
	test_fanout();
	test_second_daemon();
	test_pid_file_guard(pid);

	kill(pid, SIGTERM);
	ok(wait_child(pid, 10000, &status), "daemon exits after SIGTERM");
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status 0 after SIGTERM");
	ok(access(pid_path, F_OK) != 0, "pid file removed on shutdown");
	read_text_file(log_path, log, sizeof(log));
	like(log, "listening on tcp://127.0.0.1:", "log has the listening line");
	like(log, "shutting down (SIGTERM)", "log has the shutdown line");
	if (!WIFEXITED(status))
		kill(pid, SIGKILL);

	test_stale_pid_file();
	remove_tree(tmpdir);
	return done_testing();
}
