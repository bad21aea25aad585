// train_bench.cpp: times full training iterations (rollout, backward, update) of hpoc's trainer on
// the paper's problems at several network widths and both precisions, splits the time between the
// simulator and the policy networks, and compares the networks' arithmetic rate with the
// machine's measured sgemm rate.
#include <CLI/CLI.hpp>
#include <Eigen/Dense>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "hpo/train.hpp"
#include "runtime/dense.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Problem {
  std::string name, file, set;
};

Problem problem_of(const std::string& name) {
  const std::string root = HPOC_SOURCE_DIR;
  if (name.rfind("inventory", 0) == 0)
    return {name, root + "/examples/inventory.hpo", "STORES=" + name.substr(9)};
  if (name.rfind("lqr", 0) == 0) return {name, root + "/examples/switched_lqr_paper.hpo", "D=" + name.substr(3)};
  throw std::invalid_argument("unknown problem '" + name + "' (inventoryN or lqrN)");
}

std::vector<std::string> split(const std::string& text, char by) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, by);)
    if (!item.empty()) out.push_back(item);
  return out;
}

// Every thread multiplies its own [rows x k] x [k x n] float matrices at once; the sum of their rates.
double sgemm_gflops(int threads, bool eigen) {
  constexpr int rows = 512, k = 512, n = 512, repeats = 20;
  std::vector<double> rate(threads);
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w)
    pool.emplace_back([&, w] {
      Eigen::MatrixXf a = Eigen::MatrixXf::Random(rows, k), b = Eigen::MatrixXf::Random(k, n), c(rows, n);
      std::vector<float> b_rows(static_cast<std::size_t>(k) * hpo::runtime::padded_columns(n), 0.0f);
      for (int i = 0; i < k; ++i)
        for (int j = 0; j < n; ++j) b_rows[i * hpo::runtime::padded_columns(n) + j] = b(i, j);
      auto once = [&] {
        if (eigen) c.noalias() = a * b;
        else
          hpo::runtime::lane_gemm<float>(rows, k, n, a.data(), rows, b_rows.data(), hpo::runtime::padded_columns(n),
                                         nullptr, c.data(), rows, hpo::runtime::Epilogue::Linear);
      };
      once();
      const auto start = Clock::now();
      for (int r = 0; r < repeats; ++r) once();
      rate[w] = 2.0 * rows * k * n * repeats / seconds_since(start) / 1e9;
    });
  for (auto& t : pool) t.join();
  double sum = 0;
  for (double r : rate) sum += r;
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times hpoc training iterations: ms per iteration, steps/s, where the time goes"};
  std::string problems = "inventory4,inventory16,lqr8", widths = "64,64;256,256;512,512", precisions = "f32,f64";
  std::string mode = "hpo";
  std::int64_t batch = 1024, iterations = 5, warmup = 2;
  int threads = 2;
  bool json = false;
  app.add_option("--problems", problems, "Comma-separated: inventoryN (N stores), lqrN (state dimension N)")
      ->capture_default_str();
  app.add_option("--hidden", widths, "Semicolon-separated hidden sizes, each comma-separated")->capture_default_str();
  app.add_option("--precision", precisions, "Comma-separated: f32, f64")->capture_default_str();
  app.add_option("--mode", mode,
                 "hpo (the default options: critic, full-batch step, PPO epochs, timed without the KL stop) or "
                 "hpo-batch-mean (--advantage batch-mean: one pathwise step per batch)")
      ->capture_default_str();
  app.add_option("--batch", batch, "Episodes per iteration")->capture_default_str();
  app.add_option("--iterations", iterations, "Timed iterations per configuration")->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed iterations first (the first allocates and measures the cross term)")
      ->capture_default_str();
  app.add_option("--threads", threads, "Threads")->capture_default_str();
  app.add_flag("--json", json, "One JSON object per configuration instead of the table");
  CLI11_PARSE(app, argc, argv);
  if (mode != "hpo" && mode != "hpo-batch-mean") {
    std::cerr << "train_bench: --mode is hpo or hpo-batch-mean\n";
    return 2;
  }

  const double sgemm_ours = sgemm_gflops(threads, false), sgemm_eigen = sgemm_gflops(threads, true);
  const double sgemm = std::max(sgemm_ours, sgemm_eigen);
  if (!json)
    std::cout << "sgemm 512x512x512 on " << threads << " threads: " << std::fixed << std::setprecision(1) << sgemm_ours
              << " GFLOP/s (hpoc's lane kernel), " << sgemm_eigen << " GFLOP/s (Eigen); reference " << sgemm << "\n\n"
              << "problem      hidden    prec  ms/iter   steps/s  simulator  forward  backward  w-grad   rest  "
                 "policy GFLOP/s  of sgemm\n";
  for (const auto& name : split(problems, ','))
    for (const auto& width : split(widths, ';'))
      for (const auto& precision : split(precisions, ',')) {
        const Problem problem = problem_of(name);
        hpo::CompileOptions compile;
        compile.stdlib_dirs = {std::string(HPOC_SOURCE_DIR) + "/stdlib"};
        compile.sets = {problem.set};
        const hpo::Model model = hpo::compile_file(problem.file, compile);
        hpo::TrainOptions o;
        o.batch = batch;
        o.threads = threads;
        o.precision = hpo::parse_precision(precision);
        o.hidden.clear();
        for (const auto& h : split(width, ',')) o.hidden.push_back(std::stoi(h));
        o.iterations = 1 << 30;  // no learning-rate or entropy schedule moves, no dev evaluation in the window
        o.eval_every = 1 << 30;
        o.dev_episodes = 2;
        if (mode == "hpo-batch-mean") o.hpo.advantage = hpo::Advantage::BatchMean;
        o.sf.target_kl = 0;  // every PPO minibatch runs: the time of an iteration does not depend on where it stops
        hpo::Trainer trainer(model, o);
        for (std::int64_t i = 0; i < warmup; ++i) trainer.iterate();
        trainer.reset_time_split();
        const auto start = Clock::now();
        double first_cost = 0, last_cost = 0;
        for (std::int64_t i = 0; i < iterations; ++i) {
          const auto stats = trainer.iterate();
          (i == 0 ? first_cost : last_cost) = stats.train_cost;
        }
        const double wall = seconds_since(start) / double(iterations);
        const hpo::TimeSplit split_time = trainer.time_split();
        auto per_iteration = [&](double seconds) { return seconds / double(threads) / double(iterations); };
        const double sim = per_iteration(split_time.simulator), fwd = per_iteration(split_time.policy_forward),
                     bwd = per_iteration(split_time.policy_backward), grad = per_iteration(split_time.weight_gradient);
        const double policy_seconds = fwd + bwd + grad;
        const double policy_gflops = split_time.policy_flops / double(iterations) / policy_seconds / 1e9;
        const double steps = double(batch) * double(model.horizon()) / wall;
        if (json) {
          std::cout << "{\"problem\": \"" << name << "\", \"hidden\": \"" << width << "\", \"precision\": \"" << precision
                    << "\", \"mode\": \"" << mode << "\", \"batch\": " << batch << ", \"threads\": " << threads
                    << ", \"iterations\": " << iterations << ", \"ms_per_iteration\": " << wall * 1e3
                    << ", \"steps_per_second\": " << steps << ", \"simulator_ms\": " << sim * 1e3
                    << ", \"forward_ms\": " << fwd * 1e3 << ", \"backward_ms\": " << bwd * 1e3
                    << ", \"weight_gradient_ms\": " << grad * 1e3 << ", \"policy_gflops\": " << policy_gflops
                    << ", \"sgemm_gflops\": " << sgemm << ", \"first_cost\": " << first_cost
                    << ", \"last_cost\": " << last_cost << "}" << std::endl;
        } else {
          std::cout << std::left << std::setw(13) << name << std::setw(10) << width << std::setw(6) << precision
                    << std::right << std::fixed << std::setprecision(1) << std::setw(7) << wall * 1e3 << std::setw(10)
                    << std::setprecision(0) << steps << std::setprecision(1) << std::setw(11) << sim * 1e3
                    << std::setw(9) << fwd * 1e3 << std::setw(10) << bwd * 1e3 << std::setw(8) << grad * 1e3
                    << std::setw(7) << (wall - sim - policy_seconds) * 1e3 << std::setw(16) << policy_gflops
                    << std::setw(9) << std::setprecision(0) << 100 * policy_gflops / sgemm << "%" << std::endl;
        }
      }
  if (!json) std::cout << "\n(ms per iteration and per thread; 'rest' is the wall time outside the measured parts)\n";
  return 0;
}
