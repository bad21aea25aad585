// jit_test.cpp: JIT-compiled kernels equal the reference interpreter (forward and adjoint, to
// 1e-12 relative) on every example and golden model, and batched kernels equal per-sample ones.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "analysis/split.hpp"
#include "autodiff/adjoint.hpp"
#include "helpers.hpp"
#include "ir/interpreter.hpp"
#include "ir/lower.hpp"
#include "jit/jit.hpp"
#include "sema/param_values.hpp"

using namespace hpo;

namespace {

bool close(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::fabs(a - b) <= 1e-12 * std::max(std::fabs(a), std::fabs(b)) + 1e-300;
}

void check_all_close(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(what << " element " << i << ": " << got[i] << " vs " << want[i]);
    CHECK(close(got[i], want[i]));
  }
}

struct Sample {
  std::vector<double> state, disc, cont, noise, next_bar, obs_bar, state_bar;
  std::vector<std::int32_t> disc_int;
};

Sample random_sample(const ir::Layout& l, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-3.0, 3.0);
  Sample s;
  for (std::size_t i = 0; i < l.state.size(); ++i) s.state.push_back(u(rng));
  for (std::size_t i = 0; i < l.disc.size(); ++i) {
    auto k = static_cast<std::int32_t>(std::uniform_int_distribution<std::int64_t>(0, l.disc_choices[i] - 1)(rng));
    s.disc.push_back(k);
    s.disc_int.push_back(k);
  }
  for (std::size_t i = 0; i < l.cont.size(); ++i) {
    double lo = std::isfinite(l.cont_lo[i]) ? l.cont_lo[i] : -3.0;
    double hi = std::isfinite(l.cont_hi[i]) ? l.cont_hi[i] : lo + 6.0;
    s.cont.push_back(std::uniform_real_distribution<double>(lo, hi)(rng));
  }
  for (std::size_t i = 0; i < l.noise.size(); ++i) s.noise.push_back(l.noise_is_index[i] ? 0.0 : std::fabs(u(rng)));
  for (std::size_t i = 0; i <= l.state.size(); ++i) s.next_bar.push_back(u(rng));
  for (std::size_t i = 0; i < l.obs.size(); ++i) s.obs_bar.push_back(u(rng));
  for (std::size_t i = 0; i < l.state.size(); ++i) s.state_bar.push_back(u(rng));
  return s;
}

// Interleaves per-sample arrays into structure-of-arrays: element i of sample b at i * n + b.
template <typename T>
std::vector<T> soa(const std::vector<std::vector<T>>& samples) {
  std::size_t n = samples.size(), m = samples[0].size();
  std::vector<T> out(n * m);
  for (std::size_t b = 0; b < n; ++b)
    for (std::size_t i = 0; i < m; ++i) out[i * n + b] = samples[b][i];
  return out;
}

