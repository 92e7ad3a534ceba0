# test/cluster/010_page_service.t: the storage nodes' page service (GETPAGE,
# REL_SIZE, SEED_PAGES, coalescing; PROTOCOL.md 5.9) end to end with a
# compute.  The volume is seeded from the initdb'ed data directory with
# aurora-ctl seed while one node is down (a write quorum stores every batch);
# a catalog page is served at the seed LSN exactly as the file held it;
# below it is BELOW_HORIZON; an unclean data directory is refused.
# Then the compute ships a workload (inserts, HOT and non-HOT updates,
# deletes, VACUUM) and, after a CHECKPOINT, every block of the table, its
# visibility map and its primary key as GETPAGE returns it at VDL (or at the
# PG's last record when that is lower: a PG's chain never reaches past it)
# equals the compute's block (heap and btree pages masked as
# wal_consistency_checking masks them); relation sizes
# from REL_SIZE (max over the PGs) equal the files'.  A low
# coalesce_threshold makes the nodes store coalesced images, and the pages
# served after that are still right; a node whose threshold is never reached
# still stores the pages that a record sets whole (full-page images, page
# inits) as images, and serves them right.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use AuroraCluster qw(lsn);
use PageFiles;

my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX not set";
my $ctl    = "$ENV{AURORA_REPO}/storage_service/build/aurora-ctl";
my ($n_pgs, $bps) = (4, 16);
my @nodes = qw(a1 a2 b1 b2 c1 c2);

my $c = AuroraCluster->new(shipping => 1, local_pages => 1);
my $dir = $c->dir;
$c->node_conf_set($_, 'coalesce_threshold', 4) for @nodes;
# c1 shortens no chain, but still stores pages that a record sets whole
$c->node_conf_set('c1', 'coalesce_threshold', 100000);
$c->node_conf_set($_, 'gossip_interval_ms', 100) for @nodes;
$c->compute_conf_append(join "\n", "aurora.protection_groups = $n_pgs",
	"aurora.blocks_per_segment = $bps", "autovacuum = off");
