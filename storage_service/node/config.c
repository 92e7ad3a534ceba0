/*
 * config.c - parser and validator for storage node config files (config.h).
 *
 * The format is deliberately tiny: "key = value" per line, '#' starts a
 * comment line, blank lines are ignored, whitespace around keys and values
 * is trimmed.  Every mistake is reported with FILE:LINE so an operator with
 * six node files knows exactly where to look; anything the parser does not
 * understand is an error rather than silently ignored.
 */
#define _DEFAULT_SOURCE

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum config_key
{
	KEY_NODE_ID,
	KEY_AZ,
	KEY_LISTEN_URL,
	KEY_DATA_DIR,
	KEY_PID_FILE,
	KEY_LOG_FILE,
	KEY_MAX_MESSAGE_BYTES,
	KEY_GOSSIP_INTERVAL_MS,
	KEY_PEER_TIMEOUT_MS,
	KEY_WALREDO_POSTGRES,
	KEY_WALREDO_HELPERS,
	KEY_WALREDO_TIMEOUT_MS,
	KEY_COALESCE_THRESHOLD,
	KEY_PAGE_THREADS,
	KEY_COUNT
};

static const struct
{
	const char *name;
	bool		required;
} config_keys[KEY_COUNT] = {
	[KEY_NODE_ID] = {"node_id", true},
	[KEY_AZ] = {"az", true},
	[KEY_LISTEN_URL] = {"listen_url", true},
	[KEY_DATA_DIR] = {"data_dir", true},
	[KEY_PID_FILE] = {"pid_file", false},
	[KEY_LOG_FILE] = {"log_file", false},
	[KEY_MAX_MESSAGE_BYTES] = {"max_message_bytes", false},
	[KEY_GOSSIP_INTERVAL_MS] = {"gossip_interval_ms", false},
	[KEY_PEER_TIMEOUT_MS] = {"peer_timeout_ms", false},
	[KEY_WALREDO_POSTGRES] = {"walredo_postgres", false},
	[KEY_WALREDO_HELPERS] = {"walredo_helpers", false},
	[KEY_WALREDO_TIMEOUT_MS] = {"walredo_timeout_ms", false},
	[KEY_COALESCE_THRESHOLD] = {"coalesce_threshold", false},
	[KEY_PAGE_THREADS] = {"page_threads", false},
};

static char *
trim(char *s)
{
	char	   *end;

	while (isspace((unsigned char) *s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char) end[-1]))
		*--end = '\0';
	return s;
}

static bool
valid_ident(const char *s, size_t maxlen)
{
	size_t		n = strlen(s);
	size_t		i;

	if (n < 1 || n > maxlen)
		return false;
	for (i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (!(isalnum(c) || c == '_' || c == '-') || c > 127)
			return false;
	}
	return true;
}

int
aurora_validate_url(const char *url, char *err, size_t errlen)
{
	const char *hostport;
	const char *colon;
	const char *p;
	long		port;

	if (strncmp(url, "ipc://", 6) == 0)
	{
		if (url[6] == '\0')
		{
			snprintf(err, errlen, "ipc:// URL needs a path");
			return -1;
		}
		return 0;
	}
	if (strncmp(url, "tcp://", 6) != 0)
	{
		snprintf(err, errlen, "URL must be tcp://HOST:PORT or ipc://PATH");
		return -1;
	}
	hostport = url + 6;
	for (p = hostport; *p; p++)
	{
		if (isspace((unsigned char) *p) || *p == '/')
		{
			snprintf(err, errlen, "tcp URL must be tcp://HOST:PORT with nothing after the port");
			return -1;
		}
	}
	if (hostport[0] == '[')
	{
		const char *close = strchr(hostport, ']');

		if (close == NULL || close == hostport + 1 || close[1] != ':')
		{
			snprintf(err, errlen, "IPv6 host must be written tcp://[ADDRESS]:PORT");
			return -1;
		}
		colon = close + 1;
	}
	else
	{
		colon = strrchr(hostport, ':');
		if (colon == NULL || colon == hostport)
		{
			snprintf(err, errlen, "tcp URL must be tcp://HOST:PORT");
			return -1;
		}
		if (memchr(hostport, ':', (size_t) (colon - hostport)) != NULL)
		{
			snprintf(err, errlen, "IPv6 host must be written tcp://[ADDRESS]:PORT");
			return -1;
		}
	}
	p = colon + 1;
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5)
	{
		snprintf(err, errlen, "port must be a number between 1 and 65535");
		return -1;
	}
	port = strtol(p, NULL, 10);
	if (port < 1 || port > 65535)
	{
		snprintf(err, errlen, "port must be a number between 1 and 65535");
		return -1;
	}
	return 0;
}

