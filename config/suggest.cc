#include "config/suggest.h"

#include <algorithm>
#include <vector>

#include "config/schema.h"

namespace dp::config {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The closest candidate within a typo's distance, or "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

// The section that has a leaf called `leaf`, or "".
std::string section_with_leaf(const std::string& leaf) {
  for (const auto& k : keys())
    if (k.leaf() == leaf && k.kind != KeyKind::inline_secret) return std::string(k.section());
  return "";
}

}  // namespace

bool is_section(const std::string& name) {
  for (const auto& s : sections())
    if (s.name == name) return true;
  return false;
}

std::string leaves_of(const std::string& section) {
  std::string out;
  for (const auto& k : keys())
    if (k.section() == section && k.kind != KeyKind::inline_secret)
      out += (out.empty() ? "" : ", ") + std::string(k.leaf());
  return out;
}

std::string suggest_for_section(const std::string& unknown) {
  // "limits.max_bulk_len: 1mb" written flat at the top level.
  if (const Key* k = find_key(unknown))
    return " (write '" + std::string(k->leaf()) + ":' indented under '" + std::string(k->section()) + ":')";
  std::vector<std::string> names;
  for (const auto& s : sections()) names.emplace_back(s.name);
  std::string best = closest(unknown, names);
  if (!best.empty()) return " (did you mean '" + best + "'?)";
  std::string home = section_with_leaf(unknown);
  if (!home.empty()) return " (it belongs under '" + home + ":')";
  return "";
}

std::string suggest_for_leaf(const std::string& section, const std::string& unknown) {
  std::vector<std::string> leaves;
  for (const auto& k : keys())
    if (k.section() == section && k.kind != KeyKind::inline_secret) leaves.emplace_back(k.leaf());
  std::string best = closest(unknown, leaves);
  if (!best.empty()) return " (did you mean '" + section + "." + best + "'?)";
  std::string home = section_with_leaf(unknown);
  if (!home.empty()) return " (it belongs under '" + home + ":')";
  return " (" + section + " has: " + leaves_of(section) + ")";
}

}  // namespace dp::config
