/*
 * pgwriter.c - quorum writes to the six segments of a protection group
 * (pgwriter.h).
 *
 * One connection per member (link.h), kept by a thread of its own that
 * dials, redials after a failure and reads the member's replies.  A batch is
 * written to the six connections by the caller's thread, so it leaves at
 * once without waking any other thread; each reply wakes only its member's
 * thread, which updates that member's SCL under the writer's mutex,
 * recomputes PGCL with the shared quorum arithmetic (quorum.c) and wakes
 * waiters and the on_pgcl callback.  Replies are matched to requests by
 * request_id; a request without a reply in timeout_ms is counted as an
 * error.  A request for a member that is not connected waits, up to
 * timeout_ms, for its thread to connect (NNG's req0 sockets, which this
 * replaced, queued so too): a node that restarts quickly misses nothing.
 *
 * Reopening (pgwriter.h): an EPOCH_NOT_OPEN reply marks its member as
 * needing a truncation; the member's thread, between replies, sends it the
 * TRUNCATE_REQ encoded once at open, through the same in-flight slots as any
 * request (so it times out, fails with the connection and counts in drain
 * like the others), one at a time and spaced after a failure.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "pgwriter.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "link.h"
#include "quorum.h"
#include "util.h"
#include "wire.h"

#define PENDING_MAX		4096	/* batches waiting for quorum (latency only) */
#define SAMPLES_MAX		4096	/* quorum latency samples kept for p50/p99 */
#define ACK_SAMPLES_MAX	1024	/* per segment: LOG_APPEND sent -> its LOG_ACK */
#define RECONNECT_MIN_MS	50	/* first pause before dialing a lost member again */
#define RECONNECT_MAX_MS	1000	/* the pause doubles up to this */
/*
 * A send that the socket does not take within this long means the member
 * stopped reading (its buffers are full): the connection is dropped rather
 * than holding up the caller, whose batch goes to the other members.
 */
#define SEND_TIMEOUT_MS		100
/* longest a member's thread waits before looking for expired requests */
#define REPLY_POLL_MS		1000

typedef struct pending_batch
{
	uint64_t	end_lsn;
	double		sent_ms;
} pending_batch;

/* A request sent to a member and not answered yet. */
typedef struct in_flight
{
	uint64_t	request_id;		/* 0: slot free */
	double		start_ms;
	double		deadline_ms;
	uint8_t    *unsent;			/* the message, while it waits for a connection */
	size_t		unsent_len;
	uint16_t	type;
} in_flight;

/*
 * Whether a member must be sent the history to reopen (under the writer's
 * mutex).  wanted: an EPOCH_NOT_OPEN came after the last TRUNCATE_ACK;
 * given_up: it answered CONFLICT or STALE_EPOCH, which no retry changes.
 */
typedef struct reopen_state
{
	bool		wanted;
	bool		in_flight;
	bool		given_up;
	double		not_before_ms;	/* no attempt before (after a failed one) */
	uint64_t	acked_request;	/* request_id of the last TRUNCATE_ACKed */
} reopen_state;

typedef struct member
{
	struct aurora_pgwriter *w;
	int			index;
	nng_stream_dialer *dialer;
	pthread_t	thread;
	bool		thread_started;
	/*
	 * Held while a message goes out, and while link changes: messages leave
	 * in request order and link stays alive while a sender uses it.  Taken
	 * before the writer's mutex.
	 */
	nng_mtx    *send_mtx;
	aurora_link *link;			/* NULL while not connected; set by the thread */
	/* under the writer's mutex: */
	bool		connected;
	in_flight	requests[AURORA_PGWRITER_MAX_IN_FLIGHT];
	reopen_state reopen;
} member;

struct aurora_pgwriter
{
	aurora_pg_target target;
	int			write_quorum;
	int			timeout_ms;
	member		members[AURORA_PG_COPIES];
	/* target.history points at history; the TRUNCATE_REQ body that reopens */
	aurora_trunc_entry *history;
	uint8_t    *truncate_body;
	size_t		truncate_len;

	nng_mtx    *mtx;
	nng_cv     *cv;
	bool		closing;
	aurora_segment_view seg[AURORA_PG_COPIES];
	uint64_t	pgcl;
	uint64_t	seeded_lsn;		/* highest seed LSN a segment reported */
	uint64_t	batches_sent;
	uint64_t	bytes_sent;
	int			in_flight_total;
	uint64_t	next_request_id;

	uint64_t	sent_end;		/* highest end_lsn sent */
	void		(*on_pgcl) (void *arg, uint64_t pgcl);	/* see aurora_pgwriter_on_pgcl */
	void	   *on_pgcl_arg;

	pending_batch pending[PENDING_MAX];
	int			pending_head;
	int			pending_count;
	double		samples[SAMPLES_MAX];
	double		samples_at[SAMPLES_MAX];	/* monotonic ms of each sample */
	uint64_t	n_samples;
	double		ack_samples[AURORA_PG_COPIES][ACK_SAMPLES_MAX];
	double		ack_samples_at[AURORA_PG_COPIES][ACK_SAMPLES_MAX];
	uint64_t	n_ack_samples[AURORA_PG_COPIES];
};

