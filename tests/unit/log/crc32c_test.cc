#include "log/crc32c.h"

#include <doctest/doctest.h>

#include <random>
#include <string>

using namespace dp::log;

TEST_CASE("crc32c matches the RFC 3720 and check-value vectors") {
  std::string zeros(32, '\0'), ones(32, '\xff'), inc(32, '\0');
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<char>(i);
  CHECK(crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  CHECK(crc32c(ones.data(), ones.size()) == 0x62A8AB43u);
  CHECK(crc32c(inc.data(), inc.size()) == 0x46DD794Eu);
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  CHECK(crc32c_portable(0, "123456789", 9) == 0xE3069283u);
}

TEST_CASE("crc32c hardware and portable versions agree on every length and alignment") {
  if (!crc32c_hardware_available()) {
    MESSAGE("no SSE4.2 on this CPU: only the portable version is tested");
    return;
  }
  std::mt19937 rng(7);
  std::string buf(4096 + 16, '\0');
  for (auto& c : buf) c = static_cast<char>(rng());
  for (size_t align = 0; align < 8; ++align)
    for (size_t n : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 1000u, 4096u})
      CHECK(crc32c_hardware(0, buf.data() + align, n) == crc32c_portable(0, buf.data() + align, n));
}

TEST_CASE("crc32c_extend over pieces equals the crc of the whole") {
  std::string s = "the quick brown fox jumps over the lazy dog";
  uint32_t whole = crc32c(s.data(), s.size());
  for (size_t cut = 0; cut <= s.size(); ++cut)
    CHECK(crc32c_extend(crc32c(s.data(), cut), s.data() + cut, s.size() - cut) == whole);
}
