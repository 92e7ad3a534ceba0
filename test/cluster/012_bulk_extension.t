# test/cluster/012_bulk_extension.t: blocks a heap was extended by without
# WAL (issue 25).  When a backend has to wait for a relation's extension
# lock, PostgreSQL extends the heap by one or more extra blocks at once
# (RelationAddExtraBlocks) and logs nothing for them: they are zero pages
# inside the relation's size until a tuple first lands on one, with an
# initializing record.  Read at an LSN before that record, such a block is
# what PostgreSQL would have read then, a zero page: storage answers
# NO_BLOCK (which the storage manager maps to zeros), at every node, and
# never BELOW_HORIZON (which once failed the page oracle under load).
#
# Several sessions insert wide rows into one table at once until some
# blocks inside its size hold no tuple yet (bulk extension happened); at
# that LSN (L1) those blocks are read from every node.  Then one session
# fills them and, at its LSN (L2), every node is asked again at both LSNs.
# The storage manager, with a tiny buffer cache, reads the unused blocks
# from storage as zero pages and the filled ones with their rows.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use IPC::Run ();
use AuroraCluster;
use PageFiles;

my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX not set";
my ($n_pgs, $bps) = (4, 16);
my @nodes = qw(a1 a2 b1 b2 c1 c2);

my $c = AuroraCluster->new(shipping => 1);
$c->compute_conf_append(join "\n", "shared_buffers = 1MB", "aurora.protection_groups = $n_pgs",
	"aurora.blocks_per_segment = $bps", "autovacuum = off");
