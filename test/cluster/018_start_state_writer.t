# test/cluster/018_start_state_writer.t: the compute keeps the volume's
# start state current (issue 19, src/start_state_writer.c).  After each
# checkpoint the shipper stores the non-relation files on PG 0, consistent at
# an LSN VDL covers.
#
# A workload with a prepared transaction, a relation map change and an
# unlogged table, then CHECKPOINT: a new start state appears on a write
# quorum of PG 0; restored into an empty directory, its pg_control names the
# compute's latest checkpoint, its relation maps and CLOG segment are the
# compute's, it holds the prepared transaction's two-phase file and the
# unlogged table's init fork, and not the shipper's slot.
use strict;
use warnings;
use Test::More;
use AuroraCluster qw(lsn);
use PageFiles;

my $prefix = $ENV{AURORA_PG_PREFIX} or die "AURORA_PG_PREFIX not set";

my $c = AuroraCluster->new(shipping => 1);
$c->compute_conf_append(join "\n", 'max_prepared_transactions = 4', 'autovacuum = off');
$c->start;
my $pgdata = $c->dir . '/pgdata';



$c->safe_psql('CREATE TABLE t (id int PRIMARY KEY, v text)');
$c->safe_psql("INSERT INTO t SELECT g, 'v' FROM generate_series(1, 1000) g");
$c->safe_psql('VACUUM FULL pg_class');
$c->safe_psql('CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY)');
$c->safe_psql("BEGIN; INSERT INTO t VALUES (-1, 'p'); PREPARE TRANSACTION 'p1'");
my $xid = $c->safe_psql("SELECT transaction FROM pg_prepared_xacts WHERE gid = 'p1'");
my $before = $c->newest_start_state // '0/0';
$c->safe_psql('CHECKPOINT');
my $ckpt = $c->safe_psql('SELECT checkpoint_lsn FROM pg_control_checkpoint()');

ok($c->poll_until(sub { my $n = $c->newest_start_state; defined $n && lsn($n) > lsn($before) && lsn($n) > lsn($ckpt) }, 30),
	'after CHECKPOINT a newer start state is on a write quorum of PG 0, consistent above the checkpoint');
my $vdl = $c->safe_psql('SELECT vdl FROM aurora.watermarks()');
cmp_ok(lsn($c->newest_start_state), '<=', lsn($vdl), '... at an LSN VDL covers');
like(slurp($c->dir . '/postgres.log') // '', qr/start state of checkpoint \Q$ckpt\E stored at/,
	'the compute logged it');

my $restored = $c->dir . '/restored';
my ($rc, $out) = $c->ctl('start-state', 'restore', '--datadir', $restored);
is($rc, 0, 'restore it into an empty directory') or diag($out);
like($out, qr/checkpoint \Q$ckpt\E/, 'it names the compute\'s latest checkpoint');
($rc, $out) = PageFiles::run("$prefix/bin/pg_controldata", $restored);
like($out, qr/^Latest checkpoint location:\s+\Q$ckpt\E$/m, "its pg_control's latest checkpoint is $ckpt");
my $db = $c->safe_psql("SELECT oid FROM pg_database WHERE datname = 'postgres'");
is(slurp("$restored/base/$db/pg_filenode.map"), slurp("$pgdata/base/$db/pg_filenode.map"),
	'the relation map (changed by VACUUM FULL pg_class) is the compute\'s');
is(slurp("$restored/global/pg_filenode.map"), slurp("$pgdata/global/pg_filenode.map"), 'so is the shared one');
ok(-e sprintf("$restored/pg_twophase/%08X", $xid), 'the prepared transaction\'s two-phase file is there');
my $init = $c->safe_psql("SELECT pg_relation_filepath('scratch')") . '_init';
ok(-e "$restored/$init", "the unlogged table's init fork ($init) is there");
ok(-s "$restored/pg_xact/0000" && slurp("$restored/pg_xact/0000") eq slurp("$pgdata/pg_xact/0000"),
	'the CLOG segment is the compute\'s (nothing committed since the checkpoint)');
ok(!-e "$restored/pg_replslot/aurora_shipper", 'the shipper\'s slot is not part of it');

$c->safe_psql("COMMIT PREPARED 'p1'");
$c->stop;
done_testing();
