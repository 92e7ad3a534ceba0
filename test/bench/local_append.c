/*
 * local_append.c - the local peer of the storage log benchmark
 * (test/bench/storage_log.bench.sh): what one node's durable append costs
 * on this disk without any network or quorum.
 *
 *   local_append FILE RECORDS BATCH PAYLOAD [HEADER_BYTES]
 *
 * Creates FILE (truncating it), then appends RECORDS records in batches of
 * BATCH: each batch is one write() of BATCH * (HEADER_BYTES + PAYLOAD) bytes
 * at the end of the growing file followed by one fdatasync(), which is what
 * a segment does for one LOG_APPEND (node/segment.c; its record header is 36
 * bytes, the default).  Every batch is timed from before write() to after
 * fdatasync() returns.  Prints one line in the vocabulary of
 * `aurora-ctl stream`:
 *
 *   local: records R batches N bytes B elapsed_ms E records_per_s X
 *          mb_per_s Y p50_ms P p99_ms Q
 *
 * mb_per_s counts payload bytes only (MiB/s), as aurora-ctl stream does;
 * percentiles use the same index formula as the quorum writer
 * (common/pgwriter.c).  Exit status 0, 1 on an I/O error, 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Parse a decimal in [lo, hi]; returns 0 or -1. */
static int
parse_long(const char *s, long lo, long hi, long *out)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	long		records,
				batch,
				payload,
				header = 36;
	long		n_batches,
				k,
				b;
	size_t		rec_bytes,
				i;
	uint8_t    *buf;
	double	   *lat;
	double		t0,
				elapsed;
	uint64_t	total_bytes = 0;
	int			fd;

	if (argc < 5 || argc > 6 ||
		parse_long(argv[2], 1, 100000000, &records) != 0 ||
		parse_long(argv[3], 1, 100000, &batch) != 0 ||
		parse_long(argv[4], 0, 1048576, &payload) != 0 ||
		(argc == 6 && parse_long(argv[5], 0, 4096, &header) != 0))
	{
		fprintf(stderr, "usage: local_append FILE RECORDS BATCH PAYLOAD [HEADER_BYTES]\n");
		return 2;
	}
	rec_bytes = (size_t) (header + payload);
	n_batches = (records + batch - 1) / batch;
	buf = malloc(rec_bytes * (size_t) batch + 1);
	lat = malloc(sizeof(double) * (size_t) n_batches);
	if (buf == NULL || lat == NULL)
	{
		fprintf(stderr, "local_append: out of memory\n");
		return 1;
	}
	/* not zeros, so that no layer below can treat the data as sparse */
	for (i = 0; i < rec_bytes * (size_t) batch; i++)
		buf[i] = (uint8_t) (i * 7u + 13u);

	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
	{
		fprintf(stderr, "local_append: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}

	t0 = now_ms();
	for (k = 0, b = 0; k < records; k += batch, b++)
	{
		long		n = records - k < batch ? records - k : batch;
		size_t		len = rec_bytes * (size_t) n;
		double		s = now_ms();

		if (write_all(fd, buf, len) != 0 || fdatasync(fd) != 0)
		{
			fprintf(stderr, "local_append: %s: %s\n", argv[1], strerror(errno));
			close(fd);
			return 1;
		}
		lat[b] = now_ms() - s;
		total_bytes += len;
	}
	elapsed = now_ms() - t0;
	if (close(fd) != 0)
	{
		fprintf(stderr, "local_append: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}

	qsort(lat, (size_t) n_batches, sizeof(double), cmp_double);
	printf("local: records %ld batches %ld bytes %llu elapsed_ms %.1f records_per_s %.0f"
		   " mb_per_s %.2f p50_ms %.3f p99_ms %.3f\n",
		   records, n_batches, (unsigned long long) total_bytes, elapsed,
		   elapsed > 0 ? (double) records * 1000.0 / elapsed : 0.0,
		   elapsed > 0 ? (double) records * (double) payload / 1048576.0 / (elapsed / 1000.0) : 0.0,
		   lat[(n_batches - 1) / 2], lat[(size_t) ((double) (n_batches - 1) * 0.99)]);
	free(buf);
	free(lat);
	return 0;
}
