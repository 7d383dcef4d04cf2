// CRC32C (Castagnoli), as used by iSCSI/ext4: SSE4.2 crc32 instruction when
// the CPU has it (checked once), else a table-driven portable version.
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dp::log {

// Continues a crc: crc32c_extend(crc32c_extend(0, a), b) == crc32c(a+b).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32c(const void* data, size_t n) { return crc32c_extend(0, data, n); }

// Exposed for tests: the two implementations, bypassing the CPU check.
uint32_t crc32c_portable(uint32_t crc, const void* data, size_t n);
bool crc32c_hardware_available();
uint32_t crc32c_hardware(uint32_t crc, const void* data, size_t n);  // only if available

}  // namespace dp::log
