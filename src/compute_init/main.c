/*
 * main.c
 *	  aurora-compute-init: prepare a compute's data directory from the volume
 *	  alone (issue 19).  For now one subcommand:
 *
 *	    aurora-compute-init wal --storage-nodes SPEC --from R --pgwal DIR
 *	        [--volume-id N] [--control FILE | --system-identifier N]
 *	        [--wal-segment-size BYTES] [--timeline TLI] [--timeout-ms MS]
 *	        [--read-quorum N] [--dry-run] [--quiet]
 *
 *	  reads every PG's log from R (volume_read.c), walks it and finds VDL
 *	  (wal_walk.c), prints VDL and the ragged edge, and unless --dry-run
 *	  writes the WAL from R to VDL as segment files into DIR (wal_write.c).
 *	  SPEC is in the aurora.storage_nodes format.  With --control (a
 *	  pg_control file) the system identifier, segment size and timeline are
 *	  taken from it.
 *
 *	  Exit status: 0 done; 1 bad usage or storage unreadable; 2 storage
 *	  holds a damaged record below its SCLs (nothing written).
 */
#include "postgres_fe.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xlog_internal.h"
#include "catalog/pg_control.h"
#include "getopt_long.h"
#include "port/pg_crc32c.h"

#include "cli.h"
#include "nodelist.h"
#include "quorum.h"
#include "volume_read.h"
#include "wal_walk.h"
#include "wal_write.h"

const char *progname = "aurora-compute-init";

static void
usage(FILE *out)
{
	fprintf(out,
			"Usage:\n"
			"  %s wal --storage-nodes SPEC --from LSN --pgwal DIR [options]\n"
			"\n"
			"Reads the volume's WAL from LSN (a checkpoint's redo point) from storage,\n"
			"finds VDL, and writes the WAL up to VDL as segment files into DIR.\n"
			"\n"
			"Options:\n"
			"  --storage-nodes SPEC      the volume's nodes, as aurora.storage_nodes (id:az:url, ...)\n"
			"  --volume-id N             the volume (default %d)\n"
			"  --from LSN                the redo point R, as X/X\n"
			"  --pgwal DIR               where to write the segment files (must not hold them)\n"
			"  --control FILE            pg_control: system identifier, segment size, timeline\n"
			"  --system-identifier N     without --control: the system identifier\n"
			"  --wal-segment-size BYTES  without --control (default %d)\n"
			"  --timeline TLI            without --control (default 1)\n"
			"  --read-quorum N           segments of a PG that must answer (default %d)\n"
			"  --timeout-ms MS           per request to a node (default 2000)\n"
			"  --dry-run                 walk and report only, write nothing\n"
			"  --quiet                   no progress on stderr\n",
			progname, AURORA_COMPUTE_VOLUME_ID, DEFAULT_XLOG_SEG_SIZE,
			AURORA_DEFAULT_READ_QUORUM);
}

void
fail(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: error: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

XLogRecPtr
parse_lsn(const char *s)
{
	unsigned int hi,
				lo;
	char		end;

	if (sscanf(s, "%X/%X%c", &hi, &lo, &end) != 2)
		fail("\"%s\" is not an LSN (X/X)", s);
	return ((uint64) hi << 32) | lo;
}

uint64
parse_u64(const char *s, const char *what)
{
	char	   *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
		fail("%s must be a number, not \"%s\"", what, s);
	return v;
}

/* Check pg_control's bytes (CRC, version, segment size) and take what the WAL needs. */
void
check_control(const uint8 *buf, size_t len, const char *what, WalTarget *t)
{
	ControlFileData cf;
	pg_crc32c	crc;

	if (len < sizeof(cf))
		fail("%s: too short for a pg_control file", what);
	memcpy(&cf, buf, sizeof(cf));
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &cf, offsetof(ControlFileData, crc));
	FIN_CRC32C(crc);
	if (!EQ_CRC32C(crc, cf.crc))
		fail("%s: bad CRC, not a pg_control file", what);
	if (cf.pg_control_version != PG_CONTROL_VERSION)
		fail("%s: pg_control version %u, this program knows %u", what,
			 cf.pg_control_version, PG_CONTROL_VERSION);
	if (!IsValidWalSegSize(cf.xlog_seg_size) || cf.xlog_blcksz != XLOG_BLCKSZ)
		fail("%s: WAL segment size %u or block size %u not supported", what,
			 cf.xlog_seg_size, cf.xlog_blcksz);
	t->sysid = cf.system_identifier;
	t->seg_size = cf.xlog_seg_size;
	t->tli = cf.checkPointCopy.ThisTimeLineID;
}

/* Read and check a pg_control file. */
void
read_control(const char *path, WalTarget *t)
{
	uint8		buf[sizeof(ControlFileData)];
	int			fd = open(path, O_RDONLY | PG_BINARY, 0);

	if (fd < 0)
		fail("could not open \"%s\": %m", path);
	if (read(fd, buf, sizeof(buf)) != sizeof(buf))
		fail("could not read \"%s\": too short or unreadable", path);
	close(fd);
	check_control(buf, sizeof(buf), path, t);
}

const char *
stop_name(WalWalkStop s)
{
	switch (s)
	{
		case WAL_WALK_END_OF_LOG:
			return "end-of-log";
		case WAL_WALK_GAP:
			return "gap";
		case WAL_WALK_ABOVE_SCL:
			return "above-scl";
		case WAL_WALK_BAD_CRC:
			return "bad-crc";
	}
	return "?";
}