/* Called with the mutex held after any SCL change. */
static void
recompute_pgcl(aurora_pgwriter *w, double now)
{
	uint64_t	scl[AURORA_PG_COPIES];
	uint64_t	pgcl;
	int			i;

	for (i = 0; i < AURORA_PG_COPIES; i++)
		scl[i] = w->seg[i].scl;
	pgcl = aurora_quorum_kth_highest(scl, AURORA_PG_COPIES, w->write_quorum);
	if (pgcl <= w->pgcl)
		return;
	w->pgcl = pgcl;
	while (w->pending_count > 0 && w->pending[w->pending_head].end_lsn <= pgcl)
	{
		w->samples[w->n_samples % SAMPLES_MAX] = now - w->pending[w->pending_head].sent_ms;
		w->samples_at[w->n_samples % SAMPLES_MAX] = now;
		w->n_samples++;
		w->pending_head = (w->pending_head + 1) % PENDING_MAX;
		w->pending_count--;
	}
	nng_cv_wake(w->cv);
	if (w->on_pgcl != NULL)
		w->on_pgcl(w->on_pgcl_arg, pgcl);
}

void
aurora_pgwriter_on_pgcl(aurora_pgwriter *w, void (*fn) (void *arg, uint64_t pgcl), void *arg)
{
	nng_mtx_lock(w->mtx);
	w->on_pgcl = fn;
	w->on_pgcl_arg = arg;
	nng_mtx_unlock(w->mtx);
}

uint64_t
aurora_pgwriter_pgcl(aurora_pgwriter *w)
{
	uint64_t	pgcl;

	nng_mtx_lock(w->mtx);
	pgcl = w->pgcl;
	nng_mtx_unlock(w->mtx);
	return pgcl;
}

static void
note_error(aurora_segment_view *s, uint32_t code, const char *msg)
{
	s->errors++;
	s->last_error_code = code;
	snprintf(s->last_error, sizeof(s->last_error), "%.*s", (int) sizeof(s->last_error) - 1, msg);
}

/*
 * Member m answered request request_id with EPOCH_NOT_OPEN: it needs the
 * history, unless it was answered before our last TRUNCATE_ACK from it (a
 * request overtaken by the truncation) or nothing can reopen it.  Mutex
 * held; the member's thread sends the TRUNCATE (reopen_if_due).
 */
static void
want_reopen(aurora_pgwriter *w, member *m, uint64_t request_id)
{
	if (w->target.n_history == 0 || m->reopen.given_up || request_id <= m->reopen.acked_request)
		return;
	m->reopen.wanted = true;
}

/* Member m's reply to a TRUNCATE_REQ (h, body); mutex held. */
static int
absorb_truncate_reply(aurora_pgwriter *w, member *m, const aurora_header *h,
					  const uint8_t *body)
{
	aurora_segment_view *s = &w->seg[m->index];
	aurora_truncate_ack ack;

	if (aurora_truncate_ack_decode(body, h->body_len, &ack) != 0)
	{
		note_error(s, AURORA_ERR_MALFORMED, "bad TRUNCATE_ACK body");
		return AURORA_ERR_MALFORMED;
	}
	s->reopened++;
	s->last_error_code = 0;
	s->last_error[0] = '\0';
	m->reopen.wanted = false;
	if (h->request_id > m->reopen.acked_request)
		m->reopen.acked_request = h->request_id;
	/* its SCL is now that of our epoch's log (at most the VDL it was cut to) */
	if (ack.scl > s->scl)
	{
		s->scl = ack.scl;
		recompute_pgcl(w, aurora_monotonic_ms());
	}
	return 0;
}

/*
 * Interpret member m's reply h/body to a request of req_type sent at
 * start_ms (0 and 0: a reply that came after its request had timed out; its
 * news still counts); mutex held.
 */
