# test/cluster/009_page_oracle.t: the correctness oracle of the page service
# (issue 5).  A volume is seeded from a freshly initdb'ed data directory, and
# a compute ships its WAL to six storage nodes while a workload runs (pgbench
# plus SQL covering heap, HOT, TOAST, btree splits and deletes, hash, GIN,
# GiST, SP-GiST, BRIN, sequences, VACUUM, TRUNCATE, CREATE/DROP, VACUUM FULL,
# an aborted CREATE, unlogged tables).  Twice, after a CHECKPOINT, the data
# directory is copied; at the end, for every block of every relation of every
# database in each copy, the page a storage node returns for that point's LSN
# (GETPAGE, rebuilt from seed images, coalesced images and the log) must equal
# the copy's block, ignoring only what wal_consistency_checking masks (hint
# bits, unused space, cmin/cmax, the checksum...).  The first copy is checked
# at its older LSN after the second workload has changed most pages again.
# Relation sizes the storage derives from the log (REL_SIZE, max over the
# PGs) must equal the files' sizes.
#
# Known differences, each asserted rather than ignored:
#  - free space map forks are not compared: PostgreSQL does not WAL-log them
#    (only approximately, during redo);
#  - unlogged relations' main and VM forks are not WAL-logged (their init
#    fork is, and is compared);
#  - a block the compute extended but had not WAL-logged yet at the copy's
#    LSN (hash index bucket space; heap blocks a backend added without WAL
#    while it waited for the extension lock, RelationAddExtraBlocks, logged
#    only when a tuple first lands on them: 012_bulk_extension.t) is all
#    zeros in the file and NO_BLOCK in storage, never BELOW_HORIZON, even
#    when later records reach it;
#  - a sequence page holds the value as logged: last_value + log_cnt of the
#    compute's page, log_cnt 0 (nextval logs 32 values ahead);
#  - the SP-GiST metapage's cache of last-used pages is not WAL-logged;
#  - CREATE DATABASE (WAL_LOG strategy) logs the template's visibility-map
#    pages with page_std set: their bits lie in what the header calls the
#    hole, so the log (and a standby) gets them cleared.  Storage may show
#    fewer all-visible bits there (safe: a clear bit only means "check the
#    heap"), never more.
use strict;
use warnings;
use Test::More;
use File::Path ();
use File::Temp qw(tempdir);
use AuroraCluster;
use PageFiles;

my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX not set";
my $ctl    = "$ENV{AURORA_REPO}/storage_service/build/aurora-ctl";
my ($n_pgs, $bps) = (4, 8);
my @nodes = qw(a1 a2 b1 b2 c1 c2);

my $c = AuroraCluster->new(shipping => 1, local_pages => 1);
my $dir = $c->dir;
$c->node_conf_set($_, 'gossip_interval_ms', 100) for @nodes;
$c->compute_conf_append(join "\n", "aurora.protection_groups = $n_pgs",
	"aurora.blocks_per_segment = $bps", "autovacuum = off");
