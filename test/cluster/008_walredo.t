# test/cluster/008_walredo.t: pages rebuilt from the log by the WAL-redo
# helper (`postgres --wal-redo`, src/walredo.c, core patch 0003) equal the
# compute's pages.  A compute ships its WAL to six storage nodes; tables and
# indexes created after start (so every page is in the log) get inserts, HOT
# and non-HOT updates, deletes and a VACUUM (visibility-map bits set, then
# cleared by later changes); after a CHECKPOINT, every block of the heap, its
# visibility map and its two btree indexes is rebuilt from one node's log
# with `aurora-ctl redo` at the volume durable LSN and compared with the
# block in the compute's data files: heap and index pages masked as
# wal_consistency_checking masks them (hint bits, LSN, checksum, unused
# space), visibility-map pages byte for byte but for the checksum.
# Also: a chain the helper cannot apply is reported with the record's LSN
# and resource manager; a block with no initializing record, a wrong
# --postgres binary and one that talks garbage are clear errors.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use AuroraCluster;
use PageFiles;

my $prefix   = $ENV{AURORA_PG_PREFIX};
my $postgres = "$prefix/bin/postgres";
my $ctl      = "$ENV{AURORA_REPO}/storage_service/build/aurora-ctl";
my ($n_pgs, $bps) = (4, 128);

my $c = AuroraCluster->new(shipping => 1, local_pages => 1);
my @nodes = qw(a1 a2 b1 b2 c1 c2);
$c->node_conf_set($_, 'gossip_interval_ms', 100) for @nodes;
$c->compute_conf_append(join "\n", "aurora.protection_groups = $n_pgs",
	"aurora.blocks_per_segment = $bps", "autovacuum = off");
$c->start;
ok($c->poll_query_until('SELECT vdl IS NOT NULL FROM aurora.watermarks()', 't'), 'the shipper ships');

# --- a workload whose every page is in the log --------------------------------
$c->safe_psql('CREATE TABLE t (id int PRIMARY KEY, v int, s text) WITH (fillfactor = 80)');
$c->safe_psql('CREATE INDEX t_v ON t (v)');
$c->safe_psql("INSERT INTO t SELECT g, g % 97, repeat('x', 50 + g % 40) FROM generate_series(1, 3000) g");
$c->safe_psql("UPDATE t SET s = s || 'h' WHERE id % 7 = 0");      # HOT (s is not indexed)
$c->safe_psql("UPDATE t SET v = v + 1000 WHERE id % 11 = 0");      # non-HOT (v is)
$c->safe_psql('DELETE FROM t WHERE id % 13 = 0');
$c->safe_psql('VACUUM t');                                       # prune, freeze map, VM bits
$c->safe_psql("INSERT INTO t SELECT g, g, 'after vacuum' FROM generate_series(3001, 3400) g");
$c->safe_psql("UPDATE t SET s = 'cleared' WHERE id % 101 = 0");  # clears VM bits of old pages
$c->safe_psql('DELETE FROM t WHERE id BETWEEN 2000 AND 2100');
my $t_pages = $c->safe_psql("SELECT pg_relation_size('t') / 8192");
$c->safe_psql('DELETE FROM t WHERE (ctid::text::point)[0] >= ' . ($t_pages - 6));
$c->safe_psql('VACUUM t');                                       # truncates the empty tail
my $t_left = $c->safe_psql("SELECT pg_relation_size('t') / 8192");
cmp_ok($t_left, '<', $t_pages, "VACUUM truncated the heap from $t_pages to $t_left blocks (smgr truncate)");
# the other index access methods and a sequence
$c->safe_psql('CREATE TABLE m (id int, arr int[], p point, b box, w text)');
$c->safe_psql('CREATE INDEX m_hash ON m USING hash (id)');
$c->safe_psql('CREATE INDEX m_gin ON m USING gin (arr)');
$c->safe_psql('CREATE INDEX m_gist ON m USING gist (b)');
$c->safe_psql('CREATE INDEX m_spgist ON m USING spgist (p)');
$c->safe_psql('CREATE INDEX m_brin ON m USING brin (id) WITH (pages_per_range = 2)');
$c->safe_psql('CREATE SEQUENCE sq');
my $m_rows = "SELECT g, ARRAY[g % 10, g % 17, g % 31], point(g % 100, g / 100), "
  . "box(point(g % 50, g % 70), point(g % 50 + 1, g % 70 + 2)), md5(g::text) FROM generate_series";
$c->safe_psql("INSERT INTO m $m_rows(1, 4000) g");
$c->safe_psql('SELECT nextval(\'sq\') FROM generate_series(1, 100)');
$c->safe_psql('DELETE FROM m WHERE id % 5 = 0');
$c->safe_psql('VACUUM m');
$c->safe_psql("INSERT INTO m $m_rows(4001, 5000) g");
$c->safe_psql('CHECKPOINT');

# VDL past everything the compute wrote, and every node holding all of it
ok($c->poll_vdl_covers_wal, 'VDL covers the workload and the checkpoint');
my $vdl = $c->safe_psql('SELECT vdl FROM aurora.watermarks()');
ok($c->poll_until(sub { $c->scl_converged($n_pgs, @nodes) }),
	'all six nodes hold the same log of every PG (gossip filled any gap)');
