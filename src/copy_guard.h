/*
 * copy_guard.h
 *	  Refusing commands that copy relation files (copy_guard.c).
 */
#ifndef AURORA_COPY_GUARD_H
#define AURORA_COPY_GUARD_H

extern void aurora_copy_guard_init(void);

#endif							/* AURORA_COPY_GUARD_H */
