// autodiff_test.cpp: every adjoint rule and control-flow shape agrees with central finite
// differences run through the reference interpreter, away from kinks.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "autodiff/adjoint.hpp"
#include "helpers.hpp"
#include "ir/interpreter.hpp"
#include "ir/lower.hpp"
#include "sema/param_values.hpp"

using namespace hpo;

namespace {

struct Compiled {
  std::unique_ptr<test::Checked> checked;
  std::unique_ptr<ir::Program> program;
  autodiff::AdjointProgram adjoints;
  std::vector<double> params;
};

Compiled compile(const std::string& text, const std::string& name = "ad.hpo") {
  Compiled c;
  c.checked = test::check(text, name);
  INFO(c.checked->messages.str());
  REQUIRE(c.checked->model);
  c.program = ir::lower(*c.checked->model, *c.checked->diags);
  REQUIRE(c.program);
  c.adjoints = autodiff::differentiate(*c.program);
  for (const auto& p : default_param_values(*c.checked->model).values) c.params.insert(c.params.end(), p.begin(), p.end());
  return c;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// |adjoint - fd| <= 1e-6 * max(|adjoint|, |fd|) + 1e-8: relative error 1e-6 away from zero.
void check_close(double adjoint, double fd, const std::string& what) {
  INFO(what << ": adjoint " << adjoint << ", finite difference " << fd);
  CHECK(std::isfinite(adjoint));
  CHECK(std::fabs(adjoint - fd) <= 1e-6 * std::max(std::fabs(adjoint), std::fabs(fd)) + 1e-8);
}

// Checks step_adj of a model at one point: the gradient of bar . step(state, cont) with respect
// to state and continuous actions, for a random seed bar.
void check_step(const Compiled& c, std::vector<double> state, std::vector<double> disc, std::vector<double> cont,
                std::vector<double> noise, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> bar(c.program->step.outputs.size());
  for (auto& b : bar) b = u(rng);
  ir::KernelInputs in{c.params, state, disc, cont, noise, bar};
  auto grad = ir::interpret(c.adjoints.step_adj, in);
  REQUIRE(grad.size() == state.size() + cont.size());
  auto objective = [&](const std::vector<double>& s, const std::vector<double>& a) {
    return dot(bar, ir::interpret(c.program->step, {c.params, s, disc, a, noise}));
  };
  for (std::size_t i = 0; i < state.size(); ++i) {
    double h = 1e-6 * std::max(1.0, std::fabs(state[i]));
    auto up = state, down = state;
    up[i] += h;
    down[i] -= h;
    check_close(grad[i], (objective(up, cont) - objective(down, cont)) / (2 * h), c.program->layout.state[i]);
  }
  for (std::size_t i = 0; i < cont.size(); ++i) {
    double h = 1e-6 * std::max(1.0, std::fabs(cont[i]));
    auto up = cont, down = cont;
    up[i] += h;
    down[i] -= h;
    check_close(grad[state.size() + i], (objective(state, up) - objective(state, down)) / (2 * h),
                c.program->layout.cont[i]);
  }
}

std::string with_step(const std::string& expr) {
  return "model ad\nstate x[3] = 0.0\naction u[2] : real\naction k : choice(3)\nhorizon 1\nstep {\n"
         "  let e = " + expr + "\n  x'[0] = e\n  x'[1] = x[1] * u[1]\n  x'[2] = x[2]\n  cost += e * x[2] + x[0]\n}\n";
}

}  // namespace

TEST_CASE("adjoint of every built-in and operator matches finite differences", "[autodiff]") {
  const char* exprs[] = {
      "x[0] + u[0] - x[1]", "x[0] * u[1] * x[2]", "x[0] / (2.0 + u[1] * u[1])", "-x[1] + +u[0]",
      "relu(x[0] - u[0])", "abs(x[1] * u[1])", "exp(0.3 * x[0])", "log(x[1] * x[1] + 1.0)",
      "sqrt(x[2] * x[2] + u[0] * u[0])", "sin(x[0] * u[1])", "cos(x[1] + u[0])", "tanh(x[2] - u[1])",
      "sigmoid(2.0 * x[0])", "softplus(u[1] - x[1])", "max(x[0], u[0])", "min(x[1], u[1])",
      "pow(x[2] * x[2] + 1.0, u[0])", "pow(x[0], 3.0)", "clamp(x[0] + u[0], -0.4, 0.4)", "sum(x * x)",
      "mean(x) * u[1]", "dot(x, x) + u[0]", "max(x) - min(x)", "sum([x[0], u[0]] @ [[1.0, 2.0], [3.0, 4.0]])",
      "real(k) * x[0] + 10.0 * (u[0] > 0.5)",
  };
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1.5, 1.5);
  for (const char* e : exprs) {
    INFO("expression: " << e);
    auto c = compile(with_step(e));
    for (unsigned trial = 0; trial < 3; ++trial) {
      std::vector<double> state{u(rng), u(rng), u(rng)}, cont{u(rng), u(rng)};
      check_step(c, state, {double(trial % 3)}, cont, {}, trial);
    }
  }
}

