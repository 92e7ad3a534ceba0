# AuroraCluster.pm: a local aurora cluster for Perl TAP tests.  It drives
# src/tools/cluster.sh (the same script `make run` uses) in a fresh directory
# with free ports, and aurora-ctl to stop, kill and start storage nodes.
package AuroraCluster;

use strict;
use warnings;
use File::Temp qw(tempdir);
use Time::HiRes qw(usleep time);
use Test::More;

my $repo   = $ENV{AURORA_REPO}      or die "AURORA_REPO is not set";
my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX is not set";

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

sub dir    { $_[0]{dir} }
sub pgport { $_[0]{pgport} }

sub start
{
	my ($self) = @_;
	system('bash', "$repo/src/tools/cluster.sh", 'start', $self->{dir}) == 0
	  or die "cluster.sh start failed";
	$self->{stopped} = 0;
}

sub stop
{
	my ($self) = @_;
	return if $self->{stopped};
	system('bash', "$repo/src/tools/cluster.sh", 'stop', $self->{dir});
	$self->{stopped} = 1;
}

# aurora-ctl --cluster DIR/nodes ACTION TARGET...; returns (exit code, output)
sub ctl
{
	my ($self, @args) = @_;
	my $cmd = join ' ', map { "'$_'" } "$repo/storage_service/build/aurora-ctl",
	  '--cluster', "$self->{dir}/nodes", @args;
	my $out = `$cmd 2>&1`;
	return ($? >> 8, $out);
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
	my $cmd = join ' ', map { "'$_'" } "$repo/storage_service/build/aurora-ctl",
	  'read-log', $url, @args;
	my $out = `$cmd 2>&1`;
	my %r = $out =~ /records (\d+) first_start (\d+) last_end (\d+) scl (\d+) chain_breaks (\d+) bad_payloads (\d+)/
	  ? (records => $1, first => $2, last_end => $3, scl => $4, breaks => $5, bad => $6) : ();
	return \%r;
}

# One node's view of one PG (aurora-ctl segments): {scl, highest, records,
# bytes (of records in its log file), holes, peer_scl, from_peers, recovery},
# or {} if the node does not answer.
sub segment_state
{
	my ($self, $node, $pg) = @_;
	my ($rc, $out) = $self->ctl('segments', $node);
	for my $line (split /\n/, $out)
	{
		my @f = split ' ', $line, 13;
		next unless @f >= 12 && $f[2] eq $pg && $f[3] =~ /^\d+$/;
		return {
			scl        => $f[4],
			highest    => $f[5],
			records    => $f[6],
			bytes      => $f[7],
			holes      => $f[9],
			peer_scl   => $f[10],
			from_peers => $f[11],
			recovery   => $f[12] // ''
		};
	}
	return {};
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

sub safe_psql
{
	my ($self, $sql, $db) = @_;
	my ($rc, $out) = $self->psql($sql, $db);
	die "query failed ($rc): $sql" if $rc != 0;
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

sub DESTROY
{
	my ($self) = @_;
	$self->stop if $self->{dir};
}

1;
