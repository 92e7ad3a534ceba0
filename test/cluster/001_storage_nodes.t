# test/cluster/001_storage_nodes.t: the first real compute -> storage path.
# Six storage node processes in three AZs and a compute; aurora.storage_nodes
# shows them all reachable; kill -9 one node and a whole AZ and see it in the
# view; start them again and see them back.
use strict;
use warnings;
use Test::More;
use AuroraCluster;

my $c = AuroraCluster->new;
$c->start;

my $reachable =
  "SELECT string_agg(node_id || '=' || CASE WHEN reachable THEN 'up' ELSE 'down' END, ',' "
  . "ORDER BY node_id) FROM aurora.storage_nodes";

ok($c->poll_query_until($reachable, 'a1=up,a2=up,b1=up,b2=up,c1=up,c2=up'),
	'all six nodes reachable');
is($c->safe_psql("SELECT count(*) FROM aurora.storage_nodes WHERE state = 'serving' AND error IS NULL"),
	'6', 'all six report serving, under their configured names');

my ($rc, $out) = $c->ctl('kill', 'b1');
is($rc, 0, 'aurora-ctl kill b1') or diag($out);
ok($c->poll_query_until($reachable, 'a1=up,a2=up,b1=down,b2=up,c1=up,c2=up'),
	'b1 shows unreachable after kill -9');
like($c->safe_psql("SELECT error FROM aurora.storage_nodes WHERE node_id = 'b1'"),
	qr/\S/, 'the view says why b1 is unreachable');
is($c->safe_psql("SELECT state IS NULL AND rtt IS NULL FROM aurora.storage_nodes WHERE node_id = 'b1'"),
	't', 'no state or round-trip time is invented for an unreachable node');

($rc, $out) = $c->ctl('start', 'b1');
is($rc, 0, 'aurora-ctl start b1') or diag($out);
ok($c->poll_query_until($reachable, 'a1=up,a2=up,b1=up,b2=up,c1=up,c2=up'), 'b1 is back');
is($c->safe_psql("SELECT (SELECT uptime FROM aurora.storage_nodes WHERE node_id = 'b1') < "
	  . "(SELECT uptime FROM aurora.storage_nodes WHERE node_id = 'a1')"),
	't', 'b1 is a new process (younger than a1)');

# A whole AZ: both nodes of c, with a clean SIGTERM stop this time.
($rc, $out) = $c->ctl('stop', 'az:c');
is($rc, 0, 'aurora-ctl stop az:c') or diag($out);
ok($c->poll_query_until($reachable, 'a1=up,a2=up,b1=up,b2=up,c1=down,c2=down'), 'AZ c unreachable');
ok(!-e $c->dir . "/nodes/c1/aurora-storage.pid", 'a clean stop removes the pid file');

($rc, $out) = $c->ctl('start', 'az:c');
is($rc, 0, 'aurora-ctl start az:c') or diag($out);
ok($c->poll_query_until($reachable, 'a1=up,a2=up,b1=up,b2=up,c1=up,c2=up'), 'AZ c back');

# Unknown targets are a clear error.
($rc, $out) = $c->ctl('kill', 'z9');
is($rc, 2, 'aurora-ctl refuses an unknown node id');
like($out, qr/z9/, 'and names it');

$c->stop;
done_testing();
