// inventory_bound.cpp: the clairvoyant lower bound of a lost-sales inventory model.
//
// Why it is a lower bound. Fix a scenario (initial state and every period's demand). Any policy,
// however it decides, plays out on that scenario as one sequence of orders, which is a plan that
// someone knowing the demands in advance could also have chosen; so the policy's cost on the
// scenario is at least the least cost over all plans, and averaging over scenarios, its expected
// cost is at least the mean of those minima. Stores share nothing (separate demand, state and
// costs; probe_inventory_costs checks this on the model's step), so the minimum is the sum of each
// store's minimum. Each store's minimum is then relaxed further, which can only lower it:
//   - voluntary sales: a period may sell any s in [0, min(available, demand)] and pay the penalty
//     on demand - s (lost sales force s = min(available, demand)), a larger set of plans;
//   - order sizes: an order may be any size in [0, ceil(qty upper bound)], a superset of qty's
//     range (ordering 0 still pays the fixed cost, so it is never chosen when that is positive).
// The relaxed problem is exact as an integer DP. With the periods that order fixed, what is left
// is a min-cost flow with whole-number capacities and supplies (stock flows from period to period;
// orders, initial stock and pipeline feed it; sales drain at most demand), so some optimal plan
// has whole-number orders, sales and stock, and the DP over whole on-hand levels finds it.
// Orders placed in the last `lead` periods arrive after the horizon and cost >= 0, so they are
// never placed. With demands known, an order placed at t is simply stock arriving at t + lead.
//
// Why the state range is enough. Let I_k be the initial stock plus the pipeline arrived by period
// k, R_k the demand of periods k.. the end. Among the optimal whole-number plans take one ordering
// the fewest units. Its stock after period k's arrivals is at most R_k + I_k: otherwise more
// ordered units are on hand than can ever be sold from then on (sales never exceed demand), so
// some ordered unit is never sold, and ordering one unit less in its order leaves every sale as it
// was and lowers stock by one from its arrival on; that costs no more (holding, unit and fixed
// costs are >= 0), contradicting fewest units. Stock can also not exceed I_k plus qty's bound
// times the orders arrived by k. The DP keeps states up to the smaller of the two caps, so it
// contains that plan and, holding only feasible plans, finds exactly the relaxed optimum.
#include "inventory_bound.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "runtime/parallel.hpp"

namespace hpo::bench {

namespace {

std::string store_element(const std::string& base, const std::string& label) {
  return label.empty() ? base : base + "[" + label + "]";
}

bool close(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)}); }

// One step's inputs for probing the model.
struct Probe {
  std::vector<double> state;
  std::vector<std::int32_t> disc;
  std::vector<double> cont, noise;
};

// Sliding-window minimum over indices whose window ends never move back: push candidates in
// increasing index order, drop those left of the window.
class WindowMin {
 public:
  explicit WindowMin(std::size_t capacity) : index_(capacity + 1) {}
  void clear() { head_ = tail_ = 0; }
  void push(std::int64_t i, const std::vector<double>& value) {
    while (tail_ > head_ && value[static_cast<std::size_t>(index_[tail_ - 1])] >= value[static_cast<std::size_t>(i)])
      --tail_;
    index_[tail_++] = i;
  }
  void drop_before(std::int64_t lo) {
    while (tail_ > head_ && index_[head_] < lo) ++head_;
  }
  bool empty() const { return tail_ == head_; }
  std::int64_t front() const { return index_[head_]; }

 private:
  std::vector<std::int64_t> index_;
  std::size_t head_ = 0, tail_ = 0;
};

}  // namespace

