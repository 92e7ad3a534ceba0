/*
 * crc32c.h - CRC32C (Castagnoli) checksum used by the aurora wire protocol
 * and by on-disk log records.  Shared by the storage daemon, the
 * admin CLI and the PostgreSQL extension, so it depends on nothing but libc.
 *
 * Convention (the usual zlib-style chaining): pass 0 as the starting value;
 * the function applies the initial ~0 and the final xor itself, so
 *     aurora_crc32c(aurora_crc32c(0, a, na), b, nb) == aurora_crc32c(0, ab, na+nb)
 * and aurora_crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef AURORA_CRC32C_H
#define AURORA_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t aurora_crc32c(uint32_t crc, const void *data, size_t len);

/*
 * The table-driven version, always available; aurora_crc32c uses the CPU's
 * CRC32C instruction instead where there is one (x86-64 SSE4.2).  Exposed
 * so that the tests can check the two agree.
 */
uint32_t aurora_crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif
