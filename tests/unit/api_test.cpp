// api_test.cpp: the C++ API: compile errors, params, batched environments that are
// deterministic per sample and per seed, trajectory gradients, threads and moves.
#include <catch2/catch.hpp>
#include <cmath>
#include <thread>

#include "hpo/hpo.hpp"

namespace {

const char* kModel = R"(model tank
const N = 2
param inflow[N] = [1.0, 2.0]
param price = 3.0
state level[N] = start
noise start[N] ~ uniform(0.0, 1.0)
noise rain[N] ~ normal(0.5, 0.1)
action pump[N] : real in [0, 5]
action valve[N] : choice(2)
observe level, sum(level)
horizon 6
step {
  for i in 0..N {
    let out = if valve[i] == 1 then pump[i] else 0.0
    level'[i] = level[i] + inflow[i] + rain[i] - out
    cost += price * out * out + (level'[i] - 3.0) * (level'[i] - 3.0)
  }
})";

hpo::CompileOptions stdlib() {
  hpo::CompileOptions o;
  o.stdlib_dirs = {std::string(HPOC_SOURCE_DIR) + "/stdlib"};
  return o;
}

// Runs a fixed action sequence; returns total cost per sample.
std::vector<double> rollout(hpo::BatchEnv& env, const std::vector<std::vector<double>>& pumps, std::int32_t valve) {
  const auto n = static_cast<std::size_t>(env.batch());
  std::vector<double> total(n, 0.0);
  for (const auto& pump : pumps) {
    std::vector<std::int32_t> disc(2 * n, valve);
    env.step(disc, pump);
    for (std::size_t b = 0; b < n; ++b) total[b] += env.cost()[b];
  }
  return total;
}

}  // namespace

TEST_CASE("compile_string gives a model with names and sizes; errors throw with diagnostics", "[api]") {
  hpo::Model m = hpo::compile_string(kModel, "tank.hpo", stdlib());
  CHECK(m.name() == "tank");
  CHECK(m.horizon() == 6);
  CHECK(m.state_names() == std::vector<std::string>{"level[0]", "level[1]"});
  CHECK(m.num_disc() == 2);
  CHECK(m.num_cont() == 2);
  CHECK(m.num_noise() == 4);
  CHECK(m.num_obs() == 3);
  CHECK(m.cont_upper()[0] == 5.0);
  CHECK(m.analysis().find("regime") != std::string::npos);
  try {
    hpo::compile_string("model broken\nstate x = y\nhorizon 1\nstep { x' = x }\n", "broken.hpo", stdlib());
    FAIL("no CompileError");
  } catch (const hpo::CompileError& e) {
    CHECK(std::string(e.what()).find("broken.hpo:2:11: error: unknown name 'y'") != std::string::npos);
  }
  CHECK_THROWS_AS(hpo::compile_file("/nonexistent/model.hpo"), hpo::CompileError);
}

TEST_CASE("params: set by name, checked, and used by the kernels and the noise", "[api]") {
  hpo::Model m = hpo::compile_string(kModel, "tank.hpo", stdlib());
  std::vector<double> state{1.0, 1.0}, next(2), noise{0.0, 0.0, 0.0, 0.0}, cont{0.0, 0.0};
  std::vector<std::int32_t> disc{0, 0};
  m.step(state, disc, cont, noise, next);
  CHECK(next == std::vector<double>{2.0, 3.0});
  m.set_param("inflow", 0.5);
  m.step(state, disc, cont, noise, next);
  CHECK(next == std::vector<double>{1.5, 1.5});
  CHECK_THROWS_AS(m.set_param("nope", 1.0), std::invalid_argument);
  CHECK_THROWS_AS(m.set_param("inflow", std::vector<double>{1.0, 2.0, 3.0}), std::invalid_argument);
  CHECK_THROWS_AS(m.set_param("price", NAN), std::invalid_argument);
  CHECK_THROWS_AS(m.step(std::vector<double>{1.0}, disc, cont, noise, next), std::invalid_argument);
}

TEST_CASE("set_param: a param whose default reads it follows, unless it was set itself", "[api]") {
  hpo::Model m = hpo::compile_string("model derived\nparam p = 2.0\nparam q = 3.0 * p\nparam s = sqrt(p)\n"
                                     "state x = 0.0\nhorizon 1\nstep { x' = x + q + s }\n",
                                     "derived.hpo", stdlib());
  m.set_param("p", 4.0);
  CHECK(std::vector<double>(m.params().begin(), m.params().end()) == std::vector<double>{4, 12, 2});
  m.set_param("q", 1.0);
  m.set_param("p", 9.0);
  CHECK(std::vector<double>(m.params().begin(), m.params().end()) == std::vector<double>{9, 1, 3});
  try {
    m.set_param("p", -1.0);
    FAIL("no error");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("derived.hpo:4:11: error: the default of param 's' is not finite") !=
          std::string::npos);
  }
  CHECK(m.params()[0] == 9.0);  // unchanged after the refusal
}

