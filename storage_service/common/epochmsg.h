/*
 * epochmsg.h - bodies of the volume epoch messages: FENCE_REQ/FENCE_ACK and
 * TRUNCATE_REQ/TRUNCATE_ACK (PROTOCOL.md 5.10), and the truncation history
 * they, SEGMENT_INFO and a segment's meta file carry: the list of
 * (epoch, lsn) cuts a volume went through, ascending epoch, non-decreasing
 * lsn (docs/architecture.md, "Epochs and recovery").
 *
 * Built on the bounded reader/writer of wire.h and shared by the storage
 * node, aurora-ctl and the compute.  Like the record lists of logmsg.h, a
 * decoded history is not copied: an aurora_trunc_list points into the
 * message (raw little-endian pairs), which must outlive it;
 * aurora_trunc_list_at reads one entry.  The rules on a history
 * (aurora_trunc_history_check, the cut LSN, the prefix test gossip uses)
 * live here so the node, the tool and the compute apply one definition.
 */
#ifndef AURORA_EPOCHMSG_H
#define AURORA_EPOCHMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* A segment keeps at most this many truncations. */
#define AURORA_TRUNC_HISTORY_MAX	4096
#define AURORA_TRUNC_ENTRY_SIZE		16
/* Encoded size of a whole history field (u16 count + entries). */
#define AURORA_TRUNC_LIST_MAX_BYTES	(2 + AURORA_TRUNC_HISTORY_MAX * AURORA_TRUNC_ENTRY_SIZE)

/* One truncation: the volume opened at epoch, its log discarded from lsn on. */
typedef struct aurora_trunc_entry
{
	uint64_t	epoch;
	uint64_t	lsn;
} aurora_trunc_entry;

/*
 * A history as it lies in a body: n entries of 16 bytes (u64 epoch, u64 lsn)
 * at raw.  Encoders read raw too (fill it with aurora_trunc_list_fill).
 */
typedef struct aurora_trunc_list
{
	uint16_t	n;
	const uint8_t *raw;
} aurora_trunc_list;

/* Encode n entries into raw (n * 16 bytes) and point l at it. */
void		aurora_trunc_list_fill(aurora_trunc_list *l, const aurora_trunc_entry *e, int n,
								   uint8_t *raw);
aurora_trunc_entry aurora_trunc_list_at(const aurora_trunc_list *l, int i);
/* Copy every entry into out (room for l->n). */
void		aurora_trunc_list_copy(const aurora_trunc_list *l, aurora_trunc_entry *out);
/* u16 n, then the entries; a reader fails on n > AURORA_TRUNC_HISTORY_MAX. */
void		aurora_trunc_list_put(aurora_buf *b, const aurora_trunc_list *l);
void		aurora_trunc_list_get(aurora_buf *b, aurora_trunc_list *l);

/*
 * Whether e[0..n) is a valid history: at most AURORA_TRUNC_HISTORY_MAX
 * entries, epochs strictly ascending, lsns non-decreasing.  false with a
 * reason in why (may be NULL).
 */
bool		aurora_trunc_history_check(const aurora_trunc_entry *e, int n, char *why,
									   size_t whylen);

/*
 * Where a segment truncated at truncated_epoch must cut to follow history
 * h: the lsn of the first entry whose epoch is above truncated_epoch (the
 * earliest cut it missed).  false if there is none (nothing to cut).
 */
bool		aurora_trunc_cut_lsn(const aurora_trunc_entry *h, int n, uint64_t truncated_epoch,
								 uint64_t *lsn);

/* Whether a[0..na) is a prefix of b[0..nb) (gossip: is a peer's history ours, extended?). */
bool		aurora_trunc_history_is_prefix(const aurora_trunc_entry *a, int na,
										   const aurora_trunc_entry *b, int nb);

/* ---- FENCE_REQ (empty body; the epoch is the header's) and FENCE_ACK ---- */
typedef struct aurora_fence_ack
{
	uint64_t	scl;
	uint64_t	highest_lsn;
	uint64_t	truncated_epoch;
	aurora_trunc_list history;
} aurora_fence_ack;

size_t		aurora_fence_ack_encode(const aurora_fence_ack *a, uint8_t *out, size_t out_cap);
int			aurora_fence_ack_decode(const uint8_t *body, size_t len, aurora_fence_ack *a);

/*
 * ---- TRUNCATE_REQ: the full history, its last entry (E, V) with E the
 * header's epoch.  The decoder checks the list (n >= 1, aurora_trunc_history_check);
 * the header epoch is the receiver's to compare. ----
 */
size_t		aurora_truncate_req_encode(const aurora_trunc_list *h, uint8_t *out, size_t out_cap);
int			aurora_truncate_req_decode(const uint8_t *body, size_t len, aurora_trunc_list *h);

typedef struct aurora_truncate_ack
{
	uint64_t	scl;
	uint64_t	highest_lsn;
	uint64_t	records_dropped;	/* by this request (0 when it was a repeat) */
	uint64_t	bytes_dropped;
} aurora_truncate_ack;

size_t		aurora_truncate_ack_encode(const aurora_truncate_ack *a, uint8_t *out, size_t out_cap);
int			aurora_truncate_ack_decode(const uint8_t *body, size_t len, aurora_truncate_ack *a);

#endif							/* AURORA_EPOCHMSG_H */
