/*
 * pagemsg.h - bodies of the page service's messages (PROTOCOL.md 5.9):
 * GETPAGE_REQ/PAGE (a page as of an LSN), REL_SIZE_REQ/REL_SIZE (a relation
 * fork's size as one PG knows it) and SEED_PAGES/SEED_ACK (base images
 * bootstrapping a volume).
 *
 * Shared by the storage node (decoder of requests), aurora-ctl and the
 * compute (encoders, reply decoders).  No PostgreSQL headers: a block is a
 * plain aurora_block_ref, a page is AURORA_PAGE_BYTES opaque bytes.
 */
#ifndef AURORA_PAGEMSG_H
#define AURORA_PAGEMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume.h"				/* aurora_block_ref */
#include "wire.h"

/* PostgreSQL's BLCKSZ as built by this project. */
#define AURORA_PAGE_BYTES		8192
/* spc u32, db u32, rel u32, fork u8, blkno u32 */
#define AURORA_BLOCK_TAG_SIZE	17
/* Longest wait a request may ask for (a node caps wait_ms to this). */
#define AURORA_PAGE_WAIT_MAX_MS	60000u

/* ---- GETPAGE_REQ ---- */
typedef struct aurora_getpage_req
{
	aurora_block_ref block;
	uint64_t	lsn;			/* every record with end_lsn <= lsn applied */
	uint32_t	wait_ms;		/* how long the node may wait for SCL/index */
} aurora_getpage_req;

#define AURORA_GETPAGE_REQ_SIZE	(AURORA_BLOCK_TAG_SIZE + 12)

size_t		aurora_getpage_req_encode(const aurora_getpage_req *r, uint8_t *out, size_t cap);
int			aurora_getpage_req_decode(const uint8_t *body, size_t len, aurora_getpage_req *r);

/* ---- PAGE: reply to GETPAGE_REQ ---- */
typedef struct aurora_page_resp
{
	uint64_t	page_lsn;		/* pd_lsn of the page returned */
	uint16_t	checksum;		/* pd_checksum of the page returned */
	uint8_t		page[AURORA_PAGE_BYTES];
} aurora_page_resp;

#define AURORA_PAGE_RESP_SIZE	(10 + AURORA_PAGE_BYTES)

size_t		aurora_page_resp_encode(const aurora_page_resp *p, uint8_t *out, size_t cap);
int			aurora_page_resp_decode(const uint8_t *body, size_t len, aurora_page_resp *p);

/* ---- REL_SIZE_REQ ---- */
typedef struct aurora_rel_size_req
{
	uint32_t	spc_oid;
	uint32_t	db_oid;
	uint32_t	rel_number;
	uint8_t		fork;
	uint64_t	lsn;
	uint32_t	wait_ms;
} aurora_rel_size_req;

#define AURORA_REL_SIZE_REQ_SIZE	25

size_t		aurora_rel_size_req_encode(const aurora_rel_size_req *r, uint8_t *out, size_t cap);
int			aurora_rel_size_req_decode(const uint8_t *body, size_t len, aurora_rel_size_req *r);

/* ---- REL_SIZE: reply ---- */
typedef struct aurora_rel_size_resp
{
	bool		exists;			/* this PG knows the fork exists at the LSN */
	uint32_t	nblocks;		/* blocks as far as this PG's chunks show */
} aurora_rel_size_resp;

size_t		aurora_rel_size_resp_encode(const aurora_rel_size_resp *r, uint8_t *out, size_t cap);
int			aurora_rel_size_resp_decode(const uint8_t *body, size_t len, aurora_rel_size_resp *r);

/* ---- SEED_PAGES: base images at one LSN ---- */
typedef struct aurora_seed_page
{
	aurora_block_ref block;
	const uint8_t *page;		/* AURORA_PAGE_BYTES; points into the body */
} aurora_seed_page;

/* Bytes one page takes in a SEED_PAGES body. */
/*
 * A SEED_PAGES entry whose blkno is this only says that its fork exists (an
 * empty file of the data directory); its page bytes are ignored.  Every PG
 * takes it, as every PG takes relation events.
 */
#define AURORA_SEED_FORK_EXISTS	0xFFFFFFFFu

#define AURORA_SEED_PAGE_SIZE	(AURORA_BLOCK_TAG_SIZE + AURORA_PAGE_BYTES)

size_t		aurora_seed_pages_size(int n);
size_t		aurora_seed_pages_encode(uint64_t lsn, const aurora_seed_page *pages, int n,
									 uint8_t *out, size_t cap);
/*
 * Decode into *pages (malloc'd array, free() it; its page pointers point
 * into body).  Returns 0 or AURORA_ERR_MALFORMED (count does not match the
 * body, or is 0).
 */
int			aurora_seed_pages_decode(const uint8_t *body, size_t len, uint64_t *lsn,
									 aurora_seed_page **pages, int *n);

/* ---- SEED_ACK: reply ---- */
size_t		aurora_seed_ack_encode(uint32_t stored, uint8_t *out, size_t cap);
int			aurora_seed_ack_decode(const uint8_t *body, size_t len, uint32_t *stored);


#endif							/* AURORA_PAGEMSG_H */
