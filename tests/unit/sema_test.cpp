// sema_test.cpp: name resolution, types and shapes, constant folding and next-state coverage.
#include <catch2/catch.hpp>
#include <cmath>

#include "helpers.hpp"

using namespace hpo;
using hpo::test::check;
using hpo::test::model_with;

namespace {

const ast::Expr& let_value(const CheckedModel& m, std::size_t i) {
  return *static_cast<const ast::LetStmt&>(*m.step->at(i)).value;
}

bool has_message(const test::Checked& c, const std::string& text) {
  return c.messages.str().find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("the inventory example checks and its tables are filled", "[sema]") {
  auto c = test::check_path("examples/inventory.hpo");
  INFO(c->messages.str());
  REQUIRE(c->model);
  const auto& m = c->model;
  CHECK(m->name == "inventory");
  CHECK(m->horizon == 50);
  CHECK(m->discount == 1.0);
  REQUIRE(m->states.size() == 2);
  CHECK(m->states[1].symbol->type.dims == std::vector<std::int64_t>{3, 2});
  bool has_choice = false, has_bounded = false;
  for (const auto& a : m->actions) {
    if (a.discrete && a.choices == 2) has_choice = true;
    if (!a.discrete && a.lo == 0 && a.hi == 30) has_bounded = true;
  }
  CHECK(has_choice);
  CHECK(has_bounded);
  REQUIRE(m->noises.size() == 1);
  CHECK(m->noises[0].dist == Distribution::Poisson);
  CHECK(m->files.size() == 2);  // the model and std.inventory
}

TEST_CASE("expressions get types and shapes", "[sema]") {
  auto c = check(model_with("const N = 3\nparam A[N, N] = eye(N)\nstate x[N] = 1.0\naction k : choice(2)\n"
                            "action u[N] : real\nnoise e[N] ~ normal(0.0, 1.0)\nparam B[2, N, N] = 0.5",
                            "let a = A @ x\nlet b = x @ A\nlet c = dot(x, x)\nlet d = B[k] @ u\nlet e2 = x > 0.0\n"
                            "let f = if k == 1 then x else 2.0 * x\nlet g = [x[i] * 2.0 for i in 0..N]\n"
                            "let h = max(x)\nlet i2 = relu(x - e)\nlet j = A[0]\nx' = a + b + d + g\ncost += c + h"));
  INFO(c->messages.str());
  REQUIRE(c->model);
  const CheckedModel& m = *c->model;
  CHECK(let_value(m, 0).type.str() == "real[3]");
  CHECK(let_value(m, 1).type.str() == "real[3]");
  CHECK(let_value(m, 2).type.str() == "real");
  CHECK(let_value(m, 3).type.str() == "real[3]");
  CHECK(let_value(m, 4).type.str() == "bool[3]");
  CHECK(let_value(m, 5).type.str() == "real[3]");
  CHECK(let_value(m, 6).type.str() == "real[3]");
  CHECK(let_value(m, 7).type.str() == "real");
  CHECK(let_value(m, 8).type.str() == "real[3]");
  CHECK(let_value(m, 9).type.str() == "real[3]");
}

TEST_CASE("constants and param defaults are folded at compile time", "[sema]") {
  auto c = check(model_with("const N = 2 * 3 - 1\nconst H = div(-7, 2)\nconst M = -7 % 3\nconst R = 1 / 4\n"
                            "param Q[2, 2] = [[1, 2], [3, 4]]\nparam P[N] = [real(i) * 0.5 for i in 0..N]\n"
                            "param S = sum(P) + Q[1, 0]\nparam T[2] = Q @ [1.0, 1.0]\nparam U = min(0.0 / 0.0, 0.5)\nstate x = 0.0",
                            "x' = x"));
  INFO(c->messages.str());
  REQUIRE(c->model);
  const CheckedModel& m = *c->model;
  auto const_of = [&](const std::string& name) {
    for (const auto& k : m.consts)
      if (k.symbol->name == name) return k.value;
    FAIL("no const " << name);
    return Value{};
  };
  CHECK(const_of("N").ints[0] == 5);
  CHECK(const_of("H").ints[0] == -4);  // floor division
  CHECK(const_of("M").ints[0] == 2);   // modulo takes the divisor's sign
  CHECK(const_of("R").reals[0] == 0.25);  // '/' is real division
  auto param = [&](const std::string& name) {
    for (const auto& p : m.params)
      if (p.symbol->name == name) return *p.default_value;
    FAIL("no param " << name);
    return std::vector<double>{};
  };
  CHECK(param("P") == std::vector<double>{0, 0.5, 1, 1.5, 2});
  CHECK(param("S") == std::vector<double>{5 + 3});
  CHECK(param("T") == std::vector<double>{3, 7});
  CHECK(param("U") == std::vector<double>{0.5});  // min ignores a NaN operand, as the IR does
}

TEST_CASE("a scalar function applies elementwise to arrays", "[sema]") {
  auto c = check(model_with("import std.inventory\nstate x[4] = 1.0\nnoise d[4] ~ poisson(3.0)",
                            "x' = lost_sales_left(x, d)\ncost += sum(unmet(x, d))"));
  INFO(c->messages.str());
  REQUIRE(c->model);
  const auto& assign = static_cast<const ast::AssignStmt&>(*c->model->step->at(0));
  const auto& call = static_cast<const ast::CallExpr&>(*assign.value);
  CHECK(call.map_dims == std::vector<std::int64_t>{4});
  CHECK(call.type.str() == "real[4]");
}

TEST_CASE("next states: compile-time branches and loops are followed exactly", "[sema][flow]") {
  // pipeline'[l] for l < 2 in the loop, the last element after it: complete, no error.
  auto ok = check(model_with("state p[3] = 0.0\naction q : real", "for l in 0..2 { p'[l] = p[l + 1] }\np'[2] = q"));
  INFO(ok->messages.str());
  CHECK(ok->model);

  // A compile-time if inside a loop picks one branch per iteration.
  auto split = check(model_with("state p[3] = 0.0", "for i in 0..3 { if i == 0 { p'[i] = 1.0 } else { p'[i] = p[i - 1] } }"));
  INFO(split->messages.str());
  CHECK(split->model);

  // A run-time if must give the same elements in both branches.
  auto one_sided = check(model_with("state p[2] = 0.0\naction k : choice(2)", "if k == 1 { p'[0] = 1.0 }\np'[1] = 0.0"));
  CHECK_FALSE(one_sided->model);
  CHECK(has_message(*one_sided, "state p[0] gets a next value in only one branch of this if"));

  auto twice = check(model_with("state p[2] = 0.0", "p' = 1.0\nfor i in 1..2 { p'[i] = 2.0 }"));
  CHECK_FALSE(twice->model);
  CHECK(has_message(*twice, "state p[1] is given a next value twice"));

  auto missing = check(model_with("state p[2, 2] = 0.0", "p'[0] = [1.0, 2.0]"));
  CHECK_FALSE(missing->model);
  CHECK(has_message(*missing, "state p[1, 0], p[1, 1] gets no next value in step"));

  auto early = check(model_with("state p[2] = 0.0", "cost += p'[1]\np' = p"));
  CHECK_FALSE(early->model);
  CHECK(has_message(*early, "next state p'[1] is read before it is given a value"));
}

TEST_CASE("discrete actions are choices, never silent numbers", "[sema]") {
  auto index_ok = check(model_with("param A[3, 2] = 1.0\nstate x[2] = 0.0\naction k : choice(3)", "x' = A[k] * x"));
  INFO(index_ok->messages.str());
  CHECK(index_ok->model);

  auto explicit_ok = check(model_with("state x = 0.0\naction k : choice(3)", "x' = real(k) * 2.0"));
  CHECK(explicit_ok->model);

  auto arithmetic = check(model_with("state x = 0.0\naction k : choice(3)", "x' = k * 2.0"));
  CHECK_FALSE(arithmetic->model);
  CHECK(has_message(*arithmetic, "action 'k' is a discrete choice, not a number"));

  auto too_small = check(model_with("param A[2] = 1.0\nstate x = 0.0\naction k : choice(3)", "x' = A[k]"));
  CHECK_FALSE(too_small->model);
  CHECK(has_message(*too_small, "this index takes values 0..2 but the dimension has size 2"));
}

TEST_CASE("each context reads only what it may", "[sema]") {
  auto noise_from_state = check(model_with("state x = 1.0\nnoise e ~ normal(x, 1.0)", "x' = x"));
  CHECK(has_message(*noise_from_state, "state 'x' cannot be used in the arguments of a noise distribution"));
  auto observe_action = check(model_with("state x = 1.0\naction u : real\nobserve u", "x' = x"));
  CHECK(has_message(*observe_action, "action 'u' cannot be used in an observation"));
  auto init_from_noise = check(model_with("state x = e\nnoise e ~ uniform(-1.0, 1.0)", "x' = x"));
  INFO(init_from_noise->messages.str());
  CHECK(init_from_noise->model);
  auto fn_reads_param = check(model_with("param p = 1.0\nfn f(v: real) -> real { return v * p }\nstate x = 1.0", "x' = f(x)"));
  CHECK(has_message(*fn_reads_param, "param 'p' cannot be used in a function body"));
}

TEST_CASE("imports: stdlib modules, missing modules and cycles", "[sema][import]") {
  auto missing = check("model m\nimport std.nothing\n");
  CHECK_FALSE(missing->model);
  CHECK(has_message(*missing, "cannot find module 'std.nothing'"));
  auto module_only = check("module std.extra\nimport std.inventory\nconst K = 2\nfn g(x: real) -> real { return unmet(x, 1.0) }\n");
  INFO(module_only->messages.str());
  REQUIRE(module_only->model);
  CHECK(module_only->model->is_module);
  auto module_state = check("module m\nstate x = 1.0\n");
  CHECK(has_message(*module_state, "a module can only contain import, const and fn"));
}

TEST_CASE("unrolling has a budget", "[sema]") {
  auto huge = check(model_with("state x = 0.0", "x' = x\nfor i in 0..5000 { for j in 0..5000 { cost += 1.0 } }"));
  CHECK_FALSE(huge->model);
  CHECK(has_message(*huge, "too large to check"));
  auto big_constant = check(model_with("param B[1024, 1024] = eye(1024) @ eye(1024) @ eye(1024)\nstate x = 0.0", "x' = x"));
  CHECK_FALSE(big_constant->model);
  CHECK(has_message(*big_constant, "too large to check"));
  auto division = check(model_with("state x = 0.0", "x' = x\ncost += div(1, 0)"));
  CHECK(has_message(*division, "integer division by zero"));
  auto modulo = check(model_with("param w[3] = 1.0\nstate x = 0.0", "x' = x + w[1 % 9223372036854775807] + real(-7 % 3)"));
  INFO(modulo->messages.str());
  CHECK(modulo->model);
}

TEST_CASE("comparisons do not chain, but a bool times a number is a number", "[sema]") {
  auto chained = check(model_with("state x = 0.0", "x' = x\ncost += if 0.0 < x < 1.0 then 1.0 else 0.0"));
  CHECK_FALSE(chained->model);
  CHECK(has_message(*chained, "comparisons do not chain"));
  auto jump = check(model_with("state x = 0.0\naction q : real in [0, 5]", "x' = x + q\ncost += 10.0 * (q > 0.0)"));
  INFO(jump->messages.str());
  CHECK(jump->model);
}

TEST_CASE("items may end with a semicolon", "[sema]") {
  auto c = check("model m; state x = 0.0; horizon 2; step { x' = x; cost += x; };");
  INFO(c->messages.str());
  CHECK(c->model);
}
