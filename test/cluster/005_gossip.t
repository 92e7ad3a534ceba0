# test/cluster/005_gossip.t: segments catch up with each other by gossip, on
# six real storage node processes in three AZs.
#
#  1. Batches are withheld from two nodes (as if the messages were lost).
#     With gossip off those nodes keep their holes; turned on, they fetch the
#     missing records from their peers and their SCL reaches the end.
#  2. Two nodes of different AZs are killed -9 in the middle of a stream.
#     Writes go on (4 of 6); every acknowledged record is on the four nodes
#     left; once restarted, the two catch up by gossip alone (the writer has
#     finished) and all six SCLs converge on the last acknowledged LSN.
#  3. A node killed -9 and restarted while the writer keeps going is redialed
#     by the writer, fills the gap gossip-wise, and its acknowledgements end
#     up carrying the full SCL.
#  4. A cluster in step probes less (each quiet round doubles the wait, up
#     to eight intervals), yet a node that misses the very last batch of a
#     quiet volume still fetches it.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(usleep);
use AuroraCluster;

my $c = AuroraCluster->new;
my @nodes = qw(a1 a2 b1 b2 c1 c2);
$c->node_conf_set($_, 'gossip_interval_ms', 100) for @nodes;
$c->node_conf_set($_, 'gossip_interval_ms', 0) for qw(a1 b1);
$c->start;

# Whether every one of @which holds PG pg up to exactly lsn, with no holes.
sub all_at
{
	my ($pg, $lsn, @which) = @_;
	for my $n (@which)
	{
		my $st = $c->segment_state($n, $pg);
		return 0 unless defined $st->{scl} && $st->{scl} == $lsn && $st->{holes} == 0;
	}
	return 1;
}

# --- 1. lost messages ------------------------------------------------------
my ($rc, $out, $s) = $c->stream('--pg', 11, '--records', 600, '--batch', 20, '--payload', 200,
	'--drop-to', 'a1,b1', '--drop-every', 3);
is($rc, 0, 'stream of 600 records, every 3rd batch withheld from a1 and b1') or diag($out);
like($out, qr/withheld 10 of 30 batches from a1,b1/, 'ten batches were withheld');
is($s->{records}, 600, 'all 600 acknowledged by the other four');

for my $n (qw(a1 b1))
{
	my $r = $c->read_log($n, '--pg', 11);
	is($r->{records}, 400, "$n holds only the 400 records it was sent");
	my $st = $c->segment_state($n, 11);
	is($st->{holes}, 9, "$n has 9 holes (the 10th withheld batch is the tail)");
	ok($st->{scl} < $s->{end}, "$n SCL stops at the first hole");
}
usleep(500_000);
is($c->read_log('a1', '--pg', 11)->{records}, 400,
	'with gossip off the holes stay: the writer does not resend');
cmp_ok($c->segment_state('a2', 11)->{from_peers}, '==', 0,
	'a2 (gossip on) had nothing to fetch: it was sent everything');

($rc, $out) = $c->ctl('stop', 'a1', 'b1');
$c->node_conf_set($_, 'gossip_interval_ms', 100) for qw(a1 b1);
($rc, $out) = $c->ctl('start', 'a1', 'b1');
is($rc, 0, 'a1 and b1 restart with gossip on') or diag($out);
ok($c->poll_until(sub { all_at(11, $s->{end}, qw(a1 b1)) }, 30),
	'a1 and b1 fill their holes: SCL reaches the last acknowledged end, no holes');
for my $n (qw(a1 b1))
{
	my $r = $c->read_log($n, '--pg', 11);
	is_deeply([ @$r{qw(records breaks bad scl)} ], [ 600, 0, 0, $s->{end} ],
		"$n now holds all 600 records, unbroken and intact");
	is($c->segment_state($n, 11)->{from_peers}, 200, "$n fetched exactly the 200 it missed");
}

# --- 2. kill -9 two nodes mid-stream ----------------------------------------
my $ctl = "$ENV{AURORA_REPO}/storage_service/build/aurora-ctl";
my $pid = open(my $fh, '-|', $ctl, '--cluster', $c->dir . '/nodes', 'stream', '--pg', 12,
	'--records', 10000, '--batch', 5, '--payload', 200, '--wait-ms', 5000)
  or die "stream: $!";
