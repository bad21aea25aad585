// ss_grid.cpp: the (s, S) baseline of an inventory-like model: grid-search (s, S) per store on the
// dev seed, then report the cost of the chosen policy on the test seed, the scenarios a trained
// policy is scored on, and optionally (--lower-bound) the clairvoyant lower bound on the cost of
// any policy on those same scenarios.
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

#include "inventory_bound.hpp"
#include "scenario_cli.hpp"
#include "ss_policy.hpp"

namespace {

using hpo::bench::IntRange;

struct Options : hpo::bench::ScenarioOptions {
  std::string s_range, S_range;
  int sweeps = 2;
  unsigned threads = 0;
  bool json = false;
  bool lower_bound = false;
};

IntRange parse_range(const std::string& text, const char* option) {
  auto colon = text.find(':');
  try {
    if (colon != std::string::npos) {
      std::size_t used_lo = 0, used_hi = 0;
      IntRange r{std::stoll(text.substr(0, colon), &used_lo), std::stoll(text.substr(colon + 1), &used_hi)};
      if (used_lo == colon && colon + 1 + used_hi == text.size() && r.lo <= r.hi) return r;
    }
  } catch (const std::logic_error&) {
  }
  throw CLI::ValidationError(option, "expected LO:HI with integers LO <= HI, got '" + text + "'");
}

// JSON has no infinity: a store that never orders has null s and S.
nlohmann::json level_json(double level) { return std::isfinite(level) ? nlohmann::json(level) : nlohmann::json(nullptr); }

std::string store_name(const std::string& label) { return label.empty() ? "store" : "store " + label; }

int run(int argc, char** argv) {
  CLI::App app{"ss_grid: grid-search the (s, S) baseline of an inventory model on a dev seed and score it on a test seed",
               "ss_grid"};
  Options opt;
  hpo::bench::add_scenario_options(app, opt, "grid search", true);
  app.add_option("--s-range", opt.s_range, "Reorder points to try (default 1:largest qty bound)")->type_name("LO:HI");
  app.add_option("--S-range", opt.S_range, "Order-up-to levels to try, above s (default s+1:2*largest qty bound)")
      ->type_name("LO:HI");
  app.add_option("--sweeps", opt.sweeps, "Passes over the stores")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", opt.threads, "Threads for the search and the bound (0: one per hardware thread)")
      ->capture_default_str();
  app.add_flag("--json", opt.json, "Print one JSON object instead of text");
  app.add_flag("--lower-bound", opt.lower_bound,
               "Also compute the clairvoyant lower bound on any policy's cost, on the test scenarios");
  hpo::bench::SsGridOptions grid;
  try {
    app.parse(argc, argv);
    if (!opt.s_range.empty()) grid.s_range = parse_range(opt.s_range, "--s-range");
    if (!opt.S_range.empty()) grid.S_range = parse_range(opt.S_range, "--S-range");
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  grid.sweeps = opt.sweeps;
  grid.threads = opt.threads != 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());

  const auto start = std::chrono::steady_clock::now();
  using hpo::bench::seconds_since;
  const std::optional<hpo::Model> model = hpo::bench::compile_scenario_model(opt);
  if (!model) return 1;
  hpo::bench::StoreLayout layout;
  hpo::bench::SsResult found;
  hpo::bench::CostEstimate test;
  std::optional<hpo::bench::CostEstimate> bound;
  double bound_seconds = 0;
  const auto search_start = std::chrono::steady_clock::now();
  double search_seconds = 0;
  try {
    layout = hpo::bench::find_store_layout(*model);
    found = hpo::bench::grid_search_ss(*model, layout, opt.dev_seed, opt.episodes, grid);
    search_seconds = seconds_since(search_start);
    test = hpo::bench::evaluate_ss(*model, layout, found.s, found.S, opt.test_seed, opt.episodes);
    if (opt.lower_bound) {
      const auto bound_start = std::chrono::steady_clock::now();
      bound = hpo::bench::clairvoyant_lower_bound(*model, layout, opt.test_seed, opt.episodes, grid.threads);
      bound_seconds = seconds_since(bound_start);
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "ss_grid: error: " << e.what() << '\n';
    return 1;
  }
  const double total_seconds = seconds_since(start);
  // The bound holds scenario by scenario, so the (s, S) policy's cost on each test episode must be
  // at least the bound's; the paired differences give the gap's interval.
  double gap = 0, gap_ci95 = 0;
  if (bound) {
    const std::size_t n = test.episode_costs.size();
    std::vector<double> gaps(n);
    for (std::size_t b = 0; b < n; ++b) {
      gaps[b] = test.episode_costs[b] - bound->episode_costs[b];
      if (gaps[b] < -1e-9 * std::max(1.0, std::fabs(test.episode_costs[b])))
        throw std::logic_error("the clairvoyant bound " + std::to_string(bound->episode_costs[b]) +
                               " exceeds the (s, S) cost " + std::to_string(test.episode_costs[b]) +
                               " on test episode " + std::to_string(b));
      gap += gaps[b] / static_cast<double>(n);
    }
    if (n > 1) {
      double squares = 0;
      for (double g : gaps) squares += (g - gap) * (g - gap);
      gap_ci95 = 1.96 * std::sqrt(squares / static_cast<double>(n - 1)) / std::sqrt(static_cast<double>(n));
    }
  }

  if (opt.json) {
    nlohmann::json out;
    out["model"] = model->name();
    out["episodes"] = opt.episodes;
    out["dev_seed"] = opt.dev_seed;
    out["test_seed"] = opt.test_seed;
    out["stores"] = nlohmann::json::array();
    for (std::size_t j = 0; j < layout.stores.size(); ++j)
      out["stores"].push_back({{"store", layout.stores[j].label}, {"s", level_json(found.s[j])}, {"S", level_json(found.S[j])}});
    out["dev_cost"] = found.dev_cost;
    out["test_cost"] = test.mean;
    out["test_ci95"] = test.ci95;
    out["stores_changed_per_sweep"] = found.stores_changed;
    if (bound)
      out["lower_bound"] = {{"cost", bound->mean},
                            {"ci95", bound->ci95},
                            {"seconds", bound_seconds},
                            {"gap", gap},  // test_cost - cost, paired over the test episodes
                            {"gap_ci95", gap_ci95}};
    out["evaluations"] = found.evaluations;
    out["compile_seconds"] = model->compile_seconds();
    out["search_seconds"] = search_seconds;
    out["total_seconds"] = total_seconds;
    std::cout << out.dump() << '\n';
    return 0;
  }
  std::printf("model %s: %zu store%s, horizon %lld, discount %g\n", model->name().c_str(), layout.stores.size(),
              layout.stores.size() == 1 ? "" : "s", static_cast<long long>(model->horizon()), model->discount());
  for (std::size_t j = 0; j < layout.stores.size(); ++j) {
    if (std::isfinite(found.s[j]))
      std::printf("%s: s = %g, S = %g\n", store_name(layout.stores[j].label).c_str(), found.s[j], found.S[j]);
    else
      std::printf("%s: never orders\n", store_name(layout.stores[j].label).c_str());
  }
  std::printf("stores changed per sweep:");
  for (int changed : found.stores_changed) std::printf(" %d", changed);
  std::printf("\n");
  std::printf("dev cost  (seed %llu, %lld episodes): %.3f per episode\n", static_cast<unsigned long long>(opt.dev_seed),
              static_cast<long long>(opt.episodes), found.dev_cost);
  std::printf("test cost (seed %llu, %lld episodes): %.3f +- %.3f per episode (95%% CI)\n",
              static_cast<unsigned long long>(opt.test_seed), static_cast<long long>(opt.episodes), test.mean, test.ci95);
  if (bound)
    std::printf("lower bound (clairvoyant, seed %llu): %.3f +- %.3f per episode (95%% CI); "
                "(s, S) above it by %.3f +- %.3f (%.1f%% of the bound); %.2f s\n",
                static_cast<unsigned long long>(opt.test_seed), bound->mean, bound->ci95, gap, gap_ci95,
                100.0 * gap / bound->mean, bound_seconds);
  std::printf("%lld policies simulated on %u thread%s; compile %.2f s, search %.2f s, total %.2f s\n",
              static_cast<long long>(found.evaluations), grid.threads, grid.threads == 1 ? "" : "s",
              model->compile_seconds(), search_seconds, total_seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "ss_grid: internal error: " << e.what() << '\n';
    return 3;
  }
}
