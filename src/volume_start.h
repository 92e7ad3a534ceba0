/*
 * volume_start.h
 *	  The volume epoch this compute runs under (from DATADIR/aurora_start,
 *	  which aurora-compute-init start writes), and whether storage has
 *	  fenced it since (volume_start.c).
 */
#ifndef AURORA_VOLUME_START_H
#define AURORA_VOLUME_START_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "pgtime.h"

/* One truncation of the volume's history (as common/epochmsg.h's entry). */
typedef struct AuroraTruncEntry
{
	uint64		epoch;
	uint64		lsn;
} AuroraTruncEntry;

typedef struct AuroraVolumeStart
{
	bool		loaded;
	uint64		epoch;
	XLogRecPtr	opened_vdl;
	char		how[32];		/* from-storage, replaced-datadir, first-start,
								 * local-files, new-volume */
	XLogRecPtr	start_state_lsn;
	XLogRecPtr	redo_lsn;
	uint64		wal_records;
	uint64		wal_bytes;
	uint64		truncated_records;
	uint64		truncated_bytes;
	int			pgs_open;
	int			pgs;
	uint64		blocks_per_segment;
	uint64		init_ms;
	pg_time_t	created_at;
	pg_time_t	postmaster_started;
	int			n_history;
	AuroraTruncEntry *history;
	int			n_read_points;
	XLogRecPtr *read_points;	/* per PG: where reads stand until the shipper runs */
} AuroraVolumeStart;

extern void aurora_volume_start_init(void);
extern const AuroraVolumeStart *aurora_volume_start(void);
extern uint64 aurora_volume_epoch(void);
extern XLogRecPtr aurora_opened_vdl(void);
extern XLogRecPtr aurora_opened_read_point(int pg);

extern bool aurora_fenced(char *reason, size_t len, TimestampTz *at);
extern void aurora_note_fenced(const char *reason);
extern void aurora_save_durable_lsn(XLogRecPtr lsn);

#endif							/* AURORA_VOLUME_START_H */
