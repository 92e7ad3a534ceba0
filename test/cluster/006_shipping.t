# test/cluster/006_shipping.t: the compute ships its WAL to six storage nodes
# (aurora.shipping) and commits wait for the volume durable LSN (core hook
# syncrep_wait_hook, src/commit_wait.c).  Checked from storage: every commit a
# client saw acknowledged is in PG 0's log on at least four nodes, also while
# two nodes are down; with three down commits wait (reads go on) and resume
# once the nodes are back; a restarted compute resumes shipping without
# contradicting what storage holds; all six segments converge; a compute
# whose geometry differs from the volume's refuses to run; a shipper that
# restarts behind a bulk load catches up from its slot.
use strict;
use warnings;
use Test::More;
use POSIX ();
use Time::HiRes qw(usleep time);
use AuroraCluster qw(lsn);

my $c = AuroraCluster->new(shipping => 1);
my @nodes = qw(a1 a2 b1 b2 c1 c2);
$c->node_conf_set($_, 'gossip_interval_ms', 100) for @nodes;
$c->compute_conf_append(join "\n", "aurora.protection_groups = 4",
	"aurora.blocks_per_segment = 128", "max_prepared_transactions = 2");
# what cluster.sh init wrote before commits waited through their own hook:
# cluster.sh start must take it out, or every commit would wait for ever
$c->compute_conf_append("synchronous_standby_names = 'aurora_shipper'");
$c->start;
is($c->safe_psql('SHOW synchronous_standby_names'), '',
	'cluster.sh start removes the synchronous standby an earlier init named');

ok($c->poll_query_until('SELECT vdl IS NOT NULL FROM aurora.watermarks()', 't'),
	'the shipper ships');
is($c->safe_psql(
		"SELECT active_pid = (SELECT pid FROM pg_stat_activity WHERE backend_type = 'aurora WAL shipper') "
		  . "FROM pg_replication_slots WHERE slot_name = 'aurora_shipper' AND slot_type = 'physical'"),
	't', 'it holds the physical slot aurora_shipper, which keeps the WAL it has not shipped');
is($c->safe_psql('SELECT count(*) FROM pg_stat_replication'), '0',
	'no walsender and no synchronous_standby_names: commits wait for VDL on their own');
$c->safe_psql('CREATE TABLE t (id int PRIMARY KEY, v text)');
$c->safe_psql('CREATE TABLE u (v text)');

# One transaction per call; returns its xid once COMMIT was acknowledged.
# Also checks the commit rule from SQL: right after COMMIT returns, VDL is
# past the WAL insert position taken just before the commit record, and
# VDL never goes backwards.
my $next = 1;
my ($vdl_ok, $vdl_monotonic, $last_vdl) = (1, 1, 0);
sub commit_one
{
	my $id = $next++;
	my ($rc, $out) = $c->psql(
		"BEGIN; INSERT INTO t VALUES ($id, repeat('x', 100)); "
		  . "SELECT txid_current() || ' ' || pg_current_wal_insert_lsn(); COMMIT; "
		  . "SELECT vdl FROM aurora.watermarks();");
	return undef unless $rc == 0 && $out =~ m{^(\d+) (\S+)\n(\S+)$}m;
	my ($xid, $before, $vdl) = ($1, lsn($2), lsn($3));
	$vdl_ok        &&= $vdl > $before;
	$vdl_monotonic &&= $vdl >= $last_vdl;
	$last_vdl = $vdl;
	return $xid;
}

