/*
 * start_state.h - a start state: the bundle of non-relation files a compute
 * needs to start from the volume (docs/architecture.md, "Epochs and
 * recovery"; format in PROTOCOL.md 13).
 *
 * Relation pages live in storage, but pg_control, the SLRUs (pg_xact,
 * pg_multixact, pg_commit_ts), relmap files, two-phase files, replication
 * slots, unlogged init forks and the configuration exist only on the
 * compute's disk.  After a checkpoint the compute bundles them with the LSN
 * at which they are consistent and stores the bundle in the volume
 * (node/start_state.h keeps it on the storage nodes, start_state_client.h
 * sends and fetches it); a new compute writes the newest one into an empty
 * data directory and recovers from its checkpoint's redo point.
 *
 * This module is the bundle only: its codec, which files of a PostgreSQL 15
 * data directory belong in it, building one from a data directory and
 * writing one back.  It does not parse pg_control: the caller says which
 * checkpoint the bundle's pg_control names.  No PostgreSQL headers.
 */
#ifndef AURORA_START_STATE_H
#define AURORA_START_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "ASST" read as a little-endian u32: an encoded bundle starts with "ASST". */
#define AURORA_START_STATE_MAGIC		0x54535341u
#define AURORA_START_STATE_VERSION		1
/* Limits a decoder enforces, so a hostile bundle cannot make it allocate more. */
#define AURORA_START_STATE_MAX_BYTES	(1024u * 1024u * 1024u)	/* whole bundle */
#define AURORA_START_STATE_MAX_FILES	100000u
#define AURORA_START_STATE_PATH_MAX		1024u
/* Fixed part: magic, version, three LSNs, n_files; the trailing CRC. */
#define AURORA_START_STATE_HEADER_SIZE	36
#define AURORA_START_STATE_TRAILER_SIZE	4

/* What a data directory file is to a start state (aurora_start_state_path_kind). */
typedef enum aurora_start_state_kind
{
	AURORA_SS_NOT_TAKEN = 0,	/* not part of a start state (relation files, pg_wal, ...) */
	AURORA_SS_CONTROL,			/* global/pg_control */
	AURORA_SS_VERSION,			/* PG_VERSION, base/<oid>/PG_VERSION */
	AURORA_SS_RELMAP,			/* global/pg_filenode.map, base/<oid>/pg_filenode.map */
	AURORA_SS_SLRU,				/* pg_xact, pg_multixact/{offsets,members}, pg_commit_ts */
	AURORA_SS_TWOPHASE,			/* pg_twophase/<xid> */
	AURORA_SS_SLOT,				/* pg_replslot/<name>/state, not aurora_shipper */
	AURORA_SS_REPLORIGIN,		/* pg_logical/replorigin_checkpoint */
	AURORA_SS_INIT_FORK,		/* base/<oid>/<relnode>_init[.N], global/<relnode>_init[.N] */
	AURORA_SS_CONFIG			/* postgresql.conf, postgresql.auto.conf, pg_hba.conf, pg_ident.conf */
} aurora_start_state_kind;

/* The compute's own slot (src/volume_session.c): never part of a start state. */
#define AURORA_START_STATE_SHIPPER_SLOT	"aurora_shipper"

/*
 * Files aurora-compute-init and the extension exchange in the data
 * directory, never part of a start state: how the volume was opened
 * (src/compute_init/start.c writes it, src/volume_start.c reads it), and a
 * VDL the shipper reached, below which the directory's own WAL is durable
 * (src/volume_start.c writes it, src/compute_init/local_wal.c reads it).
 */
#define AURORA_START_FILE		"aurora_start"
#define AURORA_DURABLE_FILE		"aurora_durable"

typedef struct aurora_start_state_file
{
	char	   *path;			/* relative to the data directory, '/'-separated; malloc'd */
	uint32_t	mode;			/* permission bits (st_mode & 0777) */
	uint64_t	size;
	uint8_t    *data;			/* size bytes, malloc'd (NULL when size is 0) */
} aurora_start_state_file;

