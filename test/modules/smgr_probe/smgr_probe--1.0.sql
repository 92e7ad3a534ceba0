/* smgr_probe--1.0.sql: SQL interface of the smgr hook test module */
\echo Use "CREATE EXTENSION smgr_probe" to load this file. \quit

CREATE FUNCTION smgr_probe_counts(
    OUT init_hook_called boolean,
    OUT opens bigint,
    OUT creates bigint,
    OUT extends bigint,
    OUT reads bigint,
    OUT writes bigint,
    OUT nblocks bigint)
AS 'MODULE_PATHNAME', 'smgr_probe_counts'
LANGUAGE C STRICT VOLATILE;
