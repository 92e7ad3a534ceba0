/* sql/aurora--0.5--0.6.sql: how the compute opened the volume (aurora.last_start()) */

\echo Use "ALTER EXTENSION aurora UPDATE TO '0.6'" to load this file. \quit

CREATE FUNCTION aurora.last_start(
    OUT volume_epoch bigint,
    OUT opened_vdl pg_lsn,
    OUT how text,
    OUT prepared_at timestamptz,
    OUT prepare_ms double precision,
    OUT start_state_lsn pg_lsn,
    OUT redo_lsn pg_lsn,
    OUT wal_records bigint,
    OUT wal_bytes bigint,
    OUT truncated_records bigint,
    OUT truncated_bytes bigint,
    OUT pgs_opened integer,
    OUT pgs integer,
    OUT truncation_history text,
    OUT fenced boolean,
    OUT fenced_reason text)
RETURNS record
AS 'MODULE_PATHNAME', 'aurora_last_start'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION aurora.last_start() IS
'how this compute opened the volume (aurora-compute-init start): its volume epoch, the VDL it opened at, from where (from-storage, replaced-datadir, local-files, new-volume), when and how long preparing took, the start state and WAL it started from, what the truncation above VDL discarded, how many protection groups a write quorum of which took it, the volume''s truncation history (epoch:lsn, ...), and whether a newer compute has fenced it since';

REVOKE ALL ON FUNCTION aurora.last_start() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aurora.last_start() TO pg_monitor;