InventoryCosts probe_inventory_costs(const Model& model, const StoreLayout& layout) {
  const std::size_t count = layout.stores.size();
  InventoryCosts out;

  // Every state, noise and action must belong to a store, or the stores are not the whole model.
  std::vector<bool> state_used(model.num_state(), false);
  for (const auto& store : layout.stores) {
    const std::string on_hand = store_element("on_hand", store.label);
    if (store.pipeline.empty())
      throw std::invalid_argument("the clairvoyant bound needs a lead time of at least one period: " + on_hand +
                                  " has no pipeline");
    state_used[store.on_hand] = true;
    for (std::size_t p : store.pipeline) state_used[p] = true;
    if (!(store.qty_lower >= 0) || !(store.qty_upper >= store.qty_lower))
      throw std::invalid_argument("the clairvoyant bound needs qty bounds 0 <= lower <= upper for " + on_hand);
    if (!store.order && store.qty_lower != 0)
      throw std::invalid_argument("the clairvoyant bound needs qty's lower bound 0 for " + on_hand +
                                  " (no order action, so qty alone orders)");
    const std::string demand = store_element("demand", store.label);
    const auto& noises = model.noise_names();
    auto it = std::find(noises.begin(), noises.end(), demand);
    if (it == noises.end())
      throw std::invalid_argument("the clairvoyant bound needs a noise " + demand + " for " + on_hand);
    out.demand.push_back(static_cast<std::size_t>(it - noises.begin()));
  }
  for (std::size_t i = 0; i < state_used.size(); ++i)
    if (!state_used[i])
      throw std::invalid_argument("state " + model.state_names()[i] +
                                  " is neither on_hand nor pipeline of a store, all the clairvoyant bound knows");
  if (model.num_noise() != count)
    throw std::invalid_argument("the clairvoyant bound needs the demand of each store to be the only noise");

  Probe base;
  base.state.assign(model.num_state(), 0.0);
  base.disc.assign(model.num_disc(), 0);
  base.cont.resize(model.num_cont());
  for (std::size_t i = 0; i < model.num_cont(); ++i)
    base.cont[i] = std::clamp(0.0, model.cont_lower()[i], model.cont_upper()[i]);
  base.noise.assign(model.num_noise(), 0.0);
  std::vector<double> next(model.num_state());
  auto cost_of = [&](const Probe& probe) { return model.step(probe.state, probe.disc, probe.cont, probe.noise, next); };
  out.offset = cost_of(base);

  // Each store's costs from probes that move only that store away from zero.
  for (std::size_t j = 0; j < count; ++j) {
    const StoreLayout::Store& store = layout.stores[j];
    StoreCosts costs;
    Probe probe = base;
    probe.state[store.on_hand] = 10;
    costs.holding = (cost_of(probe) - out.offset) / 10;
    probe = base;
    probe.noise[out.demand[j]] = 10;
    costs.penalty = (cost_of(probe) - out.offset) / 10;
    // Two order sizes within qty's bounds (positive ones when qty alone orders).
    const double q1 = store.order ? store.qty_lower : std::min(store.qty_upper, 1.0);
    const double q2 = std::min(store.qty_upper, q1 + 10);
    auto order_cost = [&](double q) {
      Probe p = base;
      p.cont[store.qty] = q;
      if (store.order) p.disc[*store.order] = 1;
      return cost_of(p) - out.offset;
    };
    if (q1 > 0 || store.order) {
      // A fixed qty range [q, q] is relaxed to [0, q] at the cost of q: unit cost 0, fixed all of it.
      costs.unit = q2 > q1 ? (order_cost(q2) - order_cost(q1)) / (q2 - q1) : 0;
      costs.fixed = order_cost(q1) - costs.unit * q1;
    }
    costs.max_qty = std::isfinite(store.qty_upper) ? static_cast<std::int64_t>(std::ceil(store.qty_upper))
                                                   : std::numeric_limits<std::int64_t>::max();
    if (costs.holding < 0 || costs.fixed < 0 || costs.unit < 0 || costs.penalty < 0)
      throw std::invalid_argument("the clairvoyant bound needs costs >= 0; " + store_element("on_hand", store.label) +
                                  " has holding " + std::to_string(costs.holding) + ", penalty " +
                                  std::to_string(costs.penalty) + ", fixed " + std::to_string(costs.fixed) +
                                  ", unit " + std::to_string(costs.unit));
    out.stores.push_back(costs);
  }

  // Random steps of all stores at once must match the assumed form, costs and next states alike.
  std::mt19937_64 rng(20240611);
  auto uniform_int = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 200; ++trial) {
    Probe probe = base;
    double expected = out.offset;
    std::vector<double> expected_next(model.num_state());
    for (std::size_t j = 0; j < count; ++j) {
      const StoreLayout::Store& store = layout.stores[j];
      const StoreCosts& costs = out.stores[j];
      probe.state[store.on_hand] = uniform_int(0, 40) + (trial % 5 == 4 ? 0.5 : 0.0);
      for (std::size_t p : store.pipeline) probe.state[p] = uniform_int(0, 30);
      const double demand = uniform_int(0, 25);
      probe.noise[out.demand[j]] = demand;
      const bool ordering = store.order ? uniform_int(0, 1) == 1 : true;
      if (store.order) probe.disc[*store.order] = ordering ? 1 : 0;
      double qty = store.qty_lower + std::uniform_real_distribution<double>(
                                         0, std::min(store.qty_upper, store.qty_lower + 40) - store.qty_lower)(rng);
      if (trial % 3 == 0) qty = std::floor(qty);
      if (!store.order && trial % 7 == 0) qty = 0;
      probe.cont[store.qty] = qty;
      const double placed = ordering ? qty : 0;
      const double available = probe.state[store.on_hand] + probe.state[store.pipeline[0]];
      expected_next[store.on_hand] = std::max(available - demand, 0.0);
      for (std::size_t l = 0; l + 1 < store.pipeline.size(); ++l)
        expected_next[store.pipeline[l]] = probe.state[store.pipeline[l + 1]];
      expected_next[store.pipeline.back()] = placed;
      expected += costs.holding * std::max(available - demand, 0.0) + costs.penalty * std::max(demand - available, 0.0);
      if (placed > 0 || (store.order && ordering)) expected += costs.fixed + costs.unit * placed;
    }
    const double actual = cost_of(probe);
    bool same = close(actual, expected);
    for (std::size_t i = 0; i < next.size(); ++i) same = same && close(next[i], expected_next[i]);
    if (!same)
      throw std::invalid_argument("model " + model.name() +
                                  " does not step like the lost-sales stores the clairvoyant bound assumes (probe "
                                  "cost " + std::to_string(actual) + ", expected " + std::to_string(expected) + ")");
  }
  return out;
}

