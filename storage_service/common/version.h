/*
 * version.h - release version of the aurora storage service components.
 * Printed by --version of the daemon and aurora-ctl; independent of the
 * wire protocol version (AURORA_PROTOCOL_VERSION in wire.h), which changes
 * only when the bytes on the wire change.
 */
#ifndef AURORA_VERSION_H
#define AURORA_VERSION_H

#define AURORA_SERVICE_VERSION	"0.1.0"

#endif
