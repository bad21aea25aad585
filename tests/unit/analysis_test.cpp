// analysis_test.cpp: the split's classes, and that reformulated jumps keep the model's meaning
// in each regime while their gradients become exact.
#include <catch2/catch.hpp>

#include "analysis/split.hpp"
#include "autodiff/adjoint.hpp"
#include "helpers.hpp"
#include "ir/interpreter.hpp"
#include "ir/lower.hpp"
#include "sema/param_values.hpp"

using namespace hpo;

namespace {

struct Analyzed {
  std::unique_ptr<test::Checked> checked;
  std::unique_ptr<ir::Program> original, program;
  analysis::Report report;
  std::vector<double> params;
};

Analyzed analyze_text(const std::string& text, bool reformulate = true) {
  Analyzed a;
  a.checked = test::check(text);
  INFO(a.checked->messages.str());
  REQUIRE(a.checked->model);
  a.original = ir::lower(*a.checked->model, *a.checked->diags);
  a.program = ir::lower(*a.checked->model, *a.checked->diags);
  REQUIRE(a.program);
  analysis::Options options;
  options.reformulate = reformulate;
  a.report = analysis::analyze(*a.program, *a.checked->diags, options);
  for (const auto& p : default_param_values(*a.checked->model).values) a.params.insert(a.params.end(), p.begin(), p.end());
  return a;
}

std::size_t count(const analysis::Report& r, analysis::Class cls, const std::string& what) {
  std::size_t n = 0;
  for (const auto& f : r.findings)
    if (f.cls == cls && f.what == what) n += f.instances;
  return n;
}

const char* kFixedCost = R"(model fixed
param K = 64.0
state inv[2] = 0.0
action q[2] : real in [0, 40]
noise d[2] ~ poisson(8.0)
horizon 10
step {
  for i in 0..2 {
    inv'[i] = inv[i] + q[i] - d[i]
    cost += K * (q[i] > 0.0) + 2.0 * q[i] + relu(inv'[i]) + 9.0 * relu(-inv'[i])
  }
})";

}  // namespace

TEST_CASE("the inventory example: order regimes, kinks, no jump", "[analysis]") {
  auto c = test::check_path("examples/inventory.hpo");
  REQUIRE(c->model);
  Diagnostics& diags = *c->diags;
  auto program = ir::lower(*c->model, diags);
  auto report = analysis::analyze(*program, diags);
  CHECK(count(report, analysis::Class::Regime, "if") == 6);  // placed and the fixed cost, per store
  CHECK(count(report, analysis::Class::Kink, "relu") == 6);
  CHECK(count(report, analysis::Class::Jump, "if") + count(report, analysis::Class::Jump, "indicator") == 0);
  CHECK(report.discrete == std::vector<std::string>{"order[3] : choice(2)"});
  CHECK(diags.warning_count() == 0);
}

TEST_CASE("the switched LQR example: K regimes through the mode index", "[analysis]") {
  auto c = test::check_path("examples/switched_lqr.hpo");
  REQUIRE(c->model);
  auto program = ir::lower(*c->model, *c->diags);
  auto report = analysis::analyze(*program, *c->diags);
  CHECK(report.discrete == std::vector<std::string>{"mode : choice(3)"});
  CHECK(count(report, analysis::Class::Regime, "index") > 0);
  CHECK(count(report, analysis::Class::Kink, "max") == 4);  // clamp's lower side, per state element
  CHECK(report.generated.empty());
}