static int
absorb_reply(aurora_pgwriter *w, member *m, uint16_t req_type, double start_ms,
			 const aurora_header *hp, const uint8_t *body)
{
	int			seg = m->index;
	aurora_segment_view *s = &w->seg[seg];
	aurora_header h = *hp;
	char		text[160];

	if (h.type == AURORA_MSG_ERROR)
	{
		aurora_error_body e;

		if (aurora_error_body_decode(body, h.body_len, &e) != 0)
		{
			e.code = AURORA_ERR_MALFORMED;
			snprintf(e.message, sizeof(e.message), "bad ERROR body");
		}
		if (e.code == AURORA_ERR_STALE_EPOCH)
			s->fenced = true;
		if (e.code == AURORA_ERR_EPOCH_NOT_OPEN)
			want_reopen(w, m, h.request_id);
		else if (req_type == AURORA_MSG_TRUNCATE_REQ &&
				 (e.code == AURORA_ERR_CONFLICT || e.code == AURORA_ERR_STALE_EPOCH))
		{
			/* another cut for our epoch, or a newer writer: final */
			m->reopen.wanted = false;
			m->reopen.given_up = true;
		}
		note_error(s, e.code, e.message);
		return (int) e.code;
	}
	if (h.type == AURORA_MSG_TRUNCATE_ACK)
		return absorb_truncate_reply(w, m, &h, body);
	if (h.type == AURORA_MSG_LOG_ACK)
	{
		aurora_log_ack ack;

		if (aurora_log_ack_decode(body, h.body_len, &ack) != 0)
		{
			note_error(s, AURORA_ERR_MALFORMED, "bad LOG_ACK body");
			return AURORA_ERR_MALFORMED;
		}
		s->acks++;
		s->last_ack_ms = aurora_monotonic_ms();
		s->last_error_code = 0;
		if (start_ms > 0)
		{
			w->ack_samples[seg][w->n_ack_samples[seg] % ACK_SAMPLES_MAX] =
				s->last_ack_ms - start_ms;
			w->ack_samples_at[seg][w->n_ack_samples[seg] % ACK_SAMPLES_MAX] = s->last_ack_ms;
			w->n_ack_samples[seg]++;
		}
		if (ack.scl > s->scl)
		{
			s->scl = ack.scl;
			recompute_pgcl(w, s->last_ack_ms);
		}
		return 0;
	}
	if (h.type == AURORA_MSG_SEGMENT_INFO)
	{
		aurora_segment_info info;

		if (aurora_segment_info_decode(body, h.body_len, &info) != 0)
		{
			note_error(s, AURORA_ERR_MALFORMED, "bad SEGMENT_INFO body");
			return AURORA_ERR_MALFORMED;
		}
		s->last_error_code = 0;
		if (info.seeded_lsn > w->seeded_lsn)
			w->seeded_lsn = info.seeded_lsn;
		/* a newer opener fenced it: an idle writer learns it from its probes */
		if (h.volume_epoch > w->target.volume_epoch)
		{
			s->fenced = true;
			note_error(s, AURORA_ERR_STALE_EPOCH, "the segment is at a newer volume epoch");
			return 0;
		}
		/*
		 * SEGMENT_INFO_REQ is not fenced: a segment that missed the
		 * truncation reports an SCL that may cover its ragged edge, which
		 * is not our log.  Only a segment open at our epoch counts.
		 */
		if (h.volume_epoch != w->target.volume_epoch ||
			info.truncated_epoch != w->target.volume_epoch)
		{
			/*
			 * Not fenced above us and not truncated at our epoch: it missed
			 * the truncation (a CREATE_SEGMENT of a segment that is fenced
			 * but not truncated is answered so, and so is a probe).
			 */
			if (h.volume_epoch <= w->target.volume_epoch &&
				info.truncated_epoch < w->target.volume_epoch)
				want_reopen(w, m, h.request_id);
			return 0;
		}
		if (info.scl > s->scl)
		{
			s->scl = info.scl;
			recompute_pgcl(w, aurora_monotonic_ms());
		}
		return 0;
	}
	snprintf(text, sizeof(text), "unexpected reply type %s", aurora_msg_type_name(h.type));
	note_error(s, AURORA_ERR_MALFORMED, text);
	return AURORA_ERR_MALFORMED;
}

/* The in-flight slot of request_id at member m, or NULL; mutex held. */
static in_flight *
find_request(member *m, uint64_t request_id)
{
	for (int k = 0; k < AURORA_PGWRITER_MAX_IN_FLIGHT; k++)
		if (m->requests[k].request_id == request_id)
			return &m->requests[k];
	return NULL;
}

/* Request f of member m is over (answered, failed or expired); mutex held. */
static void
end_request(aurora_pgwriter *w, member *m, in_flight *f)
{
	if (f->type == AURORA_MSG_TRUNCATE_REQ)
	{
		/* still wanted after it ended: it failed, and the next one waits */
		m->reopen.in_flight = false;
		if (m->reopen.wanted)
			m->reopen.not_before_ms = aurora_monotonic_ms() + AURORA_PGWRITER_REOPEN_RETRY_MS;
	}
	free(f->unsent);
	f->unsent = NULL;
	f->request_id = 0;
	w->seg[m->index].in_flight--;
	w->in_flight_total--;
	nng_cv_wake(w->cv);
}

/*
 * The requests sent to m fail with why (its connection is gone); those still
 * waiting for a connection go on waiting.  Mutex held.
 */
static void
fail_requests(aurora_pgwriter *w, member *m, const char *why)
{
	for (int k = 0; k < AURORA_PGWRITER_MAX_IN_FLIGHT; k++)
		if (m->requests[k].request_id != 0 && m->requests[k].unsent == NULL)
		{
			note_error(&w->seg[m->index], AURORA_ERR_INTERNAL, why);
			end_request(w, m, &m->requests[k]);
		}
}

/*
 * Expire m's requests past their deadline and return how long the thread
 * may wait for a reply before the next one expires; mutex held.
 */
