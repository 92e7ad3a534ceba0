-- sql/aurora.sql: regression test of the aurora extension against a running
-- local cluster (six storage nodes, this compute).  Run by test/check.sh.

CREATE EXTENSION aurora;

SELECT extversion FROM pg_extension WHERE extname = 'aurora';
SELECT aurora.version() ~ '^[0-9]+\.[0-9]+\.[0-9]+$' AS version_looks_right;

-- settings and their defaults as the cluster configures them
SHOW aurora.write_quorum;
SHOW aurora.read_quorum;
SHOW aurora.request_timeout;
SELECT name, context, unit, min_val, max_val
  FROM pg_settings WHERE name LIKE 'aurora.%' ORDER BY name;

-- they are fixed at server start or in the configuration file
SET aurora.write_quorum = 5;
SET aurora.request_timeout = '2s';
-- and the aurora. prefix is reserved: a typo is an error, not a new setting
SET aurora.write_qourum = 5;

-- every node of the cluster answers STATUS with its own name
SELECT node_id, az, url ~ '^tcp://127\.0\.0\.1:[0-9]+$' AS url_ok, reachable, state,
       rtt > '0'::interval AND rtt < '1 second'::interval AS rtt_ok,
       uptime >= '0'::interval AS uptime_ok, requests >= 1 AS requests_ok,
       errors >= 0 AS errors_counted, error
  FROM aurora.storage_nodes ORDER BY node_id;

-- the node counts a STATUS request per call
CREATE TEMP TABLE first AS SELECT node_id, requests FROM aurora.storage_nodes;
SELECT count(*) AS nodes_counted_again
  FROM aurora.storage_nodes s JOIN first f USING (node_id)
 WHERE s.requests > f.requests;

-- only monitoring roles may read node addresses and health
CREATE ROLE aurora_regress_nobody;
CREATE ROLE aurora_regress_monitor IN ROLE pg_monitor;
SET ROLE aurora_regress_nobody;
SELECT aurora.version() IS NOT NULL AS anyone_may_ask_the_version;
SELECT count(*) FROM aurora.storage_nodes;
SELECT count(*) FROM aurora.storage_node_status();
RESET ROLE;
SET ROLE aurora_regress_monitor;
SELECT count(*) AS monitor_sees FROM aurora.storage_nodes;
RESET ROLE;
DROP ROLE aurora_regress_nobody;
DROP ROLE aurora_regress_monitor;

DROP EXTENSION aurora;
SELECT count(*) FROM pg_namespace WHERE nspname = 'aurora';

-- version 0.2 (the shipper's functions and views); an installation made at
-- 0.1 upgrades in place
CREATE EXTENSION aurora VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'aurora';
SELECT count(*) AS shipper_objects_at_0_1 FROM pg_proc
 WHERE pronamespace = 'aurora'::regnamespace AND proname <> 'version' AND proname <> 'storage_node_status';
ALTER EXTENSION aurora UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'aurora';
SELECT proname FROM pg_proc WHERE pronamespace = 'aurora'::regnamespace ORDER BY proname;
SELECT relname FROM pg_class WHERE relnamespace = 'aurora'::regnamespace ORDER BY relname;
DROP EXTENSION aurora;

-- 0.3: aurora.shipping_stats() gains each node's acknowledgement latency.
-- The library serves an installation still at 0.2 (this compute ships, so
-- there is a row per node) until it is updated.
CREATE EXTENSION aurora VERSION '0.2';
SELECT count(*) AS nodes_at_0_2 FROM aurora.shipping_stats();
ALTER EXTENSION aurora UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'aurora';
SELECT pg_get_function_arguments('aurora.shipping_stats()'::regprocedure);
SELECT count(*) AS nodes_at_0_3 FROM aurora.shipping_stats();
DROP EXTENSION aurora;

-- 0.4: aurora.storage_manager_stats(); an installation at 0.3 gets it by
-- ALTER EXTENSION UPDATE (this compute keeps its pages in storage)
CREATE EXTENSION aurora VERSION '0.3';
SELECT count(*) AS storage_manager_stats_at_0_3 FROM pg_proc
 WHERE pronamespace = 'aurora'::regnamespace AND proname = 'storage_manager_stats';
ALTER EXTENSION aurora UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'aurora';
SELECT enabled, local_capacity > 0 AS has_local_store FROM aurora.storage_manager_stats();
DROP EXTENSION aurora;

-- 0.5: aurora.recovery_stats() and aurora.lsn_allocation_limit(); an
-- installation at 0.4 gets them by ALTER EXTENSION UPDATE
CREATE EXTENSION aurora VERSION '0.4';
SELECT count(*) AS recovery_functions_at_0_4 FROM pg_proc
 WHERE pronamespace = 'aurora'::regnamespace AND proname IN ('recovery_stats', 'lsn_allocation_limit');
ALTER EXTENSION aurora UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'aurora';
-- this compute ships: the limit is set (32 MB by default) and nobody waited
SELECT limit_bytes, waits, wal_ahead_bytes >= 0 AS ahead_known FROM aurora.lsn_allocation_limit();
SELECT records_replayed >= 0 AND records_skipped >= 0 AS counted FROM aurora.recovery_stats();
DROP EXTENSION aurora;

-- 0.6: aurora.last_start(); this compute was prepared from the volume
-- (cluster.sh start runs aurora-compute-init start), under an epoch above 1
CREATE EXTENSION aurora VERSION '0.5';
SELECT count(*) AS last_start_at_0_5 FROM pg_proc
 WHERE pronamespace = 'aurora'::regnamespace AND proname = 'last_start';
ALTER EXTENSION aurora UPDATE;
SELECT volume_epoch > 1 AS new_epoch, how IN ('first-start', 'from-storage', 'replaced-datadir') AS from_volume,
       pgs_opened = pgs AS all_pgs_opened, truncation_history LIKE '%:%' AS has_history,
       fenced, fenced_reason IS NULL AS no_reason
  FROM aurora.last_start();
SELECT count(DISTINCT volume_epoch) AS one_epoch FROM aurora.protection_groups;
DROP EXTENSION aurora;
CREATE EXTENSION aurora;
SELECT extversion FROM pg_extension WHERE extname = 'aurora';
