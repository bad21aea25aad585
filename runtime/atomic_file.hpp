// atomic_file.hpp: writing a file whole or not at all (beside the target, then renamed over it),
// so a crash or a full disk never leaves a torn checkpoint or picture behind.
#pragma once

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace hpo::runtime {

inline void write_file_atomically(const std::string& path, const std::string& text, const std::string& what) {
  const std::string temporary = path + ".tmp";
  std::error_code ignored;
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + what + " " + temporary);
    out << text;
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(temporary, ignored);
      throw std::runtime_error("writing " + what + " " + temporary + " failed");
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, ignored);
    throw std::runtime_error("cannot move " + what + " into place at " + path + ": " + error.message());
  }
}

}  // namespace hpo::runtime
