# test/cluster/007_pgbench_faults.t: pgbench against a shipping compute while
# storage nodes fail (issue 4's fault scenarios).  With two nodes of different
# AZs down pgbench keeps committing; with a third down commits stop within the
# request timeout while SELECT goes on and the views say which PGs lost their
# write quorum; once the nodes return commits resume and every segment's SCL
# converges; with a whole AZ down commits go on.  After every scenario the
# commit record of every transaction pgbench saw acknowledged is read back from
# the storage nodes: each must be in PG 0 on at least four of them.
#
# Which transactions were acknowledged: pgbench_history gets a column filled
# with txid_current(), so the TPC-B transaction itself records its xid; the
# rows a run added must number exactly the transactions pgbench reports as
# processed (nothing else writes), and their xids are the ones looked up in
# storage (`aurora-ctl read-log --wal` lists the commit records a node holds).
use strict;
use warnings;
use Test::More;
use IPC::Run ();
use Time::HiRes qw(usleep time);
use AuroraCluster qw(lsn);

my $prefix = $ENV{AURORA_PG_PREFIX};
my @nodes  = qw(a1 a2 b1 b2 c1 c2);

my $c = AuroraCluster->new(shipping => 1);
$c->node_conf_set($_, 'gossip_interval_ms', 100) for @nodes;
# Small chunks spread pgbench's tables over all four PGs.
$c->compute_conf_append(join "\n", "aurora.protection_groups = 4",
	"aurora.blocks_per_segment = 16");
$c->start;
ok($c->poll_query_until('SELECT vdl IS NOT NULL FROM aurora.watermarks()', 't'),
	'the shipper ships');

my @conn = ('-h', '127.0.0.1', '-p', $c->pgport, 'postgres');
my ($init_out, $init_err);
ok(IPC::Run::run([ "$prefix/bin/pgbench", '-i', '-q', '-s', '1', @conn ],
		'>', \$init_out, '2>', \$init_err),
	'pgbench -i (scale 1) through the shipping compute') or diag($init_err);
$c->safe_psql('ALTER TABLE pgbench_history ADD COLUMN xid bigint DEFAULT txid_current()');
is($c->safe_psql("SELECT count(DISTINCT pg) FROM aurora.protection_groups WHERE pgcl > '0/0'"),
	'4', 'all four PGs hold WAL');
my ($prc, $pout) = $c->ctl('placement');
is($prc, 0, 'aurora-ctl placement: the volume is where the placement puts it') or diag($pout);
like($pout, qr/^placement: volume 0x0*1 n_pgs 4 blocks_per_segment 16 nodes 6$/m,
	'with the geometry the compute created it with');
is(scalar(() = $pout =~ /^\s+\d+\s+\d+\s+\S+\s+\S+\s+ok\s/mg), 24, 'four PGs times six replicas, all ok');

# Rows in pgbench_history: one a transaction pgbench saw acknowledged.
sub history { $c->safe_psql('SELECT count(*) FROM pgbench_history') }

# pgbench in the background: TPC-B-like, 4 clients, for $seconds.
sub start_pgbench
{
	my ($seconds) = @_;
	my $run = { out => '', err => '', rows_before => history() };
	$run->{h} = IPC::Run::start(
		[ "$prefix/bin/pgbench", '-n', '-c', '4', '-j', '2', '-T', $seconds, @conn ],
		'>', \$run->{out}, '2>', \$run->{err}, IPC::Run::timeout($seconds + 120));
	return $run;
}

