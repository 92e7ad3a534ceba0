# test/cluster/004_segment_log.t: the foreground log path on six real storage
# node processes in three AZs.  Records streamed with aurora-ctl stream (the
# quorum writer the compute uses) are acknowledged once four segments hold
# them durably; writes go on with two nodes of different AZs killed and stop
# with a third; everything acknowledged stays readable from the three left;
# a killed node keeps what it had acknowledged; a torn log tail is cut back
# and reported; a writer with a stale epoch is fenced.
use strict;
use warnings;
use Test::More;
use AuroraCluster;

my $c   = AuroraCluster->new;
my $dir = $c->dir;
# Gossip off: what is tested here is the foreground path alone (each node
# holds exactly what the writer gave it).  005_gossip.t tests gap filling.
$c->node_conf_set($_, 'gossip_interval_ms', 0) for qw(a1 a2 b1 b2 c1 c2);
$c->start;

sub stream
{
	my (@args) = @_;
	unshift @args, '--pg', 7 unless grep { $_ eq '--pg' } @args;
	return $c->stream(@args);
}

sub read_log
{
	my ($node, @args) = @_;
	return $c->read_log($node, '--pg', 7, @args);
}

# --- all six up -----------------------------------------------------------
my ($rc, $out, $s1) = stream('--records', 500, '--batch', 25, '--payload', 300);
is($rc, 0, 'stream of 500 records to six nodes') or diag($out);
is($s1->{records}, 500, 'all 500 acknowledged by a write quorum');
for my $n (qw(a1 a2 b1 b2 c1 c2))
{
	my $r = read_log($n);
	is_deeply([ @$r{qw(records breaks bad scl)} ], [ 500, 0, 0, $s1->{end} ],
		"$n holds all 500 records, unbroken chain, intact payloads, SCL = last end");
}

# --- two nodes of different AZs killed: writes go on ----------------------
($rc, $out) = $c->ctl('kill', 'a1', 'b1');
is($rc, 0, 'kill -9 a1 and b1') or diag($out);
my $s2;
($rc, $out, $s2) = stream('--after', $s1->{last_start}, '--records', 300, '--batch', 25,
	'--payload', 300, '--wait-ms', 5000);
is($rc, 0, 'writes continue with two nodes down') or diag($out);
is($s2->{records}, 300, 'all 300 acknowledged');
for my $n (qw(a2 b2 c1 c2))
{
	is(read_log($n)->{records}, 800, "$n holds all 800");
}

# --- a third node down: no write quorum, reads go on ----------------------
($rc, $out) = $c->ctl('kill', 'c1');
is($rc, 0, 'kill -9 c1');
my $s3;
($rc, $out, $s3) = stream('--after', $s2->{last_start}, '--records', 50, '--batch', 10,
	'--payload', 300, '--wait-ms', 1500);
is($rc, 1, 'with three of six down, a batch is not acknowledged');
like($out, qr/write quorum (lost|needs 4)/, 'and the writer says the quorum is missing')
  or diag($out);
is($s3->{records} // 0, 0, 'nothing more was acknowledged');
for my $n (qw(a2 b2 c2))
{
	my $r = read_log($n, '--to', $s2->{end});
	is_deeply([ @$r{qw(records first breaks bad)} ], [ 800, 364, 0, 0 ],
		"$n still serves every acknowledged record");
}

# --- killed nodes come back with what they had made durable --------------
($rc, $out) = $c->ctl('start', 'a1', 'b1', 'c1');
is($rc, 0, 'restart a1, b1, c1') or diag($out);
is(read_log('a1')->{records}, 500, 'a1 kept its 500 durable records across kill -9');
is(read_log('a1')->{scl}, $s1->{end}, 'a1 SCL after restart = what it had acknowledged');
is(read_log('c1')->{records}, 800, 'c1 kept all 800');

# --- torn tail: cut a node's log mid-record, restart ----------------------
# (c2 may hold more than 800: the unacknowledged batch reached three nodes)
my $before = read_log('c2');
# the records end before the file does: space after them is preallocated zeros
my $log_end = $c->segment_state('c2', 7)->{bytes};
($rc, $out) = $c->ctl('stop', 'c2');
my ($log) = glob("$dir/nodes/c2/segments/*-7/log");
ok(defined $log && -f $log, 'c2 has a log file for PG 7');
cmp_ok(-s $log, '>', $log_end, 'its file is longer than its records (zero-filled ahead)');
truncate($log, $log_end - 100) or die "truncate: $!";
($rc, $out) = $c->ctl('start', 'c2');
is($rc, 0, 'c2 restarts over a torn log tail') or diag($out);
my $r = read_log('c2');
is($r->{records}, $before->{records} - 1, 'the torn record was cut, the rest kept');
is($r->{breaks}, 0, 'chain intact after the cut');
is($r->{bad}, 0, 'no torn bytes are ever served');
ok($r->{scl} < $before->{scl}, 'SCL dropped below the cut record');
my ($src, $segs) = $c->ctl('segments', 'c2');
like($segs, qr/cut|truncat|torn/i, 'the cut is reported in the segment listing') or diag($segs);

# --- epochs: a newer writer fences the old one (on a fresh PG) -------------
# A higher epoch is no longer adopted silently: the new writer fences the
# segments and truncates them at VDL first (013_epochs.t tests that in depth).
my $s5;
($rc, $out, $s5) = stream('--pg', 8, '--records', 10, '--batch', 10, '--epoch', 1);
is($rc, 0, 'a writer with volume epoch 1 appends to PG 8') or diag($out);
($rc, $out) = stream('--pg', 8, '--after', 1640, '--records', 10, '--batch', 10, '--epoch', 2);
isnt($rc, 0, 'a writer with epoch 2 cannot write before the volume is opened at epoch 2');
like($out, qr/EPOCH_NOT_OPEN/, 'with EPOCH_NOT_OPEN') or diag($out);
($rc, $out) = $c->ctl('fence', '--pg', 8, '--epoch', 2);
is($rc, 0, 'fence PG 8 at epoch 2') or diag($out);
($rc, $out) = $c->ctl('truncate', '--pg', 8, '--epoch', 2, '--at', $s5->{end});
is($rc, 0, 'truncate PG 8 at its end, opening epoch 2') or diag($out);
my $s4;
($rc, $out, $s4) = stream('--pg', 8, '--after', 1640, '--records', 10, '--batch', 10, '--epoch', 2);
is($rc, 0, 'a writer with volume epoch 2 takes over') or diag($out);
($rc, $out) = stream('--pg', 8, '--after', $s4->{last_start}, '--records', 10, '--batch', 10,
	'--epoch', 1);
isnt($rc, 0, 'the old writer (epoch 1) is refused');
like($out, qr/STALE_EPOCH/, 'with STALE_EPOCH');

$c->stop;
done_testing();
