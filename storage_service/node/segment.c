/*
 * segment.c - one segment's durable log and its in-memory index (segment.h).
 *
 * The foreground write path of a storage node (DESIGN.md 6, 8) ends here:
 * a batch is validated, appended with one write, made durable by a shared
 * fdatasync, and the SCL that the node acknowledges is computed from what is
 * durable.  Everything needed to serve that path is kept in memory (a sorted
 * array of record locations); payloads stay on disk and are read back with
 * pread and re-checked against their CRC.
 *
 * ON-DISK FORMAT (version 1).  All integers little-endian, encoded field by
 * field (never a C struct).
 *
 *   <segment dir>/log
 *     File header, 16 bytes:
 *       0  12  "AURORALOG" padded with NUL bytes to 12 bytes
 *      12   4  u32 format version = 1
 *     Then records back to back, in the order they were appended (which is
 *     not necessarily LSN order: records may arrive out of order):
 *       0   4  u32 magic 0x474F4C41 (the bytes "ALOG")
 *       4   4  u32 crc32c of bytes 8..36+len (start, end, prev, len, payload)
 *       8   8  u64 start_lsn
 *      16   8  u64 end_lsn      (start_lsn < end_lsn)
 *      24   8  u64 prev_lsn     (backlink: start of the PG's previous record;
 *                                prev_lsn < start_lsn)
 *      32   4  u32 len
 *      36 len  payload
 *     A file whose header is missing or wrong is never "repaired": opening
 *     fails, because resetting it would silently discard acknowledged data.
 *     An empty file (size 0) is a log without records and gets its header.
 *
 *     After the records the file may hold zeros: space written ahead of
 *     time (aurora_segment_preallocate) so that appends do not grow it.
 *
 *     Recovery on open scans from the header and stops at the first record
 *     that is short (torn write), has a bad magic, a bad CRC, invalid fields
 *     or overlaps an earlier record.  If every byte from there to the end
 *     of the file is zero, that is the preallocated space and the log is
 *     clean.  Otherwise the file is cut (ftruncate) at the end
 *     of the last good record, so records after a corrupt one are dropped
 *     too: the log's only structure is "one record after another", so
 *     nothing after damage can be trusted to start on a record boundary;
 *     gossip with the PG's peers refills what was cut.  One fdatasync then
 *     makes the cut and every surviving record durable, and SCL is computed
 *     from the survivors only, so it never exceeds what is on disk.
 *
 *   <segment dir>/meta   (text, rewritten atomically: meta.tmp, fsync,
 *                         rename, fsync of the directory)
 *       aurora-segment-meta 1
 *       volume_id <16 lowercase hex digits>
 *       pg_id <decimal>
 *       replica_index <0..5>
 *       volume_epoch <decimal>
 *       membership_epoch <decimal>
 *       base_lsn <decimal>
 *       geometry <n_pgs> <blocks_per_segment>    (decimal; 0 0 = none)
 *       member <i> <node_id> <az> <url>          (six lines, i = 0..5; the
 *                                                 url is the rest of the line)
 *       crc32c <8 lowercase hex digits>           (of all bytes before this line)
 *     Any deviation is a corrupt meta: the segment does not open and nothing
 *     is modified.
 *
 * DURABILITY.  Records are appended at increasing file offsets, so "durable"
 * is simply "ends at or before durable_off", the write offset captured by the
 * last completed fdatasync.  Durable bytes are never rewritten while the
 * segment is open, which is what lets reads pread them without the mutex.
 *
 * SCL.  The index is sorted by start_lsn.  The chain is recs[0..chain_len):
 * recs[0].prev_lsn == base_lsn and each following record's prev_lsn is its
 * predecessor's start_lsn, all durable.  Because append rejects records that
 * contradict their neighbours' backlinks, the chain's successor can only be
 * the next record in start order, so SCL advances incrementally by looking
 * at recs[chain_len] alone.
 */
#define _DEFAULT_SOURCE

#include "segment.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "byteorder.h"
#include "log.h"

#define META_FILE		"meta"
#define META_TMP_FILE	"meta.tmp"
#define LOG_FILE		"log"
#define META_HEADER		"aurora-segment-meta 1\n"
#define META_MAX_BYTES	8192
/* Recovery reads the log through a buffer of this size. */
#define SCAN_BUFFER		(1024 * 1024)
/* the most aurora_segment_read reads with one pread (a longer record alone) */
#define READ_SPAN_MAX	(1024 * 1024)

/* Where one record is: enough to check duplicates and to read it back. */
typedef struct seg_entry
{
	uint64_t	start;
	uint64_t	end;
	uint64_t	prev;
	uint64_t	off;			/* file offset of the record header */
	uint32_t	len;
	uint32_t	crc;			/* the record's stored crc32c */
} seg_entry;

/* An appended batch not yet covered by a sync (kept to update the stats). */
typedef struct seg_batch
{
	uint64_t	end_off;
	uint64_t	nrecs;
	uint64_t	max_end;
} seg_batch;

struct aurora_segment
{
	pthread_mutex_t mu;			/* everything below except dir and fd */
	pthread_cond_t sync_done;	/* broadcast whenever a sync finishes */
	pthread_mutex_t meta_mu;	/* serializes meta rewrites (held across fsync) */
	char	   *dir;
	int			fd;
	aurora_segment_meta meta;

	seg_entry  *recs;			/* sorted by start, non-overlapping */
	size_t		nrecs;
	size_t		cap;
	size_t		chain_len;
	uint64_t	scl;
	/*
	 * Records whose backlink is not the start of the record before them in
	 * start order (base_lsn for the first).  Chain records never are, so
	 * this is exactly the number of holes; kept up to date on insertion so
	 * the stats of every acknowledgement cost O(1).
	 */
	uint64_t	mismatches;

	uint64_t	write_off;		/* end of the last appended record */
	uint64_t	durable_off;	/* write_off at the last completed fdatasync */
	uint64_t	alloc_end;		/* file size: zeros from write_off up to here */
	bool		extending;		/* zeros being written from extend_from */
	uint64_t	extend_from;
	pthread_cond_t extend_done;
	seg_batch  *batches;		/* pending batches [bhead, nbatches) */
	size_t		bhead;
	size_t		nbatches;
	size_t		bcap;
	uint64_t	durable_records;
	uint64_t	highest_durable;

	bool		syncing;		/* a thread is in fdatasync */
	bool		failed;			/* sticky I/O failure, see aurora_segment_sync */
	char		failed_msg[256];

	uint64_t	recovered_truncated;
	char		recovery_note[200];

	/* what gossip (node/gossip.c) last learned and did, for STATUS */
	uint64_t	peer_scl;
	uint64_t	records_from_peers;
};

/* ---- small helpers ---- */

/*
 * Log space is zero-filled ahead of the records (aurora_segment_preallocate):
 * an fdatasync after appending inside the file's size writes only data,
 * while one that grows the file must also write its metadata, which on this
 * project's reference disk doubled the median sync time and tripled p99.
 * PostgreSQL zero-fills WAL segments for the same reason.  Recovery treats
 * an all-zero tail as free space, not as a torn record.
 */
#define LOG_PREALLOC_CHUNK	(1u << 20)

/* *zero: every byte of [from, to) is 0.  Returns 0, or -1 (errno) on a read error. */
static int
tail_is_zero(int fd, uint64_t from, uint64_t to, bool *zero)
{
	uint8_t		buf[65536];

	*zero = true;
	while (from < to)
	{
		size_t		n = to - from < sizeof(buf) ? (size_t) (to - from) : sizeof(buf);
		ssize_t		r = pread(fd, buf, n, (off_t) from);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? 0 : -1;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != 0)
			{
				*zero = false;
				return 0;
			}
		from += (uint64_t) r;
	}
	return 0;
}


static uint64_t
entry_end_off(const seg_entry *e)
{
	return e->off + AURORA_SEG_RECORD_HEADER_SIZE + e->len;
}

/* Bytes 8..36 of a record header: the part the CRC covers before the payload. */
static void
encode_fields(uint8_t *p, uint64_t start, uint64_t end, uint64_t prev, uint32_t len)
{
	aurora_put_le64(p, start);
	aurora_put_le64(p + 8, end);
	aurora_put_le64(p + 16, prev);
	aurora_put_le32(p + 24, len);
}

