# test/cluster/016_recovery_without_redo.t: crash recovery replays no page
# (issue 19, src/redo_filter.c).  With the pages in storage, the startup
# process skips every record whose only effect is on pages storage holds
# and replays the rest (transaction status, two-phase state, counters,
# relation maps, unlogged init forks) with PostgreSQL's own redo.
#
# A workload after a checkpoint (pgbench, a bulk load, a prepared
# transaction, a sequence, an unlogged table with an index, a table
# rewritten by VACUUM FULL), then an immediate stop, then a start: every
# acknowledged commit is there, the prepared transaction commits, the
# sequence continues above what it handed out, the unlogged table is empty
# and usable, pg_amcheck finds the heap and indexes sound, and recovery read
# no relation page from storage while skipping the page records.
#
# Then crash restarts at three WAL sizes since the last checkpoint (4, 16 and
# 64 MB here; the benchmark goes to 1 GB): a ledger client records every
# insert acknowledged while a bulk load writes the WAL, the compute is killed
# (every process, kill -9) under that load and started again on its own data
# directory (cluster.sh start: aurora-compute-init start, then pg_ctl):
# every acknowledged insert is there and recovery read no page.  At 64 MB
# the WAL below the last point the volume made durable comes from the local
# pg_wal (aurora_durable); in a fourth round at 64 MB the local WAL is
# damaged first, and all of it comes from storage.
use strict;
use warnings;
use Test::More;
use IPC::Run ();
use Time::HiRes qw(usleep time);
use AuroraCluster;
use PageFiles ();

my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX not set";

my $c = AuroraCluster->new(shipping => 1);
# no checkpoint may intervene: recovery starts at the one the test makes
$c->compute_conf_append(join "\n", 'checkpoint_timeout = 1h', 'max_wal_size = 4GB',
	'max_prepared_transactions = 4', 'shared_buffers = 16MB', 'autovacuum = off');
$c->start;
my @conn = ('-h', '127.0.0.1', '-p', $c->pgport, 'postgres');

sub run_ok
{
	my ($what, @cmd) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err) or BAIL_OUT("$what failed: $err");
	return $out;
}

run_ok('pgbench -i', "$prefix/bin/pgbench", '-i', '-s', '2', '-q', @conn);
$c->safe_psql('CREATE SEQUENCE s');
$c->safe_psql('CREATE TABLE kept (id int PRIMARY KEY, pad text)');
$c->safe_psql('CHECKPOINT');
my $redo = $c->safe_psql('SELECT redo_lsn FROM pg_control_checkpoint()');

# ---- after the checkpoint: the WAL recovery must go through ------------------
run_ok('pgbench', "$prefix/bin/pgbench", '-n', '-c', '4', '-j', '2', '-t', '250', @conn);
$c->safe_psql("INSERT INTO kept SELECT g, repeat('k', 300) FROM generate_series(1, 60000) g");
$c->safe_psql('VACUUM FULL pg_class');
$c->safe_psql('CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY, v text)');
$c->safe_psql("INSERT INTO scratch SELECT g, 'u' FROM generate_series(1, 1000) g");
my $seq_last = $c->safe_psql('SELECT max(nextval) FROM (SELECT nextval(\'s\') FROM generate_series(1, 100)) x');
$c->safe_psql("BEGIN; INSERT INTO kept VALUES (-1, 'prepared'); PREPARE TRANSACTION 'p1'");
my $accounts = $c->safe_psql('SELECT sum(abalance) FROM pgbench_accounts');
my $history  = $c->safe_psql('SELECT count(*), sum(delta) FROM pgbench_history');
my $end = $c->safe_psql('SELECT pg_current_wal_lsn()');
my $wal_mb = $c->safe_psql("SELECT round(pg_wal_lsn_diff('$end', '$redo') / 1048576.0)");
cmp_ok($wal_mb, '>=', 10, "$wal_mb MB of WAL since the checkpoint's redo point");

# ---- crash: immediate stop, then start -------------------------------------
system("$prefix/bin/pg_ctl -D " . $c->dir . "/pgdata -m immediate stop >/dev/null 2>&1");
$c->start;

my ($replayed, $skipped, $bytes, $pages) =
  split /\|/, $c->safe_psql('SELECT records_replayed, records_skipped, bytes_skipped, pages_read FROM aurora.recovery_stats()');
cmp_ok($skipped, '>', 10000, "recovery skipped $skipped page records (" . int($bytes / 1048576) . ' MB)');
cmp_ok($replayed, '>', 1000, "and replayed $replayed others (commits, two-phase, relation maps)");
is($pages, 0, 'recovery read no relation page from storage');

is($c->safe_psql('SELECT count(*), sum(delta) FROM pgbench_history'), $history,
	'every acknowledged pgbench transaction is there');
is($c->safe_psql('SELECT sum(abalance) FROM pgbench_accounts'), $accounts, 'the balances are what was acknowledged');
is($c->safe_psql('SELECT count(*) FROM kept'), '60000', 'the bulk load is there');
is($c->safe_psql("SELECT gid FROM pg_prepared_xacts"), 'p1', 'the prepared transaction survived');
$c->safe_psql("COMMIT PREPARED 'p1'");
is($c->safe_psql("SELECT pad FROM kept WHERE id = -1"), 'prepared', '... and commits');
cmp_ok($c->safe_psql("SELECT nextval('s')"), '>', $seq_last, 'the sequence continues above what it handed out');
is($c->safe_psql('SELECT count(*) FROM scratch'), '0', 'the unlogged table is empty, as after any crash');
$c->safe_psql("INSERT INTO scratch VALUES (7, 'again')");
is($c->safe_psql('SET enable_seqscan = off; SELECT v FROM scratch WHERE id = 7'), 'again',
	'... and usable through its index (its init fork was replayed)');