void check_model_file(const std::string& path, codegen::OptLevel level) {
  auto c = test::check_path(path);
  INFO(path << "\n" << c->messages.str());
  REQUIRE(c->model);
  auto& model = c->model;
  Diagnostics& diags = *c->diags;
  auto program = ir::lower(*model, diags);
  REQUIRE(program);
  analysis::analyze(*program, diags);
  auto adjoints = autodiff::differentiate(*program);
  std::string error;
  auto k = jit::Kernels::compile(*program, adjoints, {level}, &error);
  INFO(error);
  REQUIRE(k);

  std::vector<double> params;
  for (const auto& p : default_param_values(*model).values) params.insert(params.end(), p.begin(), p.end());
  const ir::Layout& l = program->layout;
  const std::size_t S = l.state.size(), C = l.cont.size(), O = l.obs.size(), P = l.params.size();
  std::mt19937 rng(11);
  constexpr std::size_t kBatch = 5;
  constexpr std::int64_t kT = 2;  // the step index period() reads, where a model does
  std::vector<Sample> samples;
  for (std::size_t b = 0; b < kBatch; ++b) samples.push_back(random_sample(l, rng));

  std::vector<std::vector<double>> next_all, state_bar_all, cont_bar_all, obs_all, init_all;
  for (const Sample& s : samples) {
    // step
    std::vector<double> next(S), cost(1);
    k->step(params.data(), s.state.data(), s.disc_int.data(), s.cont.data(), s.noise.data(), next.data(), cost.data(), kT);
    auto want = ir::interpret(program->step, {params, s.state, s.disc, s.cont, s.noise, {}, kT});
    next.push_back(cost[0]);
    check_all_close(next, want, "step");
    next_all.push_back(next);
    // step_adj accumulates into its outputs
    std::vector<double> state_bar(S, 1.0), cont_bar(C, 1.0);
    k->step_adj(params.data(), s.state.data(), s.disc_int.data(), s.cont.data(), s.noise.data(), s.next_bar.data(),
                s.next_bar.data() + S, state_bar.data(), cont_bar.data(), kT);
    auto grad = ir::interpret(adjoints.step_adj, {params, s.state, s.disc, s.cont, s.noise, s.next_bar, kT});
    std::vector<double> got;
    for (double v : state_bar) got.push_back(v - 1.0);
    for (double v : cont_bar) got.push_back(v - 1.0);
    std::vector<double> want_grad = grad;
    for (double& v : want_grad) v = (v + 1.0) - 1.0;  // the same rounding as the accumulation
    check_all_close(got, want_grad, "step_adj");
    state_bar_all.push_back(state_bar);
    cont_bar_all.push_back(cont_bar);
    // observe and its adjoint
    std::vector<double> obs(O);
    k->observe(params.data(), s.state.data(), obs.data(), kT);
    check_all_close(obs, ir::interpret(program->observe, {params, s.state, {}, {}, {}, {}, kT}), "observe");
    obs_all.push_back(obs);
    std::vector<double> obs_state_bar(S, 0.0);
    k->observe_adj(params.data(), s.state.data(), s.obs_bar.data(), obs_state_bar.data(), kT);
    check_all_close(obs_state_bar, ir::interpret(adjoints.observe_adj, {params, s.state, {}, {}, {}, s.obs_bar, kT}),
                    "observe_adj");
    // init and its adjoint
    std::vector<double> init(S);
    k->init(params.data(), s.noise.data(), init.data());
    check_all_close(init, ir::interpret(program->init, {params, {}, {}, {}, s.noise}), "init");
    init_all.push_back(init);
    std::vector<double> param_bar(P, 0.0);
    k->init_adj(params.data(), s.noise.data(), s.state_bar.data(), param_bar.data());
    check_all_close(param_bar, ir::interpret(adjoints.init_adj, {params, {}, {}, {}, s.noise, s.state_bar}), "init_adj");
  }

  // Batched kernels over the same samples, laid out structure-of-arrays.
  std::vector<std::vector<double>> states, conts, noises, next_bars, obs_bars;
  std::vector<std::vector<std::int32_t>> discs;
  for (const Sample& s : samples) {
    states.push_back(s.state);
    conts.push_back(s.cont);
    noises.push_back(s.noise);
    discs.push_back(s.disc_int);
    next_bars.push_back(s.next_bar);
    obs_bars.push_back(s.obs_bar);
  }
  const auto n = static_cast<std::int64_t>(kBatch);
  auto state = soa(states), cont = C ? soa(conts) : std::vector<double>{}, noise = l.noise.empty() ? std::vector<double>{} : soa(noises);
  auto disc = l.disc.empty() ? std::vector<std::int32_t>{} : soa(discs);
  std::vector<double> next(S * kBatch), cost(kBatch);
  k->step_batch(n, params.data(), state.data(), disc.data(), cont.data(), noise.data(), next.data(), cost.data(), kT);
  for (std::size_t b = 0; b < kBatch; ++b) {
    for (std::size_t i = 0; i < S; ++i) CHECK(next[i * kBatch + b] == next_all[b][i]);
    CHECK(cost[b] == next_all[b][S]);
  }
  // The batched seed: next-state bars SoA, then one cost bar per sample.
  std::vector<std::vector<double>> next_only;
  std::vector<double> cost_bar;
  for (const Sample& s : samples) {
    next_only.push_back(std::vector<double>(s.next_bar.begin(), s.next_bar.begin() + static_cast<long>(S)));
    cost_bar.push_back(s.next_bar[S]);
  }
  auto next_bar = soa(next_only);
  std::vector<double> state_bar(S * kBatch, 1.0), cont_bar(C * kBatch, 1.0);
  k->step_adj_batch(n, params.data(), state.data(), disc.data(), cont.data(), noise.data(), next_bar.data(), cost_bar.data(),
                    state_bar.data(), cont_bar.data(), kT);
  for (std::size_t b = 0; b < kBatch; ++b) {
    for (std::size_t i = 0; i < S; ++i) CHECK(state_bar[i * kBatch + b] == state_bar_all[b][i]);
    for (std::size_t i = 0; i < C; ++i) CHECK(cont_bar[i * kBatch + b] == cont_bar_all[b][i]);
  }
  std::vector<double> obs(O * kBatch), init(S * kBatch);
  k->observe_batch(n, params.data(), state.data(), obs.data(), kT);
  k->init_batch(n, params.data(), noise.data(), init.data());
  for (std::size_t b = 0; b < kBatch; ++b) {
    for (std::size_t i = 0; i < O; ++i) CHECK(obs[i * kBatch + b] == obs_all[b][i]);
    for (std::size_t i = 0; i < S; ++i) CHECK(init[i * kBatch + b] == init_all[b][i]);
  }
}