static uint32_t
record_crc(const aurora_log_record *r)
{
	uint8_t		f[28];
	uint32_t	crc;

	encode_fields(f, r->start_lsn, r->end_lsn, r->prev_lsn, r->len);
	crc = aurora_crc32c(0, f, sizeof(f));
	if (r->len > 0)
		crc = aurora_crc32c(crc, r->payload, r->len);
	return crc;
}

/* First index whose start >= lsn. */
static size_t
lower_bound(const seg_entry *recs, size_t n, uint64_t lsn)
{
	size_t		lo = 0,
				hi = n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (recs[mid].start < lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0)
	{
		ssize_t		w = pwrite(fd, p, len, (off_t) off);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t) w;
		off += (uint64_t) w;
	}
	return 0;
}

/* Read exactly len bytes at off; -1 with errno, or errno 0 on early EOF. */
static int
read_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t    *p = buf;

	while (len > 0)
	{
		ssize_t		r = pread(fd, p, len, (off_t) off);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
		{
			errno = 0;
			return -1;
		}
		p += r;
		len -= (size_t) r;
		off += (uint64_t) r;
	}
	return 0;
}

static const char *
errno_text(void)
{
	return errno == 0 ? "unexpected end of file" : strerror(errno);
}

static int
fsync_dir(const char *dir, char *err, size_t errlen)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
	{
		aurora_seterr(err, errlen, "cannot open directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (fsync(fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot fsync directory %s: %s", dir, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void
aurora_segment_dir_name(uint64_t volume_id, uint32_t pg_id, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64 "-%" PRIu32, volume_id, pg_id);
}

/* ---- meta file ---- */

/* A node id or AZ: 1..size-1 chars of [A-Za-z0-9_-] (segment.h). */
bool
aurora_segment_name_ok(const char *s, size_t size)
{
	size_t		n = strnlen(s, size);

	if (n == 0 || n >= size)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		char		c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool
meta_url_ok(const char *s)
{
	size_t		n = strnlen(s, (AURORA_URL_MAX + 1));

	if (n >= (AURORA_URL_MAX + 1))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Check what the text format needs to round-trip; returns 0 or -1 + err. */
static int
meta_check_format(const aurora_segment_meta *m, char *err, size_t errlen)
{
	if (m->replica_index >= AURORA_PG_COPIES)
	{
		aurora_seterr(err, errlen, "replica_index %" PRIu32 " out of range 0..%d",
			   m->replica_index, AURORA_PG_COPIES - 1);
		return -1;
	}
	for (int i = 0; i < AURORA_PG_COPIES; i++)
	{
		const aurora_member *mb = &m->members[i];

		if (!aurora_segment_name_ok(mb->node_id, sizeof(mb->node_id)))
		{
			aurora_seterr(err, errlen, "member %d: invalid node_id: use 1-%zu characters from [A-Za-z0-9_-]",
				   i, sizeof(mb->node_id) - 1);
			return -1;
		}
		if (!aurora_segment_name_ok(mb->az, sizeof(mb->az)))
		{
			aurora_seterr(err, errlen, "member %d: invalid az: use 1-%zu characters from [A-Za-z0-9_-]",
				   i, sizeof(mb->az) - 1);
			return -1;
		}
		if (!meta_url_ok(mb->url))
		{
			aurora_seterr(err, errlen, "member %d: invalid url: at most %d bytes, no control characters",
				   i, (AURORA_URL_MAX + 1) - 1);
			return -1;
		}
	}
	return 0;
}

static size_t
meta_encode(const aurora_segment_meta *m, char *buf, size_t cap)
{
	size_t		n;

	n = (size_t) snprintf(buf, cap,
						  META_HEADER
						  "volume_id %016" PRIx64 "\n"
						  "pg_id %" PRIu32 "\n"
						  "replica_index %" PRIu32 "\n"
						  "volume_epoch %" PRIu64 "\n"
						  "membership_epoch %" PRIu64 "\n"
						  "base_lsn %" PRIu64 "\n"
						  "geometry %" PRIu32 " %" PRIu32 "\n",
						  m->volume_id, m->pg_id, m->replica_index, m->volume_epoch,
						  m->membership_epoch, m->base_lsn, m->n_pgs, m->blocks_per_segment);
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		n += (size_t) snprintf(buf + n, cap - n, "member %d %s %s %s\n", i,
							   m->members[i].node_id, m->members[i].az, m->members[i].url);
	n += (size_t) snprintf(buf + n, cap - n, "crc32c %08" PRIx32 "\n",
						   aurora_crc32c(0, buf, n));
	return n;
}

/* Parse "<key> <u64>" from the line at *p (decimal, or 16 hex digits). */
static bool
meta_take_u64(char **p, const char *key, bool hex16, uint64_t *out)
{
	size_t		klen = strlen(key);
	char	   *line = *p;
	char	   *nl = strchr(line, '\n');
	char	   *v,
			   *end;

	if (nl == NULL || strncmp(line, key, klen) != 0 || line[klen] != ' ')
		return false;
	v = line + klen + 1;
	if (hex16 ? (nl - v != 16) : (nl - v < 1 || nl - v > 20))
		return false;
	for (char *c = v; c < nl; c++)
		if (!((*c >= '0' && *c <= '9') || (hex16 && *c >= 'a' && *c <= 'f')))
			return false;
	if (!hex16 && v[0] == '0' && nl - v > 1)
		return false;
	errno = 0;
	*out = strtoull(v, &end, hex16 ? 16 : 10);
	if (errno != 0 || end != nl)
		return false;
	*p = nl + 1;
	return true;
}

static bool
meta_take_member(char **p, int idx, aurora_member *mb)
{
	char	   *line = *p;
	char	   *nl = strchr(line, '\n');
	char		prefix[16];
	size_t		plen;
	char	   *id,
			   *az,
			   *url,
			   *sp;

	plen = (size_t) snprintf(prefix, sizeof(prefix), "member %d ", idx);
	if (nl == NULL || strncmp(line, prefix, plen) != 0)
		return false;
	id = line + plen;
	sp = memchr(id, ' ', (size_t) (nl - id));
	if (sp == NULL || (size_t) (sp - id) >= sizeof(mb->node_id))
		return false;
	az = sp + 1;
	sp = memchr(az, ' ', (size_t) (nl - az));
	if (sp == NULL || (size_t) (sp - az) >= sizeof(mb->az))
		return false;
	url = sp + 1;
	if ((size_t) (nl - url) >= sizeof(mb->url))
		return false;
	memset(mb, 0, sizeof(*mb));
	memcpy(mb->node_id, id, (size_t) (az - 1 - id));
	memcpy(mb->az, az, (size_t) (url - 1 - az));
	memcpy(mb->url, url, (size_t) (nl - url));
	*p = nl + 1;
	return true;
}

/* Parse a NUL-terminated meta text; returns 0 or -1 with a reason. */
static int
meta_decode(char *text, size_t len, aurora_segment_meta *m, char *why, size_t whylen)
{
	char	   *crcline;
	char	   *p;
	uint64_t	v,
				crc;

	if (len == 0 || text[len - 1] != '\n')
	{
		snprintf(why, whylen, "file is empty or does not end with a newline");
		return -1;
	}
	/* The crc line is the last line; it covers every byte before it. */
	text[len - 1] = '\0';
	crcline = strrchr(text, '\n');
	text[len - 1] = '\n';
	crcline = crcline == NULL ? text : crcline + 1;
	if (strncmp(crcline, "crc32c ", 7) != 0 || len - (size_t) (crcline - text) != 16)
	{
		snprintf(why, whylen, "last line is not 'crc32c <8 hex digits>'");
		return -1;
	}
	for (int i = 7; i < 15; i++)
		if (!((crcline[i] >= '0' && crcline[i] <= '9') || (crcline[i] >= 'a' && crcline[i] <= 'f')))
		{
			snprintf(why, whylen, "last line is not 'crc32c <8 hex digits>'");
			return -1;
		}
	crc = strtoull(crcline + 7, NULL, 16);
	if (crc != aurora_crc32c(0, text, (size_t) (crcline - text)))
	{
		snprintf(why, whylen, "checksum mismatch (the file is damaged)");
		return -1;
	}
	memset(m, 0, sizeof(*m));
	if (strncmp(text, META_HEADER, strlen(META_HEADER)) != 0)
	{
		snprintf(why, whylen, "first line is not 'aurora-segment-meta 1' (unknown format or version)");
		return -1;
	}
	p = text + strlen(META_HEADER);
	if (!meta_take_u64(&p, "volume_id", true, &m->volume_id))
		goto bad;
	if (!meta_take_u64(&p, "pg_id", false, &v) || v > UINT32_MAX)
		goto bad;
	m->pg_id = (uint32_t) v;
	if (!meta_take_u64(&p, "replica_index", false, &v) || v >= AURORA_PG_COPIES)
		goto bad;
	m->replica_index = (uint32_t) v;
	if (!meta_take_u64(&p, "volume_epoch", false, &m->volume_epoch) ||
		!meta_take_u64(&p, "membership_epoch", false, &m->membership_epoch) ||
		!meta_take_u64(&p, "base_lsn", false, &m->base_lsn))
		goto bad;
	{
		unsigned int n_pgs,
					bps;
		int			used = 0;

		if (sscanf(p, "geometry %u %u\n%n", &n_pgs, &bps, &used) != 2 || used == 0 ||
			p[used - 1] != '\n')
			goto bad;
		m->n_pgs = n_pgs;
		m->blocks_per_segment = bps;
		p += used;
	}
	for (int i = 0; i < AURORA_PG_COPIES; i++)
		if (!meta_take_member(&p, i, &m->members[i]))
			goto bad;
	if (p != crcline)
		goto bad;				/* extra lines before the checksum */
	return meta_check_format(m, why, whylen);

bad:
	{
		char	   *nl = strchr(p, '\n');
		int			l = nl == NULL ? 40 : (int) (nl - p);

		snprintf(why, whylen, "malformed line: '%.*s'", l > 60 ? 60 : l, p);
	}
	return -1;
}

/* Write meta durably and atomically into dir (meta.tmp, fsync, rename, fsync dir). */
static int
meta_write(const char *dir, const aurora_segment_meta *m, char *err, size_t errlen)
{
	char		buf[META_MAX_BYTES];
	char		tmp[4200],
				path[4200];
	size_t		len = meta_encode(m, buf, sizeof(buf));
	int			fd;

	snprintf(tmp, sizeof(tmp), "%s/" META_TMP_FILE, dir);
	snprintf(path, sizeof(path), "%s/" META_FILE, dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		aurora_seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write_all(fd, buf, len, 0) != 0 || fsync(fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) != 0)
	{
		aurora_seterr(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return fsync_dir(dir, err, errlen);
}

static int
meta_read(const char *dir, aurora_segment_meta *m, char *err, size_t errlen)
{
	char		path[4200];
	char		buf[META_MAX_BYTES + 1];
	char		why[200];
	ssize_t		n;
	size_t		len = 0;
	int			fd;

	snprintf(path, sizeof(path), "%s/" META_FILE, dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		aurora_seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return AURORA_SEG_ERR_IO;
	}
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0)
	{
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			aurora_seterr(err, errlen, "cannot read %s: %s", path, strerror(errno));
			close(fd);
			return AURORA_SEG_ERR_IO;
		}
		len += (size_t) n;
	}
	close(fd);
	buf[len] = '\0';
	if (len >= sizeof(buf) - 1)
	{
		aurora_seterr(err, errlen, "corrupt segment meta %s: larger than %d bytes", path, META_MAX_BYTES);
		return AURORA_SEG_ERR_CORRUPT;
	}
	if (strlen(buf) != len)
	{
		aurora_seterr(err, errlen, "corrupt segment meta %s: contains NUL bytes", path);
		return AURORA_SEG_ERR_CORRUPT;
	}
	if (meta_decode(buf, len, m, why, sizeof(why)) != 0)
	{
		aurora_seterr(err, errlen, "corrupt segment meta %s: %s", path, why);
		return AURORA_SEG_ERR_CORRUPT;
	}
	return AURORA_SEG_OK;
}

/* ---- creation ---- */

static void
encode_log_header(uint8_t *h)
{
	memset(h, 0, AURORA_SEG_LOG_HEADER_SIZE);
	memcpy(h, AURORA_SEG_LOG_MAGIC_TEXT, strlen(AURORA_SEG_LOG_MAGIC_TEXT));
	aurora_put_le32(h + 12, AURORA_SEG_LOG_VERSION);
}

int
aurora_segment_format(const char *dir, const aurora_segment_meta *meta,
					  char *err, size_t errlen)
{
	char		path[4200];
	uint8_t		h[AURORA_SEG_LOG_HEADER_SIZE];
	int			fd;

	if (meta_check_format(meta, err, errlen) != 0)
		return AURORA_SEG_ERR_INVALID;
	snprintf(path, sizeof(path), "%s/" LOG_FILE, dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		aurora_seterr(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return AURORA_SEG_ERR_IO;
	}
	encode_log_header(h);
	if (write_all(fd, h, sizeof(h), 0) != 0 || fsync(fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		return AURORA_SEG_ERR_IO;
	}
	if (close(fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return AURORA_SEG_ERR_IO;
	}
	/* meta_write fsyncs dir, which also makes the log's directory entry durable. */
	if (meta_write(dir, meta, err, errlen) != 0)
		return AURORA_SEG_ERR_IO;
	return AURORA_SEG_OK;
}

/* ---- index maintenance (all under s->mu) ---- */

static int
reserve_recs(aurora_segment *s, size_t extra)
{
	if (s->nrecs + extra > s->cap)
	{
		size_t		ncap = s->cap ? s->cap : 64;
		seg_entry  *n;

		while (ncap < s->nrecs + extra)
			ncap *= 2;
		n = realloc(s->recs, ncap * sizeof(*n));
		if (n == NULL)
			return -1;
		s->recs = n;
		s->cap = ncap;
	}
	return 0;
}

static int
reserve_batch(aurora_segment *s)
{
	if (s->bhead > 0 && s->bhead == s->nbatches)
		s->bhead = s->nbatches = 0;
	if (s->nbatches == s->bcap)
	{
		size_t		ncap;
		seg_batch  *n;

		/* Reuse the consumed front before growing. */
		if (s->bhead > 0)
		{
			memmove(s->batches, s->batches + s->bhead,
					(s->nbatches - s->bhead) * sizeof(*s->batches));
			s->nbatches -= s->bhead;
			s->bhead = 0;
			return 0;
		}
		ncap = s->bcap ? s->bcap * 2 : 16;
		n = realloc(s->batches, ncap * sizeof(*n));
		if (n == NULL)
			return -1;
		s->batches = n;
		s->bcap = ncap;
	}
	return 0;
}

/* Extend the chain over durable records whose backlink matches its tip. */
static void
advance_chain(aurora_segment *s)
{
	while (s->chain_len < s->nrecs)
	{
		const seg_entry *e = &s->recs[s->chain_len];
		uint64_t	tip = s->chain_len == 0 ? s->meta.base_lsn : s->recs[s->chain_len - 1].start;

		if (e->prev != tip || entry_end_off(e) > s->durable_off)
			break;
		s->chain_len++;
		s->scl = e->end;
	}
}

static void
mark_durable(aurora_segment *s, uint64_t off)
{
	if (off <= s->durable_off)
		return;
	s->durable_off = off;
	while (s->bhead < s->nbatches && s->batches[s->bhead].end_off <= off)
	{
		s->durable_records += s->batches[s->bhead].nrecs;
		if (s->batches[s->bhead].max_end > s->highest_durable)
			s->highest_durable = s->batches[s->bhead].max_end;
		s->bhead++;
	}
	advance_chain(s);
}

/* Does recs[i]'s backlink fail to point at its predecessor in start order? */
static bool
mismatch_at(const aurora_segment *s, size_t i)
{
	return s->recs[i].prev != (i == 0 ? s->meta.base_lsn : s->recs[i - 1].start);
}

/*
 * Walk the records after the chain: a hole is wherever a record's backlink
 * does not point at the record before it in start order.  Copies the first
 * max holes; returns the total.
 */
static int
collect_holes(aurora_segment *s, aurora_hole *out, int max)
{
	int			count = 0;
	uint64_t	pstart = s->meta.base_lsn,
				pend = s->meta.base_lsn;

	if (s->chain_len > 0)
	{
		pstart = s->recs[s->chain_len - 1].start;
		pend = s->recs[s->chain_len - 1].end;
	}
	for (size_t i = s->chain_len; i < s->nrecs && count < max; i++)
	{
		const seg_entry *e = &s->recs[i];

		if (e->prev != pstart)
		{
			out[count].from_lsn = pend;
			out[count].to_lsn = e->start;
			count++;
		}
		pstart = e->start;
		pend = e->end;
	}
	return s->mismatches > INT32_MAX ? INT32_MAX : (int) s->mismatches;
}

/* ---- open / recovery ---- */

/* Reads the log sequentially through a large buffer. */
typedef struct scan_reader
{
	int			fd;
	uint8_t    *buf;
	uint64_t	boff;
	size_t		blen;
	uint64_t	size;
} scan_reader;

/* Bytes [off, off+n) (n <= SCAN_BUFFER, off+n <= size), or NULL with errno. */
static const uint8_t *
scan_get(scan_reader *r, uint64_t off, size_t n)
{
	size_t		want;

	if (off >= r->boff && off + n <= r->boff + r->blen)
		return r->buf + (off - r->boff);
	want = r->size - off < SCAN_BUFFER ? (size_t) (r->size - off) : SCAN_BUFFER;
	if (read_all(r->fd, r->buf, want, off) != 0)
		return NULL;
	r->boff = off;
	r->blen = want;
	return r->buf;
}

/*
 * Scan the records after the header, index the good ones and return the
 * offset where the good prefix ends; *why says why the scan stopped early
 * ("" if it reached the end).  Returns -1 on a read error (err set).
 */
static int
recover_scan(aurora_segment *s, uint64_t size, uint64_t *good_end, char *why, size_t whylen,
			 char *err, size_t errlen, const char *path)
{
	scan_reader r = {.fd = s->fd, .size = size};
	uint64_t	off = AURORA_SEG_LOG_HEADER_SIZE;

	why[0] = '\0';
	r.buf = malloc(SCAN_BUFFER);
	if (r.buf == NULL)
	{
		aurora_seterr(err, errlen, "%s: out of memory", path);
		return -1;
	}
	while (off < size)
	{
		const uint8_t *h;
		uint8_t		fields[28];
		uint64_t	start,
					end,
					prev;
		uint32_t	len,
					crc;
		uint64_t	rem,
					poff;
		size_t		pos;
		seg_entry  *e;

		if (size - off < AURORA_SEG_RECORD_HEADER_SIZE)
		{
			snprintf(why, whylen, "torn record header (%" PRIu64 " of %d bytes)",
					 size - off, AURORA_SEG_RECORD_HEADER_SIZE);
			break;
		}
		h = scan_get(&r, off, AURORA_SEG_RECORD_HEADER_SIZE);
		if (h == NULL)
			goto ioerr;
		if (aurora_get_le32(h) != AURORA_SEG_RECORD_MAGIC)
		{
			snprintf(why, whylen, "bad record magic 0x%08" PRIx32, aurora_get_le32(h));
			break;
		}
		crc = aurora_get_le32(h + 4);
		start = aurora_get_le64(h + 8);
		end = aurora_get_le64(h + 16);
		prev = aurora_get_le64(h + 24);
		len = aurora_get_le32(h + 32);
		memcpy(fields, h + 8, sizeof(fields));
		if ((uint64_t) len > size - off - AURORA_SEG_RECORD_HEADER_SIZE)
		{
			snprintf(why, whylen, "torn record payload (start_lsn %" PRIu64 ": %" PRIu64
					 " of %" PRIu32 " bytes)", start,
					 size - off - AURORA_SEG_RECORD_HEADER_SIZE, len);
			break;
		}
		/* The CRC is streamed: a payload may be larger than the buffer. */
		{
			uint32_t	c = aurora_crc32c(0, fields, sizeof(fields));

			poff = off + AURORA_SEG_RECORD_HEADER_SIZE;
			rem = len;
			while (rem > 0)
			{
				size_t		chunk = rem < SCAN_BUFFER ? (size_t) rem : SCAN_BUFFER;
				const uint8_t *p = scan_get(&r, poff, chunk);

				if (p == NULL)
					goto ioerr;
				c = aurora_crc32c(c, p, chunk);
				poff += chunk;
				rem -= chunk;
			}
			if (c != crc)
			{
				snprintf(why, whylen, "record CRC mismatch (start_lsn field %" PRIu64 ")", start);
				break;
			}
		}
		if (start >= end || prev >= start)
		{
			snprintf(why, whylen, "invalid record fields (start %" PRIu64 ", end %" PRIu64
					 ", prev %" PRIu64 ")", start, end, prev);
			break;
		}
		if (start > s->meta.base_lsn)
		{
			pos = lower_bound(s->recs, s->nrecs, start);
			if ((pos < s->nrecs && s->recs[pos].start < end) ||
				(pos > 0 && s->recs[pos - 1].end > start))
			{
				snprintf(why, whylen, "record [%" PRIu64 ",%" PRIu64
						 ") overlaps an earlier record", start, end);
				break;
			}
			if (reserve_recs(s, 1) != 0)
			{
				aurora_seterr(err, errlen, "%s: out of memory", path);
				free(r.buf);
				return -1;
			}
			memmove(&s->recs[pos + 1], &s->recs[pos], (s->nrecs - pos) * sizeof(*s->recs));
			e = &s->recs[pos];
			e->start = start;
			e->end = end;
			e->prev = prev;
			e->off = off;
			e->len = len;
			e->crc = crc;
			s->nrecs++;
			if (end > s->highest_durable)
				s->highest_durable = end;
		}

		/*
		 * else: at or below the base (covered by it).  append never writes
		 * such records; if a later base move left some, they are kept on disk
		 * but not indexed.
		 */
		off += AURORA_SEG_RECORD_HEADER_SIZE + (uint64_t) len;
	}
	free(r.buf);
	*good_end = off;
	return 0;

ioerr:
	aurora_seterr(err, errlen, "cannot read %s: %s", path, errno_text());
	free(r.buf);
	return -1;
}

static void
segment_free(aurora_segment *s)
{
	if (s->fd >= 0)
		close(s->fd);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->meta_mu);
	pthread_cond_destroy(&s->sync_done);
	pthread_cond_destroy(&s->extend_done);
	free(s->recs);
	free(s->batches);
	free(s->dir);
	free(s);
}

int
aurora_segment_open(const char *dir, aurora_segment **out, char *err, size_t errlen)
{
	aurora_segment *s;
	char		path[4200];
	char		why[120];		/* fits recovery_note with its prefix */
	uint8_t		h[AURORA_SEG_LOG_HEADER_SIZE];
	uint8_t		want[AURORA_SEG_LOG_HEADER_SIZE];
	struct stat st;
	uint64_t	good_end;
	int			rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->dir = strdup(dir)) == NULL)
	{
		free(s);
		aurora_seterr(err, errlen, "out of memory");
		return AURORA_SEG_ERR_IO;
	}
	s->fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->meta_mu, NULL);
	pthread_cond_init(&s->sync_done, NULL);
	pthread_cond_init(&s->extend_done, NULL);

	rc = meta_read(dir, &s->meta, err, errlen);
	if (rc != AURORA_SEG_OK)
		goto fail;
	s->scl = s->meta.base_lsn;
	s->highest_durable = s->meta.base_lsn;

	snprintf(path, sizeof(path), "%s/" LOG_FILE, dir);
	s->fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) != 0)
	{
		aurora_seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		rc = AURORA_SEG_ERR_IO;
		goto fail;
	}
	encode_log_header(want);
	if (st.st_size == 0)
	{
		/* A log without records: give it its header (no data can be lost). */
		if (write_all(s->fd, want, sizeof(want), 0) != 0 || fdatasync(s->fd) != 0)
		{
			aurora_seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
			rc = AURORA_SEG_ERR_IO;
			goto fail;
		}
		st.st_size = sizeof(want);
	}
	if (st.st_size < AURORA_SEG_LOG_HEADER_SIZE)
	{
		aurora_seterr(err, errlen, "corrupt log %s: file of %lld bytes is shorter than the %d-byte header",
			   path, (long long) st.st_size, AURORA_SEG_LOG_HEADER_SIZE);
		rc = AURORA_SEG_ERR_CORRUPT;
		goto fail;
	}
	if (read_all(s->fd, h, sizeof(h), 0) != 0)
	{
		aurora_seterr(err, errlen, "cannot read %s: %s", path, errno_text());
		rc = AURORA_SEG_ERR_IO;
		goto fail;
	}
	if (memcmp(h, want, 12) != 0)
	{
		aurora_seterr(err, errlen, "corrupt log %s: bad file header (not an aurora segment log)", path);
		rc = AURORA_SEG_ERR_CORRUPT;
		goto fail;
	}
	if (aurora_get_le32(h + 12) != AURORA_SEG_LOG_VERSION)
	{
		aurora_seterr(err, errlen, "log %s has format version %" PRIu32 ", this node reads version %d",
			   path, aurora_get_le32(h + 12), AURORA_SEG_LOG_VERSION);
		rc = AURORA_SEG_ERR_CORRUPT;
		goto fail;
	}

	if (recover_scan(s, (uint64_t) st.st_size, &good_end, why, sizeof(why), err, errlen, path) != 0)
	{
		rc = AURORA_SEG_ERR_IO;
		goto fail;
	}
	s->alloc_end = (uint64_t) st.st_size;
	if (good_end < (uint64_t) st.st_size)
	{
		bool		zero_tail;

		if (tail_is_zero(s->fd, good_end, (uint64_t) st.st_size, &zero_tail) != 0)
		{
			aurora_seterr(err, errlen, "cannot read %s: %s", path, errno_text());
			rc = AURORA_SEG_ERR_IO;
			goto fail;
		}
		if (zero_tail)
			goto clean_end;		/* preallocated space, not damage */
		s->alloc_end = good_end;
		s->recovered_truncated = (uint64_t) st.st_size - good_end;
		snprintf(s->recovery_note, sizeof(s->recovery_note),
				 "cut %" PRIu64 " bytes at offset %" PRIu64 ": %s",
				 s->recovered_truncated, good_end, why);
		aurora_log("segment %s: recovery %s", dir, s->recovery_note);
		if (ftruncate(s->fd, (off_t) good_end) != 0)
		{
			aurora_seterr(err, errlen, "cannot truncate %s to %" PRIu64 ": %s", path, good_end,
				   strerror(errno));
			rc = AURORA_SEG_ERR_IO;
			goto fail;
		}
	}

clean_end:

	/*
	 * One fdatasync makes both the cut and every surviving record durable:
	 * records found here may have been written but never synced before a
	 * crash, and must not count in SCL until they are on disk.
	 */
	if (fdatasync(s->fd) != 0)
	{
		aurora_seterr(err, errlen, "cannot fdatasync %s: %s", path, strerror(errno));
		rc = AURORA_SEG_ERR_IO;
		goto fail;
	}
	s->write_off = good_end;
	s->durable_off = good_end;
	s->durable_records = s->nrecs;
	for (size_t i = 0; i < s->nrecs; i++)
		s->mismatches += mismatch_at(s, i);
	advance_chain(s);
	*out = s;
	return AURORA_SEG_OK;

fail:
	segment_free(s);
	return rc;
}

