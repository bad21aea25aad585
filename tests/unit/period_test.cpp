// period_test.cpp: the step index period() (same values in the interpreter, the JIT and a BatchEnv
// rollout, forward and adjoint, at every step) and the report/train period windows of hpo::Model.
#include <catch2/catch.hpp>
#include <cmath>

#include "autodiff/adjoint.hpp"
#include "helpers.hpp"
#include "hpo/hpo.hpp"
#include "ir/interpreter.hpp"
#include "ir/lower.hpp"
#include "jit/jit.hpp"
#include "sema/param_values.hpp"

using namespace hpo;

namespace {

// The cost is only charged from step 3 on, weighted by the step, and a schedule indexed by
// period() drains the level; the observation reads period() too, so every kernel depends on t.
const char* kModel = R"(model charged_late
const T = 6
param schedule[T] = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
state level = 1.0
action q : real in [0, 4]
observe level * period(), schedule[period()]
horizon T
report periods 2..T
train periods 1..5
step {
  level' = level + q - schedule[period()]
  if period() >= 3 {
    cost += period() * q + level' * level'
  }
}
)";

CompileOptions stdlib() {
  CompileOptions o;
  o.stdlib_dirs = {std::string(HPOC_SOURCE_DIR) + "/stdlib"};
  return o;
}

// The step's next level and cost by hand, for step t.
std::pair<double, double> expected_step(double level, double q, std::int64_t t) {
  const double schedule[] = {0.5, 1.0, 1.5, 2.0, 2.5, 3.0};
  double next = level + q - schedule[std::min<std::int64_t>(t, 5)];
  double cost = t >= 3 ? double(t) * q + next * next : 0.0;
  return {next, cost};
}

}  // namespace

TEST_CASE("period(): the interpreter and the JIT agree at every step, forward and adjoint", "[period]") {
  auto c = test::check(kModel);
  INFO(c->messages.str());
  REQUIRE(c->model);
  CHECK(c->model->uses_period);
  auto program = ir::lower(*c->model, *c->diags);
  REQUIRE(program);
  auto adjoints = autodiff::differentiate(*program);
  std::string error;
  auto k = jit::Kernels::compile(*program, adjoints, {}, &error);
  INFO(error);
  REQUIRE(k);
  std::vector<double> params;
  for (const auto& p : default_param_values(*c->model).values) params.insert(params.end(), p.begin(), p.end());

  const std::vector<double> state{0.75}, cont{1.25}, seed{0.5, 2.0};
  // t = 6 and 9 lie past the horizon: the schedule's last element, in both.
  for (std::int64_t t : {0, 1, 2, 3, 4, 5, 6, 9}) {
    INFO("t = " << t);
    ir::KernelInputs in{params, state, {}, cont, {}, {}, t};
    auto want = ir::interpret(program->step, in);
    auto [next, cost] = expected_step(state[0], cont[0], t);
    CHECK(want[0] == Approx(next));
    CHECK(want[1] == Approx(cost));
    std::vector<double> got(2);
    k->step(params.data(), state.data(), nullptr, cont.data(), nullptr, got.data(), got.data() + 1, t);
    CHECK(got == want);

    ir::KernelInputs adj_in{params, state, {}, cont, {}, seed, t};
    auto grad = ir::interpret(adjoints.step_adj, adj_in);
    std::vector<double> state_bar(1, 0.0), cont_bar(1, 0.0);
    k->step_adj(params.data(), state.data(), nullptr, cont.data(), nullptr, seed.data(), seed.data() + 1,
                state_bar.data(), cont_bar.data(), t);
    CHECK(state_bar[0] == Approx(grad[0]));
    CHECK(cont_bar[0] == Approx(grad[1]));
    // d cost / d q = t + 2 next for t >= 3, else 0; d next / d q = 1. The index has no adjoint.
    double dcost = t >= 3 ? double(t) + 2.0 * next : 0.0;
    CHECK(grad[1] == Approx(seed[0] + seed[1] * dcost));

    auto obs = ir::interpret(program->observe, {params, state, {}, {}, {}, {}, t});
    std::vector<double> obs_jit(2);
    k->observe(params.data(), state.data(), obs_jit.data(), t);
    CHECK(obs_jit == obs);
    CHECK(obs[0] == Approx(state[0] * double(t)));
    CHECK(obs[1] == Approx(0.5 * double(std::min<std::int64_t>(t, 5) + 1)));
    std::vector<double> obs_bar{1.0, 1.0}, obs_state_bar(1, 0.0);
    k->observe_adj(params.data(), state.data(), obs_bar.data(), obs_state_bar.data(), t);
    CHECK(obs_state_bar[0] == Approx(double(t)));
  }
}

