/*
 * start.c
 *	  aurora-compute-init start: make a data directory that PostgreSQL opens
 *	  at the volume's VDL under a new volume epoch, from the volume alone
 *	  (docs/architecture.md, "Starting a compute from the volume").
 *
 *	    1. ask every PG's six segments for their state (volume_open.c);
 *	    2. fence every PG at epoch E = the highest epoch seen + 1 on at
 *	       least 7 - write quorum segments, so the writer before can never
 *	       again collect a write quorum;
 *	    3. take the newest start state (PG 0, read quorum), read every PG's
 *	       log from its checkpoint's redo point R and walk it to VDL
 *	       (volume_read.c, wal_walk.c);
 *	    4. truncate every PG above VDL under E (history + (E, VDL));
 *	    5. write the start state's files into the data directory (replacing
 *	       those of a surviving one, keeping its configuration), the WAL
 *	       from R to VDL as pg_wal's only segments, pg_control saying "in
 *	       production" so that PostgreSQL's crash recovery replays R..VDL
 *	       (without page redo: src/redo_filter.c), and nothing local that
 *	       could bring back what the truncation discarded (the local page
 *	       store, the shipper's slot, pg_wal's old files);
 *	    6. write DATADIR/aurora_start, which the extension reads once, at
 *	       the postmaster's start: the epoch, the history, VDL and how the
 *	       start went.
 *
 *	  Every step before 5 changes storage only in ways a later start
 *	  repeats (a higher fence, the same or a later truncation), and step 5
 *	  rewrites files the next attempt rewrites again: an interrupted start
 *	  is simply run again.  Step 6 comes last, so a data directory without
 *	  a fresh aurora_start is never opened (the extension refuses it).
 *
 *	  --local-files is for computes whose relation pages are their own
 *	  files (aurora.storage_manager = off): their files are the database,
 *	  so steps 3 and 5 are skipped and the truncation point is the highest
 *	  SCL any segment holds (nothing is dropped: the compute's own WAL,
 *	  which the shipper resends from its slot, is the database).
 */
#include "postgres_fe.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access/xlog_internal.h"
#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "getopt_long.h"

#include "cli.h"
#include "client.h"
#include "local_wal.h"
#include "nodelist.h"
#include "quorum.h"
#include "start_state.h"
#include "start_state_client.h"
#include "util.h"
#include "volume_open.h"
#include "volume_read.h"
#include "wal_layout.h"

#define START_FILE		AURORA_START_FILE

typedef struct StartReport
{
	const char *how;
	uint64		epoch;
	XLogRecPtr	vdl;
	aurora_trunc_entry *history;
	int			n_history;
	XLogRecPtr	start_state_lsn;
	XLogRecPtr	redo_lsn;
	uint64		wal_bytes;
	int			wal_records;
	XLogRecPtr	local_wal_upto;	/* the WAL below it came from pg_wal (0: none did) */
	int			local_wal_records;
	uint64		local_wal_bytes;
	uint64		truncated_records;
	uint64		truncated_bytes;
	int			pgs_open;		/* PGs a write quorum of which took the truncation */
	int			pgs;
	uint32		blocks_per_segment;
	XLogRecPtr *read_points;	/* per PG: every record of it below VDL ends at or below */
	double		init_ms;
} StartReport;

static void
progress(bool quiet, const char *fmt,...) pg_attribute_printf(2, 3);

