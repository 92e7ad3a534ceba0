/* sql/aurora--0.3--0.4.sql: aurora.storage_manager_stats() reports what the aurora storage manager did */

\echo Use "ALTER EXTENSION aurora UPDATE TO '0.4'" to load this file. \quit

CREATE FUNCTION aurora.storage_manager_stats(
    OUT enabled boolean,
    OUT pages_read bigint,
    OUT read_latency_avg double precision,
    OUT read_retries bigint,
    OUT size_requests bigint,
    OUT pages_evicted bigint,
    OUT evicted_to_storage bigint,
    OUT evicted_locally bigint,
    OUT eviction_vdl_waits bigint,
    OUT map_page_images bigint,
    OUT local_pages_read bigint,
    OUT local_pages bigint,
    OUT local_capacity bigint,
    OUT local_pages_released bigint,
    OUT cache_hits bigint,
    OUT cache_pages bigint,
    OUT cache_capacity bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'aurora_storage_manager_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION aurora.storage_manager_stats() IS
'since the server started: pages read from storage (count, average latency in ms, segments retried), fork sizes asked from storage, dirty pages PostgreSQL evicted and where they went (dropped because storage rebuilds them, or kept in the local page store), evictions that waited for VDL, free-space/visibility-map pages logged as images, the local page store (pages read from it, pages held now, capacity, pages released once storage held them) and the local page cache (hits, pages held, capacity)';

REVOKE ALL ON FUNCTION aurora.storage_manager_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aurora.storage_manager_stats() TO pg_monitor;
