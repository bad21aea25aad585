// kernels_bench.cpp: throughput of the JIT'd step and step + adjoint kernels against hand-written
// C++ (handwritten.hpp) on the inventory and switched-LQR examples, at batch 1, 256 and 4096, and
// the JIT compile time per model. `--check` only verifies that both compute the same numbers.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <sstream>

#include "analysis/split.hpp"
#include "autodiff/adjoint.hpp"
#include "handwritten.hpp"
#include "ir/lower.hpp"
#include "jit/jit.hpp"
#include "sema/param_values.hpp"

namespace {

using namespace hpo;

struct Compiled {
  std::unique_ptr<ir::Program> program;
  std::unique_ptr<jit::Kernels> kernels;
  std::vector<double> params;
  double compile_ms = 0;
};

Compiled compile(const std::string& example, codegen::OptLevel level = codegen::OptLevel::O2) {
  Compiled c;
  SourceManager sources;
  std::ostringstream messages;
  Diagnostics diags(sources, messages);
  CheckOptions options;
  options.stdlib_dirs = {HPOC_SOURCE_DIR "/stdlib"};
  auto start = std::chrono::steady_clock::now();
  auto model = check_file(HPOC_SOURCE_DIR "/examples/" + example, sources, diags, options);
  if (!model) throw std::runtime_error(messages.str());
  c.program = ir::lower(*model, diags);
  analysis::analyze(*c.program, diags);
  auto adjoints = autodiff::differentiate(*c.program);
  std::string error;
  c.kernels = jit::Kernels::compile(*c.program, adjoints, {level}, &error);
  if (!c.kernels) throw std::runtime_error(error);
  c.compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  for (const auto& p : default_param_values(*model).values) c.params.insert(c.params.end(), p.begin(), p.end());
  return c;
}

Compiled& model(const std::string& example) {
  static std::map<std::string, Compiled> cache;
  auto it = cache.find(example);
  if (it == cache.end()) it = cache.emplace(example, compile(example)).first;
  return it->second;
}

// Random SoA inputs in the model's ranges, and output buffers.
struct Batch {
  std::int64_t n;
  std::vector<double> state, cont, noise, next, cost, next_bar, cost_bar, state_bar, cont_bar;
  std::vector<std::int32_t> disc;