my $tmp = tempdir('pages-XXXXXX', DIR => $ENV{TESTDIR} // '/tmp', CLEANUP => 1);

our $url = $c->node_urls->{b1};

# A read point no higher than each PG's last record (PROTOCOL.md 5.9): a PG
# whose chain ends below the read point never gets complete to it.
my %pg_end;
sub read_point
{
	my ($pg, $lsn) = @_;
	return $lsn unless defined $pg_end{$pg};
	my $l = $lsn =~ m{/} ? lsn($lsn) : $lsn;
	return $pg_end{$pg} < $l ? $pg_end{$pg} : $l;
}

# GETPAGE from node b1 in whichever PG holds the block: (rc, output, page)
sub getpage
{
	my ($block, $lsn) = @_;
	my $pg = 0;
	for (1 .. 2)
	{
		unlink "$tmp/page";
		my ($rc, $out) = run($ctl, 'getpage', '--node', $url, '--pg', $pg, '--block', $block,
			'--lsn', read_point($pg, $lsn), '--wait-ms', 3000, '-o', "$tmp/page");
		if ($rc != 0 && $out =~ /belongs to PG (\d+)/)
		{
			$pg = $1;
			next;
		}
		return ($rc, $out, $rc == 0 ? slurp("$tmp/page") : undef);
	}
	return (1, "no PG", undef);
}

# ---- seeding ------------------------------------------------------------------
my ($rc, $out) = $c->ctl('start', 'all');
is($rc, 0, 'the six storage nodes start') or diag $out;
my ($seed_lsn) = `$prefix/bin/pg_controldata $dir/pgdata` =~ /Latest checkpoint location:\s+(\S+)/;
ok($seed_lsn, "initdb left a shutdown checkpoint at $seed_lsn");
my $pg_database = slurp("$dir/pgdata/global/1262");

# a data directory that was not shut down cleanly is refused
{
	my $copy = "$tmp/unclean";
	system('cp', '-a', "$dir/pgdata", $copy) == 0 or die;
	my $ctlfile = "$copy/global/pg_control";
	# DB_IN_PRODUCTION is state 6; the state is the u32 after the 8-byte system id
	# and the u32 version numbers (offset 16); the CRC then fails, so pg_controldata
	# still reports it (with a warning)
	open(my $fh, '+<:raw', $ctlfile) or die;
	seek($fh, 16, 0);
	print $fh pack('V', 6);
	close($fh);
	($rc, $out) = $c->ctl('seed', '--datadir', $copy, '--postgres-bin', "$prefix/bin",
		'--pgs', $n_pgs, '--blocks-per-segment', $bps);
	isnt($rc, 0, 'seeding a data directory that was not shut down cleanly is refused');
	like($out, qr/not shut down cleanly/, '... saying why') or diag $out;
}

# with one node down a write quorum still stores every batch
($rc, $out) = $c->ctl('kill', 'c2');
($rc, $out) = $c->ctl('seed', '--datadir', "$dir/pgdata", '--postgres-bin', "$prefix/bin",
	'--pgs', $n_pgs, '--blocks-per-segment', $bps);
is($rc, 0, 'aurora-ctl seed stores every relation page (node c2 down)') or diag $out;
my ($seeded) = $out =~ /seeded (\d+) pages/;
cmp_ok($seeded // 0, '>', 100, "... ($seeded pages)");
($rc, $out) = $c->ctl('start', 'c2');
is($rc, 0, 'node c2 restarts') or diag $out;

my ($grc, $gout, $page) = getpage('1664/0/1262/0/0', $seed_lsn);
is($grc, 0, 'GETPAGE of pg_database block 0 at the seed LSN') or diag $gout;
ok(defined $page && $page eq substr($pg_database, 0, 8192), '... is the file\'s block byte for byte');
($grc, $gout) = getpage('1664/0/1262/0/0', '0/10');
isnt($grc, 0, 'GETPAGE below the seed LSN fails');
like($gout, qr/BELOW_HORIZON/, '... with BELOW_HORIZON') or diag $gout;

# ---- the compute ships a workload -------------------------------------------------
$c->start;
ok($c->poll_query_until('SELECT vdl IS NOT NULL FROM aurora.watermarks()', 't'), 'the compute ships');
$c->safe_psql('CREATE TABLE t (id int PRIMARY KEY, v int, s text) WITH (fillfactor = 80)');
$c->safe_psql("INSERT INTO t SELECT g, g % 97, repeat('x', 40 + g % 30) FROM generate_series(1, 3000) g");
$c->safe_psql("UPDATE t SET s = s || 'h' WHERE id % 7 = 0");
$c->safe_psql("UPDATE t SET v = v + 1000 WHERE id % 11 = 0");
$c->safe_psql('DELETE FROM t WHERE id % 13 = 0');
$c->safe_psql('VACUUM t');
$c->safe_psql("UPDATE t SET s = 'cleared' WHERE id % 101 = 0");
$c->safe_psql("INSERT INTO t SELECT g, g, 'late' FROM generate_series(3001, 3300) g");
$c->safe_psql('CHECKPOINT');
ok($c->poll_vdl_covers_wal, 'VDL covers the workload');
my $vdl = $c->safe_psql('SELECT vdl FROM aurora.watermarks()');
ok($c->poll_until(sub { $c->scl_converged($n_pgs, @nodes) }),
	'every node holds every PG\'s log (gossip filled any gap)');
$pg_end{$_} = $c->segment_state('b1', $_)->{scl} for 0 .. $n_pgs - 1;

my $db = $c->safe_psql('SELECT oid FROM pg_database WHERE datname = current_database()');
my ($filenode, $path, $nblocks, $vm_blocks, $idx_node, $idx_blocks) = split /\|/, $c->safe_psql(
	"SELECT pg_relation_filenode('t'), pg_relation_filepath('t'), pg_relation_size('t') / 8192, "
	  . "pg_relation_size('t', 'vm') / 8192, pg_relation_filenode('t_pkey'), pg_relation_size('t_pkey') / 8192");
my $file = "$dir/pgdata/$path";

# a page masked for resource manager $rmgr; a heap page masked
sub mask_page { my ($rmgr, $block, $bytes) = @_; return mask_pages($rmgr, $block, $bytes, "$tmp/in") }
sub mask_heap { return mask_page(10, @_) }

# GETPAGE of every heap block of t at VDL from $url, against the compute's
# (masked): sets @errors (blocks not served) and @bad (blocks that differ)
my (@bad, @errors);
sub compare_heap
{
	@bad = @errors = ();
	for my $blkno (0 .. $nblocks - 1)
	{
		my $block = "1663/$db/$filenode/0/$blkno";
		my ($rc, $out, $p) = getpage($block, $vdl);
		if ($rc != 0) { push @errors, "$block: $out"; next }
		push @bad, $block if mask_heap($block, $p) ne mask_heap($block, read_block($file, $blkno));
	}
}
compare_heap();
is(scalar(@errors), 0, "GETPAGE serves all $nblocks heap blocks at VDL") or diag join "\n", @errors[0 .. 4];
is(scalar(@bad), 0, 'every heap block equals the compute\'s (masked)') or diag "differ: @bad[0 .. 4]";

# The columns of a node's row in aurora-ctl status (NODE AZ URL STATE UPTIME
# REQUESTS ERRORS RTT_MS REDO COALESCE INDEXED GETPAGES IMAGES ... INDEX_LAG
# COALESCE_LAG), or () if it is not serving.
sub status_row
{
	my ($node) = @_;
	my ($rc, $out) = run($ctl, 'status', $c->node_urls->{$node});
	my @rows = grep { /serving/ } split /\n/, $out;
	return () unless @rows;
	return split /\s+/, $rows[0];
}

# A record that sets a page whole (full-page image, page init) is stored as
# an image at once, whatever the threshold: node c1 (threshold 100000) has
# written images, and serves every heap block right.  node_images: how
# many page images a node has stored, or -1 if it does not answer.
sub node_images
{
	my ($node) = @_;
	my @f = status_row($node);
	return -1 unless @f;
	return $f[12];    # IMAGES
}
ok($c->poll_until(sub { node_images('c1') > 0 }), 'c1 stored images of pages set whole by a record ('
	  . node_images('c1') . ') with no chain over its threshold');
{
	local $url = $c->node_urls->{c1};
	compare_heap();
	is(scalar(@errors) + scalar(@bad), 0, "c1 serves all $nblocks heap blocks equal to the compute's")
	  or diag join "\n", @errors[0 .. 4], @bad[0 .. 4];
}

# STATUS reports the background work still to do; with no new writes every
# node's backlog (log bytes to index, blocks to look at for coalescing) drains.
sub node_backlog
{
	my ($node) = @_;
	my @f = status_row($node);
	return 'no answer' unless @f;
	return "$f[15]/$f[16]";    # INDEX_LAG COALESCE_LAG, the last two columns
}
my %backlog;
ok( $c->poll_until(
		sub {
			%backlog = map { $_ => node_backlog($_) } sort keys %{ $c->node_urls };
			!grep { $_ ne '0/0' } values %backlog;
		}),
	'every node reports its page-service backlog drained (INDEX_LAG/COALESCE_LAG 0/0)')
  or diag join ', ', map { "$_=$backlog{$_}" } sort keys %backlog;

@bad = @errors = ();
my $idx_file = "$dir/pgdata/" . $c->safe_psql("SELECT pg_relation_filepath('t_pkey')");
for my $blkno (0 .. $idx_blocks - 1)
{
	my $block = "1663/$db/$idx_node/0/$blkno";
	my ($rc, $out, $p) = getpage($block, $vdl);
	if ($rc != 0) { push @errors, "$block: $out"; next }
	push @bad, $block
	  if mask_page(11, $block, $p) ne mask_page(11, $block, read_block($idx_file, $blkno));
}
is(scalar(@errors) + scalar(@bad), 0, "the $idx_blocks btree blocks equal the compute's (masked)")
  or diag join "\n", @errors[0 .. 4], @bad[0 .. 4];

@bad = @errors = ();
for my $blkno (0 .. $vm_blocks - 1)
{
	my $block = "1663/$db/$filenode/2/$blkno";
	my ($rc, $out, $p) = getpage($block, $vdl);
	if ($rc != 0) { push @errors, "$block: $out"; next }
	my $mine = read_block("${file}_vm", $blkno);
	substr($_, 8, 2) = "\0\0" for ($p, $mine);	# the helper stamps a checksum
	substr($_, 0, 8) = "\0" x 8 for ($p, $mine);	# pd_lsn: hint-only VM changes
	push @bad, $block if $p ne $mine;
}
is(scalar(@errors) + scalar(@bad), 0, "the $vm_blocks visibility-map blocks equal the compute's")
  or diag join "\n", @errors, @bad;

# REL_SIZE: a fork's size is the max over its PGs
sub relsize
{
	my ($rel) = @_;
	my ($max, $exists) = (0, 0);
	for my $pg (0 .. $n_pgs - 1)
	{
		my ($rc, $out) = run($ctl, 'relsize', '--node', $url, '--pg', $pg, '--rel', $rel,
			'--lsn', read_point($pg, $vdl), '--wait-ms', 3000);
		return "error: $out" if $rc != 0;
		my ($e, $n) = $out =~ /exists (\w+) nblocks (\d+)/;
		$exists ||= $e eq 'yes';
		$max = $n if $n > $max;
	}
	return $exists ? $max : 'missing';
}
is(relsize("1663/$db/$filenode/0"), $nblocks, "REL_SIZE of the heap: $nblocks blocks");
is(relsize("1663/$db/$idx_node/0"), $idx_blocks, "REL_SIZE of its index: $idx_blocks blocks");
is(relsize("1663/$db/4000000000/0"), 'missing', 'an unknown relation does not exist');

# coalescing stored images (threshold 4), and pages are right with them
my $log = slurp("$dir/nodes/b1/aurora-storage.log") // '';
like($log, qr/coalesced \d+ blocks/, 'node b1 coalesced long chains into images');
$c->safe_psql("UPDATE t SET v = v + 1 WHERE id % 3 = 0");
$c->safe_psql('CHECKPOINT');
ok($c->poll_vdl_covers_wal, 'VDL covers the update');
$vdl = $c->safe_psql('SELECT vdl FROM aurora.watermarks()');
ok($c->poll_until(sub { $c->scl_converged($n_pgs, @nodes) }),
	'every node holds the new records');
$pg_end{$_} = $c->segment_state('b1', $_)->{scl} for 0 .. $n_pgs - 1;
compare_heap();
is(scalar(@errors) + scalar(@bad), 0, 'after coalescing, every heap block still equals the compute\'s')
  or diag join "\n", @errors[0 .. 4], @bad[0 .. 4];

$c->stop;
done_testing();
