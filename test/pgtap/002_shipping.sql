-- test/pgtap/002_shipping.sql: the commit rule and the watermarks across a
-- workload on a compute that ships its WAL (cluster.sh's default).  Runs
-- outside a transaction block: it needs real commits.  The workload commits
-- 200 transactions (one of them writes about 20 MB) and samples
-- aurora.watermarks() right after each COMMIT returned; pg_walinspect then
-- gives the exact end of every commit record, which VDL must have reached.
SELECT plan(9);

SELECT pg_current_wal_insert_lsn() AS start_lsn \gset

CREATE TABLE pgtap_shipping (id int PRIMARY KEY, xid bigint DEFAULT txid_current(), v text);
CREATE TABLE pgtap_shipping_bulk (id int, v text);
CREATE TEMP TABLE stats_before AS SELECT node_id, records FROM aurora.shipping_stats();
CREATE TEMP TABLE samples (n int, flush_lsn pg_lsn, vcl pg_lsn, vdl pg_lsn);

DO $$
BEGIN
    FOR i IN 1..200 LOOP
        INSERT INTO pgtap_shipping (id, v) VALUES (i, repeat('x', i * 10));
        IF i % 10 = 0 THEN
            UPDATE pgtap_shipping SET v = v || 'u' WHERE id > i - 10;
        END IF;
        IF i = 100 THEN
            INSERT INTO pgtap_shipping_bulk SELECT g, repeat('y', 1000) FROM generate_series(1, 20000) g;
        END IF;
        COMMIT;
        INSERT INTO samples SELECT i, w.flush_lsn, w.vcl, w.vdl FROM aurora.watermarks() w;
        COMMIT;
    END LOOP;
END
$$;

SELECT is((SELECT count(*) FROM samples WHERE vcl IS NOT NULL AND vdl IS NOT NULL), 200::bigint,
          'the watermarks were sampled after each of the 200 commits');
SELECT is((SELECT count(*) FROM (
               SELECT vcl < lag(vcl) OVER w OR vdl < lag(vdl) OVER w AS went_back
                 FROM samples WINDOW w AS (ORDER BY n)) s
            WHERE went_back), 0::bigint,
          'VCL and VDL never went backwards across the workload');
SELECT is((SELECT count(*) FROM samples WHERE vdl > vcl OR vdl > flush_lsn), 0::bigint,
          'VDL never passed VCL or the local flush LSN');

-- the commit record of each transaction, from the WAL itself
CREATE TEMP TABLE commits AS
SELECT t.id, r.end_lsn
  FROM pgtap_shipping t
  JOIN pg_get_wal_records_info_till_end_of_wal(:'start_lsn') r
    ON r.resource_manager = 'Transaction' AND r.record_type = 'COMMIT'
   AND r.xid::text::bigint = t.xid;
SELECT is((SELECT count(*) FROM commits), 200::bigint,
          'pg_walinspect finds the commit record of each of the 200 transactions');
SELECT is((SELECT count(*) FROM commits c JOIN samples s ON s.n = c.id WHERE s.vdl < c.end_lsn),
          0::bigint,
          'right after each COMMIT returned, VDL was at or past the end of its commit record');
SELECT ok((SELECT s.vdl - c.end_lsn >= 0 FROM commits c JOIN samples s ON s.n = c.id WHERE c.id = 100),
          'also for the transaction that wrote 20 MB');
SELECT cmp_ok((SELECT min(a.records - b.records) FROM aurora.shipping_stats() a JOIN stats_before b USING (node_id)),
              '>=', 400::bigint,
              'every node received at least the 400 commit records (PG 0 spans all six nodes)');
SELECT ok((SELECT bool_and(ack_latency_p50 > 0 AND ack_latency_p99 >= ack_latency_p50)
             FROM aurora.protection_groups WHERE pg = 0),
          'PG 0 reports its quorum acknowledgement latency');
SELECT is((SELECT count(*) FROM aurora.shipping_stats()
            WHERE ack_latency_p50 > 0 AND ack_latency_p99 >= ack_latency_p50
              AND ack_latency_p99 < 60000),
          6::bigint,
          'aurora.shipping_stats() reports every node''s acknowledgement latency p50 <= p99');

DROP TABLE pgtap_shipping, pgtap_shipping_bulk;
SELECT * FROM finish();
