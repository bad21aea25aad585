// ss_policy.hpp: the (s, S) reorder-point / order-up-to baseline for inventory-like models, scored
// on exactly the scenarios a trainer sees for a seed, and a coordinate-wise grid search for it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <hpo/hpo.hpp>

namespace hpo::bench {

// Where each store's numbers live in a model's arrays, found by element name: states on_hand[s]
// and optionally pipeline[s, l] (or pipeline[s] for a lead time of one), actions qty[s] and
// optionally order[s] : choice(2). A single store may be named without an index (on_hand, qty,
// order, pipeline[l]).
struct StoreLayout {
  struct Store {
    std::string label;                  // "0", "1", ...; empty for an unindexed single store
    std::size_t on_hand = 0;            // state index
    std::vector<std::size_t> pipeline;  // state indices of the units still on their way
    std::optional<std::size_t> order;   // discrete action index; absent when qty alone orders
    std::size_t qty = 0;                // continuous action index
    double qty_lower = 0, qty_upper = 0;
  };
  std::vector<Store> stores;
};

// Throws std::invalid_argument when the model has no such stores or has actions the policy
// could not set.
StoreLayout find_store_layout(const hpo::Model& model);

// The initial states and noise of one BatchEnv's episodes, sample after sample. The runtime draws
// noise from the seed and params alone, never from states or actions, so stepping these through
// the per-sample kernel re-creates that BatchEnv's episodes under any policy without drawing the
// noise again, which is most of the time a BatchEnv episode of a small model takes.
class Scenarios {
 public:
  Scenarios(const hpo::Model& model, std::uint64_t seed, std::int64_t episodes);

  std::size_t episodes() const { return episodes_; }
  std::size_t horizon() const { return horizon_; }
  std::span<const double> initial_state(std::size_t b, std::size_t states) const {
    return {initial_.data() + b * states, states};
  }
  std::span<const double> noise(std::size_t b, std::size_t t, std::size_t noises) const {
    return {noise_.data() + (b * horizon_ + t) * noises, noises};
  }

 private:
  std::size_t episodes_, horizon_;
  std::vector<double> initial_;  // [episode][state]
  std::vector<double> noise_;    // [episode][step][noise]
};

struct CostEstimate {
  std::vector<double> episode_costs;  // discounted total cost of each episode
  double mean = 0;
  double ci95 = 0;  // half-width of the normal 95% interval of the mean: 1.96 sd / sqrt(n)
};

// The (s, S) policy, one reorder point s and order-up-to level S per store: when the inventory
// position (on hand plus pipeline) is below s, order S - position, clamped to qty's bounds;
// otherwise order nothing. s = -inf never orders. Runs `episodes` episodes over the model's
// horizon in one BatchEnv seeded with `seed`, the same scenarios a trainer with that seed and
// batch sees.
CostEstimate evaluate_ss(const hpo::Model& model, const StoreLayout& layout, std::span<const double> s,
                         std::span<const double> S, std::uint64_t seed, std::int64_t episodes);

struct IntRange {
  std::int64_t lo = 0, hi = 0;
};

struct SsGridOptions {
  std::optional<IntRange> s_range;  // default: 1 .. U, the largest qty upper bound
  // S runs from max(lo, s + 1) to hi (default 2 U), and no further than s + qty's upper bound:
  // every higher S orders that bound alike.
  std::optional<IntRange> S_range;
  int sweeps = 2;
  unsigned threads = 0;  // 0: one per hardware thread
};

struct SsResult {
  std::vector<double> s, S;  // -inf for a store that is best never ordering
  double dev_cost = 0;       // mean discounted total cost per episode on the dev seed
  std::vector<int> stores_changed;  // per sweep: stores whose (s, S) that sweep moved
  std::int64_t evaluations = 0;     // policies simulated
};

// Searches each store's integer (s, S) over the grid, plus never ordering, with the other stores
// held fixed, store after store, for options.sweeps sweeps, starting from never ordering. Costs of
// separate stores add up and demand does not depend on actions, so one sweep should already find
// the joint optimum on the grid; a later sweep that moves anything says the model couples stores.
// Candidates run on the dev scenarios recorded once and replayed through Model::step (redrawing
// the noise would cost most of the time); the result's dev_cost is re-run through a BatchEnv, and
// a disagreement throws std::logic_error.
SsResult grid_search_ss(const hpo::Model& model, const StoreLayout& layout, std::uint64_t dev_seed,
                        std::int64_t episodes, const SsGridOptions& options = {});

}  // namespace hpo::bench
