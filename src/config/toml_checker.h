// The generic half of every gapless configuration file: TOML parsing that accepts only
// ASCII, and a Checker that collects every problem with its line and column, so a file
// is reported whole, never one error at a time. The agent's parser (agent_config.cc)
// and the collector's (collector/collector_config.cc) are built on it.
//
// Include only from the .cc files of configuration parsers: it brings in toml++.
//
// Thread contract: plain values and pure functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1  // the Debian library is built with exceptions; we use none
#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

#include "base/status.h"
#include "config/size.h"

namespace gapless::config {

// Collects every problem with its position; nothing stops at the first one.
class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void Error(const toml::source_region& at, const std::string& what) {
    ErrorAt(static_cast<int>(at.begin.line), static_cast<int>(at.begin.column), what);
  }
  void ErrorAt(int line, int column, const std::string& what) {
    errors_.push_back(
        {line, column,
         file_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what});
  }
  bool ok() const { return errors_.empty(); }
  // One line per problem, in file order.
  std::string errors() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const Problem& a, const Problem& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    std::string out;
    for (const Problem& p : errors_) out += (out.empty() ? "" : "\n") + p.text;
    return out;
  }

  void OnlyKeys(const toml::table& t, std::initializer_list<std::string_view> allowed,
                std::string_view where) {
    for (const auto& [key, node] : t) {
      bool known = false;
      for (std::string_view a : allowed) known = known || key.str() == a;
      if (known) continue;
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      Error(key.source(), "unknown key \"" + std::string(key.str()) + "\" in " +
                              std::string(where) + "; known keys: " + list);
    }
  }

  bool String(const toml::table& t, std::string_view key, std::string* out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    if (auto v = n->value<std::string>()) {
      *out = *v;
      return true;
    }
    Error(n->source(), std::string(key) + " must be a string");
    return false;
  }

  bool Int(const toml::table& t, std::string_view key, int64_t lo, int64_t hi, int64_t* out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    const auto v = n->is_integer() ? n->value<int64_t>() : std::nullopt;
    if (!v || *v < lo || *v > hi) {
      Error(n->source(), std::string(key) + " must be an integer from " + std::to_string(lo) +
                             " to " + std::to_string(hi));
      return false;
    }
    *out = *v;
    return true;
  }

  bool Bool(const toml::table& t, std::string_view key, bool* out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    if (auto v = n->value<bool>(); v && n->is_boolean()) {
      *out = *v;
      return true;
    }
    Error(n->source(), std::string(key) + " must be true or false");
    return false;
  }

  // A byte size: an integer, or a string such as "64KiB" or "1 GiB".
  bool Size(const toml::table& t, std::string_view key, uint64_t lo, uint64_t hi, uint64_t* out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    StatusOr<uint64_t> v = InvalidArgumentError("must be a size such as \"64MiB\" or 4096");
    if (n->is_integer() && *n->value<int64_t>() >= 0) {
      v = static_cast<uint64_t>(*n->value<int64_t>());
    } else if (n->is_string()) {
      v = ParseSize(*n->value<std::string>());
    }
    if (!v.ok()) {
      Error(n->source(), std::string(key) + ": " + v.status().message());
      return false;
    }
    if (*v < lo || *v > hi) {
      Error(n->source(), std::string(key) + " must be from " + std::to_string(lo) + " to " +
                             std::to_string(hi) + " bytes");
      return false;
    }
    *out = *v;
    return true;
  }

  // The tables of an array of tables (written [[written_as]]); none when the key is
  // absent, and an error saying how to write it when it is something else.
  std::vector<const toml::table*> Tables(const toml::table& t, std::string_view key,
                                         std::string_view written_as) {
    std::vector<const toml::table*> out;
    const toml::node* n = t.get(key);
    if (n == nullptr) return out;
    const toml::array* list = n->as_array();
    if (list == nullptr || !list->is_array_of_tables()) {
      Error(n->source(), std::string(key) + " must be an array of tables: write each as " +
                             std::string(written_as));
      return out;
    }
    for (const toml::node& el : *list) out.push_back(el.as_table());
    return out;
  }

  const toml::table* Table(const toml::table& t, std::string_view key) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table())
      Error(n->source(), std::string(key) + " must be a table ([" + std::string(key) + "])");
    return n->as_table();
  }

 private:
  struct Problem {
    int line;
    int column;
    std::string text;
  };
  const std::string file_;
  std::vector<Problem> errors_;
};

// ASCII check and TOML syntax; the table or an error "FILE:LINE:COLUMN: ...".
StatusOr<toml::table> ParseToml(std::string_view text, const std::string& file_name);

}  // namespace gapless::config