TEST_CASE("adjoint through control flow: if statements, nested ifs, if expressions", "[autodiff]") {
  auto c = compile(R"(model flow
state x[2] = 0.0
action u : real
action mode : choice(3)
horizon 1
step {
  if x[0] > 0.0 {
    if mode == 1 { x'[0] = x[0] * u } else { x'[0] = sin(x[1]) }
    x'[1] = x[1] + u
    cost += x[0] * x[0]
  } else {
    x'[0] = exp(x[0]) * u
    x'[1] = x[1]
  }
  cost += if u > 0.0 then u * x[1] else -u
})");
  for (double x0 : {-0.7, 0.9})
    for (double mode : {0.0, 1.0, 2.0})
      for (double u : {-0.3, 0.6}) check_step(c, {x0, 0.4}, {mode}, {u}, {});
}

TEST_CASE("adjoint through indexing by a discrete action: loads and selects", "[autodiff]") {
  auto c = compile(R"(model select
param G[3] = [1.0, 2.0, 3.0]
state x[3] = 0.0
action u[3] : real
action k : choice(3)
horizon 1
step {
  let y = [x[i] * u[i] for i in 0..3]
  x' = x * G[k] + u[k]
  cost += y[k] + x[k] * x[k]
})");
  for (double k : {0.0, 1.0, 2.0}) check_step(c, {0.5, -1.2, 2.0}, {k}, {0.3, -0.4, 1.1}, {});
}

TEST_CASE("adjoint of loops, lets, functions and noise", "[autodiff]") {
  auto c = compile(R"(model loops
import std.inventory
const N = 3
state s[N] = 1.0
state p[N, 2] = 0.0
action q[N] : real in [0, 10]
noise d[N] ~ poisson(3.0)
horizon 2
step {
  for n in 0..N {
    let avail = s[n] + p[n, 0]
    s'[n] = lost_sales_left(avail, d[n])
    p'[n, 0] = p[n, 1]
    p'[n, 1] = q[n]
    cost += holding_and_shortage(avail - d[n], 1.0, 9.0) + 0.5 * q[n] * q[n]
  }
})");
  check_step(c, {2.2, 5.1, 0.7, 1.3, 0.2, 0.9, 2.5, 1.1, 0.4}, {}, {1.5, 0.3, 2.7}, {3, 4, 1});
}

