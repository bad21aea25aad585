// jrp_reference.cpp: the reference costs of examples/jrp.hpo: tune the joint-trigger order-up-to
// heuristic on the dev seed, score it on the test seed (the scenarios hpoc's evaluation uses), and
// optionally (--lower-bound) the clairvoyant lower bound on the same test scenarios.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "jrp_policy.hpp"
#include "scenario_cli.hpp"

namespace {

struct Options : hpo::bench::ScenarioOptions {
  std::int64_t first_reported = -1;  // -1: the model's report window
  unsigned threads = 0;
  bool quick = false;
  bool tune_all_periods = false;
  bool lower_bound = false;
  bool json = false;
};

nlohmann::json costs_json(const hpo::bench::JrpCosts& c) {
  return {{"all", c.mean_all}, {"all_ci95", c.ci95_all}, {"window", c.mean_window}, {"window_ci95", c.ci95_window}};
}

nlohmann::json policy_json(const hpo::bench::JrpPolicy& p) {
  auto finite_or_null = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
  return {{"cover", p.cover}, {"safety", p.safety}, {"fractile", p.fractile}, {"reorder", finite_or_null(p.reorder)},
          {"shortfall", finite_or_null(p.shortfall)}};
}

bool close(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)}); }

int run(int argc, char** argv) {
  CLI::App app{"jrp_reference: tune a joint replenishment heuristic on a dev seed and score it on a test seed",
               "jrp_reference"};
  Options opt;
  hpo::bench::add_scenario_options(app, opt, "search", false);
  app.add_option("--first-reported", opt.first_reported,
                 "First period of the reported window (default: the model's `report periods`, 16 in examples/jrp.hpo)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", opt.threads, "Threads (0: one per hardware thread)")->capture_default_str();
  app.add_flag("--quick", opt.quick, "A tiny search (no grid, one step size): for smoke tests");
  app.add_flag("--tune-all-periods", opt.tune_all_periods, "Tune on every period's cost instead of the window's");
  app.add_flag("--lower-bound", opt.lower_bound, "Also compute the clairvoyant lower bound on the test scenarios");
  app.add_flag("--json", opt.json, "Print one JSON object instead of text");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const unsigned threads = opt.threads != 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  using hpo::bench::seconds_since;
  const auto start = std::chrono::steady_clock::now();

  const std::optional<hpo::Model> model = hpo::bench::compile_scenario_model(opt);
  if (!model) return 1;
  const std::size_t first_reported =
      static_cast<std::size_t>(opt.first_reported >= 0 ? opt.first_reported : model->report_window().first);
  hpo::bench::JrpInstance instance;
  try {
    instance = hpo::bench::read_jrp_instance(*model);
  } catch (const std::invalid_argument& e) {
    std::cerr << "jrp_reference: error: " << e.what() << '\n';
    return 1;
  }

  const auto search_start = std::chrono::steady_clock::now();
  const hpo::bench::Scenarios dev(*model, opt.dev_seed, opt.episodes);
  hpo::bench::JrpSearchOptions search;
  search.quick = opt.quick;
  search.tune_window = !opt.tune_all_periods;
  search.threads = threads;
  const hpo::bench::JrpSearchResult found = hpo::bench::tune_jrp(instance, dev, first_reported, search);
  const double search_seconds = seconds_since(search_start);

  // The search ran on a plain C++ copy of the dynamics; the model's own kernels must agree.
  const hpo::bench::JrpCosts dev_replayed = hpo::bench::simulate_jrp(instance, dev, found.policy, first_reported, threads);
  const hpo::bench::JrpCosts dev_costs =
      hpo::bench::evaluate_jrp_in_model(*model, instance, found.policy, opt.dev_seed, opt.episodes, first_reported);
  if (!close(dev_replayed.mean_all, dev_costs.mean_all) || !close(dev_replayed.mean_window, dev_costs.mean_window))
    throw std::logic_error("the heuristic's simulation disagrees with the model: dev cost " +
                           std::to_string(dev_replayed.mean_all) + " simulated, " + std::to_string(dev_costs.mean_all) +
                           " through the model's BatchEnv");
  const hpo::bench::JrpCosts test =
      hpo::bench::evaluate_jrp_in_model(*model, instance, found.policy, opt.test_seed, opt.episodes, first_reported);

  std::optional<hpo::bench::JrpCosts> bound;
  double bound_seconds = 0;
  if (opt.lower_bound) {
    const auto bound_start = std::chrono::steady_clock::now();
    const hpo::bench::Scenarios test_scenarios(*model, opt.test_seed, opt.episodes);
    bound = hpo::bench::clairvoyant_jrp_bound(instance, test_scenarios, first_reported, threads);
    bound_seconds = seconds_since(bound_start);
    // The bound holds scenario by scenario: a test episode cheaper than its bound is a bug.
    for (std::size_t b = 0; b < test.all.size(); ++b)
      if (test.all[b] < bound->all[b] - 1e-9 * std::max(1.0, bound->all[b]) ||
          test.window[b] < bound->window[b] - 1e-9 * std::max(1.0, bound->window[b]))
        throw std::logic_error("test episode " + std::to_string(b) + " of the heuristic costs less than its clairvoyant bound");
  }
  const double total_seconds = seconds_since(start);

  if (opt.json) {
    nlohmann::json out;
    out["model"] = model->name();
    out["items"] = instance.items;
    out["episodes"] = opt.episodes;
    out["dev_seed"] = opt.dev_seed;
    out["test_seed"] = opt.test_seed;
    out["first_reported"] = first_reported;
    out["policy"] = policy_json(found.policy);
    out["dev"] = costs_json(dev_costs);
    out["test"] = costs_json(test);
    if (bound) out["lower_bound"] = costs_json(*bound);
    out["evaluations"] = found.evaluations;
    out["search_seconds"] = search_seconds;
    out["total_seconds"] = total_seconds;
    std::cout << out.dump() << '\n';
    return 0;
  }
  const std::size_t T = instance.horizon;
  std::printf("model %s: %zu item%s, lead time %zu, horizon %zu; costs per period per item\n", model->name().c_str(),
              instance.items, instance.items == 1 ? "" : "s", instance.lead, T);
  // The instance matters at small sizes (a single item's cost grows with its mean demand), so show it.
  std::printf("items (mean demand, holding, backlog):");
  for (std::size_t i = 0; i < std::min<std::size_t>(instance.items, 5); ++i)
    std::printf(" (%.2f, %.2f, %.2f)", instance.mean_demand[i], instance.holding[i], instance.backlog[i]);
  std::printf("%s\n", instance.items > 5 ? " ..." : "");
  std::printf("heuristic: %s\n", hpo::bench::describe(found.policy).c_str());
  std::printf("dev  (seed %llu, %lld episodes): all periods %.3f, periods %zu..%zu %.3f\n",
              static_cast<unsigned long long>(opt.dev_seed), static_cast<long long>(opt.episodes), dev_costs.mean_all,
              first_reported, T - 1, dev_costs.mean_window);
  std::printf("test (seed %llu, %lld episodes): all periods %.3f +- %.3f, periods %zu..%zu %.3f +- %.3f (95%% CI)\n",
              static_cast<unsigned long long>(opt.test_seed), static_cast<long long>(opt.episodes), test.mean_all,
              test.ci95_all, first_reported, T - 1, test.mean_window, test.ci95_window);
  // hpoc reports the total over the model's report window per episode.
  std::printf("  total per episode over periods %zu..%zu (hpoc's test cost when that is the report window): %.1f\n",
              first_reported, T - 1, test.mean_window * static_cast<double>(T - std::min(first_reported, T)));
  if (bound)
    std::printf("lower bound (clairvoyant, fixed cost split equally, seed %llu): all periods %.3f +- %.3f, "
                "periods %zu..%zu %.3f +- %.3f; %.2f s\n",
                static_cast<unsigned long long>(opt.test_seed), bound->mean_all, bound->ci95_all, first_reported,
                T - 1, bound->mean_window, bound->ci95_window, bound_seconds);
  std::printf("%lld policies simulated on %u thread%s; compile %.2f s, search %.2f s, total %.2f s\n",
              static_cast<long long>(found.evaluations), threads, threads == 1 ? "" : "s", model->compile_seconds(),
              search_seconds, total_seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "jrp_reference: internal error: " << e.what() << '\n';
    return 3;
  }
}
