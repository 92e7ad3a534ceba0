# test/cluster/003_smgr_hook.t: the core patch's storage manager hook works.
# With test/modules/smgr_probe preloaded, every relation's storage calls go
# through the function table the module returns from smgr_hook (counted per
# backend), smgr_init_hook runs in each backend, and data written through it
# survives a restart.  (With no hook set, PostgreSQL's own regression suite
# runs on this server in the 'postgres' stage of make check.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('probe');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'smgr_probe'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION smgr_probe');

my $counts = 'SELECT init_hook_called, creates, extends, reads, writes FROM smgr_probe_counts()';

# A fresh backend: the init hook ran, nothing was created yet.
my ($init, $creates) = split /\|/, $node->safe_psql('postgres', $counts);
is($init, 't', 'smgr_init_hook runs in a new backend');

# Creating and filling a table in one backend goes through the hook.
my $out = $node->safe_psql('postgres', qq{
	CREATE TABLE t (id int PRIMARY KEY, pad text);
	INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
	$counts;
});
my (undef, $c, $e) = split /\|/, $out;
cmp_ok($c, '>=', 2, "relation creation went through the hook ($c creates: heap, index...)");
cmp_ok($e, '>=', 100, "extending went through the hook ($e extends for ~600 pages)");

# After a restart the data must be read back through the hook.
$node->restart;
$out = $node->safe_psql('postgres', qq{
	SELECT count(*), sum(id) FROM t;
	$counts;
});
my ($result, $after) = split /\n/, $out;
is($result, '20000|200010000', 'every row reads back after a restart');
my (undef, undef, undef, $r) = split /\|/, $after;
cmp_ok($r, '>=', 100, "reads went through the hook ($r reads)");

# Temporary relations use the same switch.
$out = $node->safe_psql('postgres', qq{
	CREATE TEMP TABLE tt AS SELECT g FROM generate_series(1, 1000) g;
	SELECT count(*) FROM tt;
	SELECT creates FROM smgr_probe_counts();
});
my ($tcount, $tcreates) = split /\n/, $out;
is($tcount, '1000', 'temporary relation works');
cmp_ok($tcreates, '>=', 1, 'and was created through the hook');

$node->stop;
done_testing();
