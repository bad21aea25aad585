// inventory_bound.hpp: a lower bound on the expected cost of every policy of a lost-sales inventory
// model, the clairvoyant (perfect-information) optimum of each store on each scenario, computed on
// the scenarios a BatchEnv with a seed sees, so that it sits beside the (s, S) baseline's test cost.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ss_policy.hpp"

namespace hpo::bench {

// One store's costs and order limit, as the model's step charges them: per period,
// holding * (on hand at the end) + penalty * (unmet demand), plus fixed + unit * qty for an order.
struct StoreCosts {
  double holding = 0;
  double penalty = 0;
  double fixed = 0;
  double unit = 0;
  std::int64_t max_qty = 0;  // qty's upper bound rounded up (relaxing it keeps the bound valid)
};

// The store costs, read off the model's step by probing it (not by param names), and the cost of
// a step with every store empty, idle and without demand (charged every period alike). The probes
// also check that the step is the lost-sales form the bound assumes for every store: available =
// on_hand + pipeline[0] is sold against demand, the rest stays on hand, the pipeline shifts by one
// and the order placed (qty when ordering) enters its last slot, costs adding up over stores.
// Throws std::invalid_argument when it is not, or when a cost is negative.
struct InventoryCosts {
  std::vector<StoreCosts> stores;
  std::vector<std::size_t> demand;  // noise index of each store's demand[s] (or demand)
  double offset = 0;                // cost of a step with all stores at zero
};
InventoryCosts probe_inventory_costs(const hpo::Model& model, const StoreLayout& layout);

// The least discounted cost of one store over one scenario known in advance, with sales relaxed to
// voluntary (see inventory_bound.cpp): on_hand and pipeline (pipeline[l] arrives in period l) at
// the start, demand of every period. An order placed in period t arrives in period t + lead, lead
// being pipeline.size() >= 1. Exact integer DP; every input must be a whole number >= 0.
double clairvoyant_store_cost(const StoreCosts& costs, std::int64_t on_hand, std::span<const std::int64_t> pipeline,
                              std::span<const std::int64_t> demand, double discount);

// The clairvoyant bound on the `episodes` scenarios of a BatchEnv seeded with `seed`: episode b's
// entry is a lower bound on the cost of any policy on episode b's scenario, so the mean bounds the
// expected cost of every non-anticipative policy. Throws std::invalid_argument for a model the
// bound does not fit (see probe_inventory_costs) or scenarios with fractional stock or demand.
CostEstimate clairvoyant_lower_bound(const hpo::Model& model, const StoreLayout& layout, std::uint64_t seed,
                                     std::int64_t episodes, unsigned threads = 0);

}  // namespace hpo::bench