my $tmp = tempdir('oracle-XXXXXX', DIR => $ENV{TESTDIR} // '/tmp', CLEANUP => 1);

# ---- seed the volume from the initdb'ed data directory, then start ---------
my ($rc, $out) = $c->ctl('start', 'all');
is($rc, 0, 'the six storage nodes start') or diag $out;
($rc, $out) = $c->ctl('seed', '--datadir', "$dir/pgdata", '--postgres-bin', "$prefix/bin",
	'--pgs', $n_pgs, '--blocks-per-segment', $bps);
is($rc, 0, 'aurora-ctl seed stores every page of the initdb\'ed cluster as a base image') or diag $out;
$c->start;
ok($c->poll_query_until('SELECT vdl IS NOT NULL FROM aurora.watermarks()', 't'), 'the compute ships');

# ---- what each relation file is, for masking ------------------------------------
my %rmgr_of_am = (heap => 10, btree => 11, hash => 12, gin => 13, gist => 14,
	spgist => 16, brin => 17);
# "DB/RELFILENODE" => {kind, persist, am, name} of every relation of every database
sub relation_map
{
	my %map;
	my @dbs = split /\n/, $c->safe_psql('SELECT oid || \' \' || datname FROM pg_database WHERE datallowconn');
	for my $d (@dbs)
	{
		my ($dboid, $name) = split / /, $d;
		my ($r, $o) = $c->psql(
			"SELECT CASE WHEN c.relisshared THEN 0 ELSE (SELECT oid FROM pg_database WHERE datname = current_database()) END, "
			  . "pg_relation_filenode(c.oid), c.relkind, c.relpersistence, coalesce(a.amname, ''), c.relname "
			  . "FROM pg_class c LEFT JOIN pg_am a ON a.oid = c.relam "
			  . "WHERE pg_relation_filenode(c.oid) IS NOT NULL", $name);
		die "pg_class of $name: $o" if $r != 0;
		for my $line (split /\n/, $o)
		{
			my ($db, $node, $kind, $persist, $am, $relname) = split /\|/, $line;
			$map{"$db/$node"} = { kind => $kind, persist => $persist, am => $am, name => $relname };
		}
	}
	return \%map;
}

# ---- a consistent copy of the data files at a known LSN --------------------------
# The LSN is taken before the CHECKPOINT: nothing changes pages in between
# (autovacuum is off, no session writes), so the files the checkpoint leaves
# are the pages as of that LSN.  Then a CREATE TABLE sends an smgr record to
# every PG, so every PG's chain reaches past that LSN (a GETPAGE waits until
# the segment's SCL covers its LSN) without changing any relation's pages
# that the copy holds.
my $fence = 0;
sub snapshot
{
	my ($name) = @_;
	my $lsn = $c->safe_psql('SELECT pg_current_wal_insert_lsn()');
	$c->safe_psql('CHECKPOINT');
	my $map = relation_map();
	my ($other_db) = $c->safe_psql("SELECT oid FROM pg_database WHERE datname = 'other'");
	my $copy = "$tmp/$name";
	File::Path::make_path($copy);
	system('cp', '-a', "$dir/pgdata/base", "$dir/pgdata/global", $copy) == 0 or die "cp failed";
	$fence++;
	$c->safe_psql("CREATE TABLE oracle_fence_$fence ()");
	ok($c->poll_vdl_covers_wal, "$name: taken at LSN $lsn; VDL covers it");
	return { name => $name, lsn => $lsn, dir => $copy, map => $map, other_db => $other_db || -1 };
}

# ---- the workload ------------------------------------------------------------------
my @phase1 = (
	'CREATE TABLE h (id int PRIMARY KEY, v int, s text, t text) WITH (fillfactor = 70)',
	'CREATE INDEX h_v ON h (v)',
	"INSERT INTO h SELECT g, g % 101, repeat(md5(g::text), 2), NULL FROM generate_series(1, 6000) g",
	"UPDATE h SET s = s || 'hot' WHERE id % 5 = 0",                 # HOT
	"UPDATE h SET v = v + 1000 WHERE id % 7 = 0",                   # non-HOT, btree inserts
	'DELETE FROM h WHERE id % 11 = 0',
	"UPDATE h SET t = (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 120)) "
	  . 'WHERE id % 97 = 0',                                         # TOAST (out of line)
	'VACUUM h',                                                      # prune, VM bits
	"UPDATE h SET s = 'clears the VM bit' WHERE id % 199 = 0",
	'CREATE TABLE m (id int, arr int[], doc tsvector, p point, b box, r int4range, ts timestamptz)',
	"INSERT INTO m SELECT g, ARRAY[g % 10, g % 17, g % 31], to_tsvector('simple', 'w' || (g % 50) || ' x' || (g % 7)), "
	  . "point(g % 100, g / 100), box(point(g % 50, g % 70), point(g % 50 + 1, g % 70 + 2)), "
	  . "int4range(g, g + 10), '2026-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 5000) g",
	'CREATE INDEX m_hash ON m USING hash (id)',
	'CREATE INDEX m_gin ON m USING gin (arr)',
	'CREATE INDEX m_gin_doc ON m USING gin (doc) WITH (fastupdate = on)',
	'CREATE INDEX m_gist ON m USING gist (b)',
	'CREATE INDEX m_gist_r ON m USING gist (r)',
	'CREATE INDEX m_spgist ON m USING spgist (p)',
	'CREATE INDEX m_brin ON m USING brin (ts) WITH (pages_per_range = 2)',
	"INSERT INTO m SELECT g, ARRAY[g % 3], to_tsvector('simple', 'late' || g), point(g, g), "
	  . "box(point(g, g), point(g + 1, g + 1)), int4range(g, g + 1), now() FROM generate_series(5001, 6000) g",
	'CREATE SEQUENCE sq',
	"SELECT count(nextval('sq')) FROM generate_series(1, 100)",
	'CREATE TABLE gone AS SELECT g FROM generate_series(1, 3000) g',
	'DROP TABLE gone',
	'BEGIN; CREATE TABLE rolled_back AS SELECT g FROM generate_series(1, 2000) g; ROLLBACK',
	"CREATE UNLOGGED TABLE u (id int PRIMARY KEY, v text)",
	"INSERT INTO u SELECT g, md5(g::text) FROM generate_series(1, 2000) g",
);
my @phase2 = (
	"UPDATE h SET s = s || 'again' WHERE id % 3 = 0",
	'DELETE FROM h WHERE id BETWEEN 1000 AND 2500',                   # btree page deletions after VACUUM
	'VACUUM h',
	'DELETE FROM h WHERE id > 5000',
	'VACUUM h',                                                       # truncates the heap (and its VM)
	'DELETE FROM m WHERE id % 4 = 0',
	'VACUUM m',
	"UPDATE m SET arr = arr || 99, doc = doc || to_tsvector('simple', 'more') WHERE id % 9 = 0",
	'TRUNCATE u',
	"INSERT INTO u SELECT g, 'after truncate' FROM generate_series(1, 300) g",
	'CREATE TABLE tr (id int PRIMARY KEY, v text)',
	"INSERT INTO tr SELECT g, md5(g::text) FROM generate_series(1, 3000) g",
	'TRUNCATE tr',                                                    # new relfilenode; old one dropped
	"INSERT INTO tr SELECT g, 'x' FROM generate_series(1, 500) g",
	'VACUUM FULL m',                                                  # rewrite: new files for m and its indexes
	"SELECT count(nextval('sq')) FROM generate_series(1, 77)",
	'CREATE DATABASE other',
);

for my $sql (@phase1)
{
	my ($r, $o, $e) = $c->psql($sql);
	die "workload: $sql: $e" if $r != 0;
}
($rc, $out) = run("$prefix/bin/pgbench", '-i', '-s', 2, '-q', '-h', '127.0.0.1', '-p', $c->pgport,
	'-U', scalar getpwuid($<), 'postgres');
is($rc, 0, 'pgbench -i') or diag $out;
($rc, $out) = run("$prefix/bin/pgbench", '-c', 4, '-T', 8, '-h', '127.0.0.1', '-p', $c->pgport,
	'-U', scalar getpwuid($<), 'postgres');
is($rc, 0, 'pgbench runs') or diag $out;
my $snap1 = snapshot('first');

for my $sql (@phase2)
{
	my ($r, $o, $e) = $c->psql($sql);
	die "workload: $sql: $e" if $r != 0;
}
$c->safe_psql('CREATE TABLE o (id int PRIMARY KEY, v text)', 'other');
$c->safe_psql("INSERT INTO o SELECT g, md5(g::text) FROM generate_series(1, 2000) g", 'other');
($rc, $out) = run("$prefix/bin/pgbench", '-c', 4, '-T', 8, '-h', '127.0.0.1', '-p', $c->pgport,
	'-U', scalar getpwuid($<), 'postgres');
is($rc, 0, 'pgbench runs again') or diag $out;
my $snap2 = snapshot('second');

# ---- compare -------------------------------------------------------------------------
# Every relation file of a copy: [spc, db, relnode, fork, path, nblocks]
sub relation_files
{
	my ($copy) = @_;
	my @files;
	my %fork = ('' => 0, _vm => 2, _init => 3);
	for my $d (glob("$copy->{dir}/base/* $copy->{dir}/global"))
	{
		my ($spc, $db) = $d =~ m{/global$} ? (1664, 0) : (1663, $d =~ m{/(\d+)$});
		opendir(my $dh, $d) or die "$d: $!";
		for my $f (sort readdir $dh)
		{
			next unless $f =~ /^(\d+)(_vm|_init)?$/;    # FSM forks, temp files and segments .N aside
			my ($node, $suffix) = ($1, $2 // '');
			my $size = -s "$d/$f";
			my $segs = 0;
			$size += -s "$d/$f." . ++$segs while -e "$d/$f." . ($segs + 1);
			push @files, [$spc, $db, $node, $fork{$suffix}, "$d/$f", int($size / 8192)];
		}
		closedir($dh);
	}
	return @files;
}

# Every block and fork size of a copy, from one node, against the copy's files.
sub compare_copy
{
	my ($copy, $node) = @_;
	my $name = $copy->{name};
	my $url = $c->node_urls->{$node};
	my (@blocks, %skipped);
	for my $f (relation_files($copy))
	{
		my ($spc, $db, $relnode, $fork, $path, $nblocks) = @$f;
		my $info = $copy->{map}{ ($spc == 1664 ? 0 : $db) . "/$relnode" };
		if ($info && $info->{persist} eq 'u' && $fork != 3)
		{
			$skipped{unlogged} += $nblocks;
			next;
		}
		push @blocks, [$spc, $db, $relnode, $fork, $_, $path, $info] for 0 .. $nblocks - 1;
	}
	my ($r, $o, $pages) = $c->getpage_batch($node, "$tmp/$name", $n_pgs, $bps,
		map { "$_->[0]/$_->[1]/$_->[2]/$_->[3]/$_->[4] $copy->{lsn}" } @blocks);
	is($r, 0, "$name: GETPAGE of all " . scalar(@blocks) . " blocks from $node answered") or diag $o;
	my @status = split /\n/, $o;

	my (%to_mask, @errors, %holes, %seq, $same, $spgist_meta, $vm_copied);
	$same = 0;
	for my $i (0 .. $#blocks)
	{
		my ($spc, $db, $relnode, $fork, $blkno, $path, $info) = @{ $blocks[$i] };
		my $tag = "$spc/$db/$relnode/$fork/$blkno" . ($info ? " ($info->{name})" : '');
		my $mine = read_block($path, $blkno);
		my $st = $status[$i] // 'no answer';
		if ($st !~ /^ok /)
		{
			if ($mine eq "\0" x 8192 && $st =~ /NO_BLOCK/)
			{
				$holes{$info ? $info->{name} : $relnode}++;
				next;
			}
			push @errors, "$tag: $st";
			next;
		}
		my $theirs = substr($pages, $i * 8192, 8192);
		# the checksum: stamped by storage, 0 here (no data checksums)
		substr($_, 8, 2) = "\0\0" for ($mine, $theirs);
		if ($info && $info->{kind} eq 'S')
		{
			my ($lv_log, $cnt_log) = unpack('q< q<', substr($theirs, 8160, 16));
			my ($lv_mine, $cnt_mine) = unpack('q< q<', substr($mine, 8160, 16));
			push @errors, "$tag: sequence last_value $lv_log log_cnt $cnt_log, compute $lv_mine + $cnt_mine"
			  unless $lv_log == $lv_mine + $cnt_mine && $cnt_log == 0;
			$seq{ $info->{name} } = 1;
			substr($theirs, 8160, 16) = substr($mine, 8160, 16);
		}
		if ($info && $info->{am} eq 'spgist' && $blkno == 0 && $fork == 0)
		{
			substr($theirs, 28) = substr($mine, 28);    # the last-used-pages cache
			$spgist_meta++;
		}
		if ($mine eq $theirs)
		{
			$same++;
			next;
		}
		# CREATE DATABASE (WAL_LOG) logs the template's pages with page_std
		# set, so a visibility-map page, all "hole" by its header, reaches
		# the log without its bits: storage may only have fewer bits set
		# (which is safe), and only in the copied relations
		if ($fork == 2 && $info && $db == $copy->{other_db} && $relnode < 16384)
		{
			my $extra = substr($theirs, 24) & ~substr($mine, 24);
			if (substr($theirs, 0, 24) eq substr($mine, 0, 24) && $extra !~ /[^\0]/)
			{
				$vm_copied++;
				next;
			}
		}
		my $rmgr = !$info ? 0
		  : $fork == 2 ? 0
		  : $info->{kind} eq 'S' ? 15
		  : $rmgr_of_am{ $info->{am} } // 0;
		if (!$rmgr)
		{
			my $at = 0;
			$at++ while substr($mine, $at, 1) eq substr($theirs, $at, 1);
			push @errors, sprintf("%s: differs (no masking applies) from byte %d: %vd vs %vd", $tag, $at,
				substr($theirs, $at, 8), substr($mine, $at, 8));
			next;
		}
		push @{ $to_mask{$rmgr} }, [$tag, $mine, $theirs];
	}
	my $masked_same = 0;
	for my $rmgr (sort keys %to_mask)
	{
		my @pairs = @{ $to_mask{$rmgr} };
		my $m = mask_pages($rmgr, '0/0/0/0/0', join('', map { $_->[1] . $_->[2] } @pairs),
			"$tmp/$name.$rmgr");
		for my $k (0 .. $#pairs)
		{
			if (substr($m, 2 * $k * 8192, 8192) eq substr($m, (2 * $k + 1) * 8192, 8192))
			{
				$masked_same++;
			}
			else
			{
				push @errors, "$pairs[$k][0]: differs after masking with rmgr $rmgr";
			}
		}
	}
	is(scalar(@errors), 0, "$name at $copy->{lsn}: every block GETPAGE returns equals the copy's "
		  . "($same equal, $masked_same equal after masking, "
		  . (eval { my $n = 0; $n += $_ for values %holes; $n }) . " holes not written yet ("
		  . join(', ', map { "$_ $holes{$_}" } sort keys %holes) . "), "
		  . ($skipped{unlogged} // 0) . " unlogged blocks not compared, "
		  . ($vm_copied // 0) . " VM pages of CREATE DATABASE's copy with fewer bits)");
	diag($_) for @errors[0 .. ($#errors > 14 ? 14 : $#errors)];
	ok(scalar(keys %seq) > 0, "$name: sequence pages were compared, as logged") if $name eq 'second';

	# sizes: the max over the PGs of what each knows, per fork
	my @forks = grep { !($_->[6] && $_->[6]{persist} eq 'u' && $_->[3] != 3) }
	  map { my $f = $_; [@$f, $copy->{map}{ ($f->[0] == 1664 ? 0 : $f->[1]) . "/$f->[2]" }] }
	  relation_files($copy);
	spew("$tmp/$name.sizes", join('', map { my $f = $_; map { "$_ $f->[0]/$f->[1]/$f->[2]/$f->[3] $copy->{lsn}\n" } 0 .. $n_pgs - 1 } @forks));
	($r, $o) = run($ctl, 'relsize', '--node', $url, '--batch', "$tmp/$name.sizes", '--wait-ms', 20000);
	is($r, 0, "$name: REL_SIZE of every fork from every PG answered") or diag $o;
	my @sz = split /\n/, $o;
	my @bad;
	for my $k (0 .. $#forks)
	{
		my ($max, $exists) = (0, 0);
		for my $p (0 .. $n_pgs - 1)
		{
			my $line = $sz[ $k * $n_pgs + $p ] // '';
			$exists ||= $line =~ /exists yes/;
			$max = $1 if $line =~ /nblocks (\d+)/ && $1 > $max;
		}
		my $f = $forks[$k];
		push @bad, "$f->[0]/$f->[1]/$f->[2]/$f->[3]" . ($f->[6] ? " ($f->[6]{name})" : '')
		  . ": storage $max blocks" . ($exists ? '' : ' (no such fork)') . ", file $f->[5]"
		  unless $max == $f->[5] && ($exists || $f->[5] == 0);
	}
	is(scalar(@bad), 0, "$name: the relation sizes storage derives from the log and the seed equal the files' ("
		  . scalar(@forks) . " forks)");
	diag($_) for @bad[0 .. ($#bad > 14 ? 14 : $#bad)];
}

compare_copy($snap2, 'b1');
compare_copy($snap1, 'c2');

# the first copy really is older: most of h's pages changed since
my $h = $snap2->{map};
my ($h_node) = grep { $h->{$_}{name} eq 'h' } keys %$h;
my ($db, $relnode) = split m{/}, $h_node;
my $p1 = read_block("$snap1->{dir}/base/$db/$relnode", 0);
my $p2 = read_block("$snap2->{dir}/base/$db/$relnode", 0);
ok($p1 ne $p2, 'block 0 of h differs between the two points, so each LSN was served as of itself');

$c->stop;
done_testing();