static void
progress(bool quiet, const char *fmt,...)
{
	va_list		ap;

	if (quiet)
		return;
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* true when dir does not exist or holds nothing; fails when it is not a directory */
static bool
datadir_is_empty(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	bool		empty = true;

	if (d == NULL)
	{
		if (errno == ENOENT)
			return true;
		fail("could not open directory \"%s\": %m", dir);
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
		{
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

/* A postmaster that runs in dir must be stopped first: its files are being replaced. */
static void
refuse_running_server(const char *dir)
{
	char		path[MAXPGPATH];
	FILE	   *f;
	long		pid = 0;

	snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM))
		fail("a server (PID %ld) is running in \"%s\"; stop it (pg_ctl stop) first", pid, dir);
}

/* Remove every file in dir (not subdirectories' contents); dir may be absent. */
static void
remove_files_in(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	char		path[MAXPGPATH];

	if (d == NULL)
	{
		if (errno == ENOENT)
			return;
		fail("could not open directory \"%s\": %m", dir);
	}
	while ((de = readdir(d)) != NULL)
	{
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode) && unlink(path) != 0)
			fail("could not remove \"%s\": %m", path);
	}
	closedir(d);
}

/*
 * Remove every file in the WAL directory dir but the segments holding
 * [from, to), which the restart takes from here (local_wal.h).
 */
static void
remove_wal_outside(const char *dir, XLogRecPtr from, XLogRecPtr to, uint32 seg_size)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	char		path[MAXPGPATH];
	XLogSegNo	first,
				last;

	if (d == NULL)
		fail("could not open directory \"%s\": %m", dir);
	XLByteToSeg(from, first, seg_size);
	XLByteToSeg(to, last, seg_size);
	while ((de = readdir(d)) != NULL)
	{
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (IsXLogFileName(de->d_name))
		{
			TimeLineID	tli;
			XLogSegNo	segno;

			XLogFromFileName(de->d_name, &tli, &segno, seg_size);
			if (segno >= first && segno <= last)
				continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode) && unlink(path) != 0)
			fail("could not remove \"%s\": %m", path);
	}
	closedir(d);
}

/* A relation file's name: digits, maybe a fork suffix, maybe a segment number. */
static bool
is_relation_file_name(const char *name)
{
	const char *p = name;

	if (!isdigit((unsigned char) *p))
		return false;
	while (isdigit((unsigned char) *p))
		p++;
	if (strncmp(p, "_fsm", 4) == 0 || strncmp(p, "_init", 5) == 0)
		p += p[1] == 'f' ? 4 : 5;
	else if (strncmp(p, "_vm", 3) == 0)
		p += 3;
	if (*p == '.')
	{
		p++;
		if (!isdigit((unsigned char) *p))
			return false;
		while (isdigit((unsigned char) *p))
			p++;
	}
	return *p == '\0';
}

/* Remove the relation files directly in dir. */
static void
remove_relation_files_in(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	char		path[MAXPGPATH];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		if (!is_relation_file_name(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) != 0 && errno != ENOENT)
			fail("could not remove \"%s\": %m", path);
	}
	closedir(d);
}

static void
remove_if_present(const char *path)
{
	if (unlink(path) != 0 && errno != ENOENT)
		fail("could not remove \"%s\": %m", path);
}

/*
 * Local files of a surviving data directory that the volume supersedes:
 * the WAL (anything above VDL must never be replayed; below it, storage's
 * bytes are written instead), the local page store and cache (a page there
 * may carry a change the truncation discarded), the shipper's slot (its
 * restart point belongs to the previous epoch: the shipper starts at VDL),
 * the previous start file.
 */
