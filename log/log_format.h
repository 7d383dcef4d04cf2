// Constants shared by the log writer and reader.  The grammar they encode
// is in log/FORMAT.md; change both together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace dp::log::format {

inline constexpr char kSegmentMagic[8] = {'D', 'P', 'L', 'O', 'G', 'S', 'E', 'G'};
inline constexpr uint32_t kVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 80;
inline constexpr size_t kMaxReplidLen = 40;
inline constexpr size_t kSegHdrFirstOffset = 16;
inline constexpr size_t kSegHdrReplidLen = 24;
inline constexpr size_t kSegHdrReplid = 28;
inline constexpr size_t kSegHdrCrc = 76;

inline constexpr uint32_t kFrameMagic = 0xD17E10C5u;
inline constexpr size_t kFrameHeaderSize = 28;
inline constexpr size_t kFrameType = 4;
inline constexpr size_t kFrameSyncBack = 5;  // 3 bytes
inline constexpr uint32_t kMaxSyncBack = (1u << 24) - 1;
inline constexpr size_t kFrameFirstOffset = 8;
inline constexpr size_t kFrameLength = 16;
inline constexpr size_t kFrameBatchBack = 20;
inline constexpr size_t kFrameCrc = 24;
// The crc covers header bytes [kFrameCrcFrom, kFrameCrc) then the payload.
inline constexpr size_t kFrameCrcFrom = 4;

enum class FrameType : uint8_t { data = 1, replid = 2 };

inline constexpr const char* kSegmentSuffix = ".seg";
inline constexpr const char* kResetTempName = "reset.tmp";
inline constexpr const char* kCheckpointSubdir = "checkpoints";

inline void put32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline void put64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline uint32_t get32(const unsigned char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t get64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace dp::log::format