$c->start;
my $tmp = tempdir('bulk-XXXXXX', DIR => $ENV{TESTDIR} // '/tmp', CLEANUP => 1);
my @conn = ('-h', '127.0.0.1', '-p', $c->pgport, 'postgres');

$c->safe_psql('CREATE EXTENSION pageinspect');
$c->safe_psql('CREATE TABLE t (client int, pad text) WITH (fillfactor = 100)');
$c->safe_psql("ALTER TABLE t ALTER COLUMN pad SET STORAGE PLAIN");
# four rows a page: a new page every fourth insert, so sessions meet at the
# extension lock all the time
spew("$tmp/insert.sql", "INSERT INTO t VALUES (:client_id, repeat('x', 1900));\n");

my $unused_sql  = q{SELECT b FROM generate_series(0, pg_relation_size('t') / 8192 - 1) b
  EXCEPT SELECT DISTINCT (ctid::text::point)[0]::int FROM t ORDER BY 1};

# ---- extend under contention until blocks without a tuple exist -------------
my ($rounds, @unused) = (0);
while ($rounds < 20 && !@unused)
{
	$rounds++;
	my ($out, $err) = ('', '');
	IPC::Run::run([ "$prefix/bin/pgbench", '-n', '-c', '8', '-j', '2', '-t', '50', '-f', "$tmp/insert.sql", @conn ],
		'>', \$out, '2>', \$err)
	  or BAIL_OUT("pgbench failed: $err");
	@unused = split /\n/, $c->safe_psql($unused_sql);
}
ok(@unused > 0, "eight sessions inserting at once left blocks inside the table's size that hold no tuple "
	  . "(bulk extension; " . scalar(@unused) . " blocks after $rounds rounds of 400 inserts)")
  or BAIL_OUT('no bulk extension happened');

# An LSN to read at, and a record above it in every PG (a relation change
# goes to all of them), so that every PG's chain reaches it.
my $fence = 0;
sub read_point
{
	my $lsn = $c->safe_psql('SELECT pg_current_wal_insert_lsn()');
	$fence++;
	$c->safe_psql("CREATE TABLE fence_$fence ()");
	ok($c->poll_vdl_covers_wal, "VDL covers $lsn");
	return $lsn;
}
my $l1 = read_point();

# A page of zeros, through the buffer manager: pd_lsn 0, pd_lower 0.
sub zero_pages_through_smgr
{
	my (@blocks) = @_;
	my $list = join ',', @blocks;
	return $c->safe_psql("SELECT count(*) FROM unnest(ARRAY[$list]) b, "
		  . "LATERAL page_header(get_raw_page('t', b)) h WHERE h.lsn = '0/0' AND h.lower = 0 AND h.upper = 0");
}

# Each block of @blocks at $lsn from one node: the status lines of
# aurora-ctl getpage --batch.
sub getpages
{
	my ($node, $lsn, @blocks) = @_;
	my $relpath = $c->safe_psql(q{SELECT (SELECT oid FROM pg_database WHERE datname = current_database())
	  || '/' || pg_relation_filenode('t')});
	my ($rc, $out, $pages) = $c->getpage_batch($node, "$tmp/getpage", $n_pgs, $bps,
		map { "1663/$relpath/0/$_ $lsn" } @blocks);
	return ($rc, [ split /\n/, $out ], $pages);
}

# How many answers were NO_BLOCK (the node's "not written at that LSN"),
# and the others, for the report.
sub tally
{
	my ($status) = @_;
	my ($holes, @other) = (0);
	for (@$status)
	{
		if (/NO_BLOCK/) { $holes++ }
		else            { push @other, $_ }
	}
	return ($holes, @other);
}

for my $node (@nodes)
{
	my ($rc, $status) = getpages($node, $l1, @unused);
	my ($holes, @other) = tally($status);
	ok($rc == 0 && $holes == @unused, "$node at L1: every unused block is NO_BLOCK ($holes of " . scalar(@unused) . ')')
	  or diag(join "\n", "rc $rc", @other[ 0 .. ($#other < 4 ? $#other : 4) ]);
}
# evict them: a tiny cache and a scan of the whole table
$c->safe_psql('SELECT count(*) FROM t');
my $read_before = $c->safe_psql('SELECT pages_read FROM aurora.storage_manager_stats()');
is(zero_pages_through_smgr(@unused), scalar(@unused),
	'the storage manager reads every unused block as a page of zeros');
cmp_ok($c->safe_psql('SELECT pages_read FROM aurora.storage_manager_stats()'), '>', $read_before,
	'... from storage (shared_buffers 1MB)');

# ---- one session fills the free blocks; each gets an initializing record ------
# The free space map is not WAL-logged: what bulk extension entered in it
# is gone once its page was evicted (storage rebuilds it from the log), so
# VACUUM enters the zero pages again just before the insert.
my $before = $c->safe_psql('SELECT count(*) FROM t');
my ($inserted, %now_unused, @filled) = (0);
for my $try (1 .. 5)
{
	$c->safe_psql('VACUUM t');
	$c->safe_psql("INSERT INTO t SELECT 0, repeat('y', 1900) FROM generate_series(1, " . (4 * @unused + 8) . ')');
	$inserted += 4 * @unused + 8;
	%now_unused = map { $_ => 1 } split /\n/, $c->safe_psql($unused_sql);
	@filled = grep { !$now_unused{$_} } @unused;
	last if @filled;
}
ok(@filled > 0, scalar(@filled) . ' of the ' . scalar(@unused) . ' blocks received rows from one session (VACUUM, then the free space map)')
  or BAIL_OUT('the unused blocks were never filled');
my $l2 = read_point();
my $filled_list = join ',', @filled;
is($c->safe_psql("SELECT count(*) FROM t WHERE (ctid::text::point)[0]::int IN ($filled_list) AND pad LIKE 'y%'"),
	$c->safe_psql("SELECT count(*) FROM t WHERE (ctid::text::point)[0]::int IN ($filled_list)"),
	'the rows in them are the new ones');

for my $node (@nodes)
{
	my ($rc, $status) = getpages($node, $l1, @filled);
	my ($holes, @other) = tally($status);
	ok($rc == 0 && $holes == @filled,
		"$node at L1, below their first record: every filled block is still NO_BLOCK, never BELOW_HORIZON "
		  . "($holes of " . scalar(@filled) . ')')
	  or diag(join "\n", "rc $rc", @other[ 0 .. ($#other < 4 ? $#other : 4) ]);
	($rc, $status) = getpages($node, $l2, @filled);
	my $pages = 0;
	$pages += /^ok / ? 1 : 0 for @$status;
	ok($rc == 0 && $pages == @filled, "$node at L2: every filled block is a page ($pages of " . scalar(@filled) . ')')
	  or diag(join "\n", grep { !/^ok / } @$status);
}

# through the storage manager: the rows are all there, the rest is zeros
$c->safe_psql('SELECT count(*) FROM t');
is($c->safe_psql('SELECT count(*) FROM t'), $before + $inserted, 'every row reads back through the storage manager');
my @still = grep { $now_unused{$_} } @unused;
is(zero_pages_through_smgr(@still), scalar(@still), 'blocks still unused read as zeros (' . scalar(@still) . ')')
  if @still;
is($c->safe_psql("SELECT count(*) FROM unnest(ARRAY[$filled_list]) b, LATERAL page_header(get_raw_page('t', b)) h "
	  . "WHERE h.lsn > '$l1'"), scalar(@filled), 'filled blocks read back with their new page LSN');
my ($rc, $out) = run("$prefix/bin/pg_amcheck", '-h', '127.0.0.1', '-p', $c->pgport, '-d', 'postgres', '-t', 't',
	'--install-missing');
is($rc, 0, 'pg_amcheck finds the heap sound') or diag $out;

$c->stop;
done_testing();
