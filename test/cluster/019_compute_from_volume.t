# test/cluster/019_compute_from_volume.t: a lost compute is replaced from the
# volume alone (issue 19: aurora-compute-init start, src/volume_start.c).
#
# 1. Lost compute.  A workload (pgbench, a ledger whose every acknowledged
#    insert is recorded on the client side, a prepared transaction, a
#    sequence, an unlogged table, a second database); then the compute is
#    killed (every process, kill -9) and its data directory deleted.  A new
#    compute is created from the volume on another port: every acknowledged
#    insert is there, pgbench's balances agree, pg_amcheck is clean, the
#    prepared transaction commits, the sequence continues above what it
#    handed out, new XIDs are above every XID in storage, the unlogged
#    table is empty, and a data directory used once is refused a second
#    start without a new preparation.
# 2. A whole AZ down at start: the compute opens and commits.
# 3. An AZ and one more node down at start (3 of 6 segments of every PG):
#    the compute opens for reads; a commit waits, and completes without a
#    restart once a fourth node is back (its segment is reopened: truncated
#    under the new epoch by the shipper's writer).
use strict;
use warnings;
use Test::More;
use IPC::Run ();
use Time::HiRes qw(usleep time);
use AuroraCluster;

my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX not set";

my $c = AuroraCluster->new(shipping => 1);
$c->compute_conf_append(join "\n", 'max_prepared_transactions = 4', 'shared_buffers = 16MB');
$c->start;
my $dir = $c->dir;

sub conn { return ('-h', '127.0.0.1', '-p', $_[0], 'postgres') }

sub run_ok
{
	my ($what, @cmd) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err) or BAIL_OUT("$what failed: $err");
	return $out;
}

run_ok('pgbench -i', "$prefix/bin/pgbench", '-i', '-s', '2', '-q', conn($c->pgport));
$c->safe_psql('CREATE EXTENSION pageinspect');
$c->safe_psql('CREATE TABLE ledger (n int PRIMARY KEY, xid bigint NOT NULL)');
$c->safe_psql('CREATE SEQUENCE s');
$c->safe_psql('CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY, v text)');
$c->safe_psql("INSERT INTO scratch SELECT g, 'u' FROM generate_series(1, 500) g");
$c->safe_psql('CREATE DATABASE other');
$c->safe_psql('CREATE TABLE t AS SELECT 42 AS answer', 'other');
$c->safe_psql('CHECKPOINT');
$c->safe_psql("BEGIN; INSERT INTO ledger VALUES (-1, txid_current()); PREPARE TRANSACTION 'p1'");
my $seq_last = $c->safe_psql("SELECT max(nextval('s')) FROM generate_series(1, 100)");

# ---- the workload, and the client's record of what was acknowledged --------
my $script = "$dir/ledger.sql";
open(my $fh, '>', $script) or die "$script: $!";
print $fh "INSERT INTO ledger VALUES ($_, txid_current());\n\\echo acked $_\n" for 1 .. 200000;
close($fh);
my ($ack_out, $ack_err) = ('', '');
my $recorder = IPC::Run::start([ "$prefix/bin/psql", '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-f', $script, conn($c->pgport) ], '>', \$ack_out, '2>', \$ack_err);
my ($bench_out, $bench_err) = ('', '');
my $bench = IPC::Run::start([ "$prefix/bin/pgbench", '-n', '-c', '2', '-T', '120', conn($c->pgport) ],
	'>', \$bench_out, '2>', \$bench_err);
my $deadline = time() + 60;
while (time() < $deadline && (() = $ack_out =~ /^acked /mg) < 300)
{
	$recorder->pump_nb;
	usleep(50_000);
}

# ---- the compute is lost: every process killed, its disk gone ---------------
$c->kill_compute;
$recorder->pump_nb;
my %acked = map { $_ => 1 } $ack_out =~ /^acked (\d+)$/mg;
cmp_ok(scalar(keys %acked), '>=', 300, scalar(keys %acked) . ' ledger inserts acknowledged before the compute was killed');
$recorder->kill_kill;
$bench->kill_kill;
system('rm', '-rf', "$dir/pgdata");
ok(!-e "$dir/pgdata", 'the old data directory is gone');

# ---- a new compute, from the volume alone, on another port ------------------
my $port2 = $c->pgport + 100;
my ($rc, $out) = $c->prepare_compute('pgdata2', $port2);
is($rc, 0, 'aurora-compute-init start prepared an empty data directory') or diag($out);
like($out, qr/^how: from-storage$/m, '... from storage');
my ($epoch) = $out =~ /^volume epoch: (\d+)$/m;
ok(defined $epoch && $epoch >= 3, "... under a new volume epoch ($epoch)");
ok($c->start_compute("$dir/pgdata2"), 'the new compute starts') or
  diag(`tail -n 30 $dir/pgdata2.log`);
$c->use_port($port2);

my $ledger = $c->safe_psql('SELECT string_agg(n::text, \',\') FROM ledger');
my %have = map { $_ => 1 } split /,/, $ledger;
my @lost = grep { !$have{$_} } sort { $a <=> $b } keys %acked;
is(scalar(@lost), 0, 'every acknowledged ledger insert is there') or diag("lost: @lost[0 .. ($#lost < 9 ? $#lost : 9)]");
is($c->safe_psql('SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)'
	  . ' AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers)'
	  . ' AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)'),
	't', "pgbench's balances agree (accounts, tellers, branches, history)");
