// diagnostics.cpp: printing diagnostics as `file:line:col: error: message`, source line, caret.
#include "support/diagnostics.hpp"

namespace hpo {
namespace {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::Error: return "error";
    case Severity::Warning: return "warning";
    case Severity::Note: return "note";
  }
  return "error";
}

const char* severity_color(Severity s) {
  switch (s) {
    case Severity::Error: return "\033[1;31m";
    case Severity::Warning: return "\033[1;35m";
    case Severity::Note: return "\033[1;36m";
  }
  return "";
}

bool is_utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

void Diagnostics::error_at(std::string where, std::string message) {
  Diagnostic d{Severity::Error, {}, std::move(where), std::move(message)};
  ++errors_;
  print(d);
}

void Diagnostics::report(Severity severity, SourceLoc loc, std::string message) {
  if (severity == Severity::Warning && warnings_as_errors_) severity = Severity::Error;
  // A loop body is checked once per iteration; the same message at the same place is said once.
  if (loc.valid() && !seen_.emplace(loc.file, loc.line, loc.column, message).second) return;
  if (severity == Severity::Error) {
    if (errors_ >= max_errors_) {
      if (!said_too_many_) {
        out_ << "hpoc: fatal error: too many errors emitted, stopping now\n";
        said_too_many_ = true;
      }
      ++errors_;
      return;
    }
    ++errors_;
  } else if (severity == Severity::Warning) {
    ++warnings_;
  }
  Diagnostic d{severity, loc, {}, std::move(message)};
  print(d);
}

void Diagnostics::print(const Diagnostic& d) {
  const char* bold = color_ ? "\033[1m" : "";
  const char* reset = color_ ? "\033[0m" : "";
  if (d.loc.valid() && d.loc.file < sources_.size()) {
    const SourceFile& file = sources_.file(d.loc.file);
    out_ << bold << file.path << ':' << d.loc.line << ':' << d.loc.column << ": " << reset;
  } else if (!d.where.empty()) {
    out_ << bold << d.where << ": " << reset;
  }
  out_ << (color_ ? severity_color(d.severity) : "") << severity_name(d.severity) << ": " << reset
       << bold << d.message << reset << '\n';
  if (!d.loc.valid() || d.loc.file >= sources_.size()) return;

  std::string_view line = sources_.file(d.loc.file).line_text(d.loc.line);
  // Long lines (minified or generated input) are shown as a window around the caret.
  constexpr std::uint32_t kContext = 80;
  const std::uint32_t first = d.loc.column > kContext ? d.loc.column - kContext : 1;
  const std::uint32_t last = d.loc.column + kContext;
  std::string shown = first > 1 ? "..." : "";
  std::string caret = first > 1 ? "   " : "";
  std::uint32_t column = 1;
  for (std::size_t i = 0; i < line.size() && column <= last; ++i) {
    char c = line[i];
    bool starts_code_point = !is_utf8_continuation(c);
    if (column >= first) {
      if (starts_code_point && column < d.loc.column) caret += (c == '\t' ? '\t' : ' ');
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = ' ';
      shown += c;
    }
    if (starts_code_point) ++column;
  }
  if (column > last && column <= line.size()) shown += "...";
  out_ << shown << '\n' << caret << (color_ ? "\033[1;32m" : "") << '^' << reset << '\n';
}

}  // namespace hpo