is($c->safe_psql("SELECT count(*) FROM pg_class WHERE relname = 'kept'"), '1',
	'the rewritten catalog (VACUUM FULL pg_class, a relation map change) reads back');

my ($out, $err) = ('', '');
IPC::Run::run([ "$prefix/bin/pg_amcheck", '--install-missing', '--heapallindexed', @conn[0 .. 3], '-d', 'postgres' ],
	'>', \$out, '2>', \$err);
is($out . $err, '', 'pg_amcheck --heapallindexed finds every heap and index sound');

# new transactions commit after the restart
run_ok('pgbench after the restart', "$prefix/bin/pgbench", '-n', '-c', '2', '-t', '50', @conn);
is($c->safe_psql('SELECT count(*) FROM pgbench_history'), (split /\|/, $history)[0] + 100,
	'commits go on after the restart');

# ---- crash restarts under load at three WAL sizes, then a damaged local WAL ---
$c->safe_psql('CREATE TABLE ledger (round int, n int, PRIMARY KEY (round, n))');
$c->safe_psql('CREATE TABLE bulk (id bigserial, pad text)');
my $script = $c->dir . '/ledger.sql';
my @rounds = (4, 16, 64, 64);
for my $round (0 .. $#rounds)
{
	my $mb = $rounds[$round];
	my $what = $round == 3 ? "$mb MB, local WAL damaged" : "$mb MB";
	$c->safe_psql('CHECKPOINT');
	my $from = $c->safe_psql('SELECT redo_lsn FROM pg_control_checkpoint()');
	open(my $fh, '>', $script) or die "$script: $!";
	print $fh "INSERT INTO ledger VALUES ($round, $_);\n\\echo acked $_\n" for 1 .. 100000;
	close($fh);
	my ($ack, $ack_err, $bulk_out, $bulk_err) = ('', '', '', '');
	my $recorder = IPC::Run::start([ "$prefix/bin/psql", '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $script, @conn ],
		'>', \$ack, '2>', \$ack_err);
	my $loader = IPC::Run::start([ "$prefix/bin/psql", '-X', '-q', @conn, '-c',
			"DO \$\$BEGIN LOOP INSERT INTO bulk (pad) SELECT repeat('b', 1000) FROM generate_series(1, 1000); "
			  . "COMMIT; END LOOP; END\$\$" ], '>', \$bulk_out, '2>', \$bulk_err);
	my $deadline = time() + 120;
	my $ahead = 0;
	while (time() < $deadline)
	{
		$recorder->pump_nb;
		$ahead = $c->safe_psql("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$from') / 1048576");
		last if $ahead >= $mb;
		usleep(100_000);
	}
	$c->kill_compute;
	$recorder->pump_nb;
	my @acked = $ack =~ /^acked (\d+)$/mg;
	$recorder->kill_kill;
	$loader->kill_kill;
	cmp_ok($ahead, '>=', $mb, sprintf('%s: killed with %.0f MB of WAL since the checkpoint, %d inserts acknowledged',
		$what, $ahead, scalar(@acked)));
	cmp_ok(scalar(@acked), '>=', 10, "$what: the ledger was acknowledged under the load");
	if ($round == 3)
	{
		# a damaged local WAL is not taken: storage supplies all of it
		my $at   = AuroraCluster::lsn($from) + 1024 * 1024;
		my $segno = int($at / (16 * 1024 * 1024));
		my $seg  = sprintf('%s/pgdata/pg_wal/%08X%08X%08X', $c->dir, 1, int($segno / 256), $segno % 256);
		open(my $w, '+<:raw', $seg) or die "$seg: $!";
		seek($w, $at % (16 * 1024 * 1024), 0);
		print $w "\xA5" x 64;
		close($w);
	}
	$c->start;
	my $init = PageFiles::slurp($c->dir . '/compute-init.log') // '';
	my ($local) = $init =~ /^local wal: (\d+) records/m;
	if ($round == 2)
	{
		cmp_ok($local // 0, '>', 0, "$what: the WAL below the last durable point came from the local pg_wal ("
			  . ($local // 0) . ' records), the rest from storage');
	}
	elsif ($round == 3)
	{
		like($init, qr/the local WAL is not used: /, "$what: it is not used ...");
		is($local, '0', '... all of the WAL came from storage');
	}
	my %have = map { $_ => 1 } split /,/, $c->safe_psql("SELECT string_agg(n::text, ',') FROM ledger WHERE round = $round") // '';
	my @lost = grep { !$have{$_} } @acked;
	is(scalar(@lost), 0, "$what: every acknowledged insert is there after the restart")
	  or diag("lost: @lost[0 .. ($#lost < 9 ? $#lost : 9)]");
	is($c->safe_psql('SELECT pages_read FROM aurora.recovery_stats()'), '0', "$what: recovery read no relation page");
	like($c->safe_psql("SELECT how FROM aurora.last_start()"), qr/^replaced-datadir$/,
		"$what: the compute opened the volume again on its own data directory");
}

$c->stop;
done_testing();
