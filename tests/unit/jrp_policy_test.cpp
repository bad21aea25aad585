// jrp_policy_test.cpp: the joint replenishment reference (bench/jrp_policy) on examples/jrp.hpo:
// tuning beats plainly bad settings, its simulation is the model's, and the bound sits below it.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "jrp_policy.hpp"

namespace {

hpo::Model compile_jrp(int items) {
  hpo::CompileOptions options;
  options.stdlib_dirs = {std::string(HPOC_SOURCE_DIR) + "/stdlib"};
  options.sets = {"N=" + std::to_string(items)};
  return hpo::compile_file(std::string(HPOC_SOURCE_DIR) + "/examples/jrp.hpo", options);
}

constexpr std::size_t kFirstReported = 16;
constexpr std::int64_t kEpisodes = 64;

}  // namespace

TEST_CASE("the tuned JRP heuristic costs less than plainly bad settings", "[jrp]") {
  const hpo::Model model = compile_jrp(3);
  const hpo::bench::JrpInstance instance = hpo::bench::read_jrp_instance(model);
  REQUIRE(instance.items == 3);
  REQUIRE(instance.lead == 2);
  const hpo::bench::Scenarios dev(model, 1000, kEpisodes);
  const hpo::bench::JrpSearchResult tuned = hpo::bench::tune_jrp(instance, dev, kFirstReported, {.quick = true});
  REQUIRE(std::isfinite(tuned.dev_cost));
  auto window_cost = [&](const hpo::bench::JrpPolicy& policy) {
    return hpo::bench::simulate_jrp(instance, dev, policy, kFirstReported).mean_window;
  };
  CHECK(window_cost(tuned.policy) == Approx(tuned.dev_cost));

  hpo::bench::JrpPolicy never = tuned.policy;  // both triggers off: demand piles up as backlog
  never.reorder = -std::numeric_limits<double>::infinity();
  never.shortfall = std::numeric_limits<double>::infinity();
  hpo::bench::JrpPolicy every_period = tuned.policy;  // the fixed cost paid every period
  every_period.shortfall = 0;
  hpo::bench::JrpPolicy overstocked = tuned.policy;
  overstocked.cover += 6;
  const double tuned_cost = window_cost(tuned.policy);
  INFO("tuned: " << hpo::bench::describe(tuned.policy) << " costs " << tuned_cost);
  CHECK(window_cost(never) > 2 * tuned_cost);
  CHECK(window_cost(every_period) > tuned_cost + 5);
  CHECK(window_cost(overstocked) > tuned_cost + 5);
}

TEST_CASE("the JRP heuristic's simulation is the model's, and the clairvoyant bound lies below it", "[jrp]") {
  for (int items : {1, 4}) {
    const hpo::Model model = compile_jrp(items);
    const hpo::bench::JrpInstance instance = hpo::bench::read_jrp_instance(model);
    hpo::bench::JrpPolicy policy;
    policy.cover = 1.5;
    policy.safety = 0.5;
    policy.reorder = 0;
    policy.shortfall = 3;
    const hpo::bench::Scenarios test(model, 1001, kEpisodes);
    const hpo::bench::JrpCosts simulated = hpo::bench::simulate_jrp(instance, test, policy, kFirstReported);
    const hpo::bench::JrpCosts stepped =
        hpo::bench::evaluate_jrp_in_model(model, instance, policy, 1001, kEpisodes, kFirstReported);
    const hpo::bench::JrpCosts bound = hpo::bench::clairvoyant_jrp_bound(instance, test, kFirstReported);
    for (std::size_t b = 0; b < static_cast<std::size_t>(kEpisodes); ++b) {
      INFO(items << " items, episode " << b);
      CHECK(simulated.all[b] == Approx(stepped.all[b]).epsilon(1e-12));
      CHECK(simulated.window[b] == Approx(stepped.window[b]).epsilon(1e-12));
      CHECK(bound.all[b] <= stepped.all[b]);
      CHECK(bound.window[b] <= stepped.window[b]);
      CHECK(bound.window[b] > 0);
    }
  }
}
