// diagnostics.hpp: clang-style error, warning and note messages with the source line and a caret.
#pragma once

#include <cstddef>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "support/source.hpp"

namespace hpo {

enum class Severity { Error, Warning, Note };

struct Diagnostic {
  Severity severity;
  SourceLoc loc;      // invalid for messages about no place (a missing file, a bad flag)
  std::string where;  // shown instead of a location when loc is invalid (a path, a flag)
  std::string message;
};

// Collects messages and prints each as it comes, like a compiler does. Stages report here and
// return; nothing exits from deep inside.
class Diagnostics {
 public:
  Diagnostics(const SourceManager& sources, std::ostream& out, bool color = false)
      : sources_(sources), out_(out), color_(color) {}

  void error(SourceLoc loc, std::string message) { report(Severity::Error, loc, std::move(message)); }
  void warning(SourceLoc loc, std::string message) { report(Severity::Warning, loc, std::move(message)); }
  void note(SourceLoc loc, std::string message) { report(Severity::Note, loc, std::move(message)); }
  // A message about no source position, e.g. "config.json: error: ..." or "hpoc: error: ...".
  void error_at(std::string where, std::string message);

  void report(Severity severity, SourceLoc loc, std::string message);

  std::size_t error_count() const { return errors_; }
  std::size_t warning_count() const { return warnings_; }
  bool has_errors() const { return errors_ > 0; }
  // True once so many errors were printed that further ones only add noise.
  bool too_many() const { return errors_ >= max_errors_; }
  void set_max_errors(std::size_t n) { max_errors_ = n; }
  void set_warnings_as_errors(bool on) { warnings_as_errors_ = on; }

 private:
  void print(const Diagnostic& d);

  const SourceManager& sources_;
  std::ostream& out_;
  bool color_;
  bool warnings_as_errors_ = false;
  std::size_t errors_ = 0;
  std::size_t warnings_ = 0;
  std::size_t max_errors_ = 50;
  bool said_too_many_ = false;
  std::set<std::tuple<FileId, std::uint32_t, std::uint32_t, std::string>> seen_;
};

}  // namespace hpo
