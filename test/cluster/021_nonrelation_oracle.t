# test/cluster/021_nonrelation_oracle.t: the non-relation state oracle
# (issue 19), as 009 is the page oracle.  What storage yields for a compute
# starting at an LSN (a start state stored at an earlier checkpoint, and the
# WAL since, replayed without page redo) equals the files of the compute that
# wrote that WAL.
#
# The compute stores a start state at checkpoint S1, then stops storing them
# (aurora.store_start_states = off), and runs a workload: pgbench, two-phase
# commits (two committed or rolled back, two left prepared), multixacts
# (FOR SHARE by two sessions, FOR KEY SHARE under a concurrent UPDATE),
# CREATE DATABASE, VACUUM FULL of a mapped catalog in two databases and of a
# shared one, sequences, commit timestamps.  Quiet, then CHECKPOINT: its files
# are the truth.  It is killed; a new compute is created from the volume on
# an empty directory, starting from S1 and replaying the workload's WAL.
# Compared, byte for byte: pg_xact, pg_multixact/offsets and members,
# pg_commit_ts, every relation map, pg_twophase.  pg_control field by field.
#
# Masked pg_control differences, and why:
#   * checkpoint location, REDO location and WAL file, time of the checkpoint,
#     last modified, cluster state, minimum recovery end, oldestActiveXID,
#     the fake LSN counter: they describe the new compute's own end-of-recovery
#     checkpoint, not the volume's state;
#   * NextOID: the running compute's checkpoint records the counter it hands
#     out from; recovery sets it from the last XLOG_NEXTOID record, which
#     PostgreSQL logs up to 8192 OIDs ahead (stock crash recovery does the
#     same), so it must be at or above the truth and at most 8192 beyond.
use strict;
use warnings;
use Test::More;
use IPC::Run ();
use Time::HiRes qw(usleep time);
use AuroraCluster qw(lsn);
use PageFiles;

my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX not set";

my $c = AuroraCluster->new(shipping => 1);
$c->compute_conf_append(join "\n", 'max_prepared_transactions = 4', 'autovacuum = off',
	'track_commit_timestamp = on', 'checkpoint_timeout = 1h');
$c->start;
my $dir    = $c->dir;
my $pgdata = "$dir/pgdata";

sub conn { return ('-h', '127.0.0.1', '-p', $_[0], 'postgres') }



# "field: value" of pg_controldata
sub controldata
{
	my ($pgdata) = @_;
	my ($rc, $out) = PageFiles::run("$prefix/bin/pg_controldata", $pgdata);
	die "pg_controldata $pgdata: $out" if $rc != 0;
	my %f;
	for (split /\n/, $out)
	{
		$f{$1} = $2 if /^([^:]+):\s*(.*?)\s*$/;
	}
	return \%f;
}

# relative path => contents of the non-relation files under $root
sub state_files
{
	my ($root) = @_;
	my %files;
	for my $glob ('pg_xact/*', 'pg_multixact/offsets/*', 'pg_multixact/members/*',
		'pg_commit_ts/*', 'global/pg_filenode.map', 'base/*/pg_filenode.map', 'pg_twophase/*')
	{
		for my $path (glob("$root/$glob"))
		{
			(my $rel = $path) =~ s{^\Q$root\E/}{};
			$files{$rel} = slurp($path);
		}
	}
	return \%files;
}

# ---- S1: the start state the new compute will start from -------------------
my ($out, $err) = ('', '');
IPC::Run::run([ "$prefix/bin/pgbench", '-i', '-s', '1', '-q', conn($c->pgport) ], '>', \$out, '2>', \$err)
  or BAIL_OUT("pgbench -i: $err");
$c->safe_psql('CREATE TABLE t (id int PRIMARY KEY, v text)');
$c->safe_psql("INSERT INTO t SELECT g, 'v' FROM generate_series(1, 200) g");
$c->safe_psql('CREATE SEQUENCE s');
my $before = $c->newest_start_state // '0/0';
$c->safe_psql('CHECKPOINT');
ok($c->poll_until(sub { my $n = $c->newest_start_state; defined $n && lsn($n) > lsn($before) }, 30),
	'a start state S1 is stored after a checkpoint');
my $s1 = $c->newest_start_state;