static int
expire_requests(aurora_pgwriter *w, member *m)
{
	double		now = aurora_monotonic_ms();
	double		wait_ms = REPLY_POLL_MS;
	char		why[64];

	for (int k = 0; k < AURORA_PGWRITER_MAX_IN_FLIGHT; k++)
	{
		in_flight  *f = &m->requests[k];

		if (f->request_id == 0)
			continue;
		if (f->deadline_ms <= now)
		{
			if (f->unsent != NULL)
				snprintf(why, sizeof(why), "not connected within %d ms", w->timeout_ms);
			else
				snprintf(why, sizeof(why), "no reply within %d ms", w->timeout_ms);
			note_error(&w->seg[m->index], AURORA_ERR_INTERNAL, why);
			end_request(w, m, f);
		}
		else if (f->deadline_ms - now < wait_ms)
			wait_ms = f->deadline_ms - now;
	}
	return wait_ms < 1 ? 1 : (int) wait_ms;
}

static int	start_request(aurora_pgwriter *w, int i, uint16_t type, const uint8_t *body,
						  size_t body_len);

/*
 * Member m's thread, connected, between replies: send the TRUNCATE that
 * reopens it if it needs one and none is in flight or being waited out.
 * Returns how long the thread may wait before it is due (REPLY_POLL_MS if
 * nothing is pending).  Mutex NOT held.
 */
static int
reopen_if_due(aurora_pgwriter *w, member *m)
{
	double		now = aurora_monotonic_ms();
	int			rv;

	nng_mtx_lock(w->mtx);
	if (w->closing || !m->reopen.wanted || m->reopen.in_flight || m->reopen.given_up ||
		w->seg[m->index].fenced)
	{
		nng_mtx_unlock(w->mtx);
		return REPLY_POLL_MS;
	}
	if (now < m->reopen.not_before_ms)
	{
		double		wait_ms = m->reopen.not_before_ms - now;

		nng_mtx_unlock(w->mtx);
		return wait_ms < 1 ? 1 : (int) wait_ms;
	}
	m->reopen.in_flight = true;
	w->seg[m->index].reopen_attempts++;
	nng_mtx_unlock(w->mtx);

	rv = start_request(w, m->index, AURORA_MSG_TRUNCATE_REQ, w->truncate_body, w->truncate_len);
	if (rv == 1)
	{
		/* every slot is busy: no request was made, try again later */
		nng_mtx_lock(w->mtx);
		m->reopen.in_flight = false;
		m->reopen.not_before_ms = aurora_monotonic_ms() + AURORA_PGWRITER_REOPEN_RETRY_MS;
		nng_mtx_unlock(w->mtx);
	}
	/* an NNG error ended the request already (end_request spaced the next) */
	return REPLY_POLL_MS;
}

/* Read m's replies on link until it fails or the writer closes. */
static void
read_replies(aurora_pgwriter *w, member *m, aurora_link *link)
{
	for (;;)
	{
		const uint8_t *msg;
		const uint8_t *body;
		size_t		len;
		aurora_header h;
		in_flight  *f;
		int			wait_ms;
		int			rv;
		int			rc;

		int			reopen_wait_ms = reopen_if_due(w, m);

		nng_mtx_lock(w->mtx);
		wait_ms = w->closing ? -1 : expire_requests(w, m);
		nng_mtx_unlock(w->mtx);
		if (wait_ms < 0)
			return;
		if (reopen_wait_ms < wait_ms)
			wait_ms = reopen_wait_ms;
		rv = aurora_link_recv(link, AURORA_HEADER_SIZE + AURORA_DEFAULT_MAX_BODY, wait_ms, &msg, &len);
		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0)
			return;

		rc = aurora_decode(msg, len, AURORA_DEFAULT_MAX_BODY, &h, &body);
		nng_mtx_lock(w->mtx);
		if (rc != 0)
		{
			/* its request cannot be told: it times out */
			char		text[160];

			snprintf(text, sizeof(text), "undecodable reply: %s", aurora_error_name((uint32_t) rc));
			note_error(&w->seg[m->index], (uint32_t) rc, text);
		}
		else if ((f = find_request(m, h.request_id)) != NULL)
		{
			(void) absorb_reply(w, m, f->type, f->start_ms, &h, body);
			end_request(w, m, f);
		}
		else
			(void) absorb_reply(w, m, 0, 0, &h, body);
		nng_mtx_unlock(w->mtx);
	}
}

/* Sleep ms, or less if the writer closes; true if it closes. */
static bool
pause_unless_closing(aurora_pgwriter *w, int ms)
{
	nng_time	until = nng_clock() + (nng_time) ms;
	bool		closing;

	nng_mtx_lock(w->mtx);
	while (!w->closing && nng_cv_until(w->cv, until) != NNG_ETIMEDOUT)
		;
	closing = w->closing;
	nng_mtx_unlock(w->mtx);
	return closing;
}

/* A message of type and n bytes went out to member i; mutex held. */
static void
count_sent(aurora_pgwriter *w, int i, uint16_t type, size_t n)
{
	w->bytes_sent += n;
	w->seg[i].bytes_sent += n;
	if (type == AURORA_MSG_LOG_APPEND)
		w->seg[i].batches_sent++;
}

/*
 * Send m's requests that waited for a connection, in request order, on the
 * new link; send_mtx held.  One that cannot be sent fails.
 */