double clairvoyant_store_cost(const StoreCosts& costs, std::int64_t on_hand, std::span<const std::int64_t> pipeline,
                              std::span<const std::int64_t> demand, double discount) {
  const auto T = static_cast<std::int64_t>(demand.size()), L = static_cast<std::int64_t>(pipeline.size());
  if (L < 1) throw std::invalid_argument("clairvoyant_store_cost needs a lead time of at least one period");
  if (on_hand < 0 || std::any_of(pipeline.begin(), pipeline.end(), [](std::int64_t a) { return a < 0; }) ||
      std::any_of(demand.begin(), demand.end(), [](std::int64_t d) { return d < 0; }))
    throw std::invalid_argument("clairvoyant_store_cost needs stock and demand >= 0");
  if (T == 0) return 0;
  const auto t_index = [](std::int64_t k) { return static_cast<std::size_t>(k); };

  // R[k]: demand of periods k..T-1; I[k]: initial stock plus pipeline arrived by period k.
  std::vector<std::int64_t> R(t_index(T) + 1, 0), I(t_index(T));
  for (std::int64_t k = T - 1; k >= 0; --k) R[t_index(k)] = R[t_index(k + 1)] + demand[t_index(k)];
  for (std::int64_t k = 0; k < T; ++k)
    I[t_index(k)] = (k == 0 ? on_hand : I[t_index(k - 1)]) + (k < L ? pipeline[t_index(k)] : 0);
  // No order is larger than the largest stock the DP holds, so qty's bound may be cut there (the
  // second cap below only matters while it is below the first, so it stays valid with this qmax).
  const std::int64_t qmax = std::min(costs.max_qty, R[0] + I[t_index(T - 1)]);
  // Stock caps (see the top of this file): after period k's arrivals, and at the start of period k
  // (before them). Orders arrive in periods L.. (placed in 0..T-1-L).
  auto y_cap = [&](std::int64_t k) {
    return std::min(R[t_index(k)] + I[t_index(k)], I[t_index(k)] + qmax * std::max<std::int64_t>(0, k - L + 1));
  };
  auto x_cap = [&](std::int64_t k) {  // k in 0..T; at T, the stock left at the end
    if (k == 0) return on_hand;
    return std::min(R[t_index(k)] + I[t_index(k - 1)], I[t_index(k - 1)] + qmax * std::max<std::int64_t>(0, k - L));
  };

  std::int64_t widest = 0;
  for (std::int64_t k = 0; k < T; ++k) widest = std::max(widest, y_cap(k));
  const std::size_t size = t_index(widest) + 1;
  // V: cost from the start of period k + 1 on, by stock; W: cost of period k on after arrivals.
  std::vector<double> V(size, 0.0), W(size), g(size), f(size);
  WindowMin window(size);
  const double h = costs.holding, p = costs.penalty;
  for (std::int64_t k = T - 1; k >= 0; --k) {
    const double wk = std::pow(discount, static_cast<double>(k));
    const std::int64_t d = demand[t_index(k)], yc = y_cap(k), x_hi = x_cap(k + 1);
    // Selling y - x' of the y available and keeping x' costs wk (h x' + p (d - y + x')) + V(x'),
    // with x' in [max(0, y - d), y]: W(y) = wk p (d - y) + min over that window of g. The window
    // is never empty within the caps: y <= y_cap(k) gives y - d <= x_cap(k + 1).
    for (std::int64_t x = 0; x <= x_hi; ++x) g[t_index(x)] = wk * (h + p) * static_cast<double>(x) + V[t_index(x)];
    window.clear();
    std::int64_t pushed = -1;
    for (std::int64_t y = 0; y <= yc; ++y) {
      const std::int64_t hi = std::min(y, x_hi);
      while (pushed < hi) window.push(++pushed, g);
      window.drop_before(std::max<std::int64_t>(0, y - d));
      W[t_index(y)] = wk * p * static_cast<double>(d - y) + g[t_index(window.front())];
    }
    const std::int64_t xc = x_cap(k);
    if (k < L) {
      // Only the pipeline arrives: a[k] units.
      const std::int64_t a = pipeline[t_index(k)];
      for (std::int64_t x = 0; x <= xc; ++x) V[t_index(x)] = W[t_index(x + a)];
    } else {
      // An order of r >= 1 units placed at k - L arrives now: cost wo (K + c r) + W(x + r), and
      // over r in [1, qmax] that is wo (K - c x) + min over y in [x + 1, x + qmax] of wo c y + W(y).
      const double wo = std::pow(discount, static_cast<double>(k - L));
      for (std::int64_t y = 0; y <= yc; ++y) f[t_index(y)] = wo * costs.unit * static_cast<double>(y) + W[t_index(y)];
      window.clear();
      std::int64_t pushed_y = 0;
      for (std::int64_t x = 0; x <= xc; ++x) {
        double best = W[t_index(x)];
        const std::int64_t hi = std::min(x + qmax, yc);
        while (pushed_y < hi) window.push(++pushed_y, f);
        window.drop_before(x + 1);
        if (!window.empty())
          best = std::min(best, wo * (costs.fixed - costs.unit * static_cast<double>(x)) + f[t_index(window.front())]);
        V[t_index(x)] = best;
      }
    }
  }
  return V[t_index(on_hand)];
}

