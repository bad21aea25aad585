// param_values_test.cpp: param values from JSON files and --set, checked against declared shapes.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "helpers.hpp"
#include "sema/param_values.hpp"

using namespace hpo;

namespace {
std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = "/tmp/hpoc_unit_" + name;
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST_CASE("params come from defaults, then JSON, then --set", "[params]") {
  auto c = test::check(test::model_with("param A[2, 2]\nparam h = 1.0\nparam m[3] = 2.0\nstate x = 0.0", "x' = x"));
  INFO(c->messages.str());
  REQUIRE(c->model);
  ParamValues v = default_param_values(*c->model);
  CHECK(v.values[0].empty());
  CHECK(v.values[2] == std::vector<double>{2, 2, 2});
  CHECK_FALSE(require_all_params(*c->model, v, *c->diags));
  CHECK(c->messages.str().find("param 'A' has no default") != std::string::npos);

  std::string path = write_temp("ok.json", R"({"A": [[1, 2], [3, 4]], "m": 5})");
  REQUIRE(load_param_file(*c->model, path, v, *c->sources, *c->diags));
  CHECK(v.values[0] == std::vector<double>{1, 2, 3, 4});
  CHECK(v.values[2] == std::vector<double>{5, 5, 5});
  REQUIRE(set_param(*c->model, "h=2.5", v, *c->diags));
  CHECK(v.values[1] == std::vector<double>{2.5});
  REQUIRE(set_param(*c->model, "m=[1,2,3]", v, *c->diags));
  CHECK(v.values[2] == std::vector<double>{1, 2, 3});
  CHECK(require_all_params(*c->model, v, *c->diags));
}

TEST_CASE("bad param values are errors that say what is wrong", "[params][error]") {
  auto c = test::check(test::model_with("param A[2, 2] = 0.0\nstate x = 0.0", "x' = x"));
  REQUIRE(c->model);
  ParamValues v = default_param_values(*c->model);
  CHECK_FALSE(load_param_file(*c->model, write_temp("shape.json", R"({"A": [1, 2, 3]})"), v, *c->sources, *c->diags));
  CHECK(c->messages.str().find("param 'A' has shape [2, 2] but the value given has shape [3]") != std::string::npos);
  CHECK_FALSE(load_param_file(*c->model, write_temp("ragged.json", R"({"A": [[1, 2], [3]]})"), v, *c->sources, *c->diags));
  CHECK(c->messages.str().find("rows have different lengths") != std::string::npos);
  CHECK_FALSE(load_param_file(*c->model, write_temp("unknown.json", R"({"B": 1})"), v, *c->sources, *c->diags));
  CHECK(c->messages.str().find("unknown param 'B'") != std::string::npos);
  CHECK_FALSE(load_param_file(*c->model, write_temp("syntax.json", "{\n  \"A\": [1,\n}\n"), v, *c->sources, *c->diags));
  CHECK(c->messages.str().find("syntax.json:3:1: error: invalid JSON") != std::string::npos);
  CHECK_FALSE(load_param_file(*c->model, write_temp("twice.json", R"({"A": 1, "A": 2})"), v, *c->sources, *c->diags));
  CHECK(c->messages.str().find("param 'A' is given twice") != std::string::npos);
  CHECK_FALSE(set_param(*c->model, "A", v, *c->diags));
  CHECK_FALSE(set_param(*c->model, "A=\"text\"", v, *c->diags));
  CHECK(c->messages.str().find("expected a number or an array, found string") != std::string::npos);
}

TEST_CASE("a default that reads other params follows the values given for them", "[params]") {
  auto c = test::check(test::model_with("param p = 2.0\nparam q = p * 3.0\nparam r[2] = [q, p]\nparam s = log(p)\n"
                                        "noise e ~ normal(0.0, 1.0)\nstate x = sqrt(p)\nstate y = e * q",
                                        "x' = x + q + r[0] + s\ny' = y"));
  INFO(c->messages.str());
  REQUIRE(c->model);
  ParamValues v;
  REQUIRE(resolve_param_values(*c->model, "", {"p=5"}, v, *c->sources, *c->diags));
  CHECK(v.values[1] == std::vector<double>{15});
  CHECK(v.values[2] == std::vector<double>{15, 5});
  CHECK(v.values[3] == std::vector<double>{std::log(5.0)});
  // A value given for the derived param itself wins over its formula.
  REQUIRE(resolve_param_values(*c->model, write_temp("derived.json", R"({"q": 1})"), {"p=5"}, v, *c->sources, *c->diags));
  CHECK(v.values[1] == std::vector<double>{1});
  CHECK(v.values[2] == std::vector<double>{1, 5});
  CHECK(v.given == std::vector<bool>{true, true, false, false});

  // Values that make a derived default or an initial state not finite: errors at their expressions
  // (the state that reads noise is not evaluated before an episode).
  CHECK_FALSE(resolve_param_values(*c->model, "", {"p=-1"}, v, *c->sources, *c->diags));
  CHECK(c->messages.str().find(":5:11: error: the default of param 's' is not finite (nan at element 0)") !=
        std::string::npos);
  CHECK_FALSE(resolve_param_values(*c->model, "", {"p=-1", "s=0"}, v, *c->sources, *c->diags));
  CHECK(c->messages.str().find(":7:11: error: the initial value of state 'x' is not finite (nan at element 0)") !=
        std::string::npos);
  CHECK(c->messages.str().find("state 'y'") == std::string::npos);
}