static void
send_waiting(aurora_pgwriter *w, member *m, aurora_link *link)
{
	for (;;)
	{
		in_flight  *next = NULL;
		in_flight  *f;
		uint8_t    *msg;
		size_t		len;
		uint64_t	request_id;
		int			rv;

		nng_mtx_lock(w->mtx);
		for (int k = 0; k < AURORA_PGWRITER_MAX_IN_FLIGHT; k++)
		{
			in_flight  *f = &m->requests[k];

			if (f->request_id != 0 && f->unsent != NULL &&
				(next == NULL || f->request_id < next->request_id))
				next = f;
		}
		if (next == NULL)
		{
			nng_mtx_unlock(w->mtx);
			return;
		}
		msg = next->unsent;
		len = next->unsent_len;
		request_id = next->request_id;
		next->unsent = NULL;	/* ours now, and it counts as sent */
		nng_mtx_unlock(w->mtx);

		rv = aurora_link_send(link, msg, len, SEND_TIMEOUT_MS);
		free(msg);
		nng_mtx_lock(w->mtx);
		if ((f = find_request(m, request_id)) != NULL)
		{
			if (rv == 0)
				count_sent(w, m->index, f->type, len);
			else
			{
				note_error(&w->seg[m->index], AURORA_ERR_INTERNAL, nng_strerror(rv));
				end_request(w, m, f);
			}
		}
		nng_mtx_unlock(w->mtx);
	}
}

/* A member's thread: keep a connection to it and read its replies. */
static void *
member_main(void *arg)
{
	member	   *m = arg;
	aurora_pgwriter *w = m->w;
	int			backoff = RECONNECT_MIN_MS;

	for (;;)
	{
		aurora_link *link;
		bool		closing;

		nng_mtx_lock(w->mtx);
		closing = w->closing;
		/* requests waiting for the connection time out like the others */
		(void) expire_requests(w, m);
		nng_mtx_unlock(w->mtx);
		if (closing)
			break;

		if (aurora_link_dial(m->dialer, w->timeout_ms, false, &link) != 0)
		{
			if (pause_unless_closing(w, backoff))
				break;
			backoff = backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : backoff * 2;
			continue;
		}
		backoff = RECONNECT_MIN_MS;
		nng_mtx_lock(m->send_mtx);
		send_waiting(w, m, link);
		m->link = link;
		nng_mtx_unlock(m->send_mtx);
		nng_mtx_lock(w->mtx);
		m->connected = true;
		nng_cv_wake(w->cv);
		nng_mtx_unlock(w->mtx);

		read_replies(w, m, link);

		nng_mtx_lock(m->send_mtx);
		m->link = NULL;
		nng_mtx_unlock(m->send_mtx);
		aurora_link_free(link);
		nng_mtx_lock(w->mtx);
		m->connected = false;
		fail_requests(w, m, "connection lost");
		nng_mtx_unlock(w->mtx);
	}
	/* closing: what still waits for a connection is dropped */
	nng_mtx_lock(w->mtx);
	for (int k = 0; k < AURORA_PGWRITER_MAX_IN_FLIGHT; k++)
		if (m->requests[k].request_id != 0)
			end_request(w, m, &m->requests[k]);
	nng_mtx_unlock(w->mtx);
	return NULL;
}

/*
 * Send one request to member i, or keep it until the member's thread has a
 * connection.  Mutex NOT held.  Returns 0, or 1 when
 * the member has too many requests outstanding (nothing sent or counted),
 * or an NNG error (counted as the member's error).
 */
static int
start_request(aurora_pgwriter *w, int i, uint16_t type, const uint8_t *body, size_t body_len)
{
	member	   *m = &w->members[i];
	in_flight  *f;
	uint8_t    *msg;
	aurora_header h;
	uint64_t	request_id;
	size_t		n;
	int			rv = 0;

	if ((msg = malloc(AURORA_HEADER_SIZE + body_len)) == NULL)
		return NNG_ENOMEM;
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.volume_id = w->target.volume_id;
	h.pg_id = w->target.pg_id;
	h.volume_epoch = w->target.volume_epoch;
	h.membership_epoch = w->target.membership_epoch;

	nng_mtx_lock(m->send_mtx);
	nng_mtx_lock(w->mtx);
	if ((f = find_request(m, 0)) == NULL)
	{
		nng_mtx_unlock(w->mtx);
		nng_mtx_unlock(m->send_mtx);
		free(msg);
		return 1;
	}
	request_id = h.request_id = ++w->next_request_id;
	n = aurora_encode(&h, body, body_len, msg, AURORA_HEADER_SIZE + body_len);
	f->request_id = request_id;
	f->start_ms = aurora_monotonic_ms();
	f->deadline_ms = f->start_ms + w->timeout_ms;
	f->type = type;
	w->seg[i].in_flight++;
	w->in_flight_total++;
	if (m->link == NULL)
	{
		f->unsent = msg;
		f->unsent_len = n;
		msg = NULL;
	}
	nng_mtx_unlock(w->mtx);
	if (msg != NULL)
		rv = aurora_link_send(m->link, msg, n, SEND_TIMEOUT_MS);
	nng_mtx_unlock(m->send_mtx);

	if (msg != NULL && rv == 0)
	{
		nng_mtx_lock(w->mtx);
		count_sent(w, i, type, n);
		nng_mtx_unlock(w->mtx);
	}
	free(msg);
	if (rv != 0)
	{
		/* the link is shut down: its thread fails what was sent and redials */
		nng_mtx_lock(w->mtx);
		if ((f = find_request(m, request_id)) != NULL)
		{
			note_error(&w->seg[i], AURORA_ERR_INTERNAL, nng_strerror(rv));
			end_request(w, m, f);
		}
		nng_mtx_unlock(w->mtx);
	}
	return rv;
}

