/*
 * segment_meta.c - a segment's meta file (segment_int.h): its text format,
 * the checks every meta passes, its atomic rewrite, and raising the epochs
 * (aurora_segment_set_epochs); truncations (segment_truncate.c) rewrite it
 * through seg_meta_write too, with the truncation history.
 * Called by segment_recovery.c (create, open) and the request handler
 * (epochs).  Format also in PROTOCOL.md section 9.
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
 *       truncated_epoch <decimal>                 (the lines from here to crc32c
 *       records_dropped <decimal>                  are absent in a meta written
 *       truncation <epoch> <lsn>                   before volume epochs: then
 *         (0..4096 lines, the history, ascending)  truncated_epoch = volume_epoch,
 *       cut_pending <lsn>                          no history, nothing pending)
 *         (optional: a truncation committed, its cut not yet finished)
 *       crc32c <8 lowercase hex digits>           (of all bytes before this line)
 *     Any deviation is a corrupt meta: the segment does not open and nothing
 *     is modified.
 */
#define _DEFAULT_SOURCE

#include "segment_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byteorder.h"
#include "crc32c.h"
#include "log.h"
#include "util.h"

#define META_FILE		"meta"
#define META_TMP_FILE	"meta.tmp"
#define META_HEADER		"aurora-segment-meta 1\n"
/* room for the fixed lines and a full history (~45 bytes a line) */
#define META_MAX_BYTES	(8192 + AURORA_TRUNC_HISTORY_MAX * 48)

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
int
seg_meta_check_format(const aurora_segment_meta *m, char *err, size_t errlen)
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
meta_encode(const aurora_segment_meta *m, const aurora_trunc_entry *hist, size_t n_hist,
			char *buf, size_t cap)
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
	n += (size_t) snprintf(buf + n, cap - n, "truncated_epoch %" PRIu64 "\nrecords_dropped %" PRIu64 "\n",
						   m->truncated_epoch, m->records_dropped);
	for (size_t i = 0; i < n_hist; i++)
		n += (size_t) snprintf(buf + n, cap - n, "truncation %" PRIu64 " %" PRIu64 "\n",
							   hist[i].epoch, hist[i].lsn);
	if (m->cut_pending)
		n += (size_t) snprintf(buf + n, cap - n, "cut_pending %" PRIu64 "\n", m->cut_lsn);
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
meta_decode(char *text, size_t len, aurora_segment_meta *m, aurora_trunc_entry *hist,
			size_t *n_hist, char *why, size_t whylen)
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
	*n_hist = 0;
	m->truncated_epoch = m->volume_epoch;	/* a meta from before volume epochs */
	if (p != crcline)
	{
		if (!meta_take_u64(&p, "truncated_epoch", false, &m->truncated_epoch) ||
			!meta_take_u64(&p, "records_dropped", false, &m->records_dropped))
			goto bad;
		while (p != crcline && strncmp(p, "truncation ", 11) == 0)
		{
			unsigned long long e,
						l;
			int			used = 0;

			if (*n_hist >= AURORA_TRUNC_HISTORY_MAX ||
				sscanf(p, "truncation %llu %llu\n%n", &e, &l, &used) != 2 || used == 0 ||
				p[used - 1] != '\n')
				goto bad;
			hist[*n_hist].epoch = e;
			hist[*n_hist].lsn = l;
			(*n_hist)++;
			p += used;
		}
		if (p != crcline)
		{
			if (!meta_take_u64(&p, "cut_pending", false, &m->cut_lsn))
				goto bad;
			m->cut_pending = true;
		}
	}
	if (p != crcline)
		goto bad;				/* extra lines before the checksum */
	if (!aurora_trunc_history_check(hist, (int) *n_hist, why, whylen))
		return -1;
	if (m->truncated_epoch > m->volume_epoch)
	{
		snprintf(why, whylen, "truncated_epoch %" PRIu64 " is above volume_epoch %" PRIu64,
				 m->truncated_epoch, m->volume_epoch);
		return -1;
	}
	return seg_meta_check_format(m, why, whylen);