void
aurora_segment_close(aurora_segment *s)
{
	if (s != NULL)
		segment_free(s);
}

/* ---- append ---- */

typedef struct batch_item
{
	uint64_t	start;
	int			idx;			/* index in the caller's array */
} batch_item;

static int
cmp_item(const void *a, const void *b)
{
	const batch_item *x = a,
			   *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * The backlink rule for two neighbours in start order, left then right:
 * right's predecessor in the PG starts at right_prev, so no record of the
 * PG may start strictly between right_prev and right's start.  left must
 * therefore start at or before right_prev, and if left is not right's
 * predecessor itself, the predecessor cannot overlap left.
 */
static bool
link_ok(uint64_t left_start, uint64_t left_end, uint64_t right_prev)
{
	if (right_prev < left_start)
		return false;
	return right_prev == left_start || right_prev >= left_end;
}

enum
{
	ITEM_NEW, ITEM_DUP, ITEM_COVERED
};

/*
 * One call's batch on its way through the steps of aurora_segment_append.
 * items, kind and pos are in start order (item k is recs[items[k].idx]);
 * crcs is in the caller's order.
 */
typedef struct append_batch
{
	const aurora_log_record *recs;
	int			n;
	batch_item *items;
	uint32_t   *crcs;
	uint8_t    *kind;			/* ITEM_* */
	size_t	   *pos;			/* where item k goes in s->recs (ITEM_NEW) */
	uint8_t    *buf;			/* the encoded new records */
	seg_entry  *fresh;			/* their index entries */
	size_t		nfresh;
	size_t		total;			/* bytes of the new records */
} append_batch;

/* 1. Each record on its own (no lock needed); computes its CRC. */
static int
check_each_record(append_batch *b, uint32_t max_payload, char *err, size_t errlen)
{
	for (int i = 0; i < b->n; i++)
	{
		const aurora_log_record *r = &b->recs[i];

		if (r->start_lsn >= r->end_lsn)
		{
			aurora_seterr(err, errlen, "record %d: start_lsn %" PRIu64 " is not below end_lsn %" PRIu64,
				   i, r->start_lsn, r->end_lsn);
			return AURORA_SEG_ERR_INVALID;
		}
		if (r->prev_lsn >= r->start_lsn)
		{
			aurora_seterr(err, errlen, "record %d (start %" PRIu64 "): prev_lsn %" PRIu64
				   " is not below start_lsn", i, r->start_lsn, r->prev_lsn);
			return AURORA_SEG_ERR_INVALID;
		}
		if (r->len > 0 && r->payload == NULL)
		{
			aurora_seterr(err, errlen, "record %d (start %" PRIu64 "): %" PRIu32 " bytes but no payload",
				   i, r->start_lsn, r->len);
			return AURORA_SEG_ERR_INVALID;
		}
		if (r->len > max_payload)
		{
			aurora_seterr(err, errlen, "record %d (start %" PRIu64 "): payload of %" PRIu32
				   " bytes exceeds the limit of %" PRIu32, i, r->start_lsn, r->len, max_payload);
			return AURORA_SEG_ERR_TOO_LARGE;
		}
		b->crcs[i] = record_crc(r);
		b->items[i].start = r->start_lsn;
		b->items[i].idx = i;
	}
	return AURORA_SEG_OK;
}

/* 2. The batch against itself: sorted by start, neighbours must not overlap. */
static int
check_batch_overlap(append_batch *b, char *err, size_t errlen)
{
	qsort(b->items, (size_t) b->n, sizeof(*b->items), cmp_item);
	for (int k = 1; k < b->n; k++)
	{
		const aurora_log_record *x = &b->recs[b->items[k - 1].idx],
				   *y = &b->recs[b->items[k].idx];

		if (x->end_lsn > y->start_lsn)
		{
			aurora_seterr(err, errlen, "records %d [%" PRIu64 ",%" PRIu64 ") and %d [%" PRIu64 ",%" PRIu64
				   ") of the batch overlap", b->items[k - 1].idx, x->start_lsn, x->end_lsn,
				   b->items[k].idx, y->start_lsn, y->end_lsn);
			return AURORA_SEG_ERR_INVALID;
		}
	}
	return AURORA_SEG_OK;
}

/*
 * 3. Against held records (durable or pending): duplicate or overlap.  Sets
 * kind[], pos[], nfresh and total.  s->mu held.
 */
static int
classify_against_held(aurora_segment *s, append_batch *b, char *err, size_t errlen)
{
	for (int k = 0; k < b->n; k++)
	{
		int			i = b->items[k].idx;
		const aurora_log_record *r = &b->recs[i];
		size_t		p;

		if (r->start_lsn <= s->meta.base_lsn)
		{
			b->kind[k] = ITEM_COVERED;
			continue;
		}
		p = lower_bound(s->recs, s->nrecs, r->start_lsn);
		b->pos[k] = p;
		if (p < s->nrecs && s->recs[p].start == r->start_lsn)
		{
			const seg_entry *e = &s->recs[p];

			if (e->end == r->end_lsn && e->prev == r->prev_lsn && e->len == r->len &&
				e->crc == b->crcs[i])
			{
				b->kind[k] = ITEM_DUP;
				continue;
			}
			aurora_seterr(err, errlen, "record %d (start %" PRIu64 "): differs from the held record "
				   "with the same start_lsn (end %" PRIu64 ", prev %" PRIu64 ", %" PRIu32 " bytes)",
				   i, r->start_lsn, e->end, e->prev, e->len);
			return AURORA_SEG_ERR_INCONSISTENT;
		}
		if ((p > 0 && s->recs[p - 1].end > r->start_lsn) ||
			(p < s->nrecs && s->recs[p].start < r->end_lsn))
		{
			const seg_entry *e = (p > 0 && s->recs[p - 1].end > r->start_lsn) ?
				&s->recs[p - 1] : &s->recs[p];

			aurora_seterr(err, errlen, "record %d [%" PRIu64 ",%" PRIu64 ") overlaps the held record [%"
				   PRIu64 ",%" PRIu64 ")", i, r->start_lsn, r->end_lsn, e->start, e->end);
			return AURORA_SEG_ERR_INCONSISTENT;
		}
		b->kind[k] = ITEM_NEW;
		b->nfresh++;
		b->total += AURORA_SEG_RECORD_HEADER_SIZE + r->len;
	}
	return AURORA_SEG_OK;
}

/*
 * 4. Backlinks of each new record against its neighbours in start order
 * (held or new, whichever is closer; the base acts as a record that ends
 * where it starts).  A contradiction means two histories of the PG are
 * being mixed (e.g. a stale writer), which would otherwise only show up
 * later as a hole that never fills.  s->mu held.
 */
static int
check_backlinks(aurora_segment *s, const append_batch *b, char *err, size_t errlen)
{
	const aurora_log_record *recs = b->recs;
	const batch_item *items = b->items;
	int			last_new = -1;

	for (int k = 0; k < b->n; k++)
	{
		const aurora_log_record *r = &recs[items[k].idx];
		size_t		p = b->pos[k];
		uint64_t	ls = s->meta.base_lsn,
					le = s->meta.base_lsn;
		int			next_new = -1;
		bool		have_right = false;
		uint64_t	rs = 0,
					rp = 0;

		if (b->kind[k] != ITEM_NEW)
			continue;
		if (p > 0)
		{
			ls = s->recs[p - 1].start;
			le = s->recs[p - 1].end;
		}
		if (last_new >= 0 && recs[items[last_new].idx].start_lsn > ls)
		{
			ls = recs[items[last_new].idx].start_lsn;
			le = recs[items[last_new].idx].end_lsn;
		}
		for (int j = k + 1; j < b->n; j++)
			if (b->kind[j] == ITEM_NEW)
			{
				next_new = j;
				break;
			}
		if (p < s->nrecs)
		{
			have_right = true;
			rs = s->recs[p].start;
			rp = s->recs[p].prev;
		}
		if (next_new >= 0 && (!have_right || recs[items[next_new].idx].start_lsn < rs))
		{
			have_right = true;
			rs = recs[items[next_new].idx].start_lsn;
			rp = recs[items[next_new].idx].prev_lsn;
		}
		if (!link_ok(ls, le, r->prev_lsn))
		{
			aurora_seterr(err, errlen, "record %d (start %" PRIu64 ", prev %" PRIu64
				   "): its backlink skips or overlaps the record [%" PRIu64 ",%" PRIu64 ")",
				   items[k].idx, r->start_lsn, r->prev_lsn, ls, le);
			return AURORA_SEG_ERR_INCONSISTENT;
		}
		if (have_right && !link_ok(r->start_lsn, r->end_lsn, rp))
		{
			aurora_seterr(err, errlen, "record %d [%" PRIu64 ",%" PRIu64 "): the record at %" PRIu64
				   " has backlink %" PRIu64 ", which skips or overlaps it",
				   items[k].idx, r->start_lsn, r->end_lsn, rs, rp);
			return AURORA_SEG_ERR_INCONSISTENT;
		}
		last_new = k;
	}
	return AURORA_SEG_OK;
}

/*
 * 6. Encode the new records in start order and write them with one pwrite;
 * fills fresh[] and queues the batch for the next sync.  s->mu held, the
 * memory of step 5 reserved.
 */
static int
write_new_records(aurora_segment *s, append_batch *b, char *err, size_t errlen)
{
	size_t		o = 0,
				f = 0;
	uint64_t	max_end = 0;

	for (int k = 0; k < b->n; k++)
	{
		const aurora_log_record *r = &b->recs[b->items[k].idx];
		uint32_t	crc = b->crcs[b->items[k].idx];
		seg_entry  *e;

		if (b->kind[k] != ITEM_NEW)
			continue;
		aurora_put_le32(b->buf + o, AURORA_SEG_RECORD_MAGIC);
		aurora_put_le32(b->buf + o + 4, crc);
		encode_fields(b->buf + o + 8, r->start_lsn, r->end_lsn, r->prev_lsn, r->len);
		if (r->len > 0)
			memcpy(b->buf + o + AURORA_SEG_RECORD_HEADER_SIZE, r->payload, r->len);
		e = &b->fresh[f++];
		e->start = r->start_lsn;
		e->end = r->end_lsn;
		e->prev = r->prev_lsn;
		e->len = r->len;
		e->crc = crc;
		e->off = s->write_off + o;
		if (r->end_lsn > max_end)
			max_end = r->end_lsn;
		o += AURORA_SEG_RECORD_HEADER_SIZE + r->len;
	}
	if (write_all(s->fd, b->buf, b->total, s->write_off) != 0)
	{
		int			saved = errno;

		/*
		 * Put the file back as it was, so that a crash cannot resurrect part
		 * of a batch the caller was told failed.  If even that fails the
		 * file's tail is unknown: refuse further writes.
		 */
		s->alloc_end = s->write_off;
		if (ftruncate(s->fd, (off_t) s->write_off) != 0)
		{
			s->failed = true;
			snprintf(s->failed_msg, sizeof(s->failed_msg),
					 "write failed (%s) and truncating back failed (%s)",
					 strerror(saved), strerror(errno));
			aurora_log("segment %s: %s", s->dir, s->failed_msg);
		}
		aurora_seterr(err, errlen, "cannot append to %s/" LOG_FILE ": %s", s->dir, strerror(saved));
		return AURORA_SEG_ERR_IO;
	}
	s->write_off += b->total;
	if (s->write_off > s->alloc_end)
		s->alloc_end = s->write_off;
	s->batches[s->nbatches].end_off = s->write_off;
	s->batches[s->nbatches].nrecs = b->nfresh;
	s->batches[s->nbatches].max_end = max_end;
	s->nbatches++;
	return AURORA_SEG_OK;
}

/*
 * 7. Merge the new (sorted) entries into the index from the back, noting
 * where each lands (in pos[], ascending; no longer needed for step 4), and
 * keep the count of backlink mismatches.  Cannot fail.  s->mu held.
 */
static void
merge_into_index(aurora_segment *s, append_batch *b)
{
	size_t	   *pos = b->pos;
	size_t		nfresh = b->nfresh;
	size_t		i = s->nrecs,
				j = nfresh,
				w = s->nrecs + nfresh;

	while (j > 0)
	{
		if (i > 0 && s->recs[i - 1].start > b->fresh[j - 1].start)
			s->recs[--w] = s->recs[--i];
		else
		{
			s->recs[--w] = b->fresh[--j];
			pos[j] = w;
		}
	}
	s->nrecs += nfresh;

	/*
	 * Backlink mismatches change only at the new entries and at each held
	 * entry right after a run of new ones (its predecessor changed from the
	 * held entry before the run to the run's last new entry).
	 */
	for (size_t f = 0; f < nfresh; f++)
	{
		size_t		q = pos[f];

		s->mismatches += mismatch_at(s, q);
		if ((f + 1 == nfresh || pos[f + 1] != q + 1) && q + 1 < s->nrecs)
		{
			size_t		run = q;
			uint64_t	old_pred;

			for (size_t g = f; g > 0 && pos[g - 1] == run - 1; g--)
				run--;
			old_pred = run == 0 ? s->meta.base_lsn : s->recs[run - 1].start;
			s->mismatches -= s->recs[q + 1].prev != old_pred;
			s->mismatches += mismatch_at(s, q + 1);
		}
	}
	/* The backlink checks keep new records out of the chain; be safe anyway. */
	if (w < s->chain_len)
	{
		s->chain_len = 0;
		s->scl = s->meta.base_lsn;
		advance_chain(s);
	}
}

/*
 * Lock s for an append of b: not into space that is being zero-filled
 * (aurora_segment_preallocate), and not after a failure that left the
 * file's tail unknown.  Returns with s->mu held either way.
 */
static int
lock_for_append(aurora_segment *s, const append_batch *b, char *err, size_t errlen)
{
	uint64_t	most = 0;

	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < b->n; i++)
		most += AURORA_SEG_RECORD_HEADER_SIZE + b->recs[i].len;
	while (s->extending && s->write_off + most > s->extend_from)
		pthread_cond_wait(&s->extend_done, &s->mu);
	if (s->failed)
	{
		aurora_seterr(err, errlen, "segment %s refuses writes after an earlier failure (%s); "
			   "it must be reopened", s->dir, s->failed_msg);
		return AURORA_SEG_ERR_IO;
	}
	return AURORA_SEG_OK;
}

