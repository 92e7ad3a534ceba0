/* sql/aurora--0.2--0.3.sql: aurora.shipping_stats() reports each node's acknowledgement latency */

\echo Use "ALTER EXTENSION aurora UPDATE TO '0.3'" to load this file. \quit

DROP FUNCTION aurora.shipping_stats();

CREATE FUNCTION aurora.shipping_stats(
    OUT node_id text,
    OUT az text,
    OUT segments bigint,
    OUT batches bigint,
    OUT records bigint,
    OUT bytes bigint,
    OUT acks bigint,
    OUT errors bigint,
    OUT ack_latency_p50 double precision,
    OUT ack_latency_p99 double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'aurora_shipping_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION aurora.shipping_stats() IS
'per storage node, since the shipper started: segments it holds, batches, records and bytes sent to it, acknowledgements and errors, and the p50/p99 in milliseconds of its recent acknowledgement latencies (no rows while not shipping)';

REVOKE ALL ON FUNCTION aurora.shipping_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aurora.shipping_stats() TO pg_monitor;