typedef struct aurora_start_state
{
	uint64_t	consistent_lsn; /* every commit it reflects ends at or below it */
	uint64_t	checkpoint_lsn; /* the checkpoint its pg_control names */
	uint64_t	redo_lsn;		/* that checkpoint's redo point */
	uint32_t	n_files;
	aurora_start_state_file *files;	/* sorted by path, no duplicates */
} aurora_start_state;

/*
 * The kind of a relative path (AURORA_SS_NOT_TAKEN for anything a start
 * state never holds).  The builder takes exactly these files, the decoder
 * refuses a bundle with any other path, and a replacing restore removes
 * only these: one rule for all three.
 */
aurora_start_state_kind aurora_start_state_path_kind(const char *path);

/* Free what s holds (not s itself) and zero it. */
void		aurora_start_state_free(aurora_start_state *s);

/* Encoded size of s (0 if it exceeds AURORA_START_STATE_MAX_BYTES or a limit). */
size_t		aurora_start_state_encoded_size(const aurora_start_state *s);

/*
 * Encode s into a fresh malloc'd buffer (*out, *len).  Refuses (-1 with
 * err) a bundle over the limits or with a path that is not valid.
 */
int			aurora_start_state_encode(const aurora_start_state *s, uint8_t **out, size_t *len,
									  char *err, size_t errlen);

/*
 * Validate an encoded bundle completely without allocating: magic,
 * version, limits, every path (valid and of a taken kind, sorted, no
 * duplicates), every file's CRC and the whole bundle's CRC.  Returns 0 and
 * the LSNs (each pointer may be NULL), or -1 with err.  Storage nodes use
 * this before making a received bundle visible.
 */
int			aurora_start_state_check(const uint8_t *buf, size_t len, uint64_t *consistent_lsn,
									 uint64_t *checkpoint_lsn, uint64_t *redo_lsn,
									 char *err, size_t errlen);

/* aurora_start_state_check, then a copy into *out (free with aurora_start_state_free). */
int			aurora_start_state_decode(const uint8_t *buf, size_t len, aurora_start_state *out,
									  char *err, size_t errlen);

typedef struct aurora_start_state_build_opts
{
	uint64_t	consistent_lsn;
	uint64_t	checkpoint_lsn;
	uint64_t	redo_lsn;
	/*
	 * The bytes of pg_control to use instead of DATADIR/global/pg_control
	 * (the compute reads it through PostgreSQL, CRC checked); NULL: the file.
	 */
	const uint8_t *pg_control;
	size_t		pg_control_len;
} aurora_start_state_build_opts;

/*
 * Collect the start state files of a PostgreSQL 15 data directory (the
 * kinds above; only regular files, symbolic links followed) into *out.
 * global/pg_control and PG_VERSION must exist.  Returns 0, or -1 with err
 * (unreadable file, over the limits); *out is empty then.
 */
int			aurora_start_state_from_datadir(const char *datadir,
											const aurora_start_state_build_opts *opts,
											aurora_start_state *out, char *err, size_t errlen);

/* aurora_start_state_to_datadir flags */
#define AURORA_START_STATE_KEEP_CONFIG	0x1 /* keep the target's existing configuration files */
#define AURORA_START_STATE_REPLACE		0x2 /* replace the start state files of an existing data directory */

/*
 * Write s into datadir: create it (mode 0700) with the standard empty
 * directories of a PostgreSQL 15 data directory and base/<oid> for every
 * database s names, write every file with its mode, fsync files and
 * directories.  datadir must be absent or empty unless REPLACE is given;
 * then exactly the files whose kind is taken (aurora_start_state_path_kind)
 * are removed first (the configuration too, unless KEEP_CONFIG), nothing
 * else.  KEEP_CONFIG: a configuration file that exists in datadir is kept
 * instead of the bundle's.  Returns 0, or -1 with err.
 */
int			aurora_start_state_to_datadir(const aurora_start_state *s, const char *datadir,
										  unsigned flags, char *err, size_t errlen);

#endif