TEST_CASE("the examples' step adjoints match finite differences", "[autodiff]") {
  SECTION("inventory") {
    auto c = compile(R"(model inv
import std.inventory
const STORES = 3
const LEAD = 2
param holding = 1.0
param penalty = 9.0
param fixed_cost = 10.0
param unit_cost = 2.0
param mean_demand[STORES] = [4.0, 5.0, 6.0]
state on_hand[STORES] = 5.0
state pipeline[STORES, LEAD] = 0.0
action order[STORES] : choice(2)
action qty[STORES] : real in [0, 30]
noise demand[STORES] ~ poisson(mean_demand)
horizon 50
step {
  for s in 0..STORES {
    let placed = if order[s] == 1 then qty[s] else 0.0
    let available = on_hand[s] + pipeline[s, 0]
    on_hand'[s] = lost_sales_left(available, demand[s])
    for l in 0..LEAD - 1 { pipeline'[s, l] = pipeline[s, l + 1] }
    pipeline'[s, LEAD - 1] = placed
    cost += holding * on_hand'[s] + penalty * unmet(available, demand[s])
    cost += if order[s] == 1 then order_cost(qty[s], fixed_cost, unit_cost) else 0.0
  }
})");
    check_step(c, {3.5, 7.2, 1.1, 2.0, 4.3, 0.5, 6.6, 3.2, 0.9}, {1, 0, 1}, {12.5, 3.0, 7.7}, {4, 9, 2});
  }
  SECTION("switched LQR") {
    auto c = compile(R"(model lqr
const D = 4
const M = 2
const K = 3
param A[D, D] = [[if i == j then 1.1 else 0.05 for j in 0..D] for i in 0..D]
param B[K, D, M] = [[[if i == j + k then 1.0 else 0.15 for j in 0..M] for i in 0..D] for k in 0..K]
param Q[D, D] = eye(D)
param R[M, M] = 0.1 * eye(M)
state x[D] = 0.0
action mode : choice(K)
action u[M] : real in [-10, 10]
horizon 20
step {
  x' = clamp(A @ x + B[mode] @ u, -100.0, 100.0)
  cost += dot(x, Q @ x) + dot(u, R @ u)
})");
    for (double mode : {0.0, 1.0, 2.0}) check_step(c, {1.5, -2.0, 0.3, 4.1}, {mode}, {0.7, -1.9}, {});
  }
}

TEST_CASE("a NaN in a branch not taken reaches no adjoint", "[autodiff]") {
  auto c = compile(R"(model guard
state x = 1.0
action u : real
horizon 1
step {
  x' = if x > 0.0 then sqrt(x) * u else -x * u
  cost += if u > 0.0 then log(u) else u * u
})");
  std::vector<double> state{-4.0}, cont{-2.0}, bar{1.0, 1.0};
  auto grad = ir::interpret(c.adjoints.step_adj, {c.params, state, {}, cont, {}, bar});
  CHECK(grad == std::vector<double>{2.0, 4.0 - 4.0});  // d/dx = -u = 2; d/du = -x + 2u = 4 - 4
  check_step(c, {-4.0}, {}, {-2.0}, {});
  check_step(c, {2.0}, {}, {0.5}, {});
}

TEST_CASE("observe and init adjoints", "[autodiff]") {
  auto c = compile(R"(model obs
param p = 1.5
param q[2] = [0.5, -0.25]
state x[3] = [p * 2.0, exp(q[0]), p * q[1]]
horizon 1
observe x[0] * x[1], sum(x), q[1] * x[2]
step { x' = x }
)");
  std::vector<double> state{0.5, -1.5, 2.0}, obs_bar{0.3, -0.7, 1.1};
  auto g = ir::interpret(c.adjoints.observe_adj, {c.params, state, {}, {}, {}, obs_bar});
  CHECK(g[0] == Approx(0.3 * -1.5 - 0.7));
  CHECK(g[1] == Approx(0.3 * 0.5 - 0.7));
  CHECK(g[2] == Approx(-0.7 + 1.1 * -0.25));
  std::vector<double> state_bar{1.0, 2.0, 3.0};
  auto pg = ir::interpret(c.adjoints.init_adj, {c.params, {}, {}, {}, {}, state_bar});
  REQUIRE(pg.size() == 3);
  CHECK(pg[0] == Approx(2.0 * 1.0 + 3.0 * -0.25));  // d/dp
  CHECK(pg[1] == Approx(2.0 * std::exp(0.5)));       // d/dq[0]
  CHECK(pg[2] == Approx(3.0 * 1.5));                 // d/dq[1]
}