# Waits for pgbench; checks it succeeded and that the rows it added are
# exactly the transactions it reports as processed.
sub finish_pgbench
{
	my ($run, $what) = @_;
	my $ok = eval { $run->{h}->finish };
	ok($ok, "$what: pgbench ends without an error") or diag($run->{err} . $run->{out} . ($@ // ''));
	my ($processed) = $run->{out} =~ /number of transactions actually processed: (\d+)/;
	my ($failed)    = $run->{out} =~ /number of failed transactions: (\d+)/;
	is($failed // 0, 0, "$what: no failed transactions");
	is(history() - $run->{rows_before}, $processed // -1,
		"$what: the $processed transactions pgbench saw acknowledged each left their history row");
}

# VCL and VDL sampled during the runs: they never go backwards, and VDL is
# never past the local flush (storage cannot hold WAL the compute has not
# written).
my ($last_vcl, $last_vdl, $watermarks_ok, $samples) = (0, 0, 1, 0);
sub sample_watermarks
{
	my ($rc, $out) = $c->psql('SELECT flush_lsn, vcl, vdl FROM aurora.watermarks()');
	return unless $rc == 0 && $out =~ m{^(\S+)\|(\S+)\|(\S+)$};
	my ($flush, $vcl, $vdl) = (lsn($1), lsn($2), lsn($3));
	if ($vcl < $last_vcl || $vdl < $last_vdl || $vdl > $flush || $vdl > $vcl)
	{
		diag("watermarks went wrong: flush $1 vcl $2 vdl $3 after vcl $last_vcl vdl $last_vdl");
		$watermarks_ok = 0;
	}
	($last_vcl, $last_vdl) = ($vcl, $vdl);
	$samples++;
}

# Keeps sampling for $seconds.
sub watch
{
	my ($seconds) = @_;
	my $end = time() + $seconds;
	while (time() < $end) { sample_watermarks(); usleep(200_000); }
}

# Every xid in pgbench_history is in PG 0 on at least $min nodes (polled:
# a node that was behind may still be receiving them).
sub acknowledged_held_by
{
	my ($min, $what) = @_;
	my @xids = split /\n/, $c->safe_psql('SELECT xid FROM pgbench_history ORDER BY xid');
	my @short;
	$c->poll_until(sub {
			my $held = $c->commits_on_nodes(@nodes);
			@short = grep { ($held->{$_} // 0) < $min } @xids;
			!@short;
		}, 20);
	ok(!@short, "$what: the commit records of all " . scalar(@xids)
		  . " acknowledged transactions are in PG 0 on at least $min nodes")
	  or diag(scalar(@short) . " are not, e.g. @short[0 .. ($#short < 9 ? $#short : 9)]");
}

# Every PG's six segments report the same SCL, and the shipper sees them all
# up with nothing left to send.
sub converged
{
	return 0 unless $c->scl_converged(4, @nodes);
	my ($rc, $out) = $c->psql(
		"SELECT count(*) FILTER (WHERE state = 'up' AND lag_bytes = 0) FROM aurora.segments");
	return $rc == 0 && $out eq '24';
}

# --- healthy storage -------------------------------------------------------
my $run = start_pgbench(4);
watch(4);
finish_pgbench($run, 'six nodes up');
acknowledged_held_by(4, 'six nodes up');

# --- two nodes of different AZs killed under pgbench -----------------------
$run = start_pgbench(10);
watch(2);
my ($rc, $out) = $c->ctl('kill', 'a1', 'b1');
is($rc, 0, 'kill -9 a1 (AZ a) and b1 (AZ b) while pgbench runs') or diag($out);
watch(1);
my $after_kill = history();
watch(3);
cmp_ok(history() - $after_kill, '>=', 20, 'pgbench keeps committing with two nodes down');
ok($c->poll_query_until(
		"SELECT string_agg(DISTINCT node_id, ',' ORDER BY node_id) FROM aurora.segments WHERE state = 'down'",
		'a1,b1'),
	'aurora.segments shows a1 and b1 down');
is($c->safe_psql('SELECT bool_and(write_quorum_available), max(segments_up) FROM aurora.protection_groups'),
	't|4', 'every PG keeps its write quorum with four segments up');
finish_pgbench($run, 'two nodes down');
acknowledged_held_by(4, 'two nodes down');

# --- a third node killed: commits stop, reads go on -----------------------
my $timeout_ms = $c->safe_psql("SELECT setting FROM pg_settings WHERE name = 'aurora.request_timeout'");
# long enough that work is left when the nodes return, even on a slow machine
$run = start_pgbench(40);
watch(2);
($rc, $out) = $c->ctl('kill', 'c1');
is($rc, 0, 'kill -9 c1 as well: three of six down') or diag($out);
my $killed_at = time();
# commits stop: the history count stays put for 2 s
my ($stopped_at, $prev, $still_since) = (undef, history(), time());
while (time() - $killed_at < 15)
{
	usleep(200_000);
	my $now = history();
	if ($now != $prev) { ($prev, $still_since) = ($now, time()); next; }
	if (time() - $still_since >= 2) { $stopped_at = $still_since; last; }
}
ok(defined $stopped_at && $stopped_at - $killed_at <= $timeout_ms / 1000 + 1,
	"commits stop within the request timeout ($timeout_ms ms) of the third failure")
  or diag(defined $stopped_at ? sprintf('stopped %.1f s after', $stopped_at - $killed_at) : 'never stopped');
my $frozen = history();
is($c->safe_psql('SELECT count(*) FROM pgbench_accounts'), '100000', 'SELECT still works');
# scale 1 has one branch row: one session waits in COMMIT, holding it, the
# others wait for its row lock (on its transaction id or the tuple)
ok($c->poll_query_until(
		"SELECT count(*) FILTER (WHERE wait_event = 'SyncRep') || ',' || count(*) "
		  . "FROM pg_stat_activity WHERE application_name = 'pgbench' "
		  . "AND (wait_event = 'SyncRep' OR wait_event_type = 'Lock')", '1,4'),
	'a pgbench session waits in COMMIT for storage, the other three for its row lock');
ok($c->poll_query_until(
		"SELECT string_agg(pg::text, ',' ORDER BY pg) FROM aurora.protection_groups "
		  . "WHERE NOT write_quorum_available AND read_quorum_available AND segments_up = 3",
		'0,1,2,3'),
	'aurora.protection_groups lists the PGs that lost their write quorum (all four, read quorum kept)');
ok($c->poll_query_until(
		"SELECT string_agg(DISTINCT node_id, ',' ORDER BY node_id) FROM aurora.segments WHERE state = 'down'",
		'a1,b1,c1'),
	'aurora.segments shows which nodes are down');
like($c->safe_psql("SELECT vdl_lag_bytes > 0 AND vdl_age > '1 s' FROM aurora.watermarks()"), qr/^t$/,
	'aurora.watermarks() shows VDL stuck behind the local flush');
($prc, $pout) = $c->ctl('placement');
like($pout, qr/summary: pgs 4 all_ok 0 write_quorum 0 below_write_quorum 4 read_quorum 4 nodes_down 3 /,
	'aurora-ctl placement agrees: every PG below write quorum, read quorum kept, three nodes down');
is(history(), $frozen, 'no commit became visible meanwhile');
($rc, $out) = $c->ctl('start', 'a1', 'b1', 'c1');
is($rc, 0, 'restart a1, b1 and c1') or diag($out);
my $back_at = time();
ok($c->poll_until(sub { history() > $frozen + 5 }, 20), 'commits resume')
  or diag('history rows: ' . history() . ", $frozen when the nodes came back");
note(sprintf('commits resumed %.1f s after the restart', time() - $back_at));
watch(1);
finish_pgbench($run, 'three nodes down and back');
ok($c->poll_until(\&converged, 60),
	'every segment of every PG converges to the same SCL, all up and nothing left to send');
acknowledged_held_by(4, 'three nodes down and back');

# --- a whole AZ killed under pgbench ----------------------------------------
$run = start_pgbench(8);
watch(2);
($rc, $out) = $c->ctl('kill', 'a1', 'a2');
is($rc, 0, 'kill -9 a1 and a2: all of AZ a') or diag($out);
watch(1);
$after_kill = history();
watch(3);
cmp_ok(history() - $after_kill, '>=', 20, 'pgbench keeps committing with AZ a down');
is($c->safe_psql('SELECT bool_and(write_quorum_available), max(segments_up) FROM aurora.protection_groups'),
	't|4', 'every PG keeps its write quorum');
finish_pgbench($run, 'AZ a down');
acknowledged_held_by(4, 'AZ a down');
($rc, $out) = $c->ctl('start', 'a1', 'a2');
is($rc, 0, 'AZ a comes back') or diag($out);
ok($c->poll_until(\&converged, 60), 'and all segments converge again');
acknowledged_held_by(6, 'in the end');

cmp_ok($samples, '>=', 50, "watermarks sampled $samples times during the runs");
ok($watermarks_ok, 'VCL and VDL never went backwards and VDL never passed the local flush');
is($c->refused_records, '0', 'no storage node refused a record');

$c->stop;
done_testing();
