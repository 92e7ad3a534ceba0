/*-------------------------------------------------------------------------
 *
 * record_meta.h
 *	  What a WAL record does to pages and relations, as storage needs to
 *	  know it: the record envelope (storage_service/common/walmeta.h) built
 *	  from PostgreSQL's decoded record.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AURORA_RECORD_META_H
#define AURORA_RECORD_META_H

#include "access/xlogreader.h"
#include "lib/stringinfo.h"

#include "walmeta.h"

typedef struct RecordMeta
{
	int			nblocks;
	aurora_walmeta_block blocks[AURORA_WALMETA_MAX_BLOCKS];
	int			nevents;
	int			capevents;
	aurora_walmeta_event *events;	/* palloc'd, reused between records */
} RecordMeta;

/* Describe the record r has just decoded (resets meta first). */
extern void aurora_record_meta(XLogReaderState *r, RecordMeta *meta);

/* Append meta's envelope to out; the caller appends the WAL record after it. */
extern void aurora_record_meta_append(const RecordMeta *meta, StringInfo out);

#endif							/* AURORA_RECORD_META_H */
