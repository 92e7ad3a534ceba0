-- test/pgtap/001_objects.sql: the SQL surface of the extension exists with the
-- documented columns and types, and the storage node view reflects the cluster.
BEGIN;
SELECT plan(38);

SELECT has_schema('aurora');
SELECT has_function('aurora', 'version', ARRAY[]::text[]);
SELECT function_returns('aurora', 'version', ARRAY[]::text[], 'text');
SELECT has_function('aurora', 'storage_node_status', ARRAY[]::text[]);
SELECT has_view('aurora', 'storage_nodes', 'view aurora.storage_nodes exists');

SELECT columns_are('aurora', 'storage_nodes',
    ARRAY['node_id', 'az', 'url', 'reachable', 'state', 'rtt', 'uptime',
          'requests', 'errors', 'error']);
SELECT col_type_is('aurora', 'storage_nodes', 'node_id', 'text', 'storage_nodes.node_id is text');
SELECT col_type_is('aurora', 'storage_nodes', 'az', 'text', 'storage_nodes.az is text');
SELECT col_type_is('aurora', 'storage_nodes', 'url', 'text', 'storage_nodes.url is text');
SELECT col_type_is('aurora', 'storage_nodes', 'reachable', 'boolean', 'storage_nodes.reachable is boolean');
SELECT col_type_is('aurora', 'storage_nodes', 'state', 'text', 'storage_nodes.state is text');
SELECT col_type_is('aurora', 'storage_nodes', 'rtt', 'interval', 'storage_nodes.rtt is interval');
SELECT col_type_is('aurora', 'storage_nodes', 'uptime', 'interval', 'storage_nodes.uptime is interval');
SELECT col_type_is('aurora', 'storage_nodes', 'requests', 'bigint', 'storage_nodes.requests is bigint');
SELECT col_type_is('aurora', 'storage_nodes', 'errors', 'bigint', 'storage_nodes.errors is bigint');
SELECT col_type_is('aurora', 'storage_nodes', 'error', 'text', 'storage_nodes.error is text');

-- aurora.watermarks(): the documented columns and types; with shipping off
-- the volume watermarks are NULL and the local ones are not
SELECT has_function('aurora', 'watermarks', ARRAY[]::text[]);
SELECT is(pg_get_function_arguments('aurora.watermarks()'::regprocedure),
    'OUT insert_lsn pg_lsn, OUT flush_lsn pg_lsn, OUT vcl pg_lsn, OUT vdl pg_lsn, OUT vdl_lag_bytes bigint, OUT vdl_age interval',
    'aurora.watermarks() returns the documented columns');
SELECT ok((SELECT insert_lsn >= flush_lsn AND flush_lsn > '0/0' FROM aurora.watermarks()),
          'insert LSN >= local flush LSN > 0');
SELECT ok((SELECT vcl IS NULL AND vdl IS NULL AND vdl_lag_bytes IS NULL AND vdl_age IS NULL
             FROM aurora.watermarks()),
          'with aurora.shipping off the volume watermarks are NULL');
SELECT ok(NOT has_function_privilege('public', 'aurora.watermarks()', 'EXECUTE'),
          'watermarks() is not executable by PUBLIC');
SELECT ok(has_function_privilege('pg_monitor', 'aurora.watermarks()', 'EXECUTE'),
          'watermarks() is executable by pg_monitor');

-- aurora.protection_groups and aurora.segments: documented columns; empty
-- while the compute does not ship
SELECT columns_are('aurora', 'protection_groups',
    ARRAY['pg', 'pgcl', 'segments_up', 'write_quorum_available', 'read_quorum_available',
          'volume_epoch', 'membership_epoch', 'ack_latency_p50', 'ack_latency_p99']);
SELECT col_type_is('aurora', 'protection_groups', 'pgcl', 'pg_lsn', 'protection_groups.pgcl is pg_lsn');
SELECT columns_are('aurora', 'segments',
    ARRAY['pg', 'replica', 'node_id', 'az', 'scl', 'lag_bytes', 'state', 'last_ack_age',
          'acks', 'error']);
SELECT col_type_is('aurora', 'segments', 'last_ack_age', 'interval', 'segments.last_ack_age is interval');
SELECT is((SELECT count(*) FROM aurora.protection_groups) + (SELECT count(*) FROM aurora.segments),
          0::bigint, 'with aurora.shipping off both views are empty');
SELECT is(pg_get_function_arguments('aurora.shipping_stats()'::regprocedure),
    'OUT node_id text, OUT az text, OUT segments bigint, OUT batches bigint, OUT records bigint, OUT bytes bigint, OUT acks bigint, OUT errors bigint',
    'aurora.shipping_stats() returns the documented columns');
SELECT is((SELECT count(*) FROM aurora.shipping_stats()), 0::bigint,
          'aurora.shipping_stats() is empty while not shipping');
SELECT ok(NOT has_table_privilege('public', 'aurora.segments', 'SELECT'),
          'aurora.segments is not readable by PUBLIC');

SELECT is((SELECT count(*) FROM aurora.storage_nodes), 6::bigint,
          'six storage nodes are configured');
SELECT is((SELECT count(*) FROM aurora.storage_nodes WHERE reachable), 6::bigint,
          'all six answer STATUS');
SELECT is((SELECT count(DISTINCT az) FROM aurora.storage_nodes), 3::bigint,
          'they span three availability zones');
SELECT results_eq(
    'SELECT az, count(*) FROM aurora.storage_nodes GROUP BY az ORDER BY az',
    $$VALUES ('a', 2::bigint), ('b', 2::bigint), ('c', 2::bigint)$$,
    'two nodes per availability zone');
SELECT is((SELECT count(*) FROM aurora.storage_nodes WHERE state = 'serving'), 6::bigint,
          'every node reports the serving state');

SELECT is(current_setting('aurora.write_quorum'), '4', 'write quorum is 4 of 6');
SELECT is(current_setting('aurora.read_quorum'), '3', 'read quorum is 3 of 6');
SELECT throws_ok('SET aurora.write_quorum = 2', '55P02', NULL,
                 'write quorum cannot change while the server runs');

SELECT * FROM finish();
ROLLBACK;