$c->compute_conf_append('aurora.store_start_states = off');
$c->safe_psql('SELECT pg_reload_conf()');
ok($c->poll_query_until('SHOW aurora.store_start_states', 'off'), 'then the compute stops storing them');

# ---- the workload ------------------------------------------------------------
IPC::Run::run([ "$prefix/bin/pgbench", '-n', '-c', '2', '-t', '300', conn($c->pgport) ], '>', \$out, '2>', \$err)
  or BAIL_OUT("pgbench: $err");
for my $gid ('done1', 'undone1', 'keep1', 'keep2')
{
	$c->safe_psql("BEGIN; INSERT INTO t VALUES (nextval('s') + 1000, '$gid'); PREPARE TRANSACTION '$gid'");
}
$c->safe_psql("COMMIT PREPARED 'done1'");
$c->safe_psql("ROLLBACK PREPARED 'undone1'");

# multixacts: two sessions share-lock the same rows; a key-share lock under
# a concurrent non-key update
sub session
{
	my %s = (in => '', out => '', err => '');
	$s{h} = IPC::Run::start([ "$prefix/bin/psql", '-X', '-q', '-A', '-t', conn($c->pgport) ],
		'<', \$s{in}, '>', \$s{out}, '2>', \$s{err});
	return \%s;
}

sub say_and_wait
{
	my ($s, $sql, $want) = @_;
	$s->{out} = '';
	$s->{in} .= "$sql\n";
	my $deadline = time() + 30;
	while (time() < $deadline && $s->{out} !~ $want)
	{
		$s->{h}->pump_nb;
		usleep(20_000);
	}
	return $s->{out} =~ $want;
}
my ($s1s, $s2s) = (session(), session());
ok(say_and_wait($s1s, "BEGIN; SELECT 'held', count(*) FROM (SELECT id FROM t WHERE id <= 50 FOR SHARE) x;", qr/held\|50/)
	  && say_and_wait($s2s, "BEGIN; SELECT 'held', count(*) FROM (SELECT id FROM t WHERE id <= 50 FOR SHARE) x;", qr/held\|50/),
	'two sessions hold share locks on the same 50 rows');
say_and_wait($_, "COMMIT; SELECT 'done';", qr/done/) for $s1s, $s2s;
ok(say_and_wait($s1s, "BEGIN; SELECT 'held', count(*) FROM (SELECT id FROM t WHERE id BETWEEN 51 AND 80 FOR KEY SHARE) x;", qr/held\|30/)
	  && say_and_wait($s2s, "UPDATE t SET v = 'updated' WHERE id BETWEEN 51 AND 80; SELECT 'updated';", qr/updated/),
	'a non-key update of 30 rows under a key-share lock');
say_and_wait($s1s, "COMMIT; SELECT 'done';", qr/done/);
for my $s ($s1s, $s2s)
{
	$s->{in} .= "\\q\n";
	$s->{h}->finish;
}

$c->safe_psql('CREATE DATABASE db2');
$c->safe_psql('CREATE TABLE u AS SELECT g AS id FROM generate_series(1, 100) g', 'db2');
$c->safe_psql('VACUUM FULL pg_class', 'db2');
$c->safe_psql('VACUUM FULL pg_class');
$c->safe_psql('VACUUM FULL pg_database');
my $seq_last = $c->safe_psql("SELECT max(nextval('s')) FROM generate_series(1, 500)");
IPC::Run::run([ "$prefix/bin/pgbench", '-n', '-c', '2', '-t', '200', conn($c->pgport) ], '>', \$out, '2>', \$err)
  or BAIL_OUT("pgbench: $err");

# ---- the truth: the running compute's files after a checkpoint --------------
$c->safe_psql('CHECKPOINT');
my $truth_dir = "$dir/truth";
mkdir $truth_dir;
mkdir "$truth_dir/global";
my $truth = state_files($pgdata);
{
	open(my $fh, '>:raw', "$truth_dir/global/pg_control") or die $!;
	print $fh slurp("$pgdata/global/pg_control");
	close($fh);
}
my $truth_control = controldata($truth_dir);
my $next_multi = $truth_control->{"Latest checkpoint's NextMultiXactId"};
cmp_ok($next_multi, '>', 2, "the workload made multixacts (next $next_multi)");
ok((grep { m{^pg_twophase/} } keys %$truth) == 2, 'two prepared transactions have two-phase files');
ok((grep { m{^base/\d+/pg_filenode.map$} } keys %$truth) >= 4, 'every database has a relation map');
ok((grep { m{^pg_commit_ts/} } keys %$truth) >= 1, 'commit timestamps are kept');
is($c->newest_start_state, $s1, 'no start state was stored after S1');
ok($c->poll_vdl_covers_wal, 'VDL covers the checkpoint');

