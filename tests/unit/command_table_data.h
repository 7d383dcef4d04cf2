// The command table of a captured COMMAND reply (tests/data, written by
// tests/tools/capture_command.py), for unit tests that classify commands as
// the proxy does against a real server.  Fails the test on an unreadable
// capture.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "proxy/commands/command_table.h"
#include "proxy/resp/value.h"

namespace dp::test {

inline std::unique_ptr<commands::CommandTable> load_command_table(commands::TableOptions opts = {},
                                                                 const char* file = "redis-7.0.15-command.resp") {
  const std::string path = std::string(DP_TEST_DATA) + "/" + file;
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  resp::Value reply;
  size_t used = 0;
  std::string err;
  REQUIRE_MESSAGE(resp::decode_value(bytes, &used, &reply, &err), path << ": " << err);
  REQUIRE_MESSAGE(used == bytes.size(), path << ": " << bytes.size() - used << " bytes after the reply");
  auto table = commands::CommandTable::from_command_reply(reply, opts, &err);
  REQUIRE_MESSAGE(table != nullptr, path << ": " << err);
  return table;
}

}  // namespace dp::test
