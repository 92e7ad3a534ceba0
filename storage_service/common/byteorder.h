/*
 * byteorder.h - fixed-order integer loads and stores for the wire codec,
 * the record envelope, the page store's keys and the tools.  Little-endian
 * is the wire's order (PROTOCOL.md 2); big-endian keys make LMDB's
 * byte-wise order the numeric order.  One copy, inline, so every module
 * reads bytes the same way on any host.
 */
#ifndef AURORA_BYTEORDER_H
#define AURORA_BYTEORDER_H

#include <stdint.h>

static inline void
aurora_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static inline void
aurora_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static inline void
aurora_put_le64(uint8_t *p, uint64_t v)
{
	aurora_put_le32(p, (uint32_t) v);
	aurora_put_le32(p + 4, (uint32_t) (v >> 32));
}

static inline uint16_t
aurora_get_le16(const uint8_t *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}

static inline uint32_t
aurora_get_le32(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) |
		((uint32_t) p[3] << 24);
}

static inline uint64_t
aurora_get_le64(const uint8_t *p)
{
	return (uint64_t) aurora_get_le32(p) | ((uint64_t) aurora_get_le32(p + 4) << 32);
}

static inline void
aurora_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static inline void
aurora_put_be64(uint8_t *p, uint64_t v)
{
	aurora_put_be32(p, (uint32_t) (v >> 32));
	aurora_put_be32(p + 4, (uint32_t) v);
}

static inline uint32_t
aurora_get_be32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) |
		(uint32_t) p[3];
}

static inline uint64_t
aurora_get_be64(const uint8_t *p)
{
	return ((uint64_t) aurora_get_be32(p) << 32) | aurora_get_be32(p + 4);
}

#endif							/* AURORA_BYTEORDER_H */
