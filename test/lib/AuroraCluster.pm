# AuroraCluster.pm: a local aurora cluster for Perl TAP tests.  It drives
# src/tools/cluster.sh (the same script `make run` uses) in a fresh directory
# with free ports, and aurora-ctl to stop, kill and start storage nodes.
# Also what the cluster tests ask of storage alike: a node's log and segments,
# the commit records it holds, whether the segments have converged; and
# lsn(), exported on request, for "X/Y" LSNs.
package AuroraCluster;

use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use Time::HiRes qw(usleep time);
use Test::More;
use PageFiles ();

our @EXPORT_OK = qw(lsn);

my $repo   = $ENV{AURORA_REPO}      or die "AURORA_REPO is not set";
my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX is not set";
my $ctl    = "$repo/storage_service/build/aurora-ctl";

# An LSN as PostgreSQL prints it ("16/B374D848") as a number.
sub lsn { my ($hi, $lo) = split m{/}, shift; return hex($hi) * 2**32 + hex($lo) }

# Seven consecutive free loopback ports, from the one picker the driver and
# the benchmarks use (it keeps them out of the kernel's ephemeral range).
sub _free_base
{
	my $base = `bash $repo/src/tools/free-ports.sh`;
	die "no free ports" if $? != 0 || $base !~ /^\d+$/;
	return $base + 0;
}

# AuroraCluster->new(shipping => 1): the compute ships its WAL with the
# commit rule on and keeps its relation pages in storage (the aurora storage
# manager, seeded at the first start), as `make run` sets it up; by default
# it does not ship (tests of the storage service alone stream to the nodes
# themselves).  local_pages => 1 with shipping: pages stay in local files
# (tests that compare storage's pages with the files).
sub new
{
	my ($class, %args) = @_;
	my $root = $ENV{TESTDIR} // '/tmp';
	my $dir  = tempdir('aurora-cluster-XXXXXX', DIR => $root);
	my $base = _free_base();
	my $self = bless { dir => $dir, pgport => $base + 6, nodebase => $base }, $class;
	# without the local page cache make run sets up: these tests mean the
	# pages they read to come from the storage nodes
	system('bash', "$repo/src/tools/cluster.sh", 'init', $dir, $prefix, $base, $base + 6,
		!$args{shipping} ? ('--no-shipping') : $args{local_pages} ? ('--local-pages') : (),
		'--page-cache', '0') == 0
	  or die "cluster.sh init failed";
	return $self;
}

# The cluster's directory (nodes/, pgdata/, logs) and the compute's port.
sub dir    { $_[0]{dir} }
sub pgport { $_[0]{pgport} }

# Start the storage nodes and the compute (cluster.sh start).
sub start
{
	my ($self) = @_;
	system('bash', "$repo/src/tools/cluster.sh", 'start', $self->{dir}) == 0
	  or die "cluster.sh start failed";
	$self->{stopped} = 0;
}

