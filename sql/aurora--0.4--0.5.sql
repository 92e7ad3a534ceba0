/* sql/aurora--0.4--0.5.sql: how recovery went (aurora.recovery_stats()) and the LSN allocation limit (aurora.lsn_allocation_limit()) */

\echo Use "ALTER EXTENSION aurora UPDATE TO '0.5'" to load this file. \quit

CREATE FUNCTION aurora.recovery_stats(
    OUT records_replayed bigint,
    OUT records_skipped bigint,
    OUT bytes_skipped bigint,
    OUT pages_read bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'aurora_recovery_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION aurora.recovery_stats() IS
'the recovery of the server''s last start: WAL records PostgreSQL replayed, records skipped because they only change pages storage holds (and their bytes), and relation pages the startup process read from storage';

CREATE FUNCTION aurora.lsn_allocation_limit(
    OUT limit_bytes bigint,
    OUT wal_ahead_bytes bigint,
    OUT waits bigint,
    OUT wait_time_ms double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'aurora_lsn_allocation_limit'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION aurora.lsn_allocation_limit() IS
'the LSN allocation limit (aurora.lsn_allocation_limit in bytes, NULL when off or not shipping), how far the WAL inserted runs beyond VDL now, and since the server started how many times backends waited at the limit and for how long in all';

REVOKE ALL ON FUNCTION aurora.recovery_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aurora.recovery_stats() TO pg_monitor;
REVOKE ALL ON FUNCTION aurora.lsn_allocation_limit() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aurora.lsn_allocation_limit() TO pg_monitor;
