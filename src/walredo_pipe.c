/*
 * walredo_pipe.c
 *	  The WAL-redo helper's side of the pipe to its storage node
 *	  (PROTOCOL.md; the node's side is storage_service/node/redo.c): frames
 *	  on stdin and stdout, little-endian integers.  walredo.c, the
 *	  PostgreSQL-side glue, decodes the messages and runs redo.
 */
#include "postgres.h"

#include <unistd.h>

#include "storage/ipc.h"

#include "walredo_pipe.h"

/* set while the log hook reports a FATAL: a write failure must not exit again */
bool		walredo_pipe_in_log_hook = false;

void
walredo_put_u32(char *p, uint32 v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (char) ((v >> (8 * i)) & 0xff);
}

uint32
walredo_get_u32(const char *p)
{
	uint32		v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | (uint8) p[i];
	return v;
}

uint64
walredo_get_u64(const char *p)
{
	return (uint64) walredo_get_u32(p) | ((uint64) walredo_get_u32(p + 4) << 32);
}

/*
 * Write all of buf to stdout.  A node that went away makes this fail (or
 * SIGPIPE end us, which is as good): there is nobody left to serve.
 */
void
walredo_write_all(const char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(STDOUT_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			/* in the log hook the process is on its way out already */
			if (walredo_pipe_in_log_hook)
				return;
			proc_exit(1);
		}
		buf += n;
		len -= n;
	}
}

void
walredo_send_frame(char type, const char *body1, uint32 len1, const char *body2, uint32 len2)
{
	char		hdr[FRAME_HEADER_SIZE];

	hdr[0] = type;
	walredo_put_u32(hdr + 1, len1 + len2);
	walredo_write_all(hdr, sizeof(hdr));
	if (len1 > 0)
		walredo_write_all(body1, len1);
	if (len2 > 0)
		walredo_write_all(body2, len2);
}

void
walredo_send_text(char type, const char *text)
{
	size_t		len = strlen(text);

	if (len > MAX_ERROR_TEXT)
		len = MAX_ERROR_TEXT;
	walredo_send_frame(type, text, (uint32) len, NULL, 0);
}

/*
 * Read exactly len bytes from stdin.  Returns false on end of file before
 * the first byte when eof_ok; any other short read is a protocol error.
 */
bool
walredo_read_all(char *buf, size_t len, bool eof_ok)
{
	size_t		got = 0;

	while (got < len)
	{
		ssize_t		n = read(STDIN_FILENO, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ereport(FATAL,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not read from the WAL-redo pipe: %m")));
		if (n == 0)
		{
			if (got == 0 && eof_ok)
				return false;
			ereport(FATAL,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("WAL-redo pipe closed in the middle of a message")));
		}
		got += n;
	}
	return true;
}