/*
 * Steps 1-2 check the batch alone, 3-4 against what the segment holds
 * (nothing of a refused batch is written), 5 reserves every allocation so
 * that nothing can fail after the write, 6 writes, 7 indexes.
 */
int
aurora_segment_append(aurora_segment *s, const aurora_log_record *recs, int n,
					  uint32_t max_payload, int *n_new, char *err, size_t errlen)
{
	append_batch b = {.recs = recs, .n = n};
	int			rc = AURORA_SEG_OK;
	bool		locked = false;

	if (n_new != NULL)
		*n_new = 0;
	if (n < 0 || (n > 0 && recs == NULL))
	{
		aurora_seterr(err, errlen, "invalid batch: %d records", n);
		return AURORA_SEG_ERR_INVALID;
	}
	if (n == 0)
		return AURORA_SEG_OK;

	b.items = malloc((size_t) n * sizeof(*b.items));
	b.crcs = malloc((size_t) n * sizeof(*b.crcs));
	b.kind = malloc((size_t) n);
	b.pos = malloc((size_t) n * sizeof(*b.pos));
	if (b.items == NULL || b.crcs == NULL || b.kind == NULL || b.pos == NULL)
	{
		aurora_seterr(err, errlen, "out of memory for a batch of %d records", n);
		rc = AURORA_SEG_ERR_IO;
		goto out;
	}
	if ((rc = check_each_record(&b, max_payload, err, errlen)) != AURORA_SEG_OK ||
		(rc = check_batch_overlap(&b, err, errlen)) != AURORA_SEG_OK)
		goto out;

	locked = true;
	if ((rc = lock_for_append(s, &b, err, errlen)) != AURORA_SEG_OK ||
		(rc = classify_against_held(s, &b, err, errlen)) != AURORA_SEG_OK ||
		(rc = check_backlinks(s, &b, err, errlen)) != AURORA_SEG_OK)
		goto out;
	if (b.nfresh == 0)
		goto out;

	/* 5. Reserve memory first, so nothing can fail after the write. */
	b.buf = malloc(b.total);
	b.fresh = malloc(b.nfresh * sizeof(*b.fresh));
	if (b.buf == NULL || b.fresh == NULL || reserve_recs(s, b.nfresh) != 0 || reserve_batch(s) != 0)
	{
		aurora_seterr(err, errlen, "out of memory appending %zu records", b.nfresh);
		rc = AURORA_SEG_ERR_IO;
		goto out;
	}
	if ((rc = write_new_records(s, &b, err, errlen)) != AURORA_SEG_OK)
		goto out;
	merge_into_index(s, &b);
	if (n_new != NULL)
		*n_new = (int) b.nfresh;

out:
	if (locked)
		pthread_mutex_unlock(&s->mu);
	free(b.items);
	free(b.crcs);
	free(b.kind);
	free(b.pos);
	free(b.buf);
	free(b.fresh);
	return rc;
}