bad:
	{
		char	   *nl = strchr(p, '\n');
		int			l = nl == NULL ? 40 : (int) (nl - p);

		snprintf(why, whylen, "malformed line: '%.*s'", l > 60 ? 60 : l, p);
	}
	return -1;
}

/* Write text durably and atomically as dir/meta (meta.tmp, fsync, rename, fsync dir). */
static int
meta_write_text(const char *dir, const char *buf, size_t len, char *err, size_t errlen)
{
	char		tmp[4200],
				path[4200];
	int			fd;

	snprintf(tmp, sizeof(tmp), "%s/" META_TMP_FILE, dir);
	snprintf(path, sizeof(path), "%s/" META_FILE, dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		aurora_seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (seg_write_all(fd, buf, len, 0) != 0 || fsync(fd) != 0)
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

int
seg_meta_write(const char *dir, const aurora_segment_meta *m, const aurora_trunc_entry *hist,
			   size_t n_hist, char *err, size_t errlen)
{
	char	   *buf = malloc(META_MAX_BYTES);
	int			rc;

	if (buf == NULL)
	{
		aurora_seterr(err, errlen, "out of memory for the segment meta");
		return -1;
	}
	rc = meta_write_text(dir, buf, meta_encode(m, hist, n_hist, buf, META_MAX_BYTES), err, errlen);
	free(buf);
	return rc;
}

int
seg_meta_read(const char *dir, aurora_segment_meta *m, aurora_trunc_entry **hist, size_t *n_hist,
			  char *err, size_t errlen)
{
	char		path[4200];
	char	   *buf;
	char		why[300];
	ssize_t		n;
	size_t		len = 0;
	int			fd;
	int			rc = AURORA_SEG_OK;

	*hist = NULL;
	*n_hist = 0;
	snprintf(path, sizeof(path), "%s/" META_FILE, dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		aurora_seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return AURORA_SEG_ERR_IO;
	}
	buf = malloc(META_MAX_BYTES + 1);
	*hist = malloc(AURORA_TRUNC_HISTORY_MAX * sizeof(**hist));
	if (buf == NULL || *hist == NULL)
	{
		aurora_seterr(err, errlen, "out of memory reading %s", path);
		rc = AURORA_SEG_ERR_IO;
		goto out;
	}
	while (len < META_MAX_BYTES && (n = read(fd, buf + len, META_MAX_BYTES - len)) != 0)
	{
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			aurora_seterr(err, errlen, "cannot read %s: %s", path, strerror(errno));
			rc = AURORA_SEG_ERR_IO;
			goto out;
		}
		len += (size_t) n;
	}
	buf[len] = '\0';
	if (len >= META_MAX_BYTES)
	{
		aurora_seterr(err, errlen, "corrupt segment meta %s: larger than %d bytes", path, META_MAX_BYTES);
		rc = AURORA_SEG_ERR_CORRUPT;
	}
	else if (strlen(buf) != len)
	{
		aurora_seterr(err, errlen, "corrupt segment meta %s: contains NUL bytes", path);
		rc = AURORA_SEG_ERR_CORRUPT;
	}
	else if (meta_decode(buf, len, m, *hist, n_hist, why, sizeof(why)) != 0)
	{
		aurora_seterr(err, errlen, "corrupt segment meta %s: %s", path, why);
		rc = AURORA_SEG_ERR_CORRUPT;
	}
out:
	close(fd);
	free(buf);
	if (rc != AURORA_SEG_OK)
	{
		free(*hist);
		*hist = NULL;
		*n_hist = 0;
	}
	else
	{
		/* keep only what the history uses: a node hosts many segments */
		aurora_trunc_entry *fit = realloc(*hist, (*n_hist > 0 ? *n_hist : 1) * sizeof(**hist));

		if (fit != NULL)
			*hist = fit;
	}
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
	/* the history only changes under meta_mu too, so this copy is current */
	if (seg_meta_write(s->dir, &m, s->hist, s->n_hist, err, errlen) != 0)
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
