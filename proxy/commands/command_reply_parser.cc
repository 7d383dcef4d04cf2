#include "proxy/commands/command_reply_parser.h"

#include <limits>
#include <string_view>

namespace dp::commands {
namespace {

using resp::Value;

struct FlagName {
  std::string_view name;
  uint32_t bit;
};
constexpr FlagName kFlagNames[] = {
    {"write", kWrite},       {"readonly", kReadonly},        {"blocking", kBlocking},
    {"pubsub", kPubsub},     {"noscript", kNoscript},        {"movablekeys", kMovableKeys},
    {"module", kModule},     {"no_multi", kNoMulti},         {"admin", kAdmin},
    {"loading", kLoading},   {"stale", kStale},
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_list(const Value& v) { return v.type == Value::Type::array || v.type == Value::Type::set; }

// Field `key` of a RESP3 map or a RESP2 flat [key, value, ...] array.
const Value* field(const Value& obj, std::string_view key) {
  if (obj.type != Value::Type::map && obj.type != Value::Type::array) return nullptr;
  for (size_t i = 0; i + 1 < obj.elems.size(); i += 2)
    if (obj.elems[i].is_string() && obj.elems[i].str == key) return &obj.elems[i + 1];
  return nullptr;
}

bool int_field(const Value& obj, std::string_view key, int* out) {
  const Value* v = field(obj, key);
  if (v == nullptr || v->type != Value::Type::integer || v->integer < std::numeric_limits<int>::min() ||
      v->integer > std::numeric_limits<int>::max())
    return false;
  *out = static_cast<int>(v->integer);
  return true;
}

bool has_string(const Value* list, std::string_view s) {
  if (list == nullptr || !is_list(*list)) return false;
  for (const Value& e : list->elems)
    if (e.is_string() && e.str == s) return true;
  return false;
}

bool parse_begin(const Value& bs, KeySpec* ks, std::string* why) {
  const Value* type = field(bs, "type");
  const Value* spec = field(bs, "spec");
  if (type == nullptr || !type->is_string()) return *why = "begin_search has no type", false;
  if (type->str == "index") {
    if (spec == nullptr || !int_field(*spec, "index", &ks->index))
      return *why = "begin_search index has no integer 'index'", false;
    ks->begin = KeySpec::Begin::index;
  } else if (type->str == "keyword") {
    const Value* kw = spec == nullptr ? nullptr : field(*spec, "keyword");
    if (kw == nullptr || !kw->is_string() || !int_field(*spec, "startfrom", &ks->index))
      return *why = "begin_search keyword needs 'keyword' and 'startfrom'", false;
    ks->keyword = kw->str;
    ks->begin = KeySpec::Begin::keyword;
  } else {
    ks->begin = KeySpec::Begin::unknown;  // "unknown", or a type newer than this proxy
  }
  return true;
}

bool parse_find(const Value& fk, KeySpec* ks, std::string* why) {
  const Value* type = field(fk, "type");
  const Value* spec = field(fk, "spec");
  if (type == nullptr || !type->is_string()) return *why = "find_keys has no type", false;
  if (type->str == "range") {
    if (spec == nullptr || !int_field(*spec, "lastkey", &ks->lastkey) ||
        !int_field(*spec, "keystep", &ks->keystep) || !int_field(*spec, "limit", &ks->limit))
      return *why = "find_keys range needs 'lastkey', 'keystep' and 'limit'", false;
    ks->find = KeySpec::Find::range;
  } else if (type->str == "keynum") {
    if (spec == nullptr || !int_field(*spec, "keynumidx", &ks->keynumidx) ||
        !int_field(*spec, "firstkey", &ks->firstkey) || !int_field(*spec, "keystep", &ks->keystep))
      return *why = "find_keys keynum needs 'keynumidx', 'firstkey' and 'keystep'", false;
    ks->find = KeySpec::Find::keynum;
  } else {
    ks->find = KeySpec::Find::unknown;
  }
  return true;
}

bool parse_key_spec(const Value& v, KeySpec* ks, std::string* why) {
  if (v.type != Value::Type::map && v.type != Value::Type::array) return *why = "is not a map", false;
  const Value* flags = field(v, "flags");
  ks->not_key = has_string(flags, "not_key");
  ks->incomplete = has_string(flags, "incomplete");
  const Value* bs = field(v, "begin_search");
  const Value* fk = field(v, "find_keys");
  if (bs == nullptr || fk == nullptr) return *why = "lacks begin_search or find_keys", false;
  return parse_begin(*bs, ks, why) && parse_find(*fk, ks, why);
}

bool fail(std::string* error, const std::string& where, const std::string& what) {
  *error = where + ": " + what;
  return false;
}

}  // namespace

bool parse_command_entry(const Value& entry, const std::string& where, CommandInfo* out,
                         std::string* error) {
  if (entry.type != Value::Type::array) return fail(error, where, "is not an array");
  const auto& e = entry.elems;
  if (e.size() < 6) return fail(error, where, "has " + std::to_string(e.size()) + " fields, want at least 6");
  if (!e[0].is_string() || e[0].str.empty()) return fail(error, where, "name is not a string");
  out->name = lower(e[0].str);
  const std::string here = where + " ('" + out->name + "')";
  for (size_t i : {1, 3, 4, 5}) {
    if (e[i].type != Value::Type::integer)
      return fail(error, here, "field " + std::to_string(i) + " is not an integer");
  }
  if (!is_list(e[2])) return fail(error, here, "flags are not an array");
  auto as_int = [](const Value& v) {
    if (v.integer > std::numeric_limits<int>::max()) return std::numeric_limits<int>::max();
    if (v.integer < std::numeric_limits<int>::min()) return std::numeric_limits<int>::min();
    return static_cast<int>(v.integer);
  };
  out->arity = as_int(e[1]);
  out->first_key = as_int(e[3]);
  out->last_key = as_int(e[4]);
  out->step = as_int(e[5]);
  for (const Value& f : e[2].elems) {
    if (!f.is_string()) return fail(error, here, "a flag is not a string");
    for (const FlagName& fn : kFlagNames)
      if (f.str == fn.name) out->flags |= fn.bit;
  }

  if (e.size() > 8 && e[8].type != Value::Type::null) {
    if (!is_list(e[8])) return fail(error, here, "key specs are not an array");
    for (size_t i = 0; i < e[8].elems.size(); ++i) {
      KeySpec ks;
      std::string why;
      if (!parse_key_spec(e[8].elems[i], &ks, &why))
        return fail(error, here, "key spec " + std::to_string(i) + " " + why);
      out->key_specs.push_back(std::move(ks));
    }
  }

  if (e.size() > 9 && e[9].type != Value::Type::null) {
    if (!is_list(e[9])) return fail(error, here, "subcommands are not an array");
    for (size_t i = 0; i < e[9].elems.size(); ++i) {
      auto sub = std::make_unique<CommandInfo>();
      if (!parse_command_entry(e[9].elems[i], here + " subcommand " + std::to_string(i), sub.get(), error))
        return false;
      size_t bar = sub->name.find('|');
      std::string key = bar == std::string::npos ? sub->name : sub->name.substr(bar + 1);
      out->subcommands[key] = std::move(sub);
    }
  }
  return true;
}

}  // namespace dp::commands
