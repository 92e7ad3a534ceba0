# test/cluster/013_epochs.t: volume epochs, fencing and the truncation of the
# ragged edge (PROTOCOL.md 5.10), on six real storage node processes in three
# AZs, driven with aurora-ctl stream / fence / truncate.
#
#  1. Records are streamed at epoch 1 to all six; one more batch reaches only
#     b2 and c2 (the ragged edge: never acknowledged by a write quorum).
#  2. c2 goes down; the others are fenced at epoch 2.  The old writer is
#     refused (STALE_EPOCH) for LOG_APPEND, READ_LOG and GETPAGE; the new one
#     cannot write before the truncation (EPOCH_NOT_OPEN) but reads the
#     ragged edge.
#  3. Truncation at VDL (the end of the acknowledged records): READ_LOG never
#     returns the ragged records again, not even after every node restarts.
#  4. c2 comes back, learns the truncation from gossip, drops its ragged
#     records and catches up.
#  5. New, different records at epoch 2 from VDL on (reusing the ragged
#     LSNs) are stored and served everywhere; aurora-ctl segments shows the
#     epochs and the truncation.
use strict;
use warnings;
use Test::More;
use AuroraCluster;
use PageFiles ();

my $c     = AuroraCluster->new;
my $dir   = $c->dir;
my @nodes = qw(a1 a2 b1 b2 c1 c2);
my $pg    = 3;
my $ctl   = "$ENV{AURORA_REPO}/storage_service/build/aurora-ctl";
# Gossip off at first: each node holds exactly what the writer gave it, so
# the ragged edge stays on b2 and c2.
$c->node_conf_set($_, 'gossip_interval_ms', 0) for @nodes;
$c->start;

sub read_log
{
	my ($node, @args) = @_;
	return $c->read_log($node, '--pg', $pg, @args);
}

sub url { $c->node_urls->{ $_[0] } }

# --- 1. acknowledged records and a ragged edge -----------------------------
my ($rc, $out, $s1) = $c->stream('--pg', $pg, '--records', 100, '--batch', 10, '--epoch', 1);
is($rc, 0, 'stream of 100 records at epoch 1 to six nodes') or diag($out);
is($s1->{records}, 100, 'all 100 acknowledged');
my $vdl = $s1->{end};

($rc, $out) = $c->stream('--pg', $pg, '--after', $s1->{last_start}, '--records', 10,
	'--batch', 10, '--epoch', 1, '--drop-to', 'a1,a2,b1,c1', '--drop-every', 1,
	'--wait-ms', 1000);
isnt($rc, 0, 'a batch sent to b2 and c2 only is not acknowledged') or diag($out);
for my $n (qw(b2 c2))
{
	my $r = read_log($n);
	is($r->{records}, 110, "$n holds the 10 ragged records too");
	cmp_ok($r->{last_end}, '>', $vdl, "$n log goes beyond VDL");
}
is(read_log('a1')->{records}, 100, 'a1 holds only the acknowledged 100');

# --- 2. fence at epoch 2 with c2 down --------------------------------------
($rc, $out) = $c->ctl('kill', 'c2');
is($rc, 0, 'kill -9 c2 (it holds ragged records and misses what follows)');
($rc, $out) = $c->ctl('fence', '--pg', $pg, '--epoch', 2);
is($rc, 0, 'fence at epoch 2 reaches a write quorum') or diag($out);
like($out, qr/^fence: 5 of 6 acknowledged/m, 'five of six acknowledged') or diag($out);
like($out, qr/^b2: fenced at epoch 2: scl \d+ highest (\d+) truncated_epoch 1 history -$/m,
	'b2 reports its epochs, an empty history and its highest LSN') or diag($out);
