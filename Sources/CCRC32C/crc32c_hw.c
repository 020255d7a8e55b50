// CRC-32C with the CPU's own instruction, where there is one; LMQStore's CRC32C falls back to its
// slice-by-8 tables elsewhere. Compiled without special flags: the functions that use the instruction
// carry a target attribute, and callers check lmq_crc32c_hardware_available() first.

#include "crc32c_hw.h"
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

int lmq_crc32c_hardware_available(void) {
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

__attribute__((target("sse4.2")))
uint32_t lmq_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    const unsigned char *bytes = (const unsigned char *)data;
    uint64_t state = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        state = _mm_crc32_u64(state, word);
        bytes += 8;
        length -= 8;
    }
    uint32_t state32 = (uint32_t)state;
    while (length > 0) {
        state32 = _mm_crc32_u8(state32, *bytes);
        bytes += 1;
        length -= 1;
    }
    return ~state32;
}

#elif defined(__aarch64__) && (defined(__linux__) || defined(__APPLE__))
#include <arm_acle.h>
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
int lmq_crc32c_hardware_available(void) {
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0;
}
#else
int lmq_crc32c_hardware_available(void) {
    return 1;  // every Apple silicon CPU has the CRC extension
}
#endif

__attribute__((target("crc")))
uint32_t lmq_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    const unsigned char *bytes = (const unsigned char *)data;
    uint32_t state = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        state = __crc32cd(state, word);
        bytes += 8;
        length -= 8;
    }
    while (length > 0) {
        state = __crc32cb(state, *bytes);
        bytes += 1;
        length -= 1;
    }
    return ~state;
}

#else

int lmq_crc32c_hardware_available(void) {
    return 0;
}

uint32_t lmq_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    (void)data;
    (void)length;
    return crc;
}

#endif
