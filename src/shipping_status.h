/*
 * shipping_status.h
 *	  What the shipper's quorum writers see of every PG, segment and storage
 *	  node, published in shared memory for the views and the reader
 *	  (shipping_status.c).
 */
#ifndef AURORA_SHIPPING_STATUS_H
#define AURORA_SHIPPING_STATUS_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"

#include "quorum.h"

/* Acknowledgement latency of one storage node (aurora.shipping_stats()). */
typedef struct NodeAckLatency
{
	char		node_id[64];
	uint64		ack_samples;	/* samples behind the percentiles; 0 = none yet */
	double		ack_p50_ms;
	double		ack_p99_ms;
} NodeAckLatency;

/* One segment as the shipper's quorum writer sees it (for aurora.segments). */
typedef struct SegmentStatus
{
	char		node_id[64];
	char		az[32];
	XLogRecPtr	scl;
	uint64		acks;
	uint64		errors;
	uint64		batches;
	uint64		records;
	uint64		bytes;
	double		last_ack_ms;	/* CLOCK_MONOTONIC ms; 0 = never */
	uint32		last_error_code;
	char		last_error[160];
	bool		fenced;
	TimestampTz behind_since;	/* SCL < PGCL since then; 0 = not behind */
} SegmentStatus;

typedef struct PGStatus
{
	XLogRecPtr	pgcl;
	XLogRecPtr	sent_end;
	uint64		batches;
	uint64		bytes;
	double		p50_ms;
	double		p99_ms;
	uint64		latency_samples;	/* behind p50/p99; 0 = none in the window */
	SegmentStatus seg[AURORA_PG_COPIES];
} PGStatus;

extern void aurora_shipping_status_init(void);

/* the shipper */
extern bool aurora_publish_shipping_status(bool heartbeat);

/* any backend */
extern PGStatus *aurora_shipping_status_snapshot(int *n);
extern bool aurora_node_ack_latency(int k, NodeAckLatency *lat);
extern bool aurora_segment_reachable(const SegmentStatus *sg);
extern bool aurora_shipping_segments(int pg, XLogRecPtr *scl, bool *reachable,
									 double *latency_ms);

#endif							/* AURORA_SHIPPING_STATUS_H */
