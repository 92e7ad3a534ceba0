/*
 * handler_page.c - the page requests of the request handler (handler.h):
 * GETPAGE, REL_SIZE and SEED_PAGES are checked on the connection's thread
 * (segment, fencing) and deferred with a copy of the message; a page
 * thread of the server then answers them here through the page service
 * (pageservice.h), because they may wait for the log and run redo.
 */
#define _POSIX_C_SOURCE 200809L

#include "handler.h"
#include "handler_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pagemsg.h"
#include "pageservice.h"
#include "segment.h"
#include "util.h"

/*
 * Page requests are checked here (segment, fencing) and then deferred to a
 * page thread with a copy of the message: they may wait and run redo.
 * All three are fenced and need a segment open for its epoch, like
 * LOG_APPEND: a segment fenced by a new compute but not yet truncated may
 * still hold the ragged edge, and must not serve pages built from it.
 */
bool
handler_defer_page_request(aurora_handler *h, const aurora_header *req, const uint8_t *msg, size_t len,
				   aurora_reply *out, aurora_deferred_ack *d)
{
	struct aurora_segment *seg;

	if ((seg = handler_find_segment(h, req, out)) == NULL)
		return false;
	if (h->pages == NULL)
	{
		handler_error_reply(h, req, AURORA_ERR_UNAVAILABLE, "this node runs no page service", out);
		return false;
	}
	if (!handler_check_epochs(h, req, seg, true, out))
		return false;
	memset(d, 0, sizeof(*d));
	d->kind = AURORA_DEFERRED_PAGE;
	d->req = *req;
	d->segment = seg;
	d->request = malloc(len);
	if (d->request == NULL)
	{
		handler_error_reply(h, req, AURORA_ERR_INTERNAL, "out of memory for a page request", out);
		return false;
	}
	memcpy(d->request, msg, len);
	d->request_len = len;
	return true;
}

/* Run a page request; no_wait: as if its wait_ms were 0 (already waited). */
static void
finish_page(aurora_handler *h, aurora_deferred_ack *d, bool no_wait, aurora_reply *out)
{
	const aurora_header *req = &d->req;
	const uint8_t *body = d->request + AURORA_HEADER_SIZE;
	aurora_page_result res;
	aurora_segment_stats st;
	aurora_header rep;

	memset(&res, 0, sizeof(res));
	if (req->type == AURORA_MSG_GETPAGE_REQ)
	{
		aurora_getpage_req g;

		if (aurora_getpage_req_decode(body, req->body_len, &g) != 0)
		{
			res.code = AURORA_ERR_MALFORMED;
			snprintf(res.message, sizeof(res.message), "GETPAGE_REQ body does not decode");
		}
		else
		{
			if (no_wait)
				g.wait_ms = 0;
			aurora_pageservice_getpage(h->pages, d->segment, &g, &res);
		}
	}
	else if (req->type == AURORA_MSG_REL_SIZE_REQ)
	{
		aurora_rel_size_req r;

		if (aurora_rel_size_req_decode(body, req->body_len, &r) != 0)
		{
			res.code = AURORA_ERR_MALFORMED;
			snprintf(res.message, sizeof(res.message), "REL_SIZE_REQ body does not decode");
		}
		else
		{
			if (no_wait)
				r.wait_ms = 0;
			aurora_pageservice_rel_size(h->pages, d->segment, &r, &res);
		}
	}
	else
	{
		aurora_seed_page *pages;
		uint64_t	lsn;
		int			n;
		int			rc = aurora_seed_pages_decode(body, req->body_len, &lsn, &pages, &n);

		if (rc != 0)
		{
			res.code = (uint32_t) rc;
			snprintf(res.message, sizeof(res.message), "SEED_PAGES body does not decode");
		}
		else
		{
			aurora_pageservice_seed(h->pages, d->segment, lsn, pages, n, &res);
			free(pages);
		}
	}
	if (res.code != 0)
		handler_error_reply(h, req, res.code, res.message, out);
	else
	{
		aurora_segment_get_stats(d->segment, &st);
		handler_reply_header(req, res.type, &rep);
		rep.volume_epoch = st.volume_epoch;
		rep.membership_epoch = st.membership_epoch;
		handler_make_reply(&rep, res.body, res.len, out);
	}
	free(res.body);
	free(d->request);
	d->request = NULL;
}

bool
aurora_handler_try_page(aurora_handler *h, aurora_deferred_ack *d, aurora_reply *out)
{
	const aurora_header *req = &d->req;
	const uint8_t *body = d->request + AURORA_HEADER_SIZE;
	aurora_page_result res;
	uint64_t	lsn;
	uint32_t	wait_ms;
	uint32_t	rc;
	uint64_t	now = (uint64_t) aurora_monotonic_ms();
	aurora_block_ref key;		/* what it reads: a block, or a fork's size */
	bool		whole_fork = false;

	memset(&key, 0, sizeof(key));
	if (req->type == AURORA_MSG_GETPAGE_REQ)
	{
		aurora_getpage_req g;

		if (aurora_getpage_req_decode(body, req->body_len, &g) != 0)
			goto run;
		lsn = g.lsn;
		wait_ms = g.wait_ms;
		key = g.block;
	}
	else if (req->type == AURORA_MSG_REL_SIZE_REQ)
	{
		aurora_rel_size_req r;

		if (aurora_rel_size_req_decode(body, req->body_len, &r) != 0)
			goto run;
		lsn = r.lsn;
		wait_ms = r.wait_ms;
		key.spc_oid = r.spc_oid;
		key.db_oid = r.db_oid;
		key.rel_number = r.rel_number;
		key.fork = r.fork;
		whole_fork = true;
	}
	else
		goto run;				/* SEED_PAGES does not wait */
	if (!d->page_started)
	{
		d->page_started = true;
		d->page_deadline_ms = now + (wait_ms < AURORA_PAGE_WAIT_MAX_MS ? wait_ms : AURORA_PAGE_WAIT_MAX_MS);
	}
	rc = aurora_pageservice_ready(h->pages, d->segment, lsn, &key, whole_fork, &res);
	if (rc == AURORA_PAGE_WAIT && now < d->page_deadline_ms)
		return false;
run:
	/* ready, failed or out of time: the request answers at once */
	finish_page(h, d, true, out);
	return true;
}

void
aurora_handler_finish_page(aurora_handler *h, aurora_deferred_ack *d, aurora_reply *out)
{
	finish_page(h, d, false, out);
}

void
aurora_handler_refuse_page(aurora_handler *h, aurora_deferred_ack *d, const char *why,
						   aurora_reply *out)
{
	handler_error_reply(h, &d->req, AURORA_ERR_UNAVAILABLE, why, out);
	free(d->request);
	d->request = NULL;
}
