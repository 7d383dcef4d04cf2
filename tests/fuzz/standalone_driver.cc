// Runs a libFuzzer target without libFuzzer (for gcc builds and the test
// suite's smoke run): replays the files named on the command line, then
// feeds --iterations=N inputs (default 10000) made from a seeded generator:
// random bytes, and mutations and splices of a few valid RESP seeds.
//   fuzz_<name> [--iterations=N] [--seed=S] [file...]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

// Valid requests and replies; byte 0 of each input is the target's mode byte.
const char* const kSeeds[] = {
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n",
    "PING\r\nSET k \"a\\x41 b\" 'it\\'s'\r\n\r\n*0\r\n*-1\r\n",
    "*2\r\n$4\r\nECHO\r\n$0\r\n\r\nGET\tk\n",
    "+OK\r\n-ERR x\r\n:-1\r\n$3\r\nfoo\r\n$-1\r\n*-1\r\n_\r\n,1.5\r\n#t\r\n(123\r\n",
    "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n",
    "|1\r\n+ttl\r\n:3\r\n%2\r\n+a\r\n~1\r\n:1\r\n+b\r\n=7\r\ntxt:abc\r\n!3\r\nERR\r\n",
};
const char kAlphabet[] = "*$\r\n0123456789-+:_,#!=(%~>|\"' \\x\t?a";

std::string mutate(std::mt19937& rng, std::string s) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits; ++i) {
    const size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 6) {
      case 0:  // overwrite a byte
        if (at < s.size()) s[at] = static_cast<char>(rng());
        break;
      case 1:  // insert a RESP-ish byte
        s.insert(at, 1, kAlphabet[rng() % (sizeof kAlphabet - 1)]);
        break;
      case 2:  // delete a range
        if (at < s.size()) s.erase(at, 1 + rng() % 8);
        break;
      case 3: {  // duplicate a range
        if (at < s.size()) {
          const std::string part = s.substr(at, 1 + rng() % 16);
          s.insert(rng() % (s.size() + 1), part);
        }
        break;
      }
      case 4: {  // splice another seed in
        const char* other = kSeeds[rng() % std::size(kSeeds)];
        s.insert(at, other, std::strlen(other));
        break;
      }
      default:  // change a digit (lengths and counts)
        if (at < s.size()) s[at] = static_cast<char>('0' + rng() % 10);
        break;
    }
  }
  return s;
}

std::string generate(std::mt19937& rng) {
  std::string in(1, static_cast<char>(rng()));  // mode byte
  if (rng() % 4 == 0) {
    const size_t n = rng() % 256;
    for (size_t i = 0; i < n; ++i) {
      in.push_back(rng() % 2 ? kAlphabet[rng() % (sizeof kAlphabet - 1)] : static_cast<char>(rng()));
    }
    return in;
  }
  return in + mutate(rng, kSeeds[rng() % std::size(kSeeds)]);
}

void run_one(const std::string& in) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(in.data()), in.size());
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 10000;
  unsigned long seed = 1;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--iterations=", 13) == 0) {
      iterations = std::strtol(argv[i] + 13, nullptr, 10);
    } else if (std::strncmp(argv[i], "--seed=", 7) == 0) {
      seed = std::strtoul(argv[i] + 7, nullptr, 10);
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "%s: unknown option %s (use --iterations=N --seed=S [file...])\n", argv[0], argv[i]);
      return 2;
    } else {
      files.emplace_back(argv[i]);
    }
  }
  for (const auto& path : files) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "%s: cannot read %s\n", argv[0], path.c_str());
      return 2;
    }
    run_one(std::string(std::istreambuf_iterator<char>(f), {}));
  }
  for (const char* s : kSeeds) {
    for (int mode = 0; mode < 4; ++mode) run_one(std::string(1, static_cast<char>(mode)) + s);
  }
  std::mt19937 rng(static_cast<uint32_t>(seed));
  for (long i = 0; i < iterations; ++i) run_one(generate(rng));
  std::printf("%s: %zu files, %ld generated inputs (seed %lu): no invariant broken\n", argv[0],
              files.size(), iterations, seed);
  return 0;
}