# Stop the compute and the storage nodes (cluster.sh stop), and every other
# compute start_compute started; once only.
sub stop
{
	my ($self) = @_;
	return if $self->{stopped};
	for my $pgdata (@{ $self->{computes} // [] })
	{
		system("$prefix/bin/pg_ctl -D $pgdata -m immediate -w stop >/dev/null 2>&1")
		  if -e "$pgdata/postmaster.pid";
	}
	system('bash', "$repo/src/tools/cluster.sh", 'stop', $self->{dir});
	$self->{stopped} = 1;
}

# aurora-ctl --cluster DIR/nodes ACTION TARGET...; returns (exit code, output)
sub ctl
{
	my ($self, @args) = @_;
	return PageFiles::run($ctl, '--cluster', "$self->{dir}/nodes", @args);
}

# Set key = value in a storage node's config file (takes effect at its next start).
sub node_conf_set
{
	my ($self, $node, $key, $value) = @_;
	my $conf = "$self->{dir}/nodes/$node.conf";
	open(my $in, '<', $conf) or die "$conf: $!";
	my @lines = grep { !/^\s*\Q$key\E\s*=/ } <$in>;
	close($in);
	open(my $out, '>', $conf) or die "$conf: $!";
	print $out @lines, "$key = $value\n";
	close($out);
}

# Append lines to the compute's postgresql.conf (takes effect at its next start).
sub compute_conf_append
{
	my ($self, $text) = @_;
	open(my $fh, '>>', "$self->{dir}/pgdata/postgresql.conf") or die "postgresql.conf: $!";
	print $fh "$text\n";
	close($fh);
}

# node id => listen URL, from the node config files
sub node_urls
{
	my ($self) = @_;
	my %url;
	for my $conf (glob("$self->{dir}/nodes/*.conf"))
	{
		open(my $fh, '<', $conf) or die "$conf: $!";
		my %kv = map { /^\s*(\w+)\s*=\s*(.*?)\s*$/ ? ($1, $2) : () } <$fh>;
		$url{ $kv{node_id} } = $kv{listen_url};
	}
	return \%url;
}

# aurora-ctl stream ARGS; returns (exit code, output, {records, last_start, end})
# for what a write quorum acknowledged.
sub stream
{
	my ($self, @args) = @_;
	my ($rc, $out) = $self->ctl('stream', @args);
	my %r = $out =~ /^stream: .*?acked_records (\d+) acked_last_start (\d+) acked_end (\d+)/m
	  ? (records => $1, last_start => $2, end => $3) : ();
	return ($rc, $out, \%r);
}

# aurora-ctl read-log from one node; returns {records, first, last_end, scl,
# breaks, bad} as verified by the tool (content, LSNs and backlinks).
sub read_log
{
	my ($self, $node, @args) = @_;
	my $url = $self->node_urls->{$node} or die "no node $node";
	my (undef, $out) = PageFiles::run($ctl, 'read-log', $url, @args);
	my %r = $out =~ /records (\d+) first_start (\d+) last_end (\d+) scl (\d+) chain_breaks (\d+) bad_payloads (\d+)/
	  ? (records => $1, first => $2, last_end => $3, scl => $4, breaks => $5, bad => $6) : ();
	return \%r;
}

# One node's view of one PG (aurora-ctl segments): {scl, highest, records,
# bytes (of records in its log file), epoch (volume), holes, peer_scl,
# from_peers, truncated_epoch, last_cut (EPOCH@LSN or -), dropped, recovery},
# or {} if the node does not answer.
sub segment_state
{
	my ($self, $node, $pg) = @_;
	my ($rc, $out) = $self->ctl('segments', $node);
	for my $line (split /\n/, $out)
	{
		my @f = split ' ', $line, 16;
		next unless @f >= 15 && $f[2] eq $pg && $f[3] =~ /^\d+$/;
		return {
			scl             => $f[4],
			highest         => $f[5],
			records         => $f[6],
			bytes           => $f[7],
			epoch           => $f[8],
			holes           => $f[9],
			peer_scl        => $f[10],
			from_peers      => $f[11],
			truncated_epoch => $f[12],
			last_cut        => $f[13],
			dropped         => $f[14],
			recovery        => $f[15] // ''
		};
	}
	return {};
}

# True when, for each of PGs 0 .. n_pgs - 1, every one of @nodes answers and
# all report the same SCL (each holds the same log: gossip filled any gap).
sub scl_converged
{
	my ($self, $n_pgs, @nodes) = @_;
	for my $pg (0 .. $n_pgs - 1)
	{
		my %scl;
		for my $n (@nodes)
		{
			my $s = $self->segment_state($n, $pg)->{scl};
			return 0 unless defined $s;
			$scl{$s} = 1;
		}
		return 0 unless keys %scl == 1;
	}
	return 1;
}

# xid => number of @nodes whose PG 0 log holds its commit record
# (aurora-ctl read-log --wal).
sub commits_on_nodes
{
	my ($self, @nodes) = @_;
	my %held;
	for my $n (@nodes)
	{
		my $url = $self->node_urls->{$n};
		my $out = `$ctl read-log $url --pg 0 --wal 2>/dev/null`;
		my %mine = map { $_ => 1 } $out =~ /^commit (\d+)$/mg;
		$held{$_}++ for keys %mine;
	}
	return \%held;
}

# How many lines of the storage nodes' logs say a record was refused or
# inconsistent.
sub refused_records
{
	my ($self) = @_;
	my $n = `grep -h -c 'INCONSISTENT\\|refused' $self->{dir}/nodes/*/aurora-storage.log | paste -sd+ | bc`;
	chomp $n;
	return $n;
}

# The newest start state a write quorum of PG 0 holds (aurora-ctl
# start-state list), or undef.
sub newest_start_state
{
	my ($self) = @_;
	my ($rc, $out) = $self->ctl('start-state', 'list');
	my %lsns;
	$lsns{$_}++ for $out =~ m{\b([0-9A-F]+/[0-9A-F]+) \(}g;
	my @q = sort { lsn($b) <=> lsn($a) } grep { $lsns{$_} >= 4 } keys %lsns;
	return $q[0];
}

# GETPAGE of many blocks from one node (aurora-ctl getpage --batch): each
# request "SPC/DB/REL/FORK/BLOCK LSN", in whichever of the volume's n_pgs PGs
# of bps-block chunks holds it, through the files $files.list and
# $files.pages; returns (exit code, output: a status line a request, pages).
sub getpage_batch
{
	my ($self, $node, $files, $n_pgs, $bps, @requests) = @_;
	PageFiles::spew("$files.list", join('', map { "- $_\n" } @requests));
	my ($rc, $out) = PageFiles::run($ctl, 'getpage', '--node', $self->node_urls->{$node},
		'--batch', "$files.list", '--pgs', $n_pgs, '--blocks-per-segment', $bps,
		'--wait-ms', 20000, '-o', "$files.pages");
	return ($rc, $out, PageFiles::slurp("$files.pages") // '');
}

# Poll code until it returns true (default 30 s); returns its last value.
sub poll_until
{
	my ($self, $code, $timeout) = @_;
	my $deadline = time() + ($timeout // 30);
	while (1)
	{
		my $v = $code->();
		return $v if $v || time() >= $deadline;
		usleep(100_000);
	}
}

# Run one query on the compute; returns (exit code, stdout, stderr).
sub psql
{
	my ($self, $sql, $db) = @_;
	$db //= 'postgres';
	my $errfile = "$self->{dir}/psql.err";
	open(my $saved, '>&', \*STDERR) or die "dup stderr: $!";
	open(STDERR, '>', $errfile) or die "$errfile: $!";
	my $ok = open(my $fh, '-|', "$prefix/bin/psql", '-X', '-A', '-t', '-q',
		'-h', '127.0.0.1', '-p', $self->{pgport}, '-d', $db,
		'-v', 'ON_ERROR_STOP=1', '-c', $sql);
	my $out = $ok ? do { local $/; <$fh> } // '' : '';
	close($fh) if $ok;
	my $rc = $ok ? $? >> 8 : 255;
	open(STDERR, '>&', $saved) or die "restore stderr: $!";
	open(my $ef, '<', $errfile) or die "$errfile: $!";
	my $err = do { local $/; <$ef> } // '';
	close($ef);
	chomp $out;
	return ($rc, $out, $err);
}

# Run one query on the compute; returns its output, or dies with psql's
# stderr if it fails.
sub safe_psql
{
	my ($self, $sql, $db) = @_;
	my ($rc, $out, $err) = $self->psql($sql, $db);
	die "query failed ($rc): $sql\n$err" if $rc != 0;
	return $out;
}

# Poll a query until it returns the expected output (default 30 s).
sub poll_query_until
{
	my ($self, $sql, $expected, $timeout) = @_;
	$timeout //= 30;
	my $last     = '';
	my $deadline = time() + $timeout;
	while (time() < $deadline)
	{
		my ($rc, $out) = $self->psql($sql);
		$last = $out;
		return 1 if $rc == 0 && $out eq $expected;
		usleep(100_000);
	}
	diag("query '$sql' last returned '$last', expected '$expected'");
	return 0;
}

# Poll until VDL reaches the compute's current WAL position (default 30 s).
sub poll_vdl_covers_wal
{
	my ($self, $timeout) = @_;
	my $end = $self->safe_psql('SELECT pg_current_wal_lsn()');
	return $self->poll_query_until("SELECT vdl >= '$end' FROM aurora.watermarks()", 't', $timeout);
}

# ---- computes other than the cluster's own (issue 19) ----

# Prepare a compute's data directory from the volume alone (cluster.sh
# prepare: aurora-compute-init start) in DIR/$name, absent or empty, or
# the stopped compute's own data directory when $name is undef; for a new
# one, set its port.  Returns (exit code, compute-init's output).
sub prepare_compute
{
	my ($self, $name, $port) = @_;
	my $pgdata = defined $name ? "$self->{dir}/$name" : "$self->{dir}/pgdata";
	my $rc = system('bash', "$repo/src/tools/cluster.sh", 'prepare', $self->{dir},
		defined $name ? ($pgdata) : ()) >> 8;
	my $out = PageFiles::slurp("$self->{dir}/compute-init.log") // '';
	if ($rc == 0 && defined $port)
	{
		open(my $fh, '>>', "$pgdata/postgresql.conf") or die "$pgdata/postgresql.conf: $!";
		print $fh "port = $port\n";
		close($fh);
	}
	return ($rc, $out);
}

# pg_ctl start of the compute in $pgdata (DIR/pgdata by default), as the
# server user; returns true when it accepts connections.
sub start_compute
{
	my ($self, $pgdata, $log) = @_;
	$pgdata //= "$self->{dir}/pgdata";
	$log    //= "$pgdata.log";
	push @{ $self->{computes} }, $pgdata unless $pgdata eq "$self->{dir}/pgdata";
	return system("$prefix/bin/pg_ctl -D $pgdata -l $log -w -t 60 start >/dev/null 2>&1") == 0;
}

# kill -9 the compute in $pgdata: the postmaster and every process it
# started, at once (a machine that is gone).
sub kill_compute
{
	my ($self, $pgdata) = @_;
	$pgdata //= "$self->{dir}/pgdata";
	open(my $fh, '<', "$pgdata/postmaster.pid") or return;
	my $pm = <$fh>;
	close($fh);
	chomp $pm;
	my @kids = split ' ', `pgrep -P $pm`;
	kill 'KILL', $pm, @kids;
	# gone, not only signalled: pg_ctl status (cluster.sh start) would
	# otherwise still see the postmaster and skip the start
	$self->poll_until(sub { !grep { kill(0, $_) } $pm, @kids }, 10);
}

# Talk to another compute from now on (psql, safe_psql, poll_*).
sub use_port { $_[0]{pgport} = $_[1] }

# Stop the cluster when the object goes (the end of the test).
sub DESTROY
{
	my ($self) = @_;
	$self->stop if $self->{dir};
}

1;
