-- test/pgtap/001_objects.sql: the SQL surface of the extension exists with the
-- documented columns and types, and the storage node view reflects the cluster.
BEGIN;
SELECT plan(47);

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

-- aurora.watermarks(): the documented columns and types; this compute ships
-- (cluster.sh's default), so the volume watermarks are there and consistent
-- with the local ones (a compute that does not ship: test/cluster/002)
SELECT has_function('aurora', 'watermarks', ARRAY[]::text[]);
SELECT is(pg_get_function_arguments('aurora.watermarks()'::regprocedure),
    'OUT insert_lsn pg_lsn, OUT flush_lsn pg_lsn, OUT vcl pg_lsn, OUT vdl pg_lsn, OUT vdl_lag_bytes bigint, OUT vdl_age interval',
    'aurora.watermarks() returns the documented columns');
SELECT ok((SELECT insert_lsn >= flush_lsn AND flush_lsn > '0/0' FROM aurora.watermarks()),
          'insert LSN >= local flush LSN > 0');
SELECT ok((SELECT vcl >= vdl AND vdl > '0/0' AND vdl <= flush_lsn
                  AND vdl_lag_bytes = flush_lsn - vdl AND vdl_age >= '0'::interval
             FROM aurora.watermarks()),
          'shipping: 0 < VDL <= VCL, VDL <= local flush, lag = flush - VDL, age >= 0');
SELECT ok(NOT has_function_privilege('public', 'aurora.watermarks()', 'EXECUTE'),
          'watermarks() is not executable by PUBLIC');
SELECT ok(has_function_privilege('pg_monitor', 'aurora.watermarks()', 'EXECUTE'),
          'watermarks() is executable by pg_monitor');

-- aurora.protection_groups and aurora.segments: documented columns and types,
-- one row per PG and six per PG, all healthy
SELECT columns_are('aurora', 'protection_groups',
    ARRAY['pg', 'pgcl', 'segments_up', 'write_quorum_available', 'read_quorum_available',
          'volume_epoch', 'membership_epoch', 'ack_latency_p50', 'ack_latency_p99']);
SELECT results_eq(
    $$SELECT attname::text COLLATE "default", format_type(atttypid, atttypmod) FROM pg_attribute
       WHERE attrelid = 'aurora.protection_groups'::regclass AND attnum > 0 ORDER BY attnum$$,
    $$VALUES ('pg', 'integer'), ('pgcl', 'pg_lsn'), ('segments_up', 'integer'),
             ('write_quorum_available', 'boolean'), ('read_quorum_available', 'boolean'),
             ('volume_epoch', 'bigint'), ('membership_epoch', 'bigint'),
             ('ack_latency_p50', 'double precision'), ('ack_latency_p99', 'double precision')$$,
    'aurora.protection_groups has the documented types');
SELECT columns_are('aurora', 'segments',
    ARRAY['pg', 'replica', 'node_id', 'az', 'scl', 'lag_bytes', 'state', 'last_ack_age',
          'acks', 'error']);
SELECT results_eq(
    $$SELECT attname::text COLLATE "default", format_type(atttypid, atttypmod) FROM pg_attribute
       WHERE attrelid = 'aurora.segments'::regclass AND attnum > 0 ORDER BY attnum$$,
    $$VALUES ('pg', 'integer'), ('replica', 'integer'), ('node_id', 'text'), ('az', 'text'),
             ('scl', 'pg_lsn'), ('lag_bytes', 'bigint'), ('state', 'text'),
             ('last_ack_age', 'interval'), ('acks', 'bigint'), ('error', 'text')$$,
    'aurora.segments has the documented types');
SELECT results_eq(
    $$SELECT count(*)::int, bool_and(write_quorum_available AND read_quorum_available),
             min(segments_up), min(volume_epoch), max(volume_epoch) FROM aurora.protection_groups$$,
    $$SELECT current_setting('aurora.protection_groups')::int, true, 6, volume_epoch, volume_epoch
        FROM aurora.last_start()$$,
    'one row per protection group (aurora.protection_groups), six segments up, quorums available, all at the epoch the compute opened the volume at');
-- aurora.last_start(): how this compute opened the volume (cluster.sh start
-- runs aurora-compute-init start before every start)
SELECT ok((SELECT volume_epoch >= 2 AND how IN ('first-start', 'replaced-datadir', 'from-storage')
                  AND pgs_opened = pgs AND pgs = current_setting('aurora.protection_groups')::int
                  AND NOT fenced
             FROM aurora.last_start()),
          'aurora.last_start(): opened above the seed epoch, every PG on a write quorum, not fenced');
SELECT ok(NOT has_function_privilege('public', 'aurora.last_start()', 'EXECUTE'),
          'aurora.last_start() is not executable by PUBLIC');
SELECT results_eq(
    $$SELECT count(*)::int, count(DISTINCT (pg, replica))::int, count(*) FILTER (WHERE state = 'up')::int
        FROM aurora.segments$$,
    $$VALUES (6 * current_setting('aurora.protection_groups')::int,
              6 * current_setting('aurora.protection_groups')::int,
              6 * current_setting('aurora.protection_groups')::int)$$,
    'six segments per PG in aurora.segments, all up');
SELECT results_eq(
    $$SELECT az, count(*) FROM aurora.segments WHERE pg = 0 GROUP BY az ORDER BY az$$,
    $$VALUES ('a', 2::bigint), ('b', 2::bigint), ('c', 2::bigint)$$,
    'PG 0 has two segments in each AZ');
SELECT is(pg_get_function_arguments('aurora.shipping_stats()'::regprocedure),
    'OUT node_id text, OUT az text, OUT segments bigint, OUT batches bigint, OUT records bigint, OUT bytes bigint, OUT acks bigint, OUT errors bigint, OUT ack_latency_p50 double precision, OUT ack_latency_p99 double precision',
    'aurora.shipping_stats() returns the documented columns');
SELECT results_eq(
    $$SELECT count(*), sum(segments) FROM aurora.shipping_stats()$$,
    $$VALUES (6::bigint, 6 * current_setting('aurora.protection_groups')::numeric)$$,
    'aurora.shipping_stats(): one row per node, holding all segments between them');
SELECT has_function('aurora', 'storage_manager_stats', ARRAY[]::text[]);
SELECT is(pg_get_function_arguments('aurora.storage_manager_stats()'::regprocedure),
    'OUT enabled boolean, OUT pages_read bigint, OUT read_latency_avg double precision, OUT read_retries bigint, OUT size_requests bigint, OUT pages_evicted bigint, OUT evicted_to_storage bigint, OUT evicted_locally bigint, OUT eviction_vdl_waits bigint, OUT map_page_images bigint, OUT local_pages_read bigint, OUT local_pages bigint, OUT local_capacity bigint, OUT local_pages_released bigint, OUT cache_hits bigint, OUT cache_pages bigint, OUT cache_capacity bigint',
    'aurora.storage_manager_stats() returns the documented columns');
SELECT ok((SELECT enabled AND pages_read > 0 FROM aurora.storage_manager_stats()),
    'the storage manager is on, and pages were read from storage');
SELECT ok(NOT has_function_privilege('public', 'aurora.storage_manager_stats()', 'EXECUTE'),
    'aurora.storage_manager_stats() is not executable by PUBLIC');
SELECT ok(has_function_privilege('pg_monitor', 'aurora.storage_manager_stats()', 'EXECUTE'),
    'pg_monitor may execute aurora.storage_manager_stats()');
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
