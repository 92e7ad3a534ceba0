/*
 * config.h - storage node configuration file ("key = value" lines).
 *
 * Read by the aurora-storage daemon at start and by aurora-ctl, which finds
 * a cluster's nodes (URL, pid file, log file) by parsing the same files, so
 * both always agree on what a config means.
 */
#ifndef AURORA_NODE_CONFIG_H
#define AURORA_NODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define AURORA_CONFIG_PATH_MAX		1024
#define AURORA_CONFIG_URL_MAX		256
#define AURORA_MIN_MESSAGE_BYTES	4096u
#define AURORA_MAX_MESSAGE_BYTES	1073741824u
#define AURORA_DEFAULT_GOSSIP_INTERVAL_MS	250u
#define AURORA_MAX_GOSSIP_INTERVAL_MS		3600000u
#define AURORA_DEFAULT_PEER_TIMEOUT_MS		1000u
#define AURORA_MIN_PEER_TIMEOUT_MS			10u
#define AURORA_MAX_PEER_TIMEOUT_MS			600000u

typedef struct aurora_node_config
{
	char		source[AURORA_CONFIG_PATH_MAX];	/* absolute path of the file */
	char		node_id[64];
	char		az[32];
	char		listen_url[AURORA_CONFIG_URL_MAX];
	/* Relative paths are resolved against the config file's directory. */
	char		data_dir[AURORA_CONFIG_PATH_MAX];
	char		pid_file[AURORA_CONFIG_PATH_MAX];
	char		log_file[AURORA_CONFIG_PATH_MAX];
	/* Largest accepted message body, in bytes. */
	uint32_t	max_message_bytes;
	/*
	 * How often each segment compares its SCL with its peers' and fetches
	 * what it is missing (0 turns gossip off), and how long a peer may take
	 * to answer one gossip request.
	 */
	uint32_t	gossip_interval_ms;
	uint32_t	peer_timeout_ms;
} aurora_node_config;

/*
 * Load and validate path into *cfg.  Returns 0, or -1 with a message of the
 * form "FILE:LINE: ..." (or "FILE: ..." for whole-file problems) in err.
 */
int			aurora_node_config_load(const char *path, aurora_node_config *cfg,
									char *err, size_t errlen);

/*
 * Validate a listen/dial URL: tcp://HOST:PORT (HOST may be a name, an IPv4
 * address, [IPv6] or '*') or ipc://PATH.  Returns 0 or -1 with a reason.
 */
int			aurora_validate_url(const char *url, char *err, size_t errlen);

#endif
