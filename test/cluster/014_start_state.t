# test/cluster/014_start_state.t: start states in the volume (issue 19).
# A compute set up as `make run` does it has its volume seeded from the
# initdb'ed data directory; seeding also stores the volume's first start
# state (the non-relation files a starting compute needs) on PG 0.  Checks:
#   - the seed stored it on at least a write quorum (4) of PG 0's six nodes;
#   - `aurora-ctl start-state restore` into an empty directory writes
#     pg_control, the relmap files and PG_VERSION files byte-identical to
#     the compute's as of the seed, and no relation file;
#   - a put interrupted on the client side, or by killing a node in the
#     middle, never gets a partial start state served: the killed node
#     discards its part when it restarts;
#   - with 3 of PG 0's nodes stopped the newest start state is still
#     fetched (read quorum), with 4 stopped the fetch fails saying why.
use strict;
use warnings;
use Test::More;
use IPC::Run ();
use File::Find;
use File::Path qw(make_path);
use Time::HiRes qw(usleep time);
use AuroraCluster qw(lsn);
use PageFiles qw(slurp);

my $c = AuroraCluster->new(shipping => 1);
my $pgdata = $c->dir . '/pgdata';


# The files the start state must reproduce, as initdb left them (the seed
# runs on this cleanly shut down directory before the compute first starts).
my %before;
find(
	sub {
		return if $File::Find::name eq $pgdata;
		my $rel = substr($File::Find::name, length($pgdata) + 1);
		$before{$rel} = slurp($_)
		  if -f $_ && $rel =~ m{^(global/pg_control|PG_VERSION|(global|base/\d+)/pg_filenode\.map|base/\d+/PG_VERSION)$};
	},
	$pgdata);
cmp_ok(scalar(keys %before), '>=', 8, 'the initdb\'ed directory has pg_control, relmaps and PG_VERSION files');

$c->start;

my $seed_log = slurp($c->dir . '/seed.log') // '';
like($seed_log, qr/^stored start state [0-9A-F]+\/[0-9A-F]+ \(\d+ files, \d+ bytes\) on [456] of 6 segments of PG 0$/m,
	'seed stored the first start state on a write quorum of PG 0');
my ($seed_lsn) = $seed_log =~ /^stored start state (\S+)/m;
my ($seeded_at) = $seed_log =~ /^seeded \d+ pages of \d+ files at LSN (\S+)/m;
is($seed_lsn, $seeded_at, 'at the seed LSN');