  Batch(const ir::Layout& l, std::int64_t batch) : n(batch) {
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> u(0.0, 10.0);
    auto fill = [&](std::vector<double>& v, std::size_t count) {
      v.resize(count * static_cast<std::size_t>(n));
      for (auto& x : v) x = u(rng);
    };
    fill(state, l.state.size());
    fill(cont, l.cont.size());
    fill(noise, l.noise.size());
    fill(next_bar, l.state.size());
    fill(cost_bar, 1);
    next.resize(state.size());
    cost.resize(static_cast<std::size_t>(n));
    state_bar.resize(state.size());
    cont_bar.resize(cont.size());
    disc.resize(l.disc.size() * static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < disc.size(); ++i)
      disc[i] = static_cast<std::int32_t>(rng() % static_cast<std::uint32_t>(l.disc_choices[i / static_cast<std::size_t>(n)]));
  }
};

enum class Work { Step, Adjoint, Both };

template <typename Hand>
void run(benchmark::State& st, const std::string& example, bool jit, Work work) {
  const bool forward = work != Work::Adjoint, adjoint = work != Work::Step;
  Compiled& c = model(example);
  Batch b(c.program->layout, st.range(0));
  const double* p = c.params.data();
  for (auto _ : st) {
    if (jit && b.n == 1) {
      // One sample: the per-sample kernels, as Model::step and step_adjoint call them.
      if (forward) c.kernels->step(p, b.state.data(), b.disc.data(), b.cont.data(), b.noise.data(), b.next.data(), b.cost.data(), 0);
      if (adjoint)
        c.kernels->step_adj(p, b.state.data(), b.disc.data(), b.cont.data(), b.noise.data(), b.next_bar.data(),
                            b.cost_bar.data(), b.state_bar.data(), b.cont_bar.data(), 0);
    } else if (jit) {
      if (forward)
        c.kernels->step_batch(b.n, p, b.state.data(), b.disc.data(), b.cont.data(), b.noise.data(), b.next.data(), b.cost.data(), 0);
      if (adjoint)
        c.kernels->step_adj_batch(b.n, p, b.state.data(), b.disc.data(), b.cont.data(), b.noise.data(), b.next_bar.data(),
                                  b.cost_bar.data(), b.state_bar.data(), b.cont_bar.data(), 0);
    } else {
      if (forward) Hand::step(b.n, p, b.state.data(), b.disc.data(), b.cont.data(), b.noise.data(), b.next.data(), b.cost.data());
      if (adjoint)
        Hand::step_adj(b.n, p, b.state.data(), b.disc.data(), b.cont.data(), b.noise.data(), b.next_bar.data(),
                       b.cost_bar.data(), b.state_bar.data(), b.cont_bar.data());
    }
    benchmark::DoNotOptimize(b.next.data());
    benchmark::DoNotOptimize(b.state_bar.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * b.n);  // samples stepped
  st.counters["samples/s"] = benchmark::Counter(double(st.iterations() * b.n), benchmark::Counter::kIsRate);
  if (example == "inventory.hpo")
    st.counters["store-steps/s"] = benchmark::Counter(double(st.iterations() * b.n * 3), benchmark::Counter::kIsRate);
}

void BM_compile(benchmark::State& st, const std::string& example) {
  for (auto _ : st) {
    Compiled c = compile(example);
    benchmark::DoNotOptimize(c.kernels.get());
  }
}

// Both implementations on the same random batch must agree to 1e-12.
int check() {
  int failures = 0;
  auto compare = [&](const char* what, const std::vector<double>& a, const std::vector<double>& b) {
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
      worst = std::max(worst, std::fabs(a[i] - b[i]) / std::max(1.0, std::fabs(b[i])));
    std::printf("%-40s max relative difference %.3g\n", what, worst);
    if (!(worst <= 1e-12)) ++failures;
  };
  auto one = [&](const std::string& example, auto hand) {
    Compiled& c = model(example);
    Batch jit_batch(c.program->layout, 257), hand_batch(c.program->layout, 257);
    const double* p = c.params.data();
    c.kernels->step_batch(257, p, jit_batch.state.data(), jit_batch.disc.data(), jit_batch.cont.data(),
                          jit_batch.noise.data(), jit_batch.next.data(), jit_batch.cost.data(), 0);
    c.kernels->step_adj_batch(257, p, jit_batch.state.data(), jit_batch.disc.data(), jit_batch.cont.data(),
                              jit_batch.noise.data(), jit_batch.next_bar.data(), jit_batch.cost_bar.data(),
                              jit_batch.state_bar.data(), jit_batch.cont_bar.data(), 0);
    decltype(hand)::step(257, p, hand_batch.state.data(), hand_batch.disc.data(), hand_batch.cont.data(),
                         hand_batch.noise.data(), hand_batch.next.data(), hand_batch.cost.data());
    decltype(hand)::step_adj(257, p, hand_batch.state.data(), hand_batch.disc.data(), hand_batch.cont.data(),
                             hand_batch.noise.data(), hand_batch.next_bar.data(), hand_batch.cost_bar.data(),
                             hand_batch.state_bar.data(), hand_batch.cont_bar.data());
    compare((example + " next state").c_str(), jit_batch.next, hand_batch.next);
    compare((example + " cost").c_str(), jit_batch.cost, hand_batch.cost);
    compare((example + " state adjoint").c_str(), jit_batch.state_bar, hand_batch.state_bar);
    compare((example + " action adjoint").c_str(), jit_batch.cont_bar, hand_batch.cont_bar);
    std::printf("%-40s JIT compile (O2, whole pipeline) %.1f ms\n", example.c_str(), c.compile_ms);
  };
  one("inventory.hpo", bench::Inventory{});
  one("switched_lqr.hpo", bench::SwitchedLqr{});
  std::printf("%d passed, %d failed\n", 8 - failures, failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--check") == 0) return check();
  const std::pair<Work, const char*> kinds[] = {{Work::Step, "step"}, {Work::Adjoint, "adjoint"}, {Work::Both, "step+adjoint"}};
  for (std::int64_t batch : {1, 256, 4096}) {
    for (const auto& [work, kind] : kinds) {
      Work w = work;
      for (bool jit : {true, false}) {
        std::string how = std::string(jit ? "/jit/" : "/hand/") + kind;
        benchmark::RegisterBenchmark(("inventory" + how).c_str(),
                                     [=](benchmark::State& s) { run<bench::Inventory>(s, "inventory.hpo", jit, w); })
            ->Arg(batch);
        benchmark::RegisterBenchmark(("lqr" + how).c_str(),
                                     [=](benchmark::State& s) { run<bench::SwitchedLqr>(s, "switched_lqr.hpo", jit, w); })
            ->Arg(batch);
      }
    }
  }
  benchmark::RegisterBenchmark("compile/inventory", [](benchmark::State& s) { BM_compile(s, "inventory.hpo"); })
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("compile/switched_lqr", [](benchmark::State& s) { BM_compile(s, "switched_lqr.hpo"); })
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
