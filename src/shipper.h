/*
 * shipper.h
 *	  The WAL shipper background worker (shipper.c).
 */
#ifndef AURORA_SHIPPER_H
#define AURORA_SHIPPER_H

extern void aurora_shipper_init(void);

#endif							/* AURORA_SHIPPER_H */