TEST_CASE("period() in a BatchEnv rollout: step, observe, replay and backward see the right step", "[period]") {
  Model m = compile_string(kModel, "charged_late.hpo", stdlib());
  CHECK(m.uses_period());
  const std::int64_t B = 3;
  BatchEnv env(m, {.batch = B, .seed = 1});
  std::vector<double> level(B, 1.0);
  std::vector<std::vector<double>> qs;
  for (std::int64_t t = 0; t < m.horizon(); ++t) {
    INFO("t = " << t);
    // The observation before step t reads period() = t.
    for (std::int64_t b = 0; b < B; ++b) CHECK(env.observation()[std::size_t(b)] == Approx(level[b] * double(t)));
    std::vector<double> q{0.5, 1.0 + 0.1 * double(t), 2.0};
    qs.push_back(q);
    env.step({}, q);
    for (std::int64_t b = 0; b < B; ++b) {
      auto [next, cost] = expected_step(level[b], q[b], t);
      CHECK(env.state()[std::size_t(b)] == Approx(next));
      CHECK(env.cost()[std::size_t(b)] == Approx(cost));
      level[b] = next;
    }
  }
  // After the last step the observation is that of period() = horizon, the schedule clamped.
  CHECK(env.observation()[B] == Approx(3.0));
  CHECK(env.observation()[0] == Approx(level[0] * 6.0));

  for (std::int64_t t = 0; t < m.horizon(); ++t) {
    std::vector<double> next(B), cost(B);
    env.replay_step(t, {}, next, cost);
    for (std::int64_t b = 0; b < B; ++b) {
      auto [want_next, want_cost] = expected_step(env.recorded_state(t)[std::size_t(b)], qs[t][b], t);
      CHECK(next[b] == Approx(want_next));
      CHECK(cost[b] == Approx(want_cost));
    }
  }

  // One step's adjoint on its own: d cost_t / d q_t = t + 2 level_{t+1} from t = 3 on, else 0.
  for (std::int64_t t = 0; t < m.horizon(); ++t) {
    std::vector<double> next_bar(B, 0.0), cost_bar(B, 1.0), state_bar(B, 0.0), cont_bar(B, 0.0);
    env.step_backward(t, next_bar, cost_bar, state_bar, cont_bar);
    for (std::int64_t b = 0; b < B; ++b) {
      double next = env.recorded_state(t + 1)[std::size_t(b)];
      CHECK(cont_bar[b] == Approx(t >= 3 ? double(t) + 2.0 * next : 0.0));
    }
    std::vector<double> obs_bar(2 * B, 0.0), obs_state_bar(B, 0.0);
    for (std::int64_t b = 0; b < B; ++b) obs_bar[b] = 1.0;
    env.observe_backward(t, obs_bar, obs_state_bar);
    for (std::int64_t b = 0; b < B; ++b) CHECK(obs_state_bar[b] == Approx(double(t)));
  }

  // The trajectory adjoint against finite differences of the total cost.
  std::vector<double> cost_bar(std::size_t(m.horizon() * B), 1.0);
  auto g = env.backward(cost_bar);
  auto total = [&](std::size_t step, double dq) {
    BatchEnv other(m, {.batch = B, .seed = 1});
    double sum = 0;
    for (std::size_t t = 0; t < qs.size(); ++t) {
      auto q = qs[t];
      if (t == step) q[0] += dq;
      other.step({}, q);
      sum += other.cost()[0];
    }
    return sum;
  };
  for (std::size_t t = 0; t < qs.size(); ++t) {
    double fd = (total(t, 1e-6) - total(t, -1e-6)) / 2e-6;
    CHECK(g.cont[t * std::size_t(B)] == Approx(fd).epsilon(1e-5).margin(1e-6));
  }
}

