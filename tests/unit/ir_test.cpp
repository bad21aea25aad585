// ir_test.cpp: lowering to the scalar IR and the reference interpreter give the model's meaning.
#include <catch2/catch.hpp>
#include <cmath>

#include "helpers.hpp"
#include "ir/interpreter.hpp"
#include "ir/lower.hpp"
#include "sema/param_values.hpp"

using namespace hpo;

namespace {

struct Lowered {
  std::unique_ptr<test::Checked> checked;
  std::unique_ptr<ir::Program> program;
  std::vector<double> params;
};

Lowered lower_text(const std::string& text) {
  Lowered l;
  l.checked = test::check(text);
  INFO(l.checked->messages.str());
  REQUIRE(l.checked->model);
  l.program = ir::lower(*l.checked->model, *l.checked->diags);
  REQUIRE(l.program);
  for (const auto& p : default_param_values(*l.checked->model).values) l.params.insert(l.params.end(), p.begin(), p.end());
  return l;
}

}  // namespace

TEST_CASE("step: loops, compile-time ifs, run-time ifs and next-state reads", "[ir][interpreter]") {
  auto l = lower_text(R"(model pipeline
const N = 2
const L = 3
param k = 4.0
state stock[N] = 1.0
state lanes[N, L] = 0.0
action ship[N] : choice(2)
action amount[N] : real in [0, 10]
horizon 5
step {
  for n in 0..N {
    for l in 0..L {
      if l == L - 1 { lanes'[n, l] = if ship[n] then amount[n] else 0.0 }
      else { lanes'[n, l] = lanes[n, l + 1] }
    }
    if stock[n] > 2.0 { stock'[n] = stock[n] + lanes[n, 0] - 1.0 }
    else if ship[n] == 1 { stock'[n] = stock[n] + lanes[n, 0] }
    else { stock'[n] = 0.0 }
    cost += stock'[n] + k * (amount[n] > 0.0)
  }
})");
  std::vector<double> state{3, 1, 1, 2, 3, 4, 5, 6};
  std::vector<double> disc{1, 0};
  std::vector<double> cont{2.5, 0};
  auto out = ir::interpret(l.program->step, {l.params, state, disc, cont, {}});
  CHECK(out == std::vector<double>{3, 0, 2, 3, 2.5, 5, 6, 0, 7});
  disc = {0, 1};
  out = ir::interpret(l.program->step, {l.params, state, disc, cont, {}});
  // stock[1] = 1 <= 2 and ship[1] = 1: it receives lanes[1, 0] = 4.
  CHECK(out == std::vector<double>{3, 5, 2, 3, 0, 5, 6, 0, 3 + 4 + 5});

  auto init = ir::interpret(l.program->init, {l.params, {}, {}, {}, {}});
  CHECK(init == std::vector<double>{1, 1, 0, 0, 0, 0, 0, 0});
  auto obs = ir::interpret(l.program->observe, {l.params, state, {}, {}, {}});
  CHECK(obs == state);  // no observe: all state
}

TEST_CASE("switched LQR: matrix products and a load indexed by the mode", "[ir][interpreter]") {
  auto l = lower_text(R"(model lqr
const D = 3
const K = 2
param A[D, D] = [[if i == j then 1.1 else 0.05 * real(i + j) for j in 0..D] for i in 0..D]
param B[K, D, D] = [[[if i == j then 1.0 + real(k) else 0.1 for j in 0..D] for i in 0..D] for k in 0..K]
state x[D] = 0.0
action mode : choice(K)
action u[D] : real
horizon 3
step {
  x' = clamp(A @ x + B[mode] @ u, -100.0, 100.0)
  cost += dot(x, x) + 0.1 * dot(u, u)
})");
  const std::size_t D = 3;
  std::vector<double> x{1.0, -2.0, 0.5}, u{0.3, 40.0, -1.0};
  for (double mode : {0.0, 1.0}) {
    std::vector<double> disc{mode};
    auto out = ir::interpret(l.program->step, {l.params, x, disc, u, {}});
    for (std::size_t i = 0; i < D; ++i) {
      double v = 0;
      for (std::size_t j = 0; j < D; ++j) {
        double a = i == j ? 1.1 : 0.05 * double(i + j);
        double b = i == j ? 1.0 + mode : 0.1;
        v += a * x[j] + b * u[j];
      }
      CHECK(out[i] == Approx(std::clamp(v, -100.0, 100.0)).epsilon(1e-14));
    }
    double cost = 0;
    for (std::size_t j = 0; j < D; ++j) cost += x[j] * x[j] + 0.1 * u[j] * u[j];
    CHECK(out[D] == Approx(cost).epsilon(1e-14));
  }
  std::vector<double> bad_mode{2.0};
  CHECK_THROWS_AS(ir::interpret(l.program->step, {l.params, x, bad_mode, u, {}}), std::out_of_range);
}

TEST_CASE("only the taken branch runs: a NaN on the other side never appears", "[ir][interpreter]") {
  auto l = lower_text(R"(model guard
state x = 1.0
action u : real
horizon 1
step {
  x' = if x > 0.0 then log(x) + u else sqrt(x) * 0.0
  cost += if x > 0.0 then 0.0 else log(x)
})");
  std::vector<double> state{-4.0}, cont{1.0};
  auto out = ir::interpret(l.program->step, {l.params, state, {}, cont, {}});
  CHECK(std::isnan(out[0]));  // sqrt(-4) * 0 is NaN: the else branch was taken and computed
  CHECK(std::isnan(out[1]));
  state = {std::exp(2.0)};
  out = ir::interpret(l.program->step, {l.params, state, {}, cont, {}});
  CHECK(out[0] == Approx(3.0));
  CHECK(out[1] == 0.0);
}

TEST_CASE("functions are inlined, noise feeds init and step, categorical noise indexes", "[ir][interpreter]") {
  auto l = lower_text(R"(model fns
import std.inventory
param price[3] = [1.0, 2.0, 3.0]
state level[2] = e0
noise e0[2] ~ uniform(0.0, 1.0)
noise d[2] ~ poisson(2.0)
noise w ~ categorical([0.5, 0.25, 0.25])
horizon 2
observe level, price[2] * 2.0
step {
  level' = lost_sales_left(level, d)
  cost += sum(unmet(level, d)) + price[w]
})");
  std::vector<double> noise{0.25, 0.75, 3, 1, 2};
  auto init = ir::interpret(l.program->init, {l.params, {}, {}, {}, noise});
  CHECK(init == std::vector<double>{0.25, 0.75});
  std::vector<double> state{5, 0.5};
  auto out = ir::interpret(l.program->step, {l.params, state, {}, {}, noise});
  CHECK(out == std::vector<double>{2, 0, 0 + 0.5 + 3});
  auto obs = ir::interpret(l.program->observe, {l.params, state, {}, {}, noise});
  CHECK(obs == std::vector<double>{5, 0.5, 6});
}
