/*
 * redo.c - the storage node's pool of WAL-redo helper processes (redo.h).
 *
 * Each helper is the patched server started as `postgres --wal-redo`
 * (src/walredo.c), talking the framed pipe protocol of PROTOCOL.md 12 on
 * its stdin and stdout; its stderr is the node's, so its log lines land in
 * the node log.  A request takes a free helper (waiting at most the request
 * timeout for one), writes BEGIN, PUSH_PAGE, APPLY... and GET_PAGE in one
 * go and reads the one answer: a rebuild is a single round trip.
 *
 * A helper that exits, answers garbage or misses the deadline is killed and
 * reaped; its slot starts a fresh one for the next request.  The node never
 * sees a page from a helper that failed: only a PAGE answer to GET_PAGE is
 * a page.  Writes to a dead helper must not raise SIGPIPE in the node, so
 * the writing thread blocks it and discards a pending one; every descriptor
 * the pool opens is close-on-exec, and a helper inherits only its pipes and
 * stderr.
 */
#define _GNU_SOURCE

#include "redo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "byteorder.h"
#include "log.h"
#include "util.h"

extern char **environ;

/* Pipe protocol (PROTOCOL.md 12); keep in step with src/walredo.c */
#define REDO_PROTOCOL_VERSION	1
#define REDO_PG_MAJOR			15
#define REDO_XLOG_PAGE_MAGIC	0xD110	/* PostgreSQL 15's WAL format */

#define MSG_BEGIN		'B'
#define MSG_PUSH_PAGE	'P'
#define MSG_APPLY		'A'
#define MSG_GET_PAGE	'G'
#define MSG_MASK		'M'
#define MSG_HELLO		'H'
#define MSG_PAGE		'p'
#define MSG_ERROR		'E'
#define MSG_EXIT		'X'

#define FRAME_HEADER_SIZE	5
#define HELLO_BODY_SIZE		16
#define MAX_TEXT_BODY		65536	/* longest ERROR/EXIT text accepted */

/* Time a new helper gets to say hello (it sets up its memory first). */
#define HELLO_TIMEOUT_MS	10000

typedef struct redo_helper
{
	pid_t		pid;			/* 0: not running */
	int			to_fd;			/* its stdin */
	int			from_fd;		/* its stdout */
	bool		busy;
} redo_helper;

struct aurora_redo_pool
{
	char	   *postgres;
	int			n_helpers;
	int			timeout_ms;
	int			nice;
	redo_helper *helpers;

	pthread_mutex_t mu;
	pthread_cond_t free_cv;		/* a helper became free */
	aurora_redo_stats stats;
};

/* Outcome of one exchange with a helper. */
typedef enum
{
	XR_OK,
	XR_ERROR,					/* the helper answered ERROR: request failed, helper fine */
	XR_DEAD,						/* the helper exited, said EXIT, or broke the protocol */
	XR_TIMEOUT
} xresult;

/* ---- helper processes ---------------------------------------------------- */

