# test/cluster/020_fencing.t: a compute that opens the volume fences the one
# before it (issue 19: aurora-compute-init start, src/volume_start.c).
#
# Compute A runs pgbench and a ledger whose acknowledged inserts the client
# records; compute B is created from the volume on another port while A
# runs.  From then on A acknowledges no commit and serves no page from
# storage (clients on A try both), it says why in its log and stops; every
# insert A acknowledged is in B, and B commits.  Then the same with B as the
# old writer while AZ c is partitioned away (its nodes frozen, SIGSTOP) when
# C opens the volume: C fences and truncates the other four; when AZ c comes
# back, B can reach the two segments C never fenced, and still acknowledges
# nothing (two acknowledgements are not a write quorum), while C's writer
# reopens them under its epoch.
use strict;
use warnings;
use Test::More;
use IPC::Run ();
use Time::HiRes qw(usleep time);
use AuroraCluster;

my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX not set";

my $c = AuroraCluster->new(shipping => 1);
$c->compute_conf_append('shared_buffers = 16MB');
$c->start;
my $dir = $c->dir;

sub conn { return ('-h', '127.0.0.1', '-p', $_[0], 'postgres') }

sub run_ok
{
	my ($what, @cmd) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err) or BAIL_OUT("$what failed: $err");
	return $out;
}

sub pg_running { system("$prefix/bin/pg_ctl -D $_[0] status >/dev/null 2>&1") == 0 }

run_ok('pgbench -i', "$prefix/bin/pgbench", '-i', '-s', '2', '-q', conn($c->pgport));
$c->safe_psql('CREATE TABLE ledger (n int PRIMARY KEY, writer text)');
# larger than shared_buffers: a scan of it must read pages from storage
$c->safe_psql("CREATE TABLE cold AS SELECT g AS id, repeat('c', 500) AS pad FROM generate_series(1, 60000) g");
my $script = "$dir/ledger.sql";
open(my $fh, '>', $script) or die "$script: $!";
print $fh "INSERT INTO ledger VALUES ($_, 'w');\n\\echo acked $_\n" for 1 .. 200000;
close($fh);