my ($b2_highest) = $out =~ /^b2: fenced .* highest (\d+)/m;
cmp_ok($b2_highest // 0, '>', $vdl, 'b2 highest LSN shows the ragged edge to the opener');
($rc, $out) = $c->ctl('fence', '--pg', $pg, '--epoch', 1);
isnt($rc, 0, 'fencing again at the old epoch fails');
like($out, qr/^a1: fence failed: STALE_EPOCH/m, 'with STALE_EPOCH') or diag($out);

# the old writer, epoch 1: refused for writes, log reads and page reads
($rc, $out) = $c->stream('--pg', $pg, '--after', $s1->{last_start}, '--records', 10,
	'--batch', 10, '--epoch', 1, '--wait-ms', 1000);
isnt($rc, 0, 'a writer at epoch 1 cannot append any more');
like($out, qr/STALE_EPOCH/, 'LOG_APPEND (and CREATE_SEGMENT) at epoch 1: STALE_EPOCH') or diag($out);
($rc, $out) = PageFiles::run($ctl, 'read-log', url('a1'), '--pg', $pg, '--epoch', 1);
isnt($rc, 0, 'READ_LOG at epoch 1 fails');
like($out, qr/STALE_EPOCH/, 'with STALE_EPOCH') or diag($out);
($rc, $out) = PageFiles::run($ctl, 'getpage', '--node', url('a1'), '--volume', 1,
	'--pg', $pg, '--block', '1663/1/16384/0/0', '--lsn', $vdl, '--epoch', 1, '-o', "$dir/page");
isnt($rc, 0, 'GETPAGE at epoch 1 fails');
like($out, qr/STALE_EPOCH/, 'with STALE_EPOCH') or diag($out);

# the new writer before truncating: no writes, no pages, but the ragged edge is readable.
# aurora-ctl stream's quorum writer (common/pgwriter.c) sometimes dies in NNG
# ("panic: pthread_mutex_lock") while closing after every member refused a
# batch: a known client teardown race, not what is tested here; such a run
# is repeated (at most three times) and reported.
for my $try (1 .. 3)
{
	($rc, $out) = $c->stream('--pg', $pg, '--after', $s1->{last_start}, '--records', 10,
		'--batch', 10, '--epoch', 2, '--wait-ms', 1000);
	last unless $out =~ /^panic: /m;
	diag("aurora-ctl stream died in NNG while closing (try $try); repeating");
}
isnt($rc, 0, 'a writer at epoch 2 cannot append before the truncation');
like($out, qr/EPOCH_NOT_OPEN/, 'LOG_APPEND: EPOCH_NOT_OPEN') or diag($out);
($rc, $out) = PageFiles::run($ctl, 'getpage', '--node', url('a1'), '--volume', 1,
	'--pg', $pg, '--block', '1663/1/16384/0/0', '--lsn', $vdl, '--epoch', 2, '-o', "$dir/page");
like($out, qr/EPOCH_NOT_OPEN/, 'GETPAGE at epoch 2 before the truncation: EPOCH_NOT_OPEN')
  or diag($out);
($rc, $out) = PageFiles::run($ctl, 'getpage', '--node', url('a1'), '--volume', 1,
	'--pg', $pg, '--block', '1663/1/16384/0/0', '--lsn', $vdl, '--epoch', 3, '-o', "$dir/page");
like($out, qr/EPOCH_NOT_OPEN/, 'a request above the segment epoch is not adopted: EPOCH_NOT_OPEN')
  or diag($out);
is(read_log('b2', '--epoch', 2)->{records}, 110, 'READ_LOG at epoch 2 serves the ragged edge');

# --- 3. truncate at VDL ----------------------------------------------------
($rc, $out) = $c->ctl('truncate', '--pg', $pg, '--epoch', 2, '--at', $vdl);
is($rc, 0, 'truncate at VDL under epoch 2 reaches a write quorum') or diag($out);
like($out, qr/^truncate: 5 of 6 acknowledged/m, 'five of six acknowledged') or diag($out);
like($out, qr/^b2: truncated at epoch 2: scl $vdl highest $vdl records_dropped 10 /m,
	'b2 dropped its 10 ragged records') or diag($out);
like($out, qr/^a1: truncated at epoch 2: scl $vdl highest $vdl records_dropped 0 /m,
	'a1 had nothing to drop') or diag($out);
($rc, $out) = $c->ctl('truncate', '--pg', $pg, '--epoch', 2, '--at', $vdl);
like($out, qr/^b2: truncated at epoch 2: .* records_dropped 0 /m, 'a repeat is idempotent')
  or diag($out);
($rc, $out) = $c->ctl('truncate', '--pg', $pg, '--epoch', 2, '--at', $vdl - 100);
isnt($rc, 0, 'the same epoch at another LSN is refused');
like($out, qr/^a1: truncate failed: CONFLICT/m, 'with CONFLICT') or diag($out);

sub ragged_gone
{
	my ($when) = @_;
	for my $n (qw(a1 a2 b1 b2 c1))
	{
		my $r = read_log($n, '--epoch', 2);
		is_deeply([ @$r{qw(records last_end scl breaks bad)} ], [ 100, $vdl, $vdl, 0, 0 ],
			"$when: $n serves the 100 acknowledged records and nothing beyond VDL");
		is(read_log($n, '--epoch', 2, '--from', $vdl)->{records} // 0, 0,
			"$when: $n READ_LOG from VDL returns nothing");
	}
}
ragged_gone('after the truncation');

# --- restart: the dropped records stay gone ----------------------------------
($rc, $out) = $c->ctl('stop', qw(a1 a2 b1 b2 c1));
is($rc, 0, 'stop the five nodes') or diag($out);
($rc, $out) = $c->ctl('start', qw(a1 a2 b1 b2 c1));
is($rc, 0, 'start them again') or diag($out);
ragged_gone('after a restart');

# --- 4. c2 comes back and learns the truncation by gossip --------------------
$c->node_conf_set($_, 'gossip_interval_ms', 100) for @nodes;
($rc, $out) = $c->ctl('stop', qw(a1 a2 b1 b2 c1));
($rc, $out) = $c->ctl('start', @nodes);
is($rc, 0, 'all six start with gossip on') or diag($out);
my $adopted = $c->poll_until(
	sub {
		my $st = $c->segment_state('c2', $pg);
		return ($st->{truncated_epoch} // 0) == 2 && ($st->{epoch} // 0) == 2;
	});
ok($adopted, 'c2 adopts truncation epoch 2 from its peers');
my $st = $c->segment_state('c2', $pg);
is($st->{last_cut}, "2\@$vdl", 'c2 records the truncation 2@VDL');
is($st->{dropped}, 10, 'c2 dropped its 10 ragged records');
my $log = `cat $dir/nodes/c2/aurora-storage.log`;
like($log, qr/gossip: volume 0+1 PG $pg: adopted truncation epoch 2 at LSN $vdl from \S+, dropped 10 records/,
	'c2 logs the adoption') or diag($log);
my $r = read_log('c2', '--epoch', 2);
is_deeply([ @$r{qw(records last_end breaks bad)} ], [ 100, $vdl, 0, 0 ],
	'c2 serves the 100 acknowledged records, none of its ragged ones');

# --- 5. the new writer reuses the LSNs above VDL -----------------------------
my $s2;
($rc, $out, $s2) = $c->stream('--pg', $pg, '--after', $s1->{last_start}, '--records', 20,
	'--batch', 10, '--payload', 150, '--epoch', 2);
is($rc, 0, 'a writer at epoch 2 appends 20 new, different records from VDL on') or diag($out);
is($s2->{records}, 20, 'all 20 acknowledged');
ok($c->poll_until(sub { read_log('c2', '--epoch', 2)->{scl} == $s2->{end} }),
	'c2 catches up to the new end');
for my $n (@nodes)
{
	my $r = read_log($n, '--epoch', 2);
	is_deeply([ @$r{qw(records last_end scl breaks bad)} ], [ 120, $s2->{end}, $s2->{end}, 0, 0 ],
		"$n serves the 100 old and 20 new records, one unbroken chain, intact payloads");
}
for my $n (@nodes)
{
	my $s = $c->segment_state($n, $pg);
	is_deeply([ @$s{qw(epoch truncated_epoch last_cut)} ], [ 2, 2, "2\@$vdl" ],
		"aurora-ctl segments: $n at volume epoch 2, truncated at 2\@VDL");
}
is($c->segment_state('b2', $pg)->{dropped}, 10, 'segments: b2 shows 10 records dropped');
is($c->segment_state('a1', $pg)->{dropped}, 0, 'segments: a1 shows none dropped');

$c->stop;
done_testing();