TEST_CASE("a batch is deterministic per seed and per sample, whatever the batch size", "[api]") {
  hpo::Model m = hpo::compile_string(kModel, "tank.hpo", stdlib());
  hpo::BatchEnv small(m, {.batch = 2, .seed = 42});
  hpo::BatchEnv large(m, {.batch = 5, .seed = 42});
  CHECK(small.state()[0] == large.state()[0]);  // sample 0, level[0]
  CHECK(small.state()[2] == large.state()[5]);  // sample 0, level[1]
  std::vector<std::vector<double>> pumps_small(6, std::vector<double>(4, 1.0)), pumps_large(6, std::vector<double>(10, 1.0));
  auto a = rollout(small, pumps_small, 1);
  auto b = rollout(large, pumps_large, 1);
  CHECK(a[0] == b[0]);
  CHECK(a[1] == b[1]);
  small.reset(42);
  CHECK(rollout(small, pumps_small, 1) == a);  // the same seed again
  small.reset(43);
  CHECK(rollout(small, pumps_small, 1) != a);
  std::vector<std::int32_t> bad(4, 2);
  CHECK_THROWS_AS(small.step(bad, pumps_small[0]), std::out_of_range);
}

TEST_CASE("the trajectory adjoint equals finite differences of the total cost", "[api]") {
  hpo::Model m = hpo::compile_string(kModel, "tank.hpo", stdlib());
  const std::int64_t batch = 3;
  const auto n = static_cast<std::size_t>(batch);
  std::vector<std::vector<double>> pumps(6, std::vector<double>(2 * n));
  for (std::size_t t = 0; t < pumps.size(); ++t)
    for (std::size_t i = 0; i < 2 * n; ++i) pumps[t][i] = 0.3 + 0.1 * double((t * 7 + i * 3) % 11);
  hpo::BatchEnv env(m, {.batch = batch, .seed = 5});
  auto base = rollout(env, pumps, 1);
  std::vector<double> ones(6 * n, 1.0);
  auto g = env.backward(ones);
  REQUIRE(g.cont.size() == 6 * 2 * n);
  for (std::size_t t : {0u, 3u, 5u}) {
    for (std::size_t i = 0; i < 2 * n; ++i) {
      auto up = pumps, down = pumps;
      up[t][i] += 1e-6;
      down[t][i] -= 1e-6;
      env.reset(5);
      auto cost_up = rollout(env, up, 1);
      env.reset(5);
      auto cost_down = rollout(env, down, 1);
      std::size_t b = i % n;
      double fd = (cost_up[b] - cost_down[b]) / 2e-6;
      CHECK(g.cont[t * 2 * n + i] == Approx(fd).epsilon(1e-6));
    }
  }
  // The initial state's gradient, likewise.
  CHECK(g.initial_state.size() == 2 * n);
  CHECK_THROWS_AS(env.backward(std::vector<double>(3, 1.0)), std::invalid_argument);
}

TEST_CASE("one model, several threads: each BatchEnv gives the serial result", "[api]") {
  hpo::Model m = hpo::compile_string(kModel, "tank.hpo", stdlib());
  std::vector<std::vector<double>> pumps(6, std::vector<double>(8, 0.7));
  hpo::BatchEnv serial(m, {.batch = 4, .seed = 9});
  auto want = rollout(serial, pumps, 1);
  std::vector<std::vector<double>> got(4);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      hpo::BatchEnv env(m, {.batch = 4, .seed = 9});
      got[static_cast<std::size_t>(k)] = rollout(env, pumps, 1);
    });
  for (auto& t : threads) t.join();
  for (const auto& g : got) CHECK(g == want);

  hpo::Model moved = std::move(m);
  hpo::BatchEnv after(moved, {.batch = 4, .seed = 9});
  CHECK(rollout(after, pumps, 1) == want);
}

TEST_CASE("seeded_normal and seeded_uniform: fixed by their keys, independent-looking, same in params and step", "[api]") {
  hpo::Model m = hpo::compile_string(R"(model gen
const N = 1000
const SEED = 7
param z[N] = [seeded_normal(SEED, i) for i in 0..N]
param w[N] = [seeded_uniform(SEED, i) for i in 0..N]
param other[N] = [seeded_normal(SEED + 1, i) for i in 0..N]
param S[3, 3] = [[seeded_normal(SEED, min(i, j), max(i, j)) for j in 0..3] for i in 0..3]
state x = 0.0
action a : real in [0, 1]
horizon 1
step {
  x' = seeded_normal(SEED, 5) + a
}
)", "gen.hpo", stdlib());
  const auto& p = m.params();
  const std::size_t n = 1000;
  double mean = 0, square = 0, uniform_mean = 0, same_index_product = 0, lag_product = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mean += p[i] / n;
    square += p[i] * p[i] / n;
    CHECK(p[n + i] > 0.0);
    CHECK(p[n + i] < 1.0);
    uniform_mean += p[n + i] / n;
    same_index_product += p[i] * p[2 * n + i] / n;
    if (i + 1 < n) lag_product += p[i] * p[i + 1] / n;
  }
  // 1000 draws: standard errors are about 0.032 (mean, correlations) and 0.045 (second moment).
  CHECK(std::abs(mean) < 0.13);
  CHECK(std::abs(square - 1.0) < 0.18);
  CHECK(std::abs(uniform_mean - 0.5) < 0.04);
  CHECK(std::abs(same_index_product) < 0.13);  // another seed: unrelated numbers
  CHECK(std::abs(lag_product) < 0.13);         // neighbouring keys: unrelated numbers
  const double* S = &p[3 * n];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) CHECK(S[i * 3 + j] == S[j * 3 + i]);
  CHECK(S[0 * 3 + 1] != S[0 * 3 + 2]);
  // The step's constant is the number a param gets for the same keys.
  hpo::BatchEnv env(m, {.batch = 1, .seed = 0});
  env.reset(0);
  std::vector<double> action{0.0};
  env.step({}, action);
  CHECK(env.state()[0] == p[5]);
}
