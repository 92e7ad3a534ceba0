/*
 * wal_walk.c
 *	  Merge the PGs' logs and walk the WAL from R to VDL (wal_walk.h).
 *
 *	  Why VDL comes out of this walk: every record's end is a consistency
 *	  point (docs/architecture.md, "Watermarks"), and a PG's SCL says it
 *	  holds every one of its records ending at or below it.  So the WAL is
 *	  known durable up to a record's end when each record up to it chains to
 *	  its predecessor (xl_prev) and lies below the SCL of every PG it was
 *	  sent to: the compute's VDL is exactly that point, or below it if some
 *	  member has not acknowledged yet.  Anything held beyond is the ragged
 *	  edge the new writer will truncate.
 */
#include "postgres_fe.h"

#include "access/xlogrecord.h"
#include "port/pg_crc32c.h"

#include "walmeta.h"
#include "wal_layout.h"
#include "wal_walk.h"

int
wal_pg_log_add(WalPgLog *log, const aurora_log_record *r, char *err, size_t errlen)
{
	WalPgRecord *c;

	if (log->n > 0 && r->start_lsn <= log->recs[log->n - 1].start_lsn)
	{
		snprintf(err, errlen, "PG %u: record at %X/%X comes after one at %X/%X",
				 log->pg, LSN_FORMAT_ARGS(r->start_lsn),
				 LSN_FORMAT_ARGS(log->recs[log->n - 1].start_lsn));
		return -1;
	}
	if (log->n == log->cap)
	{
		int			cap = log->cap ? log->cap * 2 : 1024;
		WalPgRecord *recs = realloc(log->recs, sizeof(*recs) * cap);

		if (recs == NULL)
		{
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		log->recs = recs;
		log->cap = cap;
	}
	c = &log->recs[log->n];
	c->payload = malloc(r->len > 0 ? r->len : 1);
	if (c->payload == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(c->payload, r->payload, r->len);
	c->start_lsn = r->start_lsn;
	c->end_lsn = r->end_lsn;
	c->len = r->len;
	log->n++;
	return 0;
}

void
wal_pg_log_reset(WalPgLog *log)
{
	for (int i = 0; i < log->n; i++)
		free(log->recs[i].payload);
	free(log->recs);
	log->recs = NULL;
	log->n = log->cap = 0;
}

bool
wal_record_crc_ok(const uint8 *wal, uint32 len)
{
	XLogRecord	hdr;
	pg_crc32c	crc;

	if (len < SizeOfXLogRecord)
		return false;
	memcpy(&hdr, wal, SizeOfXLogRecord);
	/* as XLogInsertRecord computes it: the data first, then the header */
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, wal + SizeOfXLogRecord, len - SizeOfXLogRecord);
	COMP_CRC32C(crc, wal, offsetof(XLogRecord, xl_crc));
	FIN_CRC32C(crc);
	return EQ_CRC32C(crc, hdr.xl_crc);
}

/* One (PG, record) pair of the merge. */
typedef struct Held
{
	const WalPgRecord *rec;
	uint32		pg;
} Held;

static int
cmp_held(const void *a, const void *b)
{
	const Held *x = a,
			   *y = b;

	if (x->rec->start_lsn != y->rec->start_lsn)
		return x->rec->start_lsn < y->rec->start_lsn ? -1 : 1;
	return x->pg < y->pg ? -1 : (x->pg > y->pg);
}

/* Does PG log hold a record starting at lsn? */
static bool
log_holds(const WalPgLog *log, XLogRecPtr lsn)
{
	int			lo = 0,
				hi = log->n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (log->recs[mid].start_lsn < lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < log->n && log->recs[lo].start_lsn == lsn;
}

/*
 * Merge every PG's records at or above redo into w->records, one per start
 * LSN; copies held by several PGs must be identical.
 */
static int
merge_logs(const WalPgLog *logs, uint32 n_pgs, XLogRecPtr redo, WalWalk *w,
		   char *err, size_t errlen)
{
	size_t		total = 0;
	size_t		n = 0;
	Held	   *held;

	for (uint32 p = 0; p < n_pgs; p++)
		total += logs[p].n;
	held = malloc(sizeof(*held) * (total > 0 ? total : 1));
	w->records = malloc(sizeof(*w->records) * (total > 0 ? total : 1));
	if (held == NULL || w->records == NULL)
	{
		free(held);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (uint32 p = 0; p < n_pgs; p++)
		for (int i = 0; i < logs[p].n; i++)
			if (logs[p].recs[i].start_lsn >= redo)
			{
				held[n].rec = &logs[p].recs[i];
				held[n++].pg = p;
			}
	qsort(held, n, sizeof(*held), cmp_held);

	for (size_t i = 0; i < n; i++)
	{
		const WalPgRecord *r = held[i].rec;
		WalRecord  *m;
		aurora_walmeta meta;
		char		why[128];

		if (w->n_records > 0 &&
			w->records[w->n_records - 1].start_lsn == r->start_lsn)
		{
			const Held *first = &held[i - 1];

			while (first > held && first[-1].rec->start_lsn == r->start_lsn)
				first--;
			if (first->rec->end_lsn != r->end_lsn || first->rec->len != r->len ||
				memcmp(first->rec->payload, r->payload, r->len) != 0)
			{
				snprintf(err, errlen,
						 "the record at %X/%X differs between PG %u and PG %u",
						 LSN_FORMAT_ARGS(r->start_lsn), first->pg, held[i].pg);
				free(held);
				return -1;
			}
			continue;
		}
		if (aurora_walmeta_decode(r->payload, r->len, &meta, why, sizeof(why)) != 0)
		{
			snprintf(err, errlen, "PG %u: the record at %X/%X: %s", held[i].pg,
					 LSN_FORMAT_ARGS(r->start_lsn), why);
			free(held);
			return -1;
		}
		m = &w->records[w->n_records++];
		m->start_lsn = r->start_lsn;
		m->end_lsn = r->end_lsn;
		m->payload = r->payload;
		m->len = r->len;
		m->wal = meta.wal;
		m->wal_len = meta.wal_len;
		m->first_pg = held[i].pg;
	}
	free(held);
	return 0;
}

/*
 * Is record r (m: its envelope) durable in every PG it belongs to?  false
 * with stop_reason when its end lies above a PG's SCL; -1 with err when a PG
 * whose SCL covers it does not hold it.
 */
static int
durable_everywhere(const WalRecord *r, const aurora_walmeta *m, const WalPgLog *logs,
				   const aurora_geometry *g, WalWalk *w, char *err, size_t errlen)
{
	uint32		pgs[AURORA_WALMETA_MAX_BLOCKS];
	int			n = aurora_walmeta_pgs(m, g, pgs);
	bool		every = n == AURORA_WALMETA_EVERY_PG;

	if (every)
		n = (int) g->n_pgs;
	for (int i = 0; i < n; i++)
	{
		uint32		p = every ? (uint32) i : pgs[i];

		if (p >= g->n_pgs)
			continue;			/* routing cannot give this; be safe */
		if (r->end_lsn > logs[p].scl)
		{
			snprintf(w->stop_reason, sizeof(w->stop_reason),
					 "the record at %X/%X ends at %X/%X, above the SCL %X/%X of PG %u",
					 LSN_FORMAT_ARGS(r->start_lsn), LSN_FORMAT_ARGS(r->end_lsn),
					 LSN_FORMAT_ARGS(logs[p].scl), p);
			return 0;
		}
		if (!log_holds(&logs[p], r->start_lsn))
		{
			snprintf(err, errlen,
					 "the record at %X/%X belongs to PG %u, whose SCL %X/%X covers it, but PG %u does not hold it",
					 LSN_FORMAT_ARGS(r->start_lsn), p, LSN_FORMAT_ARGS(logs[p].scl), p);
			return -1;
		}
	}
	return 1;
}

int
wal_walk_run(const WalPgLog *logs, const aurora_geometry *g, XLogRecPtr redo,
			 uint32 seg_size, WalWalk *w, char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	w->vdl = redo;
	if (merge_logs(logs, g->n_pgs, redo, w, err, errlen) != 0)
		goto fail;
	if (w->n_records > 0 && w->records[0].start_lsn != redo)
	{
		snprintf(err, errlen, "no record starts at %X/%X (the first one held starts at %X/%X)",
				 LSN_FORMAT_ARGS(redo), LSN_FORMAT_ARGS(w->records[0].start_lsn));
		goto fail;
	}

	w->stop = WAL_WALK_END_OF_LOG;
	snprintf(w->stop_reason, sizeof(w->stop_reason), "no record is held after %X/%X",
			 LSN_FORMAT_ARGS(redo));
	for (int i = 0; i < w->n_records; i++)
	{
		const WalRecord *r = &w->records[i];
		XLogRecord	hdr;
		aurora_walmeta m;
		int			durable;
		XLogRecPtr	end;

		memcpy(&hdr, r->wal, SizeOfXLogRecord);
		if (i > 0)
		{
			const WalRecord *prev = &w->records[i - 1];

			if (hdr.xl_prev != prev->start_lsn)
			{
				w->stop = WAL_WALK_GAP;
				snprintf(w->stop_reason, sizeof(w->stop_reason),
						 "the record at %X/%X does not follow the one at %X/%X (its xl_prev is %X/%X): a record is missing",
						 LSN_FORMAT_ARGS(r->start_lsn), LSN_FORMAT_ARGS(prev->start_lsn),
						 LSN_FORMAT_ARGS(hdr.xl_prev));
				break;
			}
			if (r->start_lsn != wal_next_record_start(prev->end_lsn, seg_size))
			{
				snprintf(err, errlen,
						 "the record at %X/%X follows the one at %X/%X, which ends at %X/%X",
						 LSN_FORMAT_ARGS(r->start_lsn), LSN_FORMAT_ARGS(prev->start_lsn),
						 LSN_FORMAT_ARGS(prev->end_lsn));
				goto fail;
			}
		}
		/* the merge decoded it already: this cannot fail */
		(void) aurora_walmeta_decode(r->payload, r->len, &m, NULL, 0);
		durable = durable_everywhere(r, &m, logs, g, w, err, errlen);
		if (durable < 0)
			goto fail;
		if (durable == 0)
		{
			w->stop = WAL_WALK_ABOVE_SCL;
			break;
		}
		if (!wal_record_crc_ok(r->wal, r->wal_len))
		{
			w->stop = WAL_WALK_BAD_CRC;
			snprintf(w->stop_reason, sizeof(w->stop_reason),
					 "the record at %X/%X has a bad CRC (xl_crc %08X): storage holds a damaged record",
					 LSN_FORMAT_ARGS(r->start_lsn), hdr.xl_crc);
			break;
		}
		end = wal_record_end(r->start_lsn, r->wal_len, wal_record_is_switch(r->wal), seg_size);
		if (end != r->end_lsn)
		{
			snprintf(err, errlen,
					 "the record at %X/%X is %u bytes long and so ends at %X/%X, but storage says %X/%X",
					 LSN_FORMAT_ARGS(r->start_lsn), r->wal_len, LSN_FORMAT_ARGS(end),
					 LSN_FORMAT_ARGS(r->end_lsn));
			goto fail;
		}
		w->n_kept++;
		w->bytes_kept += r->wal_len;
		w->vdl = r->end_lsn;
		if (i + 1 == w->n_records)
			snprintf(w->stop_reason, sizeof(w->stop_reason), "no record is held after %X/%X",
					 LSN_FORMAT_ARGS(w->vdl));
	}
	w->n_beyond = w->n_records - w->n_kept;
	if (w->n_beyond > 0)
	{
		w->beyond_from = w->records[w->n_kept].start_lsn;
		w->beyond_to = w->records[w->n_records - 1].end_lsn;
	}
	return 0;

fail:
	wal_walk_free(w);
	return -1;
}

void
wal_walk_free(WalWalk *w)
{
	free(w->records);
	w->records = NULL;
	w->n_records = w->n_kept = 0;
}