ok($c->poll_until(sub { ($c->segment_state('c1', 12)->{records} // 0) >= 1000 }, 60),
	'the stream is under way');
($rc, $out) = $c->ctl('kill', 'a2', 'c2');
my $at_kill = $c->segment_state('c1', 12)->{records};
is($rc, 0, 'kill -9 a2 and c2 in the middle of the stream') or diag($out);
my $stream_out = do { local $/; <$fh> };
close($fh);
is($? >> 8, 0, 'the stream completes with two nodes down') or diag($stream_out);
my ($acked, $end) = $stream_out =~ /acked_records (\d+) acked_last_start \d+ acked_end (\d+)/;
is($acked, 10000, 'every record was acknowledged by a write quorum');
cmp_ok($at_kill, '<', 10000, "the kill came mid-stream (after $at_kill records)");
for my $n (qw(a1 b1 b2 c1))
{
	my $r = $c->read_log($n, '--pg', 12);
	is_deeply([ @$r{qw(records breaks bad scl)} ], [ 10000, 0, 0, $end ],
		"$n (up) holds every acknowledged record");
}

($rc, $out) = $c->ctl('start', 'a2', 'c2');
is($rc, 0, 'a2 and c2 restart') or diag($out);
ok($c->poll_until(sub { all_at(12, $end, @nodes) }, 60),
	'all six SCLs converge on the last acknowledged end');
for my $n (@nodes)
{
	my $r = $c->read_log($n, '--pg', 12);
	is_deeply([ @$r{qw(records breaks bad scl)} ], [ 10000, 0, 0, $end ],
		"$n holds all 10000 records, unbroken and intact");
}
for my $n (qw(a2 c2))
{
	cmp_ok($c->segment_state($n, 12)->{from_peers}, '>', 0,
		"$n caught up from its peers, not from the writer");
}

# --- 3. kill and restart under the writer's feet ----------------------------
$pid = open($fh, '-|', $ctl, '--cluster', $c->dir . '/nodes', 'stream', '--pg', 13,
	'--records', 10000, '--batch', 5, '--payload', 200, '--wait-ms', 5000)
  or die "stream: $!";
ok($c->poll_until(sub { ($c->segment_state('b2', 13)->{records} // 0) >= 1000 }, 60),
	'a third stream is under way');
($rc, $out) = $c->ctl('kill', 'b2');
($rc, $out) = $c->ctl('start', 'b2');
is($rc, 0, 'b2 killed -9 and restarted while the stream goes on') or diag($out);
my $b2_back = $c->segment_state('b2', 13)->{records};
$stream_out = do { local $/; <$fh> };
close($fh);
is($? >> 8, 0, 'the stream completes') or diag($stream_out);
($end) = $stream_out =~ /acked_end (\d+)/;
cmp_ok($b2_back, '<', 10000, "b2 came back mid-stream (holding $b2_back records)");
like($stream_out, qr/^segment b2: scl $end acks \d+ errors \d+/m,
	"the writer reconnected to b2 and b2's last acknowledgement carries the full SCL ($end)")
  or diag($stream_out);
ok($c->poll_until(sub { all_at(13, $end, @nodes) }, 30), 'all six SCLs agree');

# --- 4. a quiet cluster ------------------------------------------------------
# c1's REQUESTS counter: the probes its five peers send for its three
# segments (and our status request).  At a fixed 100 ms interval that is
# about 150 a second.
sub requests_of
{
	my ($n) = @_;
	my ($rc, $out) = $c->ctl('status', $n);
	return $out =~ /^\Q$n\E\s+\S+\s+\S+\s+serving\s+\S+\s+(\d+)/m ? $1 : undef;
}
sleep 3;    # every node's wait grows to 800 ms
my $r0 = requests_of('c1');
sleep 4;
my $r1 = requests_of('c1');
ok(defined $r0 && defined $r1, 'c1 reports its request count') or diag($out);
my $served = ($r1 // 0) - ($r0 // 0);
# 5 peers x 3 segments x (4 s / 0.8 s) = 75, against 600 at the fixed interval
cmp_ok($served, '<', 200, "a quiet cluster probes less: c1 served $served requests in 4 s");
cmp_ok($served, '>', 0, 'and its peers still probe it');

# the stream's records chain on from the last record of stream 3
my ($last_start) = $stream_out =~ /acked_last_start (\d+)/;
($rc, $out, $s) = $c->stream('--pg', 13, '--after', $last_start, '--records', 5, '--batch', 5,
	'--payload', 200, '--drop-to', 'c1');
is($rc, 0, 'one more batch on the quiet PG, withheld from c1') or diag($out);
cmp_ok($c->segment_state('c1', 13)->{scl}, '<', $s->{end}, 'c1 missed it (no hole: it was the tail)');
ok($c->poll_until(sub { all_at(13, $s->{end}, @nodes) }, 10),
	'c1 fetches the tail of the quiet volume from its peers');

$c->stop;
done_testing();