# Every xid of @$xids has its commit record in PG 0 on at least $min of @which.
sub all_held_by
{
	my ($xids, $min, @which) = @_;
	my $held = $c->commits_on_nodes(@which);
	my @short = grep { ($held->{$_} // 0) < $min } @$xids;
	diag("commits on fewer than $min nodes: @short") if @short;
	return !@short;
}

is($c->safe_psql('SELECT count(*), bool_and(write_quorum_available), min(segments_up) FROM aurora.protection_groups'),
	'4|t|6', 'aurora.protection_groups: four PGs, all six segments up, write quorum available');
my @acked;
push @acked, grep { defined } map { commit_one() } 1 .. 50;
is(scalar @acked, 50, '50 transactions committed with all six nodes up');
ok($vdl_ok, 'after each COMMIT returned, aurora.watermarks() shows VDL past its commit record');
is($c->safe_psql(
		"SELECT count(*), sum(segments), bool_and(bytes > records * 24 AND batches > 0 AND acks > 0) "
		  . "FROM aurora.shipping_stats()"),
	'6|24|t', 'aurora.shipping_stats(): six nodes, 24 segments, batches went to every node and were acknowledged');
cmp_ok($c->safe_psql("SELECT min(records) FROM aurora.shipping_stats()"), '>=', 50,
	'every node received at least the 50 commit records (PG 0 is on all six)');
ok($vdl_monotonic, 'and VDL only moved forward');
ok(all_held_by(\@acked, 4, @nodes), 'every acknowledged commit is in PG 0 on at least 4 nodes');

# --- two nodes of different AZs down: commits go on ------------------------
my ($rc, $out) = $c->ctl('kill', 'a1', 'b1');
is($rc, 0, 'kill -9 a1 and b1') or diag($out);
my @acked2 = grep { defined } map { commit_one() } 1 .. 30;
is(scalar @acked2, 30, '30 more commits with two nodes down');
ok(all_held_by(\@acked2, 4, qw(a2 b2 c1 c2)), 'each is on all four nodes left');
ok($c->poll_query_until(
		"SELECT string_agg(DISTINCT node_id, ',' ORDER BY node_id) FROM aurora.segments WHERE state = 'down'",
		'a1,b1'),
	'aurora.segments shows the segments of a1 and b1 down');
ok($c->poll_query_until(
		'SELECT bool_and(write_quorum_available), max(segments_up) FROM aurora.protection_groups',
		't|4'),
	'every PG still has a write quorum, with four segments up (idle PGs too: the shipper probes)');
push @acked, @acked2;

# --- a third node down: commits wait, reads go on -------------------------
($rc, $out) = $c->ctl('kill', 'c1');
my $t0 = time();
my $pid = fork();
if ($pid == 0)
{
	my $xid = commit_one();
	# _exit: the child must not run the cluster's destructor (it would stop it)
	POSIX::_exit(defined $xid ? 0 : 1);
}
$next++;						# the child took that id
usleep(3_000_000);
ok(waitpid($pid, 1) == 0, 'with three of six down a commit waits (still waiting after 3 s)');
is($c->safe_psql('SELECT count(*) FROM t'), '80', 'reads keep working meanwhile');
like($c->safe_psql("SELECT vdl_lag_bytes > 0 AND vdl_age > '1 s' FROM aurora.watermarks()"),
	qr/^t$/, 'the watermarks show VDL stuck behind the local flush');
ok($c->poll_query_until(
		"SELECT count(*) FROM aurora.protection_groups WHERE NOT write_quorum_available AND read_quorum_available",
		'4'),
	'aurora.protection_groups shows every PG without a write quorum (each kept a read quorum)');

# stock PostgreSQL would end the wait on a cancel and show the row to others
is($c->safe_psql(
		"SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"),
	'1', 'cancel the waiting commit');
usleep(1_000_000);
ok(waitpid($pid, 1) == 0, 'the cancel is refused: the commit keeps waiting');
is($c->safe_psql('SELECT count(*) FROM t'), '80',
	'and no other session sees its row while storage does not hold it');
is($c->safe_psql(
		"SET synchronous_commit = local; INSERT INTO u VALUES ('local'); SELECT count(*) FROM u"),
	'1', 'synchronous_commit = local is a session\'s choice not to wait for storage, as for standbys');
# a prepared transaction must be durable before PREPARE returns (it may be
# committed later from another session, or after a crash)
my $prep = fork();
if ($prep == 0)
{
	my ($prc) = $c->psql("BEGIN; INSERT INTO u VALUES ('prepared'); PREPARE TRANSACTION 'p1';");
	POSIX::_exit($prc);
}
ok($c->poll_query_until("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", '2'),
	'PREPARE TRANSACTION waits for storage too');
($rc, $out) = $c->ctl('start', 'a1', 'b1', 'c1');
is($rc, 0, 'the three nodes come back') or diag($out);
waitpid($prep, 0);
is($? >> 8, 0, 'then PREPARE completes');
$c->safe_psql("COMMIT PREPARED 'p1'");
is($c->safe_psql('SELECT count(*) FROM u'), '2',
	'and COMMIT PREPARED, whose record waits for VDL as well, makes its row visible');
waitpid($pid, 0);
is($? >> 8, 0, 'and the waiting commit completes');
is($c->safe_psql('SELECT count(*) FROM t'), '81', 'its row is there');

# --- the compute restarts (immediate): shipping resumes -------------------
my $prefix = $ENV{AURORA_PG_PREFIX};
# every start of a shipping compute is prepared from the volume (issue 19)
sub prepare_or_bail
{
	my ($prc, $pout) = $c->prepare_compute;
	BAIL_OUT("aurora-compute-init start failed: $pout") if $prc != 0;
}
system("$prefix/bin/pg_ctl -D " . $c->dir . "/pgdata -m immediate stop >/dev/null 2>&1");
prepare_or_bail();
system("$prefix/bin/pg_ctl -D " . $c->dir . "/pgdata -l " . $c->dir . "/postgres.log start -w >/dev/null 2>&1");
ok($c->poll_query_until('SELECT vdl IS NOT NULL FROM aurora.watermarks()', 't'),
	'after an immediate restart the shipper is back');
my @acked3 = grep { defined } map { commit_one() } 1 .. 20;
is(scalar @acked3, 20, '20 commits after the restart');
push @acked, @acked3;
is($c->refused_records, '0', 'resending after the restart contradicted nothing in storage');

# --- a crash while storage lacks a write quorum -------------------------------
# The restart replays only up to VDL, which storage holds (aurora-compute-init
# start rebuilt the WAL from the volume): sessions start at once and read;
# a commit waits until a write quorum is back.
($rc, $out) = $c->ctl('kill', 'a1', 'b1', 'c1');
system("$prefix/bin/pg_ctl -D " . $c->dir . "/pgdata -m immediate stop >/dev/null 2>&1");
prepare_or_bail();
system("$prefix/bin/pg_ctl -D " . $c->dir . "/pgdata -l " . $c->dir . "/postgres.log -w start >/dev/null 2>&1");
is($c->safe_psql('SELECT count(*) FROM t'), '101',
	'after a crash with three nodes down, sessions start and read every committed row');
my $waiting = fork();
if ($waiting == 0)
{
	my ($wrc) = $c->psql("INSERT INTO t VALUES (1000)");
	POSIX::_exit($wrc);
}
usleep(2_000_000);
ok(waitpid($waiting, 1) == 0, 'a commit waits while only three segments of a PG are reachable');
($rc, $out) = $c->ctl('start', 'a1', 'b1', 'c1');
waitpid($waiting, 0);
is($? >> 8, 0, 'once the nodes are back the commit completes');
ok($c->poll_query_until('SELECT count(*) FROM t', '102'), 'and its row is there');

# --- convergence: every acknowledged commit on all six ---------------------
ok($c->poll_until(sub { all_held_by(\@acked, 6, @nodes) }, 30),
	'in the end every acknowledged commit is on all six nodes');
ok($vdl_ok && $vdl_monotonic, 'the commit rule and monotonic VDL held for every commit');

# --- the volume's geometry is fixed: another one refuses to run -------------
my $pgdata = $c->dir . '/pgdata';
# Whether the compute is stopped; its log so far.
sub compute_stopped { system("$prefix/bin/pg_ctl -D $pgdata status >/dev/null 2>&1") != 0 }
sub compute_log { local $/; open(my $fh, '<', $c->dir . '/postgres.log') or return ''; <$fh> }
system("$prefix/bin/pg_ctl -D $pgdata -m fast -w stop >/dev/null 2>&1");
$c->poll_until(\&compute_stopped, 60) or BAIL_OUT('the compute does not stop');
$c->compute_conf_append('aurora.protection_groups = 8');
prepare_or_bail();
system("$prefix/bin/pg_ctl -D $pgdata -l " . $c->dir . "/postgres.log -W start >/dev/null 2>&1");
ok($c->poll_until(sub { compute_log() =~ /volume in storage does not match/ && compute_stopped() }, 60),
	'a compute started with 8 protection groups on a 4-group volume shuts itself down');
like(compute_log(),
	qr/volume in storage does not match this compute's settings.*\n.*4 protection groups of 128-block chunks; this compute declares 8 of 128/,
	'and the log says why');
$c->compute_conf_append('aurora.protection_groups = 4');
prepare_or_bail();
system("$prefix/bin/pg_ctl -D $pgdata -l " . $c->dir . "/postgres.log -W start >/dev/null 2>&1");
ok($c->poll_query_until('SELECT count(*) FROM t', '102'),
	'with the right geometry it starts again, every row there');

# --- a configuration from before 0.4 is called out --------------------------
unlike(compute_log(), qr/which is no longer a standby/,
	'no warning while synchronous_standby_names does not name the shipper');
$c->safe_psql("ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (aurora_shipper, other)'");
$c->safe_psql('SELECT pg_reload_conf()');
ok($c->poll_until(sub {
			compute_log() =~ /WARNING:  aurora shipper: synchronous_standby_names names "aurora_shipper", which is no longer a standby/;
		}, 20),
	'after a reload to a setting that still names aurora_shipper (commits would wait for ever) it logs a WARNING');
$c->safe_psql('ALTER SYSTEM RESET synchronous_standby_names');
$c->safe_psql('SELECT pg_reload_conf()');

# --- the shipper fails: the postmaster starts it again ----------------------
my $shipper = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'aurora WAL shipper'";
my $old_pid = $c->safe_psql($shipper);
like($old_pid, qr/^\d+$/, 'the shipper runs as a background worker');
is($c->safe_psql("SELECT pg_terminate_backend($old_pid)"), 't', 'terminate it (as if it failed)');
ok($c->poll_until(sub { my $p = $c->safe_psql($shipper); $p =~ /^\d+$/ && $p ne $old_pid }, 30),
	'the postmaster starts a new shipper');
my @acked4 = grep { defined } map { commit_one() } 1 .. 10;
is(scalar @acked4, 10, 'commits go on through the new shipper');
ok(all_held_by(\@acked4, 4, @nodes), 'and are in PG 0 on at least four nodes');
ok($vdl_ok && $vdl_monotonic, 'with VDL past each of them, never going backwards');

# --- catching up: the shipper falls behind a bulk load ----------------------
# Commits leave the shipper's read position late in a page.  Then it is
# stopped (SIGSTOP) while a session that does not wait for storage
# (synchronous_commit = local) COPYs 400 000 rows of about 100 bytes: some 50
# MB of WAL, as multi-insert records of about 6.6 KB, nearly all spanning
# pages.  Resumed, the shipper reads pg_wal in chunks from that position, and
# a chunk's end must never cut such a record: the XLogReader takes a record's
# first page whole once it has its header.  (Chunks of a fixed size from late
# in a page end late in a page too, inside most such records' first page.)
my $flush_offset = "SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint % 8192";
for (1 .. 20)
{
	my $off = $c->safe_psql($flush_offset);
	last if $off >= 7200 && $off < 8100;
	my $pad = (7600 - $off) % 8192;
	$pad = 8192 + $pad - 200 if $pad < 200;
	$c->safe_psql("SELECT pg_logical_emit_message(true, 'pad', repeat('x', $pad))");
}
cmp_ok($c->safe_psql($flush_offset), '>=', 7200,
	'commits end late in a page, and the shipper has read up to there');
# (the LSN allocation limit would hold the load back at 32 MB beyond VDL:
# off here, this part is about the slot and the shipper's reading)
$c->safe_psql('ALTER SYSTEM SET aurora.lsn_allocation_limit = 0');
$c->safe_psql('SELECT pg_reload_conf()');
ok($c->poll_query_until('SHOW aurora.lsn_allocation_limit', '0'), 'the LSN allocation limit is off for the bulk load');
my $shipper_pid = $c->safe_psql($shipper);
ok(kill('STOP', $shipper_pid), 'stop the shipper');
$c->safe_psql("SET synchronous_commit = local; CREATE TABLE bulk (id int, pad text DEFAULT repeat('x', 80)); "
	  . "COPY bulk (id) FROM PROGRAM 'seq 1 400000'");
my $bulk_end = $c->safe_psql('SELECT pg_current_wal_flush_lsn()');
my $behind = $c->safe_psql(
	"SELECT pg_wal_lsn_diff('$bulk_end', restart_lsn) FROM pg_replication_slots WHERE slot_name = 'aurora_shipper'");
cmp_ok($behind, '>', 32 * 1024 * 1024,
	'meanwhile the slot keeps the WAL of the bulk load (more than 32 MB of it)');
ok(kill('CONT', $shipper_pid), 'resume the shipper');
ok($c->poll_query_until("SELECT vdl >= '$bulk_end' FROM aurora.watermarks()", 't'),
	'it catches up: VDL passes the end of the bulk load');
unlike(compute_log(), qr/cannot decode WAL/, 'reading it in chunks never cut a record');
is($c->safe_psql($shipper), $shipper_pid, 'the same shipper did it, without restarting');
$c->safe_psql('ALTER SYSTEM RESET aurora.lsn_allocation_limit');
$c->safe_psql('SELECT pg_reload_conf()');
is($c->safe_psql('SELECT count(*) FROM bulk'), '400000', 'the rows are there');

# --- a fast stop while a commit waits: it waits for storage, then stops -----
($rc, $out) = $c->ctl('kill', 'a1', 'b1', 'c1');
my $rows = $c->safe_psql('SELECT count(*) FROM t');
$pid = fork();
if ($pid == 0) { commit_one(); POSIX::_exit(0); }
$next++;
ok($c->poll_query_until("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", '1'),
	'with three nodes down a commit waits');
my $stopper = fork();
if ($stopper == 0)
{
	open(STDOUT, '>', '/dev/null');
	exec("$prefix/bin/pg_ctl", '-D', $pgdata, '-m', 'fast', '-w', '-t', '120', 'stop');
}
usleep(3_000_000);
ok(waitpid($stopper, 1) == 0 && !compute_stopped(),
	'pg_ctl stop -m fast waits while the commit is not durable');
($rc, $out) = $c->ctl('start', 'a1', 'b1', 'c1');
is($rc, 0, 'the nodes come back') or diag($out);
my $t_back = time();
waitpid($stopper, 0);
is($? >> 8, 0, 'then the fast stop completes');
note(sprintf('stopped %.1f s after the nodes came back', time() - $t_back));
waitpid($pid, 0);
like(compute_log(), qr/aurora shipper: stopping at VDL/, 'the shipper stopped only after the waiting commit');
prepare_or_bail();
system("$prefix/bin/pg_ctl -D $pgdata -l " . $c->dir . "/postgres.log -w start >/dev/null 2>&1");
ok($c->poll_query_until('SELECT count(*) FROM t', $rows + 1),
	'after a restart the commit that waited is there');

$c->stop;
done_testing();
