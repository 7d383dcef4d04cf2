#include "log_test_util.h"

#include "log/crc32c.h"

namespace dp::log::test {

void fix_frame_checksum(FakeFileSystem* fs, const std::string& path, size_t pos) {
  using namespace format;
  std::string d = fs->contents(path);
  auto* p = reinterpret_cast<unsigned char*>(d.data()) + pos;
  uint32_t len = get32(p + kFrameLength);
  uint32_t c = crc32c(p + kFrameCrcFrom, kFrameCrc - kFrameCrcFrom);
  c = crc32c_extend(c, p + kFrameHeaderSize, len);
  put32(p + kFrameCrc, c);
  fs->set_contents(path, d);
}

}  // namespace dp::log::test
