/*
 * start_state_writer.h
 *	  Storing the compute's start state on PG 0 after every checkpoint
 *	  (start_state_writer.c); called by the shipper at its heartbeat.
 */
#ifndef AURORA_START_STATE_WRITER_H
#define AURORA_START_STATE_WRITER_H

extern void aurora_start_state_writer_define_gucs(void);
extern void aurora_start_state_writer_tick(void);

#endif							/* AURORA_START_STATE_WRITER_H */