std::vector<std::string> model_files() {
  std::vector<std::string> files;
  for (const char* dir : {"/examples", "/tests/golden"})
    for (const auto& entry : std::filesystem::directory_iterator(std::string(HPOC_SOURCE_DIR) + dir))
      if (entry.path().extension() == ".hpo") files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_CASE("JIT kernels equal the interpreter on every example and golden model (O2)", "[jit]") {
  for (const auto& file : model_files()) {
    SECTION(file) { check_model_file(file, codegen::OptLevel::O2); }
  }
}

TEST_CASE("JIT kernels equal the interpreter at O0 too", "[jit]") {
  check_model_file(std::string(HPOC_SOURCE_DIR) + "/examples/inventory.hpo", codegen::OptLevel::O0);
  check_model_file(std::string(HPOC_SOURCE_DIR) + "/examples/switched_lqr.hpo", codegen::OptLevel::O0);
}

TEST_CASE("every built-in compiles to the interpreter's values", "[jit]") {
  auto path = std::filesystem::temp_directory_path() / "hpoc_jit_builtins.hpo";
  std::ofstream(path) << R"(model builtins
state x[3] = 0.5
action u[2] : real
action k : choice(3)
horizon 1
step {
  x'[0] = relu(x[0]) + abs(x[1]) + exp(0.3 * x[2]) + log(x[0] * x[0] + 1.0) + sqrt(x[1] * x[1] + 0.5)
  x'[1] = sin(x[0]) * cos(u[0]) + tanh(x[1]) + sigmoid(u[1]) + softplus(x[2] * 20.0) + pow(x[0] * x[0] + 1.0, u[0])
  x'[2] = max(x[0], u[0]) - min(x[1], u[1]) + clamp(x[2], -1.0, 1.0) + real(k) + mean(x) + (if x[0] > u[1] then 1.0 else 0.0)
  cost += dot(x, x) + max(x) + 3.0 * (u[0] > 0.0) + (if k == 2 then sum(x) else u[1] / (x[0] * x[0] + 1.0))
})";
  check_model_file(path.string(), codegen::OptLevel::O2);
}
