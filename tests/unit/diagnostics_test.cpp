// diagnostics_test.cpp: the clang-style layout of messages, carets under the right character.
#include <catch2/catch.hpp>
#include <sstream>

#include "support/diagnostics.hpp"

using namespace hpo;

TEST_CASE("a message shows file:line:col, the line and a caret", "[diagnostics]") {
  SourceManager sources;
  FileId id = sources.add("a.hpo", "model m\n\tlet x = y\n");
  std::ostringstream out;
  Diagnostics diags(sources, out);
  diags.error({id, 2, 10}, "unknown name 'y'");
  CHECK(out.str() == "a.hpo:2:10: error: unknown name 'y'\n\tlet x = y\n\t        ^\n");
  CHECK(diags.error_count() == 1);
}

TEST_CASE("columns count characters, not bytes", "[diagnostics]") {
  SourceManager sources;
  FileId id = sources.add("u.hpo", "// \xC3\xA9t\xC3\xA9 x\n");
  std::ostringstream out;
  Diagnostics diags(sources, out);
  diags.warning({id, 1, 8}, "here");
  CHECK(out.str() == "u.hpo:1:8: warning: here\n// \xC3\xA9t\xC3\xA9 x\n       ^\n");
  CHECK(diags.warning_count() == 1);
  CHECK_FALSE(diags.has_errors());
}

TEST_CASE("repeated messages are said once and the total is capped", "[diagnostics]") {
  SourceManager sources;
  FileId id = sources.add("r.hpo", "x\n");
  std::ostringstream out;
  Diagnostics diags(sources, out);
  diags.set_max_errors(3);
  diags.error({id, 1, 1}, "same");
  diags.error({id, 1, 1}, "same");
  CHECK(diags.error_count() == 1);
  for (int i = 0; i < 10; ++i) diags.error({id, 1, 1}, "other " + std::to_string(i));
  CHECK(diags.too_many());
  CHECK(out.str().find("too many errors emitted") != std::string::npos);
  CHECK(out.str().find("other 5") == std::string::npos);
}

TEST_CASE("warnings become errors in strict mode; messages without a place", "[diagnostics]") {
  SourceManager sources;
  std::ostringstream out;
  Diagnostics diags(sources, out);
  diags.set_warnings_as_errors(true);
  FileId id = sources.add("w.hpo", "x\n");
  diags.warning({id, 1, 1}, "jump");
  CHECK(diags.has_errors());
  diags.error_at("params.json", "bad");
  CHECK(out.str().find("params.json: error: bad\n") != std::string::npos);
}