/* Resolve a relative path against the directory holding the config file. */
static int
resolve_path(const char *config_path, const char *value, char *dst, size_t cap)
{
	const char *slash;
	int			n;

	if (value[0] == '/' || (slash = strrchr(config_path, '/')) == NULL)
		n = snprintf(dst, cap, "%s", value);
	else
		n = snprintf(dst, cap, "%.*s/%s", (int) (slash - config_path), config_path, value);
	return (n < 0 || (size_t) n >= cap) ? -1 : 0;
}

/* A decimal integer in [min, max] (no sign, no suffix). */
static int
parse_uint_key(enum config_key key, const char *value, uint32_t min, uint32_t max,
			   uint32_t *dst, char *why, size_t whylen)
{
	char	   *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (!isdigit((unsigned char) value[0]) || *end != '\0' || errno != 0 || v < min || v > max)
	{
		snprintf(why, whylen, "%s must be an integer between %u and %u (got '%.40s')",
				 config_keys[key].name, (unsigned) min, (unsigned) max, value);
		return -1;
	}
	*dst = (uint32_t) v;
	return 0;
}


/* Apply one key's value; on error writes the reason (without FILE:LINE). */
static int
apply_value(aurora_node_config *cfg, enum config_key key, const char *value,
			char *why, size_t whylen)
{
	switch (key)
	{
		case KEY_NODE_ID:
			if (!valid_ident(value, sizeof(cfg->node_id) - 1))
			{
				snprintf(why, whylen, "invalid node_id '%.80s': use 1-%zu characters from [A-Za-z0-9_-]",
						 value, sizeof(cfg->node_id) - 1);
				return -1;
			}
			strcpy(cfg->node_id, value);
			return 0;
		case KEY_AZ:
			if (!valid_ident(value, sizeof(cfg->az) - 1))
			{
				snprintf(why, whylen, "invalid az '%.80s': use 1-%zu characters from [A-Za-z0-9_-]",
						 value, sizeof(cfg->az) - 1);
				return -1;
			}
			strcpy(cfg->az, value);
			return 0;
		case KEY_LISTEN_URL:
			{
				char		reason[128];

				if (strlen(value) >= sizeof(cfg->listen_url))
				{
					snprintf(why, whylen, "listen_url is longer than %zu bytes",
							 sizeof(cfg->listen_url) - 1);
					return -1;
				}
				if (aurora_validate_url(value, reason, sizeof(reason)) != 0)
				{
					snprintf(why, whylen, "invalid listen_url '%.80s': %s", value, reason);
					return -1;
				}
				strcpy(cfg->listen_url, value);
				return 0;
			}
		case KEY_DATA_DIR:
		case KEY_PID_FILE:
		case KEY_LOG_FILE:
			{
				char	   *dst = key == KEY_DATA_DIR ? cfg->data_dir :
					key == KEY_PID_FILE ? cfg->pid_file : cfg->log_file;

				if (resolve_path(cfg->source, value, dst, AURORA_CONFIG_PATH_MAX) != 0)
				{
					snprintf(why, whylen, "%s is too long", config_keys[key].name);
					return -1;
				}
				return 0;
			}
		case KEY_MAX_MESSAGE_BYTES:
			return parse_uint_key(key, value, AURORA_MIN_MESSAGE_BYTES, AURORA_MAX_MESSAGE_BYTES,
								  &cfg->max_message_bytes, why, whylen);
		case KEY_GOSSIP_INTERVAL_MS:
			return parse_uint_key(key, value, 0, AURORA_MAX_GOSSIP_INTERVAL_MS,
								  &cfg->gossip_interval_ms, why, whylen);
		case KEY_PEER_TIMEOUT_MS:
			return parse_uint_key(key, value, AURORA_MIN_PEER_TIMEOUT_MS, AURORA_MAX_PEER_TIMEOUT_MS,
								  &cfg->peer_timeout_ms, why, whylen);
		case KEY_WALREDO_POSTGRES:
			if (resolve_path(cfg->source, value, cfg->walredo_postgres, AURORA_CONFIG_PATH_MAX) != 0)
			{
				snprintf(why, whylen, "%s is too long", config_keys[key].name);
				return -1;
			}
			return 0;
		case KEY_WALREDO_HELPERS:
			return parse_uint_key(key, value, 1, AURORA_MAX_WALREDO_HELPERS,
								  &cfg->walredo_helpers, why, whylen);
		case KEY_WALREDO_TIMEOUT_MS:
			return parse_uint_key(key, value, AURORA_MIN_WALREDO_TIMEOUT_MS,
								  AURORA_MAX_WALREDO_TIMEOUT_MS, &cfg->walredo_timeout_ms,
								  why, whylen);
		case KEY_COALESCE_THRESHOLD:
			return parse_uint_key(key, value, 0, AURORA_MAX_COALESCE_THRESHOLD,
								  &cfg->coalesce_threshold, why, whylen);
		case KEY_PAGE_THREADS:
			return parse_uint_key(key, value, 1, AURORA_MAX_PAGE_THREADS,
								  &cfg->page_threads, why, whylen);
		case KEY_COUNT:
			break;
	}
	snprintf(why, whylen, "internal error: unhandled key");
	return -1;
}

