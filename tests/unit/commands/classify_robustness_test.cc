// classify() on arbitrary argument lists for every command the server
// announced: it must never read outside args and every key it returns must
// be one of the arguments after the name.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "proxy/commands/command_table.h"
#include "unit/command_table_data.h"

using namespace dp::commands;

namespace {

std::unique_ptr<CommandTable> load_table() { return dp::test::load_command_table(); }

// Tokens that steer key extraction: keywords, counts (valid, huge,
// negative, not numbers), and the empty string.
const char* const kVocabulary[] = {
    "k",      "STREAMS", "streams", "KEYS", "STORE", "BY",  "GET",       "SET",  "INCRBY",
    "LIMIT",  "BLOCK",   "GROUP",   "AUTH", "AUTH2", "DB",  "OVERFLOW",  "0",    "1",
    "2",      "3",       "-1",      "99",   "2147483648", "99999999999999999999", "x*", "",
    "STOREDIST", "COUNT", "u8",
};

}  // namespace

TEST_CASE("random arguments for every command yield only keys that are arguments") {
  auto table = load_table();
  std::mt19937 rng(12345);
  std::uniform_int_distribution<size_t> word(0, std::size(kVocabulary) - 1);
  std::uniform_int_distribution<int> count(0, 9);
  Classification out;
  std::vector<std::string> storage;
  std::vector<std::string_view> args;
  size_t calls = 0, with_keys = 0;
  for (const CommandInfo* info : table->commands()) {
    std::vector<std::string> names{info->name};
    for (const auto& [sub, _] : info->subcommands) names.push_back(info->name + " " + sub);
    for (const std::string& name : names) {
      for (int round = 0; round < 60; ++round) {
        storage.clear();
        size_t space = name.find(' ');
        storage.push_back(name.substr(0, space));
        if (space != std::string::npos) storage.push_back(name.substr(space + 1));
        for (int n = count(rng); n > 0; --n) storage.emplace_back(kVocabulary[word(rng)]);
        args.assign(storage.begin(), storage.end());
        table->classify(args, &out);
        ++calls;
        with_keys += !out.keys.empty();
        for (std::string_view key : out.keys) {
          // The function libraries' pseudo key is a static, not an argument.
          bool is_arg = key.data() == kFunctionLibrariesKey.data();
          for (size_t i = 1; i < storage.size(); ++i)
            is_arg = is_arg || (key.data() == storage[i].data() && key.size() == storage[i].size());
          REQUIRE_MESSAGE(is_arg, name << ": key outside the arguments");
        }
        if (out.kind != Kind::write) CHECK_FALSE(out.db_wide);
      }
    }
  }
  CHECK(calls > 10000);
  CHECK(with_keys > calls / 4);  // the vocabulary does exercise key extraction
}