# ---- what storage yields: a compute from the volume on an empty directory ----
$c->kill_compute;
my $port2 = $c->pgport + 100;
my ($rc, $init) = $c->prepare_compute('pgdata2', $port2);
is($rc, 0, 'aurora-compute-init start prepares an empty directory') or diag($init);
like($init, qr/^start state: \Q$s1\E /m, '... from S1');
my ($records) = $init =~ /^wal: (\d+) records/m;
cmp_ok($records // 0, '>', 5000, "... and the WAL since its redo point ($records records)");
ok($c->start_compute("$dir/pgdata2"), 'the new compute starts') or diag(`tail -n 30 $dir/pgdata2.log`);
$c->use_port($port2);
my ($replayed, $skipped, $pages) = split /\|/, $c->safe_psql(
	'SELECT records_replayed, records_skipped, pages_read FROM aurora.recovery_stats()');
cmp_ok($skipped, '>', 1000, "recovery skipped the records that only change pages ($skipped; $replayed replayed)");
is($pages, '0', '... and read no relation page');

my $got = state_files("$dir/pgdata2");
is_deeply([ sort keys %$got ], [ sort keys %$truth ], 'the same non-relation files');
for my $rel (sort keys %$truth)
{
	ok(defined $got->{$rel} && $got->{$rel} eq $truth->{$rel}, "$rel is identical")
	  or diag(sprintf('%d bytes, truth %d; first difference at byte %s', length($got->{$rel} // ''),
		length($truth->{$rel}), (($got->{$rel} // '') ^ $truth->{$rel}) =~ /^(\0*)/ ? length($1) : '?'));
}

my $control = controldata("$dir/pgdata2");
for my $field ('Database system identifier', "Latest checkpoint's TimeLineID",
	"Latest checkpoint's full_page_writes", "Latest checkpoint's NextXID",
	"Latest checkpoint's NextMultiXactId", "Latest checkpoint's NextMultiOffset",
	"Latest checkpoint's oldestXID", "Latest checkpoint's oldestXID's DB",
	"Latest checkpoint's oldestMultiXid", "Latest checkpoint's oldestMulti's DB",
	"Latest checkpoint's oldestCommitTsXid", "Latest checkpoint's newestCommitTsXid",
	'wal_level setting', 'max_prepared_xacts setting', 'track_commit_timestamp setting',
	'Data page checksum version', 'Mock authentication nonce')
{
	ok(defined $truth_control->{$field}, "pg_control has $field");
	is($control->{$field}, $truth_control->{$field}, "pg_control: $field");
}
my ($oid, $truth_oid) = ($control->{"Latest checkpoint's NextOID"}, $truth_control->{"Latest checkpoint's NextOID"});
ok($oid >= $truth_oid && $oid - $truth_oid <= 8192,
	"pg_control: NextOID $oid is at or above the truth's $truth_oid, within one OID prefetch");

# the state is usable, not only equal
is($c->safe_psql("SELECT string_agg(gid, ',' ORDER BY gid) FROM pg_prepared_xacts"), 'keep1,keep2',
	'the two prepared transactions are there');
$c->safe_psql("COMMIT PREPARED 'keep1'");
$c->safe_psql("ROLLBACK PREPARED 'keep2'");
is($c->safe_psql("SELECT string_agg(v, ',' ORDER BY v) FROM t WHERE id > 1000"), 'done1,keep1',
	'... and commit or roll back');
cmp_ok($c->safe_psql("SELECT nextval('s')"), '>', $seq_last, 'the sequence continues above what it handed out');
is($c->safe_psql("SELECT count(*) FROM t WHERE v = 'updated'"), '30', 'the update under the key-share lock is there');
is($c->safe_psql('SELECT count(*) FROM u', 'db2'), '100', 'so is the new database');

done_testing();