/* ---- sync ---- */

int
aurora_segment_preallocate(aurora_segment *s, char *err, size_t errlen)
{
	static const uint8_t zeros[65536];
	uint64_t	from,
				to;
	int			rc = AURORA_SEG_OK;

	pthread_mutex_lock(&s->mu);
	if (s->failed || s->extending || s->alloc_end - s->write_off >= LOG_PREALLOC_CHUNK / 2)
	{
		pthread_mutex_unlock(&s->mu);
		return AURORA_SEG_OK;
	}
	from = s->alloc_end;
	to = from + LOG_PREALLOC_CHUNK;
	s->extending = true;
	s->extend_from = from;
	pthread_mutex_unlock(&s->mu);

	/* appends below from go on meanwhile; one that would reach it waits */
	for (uint64_t off = from; off < to && rc == AURORA_SEG_OK; off += sizeof(zeros))
	{
		size_t		n = to - off < sizeof(zeros) ? (size_t) (to - off) : sizeof(zeros);

		if (write_all(s->fd, zeros, n, off) != 0)
			rc = AURORA_SEG_ERR_IO;
	}
	/* the new size must be durable, or the next sync of a record pays for it */
	if (rc == AURORA_SEG_OK && fdatasync(s->fd) != 0)
		rc = AURORA_SEG_ERR_IO;
	if (rc != AURORA_SEG_OK)
		aurora_seterr(err, errlen, "cannot preallocate %s/" LOG_FILE ": %s", s->dir, strerror(errno));

	pthread_mutex_lock(&s->mu);
	s->extending = false;
	if (rc == AURORA_SEG_OK)
		s->alloc_end = to;
	else if (ftruncate(s->fd, (off_t) s->alloc_end) != 0)
	{
		/* what lies past alloc_end is unknown now: recovery would cut it */
		aurora_log("segment %s: cannot truncate a failed preallocation: %s", s->dir,
				   strerror(errno));
	}
	pthread_cond_broadcast(&s->extend_done);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
aurora_segment_sync(aurora_segment *s, char *err, size_t errlen)
{
	uint64_t	target;

	pthread_mutex_lock(&s->mu);
	target = s->write_off;
	for (;;)
	{
		uint64_t	snap;
		int			rc,
					saved;

		/* Records made durable before a failure are still durable. */
		if (s->durable_off >= target)
			break;
		if (s->failed)
		{
			aurora_seterr(err, errlen, "segment %s failed earlier (%s); it must be reopened",
				   s->dir, s->failed_msg);
			pthread_mutex_unlock(&s->mu);
			return AURORA_SEG_ERR_IO;
		}
		if (s->syncing)
		{
			/* Its snapshot may already cover us; either way re-check after it. */
			pthread_cond_wait(&s->sync_done, &s->mu);
			continue;
		}
		/* Lead a sync covering everything appended so far, not just ours. */
		s->syncing = true;
		snap = s->write_off;
		pthread_mutex_unlock(&s->mu);
		rc = fdatasync(s->fd);
		saved = errno;
		pthread_mutex_lock(&s->mu);
		s->syncing = false;
		if (rc != 0)
		{
			s->failed = true;
			snprintf(s->failed_msg, sizeof(s->failed_msg), "fdatasync of the log failed: %s",
					 strerror(saved));
			aurora_log("segment %s: %s; the segment refuses writes until reopened",
					   s->dir, s->failed_msg);
		}
		else
			mark_durable(s, snap);
		pthread_cond_broadcast(&s->sync_done);
	}
	pthread_mutex_unlock(&s->mu);
	return AURORA_SEG_OK;
}

bool
aurora_segment_needs_sync(aurora_segment *s)
{
	bool		r;

	pthread_mutex_lock(&s->mu);
	r = !s->failed && s->write_off > s->durable_off;
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* ---- read ---- */

int
aurora_segment_read(aurora_segment *s, uint64_t from_lsn, uint64_t to_lsn, size_t max_bytes,
					aurora_record_fn emit, void *arg,
					bool *truncated)
{
	seg_entry  *sel = NULL;
	size_t		nsel = 0,
				cap = 0,
				buf_cap = 0;
	uint64_t	bytes = 0;
	uint8_t    *buf = NULL;
	int			rc = AURORA_SEG_OK;

	if (truncated != NULL)
		*truncated = false;

	/*
	 * Pick the records under the mutex, read them without it: durable bytes
	 * are never rewritten, so appends and syncs need not wait for the disk.
	 */
	pthread_mutex_lock(&s->mu);
	for (size_t p = lower_bound(s->recs, s->nrecs, from_lsn);
		 p < s->nrecs && s->recs[p].start < to_lsn; p++)
	{
		const seg_entry *e = &s->recs[p];

		if (entry_end_off(e) > s->durable_off)
			continue;
		if (nsel > 0 && bytes + e->len > max_bytes)
		{
			if (truncated != NULL)
				*truncated = true;
			break;
		}
		if (nsel == cap)
		{
			size_t		ncap = cap ? cap * 2 : 32;
			seg_entry  *ns = realloc(sel, ncap * sizeof(*ns));

			if (ns == NULL)
			{
				pthread_mutex_unlock(&s->mu);
				free(sel);
				return AURORA_SEG_ERR_IO;
			}
			sel = ns;
			cap = ncap;
		}
		sel[nsel++] = *e;
		bytes += e->len;
	}
	pthread_mutex_unlock(&s->mu);

	/*
	 * Records appended in order lie back to back in the file: each run of
	 * them is read with one pread (at most READ_SPAN_MAX bytes, or one
	 * record), not one per record.  The indexer reads every record, the
	 * page service's tail scan and coalescing many: per-record preads were
	 * most of a node's system calls under load.
	 */
	for (size_t i = 0, j; i < nsel && rc == AURORA_SEG_OK; i = j)
	{
		uint64_t	span_end = entry_end_off(&sel[i]);
		size_t		span;

		for (j = i + 1; j < nsel && sel[j].off == span_end &&
			 entry_end_off(&sel[j]) - sel[i].off <= READ_SPAN_MAX; j++)
			span_end = entry_end_off(&sel[j]);
		span = (size_t) (span_end - sel[i].off);
		if (span > buf_cap)
		{
			uint8_t    *nb = realloc(buf, span);

			if (nb == NULL)
			{
				rc = AURORA_SEG_ERR_IO;
				break;
			}
			buf = nb;
			buf_cap = span;
		}
		if (read_all(s->fd, buf, span, sel[i].off) != 0)
		{
			aurora_log("segment %s: cannot read records at offset %" PRIu64 ": %s",
					   s->dir, sel[i].off, errno_text());
			rc = AURORA_SEG_ERR_IO;
			break;
		}
		for (size_t k = i; k < j && rc == AURORA_SEG_OK; k++)
		{
			const seg_entry *e = &sel[k];
			const uint8_t *h = buf + (e->off - sel[i].off);
			aurora_log_record r;

			if (aurora_get_le32(h) != AURORA_SEG_RECORD_MAGIC || aurora_get_le32(h + 4) != e->crc ||
				aurora_get_le64(h + 8) != e->start || aurora_get_le64(h + 16) != e->end ||
				aurora_get_le64(h + 24) != e->prev || aurora_get_le32(h + 32) != e->len ||
				aurora_crc32c(0, h + 8, 28u + e->len) != e->crc)
			{
				aurora_log("segment %s: record [%" PRIu64 ",%" PRIu64 ") at offset %" PRIu64
						   " is corrupt on disk (CRC or header mismatch)", s->dir, e->start,
						   e->end, e->off);
				rc = AURORA_SEG_ERR_CORRUPT;
				break;
			}
			r.start_lsn = e->start;
			r.end_lsn = e->end;
			r.prev_lsn = e->prev;
			r.len = e->len;
			r.payload = h + AURORA_SEG_RECORD_HEADER_SIZE;
			rc = emit(arg, &r);
		}
	}
	free(buf);
	free(sel);
	return rc;
}

/* ---- meta and stats ---- */

int
aurora_segment_set_epochs(aurora_segment *s, uint64_t volume_epoch, uint64_t membership_epoch,
						  char *err, size_t errlen)
{
	aurora_segment_meta m;

	/*
	 * meta_mu serializes writers of the meta file; the main mutex is not
	 * held across the fsyncs, so appends keep flowing.  The in-memory epochs
	 * rise only once the new ones are durable.
	 */
	pthread_mutex_lock(&s->meta_mu);
	pthread_mutex_lock(&s->mu);
	m = s->meta;
	pthread_mutex_unlock(&s->mu);
	if (volume_epoch <= m.volume_epoch && membership_epoch <= m.membership_epoch)
	{
		pthread_mutex_unlock(&s->meta_mu);
		return AURORA_SEG_OK;
	}
	if (volume_epoch > m.volume_epoch)
		m.volume_epoch = volume_epoch;
	if (membership_epoch > m.membership_epoch)
		m.membership_epoch = membership_epoch;
	if (meta_write(s->dir, &m, err, errlen) != 0)
	{
		pthread_mutex_unlock(&s->meta_mu);
		return AURORA_SEG_ERR_IO;
	}
	pthread_mutex_lock(&s->mu);
	s->meta.volume_epoch = m.volume_epoch;
	s->meta.membership_epoch = m.membership_epoch;
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->meta_mu);
	return AURORA_SEG_OK;
}

void
aurora_segment_get_meta(aurora_segment *s, aurora_segment_meta *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->meta;
	pthread_mutex_unlock(&s->mu);
}

void
aurora_segment_get_stats(aurora_segment *s, aurora_segment_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	out->scl = s->scl;
	out->highest_lsn = s->highest_durable;
	out->records = s->durable_records;
	out->pending_records = s->nrecs - s->durable_records;
	out->bytes_on_disk = s->write_off;
	out->volume_epoch = s->meta.volume_epoch;
	out->membership_epoch = s->meta.membership_epoch;
	out->n_holes = s->mismatches > UINT32_MAX ? UINT32_MAX : (uint32_t) s->mismatches;
	out->recovered_truncated_bytes = s->recovered_truncated;
	snprintf(out->recovery_note, sizeof(out->recovery_note), "%s", s->recovery_note);
	out->peer_scl = s->peer_scl;
	out->records_from_peers = s->records_from_peers;
	pthread_mutex_unlock(&s->mu);
}

bool
aurora_segment_record_before(aurora_segment *s, uint64_t lsn, aurora_log_record *out)
{
	bool		found = false;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	for (size_t p = lower_bound(s->recs, s->nrecs, lsn); p > 0 && !found; p--)
	{
		const seg_entry *e = &s->recs[p - 1];

		if (entry_end_off(e) > s->durable_off)
			continue;			/* not durable yet: not ours to report */
		out->start_lsn = e->start;
		out->end_lsn = e->end;
		out->prev_lsn = e->prev;
		out->len = e->len;
		found = true;
	}
	pthread_mutex_unlock(&s->mu);
	return found;
}

void
aurora_segment_note_gossip(aurora_segment *s, uint64_t peer_scl, uint64_t records_fetched)
{
	pthread_mutex_lock(&s->mu);
	s->peer_scl = peer_scl;
	s->records_from_peers += records_fetched;
	pthread_mutex_unlock(&s->mu);
}

int
aurora_segment_get_holes(aurora_segment *s, aurora_hole *out, int max)
{
	int			n;

	pthread_mutex_lock(&s->mu);
	n = collect_holes(s, out, max < 0 ? 0 : max);
	pthread_mutex_unlock(&s->mu);
	return n;
}
