# test/cluster/015_wal_rebuild.t: rebuilding the WAL and finding VDL from the
# volume alone (aurora-compute-init wal, issue 19).  After a workload on the
# compute (pgbench, CREATE TABLE, VACUUM, a WAL segment switch), once VDL
# covers the flushed WAL and nothing moves, the WAL from the last
# checkpoint's redo point R is read back from the storage nodes:
#   - the VDL found equals the compute's (aurora.watermarks());
#   - every byte of the rebuilt segments from R to VDL equals the compute's
#     own pg_wal, and pg_waldump lists the same records over both;
#   - an existing segment file is not overwritten;
#   - a member whose log is damaged is skipped for the next best;
#   - with the nodes of one AZ and one more down (3 of 6 up) the walk finds
#     the same VDL from a read quorum; with a fourth down it fails clearly.
use strict;
use warnings;
use Test::More;
use IPC::Run ();
use AuroraCluster qw(lsn);
use PageFiles qw(slurp);

my $prefix = $ENV{AURORA_PG_PREFIX};

my $c = AuroraCluster->new(shipping => 1);
$c->compute_conf_append(join "\n", "aurora.protection_groups = 4",
	"aurora.blocks_per_segment = 16", "autovacuum = off");
$c->start;
my $pgdata = $c->dir . '/pgdata';
my @conn   = ('-h', '127.0.0.1', '-p', $c->pgport, 'postgres');
my $nodes  = $c->safe_psql('SHOW aurora.storage_nodes');

sub run
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout(600));
	return ($ok ? 0 : ($? >> 8 || 1), $out, $err);
}

# aurora-compute-init wal ...; returns (exit code, {vdl, records, ...}, stdout, stderr)
sub compute_init_wal
{
	my @args = @_;
	my ($rc, $out, $err) = run('aurora-compute-init', 'wal', '--storage-nodes', $nodes, '--quiet', @args);
	my %r = map { /^([a-z ]+): (.*)$/ ? ($1 => $2) : () } split /\n/, $out;
	return ($rc, \%r, $out, $err);
}

# ---- bad usage: a clear error, nothing done ---------------------------------
my ($rc, $out, $err);
($rc, my $bad, undef, my $why) = compute_init_wal('--from', 'zz', '--dry-run');
ok($rc == 1 && $why =~ /"zz" is not an LSN/, 'a bad LSN is refused');
($rc, $bad, undef, $why) = compute_init_wal('--from', '0/2000028');
ok($rc == 1 && $why =~ /needs .*--pgwal/, 'writing needs --pgwal');
($rc, undef, $why) = run('aurora-compute-init', 'wal', '--storage-nodes', 'a1:a:tcp://x:1',
	'--from', '0/2000028', '--dry-run');
ok($rc == 1 && $why =~ /--storage-nodes: a protection group needs 2 nodes in each of 3/,
	'a node list placement cannot use is refused as the compute refuses it');

# ---- a workload, then R ------------------------------------------------------
($rc, $out, $err) = run("$prefix/bin/pgbench", '-i', '-q', '-s', '1', @conn);
is($rc, 0, 'pgbench -i') or diag($err);
$c->safe_psql('CHECKPOINT');
($rc, $out, $err) = run("$prefix/bin/pgbench", '-n', '-c', '2', '-j', '2', '-T', '4', @conn);
is($rc, 0, 'pgbench for a few seconds') or diag($err);
$c->safe_psql('CREATE TABLE rebuilt AS SELECT g AS id, repeat(md5(g::text), 20) AS pad FROM generate_series(1, 5000) g');
$c->safe_psql('DELETE FROM rebuilt WHERE id % 3 = 0');
$c->safe_psql('VACUUM rebuilt');
$c->safe_psql('SELECT pg_switch_wal()');
$c->safe_psql('INSERT INTO rebuilt SELECT g, g::text FROM generate_series(5001, 6000) g');
my $redo = $c->safe_psql('SELECT redo_lsn FROM pg_control_checkpoint()');
ok(lsn($redo) > 0, "R, the redo point of the last checkpoint: $redo");

