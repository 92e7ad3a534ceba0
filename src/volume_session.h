/*
 * volume_session.h
 *	  Opening the volume for shipping, resuming after a restart, the
 *	  shipper's replication slot, and the session gate (volume_session.c).
 */
#ifndef AURORA_VOLUME_SESSION_H
#define AURORA_VOLUME_SESSION_H

#include "access/xlogdefs.h"

#include "volume.h"

/* the physical replication slot that keeps the WAL until VDL covers it */
#define SHIPPER_SLOT "aurora_shipper"

extern void aurora_session_gate_init(void);
extern void aurora_open_volume(const aurora_geometry *g);
extern XLogRecPtr aurora_hold_shipper_slot(void);
extern void aurora_advance_shipper_slot(void);
extern void aurora_resume_pgs(XLogRecPtr resume);
extern void aurora_check_fenced(void);
extern void aurora_warn_if_standby_names_name_shipper(void);

#endif							/* AURORA_VOLUME_SESSION_H */
