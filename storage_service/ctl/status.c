/*
 * status.c - the status table of aurora-ctl (status.h).
 *
 * Columns: NODE AZ URL STATE UPTIME REQUESTS ERRORS RTT_MS.  A node that
 * cannot be reached shows STATE "unreachable" and "-" elsewhere; a node that
 * answers with an error shows "error: ..." so an operator sees why.
 */
#include "status.h"

#include <stdlib.h>
#include <string.h>

#include "client.h"

#define N_COLS 17

static const char *const col_names[N_COLS] = {
	"NODE", "AZ", "URL", "STATE", "UPTIME", "REQUESTS", "ERRORS", "RTT_MS",
	/* page service: helpers configured, coalesce threshold, work done since start */
	"REDO", "COALESCE", "INDEXED", "GETPAGES", "IMAGES", "APPLIED", "REDO_FAILS",
	/* background work not done yet: log bytes to index, blocks to look at */
	"INDEX_LAG", "COALESCE_LAG"
};

/* Right-align the numeric columns so magnitudes line up. */
static const int col_right[N_COLS] = {0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1};

static void
format_uptime(unsigned long long ms, char *out, size_t cap)
{
	unsigned long long s = ms / 1000;

	if (s < 60)
		snprintf(out, cap, "%llu.%llus", s, (ms % 1000) / 100);
	else if (s < 3600)
		snprintf(out, cap, "%llum%02llus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, cap, "%lluh%02llum", s / 3600, (s % 3600) / 60);
	else
		snprintf(out, cap, "%llud%02lluh", s / 86400, (s % 86400) / 3600);
}

int
ctl_status(FILE *out, const char *const *urls, const char *const *expected_ids,
		   int n, int timeout_ms)
{
	aurora_status_result *res;
	char	   (*cells)[N_COLS][200];
	size_t		width[N_COLS];
	int			rc = 0;
	int			i;
	int			c;

	res = calloc((size_t) n, sizeof(*res));
	cells = calloc((size_t) n, sizeof(*cells));
	if (res == NULL || cells == NULL)
	{
		fprintf(stderr, "aurora-ctl: out of memory\n");
		free(res);
		free(cells);
		return 1;
	}
	aurora_status_many(urls, n, timeout_ms, res);

	for (i = 0; i < n; i++)
	{
		aurora_status_result *r = &res[i];
		const char *expected = expected_ids != NULL ? expected_ids[i] : NULL;

		for (c = 0; c < N_COLS; c++)
			snprintf(cells[i][c], sizeof(cells[i][c]), "-");
		snprintf(cells[i][2], sizeof(cells[i][2]), "%s", urls[i]);
		if (expected != NULL)
			snprintf(cells[i][0], sizeof(cells[i][0]), "%s", expected);

		if (!r->reachable)
		{
			snprintf(cells[i][3], sizeof(cells[i][3]), "unreachable (%s)", r->error);
			rc = 1;
			continue;
		}
		snprintf(cells[i][7], sizeof(cells[i][7]), "%.2f", r->rtt_ms);
		if (r->error[0] != '\0')
		{
			snprintf(cells[i][3], sizeof(cells[i][3]), "error: %s", r->error);
			rc = 1;
			continue;
		}
		snprintf(cells[i][0], sizeof(cells[i][0]), "%s", r->status.node_id);
		snprintf(cells[i][1], sizeof(cells[i][1]), "%s", r->status.az);
		if (expected != NULL && strcmp(expected, r->status.node_id) != 0)
		{
			snprintf(cells[i][3], sizeof(cells[i][3]),
					 "error: answered as node '%s', config says '%s'",
					 r->status.node_id, expected);
			rc = 1;
		}
		else
			snprintf(cells[i][3], sizeof(cells[i][3]), "%s", r->status.state);
		format_uptime((unsigned long long) r->status.uptime_ms, cells[i][4], sizeof(cells[i][4]));
		snprintf(cells[i][5], sizeof(cells[i][5]), "%llu",
				 (unsigned long long) r->status.requests_total);
		snprintf(cells[i][6], sizeof(cells[i][6]), "%llu",
				 (unsigned long long) r->status.errors_total);
		snprintf(cells[i][8], sizeof(cells[i][8]), "%s", r->status.redo_configured ? "on" : "off");
		snprintf(cells[i][9], sizeof(cells[i][9]), "%u", (unsigned) r->status.coalesce_threshold);
		snprintf(cells[i][10], sizeof(cells[i][10]), "%llu",
				 (unsigned long long) r->status.records_indexed);
		snprintf(cells[i][11], sizeof(cells[i][11]), "%llu",
				 (unsigned long long) r->status.getpage_requests);
		snprintf(cells[i][12], sizeof(cells[i][12]), "%llu",
				 (unsigned long long) r->status.images_written);
		snprintf(cells[i][13], sizeof(cells[i][13]), "%llu",
				 (unsigned long long) r->status.records_applied);
		snprintf(cells[i][14], sizeof(cells[i][14]), "%llu",
				 (unsigned long long) r->status.redo_failures);
		snprintf(cells[i][15], sizeof(cells[i][15]), "%llu",
				 (unsigned long long) r->status.index_backlog_bytes);
		snprintf(cells[i][16], sizeof(cells[i][16]), "%llu",
				 (unsigned long long) r->status.coalesce_backlog);
	}

	for (c = 0; c < N_COLS; c++)
	{
		width[c] = strlen(col_names[c]);
		for (i = 0; i < n; i++)
			if (strlen(cells[i][c]) > width[c])
				width[c] = strlen(cells[i][c]);
	}
	for (i = -1; i < n; i++)
	{
		for (c = 0; c < N_COLS; c++)
		{
			const char *text = i < 0 ? col_names[c] : cells[i][c];

			fprintf(out, col_right[c] ? "%*s" : "%-*s", (int) width[c], text);
			fputs(c + 1 < N_COLS ? "  " : "\n", out);
		}
	}

	free(res);
	free(cells);
	return rc;
}