# wait until VDL covers the WAL and nothing moves any more, then rebuild;
# again if the compute's VDL moved meanwhile (a background record)
my ($vdl, $res, $dir);
for my $try (1 .. 5)
{
	ok($c->poll_vdl_covers_wal(60), "VDL covers the flushed WAL (try $try)") or last;
	sleep 1;
	my $before = $c->safe_psql('SELECT vdl FROM aurora.watermarks()');
	$dir = $c->dir . "/rebuilt_wal_$try";
	mkdir $dir or die "$dir: $!";
	($rc, $res, $out, $err) = compute_init_wal('--from', $redo, '--pgwal', $dir,
		'--control', "$pgdata/global/pg_control");
	$vdl = $c->safe_psql('SELECT vdl FROM aurora.watermarks()');
	last if $vdl eq $before && $rc == 0;
	diag("VDL moved from $before to $vdl meanwhile (or the run failed: $err), again");
}
is($rc, 0, 'aurora-compute-init wal succeeds') or diag("$out\n$err");
is($res->{vdl}, $vdl, "the VDL found in storage is the compute's ($vdl)");
like($res->{'ragged edge'} // '', qr/^none$/, 'no ragged edge: every record shipped is durable');
cmp_ok($res->{records} // 0, '>', 1000, "records kept: $res->{records}, bytes: $res->{bytes}");

# ---- byte for byte the compute's pg_wal -------------------------------------
sub seg_name
{
	my ($lsn) = @_;
	my $seg = int($lsn / (16 * 1024 * 1024));
	return sprintf('%08X%08X%08X', 1, int($seg / 256), $seg % 256);
}


my ($r, $v) = (lsn($redo), lsn($vdl));
my $seg_bytes = 16 * 1024 * 1024;
my ($same, $segments, $first_diff) = (1, 0, '');
for (my $seg = int($r / $seg_bytes); $seg * $seg_bytes < $v; $seg++)
{
	my $name    = seg_name($seg * $seg_bytes);
	my $mine    = slurp("$dir/$name");
	my $theirs  = slurp("$pgdata/pg_wal/$name");
	my $from    = $seg == int($r / $seg_bytes) ? $r - $seg * $seg_bytes : 0;
	my $to      = ($seg + 1) * $seg_bytes <= $v ? $seg_bytes : $v - $seg * $seg_bytes;
	$segments++;
	if (!defined $mine || !defined $theirs)
	{
		($same, $first_diff) = (0, "$name missing") if $same;
		next;
	}
	next if substr($mine, $from, $to - $from) eq substr($theirs, $from, $to - $from);
	if ($same)
	{
		my $i = $from;
		$i++ while substr($mine, $i, 1) eq substr($theirs, $i, 1);
		$first_diff = sprintf('%s at offset 0x%X', $name, $i);
	}
	$same = 0;
}
ok($same, "every byte from R to VDL equals the compute's pg_wal ($segments segments, one after an XLOG_SWITCH)")
  or diag("first difference: $first_diff");
ok(!-e "$dir/" . seg_name($v + $seg_bytes), 'no segment after the one holding VDL');
cmp_ok($segments, '>=', 2, 'the range crosses a segment boundary');

sub waldump_records
{
	my ($waldir) = @_;
	my ($rc, $out, $err) = run("$prefix/bin/pg_waldump", '-p', $waldir, '-s', $redo, '-e', $vdl);
	return ($rc, scalar(grep { /^rmgr: / } split /\n/, $out), $err);
}
my ($rc1, $n_rebuilt, $err1) = waldump_records($dir);
my ($rc2, $n_original) = waldump_records("$pgdata/pg_wal");
is($rc1, 0, 'pg_waldump reads the rebuilt range') or diag($err1);
is($n_rebuilt, $n_original, "and lists the same records as over the original ($n_original)");
is($n_rebuilt, $res->{records}, 'as many as aurora-compute-init kept');

($rc, $res, $out, $err) = compute_init_wal('--from', $redo, '--pgwal', $dir, '--control', "$pgdata/global/pg_control");
isnt($rc, 0, 'a second run into the same directory fails');
like($err, qr/exists already/, 'because it never overwrites a segment file');

# ---- from a read quorum -----------------------------------------------------
# the compute stops without a shutdown checkpoint, so nothing is written after
run("$prefix/bin/pg_ctl", '-D', $pgdata, '-m', 'immediate', '-w', 'stop');
($rc, $res) = compute_init_wal('--from', $redo, '--dry-run');
is($rc, 0, 'a dry run with the compute gone');
# a background record (a running-transactions snapshot) may have become
# durable between the watermark read and the stop
my $vdl6 = $res->{vdl} // '0/0';
cmp_ok(lsn($vdl6), '>=', lsn($vdl), "finds VDL $vdl6, at least the compute's last");
# A member whose log is damaged (READ_LOG answers CORRUPT) is skipped for the
# next best: PG 0's log is damaged on every node but c2, in its first record
# at or above R (segment log format: PROTOCOL.md 9).
sub damage_first_record_from
{
	my ($path, $from) = @_;
	open(my $fh, '+<:raw', $path) or die "$path: $!";
	my $data = do { local $/; <$fh> };
	my $off = 16;
	while ($off + 36 <= length($data))
	{
		my ($magic, $crc, $slo, $shi, $elo, $ehi, $plo, $phi, $len) = unpack('V9', substr($data, $off, 36));
		last unless $magic == 0x474F4C41;
		if ($shi * 2**32 + $slo >= $from)
		{
			my $at = $off + 36 + $len - 1;
			seek($fh, $at, 0) or die "seek: $!";
			print $fh chr(ord(substr($data, $at, 1)) ^ 0x5A);
			close($fh) or die "$path: $!";
			return 1;
		}
		$off += 36 + $len;
	}
	close($fh);
	return 0;
}
my $damaged = 0;
$damaged += damage_first_record_from($c->dir . "/nodes/$_/segments/0000000000000001-0/log", $r)
  for qw(a1 a2 b1 b2 c1);
is($damaged, 5, 'PG 0\'s log damaged on five of its six nodes');
($rc, $res, $out, $err) = compute_init_wal('--from', $redo, '--dry-run');
is($rc, 0, 'the walk still works') or diag($err);
like($err, qr/PG 0: reading a1 failed .*trying the next member/, 'falling back from a damaged member to the next best');
is($res->{vdl}, $vdl6, 'to the same VDL, read from c2');

$c->ctl('stop', 'a1', 'a2', 'b1');
($rc, $res, $out, $err) = compute_init_wal('--from', $redo, '--dry-run', '--timeout-ms', '500');
is($rc, 0, 'with AZ a and b1 down (3 of 6 up) the walk still works') or diag($err);
is($res->{vdl}, $vdl6, 'from a read quorum, the same VDL as from all six');
$c->ctl('stop', 'b2');
($rc, $res, $out, $err) = compute_init_wal('--from', $redo, '--dry-run', '--timeout-ms', '500');
is($rc, 1, 'with a fourth node down it fails');
like($err, qr/PG 0: only 2 of 6 segments answered, a read needs 3/, 'saying a read quorum is missing');
$c->ctl('start', 'a1', 'a2', 'b1', 'b2');

$c->stop;
done_testing();