TEST_CASE("Model's per-sample kernels take the step index", "[period]") {
  Model m = compile_string(kModel, "charged_late.hpo", stdlib());
  std::vector<double> state{0.75}, cont{1.25}, next(1);
  for (std::int64_t t : {0, 3, 5}) {
    double cost = m.step(state, {}, cont, {}, next, t);
    auto [want_next, want_cost] = expected_step(state[0], cont[0], t);
    CHECK(next[0] == Approx(want_next));
    CHECK(cost == Approx(want_cost));
  }
  std::vector<double> obs(2);
  m.observe(state, obs, 4);
  CHECK(obs[0] == Approx(3.0));
}

TEST_CASE("report and train windows: declared, defaulted, clipped to the horizon used", "[period]") {
  Model m = compile_string(kModel, "charged_late.hpo", stdlib());
  CHECK(m.report_window() == PeriodWindow{2, 6});
  CHECK(m.train_window() == PeriodWindow{1, 5});
  CHECK(m.train_window(3) == PeriodWindow{1, 3});
  CHECK(m.report_window(1) == PeriodWindow{1, 1});  // the episode ends before the window starts
  CHECK(m.report_window(1).size() == 0);
  CHECK(m.report_window(100) == PeriodWindow{2, 6});
  CHECK(m.train_window().contains(4));
  CHECK_FALSE(m.train_window().contains(5));

  Model plain = compile_string("model p\nstate x = 0.0\nhorizon 7\nstep { x' = x }\n", "p.hpo", stdlib());
  CHECK_FALSE(plain.uses_period());
  CHECK(plain.report_window() == PeriodWindow{0, 7});
  CHECK(plain.train_window() == PeriodWindow{0, 7});
  CHECK(plain.train_window(20) == PeriodWindow{0, 20});  // every period, whatever the horizon
}

TEST_CASE("period(): types and the places it may not go", "[period]") {
  using test::check;
  using test::model_with;
  // Arithmetic promotes it to real; comparisons and lets of it work; a let of it still indexes.
  auto ok = check(model_with("param s[3] = 1.0\nstate x = 0.0",
                             "let k = period()\nlet r = period() + 1\nx' = x + r * 0.5 + s[k]\n"
                             "cost += if period() == 2 then 1.0 else 0.0"));
  INFO(ok->messages.str());
  CHECK(ok->model);

  auto index_real = check(model_with("param s[4] = 1.0\nstate x = 0.0", "x' = s[period() + 1]"));
  CHECK_FALSE(index_real->model);
  CHECK(index_real->messages.str().find("an index must be an integer") != std::string::npos);

  auto too_short = check(model_with("param s[2] = 1.0\nstate x = 0.0", "let k = period()\nx' = s[k]"));
  CHECK_FALSE(too_short->model);
  CHECK(too_short->messages.str().find("takes values 0..2 (horizon 3), but the dimension has size 2") !=
        std::string::npos);

  auto in_param = check("model m\nparam p = period()\nstate x = 0.0\nhorizon 3\nstep { x' = x }\n");
  CHECK_FALSE(in_param->model);
  CHECK(in_param->messages.str().find("known only in step and observe, not in a param default") != std::string::npos);

  // A declaration may take the name; period() is still the built-in.
  auto named = check(model_with("state period = 0.0", "period' = period + 1.0\ncost += period() * period"));
  INFO(named->messages.str());
  CHECK(named->model);
}
