// jrp_policy.hpp: the reference for examples/jrp.hpo: a joint-trigger order-up-to heuristic tuned on
// dev scenarios, and a clairvoyant lower bound, both on the scenarios hpoc's evaluation sees.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <hpo/hpo.hpp>

#include "ss_policy.hpp"

namespace hpo::bench {

// A joint replenishment model laid out as examples/jrp.hpo: states inventory[i] and
// in_transit[i, l], actions order : choice(2) and qty[i] (in units of mean_demand[i]), noise
// demand[i], params mean_demand, holding, backlog and fixed_cost. Costs are the model's: per
// period, (sum_i holding_i (I_i - d_i)^+ + backlog_i (d_i - I_i)^+ + fixed_cost [order]) / items.
struct JrpInstance {
  std::size_t items = 0;
  std::size_t lead = 0;  // an order placed in period t serves demand from period t + lead on
  std::size_t horizon = 0;
  std::vector<double> mean_demand, holding, backlog;
  double fixed_cost = 0;
  std::vector<std::size_t> inventory_state, demand_noise, qty_action;
  std::vector<std::vector<std::size_t>> in_transit_state;  // [item][l], l = 0 arrives first
  std::size_t order_action = 0;
};

// Throws std::invalid_argument when the model is not laid out that way.
JrpInstance read_jrp_instance(const hpo::Model& model);

// Per item i with mean demand m_i, a joint order raises every item to its order-up-to level
//   S_i = m_i c + (safety + fractile z_i) sqrt(m_i c),  c = lead + 1 + cover,
// z_i the standard normal quantile of the item's newsvendor fractile backlog_i / (backlog_i +
// holding_i), so that items dearer to run short of keep more stock
// (ordering S_i - position_i, nothing when the position is already above: items have no cost of
// their own, so an order is worth filling for every item). The inventory position is net inventory
// plus everything in transit. An order is placed when either trigger fires:
//   - item: some item's position is below m_i r + reorder sqrt(m_i r), r = lead + 1, the demand
//     until an order placed now could arrive; -inf turns it off;
//   - joint: the total shortfall sum_i (S_i - position_i)^+ exceeds `shortfall` periods of total
//     mean demand; +inf turns it off.
// (A third trigger, on the backlog cost expected in period t + lead without an order, weighing items
// by what running short costs them, did no better at 5 and 10 items and doubled the search time.)
// Five numbers shared by all items, so the search is the same size for 1 or 70 items.
struct JrpPolicy {
  double cover = 0;
  double safety = 0;
  double fractile = 0;
  double reorder = -std::numeric_limits<double>::infinity();
  double shortfall = std::numeric_limits<double>::infinity();
};
std::string describe(const JrpPolicy& policy);

// Costs per period per item, per episode, over all periods and over the reported window, the
// periods from `first_reported` to the end (the paper reports periods 16..99 of 100).
struct JrpCosts {
  std::vector<double> all, window;
  double mean_all = 0, ci95_all = 0, mean_window = 0, ci95_window = 0;  // ci95: normal half-width
};

// Plain C++ simulation of the policy on recorded scenarios (fast; for the search).
JrpCosts simulate_jrp(const JrpInstance& instance, const Scenarios& scenarios, const JrpPolicy& policy,
                      std::size_t first_reported, unsigned threads = 1);

// The same policy stepped through the model's own kernels in one BatchEnv with `seed`: exactly the
// scenarios and cost hpoc's evaluation computes for that seed and episode count.
JrpCosts evaluate_jrp_in_model(const hpo::Model& model, const JrpInstance& instance, const JrpPolicy& policy,
                               std::uint64_t seed, std::int64_t episodes, std::size_t first_reported);

struct JrpSearchOptions {
  bool quick = false;       // no coarse grid, one step size: seconds even at 70 items
  bool tune_window = true;  // minimize the reported window's cost (false: all periods)
  unsigned threads = 1;
};
struct JrpSearchResult {
  JrpPolicy policy;
  double dev_cost = 0;  // the objective on the dev scenarios, per period per item
  std::int64_t evaluations = 0;
};
// A coarse grid, then a compass search with halving steps, for each trigger alone and for the
// best one with the other added; the cheapest on the dev scenarios wins.
JrpSearchResult tune_jrp(const JrpInstance& instance, const Scenarios& dev, std::size_t first_reported,
                         const JrpSearchOptions& options = {});

// The clairvoyant bound: per scenario, sum over items of each item's least cost knowing all its
// demands in advance, with the fixed cost split equally among the items (see jrp_policy.cpp for
// why that is a lower bound), per period per item, over all periods and over the window.
// Needs initial inventory and transit of zero.
JrpCosts clairvoyant_jrp_bound(const JrpInstance& instance, const Scenarios& scenarios, std::size_t first_reported,
                               unsigned threads = 1);

}  // namespace hpo::bench
