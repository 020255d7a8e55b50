#ifndef CRC32C_HW_H
#define CRC32C_HW_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU computes CRC-32C in hardware (x86-64 SSE4.2 `crc32`, AArch64 CRC extension).
int lmq_crc32c_hardware_available(void);

/// CRC-32C (Castagnoli) of `length` bytes at `data`, continuing from `crc` (0 to start). Only valid when
/// `lmq_crc32c_hardware_available()` returned 1.
uint32_t lmq_crc32c_hardware(uint32_t crc, const void *data, size_t length);

#endif