int
aurora_node_config_load(const char *path, aurora_node_config *cfg,
						char *err, size_t errlen)
{
	FILE	   *f;
	char	   *line = NULL;
	size_t		linecap = 0;
	ssize_t		linelen;
	int			lineno = 0;
	int			seen_on[KEY_COUNT] = {0};
	int			rc = -1;
	int			k;

	memset(cfg, 0, sizeof(*cfg));
	cfg->max_message_bytes = 16777216u;
	cfg->gossip_interval_ms = AURORA_DEFAULT_GOSSIP_INTERVAL_MS;
	cfg->peer_timeout_ms = AURORA_DEFAULT_PEER_TIMEOUT_MS;
	cfg->walredo_helpers = AURORA_DEFAULT_WALREDO_HELPERS;
	cfg->walredo_timeout_ms = AURORA_DEFAULT_WALREDO_TIMEOUT_MS;
	cfg->coalesce_threshold = AURORA_DEFAULT_COALESCE_THRESHOLD;
	cfg->page_threads = AURORA_DEFAULT_PAGE_THREADS;
	if (strlen(path) >= sizeof(cfg->source))
	{
		snprintf(err, errlen, "%.200s...: config path is too long", path);
		return -1;
	}
	/*
	 * Keep the absolute path: relative paths in the file are resolved
	 * against its directory, and aurora-ctl hands this path to the daemon,
	 * so neither may depend on the current directory.  Messages still show
	 * the path as the user wrote it.
	 */
	{
		char	   *abs = realpath(path, NULL);

		if (abs != NULL && strlen(abs) < sizeof(cfg->source))
			strcpy(cfg->source, abs);
		else
			strcpy(cfg->source, path);
		free(abs);
	}

	f = fopen(path, "r");
	if (f == NULL)
	{
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}

	while ((linelen = getline(&line, &linecap, f)) != -1)
	{
		char	   *s;
		char	   *eq;
		char	   *key;
		char	   *value;
		char		why[256];
		int			found = -1;

		lineno++;
		if ((size_t) linelen != strlen(line))
		{
			snprintf(err, errlen, "%s:%d: line contains a NUL byte", path, lineno);
			goto out;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL)
		{
			snprintf(err, errlen, "%s:%d: expected 'key = value', found no '='", path, lineno);
			goto out;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		for (k = 0; k < KEY_COUNT; k++)
			if (strcmp(key, config_keys[k].name) == 0)
				found = k;
		if (found < 0)
		{
			snprintf(err, errlen, "%s:%d: unknown key '%.64s'", path, lineno, key);
			goto out;
		}
		if (seen_on[found] != 0)
		{
			snprintf(err, errlen, "%s:%d: duplicate key '%s' (first set on line %d)",
					 path, lineno, key, seen_on[found]);
			goto out;
		}
		seen_on[found] = lineno;
		if (*value == '\0')
		{
			snprintf(err, errlen, "%s:%d: empty value for key '%s'", path, lineno, key);
			goto out;
		}
		if (apply_value(cfg, (enum config_key) found, value, why, sizeof(why)) != 0)
		{
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			goto out;
		}
	}
	if (ferror(f))
	{
		snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
		goto out;
	}

	for (k = 0; k < KEY_COUNT; k++)
	{
		if (config_keys[k].required && seen_on[k] == 0)
		{
			snprintf(err, errlen, "%s: missing required key '%s'", path, config_keys[k].name);
			goto out;
		}
	}
	if (seen_on[KEY_PID_FILE] == 0 &&
		snprintf(cfg->pid_file, sizeof(cfg->pid_file), "%s/aurora-storage.pid",
				 cfg->data_dir) >= (int) sizeof(cfg->pid_file))
	{
		snprintf(err, errlen, "%s: data_dir is too long to hold the pid file", path);
		goto out;
	}
	if (seen_on[KEY_LOG_FILE] == 0 &&
		snprintf(cfg->log_file, sizeof(cfg->log_file), "%s/aurora-storage.log",
				 cfg->data_dir) >= (int) sizeof(cfg->log_file))
	{
		snprintf(err, errlen, "%s: data_dir is too long to hold the log file", path);
		goto out;
	}
	rc = 0;

out:
	free(line);
	fclose(f);
	return rc;
}
