/* sql/aurora--0.1.sql: objects of the aurora extension, version 0.1 */

\echo Use "CREATE EXTENSION aurora" to load this file. \quit

-- Loading the library checks that it was preloaded (shared_preload_libraries):
-- CREATE EXTENSION fails here, with a hint, when it was not.
CREATE FUNCTION aurora.version()
RETURNS text
AS 'MODULE_PATHNAME', 'aurora_version'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION aurora.version() IS
'version of the aurora library loaded in this server';

CREATE FUNCTION aurora.storage_node_status(
    OUT node_id text,
    OUT az text,
    OUT url text,
    OUT reachable boolean,
    OUT state text,
    OUT rtt interval,
    OUT uptime interval,
    OUT requests bigint,
    OUT errors bigint,
    OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'aurora_storage_node_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION aurora.storage_node_status() IS
'asks every node of aurora.storage_nodes for its STATUS, all at once, over NNG';

CREATE VIEW aurora.storage_nodes AS
    SELECT * FROM aurora.storage_node_status();

COMMENT ON VIEW aurora.storage_nodes IS
'one row per configured storage node: reachability, node-reported state, round-trip time';

GRANT USAGE ON SCHEMA aurora TO PUBLIC;

-- Node addresses and health are infrastructure information: like
-- pg_stat_replication's details, they are for monitoring roles.
REVOKE ALL ON FUNCTION aurora.storage_node_status() FROM PUBLIC;
REVOKE ALL ON aurora.storage_nodes FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aurora.storage_node_status() TO pg_monitor;
GRANT SELECT ON aurora.storage_nodes TO pg_monitor;