static int
cmd_wal(int argc, char **argv)
{
	static struct option long_options[] = {
		{"storage-nodes", required_argument, NULL, 'n'},
		{"volume-id", required_argument, NULL, 'v'},
		{"from", required_argument, NULL, 'f'},
		{"pgwal", required_argument, NULL, 'w'},
		{"control", required_argument, NULL, 'c'},
		{"system-identifier", required_argument, NULL, 's'},
		{"wal-segment-size", required_argument, NULL, 'S'},
		{"timeline", required_argument, NULL, 't'},
		{"read-quorum", required_argument, NULL, 'q'},
		{"timeout-ms", required_argument, NULL, 'T'},
		{"dry-run", no_argument, NULL, 'd'},
		{"quiet", no_argument, NULL, 'Q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *spec = NULL,
			   *pgwal = NULL,
			   *control = NULL;
	bool		have_from = false,
				have_sysid = false,
				dry_run = false;
	VolumeReadOptions o;
	WalTarget	t;
	aurora_member *nodes;
	aurora_geometry g;
	WalPgLog   *logs;
	WalWalk		w;
	char		err[2048];
	int			c;

	memset(&o, 0, sizeof(o));
	o.volume_id = AURORA_COMPUTE_VOLUME_ID;
	o.read_quorum = AURORA_DEFAULT_READ_QUORUM;
	o.timeout_ms = 2000;
	o.progress = true;
	t.seg_size = DEFAULT_XLOG_SEG_SIZE;
	t.tli = 1;
	t.sysid = 0;
	while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'n':
				spec = optarg;
				break;
			case 'v':
				o.volume_id = parse_u64(optarg, "--volume-id");
				break;
			case 'f':
				o.from = parse_lsn(optarg);
				have_from = true;
				break;
			case 'w':
				pgwal = optarg;
				break;
			case 'c':
				control = optarg;
				break;
			case 's':
				t.sysid = parse_u64(optarg, "--system-identifier");
				have_sysid = true;
				break;
			case 'S':
				t.seg_size = (uint32) parse_u64(optarg, "--wal-segment-size");
				if (!IsValidWalSegSize(t.seg_size))
					fail("--wal-segment-size must be a power of two between 1 MB and 1 GB");
				break;
			case 't':
				t.tli = (TimeLineID) parse_u64(optarg, "--timeline");
				break;
			case 'q':
				o.read_quorum = (int) parse_u64(optarg, "--read-quorum");
				if (o.read_quorum < 1 || o.read_quorum > AURORA_PG_COPIES)
					fail("--read-quorum must be between 1 and %d", AURORA_PG_COPIES);
				break;
			case 'T':
				o.timeout_ms = (int) parse_u64(optarg, "--timeout-ms");
				break;
			case 'd':
				dry_run = true;
				break;
			case 'Q':
				o.progress = false;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 1;
		}
	}
	if (optind < argc)
		fail("unexpected argument \"%s\"", argv[optind]);
	if (spec == NULL || !have_from || (pgwal == NULL && !dry_run))
		fail("wal needs --storage-nodes, --from and --pgwal (or --dry-run); see --help");
	if (control != NULL)
		read_control(control, &t);
	else if (!have_sysid && !dry_run)
		fail("without --control, --system-identifier is needed to write segment files");
	if (o.from == InvalidXLogRecPtr || o.from % MAXIMUM_ALIGNOF != 0 ||
		o.from % XLOG_BLCKSZ < SizeOfXLogShortPHD)
		fail("--from %X/%X cannot be where a record starts", LSN_FORMAT_ARGS(o.from));
	if (aurora_nodelist_parse(spec, &nodes, &o.n_nodes, err, sizeof(err)) != 0)
		fail("--storage-nodes: %s", err);
	if (o.n_nodes == 0)
		fail("--storage-nodes names no node");
	o.nodes = nodes;

	if (volume_read(&o, &g, &logs, err, sizeof(err)) != 0)
		fail("%s", err);
	if (wal_walk_run(logs, &g, o.from, t.seg_size, &w, err, sizeof(err)) != 0)
		fail("the volume's WAL is inconsistent: %s", err);

	printf("redo: %X/%X\n", LSN_FORMAT_ARGS(o.from));
	printf("vdl: %X/%X\n", LSN_FORMAT_ARGS(w.vdl));
	printf("records: %d\n", w.n_kept);
	printf("bytes: " UINT64_FORMAT "\n", w.bytes_kept);
	printf("stop: %s (%s)\n", stop_name(w.stop), w.stop_reason);
	if (w.n_beyond > 0)
		printf("ragged edge: %d records from %X/%X to %X/%X\n", w.n_beyond,
			   LSN_FORMAT_ARGS(w.beyond_from), LSN_FORMAT_ARGS(w.beyond_to));
	else
		printf("ragged edge: none\n");
	fflush(stdout);

	if (w.stop == WAL_WALK_BAD_CRC)
	{
		fprintf(stderr, "%s: error: %s; nothing written\n", progname, w.stop_reason);
		return 2;
	}
	if (!dry_run)
	{
		int			files = wal_write_segments(pgwal, &t, o.from, w.records, w.n_kept,
											   w.vdl, err, sizeof(err));

		if (files < 0)
			fail("%s", err);
		printf("segments written: %d\n", files);
	}
	wal_walk_free(&w);
	volume_read_free(logs, g.n_pgs);
	free(nodes);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
	{
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--version") == 0)
	{
		printf("%s (aurora)\n", progname);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "start") == 0)
		return cmd_start(argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "wal") != 0)
	{
		usage(stderr);
		return 1;
	}
	return cmd_wal(argc - 1, argv + 1);
}