my ($amout, $amerr) = ('', '');
IPC::Run::run([ "$prefix/bin/pg_amcheck", '--install-missing', '--heapallindexed', '-h', '127.0.0.1',
		'-p', $port2, '--all' ], '>', \$amout, '2>', \$amerr);
is($amout . $amerr, '', 'pg_amcheck --heapallindexed finds every heap and index sound');
is($c->safe_psql('SELECT gid FROM pg_prepared_xacts'), 'p1', 'the prepared transaction survived');
$c->safe_psql("COMMIT PREPARED 'p1'");
is($c->safe_psql('SELECT count(*) FROM ledger WHERE n = -1'), '1', '... and commits');
cmp_ok($c->safe_psql("SELECT nextval('s')"), '>', $seq_last, 'the sequence continues above what it handed out');
my $max_xid = $c->safe_psql(q{SELECT max(x) FROM (
	SELECT max(t_xmin::text::bigint) AS x FROM generate_series(0, pg_relation_size('ledger') / 8192 - 1) b,
	  LATERAL heap_page_items(get_raw_page('ledger', b::int))
	UNION ALL
	SELECT max(t_xmin::text::bigint) FROM generate_series(0, pg_relation_size('pgbench_history') / 8192 - 1) b,
	  LATERAL heap_page_items(get_raw_page('pgbench_history', b::int))) m});
cmp_ok($c->safe_psql('SELECT txid_current() % 4294967296'), '>', $max_xid,
	"a new XID is above every XID in storage's tuples, committed or not ($max_xid)");
is($c->safe_psql('SELECT count(*) FROM scratch'), '0', 'the unlogged table is empty, as after a crash');
$c->safe_psql("INSERT INTO scratch VALUES (1, 'again')");
is($c->safe_psql('SELECT answer FROM t', 'other'), '42', 'the second database is there');
my @ls = split /\|/, $c->safe_psql('SELECT volume_epoch, how, wal_records > 0, pgs_opened, pgs, fenced FROM aurora.last_start()');
is_deeply(\@ls, [ $epoch, 'from-storage', 't', 4, 4, 'f' ], 'aurora.last_start() says how the compute opened the volume');
run_ok('pgbench on the new compute', "$prefix/bin/pgbench", '-n', '-c', '2', '-t', '50', conn($port2));

# a data directory opened once is not opened again without a new preparation
system("$prefix/bin/pg_ctl -D $dir/pgdata2 -m immediate stop >/dev/null 2>&1");
ok(!$c->start_compute("$dir/pgdata2"), 'a second start without aurora-compute-init start is refused');
like(PageFiles::slurp("$dir/pgdata2.log"), qr/already opened under its volume epoch/, '... saying why');

# ---- a whole AZ down at start ------------------------------------------------
($rc, $out) = $c->ctl('stop', 'c1', 'c2');
($rc, $out) = $c->prepare_compute('pgdata2');
is($rc, 0, 'with AZ c down the compute is prepared') or diag($out);
like($out, qr/^protection groups open: 4 of 4$/m, '... every PG truncated on a write quorum');
ok($c->start_compute("$dir/pgdata2"), '... starts');
run_ok('pgbench with AZ c down', "$prefix/bin/pgbench", '-n', '-c', '2', '-t', '50', conn($port2));
pass('... and commits');
my $rows = $c->safe_psql('SELECT count(*) FROM pgbench_history');

# ---- an AZ and one more node down at start -----------------------------------
system("$prefix/bin/pg_ctl -D $dir/pgdata2 -m fast stop >/dev/null 2>&1");
($rc, $out) = $c->ctl('stop', 'b2');
($rc, $out) = $c->prepare_compute('pgdata2');
is($rc, 0, 'with AZ c and b2 down the compute is prepared from a read quorum') or diag($out);
like($out, qr/^protection groups open: 0 of 4$/m, '... no PG truncated on a write quorum');
ok($c->start_compute("$dir/pgdata2"), '... starts');
is($c->safe_psql('SELECT count(*) FROM pgbench_history'), $rows, '... and serves reads');
my ($ins_out, $ins_err) = ('', '');
my $insert = IPC::Run::start([ "$prefix/bin/psql", '-X', '-q', '-c', "INSERT INTO ledger VALUES (-2, 0)",
		conn($port2) ], '>', \$ins_out, '2>', \$ins_err);
usleep(3_000_000);
$insert->pump_nb;
ok($insert->pumpable, 'a commit waits while only 3 of 6 segments are open');
($rc, $out) = $c->ctl('start', 'c1');
my $done = $c->poll_until(sub { $insert->pump_nb; !$insert->pumpable }, 60);
ok($done, '... and completes once a fourth node is back, without a restart');
$insert->finish if $done;
is($c->safe_psql('SELECT count(*) FROM ledger WHERE n = -2'), '1', '... the row is there');

system("$prefix/bin/pg_ctl -D $dir/pgdata2 -m fast stop >/dev/null 2>&1");
$c->ctl('start', 'b2', 'c2');
$c->stop;
done_testing();
