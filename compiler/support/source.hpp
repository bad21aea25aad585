// source.hpp: the source files of one compilation and positions (file, line, column) in them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hpo {

using FileId = std::uint32_t;

// 1-based line and column; column counts Unicode code points, as editors do.
struct SourceLoc {
  FileId file = 0;
  std::uint32_t line = 0;
  std::uint32_t column = 0;

  bool valid() const { return line != 0; }
  friend bool operator==(const SourceLoc&, const SourceLoc&) = default;
};

struct SourceFile {
  std::string path;  // as the user named it, so messages show what they typed
  std::string text;
  std::vector<std::size_t> line_starts;

  std::string_view line_text(std::uint32_t line) const;
};

class SourceManager {
 public:
  FileId add(std::string path, std::string text);
  const SourceFile& file(FileId id) const { return *files_.at(id); }
  std::size_t size() const { return files_.size(); }

 private:
  std::vector<std::unique_ptr<SourceFile>> files_;
};

}  // namespace hpo