int
aurora_pgwriter_open(const aurora_pg_target *t, int write_quorum, int timeout_ms,
					 aurora_pgwriter **out, char *err, size_t errlen)
{
	aurora_pgwriter *w;
	sigset_t	all,
				old;
	nng_time	deadline;
	int			i,
				rv;

	*out = NULL;
	if (t->n_history < 0 || (t->n_history > 0 && t->history == NULL))
	{
		snprintf(err, errlen, "a truncation history of %d entries needs the entries", t->n_history);
		return -1;
	}
	if (t->n_history > 0)
	{
		char		why[200];

		if (!aurora_trunc_history_check(t->history, t->n_history, why, sizeof(why)))
		{
			snprintf(err, errlen, "invalid truncation history: %s", why);
			return -1;
		}
		if (t->history[t->n_history - 1].epoch != t->volume_epoch)
		{
			snprintf(err, errlen, "the truncation history ends at epoch %llu, not at the "
					 "writer's volume epoch %llu",
					 (unsigned long long) t->history[t->n_history - 1].epoch,
					 (unsigned long long) t->volume_epoch);
			return -1;
		}
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w->target = *t;
	w->target.history = NULL;
	if (t->n_history > 0)
	{
		size_t		raw_len = (size_t) t->n_history * AURORA_TRUNC_ENTRY_SIZE;
		uint8_t    *raw = malloc(raw_len);
		aurora_trunc_list l;

		w->history = malloc((size_t) t->n_history * sizeof(*w->history));
		w->truncate_body = malloc(2 + raw_len);
		if (raw == NULL || w->history == NULL || w->truncate_body == NULL)
		{
			free(raw);
			snprintf(err, errlen, "out of memory");
			aurora_pgwriter_close(w);
			return -1;
		}
		memcpy(w->history, t->history, (size_t) t->n_history * sizeof(*w->history));
		w->target.history = w->history;
		aurora_trunc_list_fill(&l, w->history, t->n_history, raw);
		w->truncate_len = aurora_truncate_req_encode(&l, w->truncate_body, 2 + raw_len);
		free(raw);
	}
	w->write_quorum = write_quorum;
	w->timeout_ms = timeout_ms;
	w->pgcl = t->base_lsn;
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		w->seg[i].scl = t->base_lsn;
		w->members[i].w = w;
		w->members[i].index = i;
	}
	if ((rv = nng_mtx_alloc(&w->mtx)) != 0 || (rv = nng_cv_alloc(&w->cv, w->mtx)) != 0)
	{
		snprintf(err, errlen, "cannot allocate a mutex: %s", nng_strerror(rv));
		aurora_pgwriter_close(w);
		return -1;
	}
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		member	   *m = &w->members[i];

		if ((rv = nng_mtx_alloc(&m->send_mtx)) != 0)
		{
			snprintf(err, errlen, "cannot allocate a mutex: %s", nng_strerror(rv));
			aurora_pgwriter_close(w);
			return -1;
		}
		if (aurora_dialer_open(t->members[i].url, &m->dialer, err, errlen) != 0)
		{
			aurora_pgwriter_close(w);
			return -1;
		}
	}
	/* the threads are ours: no signal handler of the caller may run on them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < AURORA_PG_COPIES; i++)
		w->members[i].thread_started =
			pthread_create(&w->members[i].thread, NULL, member_main, &w->members[i]) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (i = 0; i < AURORA_PG_COPIES; i++)
		if (!w->members[i].thread_started)
		{
			snprintf(err, errlen, "cannot start a thread for member %d", i);
			aurora_pgwriter_close(w);
			return -1;
		}

	/* give the members a moment to connect, so the first batch reaches them */
	deadline = nng_clock() + (nng_time) timeout_ms;
	nng_mtx_lock(w->mtx);
	for (;;)
	{
		int			connected = 0;

		for (i = 0; i < AURORA_PG_COPIES; i++)
			connected += w->members[i].connected;
		if (connected == AURORA_PG_COPIES || nng_cv_until(w->cv, deadline) == NNG_ETIMEDOUT)
			break;
	}
	nng_mtx_unlock(w->mtx);
	*out = w;
	return 0;
}