# Run one round: the writer on $old_port ($old_pgdata) under load, a new
# compute prepared in DIR/$new_name on $new_port.  Returns the new port.
sub fence_round
{
	my ($label, $old_port, $old_pgdata, $new_name, $new_port, $first_n, $before_open, $after_open) = @_;

	# the ledger numbers of this round start at $first_n
	my $round_script = "$dir/ledger-$new_name.sql";
	open(my $in, '<', $script) or die;
	open(my $out, '>', $round_script) or die;
	while (<$in>) { s/(\d+)/$1 + $first_n/e; print $out $_ }
	close($in);
	close($out);

	my ($ack_out, $ack_err) = ('', '');
	my $recorder = IPC::Run::start([ "$prefix/bin/psql", '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-f', $round_script, conn($old_port) ], '>', \$ack_out, '2>', \$ack_err);
	my ($b_out, $b_err) = ('', '');
	my $bench = IPC::Run::start([ "$prefix/bin/pgbench", '-n', '-c', '2', '-T', '120', conn($old_port) ],
		'>', \$b_out, '2>', \$b_err);
	# a session on the old writer, connected before the new compute opens
	my ($s_in, $s_out, $s_err) = ('', '', '');
	my $session = IPC::Run::start([ "$prefix/bin/psql", '-X', '-A', '-t', '-q', conn($old_port) ],
		'<', \$s_in, '>', \$s_out, '2>', \$s_err);
	$s_in .= "SELECT 'connected';\n";
	my $deadline = time() + 60;
	while (time() < $deadline && ((() = $ack_out =~ /^acked /mg) < 200 || $s_out !~ /connected/))
	{
		eval { $_->pump_nb } for $recorder, $session;
		usleep(50_000);
	}
	cmp_ok((() = $ack_out =~ /^acked /mg), '>=', 200, "$label: the writer acknowledges inserts under load")
	  or diag("recorder: $ack_err; session: $s_err");

	$before_open->() if $before_open;
	my ($rc, $init) = $c->prepare_compute($new_name, $new_port);
	is($rc, 0, "$label: a new compute opens the volume while the writer runs") or diag($init);
	$after_open->() if $after_open;
	my ($epoch) = $init =~ /^volume epoch: (\d+)$/m;

	# from now on the old writer acknowledges nothing and serves no page
	eval { $recorder->pump_nb };
	my $acked_at_open = () = $ack_out =~ /^acked /mg;
	my ($t_rc, $t_out, $t_err);
	{
		my ($o, $e) = ('', '');
		my $try = IPC::Run::start([ "$prefix/bin/psql", '-X', '-A', '-t', '-q', '-c',
				"INSERT INTO ledger VALUES (-$first_n, 'fenced') RETURNING n", conn($old_port) ],
			'>', \$o, '2>', \$e, IPC::Run::timeout(60));
		eval { $try->finish };
		($t_rc, $t_out) = ($? >> 8, $o);
	}
	isnt($t_out, "-$first_n", "$label: a commit tried on the old writer is not acknowledged");
	$s_in .= "SELECT count(*) FROM cold;\n";
	my $until = time() + 30;
	while (time() < $until && $session->pumpable && $s_out !~ /^60000$/m)
	{
		eval { $session->pump_nb };
		usleep(50_000);
	}
	unlike($s_out, qr/^60000$/m, "$label: a read on the old writer's open session gets no page from storage");
	ok($c->poll_until(sub { !pg_running($old_pgdata) }, 30), "$label: the old writer stopped");
	my $old_log = -e "$old_pgdata.log" ? "$old_pgdata.log" : "$dir/postgres.log";
	like(PageFiles::slurp($old_log) // '',
		qr/this compute was fenced: a newer compute opened the volume/, "$label: ... and its log says why");
	$_->kill_kill for $recorder, $bench, $session;
	my %acked = map { $_ => 1 } $ack_out =~ /^acked (\d+)$/mg;
	note("$label: " . scalar(keys %acked) . " inserts acknowledged, $acked_at_open of them before the open returned");

	ok($c->start_compute("$dir/$new_name"), "$label: the new compute starts") or
	  diag(`tail -n 30 $dir/$new_name.log`);
	$c->use_port($new_port);
	my %have = map { $_ => 1 } split /,/, $c->safe_psql('SELECT string_agg(n::text, \',\') FROM ledger');
	my @lost = grep { !$have{$_} } keys %acked;
	is(scalar(@lost), 0, "$label: every insert the old writer acknowledged is in the new compute");
	ok(!$have{ -$first_n }, "$label: the commit tried after the open is not");
	is($c->safe_psql('SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)'),
		't', "$label: pgbench's balances agree");
	is($c->safe_psql('SELECT volume_epoch FROM aurora.last_start()'), $epoch, "$label: the new compute runs at epoch $epoch");
	run_ok("$label: pgbench on the new compute", "$prefix/bin/pgbench", '-n', '-c', '2', '-t', '30', conn($new_port));
	return $new_port;
}

# ---- round 1: A, with every node in reach ------------------------------------
my $port_a = $c->pgport;
my $port_b = fence_round('A fenced by B', $port_a, "$dir/pgdata", 'pgdata_b', $port_a + 100, 0);

# ---- round 2: B is the writer; AZ c is partitioned away while C opens -------
sub node_pids
{
	return map { split ' ', `pgrep -f '^aurora-storage --config $dir/nodes/$_.conf'` } @_;
}
my @az_c = node_pids(qw(c1 c2));
is(scalar(@az_c), 2, 'the two nodes of AZ c run');
fence_round('B fenced by C across a partition', $port_b, "$dir/pgdata_b", 'pgdata_c', $port_a + 200, 1_000_000,
	sub { kill 'STOP', @az_c },
	sub { kill 'CONT', @az_c });
my $reopened = $c->poll_until(sub {
		my $n = 0;
		for my $pg (0 .. 3)
		{
			$n += ($c->segment_state($_, $pg)->{truncated_epoch} // 0) == ($c->safe_psql('SELECT volume_epoch FROM aurora.last_start()')) for qw(c1 c2);
		}
		$n == 8;
	}, 30);
ok($reopened, "C's writer reopened AZ c's segments under its epoch once they were back");

system("$prefix/bin/pg_ctl -D $dir/pgdata_c -m fast stop >/dev/null 2>&1");
$c->stop;
done_testing();
