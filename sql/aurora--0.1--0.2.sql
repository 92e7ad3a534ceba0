/* sql/aurora--0.1--0.2.sql: aurora 0.2 adds the WAL shipper's SQL surface */

\echo Use "ALTER EXTENSION aurora UPDATE TO '0.2'" to load this file. \quit

CREATE FUNCTION aurora.watermarks(
    OUT insert_lsn pg_lsn,
    OUT flush_lsn pg_lsn,
    OUT vcl pg_lsn,
    OUT vdl pg_lsn,
    OUT vdl_lag_bytes bigint,
    OUT vdl_age interval)
RETURNS record
AS 'MODULE_PATHNAME', 'aurora_watermarks'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION aurora.watermarks() IS
'WAL insert and local flush LSN, the volume complete and durable LSNs (VCL, VDL; NULL while the shipper is not streaming), bytes VDL is behind the local flush, time since VDL last advanced';

CREATE FUNCTION aurora.protection_group_status(
    OUT pg integer,
    OUT pgcl pg_lsn,
    OUT segments_up integer,
    OUT write_quorum_available boolean,
    OUT read_quorum_available boolean,
    OUT volume_epoch bigint,
    OUT membership_epoch bigint,
    OUT ack_latency_p50 double precision,
    OUT ack_latency_p99 double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'aurora_protection_group_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW aurora.protection_groups AS
    SELECT * FROM aurora.protection_group_status();

COMMENT ON VIEW aurora.protection_groups IS
'one row per protection group the shipper writes: PGCL, reachable segments, whether write and read quorums are available, epochs, quorum acknowledgement latency (ms)';

CREATE FUNCTION aurora.segment_status(
    OUT pg integer,
    OUT replica integer,
    OUT node_id text,
    OUT az text,
    OUT scl pg_lsn,
    OUT lag_bytes bigint,
    OUT state text,
    OUT last_ack_age interval,
    OUT acks bigint,
    OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'aurora_segment_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW aurora.segments AS
    SELECT * FROM aurora.segment_status();

COMMENT ON VIEW aurora.segments IS
'one row per segment (six per protection group) as the shipper sees it: node, AZ, SCL, bytes behind what was sent, state (up, catching up, down, fenced), age of the last acknowledgement';

CREATE FUNCTION aurora.shipping_stats(
    OUT node_id text,
    OUT az text,
    OUT segments bigint,
    OUT batches bigint,
    OUT records bigint,
    OUT bytes bigint,
    OUT acks bigint,
    OUT errors bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'aurora_shipping_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION aurora.shipping_stats() IS
'per storage node, since the shipper started: segments it holds, batches, records and bytes sent to it, acknowledgements and errors (no rows while not shipping)';

-- Durability and storage health are monitoring information.
REVOKE ALL ON FUNCTION aurora.watermarks() FROM PUBLIC;
REVOKE ALL ON FUNCTION aurora.protection_group_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION aurora.segment_status() FROM PUBLIC;
REVOKE ALL ON aurora.protection_groups FROM PUBLIC;
REVOKE ALL ON FUNCTION aurora.shipping_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aurora.shipping_stats() TO pg_monitor;
REVOKE ALL ON aurora.segments FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aurora.protection_group_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION aurora.segment_status() TO pg_monitor;
GRANT SELECT ON aurora.protection_groups TO pg_monitor;
GRANT SELECT ON aurora.segments TO pg_monitor;
GRANT EXECUTE ON FUNCTION aurora.watermarks() TO pg_monitor;
