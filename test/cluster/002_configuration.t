# test/cluster/002_configuration.t: wrong configuration is refused clearly.
# The library only works preloaded; a bad node list or quorum pair stops the
# server at start with a message naming the setting; a bad storage node
# configuration stops the daemon with FILE:LINE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('compute');
$node->init;
$node->start;

# --- not preloaded --------------------------------------------------------
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nCREATE EXTENSION aurora");
isnt($ret, 0, 'CREATE EXTENSION fails when aurora is not preloaded');
like($stderr, qr/55000: aurora must be loaded via shared_preload_libraries/,
	'with SQLSTATE 55000 and a clear message');
like($stderr, qr/HINT:\s+Add aurora to shared_preload_libraries/, 'and a hint');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'aurora'"),
	'0', 'nothing was left half-created');
$node->stop;

# --- preloaded, empty node list: loads, view empty ------------------------
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'aurora'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION aurora');
is($node->safe_psql('postgres', 'SELECT count(*) FROM aurora.storage_nodes'),
	'0', 'no nodes configured: the view is empty');
# aurora.shipping is off: the local watermarks are there, the volume's are not
is($node->safe_psql('postgres',
		'SELECT insert_lsn >= flush_lsn AND flush_lsn > \'0/0\', vcl IS NULL AND vdl IS NULL '
		  . 'AND vdl_lag_bytes IS NULL AND vdl_age IS NULL FROM aurora.watermarks()'),
	't|t', 'not shipping: aurora.watermarks() has the local LSNs, NULL volume watermarks');
is($node->safe_psql('postgres',
		'SELECT (SELECT count(*) FROM aurora.protection_groups) + (SELECT count(*) FROM aurora.segments) '
		  . '+ (SELECT count(*) FROM aurora.shipping_stats())'),
	'0', 'not shipping: aurora.protection_groups, aurora.segments and aurora.shipping_stats() are empty');
$node->stop;

# --- refused configurations ----------------------------------------------
my $port = 7000;
my $six = join(', ', map { "$_:" . substr($_, 0, 1) . ":tcp://127.0.0.1:" . $port++ }
	qw(a1 a2 b1 b2 c1 c2));

my @bad = (
	[ "aurora.storage_nodes = 'a1:a:tcp://127.0.0.1:7001'",
		qr/FATAL:  invalid value for parameter "aurora.storage_nodes".*\n.*DETAIL:  a protection group needs 2 nodes in each of 3 availability zones, but only 0 of the 1 zones/,
		'a single node' ],
	[ "aurora.storage_nodes = 'a1:a:tcp://h:1, a2:a:tcp://h:2, b1:b:tcp://h:3, b2:b:tcp://h:4, c1:c:tcp://h:5, c2:b:tcp://h:6'",
		qr/DETAIL:  .*but only 2 of the 3 zones listed have 2 nodes/,
		'six nodes in only two usable AZs' ],
	[ "aurora.storage_nodes = 'a1:a:tcp://h:1, a1:a:tcp://h:2'",
		qr/DETAIL:.*node id "a1" appears twice/, 'a duplicate node id' ],
	[ "aurora.storage_nodes = 'a1:a:http://h:1'",
		qr/DETAIL:.*URL must start with tcp:\/\//, 'a URL that NNG cannot dial' ],
	[ "aurora.storage_nodes = 'a1-tcp://h:1'",
		qr/DETAIL:.*is not of the form id:az:url/, 'an entry without id and AZ' ],
	[ "aurora.storage_nodes = '$six'\naurora.write_quorum = 3",
		qr/invalid aurora quorum configuration: aurora.write_quorum = 3, aurora.read_quorum = 3/,
		'a write quorum that is not a majority' ],
	[ "aurora.storage_nodes = '$six'\naurora.read_quorum = 2",
		qr/invalid aurora quorum configuration: aurora.write_quorum = 4, aurora.read_quorum = 2/,
		'a read quorum that misses the last write' ],
	[ "aurora.write_quorum = 7",
		qr/7 is outside the valid range for parameter "aurora.write_quorum" \(1 \.\. 6\)/,
		'a write quorum above six' ],
	[ "aurora.shipping = on",
		qr/aurora.shipping is on but aurora.storage_nodes is empty/,
		'shipping with no storage nodes' ],
	[ "aurora.storage_nodes = '$six'\naurora.shipping = on\nmax_replication_slots = 0",
		qr/aurora.shipping needs a replication slot, but max_replication_slots = 0/,
		'shipping without replication slots' ],
	[ "aurora.storage_nodes = '$six'\naurora.shipping = on\nwal_level = minimal\nmax_wal_senders = 0",
		qr/aurora.shipping needs wal_level replica or logical/,
		'shipping with wal_level = minimal' ],
	[ "aurora.storage_nodes = '$six'\naurora.protection_groups = 0",
		qr/0 is outside the valid range for parameter "aurora.protection_groups" \(1 \.\. 65536\)/,
		'zero protection groups' ],
);

my $n = 0;
for my $case (@bad)
{
	my ($conf, $pattern, $what) = @$case;
	my $bad = PostgreSQL::Test::Cluster->new('bad' . $n++);
	$bad->init;
	$bad->append_conf('postgresql.conf', "shared_preload_libraries = 'aurora'\n$conf\n");
	ok(!$bad->start(fail_ok => 1), "server refuses to start with $what");
	like(slurp_file($bad->logfile), $pattern, "and says why ($what)");
}

# --- storage node daemon configuration ------------------------------------
my $dir = PostgreSQL::Test::Utils::tempdir();
open(my $fh, '>', "$dir/bad.conf") or die;
print $fh "node_id = a1\naz = a\nlisten_url = tcp://127.0.0.1:1\ndata_dir = $dir/a1\ncolour = blue\n";
close($fh);
my ($out, $err);
IPC::Run::run([ 'aurora-storage', '--config', "$dir/bad.conf" ], '>', \$out, '2>', \$err);
is($? >> 8, 1, 'aurora-storage exits 1 on a bad configuration file');
like($err, qr/bad\.conf:5: .*colour/, 'naming the file, the line and the unknown key');

done_testing();
