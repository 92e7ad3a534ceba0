/*
 * gossip.h - background gap filling between the six segments of a PG
 * (docs/architecture.md, "The storage node"; PROTOCOL.md 5.7).
 *
 * The writer sends every batch to all six segments but needs only four
 * acknowledgements, so a segment that was down, restarting or simply lost a
 * message falls behind.  The gossip thread brings it back without the
 * writer's help: every interval (longer, up to eight intervals, while every
 * segment stays in step) it asks each peer segment of every PG this
 * node hosts for its SCL (SEGMENT_INFO_REQ), and when its own SCL has stayed
 * below what a peer held one round earlier it fetches the missing range with
 * READ_LOG from that peer and appends it like any other batch (checked,
 * CRC'd, fdatasync'd).  Waiting one round before fetching keeps gossip out of
 * the way of records the writer is delivering right now.
 *
 * Only peers in exactly the same epochs are used: records from a segment in
 * another epoch may belong to a writer that has since been fenced, and
 * changing epochs is the writer's business (the recovery path), not gossip's.
 */
#ifndef AURORA_NODE_GOSSIP_H
#define AURORA_NODE_GOSSIP_H

#include <stddef.h>
#include <stdint.h>

struct aurora_segment_table;

typedef struct aurora_gossip aurora_gossip;

typedef struct aurora_gossip_config
{
	const char *self_node_id;	/* this node: never its own peer */
	uint32_t	interval_ms;	/* between rounds; 0: no thread, rounds on demand */
	uint32_t	peer_timeout_ms;	/* per request to a peer */
	uint32_t	max_body;		/* our message limit: fetch size, payload limit */
	/* the page service a truncation learnt from a peer cuts too; NULL: none */
	struct aurora_pageservice *pages;
	/* the start states it drops above the cut; NULL: none */
	struct aurora_start_states *states;
} aurora_gossip_config;

/*
 * Set up gossip over store (which must outlive it) and, unless interval_ms
 * is 0, start its thread.  Returns 0, or -1 with err set if the thread
 * cannot be created.
 */
int			aurora_gossip_start(struct aurora_segment_table *store, const aurora_gossip_config *cfg,
								aurora_gossip **out, char *err, size_t errlen);

/* Stop the thread (waits for the request in progress) and free. */
void		aurora_gossip_stop(aurora_gossip *g);

/*
 * Run one round over every segment now: the thread's body, and how tests
 * drive gossip step by step (with interval_ms 0).  Not concurrently with
 * the thread or another round.
 */
void		aurora_gossip_round(aurora_gossip *g);

#endif
