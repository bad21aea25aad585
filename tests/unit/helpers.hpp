// helpers.hpp: compiling model text in memory for unit tests, with its diagnostics captured.
#pragma once

#include <memory>
#include <sstream>
#include <string>

#include "sema/sema.hpp"

namespace hpo::test {

struct Checked {
  std::unique_ptr<SourceManager> sources = std::make_unique<SourceManager>();
  std::ostringstream messages;
  std::unique_ptr<Diagnostics> diags;
  std::unique_ptr<CheckedModel> model;
};

inline std::unique_ptr<Checked> check(const std::string& text, const std::string& name = "test.hpo") {
  auto c = std::make_unique<Checked>();
  c->diags = std::make_unique<Diagnostics>(*c->sources, c->messages);
  CheckOptions options;
  options.stdlib_dirs = {std::string(HPOC_SOURCE_DIR) + "/stdlib"};
  c->model = check_source(name, text, *c->sources, *c->diags, options);
  return c;
}

// Checks a file of the source tree (examples/..., tests/golden/...) with the repository's stdlib.
inline std::unique_ptr<Checked> check_path(const std::string& relative) {
  auto c = std::make_unique<Checked>();
  c->diags = std::make_unique<Diagnostics>(*c->sources, c->messages);
  CheckOptions options;
  options.stdlib_dirs = {std::string(HPOC_SOURCE_DIR) + "/stdlib"};
  std::string path = relative.front() == '/' ? relative : std::string(HPOC_SOURCE_DIR) + "/" + relative;
  c->model = check_file(path, *c->sources, *c->diags, options);
  return c;
}

// A minimal model around a step body, for tests about statements and expressions.
inline std::string model_with(const std::string& decls, const std::string& step) {
  return "model t\n" + decls + "\nhorizon 3\nstep {\n" + step + "\n}\n";
}

}  // namespace hpo::test
