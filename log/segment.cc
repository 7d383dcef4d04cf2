#include "log/segment.h"

#include <cstdio>
#include <cstring>

#include "log/crc32c.h"

namespace dp::log {

using namespace format;

std::string segment_name(uint64_t first_offset) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu%s", static_cast<unsigned long long>(first_offset),
                kSegmentSuffix);
  return buf;
}

std::optional<uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != 24 || name.substr(20) != kSegmentSuffix) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(name[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

void encode_segment_header(const SegmentHeader& h, unsigned char out[kSegmentHeaderSize]) {
  std::memset(out, 0, kSegmentHeaderSize);
  std::memcpy(out, kSegmentMagic, sizeof kSegmentMagic);
  put32(out + 8, kVersion);
  put32(out + 12, static_cast<uint32_t>(kSegmentHeaderSize));
  put64(out + kSegHdrFirstOffset, h.first_offset);
  size_t n = std::min(h.replid.size(), kMaxReplidLen);
  put32(out + kSegHdrReplidLen, static_cast<uint32_t>(n));
  std::memcpy(out + kSegHdrReplid, h.replid.data(), n);
  put32(out + kSegHdrCrc, crc32c(out, kSegHdrCrc));
}

std::string decode_segment_header(std::string_view bytes, SegmentHeader* h) {
  if (bytes.size() < kSegmentHeaderSize) return "file shorter than the segment header";
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (std::memcmp(p, kSegmentMagic, sizeof kSegmentMagic) != 0) return "bad segment magic";
  if (get32(p + kSegHdrCrc) != crc32c(p, kSegHdrCrc)) return "segment header checksum mismatch";
  if (get32(p + 8) != kVersion) return "unsupported segment version " + std::to_string(get32(p + 8));
  if (get32(p + 12) != kSegmentHeaderSize) return "unexpected segment header size";
  uint32_t n = get32(p + kSegHdrReplidLen);
  if (n > kMaxReplidLen) return "replid length out of range";
  h->first_offset = get64(p + kSegHdrFirstOffset);
  h->replid.assign(reinterpret_cast<const char*>(p + kSegHdrReplid), n);
  return "";
}

namespace {
uint32_t frame_crc(const unsigned char* hdr, std::string_view payload) {
  uint32_t c = crc32c(hdr + kFrameCrcFrom, kFrameCrc - kFrameCrcFrom);
  return crc32c_extend(c, payload.data(), payload.size());
}
}  // namespace

void encode_frame_header(const FrameHeader& h, std::string_view payload,
                         unsigned char out[kFrameHeaderSize]) {
  std::memset(out, 0, kFrameHeaderSize);
  put32(out, kFrameMagic);
  out[kFrameType] = static_cast<unsigned char>(h.type);
  for (int i = 0; i < 3; ++i) out[kFrameSyncBack + i] = static_cast<unsigned char>(h.sync_back >> (8 * i));
  put64(out + kFrameFirstOffset, h.first_offset);
  put32(out + kFrameLength, h.length);
  put32(out + kFrameBatchBack, h.batch_back);
  put32(out + kFrameCrc, frame_crc(out, payload));
}

bool check_frame(std::string_view bytes, size_t pos, FrameHeader* h) {
  if (pos > bytes.size() || bytes.size() - pos < kFrameHeaderSize) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + pos;
  if (get32(p) != kFrameMagic) return false;
  uint8_t type = p[kFrameType];
  if (type != static_cast<uint8_t>(FrameType::data) &&
      type != static_cast<uint8_t>(FrameType::replid))
    return false;
  uint32_t len = get32(p + kFrameLength);
  if (bytes.size() - pos - kFrameHeaderSize < len) return false;
  std::string_view payload(bytes.data() + pos + kFrameHeaderSize, len);
  if (get32(p + kFrameCrc) != frame_crc(p, payload)) return false;
  h->type = static_cast<FrameType>(type);
  h->first_offset = get64(p + kFrameFirstOffset);
  h->length = len;
  h->batch_back = get32(p + kFrameBatchBack);
  h->sync_back = p[kFrameSyncBack] | (p[kFrameSyncBack + 1] << 8) | (p[kFrameSyncBack + 2] << 16);
  return true;
}

std::string create_segment_file(FileSystem* fs, const std::string& dir, const std::string& name,
                                uint64_t size, const SegmentHeader* header) {
  std::string path = dir + "/" + name;
  fs->unlink(path);  // a leftover of an earlier attempt; absence is fine
  int fd;
  if (int rc = fs->open(path, true, &fd)) return "log: cannot create " + path + ": " + errno_text(rc);
  int rc = write_zeros(fs, fd, 0, size);
  const char* what = "zero-fill";
  if (rc == 0 && header != nullptr) {
    unsigned char h[kSegmentHeaderSize];
    encode_segment_header(*header, h);
    struct iovec iov{h, sizeof h};
    rc = fs->pwritev(fd, &iov, 1, 0);
    what = "header write";
  }
  if (rc == 0) {
    rc = fs->fdatasync(fd);
    what = "fdatasync";
  }
  fs->close(fd);
  if (rc != 0) return "log: " + std::string(what) + " of " + path + " failed: " + errno_text(rc);
  return "";
}

std::string write_segment_header(FileSystem* fs, const std::string& path,
                                 const SegmentHeader& header) {
  int fd;
  if (int rc = fs->open(path, false, &fd)) return "log: cannot open " + path + ": " + errno_text(rc);
  unsigned char h[kSegmentHeaderSize];
  encode_segment_header(header, h);
  struct iovec iov{h, sizeof h};
  int rc = fs->pwritev(fd, &iov, 1, 0);
  const char* what = "header write";
  if (rc == 0) {
    rc = fs->fdatasync(fd);
    what = "fdatasync";
  }
  fs->close(fd);
  if (rc != 0) return "log: " + std::string(what) + " of " + path + " failed: " + errno_text(rc);
  return "";
}

}  // namespace dp::log