void
aurora_pgwriter_close(aurora_pgwriter *w)
{
	int			i;

	if (w == NULL)
		return;
	if (w->mtx != NULL)
	{
		nng_mtx_lock(w->mtx);
		w->closing = true;
		nng_cv_wake(w->cv);
		nng_mtx_unlock(w->mtx);
	}
	/* end what each member's thread waits in: a dial, a receive or a pause */
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		member	   *m = &w->members[i];

		if (m->dialer != NULL)
			nng_stream_dialer_close(m->dialer);
		if (m->send_mtx != NULL)
		{
			nng_mtx_lock(m->send_mtx);
			aurora_link_shutdown(m->link);
			nng_mtx_unlock(m->send_mtx);
		}
	}
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		member	   *m = &w->members[i];

		if (m->thread_started)
			pthread_join(m->thread, NULL);
		if (m->dialer != NULL)
			nng_stream_dialer_free(m->dialer);
		if (m->send_mtx != NULL)
			nng_mtx_free(m->send_mtx);
	}
	if (w->cv)
		nng_cv_free(w->cv);
	if (w->mtx)
		nng_mtx_free(w->mtx);
	free(w->history);
	free(w->truncate_body);
	free(w);
}

int
aurora_pgwriter_probe(aurora_pgwriter *w, bool all)
{
	bool		ask[AURORA_PG_COPIES];
	int			i,
				asked = 0;

	nng_mtx_lock(w->mtx);
	for (i = 0; i < AURORA_PG_COPIES; i++)
		ask[i] = w->seg[i].in_flight == 0 && (all || w->seg[i].scl < w->sent_end);
	nng_mtx_unlock(w->mtx);
	for (i = 0; i < AURORA_PG_COPIES; i++)
		if (ask[i] && start_request(w, i, AURORA_MSG_SEGMENT_INFO_REQ, NULL, 0) == 0)
			asked++;
	return asked;
}

int
aurora_pgwriter_create_segments(aurora_pgwriter *w, char *err, size_t errlen)
{
	int			i,
				ok = 0;
	uint64_t	errors_before[AURORA_PG_COPIES];
	uint64_t	reopened_before[AURORA_PG_COPIES];
	nng_time	deadline = nng_clock() + (nng_time) (w->timeout_ms + 1000);

	nng_mtx_lock(w->mtx);
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		errors_before[i] = w->seg[i].errors;
		reopened_before[i] = w->seg[i].reopened;
	}
	nng_mtx_unlock(w->mtx);

	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		aurora_create_segment c;
		uint8_t		body[2048];
		size_t		n;

		memset(&c, 0, sizeof(c));
		c.replica_index = (uint32_t) i;
		c.base_lsn = w->target.base_lsn;
		c.n_pgs = w->target.n_pgs;
		c.blocks_per_segment = w->target.blocks_per_segment;
		memcpy(c.members, w->target.members, sizeof(c.members));
		n = aurora_create_segment_encode(&c, body, sizeof(body));
		if (n == 0)
		{
			snprintf(err, errlen, "cannot encode CREATE_SEGMENT (member names too long?)");
			return 0;
		}
		if (start_request(w, i, AURORA_MSG_CREATE_SEGMENT, body, n) != 0)
		{
			nng_mtx_lock(w->mtx);
			note_error(&w->seg[i], AURORA_ERR_INTERNAL, "cannot send CREATE_SEGMENT");
			nng_mtx_unlock(w->mtx);
		}
	}
	aurora_pgwriter_drain(w, w->timeout_ms + 1000);

	/*
	 * A member that answered EPOCH_NOT_OPEN holds the segment but missed
	 * the truncation: its thread reopens it, which we wait for, within the
	 * same bound (a failed attempt's retry included).
	 */
	nng_mtx_lock(w->mtx);
	for (;;)
	{
		bool		pending = w->in_flight_total > 0;

		for (i = 0; i < AURORA_PG_COPIES; i++)
			if (w->members[i].reopen.wanted && !w->members[i].reopen.given_up && !w->seg[i].fenced)
				pending = true;
		if (!pending || nng_cv_until(w->cv, deadline) == NNG_ETIMEDOUT)
			break;
	}
	for (i = 0; i < AURORA_PG_COPIES; i++)
		if (w->seg[i].reopened > reopened_before[i] ||
			(w->seg[i].errors == errors_before[i] && !w->members[i].reopen.wanted))
			ok++;
	nng_mtx_unlock(w->mtx);
	if (ok < AURORA_PG_COPIES)
		snprintf(err, errlen, "%d of %d segments created", ok, AURORA_PG_COPIES);
	return ok;
}

int
aurora_pgwriter_append(aurora_pgwriter *w, const aurora_log_record *recs, int n,
					   char *err, size_t errlen)
{
	return aurora_pgwriter_append_to(w, recs, n, AURORA_PGWRITER_ALL_MEMBERS, err, errlen);
}

