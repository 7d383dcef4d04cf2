// A small allocating RESP2/RESP3 reply decoder that builds a tree.
//
// Used at start-up only (the upstream's COMMAND reply, INFO, ROLE...), never
// on the data path: the data path frames replies without building objects
// (reply_framer).  Pure: no I/O, no globals, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dp::resp {

struct Value {
  // Scoped: an unscoped enumerator `integer` would clash with the field.
  enum class Type : uint8_t {
    simple,    // +text
    error,     // -text and !len (blob error); str holds the text
    integer,   // :n
    bulk,      // $len
    null,      // $-1, *-1, _
    array,     // *n
    map,       // %n: elems holds 2n values, key then value
    set,       // ~n
    push,      // >n
    double_,   // ,text (str keeps the text exactly as sent)
    boolean,   // #t / #f (integer is 1 / 0)
    verbatim,  // =len: str holds "txt:..." exactly as sent
    bignum,    // (digits (str keeps the digits)
  };
  Type type = Type::null;
  std::string str;
  int64_t integer = 0;
  std::vector<Value> elems;

  bool is_string() const { return type == Type::simple || type == Type::bulk || type == Type::verbatim; }
  bool is_aggregate() const {
    return type == Type::array || type == Type::map || type == Type::set || type == Type::push;
  }
};

// Decodes one reply from the start of `in`.  Attributes (|n) before a reply
// are read and dropped.  Returns true with *consumed = bytes of the reply.
// Returns false with an empty *error when `in` holds only part of a reply
// (feed more and call again from the start), or with *error naming the cause
// and byte offset when the input is not RESP.  Nesting is limited to
// kMaxDepth levels.
inline constexpr int kMaxDepth = 128;
bool decode_value(std::string_view in, size_t* consumed, Value* out, std::string* error);

}  // namespace dp::resp