TEST_CASE("a fixed cost K * (q > 0) becomes a gate per store, exact in each regime", "[analysis][reformulation]") {
  auto a = analyze_text(kFixedCost);
  REQUIRE(a.program->layout.disc == std::vector<std::string>{"gate_q[0]", "gate_q[1]"});
  CHECK(count(a.report, analysis::Class::Jump, "indicator") == 2);
  for (const auto& f : a.report.findings)
    if (f.cls == analysis::Class::Jump) CHECK(f.gates == std::vector<std::string>{"gate_q[0]", "gate_q[1]"});
  CHECK(a.checked->diags->warning_count() == 0);

  std::vector<double> state{3.0, -2.0}, noise{8.0, 5.0};
  // Gate 1 with a positive order: the original model exactly.
  std::vector<double> q{12.5, 4.0}, on{1, 1};
  CHECK(ir::interpret(a.program->step, {a.params, state, on, q, noise}) ==
        ir::interpret(a.original->step, {a.params, state, {}, q, noise}));
  // Gate 0: no order and no fixed cost, whatever q the policy proposed.
  std::vector<double> off{0, 1}, q_none{0.0, 4.0};
  CHECK(ir::interpret(a.program->step, {a.params, state, off, q, noise}) ==
        ir::interpret(a.original->step, {a.params, state, {}, q_none, noise}));

  // The pathwise gradient inside a regime is exact: compare with finite differences.
  auto adjoints = autodiff::differentiate(*a.program);
  std::vector<double> bar{0.3, -0.5, 1.0};
  auto grad = ir::interpret(adjoints.step_adj, {a.params, state, on, q, noise, bar});
  auto objective = [&](std::vector<double> qq) {
    auto out = ir::interpret(a.program->step, {a.params, state, on, qq, noise});
    return bar[0] * out[0] + bar[1] * out[1] + bar[2] * out[2];
  };
  for (std::size_t i = 0; i < 2; ++i) {
    auto up = q, down = q;
    up[i] += 1e-6;
    down[i] -= 1e-6;
    CHECK(grad[2 + i] == Approx((objective(up) - objective(down)) / 2e-6).epsilon(1e-6));
  }
}

TEST_CASE("a minimum order quantity is reformulated; a branch on state is only reported", "[analysis][reformulation]") {
  auto a = analyze_text(R"(model moq
state inv = 0.0
action q : real in [0, 40]
noise d ~ poisson(8.0)
horizon 10
step {
  let placed = if q < 5.0 then 0.0 else q
  inv' = inv + placed - d
  cost += relu(inv') + 9.0 * relu(-inv') + (if inv > 100.0 then 1.0 else 0.0)
})");
  REQUIRE(a.program->layout.disc == std::vector<std::string>{"gate_q"});
  std::vector<double> state{1.0}, noise{3.0};
  for (double q : {2.0, 7.5}) {
    std::vector<double> cont{q};
    // Gate 1 means "q < 5": nothing is placed.
    std::vector<double> below{1}, nothing{0.0};
    CHECK(ir::interpret(a.program->step, {a.params, state, below, cont, noise}) ==
          ir::interpret(a.original->step, {a.params, state, {}, nothing, noise}));
    // Gate 0: at least the minimum is placed.
    std::vector<double> above{0}, placed{std::max(q, 5.0)};
    CHECK(ir::interpret(a.program->step, {a.params, state, above, cont, noise}) ==
          ir::interpret(a.original->step, {a.params, state, {}, placed, noise}));
  }
  CHECK(a.checked->diags->warning_count() == 1);
  CHECK(a.checked->messages.str().find("test.hpo:9:45: warning: this if jumps with inv (state)") != std::string::npos);
}

TEST_CASE("without reformulation, and with --strict, jumps are diagnosed", "[analysis]") {
  auto plain = analyze_text(kFixedCost, false);
  CHECK(plain.program->layout.disc.empty());
  CHECK(plain.checked->diags->warning_count() == 1);  // one message for the source line, not per store
  CHECK(plain.checked->messages.str().find("which hpoc rewrites unless --no-reformulate") != std::string::npos);

  auto c = test::check(kFixedCost);
  REQUIRE(c->model);
  c->diags->set_warnings_as_errors(true);
  auto program = ir::lower(*c->model, *c->diags);
  analysis::Options options;
  options.reformulate = false;
  analysis::analyze(*program, *c->diags, options);
  CHECK(c->diags->has_errors());
}
