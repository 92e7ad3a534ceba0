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
#define AURORA_DEFAULT_WALREDO_HELPERS		2u
#define AURORA_MAX_WALREDO_HELPERS			64u
#define AURORA_DEFAULT_WALREDO_TIMEOUT_MS	10000u
#define AURORA_MIN_WALREDO_TIMEOUT_MS		100u
#define AURORA_MAX_WALREDO_TIMEOUT_MS		600000u
#define AURORA_DEFAULT_COALESCE_THRESHOLD	16u
#define AURORA_MAX_COALESCE_THRESHOLD		1000000u
#define AURORA_DEFAULT_PAGE_THREADS			4u
#define AURORA_MAX_PAGE_THREADS				64u

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
	/*
	 * Page service.  walredo_postgres is the patched server run as a WAL-redo
	 * helper ("" = none: pages that need records applied are UNAVAILABLE,
	 * everything else works); helpers in its pool and how long one may take
	 * per page; a block's chain of records after its newest image longer
	 * than coalesce_threshold is materialized in the background (0 = never);
	 * page_threads serve GETPAGE/REL_SIZE/SEED_PAGES off NNG's threads.
	 */
	char		walredo_postgres[AURORA_CONFIG_PATH_MAX];
	uint32_t	walredo_helpers;
	uint32_t	walredo_timeout_ms;
	uint32_t	coalesce_threshold;
	uint32_t	page_threads;
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