static void
clear_superseded_files(const char *datadir, XLogRecPtr keep_from, XLogRecPtr keep_to,
					   uint32 seg_size)
{
	char		path[MAXPGPATH];

	DIR		   *d;
	struct dirent *de;

	/*
	 * Relation files: their pages live in storage, and an unlogged
	 * relation's forks come back from its init fork in the start state or
	 * the WAL, exactly as on an empty directory (a main fork left without
	 * its init fork would make the end of recovery fail).
	 */
	snprintf(path, sizeof(path), "%s/global", datadir);
	remove_relation_files_in(path);
	snprintf(path, sizeof(path), "%s/base", datadir);
	if ((d = opendir(path)) != NULL)
	{
		while ((de = readdir(d)) != NULL)
		{
			if (!isdigit((unsigned char) de->d_name[0]))
				continue;
			snprintf(path, sizeof(path), "%s/base/%s", datadir, de->d_name);
			remove_relation_files_in(path);
		}
		closedir(d);
	}
	snprintf(path, sizeof(path), "%s/pg_wal", datadir);
	if (XLogRecPtrIsInvalid(keep_to))
		remove_files_in(path);
	else
		remove_wal_outside(path, keep_from, keep_to, seg_size);
	snprintf(path, sizeof(path), "%s/pg_wal/archive_status", datadir);
	remove_files_in(path);
	snprintf(path, sizeof(path), "%s/aurora_local_pages", datadir);
	remove_if_present(path);
	snprintf(path, sizeof(path), "%s/pg_replslot/" AURORA_START_STATE_SHIPPER_SLOT, datadir);
	remove_files_in(path);
	if (rmdir(path) != 0 && errno != ENOENT)
		fail("could not remove \"%s\": %m", path);
	snprintf(path, sizeof(path), "%s/" START_FILE, datadir);
	remove_if_present(path);
	snprintf(path, sizeof(path), "%s/" START_FILE ".used", datadir);
	remove_if_present(path);
}

/*
 * PostgreSQL runs crash recovery from the checkpoint's redo point only when
 * pg_control does not say it was shut down cleanly (the start state of a
 * freshly seeded volume does), and must not expect a backup's end.
 */
static void
mark_control_for_recovery(const char *datadir)
{
	bool		crc_ok;
	ControlFileData *cf = get_controlfile(datadir, &crc_ok);

	if (!crc_ok)
		fail("the start state's pg_control has a bad CRC");
	cf->state = DB_IN_PRODUCTION;
	cf->minRecoveryPoint = InvalidXLogRecPtr;
	cf->minRecoveryPointTLI = 0;
	cf->backupStartPoint = InvalidXLogRecPtr;
	cf->backupEndPoint = InvalidXLogRecPtr;
	cf->backupEndRequired = false;
	update_controlfile(datadir, cf, true);
	pfree(cf);
}

static void
format_lsn(char *buf, size_t len, XLogRecPtr lsn)
{
	snprintf(buf, len, "%X/%X", LSN_FORMAT_ARGS(lsn));
}

/* DATADIR/aurora_start, written whole and renamed into place (README, "aurora_start"). */
static void
write_start_file(const char *datadir, const StartReport *r)
{
	char		path[MAXPGPATH],
				tmp[MAXPGPATH],
				a[32],
				b[32],
				c[32],
				err[256];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/" START_FILE, datadir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		fail("could not create \"%s\": %m", tmp);
	format_lsn(a, sizeof(a), r->vdl);
	format_lsn(b, sizeof(b), r->start_state_lsn);
	format_lsn(c, sizeof(c), r->redo_lsn);
	fprintf(f,
			"# written by aurora-compute-init start; read once by the next postmaster\n"
			"version = 1\n"
			"volume_epoch = " UINT64_FORMAT "\n"
			"opened_vdl = %s\n"
			"how = %s\n"
			"start_state_lsn = %s\n"
			"redo_lsn = %s\n"
			"wal_records = %d\n"
			"wal_bytes = " UINT64_FORMAT "\n"
			"truncated_records = " UINT64_FORMAT "\n"
			"truncated_bytes = " UINT64_FORMAT "\n"
			"pgs_open = %d\n"
			"pgs = %d\n"
			"blocks_per_segment = %u\n"
			"init_ms = %.0f\n"
			"created_at = %lld\n"
			"history = ",
			r->epoch, a, r->how, b, c, r->wal_records, r->wal_bytes, r->truncated_records,
			r->truncated_bytes, r->pgs_open, r->pgs, r->blocks_per_segment, r->init_ms, (long long) time(NULL));
	for (int i = 0; i < r->n_history; i++)
	{
		format_lsn(a, sizeof(a), r->history[i].lsn);
		fprintf(f, "%s" UINT64_FORMAT ":%s", i > 0 ? "," : "", r->history[i].epoch, a);
	}
	fprintf(f, "\nread_points = ");
	for (int p = 0; p < r->pgs && r->read_points != NULL; p++)
	{
		format_lsn(a, sizeof(a), r->read_points[p]);
		fprintf(f, "%s%s", p > 0 ? "," : "", a);
	}
	fprintf(f, "\n");
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0)
		fail("could not write \"%s\": %m", tmp);
	if (chmod(tmp, S_IRUSR | S_IWUSR) != 0 || rename(tmp, path) != 0)
		fail("could not rename \"%s\" into place: %m", tmp);
	if (aurora_fsync_path(datadir, err, sizeof(err)) != 0)
		fail("%s", err);
}