CostEstimate clairvoyant_lower_bound(const Model& model, const StoreLayout& layout, std::uint64_t seed,
                                     std::int64_t episodes, unsigned threads) {
  const InventoryCosts costs = probe_inventory_costs(model, layout);
  const Scenarios scenarios(model, seed, episodes);
  const std::size_t n = scenarios.episodes(), T = scenarios.horizon(), count = layout.stores.size();
  const double discount = model.discount();
  double offset = 0;  // the cost every step pays whatever the stores do
  for (std::size_t t = 0; t < T; ++t) offset += costs.offset * std::pow(discount, static_cast<double>(t));

  auto whole = [](double v, const char* what) {
    if (!(v >= 0) || v != std::floor(v) || v > 1e15)
      throw std::invalid_argument(std::string("the clairvoyant bound needs whole numbers >= 0 for ") + what +
                                  ", got " + std::to_string(v));
    return static_cast<std::int64_t>(v);
  };
  std::vector<double> store_bounds(n * count);  // [episode][store]
  auto bound_episode = [&](std::size_t b) {
    auto initial = scenarios.initial_state(b, model.num_state());
    std::vector<std::int64_t> pipeline, demand(T);
    for (std::size_t j = 0; j < count; ++j) {
      const StoreLayout::Store& store = layout.stores[j];
      pipeline.clear();
      for (std::size_t p : store.pipeline) pipeline.push_back(whole(initial[p], "pipeline"));
      for (std::size_t t = 0; t < T; ++t)
        demand[t] = whole(scenarios.noise(b, t, model.num_noise())[costs.demand[j]], "demand");
      store_bounds[b * count + j] =
          clairvoyant_store_cost(costs.stores[j], whole(initial[store.on_hand], "on_hand"), pipeline, demand, discount);
    }
  };
  runtime::parallel_for(n, threads != 0 ? static_cast<int>(threads) : runtime::default_threads(), bound_episode);

  CostEstimate estimate;
  estimate.episode_costs.assign(n, offset);
  for (std::size_t b = 0; b < n; ++b)
    for (std::size_t j = 0; j < count; ++j) estimate.episode_costs[b] += store_bounds[b * count + j];
  double total = 0;
  for (double c : estimate.episode_costs) total += c;
  estimate.mean = total / static_cast<double>(n);
  if (n > 1) {
    double squares = 0;
    for (double c : estimate.episode_costs) squares += (c - estimate.mean) * (c - estimate.mean);
    estimate.ci95 = 1.96 * std::sqrt(squares / static_cast<double>(n - 1)) / std::sqrt(static_cast<double>(n));
  }
  return estimate;
}

}  // namespace hpo::bench