int
aurora_pgwriter_append_to(aurora_pgwriter *w, const aurora_log_record *recs, int n,
						  unsigned member_mask, char *err, size_t errlen)
{
	size_t		size = aurora_records_encoded_size(recs, n);
	uint8_t    *body;
	int			i,
				rv,
				sent = 0;
	bool		skip[AURORA_PG_COPIES];

	if (n <= 0)
		return 0;
	if (size > AURORA_DEFAULT_MAX_BODY)
	{
		snprintf(err, errlen, "batch of %d records is %zu bytes, over the %u-byte message limit",
				 n, size, (unsigned) AURORA_DEFAULT_MAX_BODY);
		return -1;
	}
	body = malloc(size);
	if (body == NULL || aurora_log_append_encode(recs, n, body, size) != size)
	{
		free(body);
		snprintf(err, errlen, "cannot encode the batch");
		return -1;
	}

	nng_mtx_lock(w->mtx);
	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		skip[i] = (member_mask & (1u << i)) == 0 ||
			w->seg[i].in_flight >= AURORA_PGWRITER_MAX_IN_FLIGHT;
		if (skip[i])
			w->seg[i].skipped++;
	}
	if (w->pending_count < PENDING_MAX)
	{
		int			slot = (w->pending_head + w->pending_count) % PENDING_MAX;

		w->pending[slot].end_lsn = recs[n - 1].end_lsn;
		w->pending[slot].sent_ms = aurora_monotonic_ms();
		w->pending_count++;
	}
	w->batches_sent++;
	if (recs[n - 1].end_lsn > w->sent_end)
		w->sent_end = recs[n - 1].end_lsn;
	nng_mtx_unlock(w->mtx);

	for (i = 0; i < AURORA_PG_COPIES; i++)
	{
		if (skip[i])
			continue;
		rv = start_request(w, i, AURORA_MSG_LOG_APPEND, body, size);
		nng_mtx_lock(w->mtx);
		if (rv == 0)
		{
			w->seg[i].records_sent += (uint64_t) n;
			sent++;
		}
		else if (rv == 1)
			w->seg[i].skipped++;	/* filled up since the check above */
		nng_mtx_unlock(w->mtx);
	}
	free(body);
	if (sent == 0)
	{
		snprintf(err, errlen, "the batch could not be sent to any segment");
		return -1;
	}
	return 0;
}

bool
aurora_pgwriter_wait_pgcl(aurora_pgwriter *w, uint64_t lsn, int timeout_ms)
{
	nng_time	deadline = nng_clock() + (nng_time) timeout_ms;
	bool		reached;

	nng_mtx_lock(w->mtx);
	while (w->pgcl < lsn)
	{
		if (nng_cv_until(w->cv, deadline) == NNG_ETIMEDOUT)
			break;
	}
	reached = w->pgcl >= lsn;
	nng_mtx_unlock(w->mtx);
	return reached;
}

bool
aurora_pgwriter_drain(aurora_pgwriter *w, int timeout_ms)
{
	nng_time	deadline = nng_clock() + (nng_time) timeout_ms;
	bool		drained;

	nng_mtx_lock(w->mtx);
	while (w->in_flight_total > 0)
	{
		if (nng_cv_until(w->cv, deadline) == NNG_ETIMEDOUT)
			break;
	}
	drained = w->in_flight_total == 0;
	nng_mtx_unlock(w->mtx);
	return drained;
}

int
aurora_pgwriter_ack_latencies(aurora_pgwriter *w, int seg, double max_age_ms,
							  double *out, int cap)
{
	int			kept;
	int			n = 0;
	double		now = aurora_monotonic_ms();

	if (seg < 0 || seg >= AURORA_PG_COPIES || cap <= 0)
		return 0;
	nng_mtx_lock(w->mtx);
	kept = w->n_ack_samples[seg] < ACK_SAMPLES_MAX ? (int) w->n_ack_samples[seg] : ACK_SAMPLES_MAX;
	/* ring order does not matter: the caller takes percentiles */
	for (int i = 0; i < kept && n < cap; i++)
		if (max_age_ms <= 0 || now - w->ack_samples_at[seg][i] <= max_age_ms)
			out[n++] = w->ack_samples[seg][i];
	nng_mtx_unlock(w->mtx);
	return n;
}

void
aurora_pgwriter_view_get(aurora_pgwriter *w, aurora_pgwriter_view *out)
{
	memset(out, 0, sizeof(*out));
	nng_mtx_lock(w->mtx);
	memcpy(out->seg, w->seg, sizeof(out->seg));
	out->pgcl = w->pgcl;
	out->seeded_lsn = w->seeded_lsn;
	out->batches_sent = w->batches_sent;
	out->bytes_sent = w->bytes_sent;
	out->sent_end = w->sent_end;
	out->latency_samples = w->n_samples;
	nng_mtx_unlock(w->mtx);
}

uint64_t
aurora_pgwriter_quorum_latency(aurora_pgwriter *w, double max_age_ms,
							   double *p50_ms, double *p99_ms)
{
	double	   *sorted = malloc(SAMPLES_MAX * sizeof(double));
	uint64_t	kept;
	uint64_t	n = 0;
	double		now = aurora_monotonic_ms();

	if (sorted == NULL)
		return 0;
	nng_mtx_lock(w->mtx);
	kept = w->n_samples < SAMPLES_MAX ? w->n_samples : SAMPLES_MAX;
	for (uint64_t i = 0; i < kept; i++)
		if (max_age_ms <= 0 || now - w->samples_at[i] <= max_age_ms)
			sorted[n++] = w->samples[i];
	nng_mtx_unlock(w->mtx);
	aurora_p50_p99(sorted, (size_t) n, p50_ms, p99_ms);
	free(sorted);
	return n;
}
