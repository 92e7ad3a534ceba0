/*
 * wal_routing.h
 *	  Routing WAL records to protection groups and batching them, one quorum
 *	  writer per PG (wal_routing.c).
 */
#ifndef AURORA_WAL_ROUTING_H
#define AURORA_WAL_ROUTING_H

#include <signal.h>

#include "access/xlogreader.h"
#include "lib/stringinfo.h"

#include "pgwriter.h"
#include "volume.h"

/*
 * Batches of one PG that may await their write quorum at once (see
 * wal_routing.c).
 */
#define SHIP_WINDOW		8

/* One PG as the shipper writes it. */
typedef struct ShipPG
{
	aurora_pgwriter *writer;
	XLogRecPtr	last_start;		/* backlink of the next record */
	aurora_log_record *recs;	/* batch being filled */
	int			nrecs;
	int			caprecs;
	StringInfoData payloads;	/* the batch's record bytes, back to back */
	XLogRecPtr	window[SHIP_WINDOW];	/* end LSNs of the last batches sent */
	aurora_member members[AURORA_PG_COPIES];
} ShipPG;

/* The PGs the shipper writes (volume_session.c opens them). */
extern ShipPG *aurora_ship_pgs;
extern int	aurora_ship_n_pgs;

/* Set (from a signal handler too) when every acknowledgement must wake the main loop. */
extern volatile sig_atomic_t aurora_routing_wake_on_every_ack;

/* Copies a record's bytes [start, start + len) of WAL into out. */
typedef void (*aurora_wal_copier) (XLogRecPtr start, uint32 len, StringInfo out);

extern void aurora_routing_set_wake_fd(int fd);
extern void aurora_routing_pgcl_advanced(void *arg, uint64_t pgcl);
extern void aurora_route_record(XLogReaderState *r, const aurora_geometry *g,
								aurora_wal_copier copy_bytes);
extern void aurora_flush_batches(void);
extern void aurora_probe_all_pgs(bool heartbeat);

#endif							/* AURORA_WAL_ROUTING_H */
