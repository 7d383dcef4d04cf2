// Consistency of the key table itself.
#include <set>
#include <string>

#include <doctest/doctest.h>

#include "config/schema.h"

using namespace dp::config;

TEST_CASE("every key belongs to a listed section and appears once") {
  std::set<std::string_view> names;
  std::set<std::string_view> section_names;
  for (const auto& s : sections()) section_names.insert(s.name);
  for (const auto& key : keys()) {
    INFO(key.name);
    CHECK(names.insert(key.name).second);
    CHECK(key.name.find('.') != std::string_view::npos);
    CHECK(section_names.count(key.section()) == 1);
  }
}

TEST_CASE("32-bit fields have a maximum that fits in 32 bits") {
  for (const auto& key : keys()) {
    if (!std::holds_alternative<uint32_t Config::*>(key.field)) continue;
    INFO(key.name);
    CHECK(key.max <= UINT32_MAX);
    CHECK(key.min <= key.max);
  }
}

TEST_CASE("every choice round-trips through its field, so enum order matches the table") {
  for (const auto& key : keys()) {
    if (key.kind != KeyKind::choice) continue;
    for (auto choice : key.choices) {
      INFO(key.name, " = ", choice);
      Config c;
      REQUIRE(set_value(key, std::string(choice), &c) == "");
      CHECK(format_value(key, c) == choice);
    }
  }
  Config c;
  REQUIRE(set_value(*find_key("durability.mode"), "off", &c) == "");
  CHECK(c.durability == DurabilityMode::off);
  REQUIRE(set_value(*find_key("recovery.on_unknown_dataset"), "restore", &c) == "");
  CHECK(c.on_unknown_dataset == OnUnknownDataset::restore);
}

TEST_CASE("values at the ends of a range are accepted and one past is refused") {
  const Key& clients = *find_key("listen.max_clients");
  Config c;
  CHECK(set_value(clients, "1", &c) == "");
  CHECK(set_value(clients, "1000000", &c) == "");
  CHECK(c.max_clients == 1000000);
  CHECK(set_value(clients, "1000001", &c) != "");
  const Key& segment = *find_key("log.segment_size");
  CHECK(set_value(segment, "4kb", &c) == "");
  CHECK(set_value(segment, "16gb", &c) == "");
  CHECK(set_value(segment, "17179869185", &c) != "");
}