/* Kill (unless already reaped) and reap the helper of slot h; close its pipes. */
static void
helper_stop(aurora_redo_pool *pool, redo_helper *h, bool reaped)
{
	if (h->to_fd >= 0)
		close(h->to_fd);
	if (h->from_fd >= 0)
		close(h->from_fd);
	h->to_fd = h->from_fd = -1;
	if (h->pid > 0)
	{
		pid_t		pid = h->pid;

		if (!reaped)
		{
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		pthread_mutex_lock(&pool->mu);
		pool->stats.helpers_running--;
		h->pid = 0;
		pthread_mutex_unlock(&pool->mu);
	}
}

/*
 * Read exactly len bytes by the deadline.  Returns XR_OK, XR_TIMEOUT, or
 * XR_DEAD on end of file or a read error (err says which).
 */
static xresult
read_full(int fd, uint8_t *buf, size_t len, int64_t deadline, char *err, size_t errlen)
{
	size_t		got = 0;

	while (got < len)
	{
		int64_t		left = deadline - (int64_t) aurora_monotonic_ms();
		struct pollfd pfd = {.fd = fd,.events = POLLIN};
		ssize_t		n;
		int			rc;

		if (left <= 0)
			return XR_TIMEOUT;
		rc = poll(&pfd, 1, (int) left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
		{
			aurora_seterr(err, errlen, "poll on the WAL-redo helper's pipe: %s", strerror(errno));
			return XR_DEAD;
		}
		if (rc == 0)
			continue;			/* re-check the deadline */
		n = read(fd, buf + got, len - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
		{
			aurora_seterr(err, errlen, "reading from the WAL-redo helper: %s", strerror(errno));
			return XR_DEAD;
		}
		if (n == 0)
		{
			aurora_seterr(err, errlen, "the WAL-redo helper exited%s",
				   got > 0 ? " in the middle of an answer" : "");
			return XR_DEAD;
		}
		got += (size_t) n;
	}
	return XR_OK;
}

/*
 * Write iov[0..n) by the deadline, without SIGPIPE: the thread blocks it and
 * swallows the one a write to a dead helper raises.
 */
static xresult
write_full(int fd, struct iovec *iov, int n, int64_t deadline, char *err, size_t errlen)
{
	sigset_t	pipe_set;
	sigset_t	old_set;
	sigset_t	pending;
	bool		was_pending;
	xresult		res = XR_OK;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);

	while (n > 0)
	{
		ssize_t		w;

		if (iov->iov_len == 0)
		{
			iov++;
			n--;
			continue;
		}
		w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
		{
			int64_t		left = deadline - (int64_t) aurora_monotonic_ms();
			struct pollfd pfd = {.fd = fd,.events = POLLOUT};

			if (left <= 0)
			{
				res = XR_TIMEOUT;
				break;
			}
			(void) poll(&pfd, 1, (int) left);
			continue;
		}
		if (w < 0)
		{
			aurora_seterr(err, errlen, "writing to the WAL-redo helper: %s", strerror(errno));
			res = XR_DEAD;
			break;
		}
		while (n > 0 && (size_t) w >= iov->iov_len)
		{
			w -= (ssize_t) iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0)
		{
			iov->iov_base = (uint8_t *) iov->iov_base + w;
			iov->iov_len -= (size_t) w;
		}
	}

	if (!was_pending)
	{
		struct timespec zero = {0, 0};

		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE))
			(void) sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	return res;
}

/*
 * Read one answer frame.  PAGE fills page (when given) and returns XR_OK;
 * ERROR returns XR_ERROR and EXIT XR_DEAD, both with the helper's text in err;
 * anything else is a protocol violation (XR_DEAD).
 */
static xresult
read_answer(redo_helper *h, uint8_t *page, int64_t deadline, char *err, size_t errlen)
{
	uint8_t		hdr[FRAME_HEADER_SIZE];
	uint32_t	len;
	xresult		r;

	r = read_full(h->from_fd, hdr, sizeof(hdr), deadline, err, errlen);
	if (r != XR_OK)
		return r;
	len = aurora_get_le32(hdr + 1);
	if (hdr[0] == MSG_PAGE && len == AURORA_PAGE_SIZE)
	{
		uint8_t		scratch[AURORA_PAGE_SIZE];

		return read_full(h->from_fd, page ? page : scratch, len, deadline, err, errlen);
	}
	if ((hdr[0] == MSG_ERROR || hdr[0] == MSG_EXIT) && len <= MAX_TEXT_BODY)
	{
		char	   *text = malloc(len + 1);

		if (text == NULL)
		{
			aurora_seterr(err, errlen, "out of memory reading the WAL-redo helper's answer");
			return XR_DEAD;
		}
		r = read_full(h->from_fd, (uint8_t *) text, len, deadline, err, errlen);
		if (r == XR_OK)
		{
			text[len] = '\0';
			for (uint32_t i = 0; i < len; i++)
				if (text[i] == '\0' || text[i] == '\n')
					text[i] = ' ';
			aurora_seterr(err, errlen, "%s", text);
			r = hdr[0] == MSG_ERROR ? XR_ERROR : XR_DEAD;
		}
		free(text);
		return r;
	}
	aurora_seterr(err, errlen, "the WAL-redo helper broke the protocol: answer type 0x%02X with a %u-byte body",
		   hdr[0], len);
	return XR_DEAD;
}

/*
 * Start the helper of slot h and check its hello, by deadline (and within
 * HELLO_TIMEOUT_MS).  Returns 0 or -1 (err).
 */
static int
helper_start(aurora_redo_pool *pool, redo_helper *h, int64_t deadline, char *err, size_t errlen)
{
	int64_t		hello_deadline = (int64_t) aurora_monotonic_ms() + HELLO_TIMEOUT_MS;
	int			in_pipe[2];		/* node -> helper stdin */
	int			out_pipe[2];	/* helper stdout -> node */
	posix_spawn_file_actions_t fa;
	char	   *argv[] = {pool->postgres, (char *) "--wal-redo", NULL};
	uint8_t		hello[FRAME_HEADER_SIZE + HELLO_BODY_SIZE];
	pid_t		pid;
	int			rc;
	xresult		r;

	if (pipe2(in_pipe, O_CLOEXEC) != 0)
	{
		aurora_seterr(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(out_pipe, O_CLOEXEC) != 0)
	{
		aurora_seterr(err, errlen, "pipe: %s", strerror(errno));
		close(in_pipe[0]);
		close(in_pipe[1]);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in_pipe[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out_pipe[1], STDOUT_FILENO);
	/* nothing of the node but the pipes and stderr */
	posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
	rc = posix_spawn(&pid, pool->postgres, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in_pipe[0]);
	close(out_pipe[1]);
	if (rc != 0)
	{
		aurora_seterr(err, errlen, "could not start WAL-redo helper %s: %s", pool->postgres, strerror(rc));
		close(in_pipe[1]);
		close(out_pipe[0]);
		return -1;
	}
	/* a background pool's helpers yield the CPU to the node's foreground work */
	if (pool->nice > 0 && setpriority(PRIO_PROCESS, (id_t) pid, pool->nice) != 0)
		aurora_log("WAL-redo helper %d: cannot lower its priority: %s", (int) pid, strerror(errno));
	fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
	fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
	h->to_fd = in_pipe[1];
	h->from_fd = out_pipe[0];
	pthread_mutex_lock(&pool->mu);
	h->pid = pid;
	pool->stats.helper_starts++;
	pool->stats.helpers_running++;
	pthread_mutex_unlock(&pool->mu);

	if (deadline < hello_deadline)
		hello_deadline = deadline;
	r = read_full(h->from_fd, hello, FRAME_HEADER_SIZE, hello_deadline, err, errlen);
	if (r == XR_OK && hello[0] == MSG_EXIT && aurora_get_le32(hello + 1) <= MAX_TEXT_BODY)
	{
		/* it failed to start and says why: reread the frame as an answer */
		char		text[1024];
		uint32_t	len = aurora_get_le32(hello + 1);
		uint8_t    *buf = malloc(len + 1);

		if (buf && read_full(h->from_fd, buf, len, (int64_t) aurora_monotonic_ms() + 1000, err, errlen) == XR_OK)
		{
			buf[len] = '\0';
			snprintf(text, sizeof(text), "%s", (char *) buf);
			aurora_seterr(err, errlen, "WAL-redo helper %s failed to start: %s", pool->postgres, text);
		}
		free(buf);
		helper_stop(pool, h, false);
		return -1;
	}
	if (r == XR_OK)
		r = read_full(h->from_fd, hello + FRAME_HEADER_SIZE, HELLO_BODY_SIZE,
					  hello_deadline, err, errlen);
	if (r == XR_TIMEOUT)
		aurora_seterr(err, errlen, "WAL-redo helper %s did not say hello in time",
			   pool->postgres);
	else if (r == XR_DEAD)
	{
		char		why[256];

		snprintf(why, sizeof(why), "%s", err);
		aurora_seterr(err, errlen, "WAL-redo helper %s did not start (is it the patched server? "
			   "its stderr, in the node log, says why): %s", pool->postgres, why);
	}
	else if (hello[0] != MSG_HELLO || aurora_get_le32(hello + 1) != HELLO_BODY_SIZE)
	{
		aurora_seterr(err, errlen, "WAL-redo helper %s answered something that is not a hello "
			   "(is it the patched server?)", pool->postgres);
		r = XR_DEAD;
	}
	else
	{
		uint32_t	version = aurora_get_le32(hello + 5);
		uint32_t	pg_version = aurora_get_le32(hello + 9);
		uint32_t	blcksz = aurora_get_le32(hello + 13);
		uint32_t	magic = aurora_get_le32(hello + 17);

		if (version != REDO_PROTOCOL_VERSION || pg_version / 10000 != REDO_PG_MAJOR ||
			blcksz != AURORA_PAGE_SIZE || magic != REDO_XLOG_PAGE_MAGIC)
		{
			aurora_seterr(err, errlen, "WAL-redo helper %s does not match: protocol %u, PostgreSQL %u, "
				   "page size %u, WAL magic 0x%04X (want protocol %d, PostgreSQL %d, "
				   "page size %d, WAL magic 0x%04X)",
				   pool->postgres, version, pg_version, blcksz, magic,
				   REDO_PROTOCOL_VERSION, REDO_PG_MAJOR, AURORA_PAGE_SIZE,
				   REDO_XLOG_PAGE_MAGIC);
			r = XR_DEAD;
		}
	}
	if (r != XR_OK)
	{
		helper_stop(pool, h, false);
		return -1;
	}
	return 0;
}

/* ---- pool ----------------------------------------------------------------- */

int
aurora_redo_pool_create(const aurora_redo_config *cfg, aurora_redo_pool **out,
						char *err, size_t errlen)
{
	aurora_redo_pool *pool;

	*out = NULL;
	if (cfg->postgres == NULL || cfg->postgres[0] == '\0')
	{
		aurora_seterr(err, errlen, "no postgres binary configured for WAL redo");
		return -1;
	}
	if (cfg->helpers < 1 || cfg->helpers > 1024)
	{
		aurora_seterr(err, errlen, "WAL-redo helpers must be between 1 and 1024, not %d", cfg->helpers);
		return -1;
	}
	if (cfg->timeout_ms < 1)
	{
		aurora_seterr(err, errlen, "WAL-redo timeout must be positive, not %d ms", cfg->timeout_ms);
		return -1;
	}
	if (access(cfg->postgres, X_OK) != 0)
	{
		aurora_seterr(err, errlen, "WAL-redo helper binary %s: %s", cfg->postgres, strerror(errno));
		return -1;
	}
	pool = calloc(1, sizeof(*pool));
	if (pool == NULL || (pool->postgres = strdup(cfg->postgres)) == NULL ||
		(pool->helpers = calloc((size_t) cfg->helpers, sizeof(redo_helper))) == NULL)
	{
		if (pool)
			free(pool->postgres);
		free(pool);
		aurora_seterr(err, errlen, "out of memory");
		return -1;
	}
	pool->n_helpers = cfg->helpers;
	pool->timeout_ms = cfg->timeout_ms;
	pool->nice = cfg->nice;
	for (int i = 0; i < pool->n_helpers; i++)
		pool->helpers[i].to_fd = pool->helpers[i].from_fd = -1;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->free_cv, NULL);
	*out = pool;
	return 0;
}

/* Take a free helper slot, waiting until deadline; NULL if none came free. */
static redo_helper *
take_helper(aurora_redo_pool *pool, int64_t deadline)
{
	redo_helper *h = NULL;

	pthread_mutex_lock(&pool->mu);
	for (;;)
	{
		int			idle_running = -1;
		int			idle_stopped = -1;

		for (int i = 0; i < pool->n_helpers; i++)
		{
			if (pool->helpers[i].busy)
				continue;
			if (pool->helpers[i].pid > 0 && idle_running < 0)
				idle_running = i;
			else if (pool->helpers[i].pid == 0 && idle_stopped < 0)
				idle_stopped = i;
		}
		/* prefer a running helper: starting one costs a process start */
		if (idle_running >= 0 || idle_stopped >= 0)
		{
			h = &pool->helpers[idle_running >= 0 ? idle_running : idle_stopped];
			h->busy = true;
			break;
		}
		{
			int64_t		left = deadline - (int64_t) aurora_monotonic_ms();
			struct timespec ts;

			if (left <= 0)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			aurora_timespec_add_ms(&ts, (uint64_t) left);
			pthread_cond_timedwait(&pool->free_cv, &pool->mu, &ts);
		}
	}
	pthread_mutex_unlock(&pool->mu);
	return h;
}

static void
release_helper(aurora_redo_pool *pool, redo_helper *h)
{
	pthread_mutex_lock(&pool->mu);
	h->busy = false;
	pthread_cond_signal(&pool->free_cv);
	pthread_mutex_unlock(&pool->mu);
}

/*
 * Send frames (given as iovecs) and read the one answer.  On XR_DEAD and
 * XR_TIMEOUT the helper is stopped.  A write that fails because the helper
 * died still reads what it said before dying (an EXIT frame names the
 * record that killed it).
 */
static xresult
exchange(aurora_redo_pool *pool, redo_helper *h, struct iovec *iov, int n, uint8_t *page,
		 int64_t deadline, char *err, size_t errlen)
{
	xresult		r;

	r = write_full(h->to_fd, iov, n, deadline, err, errlen);
	if (r == XR_OK || r == XR_DEAD)
	{
		char		write_err[256];
		xresult		ar;

		snprintf(write_err, sizeof(write_err), "%s", r == XR_DEAD ? err : "");
		ar = read_answer(h, page, r == XR_OK ? deadline : (int64_t) aurora_monotonic_ms() + 1000, err, errlen);
		if (r == XR_DEAD && ar != XR_DEAD)
		{
			/* it died but answered nothing useful: report the write error */
			aurora_seterr(err, errlen, "%s", write_err);
			ar = XR_DEAD;
		}
		r = ar;
	}
	if (r == XR_TIMEOUT)
		aurora_seterr(err, errlen, "the WAL-redo helper did not answer within %d ms; killed it",
			   pool->timeout_ms);
	if (r == XR_DEAD || r == XR_TIMEOUT)
		helper_stop(pool, h, false);
	return r;
}

static int
xresult_code(xresult r)
{
	switch (r)
	{
		case XR_OK:
			return AURORA_REDO_OK;
		case XR_ERROR:
		case XR_DEAD:
			return AURORA_REDO_FAILED;
		case XR_TIMEOUT:
			return AURORA_REDO_TIMEOUT;
	}
	return AURORA_REDO_FAILED;
}

/* Take a helper, starting it if needed.  Returns AURORA_REDO_* (err). */
static int
acquire(aurora_redo_pool *pool, int64_t deadline, redo_helper **out, char *err, size_t errlen)
{
	redo_helper *h = take_helper(pool, deadline);

	*out = NULL;
	if (h == NULL)
	{
		aurora_seterr(err, errlen, "all %d WAL-redo helpers stayed busy for %d ms",
			   pool->n_helpers, pool->timeout_ms);
		return AURORA_REDO_TIMEOUT;
	}
	/* a helper that died while idle (killed, crashed) is replaced, not used */
	if (h->pid > 0 && waitpid(h->pid, NULL, WNOHANG) == h->pid)
		helper_stop(pool, h, true);
	if (h->pid == 0 && helper_start(pool, h, deadline, err, errlen) != 0)
	{
		release_helper(pool, h);
		return AURORA_REDO_UNAVAILABLE;
	}
	*out = h;
	return AURORA_REDO_OK;
}

int
aurora_redo_get_page(aurora_redo_pool *pool, const aurora_block_ref *block,
					 const uint8_t *base, const aurora_redo_record *recs, int n,
					 uint8_t *page, char *err, size_t errlen)
{
	int64_t		deadline = (int64_t) aurora_monotonic_ms() + pool->timeout_ms;
	redo_helper *h;
	uint8_t		begin[FRAME_HEADER_SIZE + 17];
	uint8_t		push_hdr[FRAME_HEADER_SIZE];
	uint8_t		get[FRAME_HEADER_SIZE];
	uint8_t    *apply_hdrs = NULL;
	struct iovec *iov = NULL;
	int			niov = 0;
	int			rc;
	xresult		r;

	pthread_mutex_lock(&pool->mu);
	pool->stats.requests++;
	pthread_mutex_unlock(&pool->mu);

	for (int i = 0; i < n; i++)
	{
		if (recs[i].wal_len == 0 || recs[i].wal == NULL ||
			(uint64_t) recs[i].wal_len + 16 > UINT32_MAX)
		{
			aurora_seterr(err, errlen, "record %d (at %llX) has no WAL bytes or too many", i,
				   (unsigned long long) recs[i].start_lsn);
			rc = AURORA_REDO_FAILED;
			goto done;
		}
	}

	/* BEGIN [PUSH_PAGE] APPLY* GET_PAGE, all in one write */
	apply_hdrs = malloc((size_t) n * (FRAME_HEADER_SIZE + 16) + 1);
	iov = malloc(((size_t) n * 2 + 4) * sizeof(struct iovec));
	if (apply_hdrs == NULL || iov == NULL)
	{
		aurora_seterr(err, errlen, "out of memory");
		rc = AURORA_REDO_UNAVAILABLE;
		goto done;
	}
	begin[0] = MSG_BEGIN;
	aurora_put_le32(begin + 1, 17);
	aurora_put_le32(begin + 5, block->spc_oid);
	aurora_put_le32(begin + 9, block->db_oid);
	aurora_put_le32(begin + 13, block->rel_number);
	begin[17] = block->fork;
	aurora_put_le32(begin + 18, block->blkno);
	iov[niov++] = (struct iovec) {begin, sizeof(begin)};
	if (base != NULL)
	{
		push_hdr[0] = MSG_PUSH_PAGE;
		aurora_put_le32(push_hdr + 1, AURORA_PAGE_SIZE);
		iov[niov++] = (struct iovec) {push_hdr, sizeof(push_hdr)};
		iov[niov++] = (struct iovec) {(void *) base, AURORA_PAGE_SIZE};
	}
	for (int i = 0; i < n; i++)
	{
		uint8_t    *ah = apply_hdrs + (size_t) i * (FRAME_HEADER_SIZE + 16);

		ah[0] = MSG_APPLY;
		aurora_put_le32(ah + 1, 16 + recs[i].wal_len);
		aurora_put_le64(ah + 5, recs[i].start_lsn);
		aurora_put_le64(ah + 13, recs[i].end_lsn);
		iov[niov++] = (struct iovec) {ah, FRAME_HEADER_SIZE + 16};
		iov[niov++] = (struct iovec) {(void *) recs[i].wal, recs[i].wal_len};
	}
	get[0] = MSG_GET_PAGE;
	aurora_put_le32(get + 1, 0);
	iov[niov++] = (struct iovec) {get, sizeof(get)};

	rc = acquire(pool, deadline, &h, err, errlen);
	if (rc != AURORA_REDO_OK)
		goto done;
	r = exchange(pool, h, iov, niov, page, deadline, err, errlen);
	release_helper(pool, h);
	rc = xresult_code(r);

done:
	free(apply_hdrs);
	free(iov);
	pthread_mutex_lock(&pool->mu);
	if (rc == AURORA_REDO_OK)
		pool->stats.records_applied += (uint64_t) n;
	else
		pool->stats.failures++;
	pthread_mutex_unlock(&pool->mu);
	return rc;
}

int
aurora_redo_mask_page(aurora_redo_pool *pool, uint8_t rmid, uint32_t blkno,
					  const uint8_t *in, uint8_t *out, char *err, size_t errlen)
{
	int64_t		deadline = (int64_t) aurora_monotonic_ms() + pool->timeout_ms;
	redo_helper *h;
	uint8_t		hdr[FRAME_HEADER_SIZE + 5];
	struct iovec iov[2];
	int			rc;

	hdr[0] = MSG_MASK;
	aurora_put_le32(hdr + 1, 5 + AURORA_PAGE_SIZE);
	hdr[5] = rmid;
	aurora_put_le32(hdr + 6, blkno);
	iov[0] = (struct iovec) {hdr, sizeof(hdr)};
	iov[1] = (struct iovec) {(void *) in, AURORA_PAGE_SIZE};

	rc = acquire(pool, deadline, &h, err, errlen);
	if (rc != AURORA_REDO_OK)
		return rc;
	rc = xresult_code(exchange(pool, h, iov, 2, out, deadline, err, errlen));
	release_helper(pool, h);
	return rc;
}

void
aurora_redo_get_stats(aurora_redo_pool *pool, aurora_redo_stats *out)
{
	pthread_mutex_lock(&pool->mu);
	*out = pool->stats;
	pthread_mutex_unlock(&pool->mu);
}

int
aurora_redo_helper_pids(aurora_redo_pool *pool, int *pids, int max)
{
	int			n = 0;

	pthread_mutex_lock(&pool->mu);
	for (int i = 0; i < pool->n_helpers && n < max; i++)
		if (pool->helpers[i].pid > 0)
			pids[n++] = (int) pool->helpers[i].pid;
	pthread_mutex_unlock(&pool->mu);
	return n;
}

void
aurora_redo_pool_destroy(aurora_redo_pool *pool)
{
	if (pool == NULL)
		return;
	for (int i = 0; i < pool->n_helpers; i++)
		helper_stop(pool, &pool->helpers[i], false);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->free_cv);
	free(pool->helpers);
	free(pool->postgres);
	free(pool);
}
