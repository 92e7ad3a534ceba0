/*
 * walredo_pipe.h
 *	  The pipe protocol between a storage node and its WAL-redo helper
 *	  (walredo_pipe.c).
 */
#ifndef AURORA_WALREDO_PIPE_H
#define AURORA_WALREDO_PIPE_H

/* keep in step with storage_service/node/redo.c */
#define WALREDO_PROTOCOL_VERSION	1

#define MSG_BEGIN		'B'		/* node -> helper */
#define MSG_PUSH_PAGE	'P'
#define MSG_APPLY		'A'
#define MSG_GET_PAGE	'G'
#define MSG_MASK		'M'
#define MSG_HELLO		'H'		/* helper -> node */
#define MSG_PAGE		'p'
#define MSG_ERROR		'E'
#define MSG_EXIT		'X'

#define FRAME_HEADER_SIZE	5	/* u8 type, u32 body length */
#define BEGIN_BODY_SIZE		17	/* u32 spc, u32 db, u32 rel, u8 fork, u32 blkno */
#define APPLY_HEADER_SIZE	16	/* u64 start_lsn, u64 end_lsn */
#define MASK_HEADER_SIZE	5	/* u8 rmid, u32 blkno */
/* XLogRecordMaxSize of xloginsert.c (not exported in 15) */
#define WAL_RECORD_MAX_SIZE	(1020 * 1024 * 1024)
#define MAX_BODY_SIZE		(APPLY_HEADER_SIZE + WAL_RECORD_MAX_SIZE)

/* Longest error text sent to the node. */
#define MAX_ERROR_TEXT		2000

extern bool walredo_pipe_in_log_hook;

extern void walredo_put_u32(char *p, uint32 v);
extern uint32 walredo_get_u32(const char *p);
extern uint64 walredo_get_u64(const char *p);
extern void walredo_write_all(const char *buf, size_t len);
extern void walredo_send_frame(char type, const char *body1, uint32 len1,
							   const char *body2, uint32 len2);
extern void walredo_send_text(char type, const char *text);
extern bool walredo_read_all(char *buf, size_t len, bool eof_ok);

#endif							/* AURORA_WALREDO_PIPE_H */
