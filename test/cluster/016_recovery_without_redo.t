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
use strict;
use warnings;
use Test::More;
use IPC::Run ();
use AuroraCluster;

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

$c->stop;
done_testing();
