# test/cluster/011_storage_manager.t: the aurora storage manager (issue 6).
# A compute set up as `make run` does it (initdb, volume seeded from it, local
# relation files removed) runs with a tiny shared_buffers, so that nearly
# every page it touches is evicted and read back from storage, and must:
#   - keep no data of a permanent relation locally: each has only an empty
#     main-fork file, which never grows (unlogged and temporary relations
#     stay local); a non-empty tablespace cannot be dropped;
#   - keep pgbench's invariants and every acknowledged transaction, across a
#     clean restart and a kill -9 of the compute;
#   - build GIN, GiST, SP-GiST, BRIN, hash and btree indexes (builds that log
#     their pages only at the end) that answer like a sequential scan;
#   - pass pg_amcheck (heapallindexed);
#   - keep serving clients with two nodes of different AZs down, and serve
#     reads with three nodes of one AZ plus one down while commits wait;
#   - refuse CREATE DATABASE ... STRATEGY FILE_COPY, which copies files.
use strict;
use warnings;
use Test::More;
use IPC::Run ();
use File::Find;
use Time::HiRes qw(usleep time);
use AuroraCluster;

my $prefix = $ENV{AURORA_PG_PREFIX};

my $c = AuroraCluster->new(shipping => 1);
$c->compute_conf_append(join "\n", "shared_buffers = 1MB", "aurora.protection_groups = 4",
	"aurora.blocks_per_segment = 16", "autovacuum_naptime = 1s");
$c->start;
my $pgdata = $c->dir . '/pgdata';
my @conn   = ('-h', '127.0.0.1', '-p', $c->pgport, 'postgres');

# Relation files of the data directory: path => size.  Permanent relations
# have an empty main-fork file each; unlogged ones keep theirs (they have an
# init fork).
sub relation_files
{
	my %files;
	find(
		sub {
			return unless -f $_ && m{^\d+(_fsm|_vm|_init)?(\.\d+)?$};
			$files{$File::Find::name} = -s $_;
		},
		"$pgdata/base", "$pgdata/global");
	return \%files;
}

# Files of permanent relations that hold data, or are not an empty main fork.
sub permanent_files
{
	my $files = relation_files();
	return grep {
		my ($dir, $rel, $rest) = m{^(.*)/(\d+)(.*)$};
		!-e "$dir/${rel}_init" && ($rest ne '' || $files->{$_} != 0)
	} sort keys %$files;
}

is(join(' ', permanent_files()), '', 'after the seeded start permanent relations have only empty main-fork files');
cmp_ok(scalar(keys %{ relation_files() }), '>', 100, 'one per relation of the initdb\'ed cluster');
is($c->safe_psql('SELECT enabled FROM aurora.storage_manager_stats()'), 't',
	'aurora.storage_manager_stats() says the storage manager is on');

# ---- pgbench, with a record of what was acknowledged ------------------------
my ($out, $err);
ok(IPC::Run::run([ "$prefix/bin/pgbench", '-i', '-q', '-s', '2', @conn ], '>', \$out, '2>', \$err),
	'pgbench -i (scale 2, 16 times shared_buffers)') or diag($err);
$c->safe_psql('ALTER TABLE pgbench_history ADD COLUMN xid bigint DEFAULT txid_current()');

my $invariants = q{SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches)
  AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(bbalance) FROM pgbench_branches)
  AND (SELECT coalesce(sum(delta), 0) FROM pgbench_history) = (SELECT sum(bbalance) FROM pgbench_branches)};

