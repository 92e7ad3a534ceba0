# AuroraCluster.pm: a local aurora cluster for Perl TAP tests.  It drives
# src/tools/cluster.sh (the same script `make run` uses) in a fresh directory
# with free ports, and aurora-ctl to stop, kill and start storage nodes.
package AuroraCluster;

use strict;
use warnings;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(usleep time);
use Test::More;

my $repo   = $ENV{AURORA_REPO}      or die "AURORA_REPO is not set";
my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX is not set";

sub _free_base
{
	for (1 .. 200)
	{
		my $base = 20000 + int(rand(30000));
		my @s = grep { defined } map {
			IO::Socket::INET->new(
				Listen    => 1,
				LocalAddr => '127.0.0.1',
				LocalPort => $base + $_)
		} 0 .. 6;
		return $base if @s == 7;
	}
	die "no free ports";
}

sub new
{
	my ($class, %args) = @_;
	my $root = $ENV{TESTDIR} // '/tmp';
	my $dir  = tempdir('aurora-cluster-XXXXXX', DIR => $root);
	my $base = _free_base();
	my $self = bless { dir => $dir, pgport => $base + 6, nodebase => $base }, $class;
	system('bash', "$repo/src/tools/cluster.sh", 'init', $dir, $prefix, $base, $base + 6) == 0
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

# Run one query on the compute; returns (exit code, stdout, stderr).
sub psql
{
	my ($self, $sql, $db) = @_;
	$db //= 'postgres';
	my $errfile = "$self->{dir}/psql.err";
	open(my $fh, '-|', "$prefix/bin/psql", '-X', '-A', '-t', '-q',
		'-h', '127.0.0.1', '-p', $self->{pgport}, '-d', $db,
		'-v', 'ON_ERROR_STOP=1', '-c', $sql)
	  or die "psql: $!";
	my $out = do { local $/; <$fh> } // '';
	close($fh);
	my $rc = $? >> 8;
	chomp $out;
	return ($rc, $out);
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