my $url = $c->node_urls->{a1};

my $db = $c->safe_psql('SELECT oid FROM pg_database WHERE datname = current_database()');
my $pgdata = $c->dir . '/pgdata';
my $tmp = tempdir('walredo-XXXXXX', DIR => $ENV{TESTDIR} // '/tmp', CLEANUP => 1);

# aurora-ctl redo with this server as the helper; returns (exit code, output)
sub run_ctl { return run($ctl, 'redo', '--postgres', $postgres, @_) }

# rebuild a block at VDL (masked: $mask is 1 for the masking the tool infers
# from the records, or a resource manager id); returns (exit code, output, page)
sub rebuild
{
	my ($block, $mask, @extra) = @_;
	my $file = "$tmp/rebuilt";
	unlink $file;
	my @m = !$mask ? () : $mask eq '1' ? ('--mask') : ('--mask-rmgr', $mask);
	my ($rc, $out) = run_ctl('--node', $url, '--pgs', $n_pgs, '--blocks-per-segment', $bps,
		'--block', $block, '--lsn', $vdl, @m, @extra, '-o', $file);
	return ($rc, $out, $rc == 0 ? slurp($file) : undef);
}

# a page of the compute's masked for resource manager $rmgr (through
# $tmp/compute, which the bad-binary tests below read too)
sub mask_file_page
{
	my ($block, $rmgr, $page) = @_;
	return mask_pages($rmgr, $block, $page, "$tmp/compute");
}

# first differing byte offset, for diagnostics
sub first_diff
{
	my ($a, $b) = @_;
	for my $i (0 .. length($a) - 1)
	{
		return $i if substr($a, $i, 1) ne substr($b, $i, 1);
	}
	return -1;
}

# relation, fork, and the resource manager whose masking applies to its pages
# (RM_HEAP_ID 10, RM_BTREE_ID 11, RM_HASH_ID 12, RM_GIN_ID 13, RM_GIST_ID 14,
# RM_SEQ_ID 15, RM_SPGIST_ID 16, RM_BRIN_ID 17); visibility maps unmasked
my @rels = (['t', 'main', 10], ['t', 'vm', 0], ['t_pkey', 'main', 11], ['t_v', 'main', 11],
	['m', 'main', 10], ['m', 'vm', 0], ['m_hash', 'main', 12], ['m_gin', 'main', 13],
	['m_gist', 'main', 14], ['m_spgist', 'main', 16], ['m_brin', 'main', 17], ['sq', 'main', 15]);
my (%checked, %bad, %holes, @errors);
for my $r (@rels)
{
	my ($rel, $fork, $rmgr) = @$r;
	my ($filenode, $path, $nblocks) = split /\|/, $c->safe_psql(
		"SELECT pg_relation_filenode('$rel'), pg_relation_filepath('$rel'), "
		  . "pg_relation_size('$rel', '$fork') / 8192");
	my $file = "$pgdata/$path" . ($fork eq 'vm' ? '_vm' : '');
	my $forknum = $fork eq 'vm' ? 2 : 0;
	for my $blkno (0 .. $nblocks - 1)
	{
		my $block = "1663/$db/$filenode/$forknum/$blkno";
		my $mine = read_block($file, $blkno);
		my ($rc, $out, $page) = rebuild($block, $rmgr);
		$checked{"$rel.$fork"}++;
		if ($rc != 0)
		{
			# a block the compute never wrote or logged (hash indexes allocate
			# bucket pages in batches and log only the last one): a hole
			if ($mine eq "\0" x 8192 && $out =~ /none of the 0 records/)
			{
				$holes{"$rel.$fork"}++;
				next;
			}
			push @errors, "$block ($rel $fork): $out";
			$bad{"$rel.$fork"}++;
			next;
		}
		if ($rmgr)
		{
			$mine = mask_file_page($block, $rmgr, $mine);
		}
		else
		{
			# the helper stamps a checksum; the compute runs without them
			substr($page, 8, 2) = "\0\0";
			substr($mine, 8, 2) = "\0\0";
		}
		if ($rel eq 'm_spgist' && $blkno == 0)
		{
			# SP-GiST keeps a cache of last-used pages in its metapage
			# (SpGistLUPCache, after the header and magic number) that it
			# never WAL-logs: only the compute has it
			substr($page, 28) = substr($mine, 28);
		}
		if ($rel eq 'sq')
		{
			# nextval() logs the sequence 32 values ahead of what it hands
			# out: the page from the log has the logged last_value with
			# log_cnt 0 (the data tuple: int8 last_value, int8 log_cnt, bool
			# is_called at offset 8160)
			my ($lv_log, $cnt_log) = unpack('q< q<', substr($page, 8160, 16));
			my ($lv_mine, $cnt_mine) = unpack('q< q<', substr($mine, 8160, 16));
			ok($lv_log == $lv_mine + $cnt_mine && $cnt_log == 0,
				"sequence page: last_value $lv_log as logged = $lv_mine + log_cnt $cnt_mine");
			substr($page, 8160, 16) = substr($mine, 8160, 16);
		}
		if ($page ne $mine)
		{
			push @errors, "$block ($rel $fork) differs from byte " . first_diff($page, $mine);
			$bad{"$rel.$fork"}++;
		}
	}
}
for my $k (sort keys %checked)
{
	my $h = $holes{$k} ? " ($holes{$k} never-written holes)" : '';
	is($bad{$k} // 0, 0, "$k: all $checked{$k} blocks rebuilt from the log equal the compute's$h");
}
diag($_) for @errors[0 .. ($#errors > 9 ? 9 : $#errors)];
is(scalar(keys %checked), scalar(@rels), 'every relation and fork had blocks');

# --- chains the helper cannot apply --------------------------------------------
# the first heap page: leave out one record after its newest initializing one
my ($filenode) = $c->safe_psql("SELECT pg_relation_filenode('t')");
my $block0 = "1663/$db/$filenode/0/0";
my ($rc, $out) = rebuild($block0, 1);
is($rc, 0, 'heap block 0 rebuilds') or diag($out);
like($out, qr/mask_rmgr (9|10)$/m, '--mask picks the heap masking from its records');
my ($records) = $out =~ /records (\d+)/;
cmp_ok($records, '>=', 3, "from a chain of several records ($records)");

# the comparison can fail: the same page one record earlier differs
($rc, $out) = rebuild($block0, 1, '--list');
my @chain = $out =~ /^record (\S+) (\S+) rmgr (\d+)( init)?$/mg;
my @recs;
push @recs, [splice(@chain, 0, 4)] while @chain;
is(scalar @recs, $records, '--list shows the records applied');
ok($recs[0][3], 'the first one initializes the page');
my $mine0 = mask_file_page($block0, 10, read_block("$pgdata/" . $c->safe_psql("SELECT pg_relation_filepath('t')"), 0));
my ($rc_old, $out_old) = run_ctl('--node', $url, '--pgs', $n_pgs, '--blocks-per-segment', $bps,
	'--block', $block0, '--lsn', $recs[0][1], '--mask-rmgr', 10, '-o', "$tmp/older");
is($rc_old, 0, 'the page as of its first record rebuilds') or diag($out_old);
like($out_old, qr/records 1 /, 'from that one record');
ok(slurp("$tmp/older") ne $mine0, 'and differs from the compute\'s page: the comparison sees changes');

# a block past the truncation VACUUM did no longer exists
($rc, $out) = rebuild("1663/$db/$filenode/0/" . ($t_pages - 1), 0);
isnt($rc, 0, "block " . ($t_pages - 1) . " of t, truncated away, is not rebuilt");
like($out, qr/does not exist at that LSN: its fork was truncated below it/, 'the tool says it was truncated')
  or diag($out);

# leave out the second record (an insert): the third inserts at an offset
# the page does not have yet, and heap redo PANICs
($rc, $out) = rebuild($block0, 0, '--skip', $recs[1][0]);
isnt($rc, 0, 'a chain missing a record fails');
like($out, qr/PANIC while applying WAL record at \Q$recs[2][0]\E \(rmgr Heap/,
	'naming the record that could not be applied and its resource manager') or diag($out);
like($out, qr/invalid max offset number/, 'with the redo routine\'s own message') or diag($out);

# without its initializing record, the page cannot be built at all
($rc, $out) = rebuild($block0, 0, '--skip', $recs[0][0]);
isnt($rc, 0, 'without its initializing record the page cannot be rebuilt...');
like($out, qr/(cannot be built from the log alone|no page yet)/, '...and the tool says why') or diag($out);

# the visibility map was not trivially empty: VACUUM set bits, later changes cleared some
my $vmnode = $c->safe_psql("SELECT pg_relation_filenode('t')");
($rc, $out, my $vm) = rebuild("1663/$db/$vmnode/2/0", 0);
ok($rc == 0 && substr($vm, 24) =~ /[^\0]/, 'the rebuilt visibility-map page has bits set');

# --- bad binaries -----------------------------------------------------------------
($rc, $out) = run_ctl('--mask-rmgr', 10, '--block', $block0, '-i', "$tmp/compute", '-o', "$tmp/x",
	'--postgres', '/bin/true');
isnt($rc, 0, 'a --postgres that is not the server fails');
like($out, qr/did not start/, 'with a clear error') or diag($out);
open(my $fh, '>', "$tmp/garbage.sh") or die;
print $fh "#!/bin/sh\necho 'hello, I am not a WAL-redo helper'\nsleep 5\n";
close($fh);
chmod 0755, "$tmp/garbage.sh";
($rc, $out) = run_ctl('--mask-rmgr', 10, '--block', $block0, '-i', "$tmp/compute", '-o', "$tmp/x",
	'--postgres', "$tmp/garbage.sh");
isnt($rc, 0, 'a --postgres that talks garbage fails');
like($out, qr/not a hello/, 'with a clear error') or diag($out);

done_testing();