# Which nodes list an LSN, from `start-state list`.
sub holders
{
	my ($want) = @_;
	my ($rc, $out) = $c->ctl('start-state', 'list');
	my @nodes = grep { $out =~ /^\Q$_\E\s+\S+\s.*\b\Q$want\E \(/m } qw(a1 a2 b1 b2 c1 c2);
	return ($rc, $out, scalar(@nodes));
}
my ($rc, $out, $n) = holders($seed_lsn);
is($rc, 0, 'start-state list answers') or diag($out);
cmp_ok($n, '>=', 4, "the seed's start state is on $n of PG 0's six nodes") or diag($out);

# restore into an empty directory (the seed's: the compute stores newer ones
# after its checkpoints, src/start_state_writer.c)
my $restored = $c->dir . '/restored';
($rc, $out) = $c->ctl('start-state', 'restore', '--max-lsn', $seed_lsn, '--datadir', $restored);
is($rc, 0, 'start-state restore into a new directory') or diag($out);
like($out, qr/^restored start state \Q$seed_lsn\E \(\d+ files; checkpoint \Q$seed_lsn\E, redo \S+\)/m, 'names the seed\'s checkpoint');
my @differ = grep { (slurp("$restored/$_") // "\0missing") ne $before{$_} } sort keys %before;
is(join(' ', @differ), '', 'pg_control, relmap and PG_VERSION files are byte-identical to the compute\'s as of the seed');
ok(-d "$restored/pg_wal/archive_status" && -d "$restored/pg_xact" && -d "$restored/base/1",
	'the restored directory has the standard layout');
ok(!-e "$restored/base/1/1259" && !-e "$restored/postmaster.pid" && !-e "$restored/pg_replslot/aurora_shipper",
	'and no relation file, pid file or the shipper\'s slot');
is((stat($restored))[2] & 0777, 0700, 'mode 0700');
($rc, $out) = $c->ctl('start-state', 'restore', '--max-lsn', $seed_lsn, '--datadir', $restored);
isnt($rc, 0, 'restore refuses a non-empty directory');
like($out, qr/not empty/, 'saying so');

# A large start state: the restored files plus a 48 MB pg_xact segment, put
# in 16 kB pieces so that the put takes a while.
my $big = $c->dir . '/big';
system('cp', '-a', $restored, $big) == 0 or die "cp failed";
{
	open(my $fh, '>:raw', "$big/pg_xact/0FFF") or die $!;
	my $chunk = join('', map { chr(($_ * 31) & 0xff) } 0 .. 65535);
	print $fh $chunk for 1 .. 768;
	close($fh);
}
# (1 GB above the seed: above the start states the running compute stores)
my $big_lsn = sprintf('%X/%X', int((lsn($seed_lsn) + 0x40000000) / 2**32), (lsn($seed_lsn) + 0x40000000) % 2**32);
my @put = ("$ENV{AURORA_REPO}/storage_service/build/aurora-ctl", '--timeout', '10000', '--cluster', $c->dir . '/nodes',
	'start-state', 'put', '--datadir', $big, '--lsn', $big_lsn, '--checkpoint', $big_lsn, '--redo', $big_lsn,
	'--piece', '16384');

sub partial_files
{
	my @p;
	for my $node (qw(a1 a2 b1 b2 c1 c2))
	{
		push @p, map { "$node:$_" } glob($c->dir . "/nodes/$node/segments/*/start-states/*.partial");
	}
	return @p;
}

sub wait_for_partials
{
	my ($min) = @_;
	my $deadline = time + 30;
	usleep(20_000) while partial_files() < $min && time < $deadline;
	return scalar(partial_files());
}

# 1: the client dies in the middle: nothing of it is served
# the compute stores its own after its first heartbeat (the checkpoint
# pg_control names, consistent at an LSN above the seed's)
my $got = $c->dir . '/got.bundle';
my $newest_before;
$c->poll_until(sub {
	($rc, $out) = $c->ctl('start-state', 'get', '--out', $got);
	($newest_before) = $out =~ /^start state (\S+) /m;
	return defined $newest_before && lsn($newest_before) > lsn($seed_lsn);
}, 30);
cmp_ok(lsn($newest_before // '0/0'), '>', lsn($seed_lsn), "the compute stored a newer start state ($newest_before)")
  or diag($out);
my ($pout, $perr) = ('', '');
my $h = IPC::Run::start(\@put, '>', \$pout, '2>', \$perr);
cmp_ok(wait_for_partials(4), '>=', 4, 'a large put is in progress on the nodes');
$h->kill_kill;
($rc, $out, $n) = holders($big_lsn);
is($n, 0, 'after the client died mid-put, no node lists the partial start state') or diag($out);
($rc, $out) = $c->ctl('start-state', 'get', '--out', $got);
is($rc, 0, 'get still works') or diag($out);
like($out, qr/^start state \Q$newest_before\E /m, 'and serves the newest complete start state, not the partial one');

# 2: a node is killed in the middle of a put: the put completes on five,
# the killed node discards its part when it comes back
($pout, $perr) = ('', '');
$h = IPC::Run::start(\@put, '>', \$pout, '2>', \$perr);
wait_for_partials(1);
my ($victim) = map { /^(\w+):/ } partial_files();
$victim //= 'a1';
($rc, $out) = $c->ctl('kill', $victim);
is($rc, 0, "killed $victim in the middle of the put") or diag($out);
ok($h->finish, 'the put still succeeds') or diag("$pout$perr");
like($pout, qr/on 5 of 6 segments of PG 0/, 'on the five nodes left');
ok((grep { /^\Q$victim\E:/ } partial_files()) > 0, "$victim holds a partial file on disk while down");
($rc, $out) = $c->ctl('start', $victim);
is($rc, 0, "restarted $victim") or diag($out);
is(join(' ', grep { /^\Q$victim\E:/ } partial_files()), '', 'its partial file was discarded at restart');
($rc, $out, $n) = holders($big_lsn);
is($n, 5, 'five nodes list the large start state, the restarted one does not') or diag($out);
like(slurp($c->dir . "/nodes/$victim/aurora-storage.log") // '', qr/discarded the unfinished put/,
	'the node logged the discard')
  or diag(join(' ', glob($c->dir . "/nodes/$victim*")));
($rc, $out) = $c->ctl('--timeout', '10000', 'start-state', 'get', '--out', $got);
is($rc, 0, 'get fetches the newest') or diag($out);
like($out, qr/^start state \Q$big_lsn\E \(\d+ bytes\)/m, 'the large one');
cmp_ok(-s $got, '>', 48 * 1024 * 1024, 'whole');

# read quorum: 3 of PG 0's nodes down still serve, 4 do not
($rc, $out) = $c->ctl('stop', 'a1', 'a2', 'b1');
is($rc, 0, 'stopped three of PG 0\'s nodes') or diag($out);
($rc, $out) = $c->ctl('start-state', 'get', '--max-lsn', $seed_lsn, '--out', $got);
is($rc, 0, 'with three nodes of PG 0 down a start state is still fetched') or diag($out);
like($out, qr/^start state \Q$seed_lsn\E /m, 'the newest at or below --max-lsn');
($rc, $out) = $c->ctl('stop', 'b2');
is($rc, 0, 'stopped a fourth') or diag($out);
($rc, $out) = $c->ctl('start-state', 'get', '--max-lsn', $seed_lsn, '--out', $got);
isnt($rc, 0, 'with four down the fetch fails');
like($out, qr/only 2 of 6 segments answered; a read quorum needs 3/, 'with a clear message') or diag($out);
($rc, $out) = $c->ctl('start', 'a1', 'a2', 'b1', 'b2');

$c->stop;
done_testing();