# pgbench for $seconds; $during (optional) runs meanwhile, after 3 s.
sub pgbench
{
	my ($seconds, $during) = @_;
	my ($o, $e) = ('', '');
	my $before = $c->safe_psql('SELECT count(*) FROM pgbench_history');
	my $h = IPC::Run::start([ "$prefix/bin/pgbench", '-n', '-c', '4', '-j', '2', '-T', $seconds, @conn ],
		'>', \$o, '2>', \$e, IPC::Run::timeout($seconds + 180));
	if ($during)
	{
		usleep(3_000_000);
		$during->();
	}
	my $ok = $h->finish;
	my ($processed) = $o =~ /number of transactions actually processed: (\d+)/;
	my ($failed)    = $o =~ /number of failed transactions: (\d+)/;
	return { ok => $ok, out => $o, err => $e, processed => $processed // -1,
		failed => $failed // -1, before => $before };
}

my $run = pgbench(15);
ok($run->{ok} && $run->{processed} > 0 && $run->{failed} == 0,
	"pgbench for 15 s: $run->{processed} transactions, none failed") or diag("$run->{out}\n$run->{err}");
is($c->safe_psql('SELECT count(*) FROM pgbench_history'), $run->{before} + $run->{processed},
	'every acknowledged transaction left its row');
is($c->safe_psql($invariants), 't', 'balances of accounts, tellers, branches and history agree');
my $stats = $c->safe_psql('SELECT pages_read, pages_evicted, evicted_to_storage FROM aurora.storage_manager_stats()');
my ($read, $evicted, $dropped) = split /\|/, $stats;
cmp_ok($read, '>', 1000, "pages were read back from storage ($read)");
cmp_ok($dropped, ">", 1000, "written pages were dropped for storage to rebuild ($evicted evictions; $dropped pages dropped, extensions included)");
is(join(' ', permanent_files()), '', 'still no local data of a permanent relation: no main-fork file grew');

# ---- unlogged and temporary relations stay local ---------------------------
$c->safe_psql('CREATE UNLOGGED TABLE u (a int); INSERT INTO u SELECT generate_series(1, 5000)');
my $upath = $c->safe_psql(q{SELECT pg_relation_filepath('u')});
ok(-e "$pgdata/$upath" && -e "$pgdata/${upath}_init", 'an unlogged table keeps its files locally');
is($c->safe_psql('SELECT count(*) FROM u'), '5000', 'and reads back from them');
is($c->safe_psql('CREATE TEMP TABLE tt AS SELECT generate_series(1, 3000) a; SELECT sum(a) FROM tt'),
	'4501500', 'a temporary table works');
$c->safe_psql('CREATE UNLOGGED TABLE u2 (a int PRIMARY KEY); INSERT INTO u2 SELECT generate_series(1, 20000)');
is($c->safe_psql('SET enable_seqscan = off; SELECT count(*) FROM u2 WHERE a > 10000'), '10000',
	'an unlogged table with an index built on it (init fork created after the build)');

# ---- index builds that log their pages at the end --------------------------
$c->safe_psql(q{CREATE TABLE docs AS SELECT g AS id, ARRAY[g % 97, g % 89, g % 7] AS tags,
  point(g % 1000, g / 1000) AS p, md5(g::text) AS h, g % 1000 AS b
  FROM generate_series(1, 60000) g});
$c->safe_psql(q{CREATE INDEX docs_gin ON docs USING gin (tags);
  CREATE INDEX docs_gist ON docs USING gist (p);
  CREATE INDEX docs_spgist ON docs USING spgist (p);
  CREATE INDEX docs_brin ON docs USING brin (id);
  CREATE INDEX docs_hash ON docs USING hash (h);
  CREATE INDEX docs_btree ON docs (b, id)});
my @probes = (
	[ 'gin',    q{tags @> ARRAY[5, 3]} ],
	[ 'gist',   q{p <@ box '((10,10),(200,40))'} ],
	[ 'spgist', q{p <@ box '((500,5),(900,55))'} ],
	[ 'brin',   q{id BETWEEN 20000 AND 20999} ],
	[ 'hash',   q{h = md5('4242')} ],
	[ 'btree',  q{b = 77 AND id > 30000} ]);
for my $p (@probes)
{
	my ($name, $where) = @$p;
	my $seq = $c->safe_psql("SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM docs WHERE $where");
	my $idx = $c->safe_psql("SET enable_seqscan = off; SELECT count(*) FROM docs WHERE $where");
	ok($seq > 0 && $idx eq $seq, "$name index built through the storage manager answers like a seqscan ($idx rows)");
}

# ---- pg_amcheck ------------------------------------------------------------
my ($aout, $aerr) = ('', '');
my $amok = IPC::Run::run([ "$prefix/bin/pg_amcheck", '--install-missing', '--heapallindexed',
		'--parent-check', '-h', '127.0.0.1', '-p', $c->pgport, '-d', 'postgres' ],
	'>', \$aout, '2>', \$aerr);
ok($amok && $aout eq '', 'pg_amcheck --heapallindexed finds nothing') or diag("$aout\n$aerr");

# ---- what cannot work without files ------------------------------------------
my ($rc, undef, $perr) = $c->psql('CREATE DATABASE fc STRATEGY FILE_COPY');
ok($rc != 0 && $perr =~ /STRATEGY FILE_COPY is not supported/, 'CREATE DATABASE ... STRATEGY FILE_COPY is refused')
  or diag($perr);
$c->safe_psql('CREATE DATABASE wl');
$c->safe_psql('CREATE TABLE w AS SELECT generate_series(1, 1000) a', 'wl');
is($c->safe_psql('SELECT sum(a) FROM w', 'wl'), '500500', 'CREATE DATABASE (WAL_LOG) works');

my $tsdir = $c->dir . '/ts';
mkdir $tsdir;
$c->safe_psql("CREATE TABLESPACE ts LOCATION '$tsdir'");
$c->safe_psql('CREATE TABLE in_ts TABLESPACE ts AS SELECT generate_series(1, 10000) a');
($rc, undef, $perr) = $c->psql('DROP TABLESPACE ts');
ok($rc != 0 && $perr =~ /is not empty/, 'a tablespace holding a relation cannot be dropped') or diag($perr);
is($c->safe_psql('SELECT sum(a) FROM in_ts'), '50005000', 'which reads back from storage');
$c->safe_psql('DROP TABLE in_ts');
$c->safe_psql('CHECKPOINT');
($rc, undef, $perr) = $c->psql('DROP TABLESPACE ts');
is($rc, 0, 'once it is gone the tablespace can be dropped') or diag($perr);

# ---- restarts: clean, then kill -9 -----------------------------------------
my $rows = $c->safe_psql('SELECT count(*) FROM pgbench_history');
$c->stop;
$c->start;
is($c->safe_psql('SELECT count(*) FROM pgbench_history'), $rows, 'after a clean restart every row is back');
is($c->safe_psql($invariants), 't', 'and the balances agree');

# Reads are spread over the segments (page_reader.c), not all sent to the one
# that acknowledges fastest: after the restart no page is cached, and a scan
# reads every page of the table from storage.
sub getpages_served
{
	my ($rc, $out) = $c->ctl('status');
	return map { my @f = split /\s+/; ($f[0] => $f[11]) } grep { /serving/ } split /\n/, $out;
}
my %before = getpages_served();
is($c->safe_psql('SELECT count(*) FROM pgbench_accounts'), '200000', 'a scan after the restart reads the table back');
my %after = getpages_served();
my %served = map { $_ => $after{$_} - ($before{$_} // 0) } keys %after;
my $all = 0;
$all += $_ for values %served;
my ($busiest) = sort { $served{$b} <=> $served{$a} } keys %served;
# Which segments count as near-fastest follows their nodes' acknowledgement
# p50 (within twice the lowest plus 0.5 ms): on a loaded machine some nodes
# fall out of that band, so the test asks for at least two, none above 60 %.
ok(keys(%served) == 6 && $all > 1000 && (grep { $_ > 0 } values %served) >= 2 && $served{$busiest} <= 0.6 * $all,
	'its page reads were spread over the nodes (' . join(', ', map { "$_ $served{$_}" } sort keys %served) . ')');

# a client that records each insert the server acknowledged
$c->safe_psql('CREATE TABLE acked (id int PRIMARY KEY, pad text)');
my $ackfile = $c->dir . '/acked.txt';
my $loop = IPC::Run::start([ 'bash', '-c', qq{
	for i in \$(seq 1 100000); do
		"$prefix/bin/psql" -X -q -h 127.0.0.1 -p @{[$c->pgport]} -d postgres \\
			-c "INSERT INTO acked SELECT \$i, repeat('x', 500)" >/dev/null 2>&1 || exit 0
		echo \$i >> "$ackfile"
	done } ]);
my $bg = pgbench(4);
ok($bg->{ok}, 'pgbench keeps running meanwhile');
usleep(1_000_000);
# the whole compute dies at once: the postmaster and every child
my $pid = (split /\n/, do { local (@ARGV, $/) = ("$pgdata/postmaster.pid"); <> })[0];
my @procs = ($pid, split ' ', `pgrep -P $pid`);
kill 'KILL', @procs;
$loop->finish;
ok($c->poll_until(sub { !grep { kill(0, $_) } @procs }, 30), 'kill -9 of the compute (postmaster and children)');
unlink("$pgdata/postmaster.pid");
$c->{stopped} = 1;
$c->start;
my @acked = do { open(my $fh, '<', $ackfile) or die "$ackfile: $!"; map { chomp; $_ } <$fh> };
cmp_ok(scalar(@acked), '>', 10, scalar(@acked) . ' inserts were acknowledged before the kill');
is($c->safe_psql('SELECT count(*) FROM acked WHERE id <= ' . ($acked[-1] // 0)), scalar(@acked),
	'after kill -9 and recovery every acknowledged insert is there');
is($c->safe_psql($invariants), 't', 'and pgbench\'s balances agree');
is(join(' ', permanent_files()), '', 'recovery wrote no local data of a permanent relation');

# ---- storage nodes fail ------------------------------------------------------
$run = pgbench(12, sub { $c->ctl('kill', 'a1', 'b2') });
ok($run->{ok} && $run->{failed} == 0 && $run->{processed} > 0,
	"killing a1 and b2 during pgbench changes nothing for its clients: $run->{processed} transactions, none failed")
  or diag("$run->{out}\n$run->{err}");
is($c->safe_psql('SELECT count(*) FROM pgbench_history'), $run->{before} + $run->{processed},
	'every transaction it saw acknowledged left its row');
is($c->safe_psql($invariants), 't', 'balances agree');

$c->ctl('kill', 'a2');
# every page of pgbench_accounts again: 1 MB of shared buffers holds few of them
is($c->safe_psql('SELECT count(*) FROM pgbench_accounts'), '200000',
	'with a whole AZ and one more node down, reads are served')
  or diag('sequential scan: ' . $c->safe_psql('SET enable_indexonlyscan = off; SET enable_indexscan = off; '
	  . 'SET enable_bitmapscan = off; SELECT count(*) FROM pgbench_accounts') . '; duplicates: '
	  . $c->safe_psql('SELECT count(*) FROM (SELECT aid FROM pgbench_accounts GROUP BY aid HAVING count(*) > 1) d')
	  . '; plan: ' . $c->safe_psql('EXPLAIN SELECT count(*) FROM pgbench_accounts'));
my ($wout, $werr) = ('', '');
my $writer = IPC::Run::start([ "$prefix/bin/psql", '-X', '-A', '-t', @conn, '-c',
		'INSERT INTO acked VALUES (-1, NULL)' ], '>', \$wout, '2>', \$werr);
ok($c->poll_query_until(q{SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'}, '1', 20),
	'while a commit waits for a write quorum');
is($c->safe_psql('SELECT count(*) FROM acked WHERE id = -1'), '0', 'which no one else sees');
$c->ctl('start', 'a1', 'a2', 'b2');
$writer->finish;
is($c->safe_psql('SELECT count(*) FROM acked WHERE id = -1'), '1', 'once the nodes are back the commit completes');
is($c->safe_psql($invariants), 't', 'and everything still agrees');

done_testing();