static void
usage_start(FILE *out)
{
	fprintf(out,
			"Usage:\n"
			"  %s start --storage-nodes SPEC --pgdata DIR [options]\n"
			"\n"
			"Opens the volume under a new epoch (fences the compute before), finds VDL,\n"
			"truncates the ragged edge, and prepares DIR (empty, absent, or a stopped\n"
			"compute's data directory) so that PostgreSQL starts at VDL.\n"
			"\n"
			"Options:\n"
			"  --storage-nodes SPEC   the volume's nodes, as aurora.storage_nodes (id:az:url, ...)\n"
			"  --pgdata DIR           the data directory to prepare\n"
			"  --volume-id N          the volume (default %d)\n"
			"  --local-files          the compute's relation pages are its own files\n"
			"                         (aurora.storage_manager = off): fence and truncate only\n"
			"  --write-quorum N       (default %d)\n"
			"  --read-quorum N        (default %d)\n"
			"  --timeout-ms MS        per request to a node (default 1000)\n"
			"  --quiet                no progress on stderr\n",
			progname, AURORA_COMPUTE_VOLUME_ID, AURORA_DEFAULT_WRITE_QUORUM,
			AURORA_DEFAULT_READ_QUORUM);
}

int
cmd_start(int argc, char **argv)
{
	static struct option long_options[] = {
		{"storage-nodes", required_argument, NULL, 'n'},
		{"pgdata", required_argument, NULL, 'D'},
		{"volume-id", required_argument, NULL, 'v'},
		{"local-files", no_argument, NULL, 'L'},
		{"write-quorum", required_argument, NULL, 'W'},
		{"read-quorum", required_argument, NULL, 'q'},
		{"timeout-ms", required_argument, NULL, 'T'},
		{"quiet", no_argument, NULL, 'Q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *spec = NULL,
			   *datadir = NULL;
	bool		local_files = false,
				quiet = false,
				empty;
	uint64		volume_id = AURORA_COMPUTE_VOLUME_ID;
	int			write_quorum = AURORA_DEFAULT_WRITE_QUORUM,
				read_quorum = AURORA_DEFAULT_READ_QUORUM,
				timeout_ms = 1000,
				n_nodes,
				n_history,
				c;
	double		t0 = aurora_monotonic_ms();
	aurora_member *nodes;
	aurora_geometry g;
	aurora_trunc_entry *history,
			   *new_history;
	uint64		max_epoch;
	VolumeOpen *vo;
	StartReport r;
	aurora_start_state ss;
	WalPgLog   *logs = NULL;
	WalWalk		w;
	WalTarget	target;
	char		err[2048];

	memset(&r, 0, sizeof(r));
	memset(&ss, 0, sizeof(ss));
	memset(&w, 0, sizeof(w));
	while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'n':
				spec = optarg;
				break;
			case 'D':
				datadir = optarg;
				break;
			case 'v':
				volume_id = parse_u64(optarg, "--volume-id");
				break;
			case 'L':
				local_files = true;
				break;
			case 'W':
				write_quorum = (int) parse_u64(optarg, "--write-quorum");
				break;
			case 'q':
				read_quorum = (int) parse_u64(optarg, "--read-quorum");
				break;
			case 'T':
				timeout_ms = (int) parse_u64(optarg, "--timeout-ms");
				break;
			case 'Q':
				quiet = true;
				break;
			case 'h':
				usage_start(stdout);
				return 0;
			default:
				usage_start(stderr);
				return 1;
		}
	}
	if (optind < argc)
		fail("unexpected argument \"%s\"", argv[optind]);
	if (spec == NULL || datadir == NULL)
		fail("start needs --storage-nodes and --pgdata; see start --help");
	if (!aurora_quorum_config_valid(AURORA_PG_COPIES, write_quorum, read_quorum, err, sizeof(err)))
		fail("--write-quorum %d, --read-quorum %d: %s", write_quorum, read_quorum, err);
	if (aurora_nodelist_parse(spec, &nodes, &n_nodes, err, sizeof(err)) != 0)
		fail("--storage-nodes: %s", err);
	if (n_nodes == 0)
		fail("--storage-nodes names no node");
	empty = datadir_is_empty(datadir);
	if (!empty)
		refuse_running_server(datadir);
	if (local_files && empty)
		fail("--local-files needs the compute's data directory, and \"%s\" is empty", datadir);

	/* 1. what the segments hold */
	if ((vo = volume_open_begin(nodes, n_nodes, volume_id, timeout_ms)) == NULL)
		fail("out of memory");
	if (volume_open_discover(vo, read_quorum, &g, &max_epoch, &history, &n_history,
							 err, sizeof(err)) != 0)
		fail("%s", err);
	if (g.n_pgs == 0)
	{
		/* a volume nothing was written to: the compute creates it at epoch 1 */
		if (empty)
			fail("the volume holds nothing yet: create it from an initialized data directory (aurora-ctl seed, or cluster.sh init and start)");
		r.how = "new-volume";
		r.epoch = 1;
		r.init_ms = aurora_monotonic_ms() - t0;
		write_start_file(datadir, &r);
		printf("how: %s\nvolume epoch: 1\n", r.how);
		volume_open_end(vo);
		free(nodes);
		return 0;
	}
	r.pgs = (int) g.n_pgs;
	r.blocks_per_segment = g.blocks_per_segment;
	r.epoch = max_epoch + 1;
	progress(quiet, "volume of %u PGs at epoch " UINT64_FORMAT "; fencing at " UINT64_FORMAT,
			 g.n_pgs, max_epoch, r.epoch);

	/* 2. fence: 7 - write quorum fenced leaves the writer before at most write quorum - 1 */
	if (volume_open_fence(vo, &g, r.epoch, AURORA_PG_COPIES - write_quorum + 1,
						  err, sizeof(err)) != 0)
		fail("%s", err);

	/* 3. the start state and VDL */
	if (local_files)
	{
		r.how = "local-files";
		r.vdl = 0;
		for (uint32 p = 0; p < g.n_pgs; p++)
			r.vdl = Max(r.vdl, volume_open_pg(vo, p)->highest_scl);
	}
	else
	{
		aurora_pg_target t;
		uint8_t    *bundle = NULL;
		size_t		len = 0;
		uint64_t	lsn = 0;
		XLogRecPtr	local_last = InvalidXLogRecPtr;
		int			got;
		VolumeReadOptions o;
		bool		have_control = false;

		r.how = empty ? "from-storage" : "replaced-datadir";
		memset(&t, 0, sizeof(t));
		t.volume_id = volume_id;
		t.pg_id = 0;
		t.volume_epoch = r.epoch;
		t.membership_epoch = 1;
		if (aurora_place_pg(nodes, n_nodes, 0, t.members, err, sizeof(err)) != 0)
			fail("%s", err);
		/* a node that did not answer is not waited for again */
		for (int i = 0; i < AURORA_PG_COPIES; i++)
			for (int k = 0; k < n_nodes; k++)
				if (volume_open_dead_nodes(vo)[k] &&
					strcmp(nodes[k].node_id, t.members[i].node_id) == 0)
					t.members[i].url[0] = '\0';
		got = aurora_start_state_get_pg(&t, read_quorum, UINT64_MAX, 0, timeout_ms,
										&bundle, &len, &lsn, err, sizeof(err));
		if (got < 0)
			fail("reading the start state: %s", err);
		if (got == 0)
			fail("the volume holds no start state (it was not created by aurora-ctl seed, or its compute never made a checkpoint): it cannot be opened from storage");
		if (aurora_start_state_decode(bundle, len, &ss, err, sizeof(err)) != 0)
			fail("the start state at %X/%X: %s", LSN_FORMAT_ARGS(lsn), err);
		free(bundle);
		for (uint32 i = 0; i < ss.n_files; i++)
			if (strcmp(ss.files[i].path, "global/pg_control") == 0)
			{
				check_control(ss.files[i].data, ss.files[i].size, "the start state's pg_control", &target);
				have_control = true;
			}
		if (!have_control)
			fail("the start state at %X/%X has no pg_control", LSN_FORMAT_ARGS(lsn));
		r.start_state_lsn = ss.consistent_lsn;
		r.redo_lsn = ss.redo_lsn;
		progress(quiet, "start state at %X/%X (%u files, checkpoint redo %X/%X); reading the WAL from there",
				 LSN_FORMAT_ARGS(ss.consistent_lsn), ss.n_files, LSN_FORMAT_ARGS(ss.redo_lsn));

		/*
		 * A surviving data directory's own WAL below a point the volume made
		 * durable is taken as it is, if it checks out (local_wal.h): then
		 * storage is read only from there.
		 */
		if (!empty)
		{
			XLogRecPtr	durable = local_wal_durable_lsn(datadir);
			char		pgwal[MAXPGPATH];

			snprintf(pgwal, sizeof(pgwal), "%s/pg_wal", datadir);
			if (durable > ss.redo_lsn &&
				local_wal_verify(pgwal, &target, ss.redo_lsn, durable, &local_last,
								 &r.local_wal_records, &r.local_wal_bytes,
								 err, sizeof(err)) == 0)
			{
				r.local_wal_upto = durable;
				progress(quiet, "the local WAL holds %X/%X..%X/%X (%d records): reading the rest from storage",
						 LSN_FORMAT_ARGS(ss.redo_lsn), LSN_FORMAT_ARGS(durable), r.local_wal_records);
			}
			else if (durable > ss.redo_lsn)
			{
				progress(quiet, "the local WAL is not used: %s", err);
				r.local_wal_records = 0;
				r.local_wal_bytes = 0;
			}
		}

		for (;;)
		{
			XLogRecPtr	from = XLogRecPtrIsInvalid(r.local_wal_upto) ? ss.redo_lsn :
				wal_next_record_start(r.local_wal_upto, target.seg_size);
			XLogRecord	first;

			memset(&o, 0, sizeof(o));
			o.nodes = nodes;
			o.n_nodes = n_nodes;
			o.volume_id = volume_id;
			o.from = from;
			o.read_quorum = read_quorum;
			o.timeout_ms = timeout_ms;
			o.progress = !quiet;
			o.skip = volume_open_dead_nodes(vo);
			if (volume_read(&o, &g, &logs, err, sizeof(err)) != 0)
				fail("%s", err);
			if (wal_walk_run(logs, &g, from, target.seg_size, &w, err, sizeof(err)) != 0)
			{
				if (XLogRecPtrIsInvalid(r.local_wal_upto))
					fail("the volume's WAL is inconsistent: %s", err);
				first.xl_prev = InvalidXLogRecPtr;
			}
			else if (w.n_kept > 0)
				memcpy(&first, w.records[0].wal, SizeOfXLogRecord);
			else
				first.xl_prev = local_last;
			if (XLogRecPtrIsInvalid(r.local_wal_upto) || first.xl_prev == local_last)
				break;

			/* storage does not continue the local WAL: read all of it from storage */
			progress(quiet, "the local WAL is not used: storage's WAL after %X/%X does not continue it",
					 LSN_FORMAT_ARGS(r.local_wal_upto));
			r.local_wal_upto = InvalidXLogRecPtr;
			r.local_wal_records = 0;
			r.local_wal_bytes = 0;
			volume_read_free(logs, g.n_pgs);
			logs = NULL;
			wal_walk_free(&w);
		}
		if (w.stop == WAL_WALK_BAD_CRC)
		{
			fprintf(stderr, "%s: error: %s; nothing changed in the data directory\n",
					progname, w.stop_reason);
			return 2;
		}
		r.vdl = w.n_kept > 0 || XLogRecPtrIsInvalid(r.local_wal_upto) ? w.vdl : r.local_wal_upto;
		/* the WAL from R to VDL, wherever it came from */
		r.wal_records = w.n_kept + r.local_wal_records;
		r.wal_bytes = w.bytes_kept + r.local_wal_bytes;
		if (r.vdl < ss.consistent_lsn)
			fail("VDL %X/%X is below the start state's LSN %X/%X: storage lost acknowledged WAL",
				 LSN_FORMAT_ARGS(r.vdl), LSN_FORMAT_ARGS(ss.consistent_lsn));
		progress(quiet, "VDL %X/%X (%d records, " UINT64_FORMAT " bytes read from storage; walk ended: %s)",
				 LSN_FORMAT_ARGS(r.vdl), w.n_kept, w.bytes_kept, w.stop_reason);
	}

	/* 4. truncate above VDL under the new epoch */
	if (n_history > 0 && history[n_history - 1].lsn > r.vdl)
		fail("VDL %X/%X is below the volume's last truncation point %X/%X: storage lost acknowledged WAL",
			 LSN_FORMAT_ARGS(r.vdl), LSN_FORMAT_ARGS(history[n_history - 1].lsn));
	new_history = malloc(sizeof(*new_history) * (n_history + 1));
	if (new_history == NULL)
		fail("out of memory");
	if (n_history > 0)
		memcpy(new_history, history, sizeof(*history) * n_history);
	new_history[n_history].epoch = r.epoch;
	new_history[n_history].lsn = r.vdl;
	r.history = new_history;
	r.n_history = n_history + 1;
	r.pgs_open = volume_open_truncate(vo, &g, new_history, r.n_history, write_quorum,
									  err, sizeof(err));
	if (r.pgs_open < 0)
		fail("%s", err);
	r.read_points = calloc(g.n_pgs, sizeof(XLogRecPtr));
	if (r.read_points == NULL)
		fail("out of memory");
	for (uint32 p = 0; p < g.n_pgs; p++)
	{
		const PgOpenState *s = volume_open_pg(vo, p);

		/*
		 * Where the compute's reads of PG p may stand until its shipper
		 * runs (its recovery): the end of p's last record below VDL, which
		 * the truncated segments report as their SCL; a PG without records
		 * serves its seed images from their LSN on.
		 */
		r.read_points[p] = Max(Min(s->truncated_scl, r.vdl), s->seeded_lsn);
		r.truncated_records += s->records_dropped;
		r.truncated_bytes += s->bytes_dropped;
		if (s->truncated == 0)
			fail("PG %u: no segment took the truncation: %s", p, s->missing);
		if (s->truncated < write_quorum)
			progress(quiet, "PG %u: %d of %d segments truncated (a write quorum is %d): the compute opens for reads, and its commits wait until the others are back and reopened: %s",
					 p, s->truncated, AURORA_PG_COPIES, write_quorum, s->missing);
	}

	/* 5. the data directory */
	if (!local_files && r.wal_records == 0)
	{
		/*
		 * Nothing was ever shipped: the volume was seeded and its first
		 * compute never started.  Its log does not hold the seed's checkpoint
		 * record, but the seeded data directory does: start from that, as it
		 * is.
		 */
		bool		crc_ok;
		ControlFileData *cf;

		if (empty)
			fail("the volume's log is empty (it was seeded, and no compute has run on it yet): start its first compute on the seeded data directory");
		cf = get_controlfile(datadir, &crc_ok);
		if (!crc_ok || cf->system_identifier != target.sysid ||
			cf->checkPoint != ss.checkpoint_lsn || cf->state != DB_SHUTDOWNED)
			fail("the volume's log is empty, and \"%s\" is not the data directory it was seeded from (stopped cleanly at checkpoint %X/%X)",
				 datadir, LSN_FORMAT_ARGS(ss.checkpoint_lsn));
		pfree(cf);
		r.how = "first-start";
	}
	else if (!local_files)
	{
		char		pgwal[MAXPGPATH];
		int			files;

		if (!empty)
			clear_superseded_files(datadir, ss.redo_lsn, r.local_wal_upto, target.seg_size);
		if (aurora_start_state_to_datadir(&ss, datadir,
										  empty ? 0 : AURORA_START_STATE_REPLACE | AURORA_START_STATE_KEEP_CONFIG,
										  err, sizeof(err)) != 0)
			fail("writing the start state into \"%s\": %s", datadir, err);
		snprintf(pgwal, sizeof(pgwal), "%s/pg_wal", datadir);
		if (XLogRecPtrIsInvalid(r.local_wal_upto))
			files = wal_write_segments(pgwal, &target, ss.redo_lsn, w.records, w.n_kept, r.vdl,
									   err, sizeof(err));
		else
			files = wal_write_segments_from(pgwal, &target, r.local_wal_upto, w.records,
											w.n_kept, r.vdl, err, sizeof(err));
		if (files < 0)
			fail("%s", err);
		mark_control_for_recovery(datadir);
		progress(quiet, "wrote %u start state files and %d WAL segment files into %s",
				 ss.n_files, files, datadir);
	}
	else
	{
		char		path[MAXPGPATH];

		snprintf(path, sizeof(path), "%s/" START_FILE ".used", datadir);
		remove_if_present(path);
	}

	/* 6. the start file: last, so that only a finished start is ever opened */
	r.init_ms = aurora_monotonic_ms() - t0;
	write_start_file(datadir, &r);

	printf("how: %s\n", r.how);
	printf("volume epoch: " UINT64_FORMAT "\n", r.epoch);
	printf("vdl: %X/%X\n", LSN_FORMAT_ARGS(r.vdl));
	if (!local_files)
	{
		printf("start state: %X/%X (redo %X/%X)\n", LSN_FORMAT_ARGS(r.start_state_lsn),
			   LSN_FORMAT_ARGS(r.redo_lsn));
		printf("wal: %d records, " UINT64_FORMAT " bytes\n", r.wal_records, r.wal_bytes);
		printf("local wal: %d records, " UINT64_FORMAT " bytes (up to %X/%X)\n",
			   r.local_wal_records, r.local_wal_bytes, LSN_FORMAT_ARGS(r.local_wal_upto));
	}
	printf("truncated: " UINT64_FORMAT " records, " UINT64_FORMAT " bytes\n",
		   r.truncated_records, r.truncated_bytes);
	printf("protection groups open: %d of %d\n", r.pgs_open, r.pgs);
	printf("took: %.0f ms\n", r.init_ms);

	if (logs != NULL)
		volume_read_free(logs, g.n_pgs);
	wal_walk_free(&w);
	aurora_start_state_free(&ss);
	free(new_history);
	free(r.read_points);
	free(history);
	volume_open_end(vo);
	free(nodes);
	return 0;
}
