# test/cluster/017_lsn_allocation_limit.t: the LSN allocation limit (issue
# 19, src/lsn_allocation_limit.c).  A backend whose WAL runs more than
# aurora.lsn_allocation_limit beyond VDL waits until storage catches up, so
# the WAL a restart would discard stays bounded.
#
# Three nodes down (one per AZ): no PG has a write quorum and VDL stands
# still.  A bulk load then stops at the limit (the WAL stays within the
# limit, plus up to 1 MB per other writing session, of VDL; it waits, wait
# event class Extension), while sessions that write little (this test's
# monitoring queries) are not held up; it can be
# cancelled while it waits, and a second one completes once the nodes are
# back.
use strict;
use warnings;
use Test::More;
use IPC::Run ();
use AuroraCluster;

my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX not set";
my $limit_mb = 8;

my $c = AuroraCluster->new(shipping => 1);
$c->compute_conf_append(join "\n", "aurora.lsn_allocation_limit = ${limit_mb}MB", 'max_wal_size = 4GB',
	'autovacuum = off');
$c->start;
my @psql = ("$prefix/bin/psql", '-X', '-h', '127.0.0.1', '-p', $c->pgport, '-d', 'postgres', '-v', 'ON_ERROR_STOP=1');

$c->safe_psql('CREATE TABLE bulk (id int, pad text)');
is($c->safe_psql('SELECT limit_bytes FROM aurora.lsn_allocation_limit()'), $limit_mb * 1024 * 1024,
	'aurora.lsn_allocation_limit() reports the limit');

my $bulk_sql = "INSERT INTO bulk SELECT g, repeat('x', 500) FROM generate_series(1, 150000) g";

sub start_bulk
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ @psql, '-c', $bulk_sql ], '>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

# the psql running the load has exited (pumping notices the closed pipes)
sub finished
{
	my ($h) = @_;
	eval { $h->pump_nb };
	return !$h->pumpable;
}

# the bulk load's backend waits at the limit: a wait began (the counter
# counts waits when they begin) and the backend waits in class Extension
my $waits_seen = 0;
sub waiting_at_limit
{
	my ($waits, $waiting) = split /\|/, $c->safe_psql(q{SELECT (SELECT waits FROM aurora.lsn_allocation_limit()),
	  (SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO bulk%' AND wait_event_type = 'Extension')});
	return 0 unless $waits > $waits_seen && $waiting eq '1';
	$waits_seen = $waits;
	return 1;
}

my ($rc, $out) = $c->ctl('kill', 'a1', 'b1', 'c1');
is($rc, 0, 'kill -9 a1, b1 and c1: no PG has a write quorum') or diag($out);

my ($h, $bout, $berr) = start_bulk();
ok($c->poll_until(\&waiting_at_limit, 60), 'the bulk load waits (wait event class Extension)');
my $ahead1 = $c->safe_psql('SELECT wal_ahead_bytes FROM aurora.lsn_allocation_limit()');
sleep 2;
my $ahead2 = $c->safe_psql('SELECT wal_ahead_bytes FROM aurora.lsn_allocation_limit()');
is($ahead2, $ahead1, "and writes no more WAL while it waits ($ahead2 bytes beyond VDL)");
cmp_ok($ahead2, '<=', ($limit_mb + 2) * 1024 * 1024, 'the WAL beyond VDL stays within the limit (plus what others may write)');
cmp_ok($ahead2, '>=', $limit_mb * 1024 * 1024, '... having reached it');
cmp_ok($c->safe_psql('SELECT wait_time_ms FROM aurora.lsn_allocation_limit()'), '==', 0,
	'its time is added when it ends');

# a waiting backend can be cancelled
$c->safe_psql(q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO bulk%'});
ok($c->poll_until(sub { finished($h) }, 30), 'a cancel ends the wait');
$h->finish;
like($$berr, qr/canceling statement due to user request/, '... with the usual message');

# back under the limit once storage is back: a second load completes
($h, $bout, $berr) = start_bulk();
ok($c->poll_until(\&waiting_at_limit, 60), 'a second bulk load waits at the limit');
($rc, $out) = $c->ctl('start', 'a1', 'b1', 'c1');
is($rc, 0, 'the nodes come back') or diag($out);
ok($c->poll_until(sub { finished($h) }, 120), 'the load goes on and completes');
$h->finish;
is($$berr, '', '... without an error');
is($c->safe_psql('SELECT count(*) FROM bulk'), '150000', 'its rows are there');
ok($c->poll_vdl_covers_wal, 'VDL catches up');

$c->stop;
done_testing();
