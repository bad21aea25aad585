// ss_policy.cpp: finding stores in a model's layout, running (s, S) policies through a BatchEnv
// and the coordinate-wise grid search over (s, S).
#include "ss_policy.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <stdexcept>
#include <thread>

namespace hpo::bench {

namespace {

constexpr double kNever = -std::numeric_limits<double>::infinity();

struct ElementName {
  std::string base;
  std::vector<std::int64_t> indices;
};

// "pipeline[0, 1]" -> {"pipeline", {0, 1}}, as the compiler spells element names.
ElementName parse_element(const std::string& name) {
  ElementName e;
  auto open = name.find('[');
  e.base = name.substr(0, open);
  if (open == std::string::npos) return e;
  std::size_t pos = open + 1;
  while (pos < name.size() && name[pos] != ']') {
    std::size_t used = 0;
    e.indices.push_back(std::stoll(name.substr(pos), &used));
    pos += used;
    while (pos < name.size() && (name[pos] == ',' || name[pos] == ' ')) ++pos;
  }
  return e;
}

std::string store_element(const std::string& base, const std::string& label) {
  return label.empty() ? base : base + "[" + label + "]";
}

// Whether a store at inventory position `position` orders, and the qty it sets either way.
inline double order_size(const StoreLayout::Store& store, double position, double s, double S, bool& ordering) {
  ordering = position < s;
  return ordering ? std::clamp(S - position, store.qty_lower, store.qty_upper)
                  : std::clamp(0.0, store.qty_lower, store.qty_upper);
}

// Episodes of one BatchEnv under an (s, S) policy; the env is reset to the same seed each run.
class BatchEvaluator {
 public:
  BatchEvaluator(const Model& model, const StoreLayout& layout, std::uint64_t seed, std::int64_t episodes)
      : model_(model),
        layout_(layout),
        seed_(seed),
        env_(model, {.batch = episodes, .seed = seed, .record = false}),
        disc_(model.num_disc() * static_cast<std::size_t>(episodes), 0),
        cont_(model.num_cont() * static_cast<std::size_t>(episodes), 0.0),
        costs_(static_cast<std::size_t>(episodes), 0.0) {}

  // Discounted total cost of every episode.
  const std::vector<double>& run(std::span<const double> s, std::span<const double> S) {
    const auto n = costs_.size();
    env_.reset(seed_);
    std::fill(costs_.begin(), costs_.end(), 0.0);
    double weight = 1.0;
    for (std::int64_t t = 0; t < model_.horizon(); ++t) {
      const double* state = env_.state().data();
      for (std::size_t j = 0; j < layout_.stores.size(); ++j) {
        const StoreLayout::Store& store = layout_.stores[j];
        for (std::size_t b = 0; b < n; ++b) {
          double position = state[store.on_hand * n + b];
          for (std::size_t p : store.pipeline) position += state[p * n + b];
          bool ordering = false;
          cont_[store.qty * n + b] = order_size(store, position, s[j], S[j], ordering);
          if (store.order) disc_[*store.order * n + b] = ordering ? 1 : 0;
        }
      }
      env_.step(disc_, cont_);
      const double* cost = env_.cost().data();
      for (std::size_t b = 0; b < n; ++b) costs_[b] += weight * cost[b];
      weight *= model_.discount();
    }
    return costs_;
  }

 private:
  const Model& model_;
  const StoreLayout& layout_;
  std::uint64_t seed_;
  BatchEnv env_;
  std::vector<std::int32_t> disc_;
  std::vector<double> cont_;
  std::vector<double> costs_;
};

// Mean discounted total cost of the scenarios under an (s, S) policy, one episode at a time.
class ReplayEvaluator {
 public:
  ReplayEvaluator(const Model& model, const StoreLayout& layout, const Scenarios& scenarios)
      : model_(model),
        layout_(layout),
        scenarios_(scenarios),
        state_(model.num_state()),
        next_(model.num_state()),
        disc_(model.num_disc(), 0),
        cont_(model.num_cont(), 0.0) {}

  double mean_cost(std::span<const double> s, std::span<const double> S) {
    double total = 0;
    for (std::size_t b = 0; b < scenarios_.episodes(); ++b) {
      auto initial = scenarios_.initial_state(b, state_.size());
      std::copy(initial.begin(), initial.end(), state_.begin());
      double weight = 1.0, episode = 0;
      for (std::size_t t = 0; t < scenarios_.horizon(); ++t) {
        for (std::size_t j = 0; j < layout_.stores.size(); ++j) {
          const StoreLayout::Store& store = layout_.stores[j];
          double position = state_[store.on_hand];
          for (std::size_t p : store.pipeline) position += state_[p];
          bool ordering = false;
          cont_[store.qty] = order_size(store, position, s[j], S[j], ordering);
          if (store.order) disc_[*store.order] = ordering ? 1 : 0;
        }
        episode += weight * model_.step(state_, disc_, cont_, scenarios_.noise(b, t, model_.num_noise()), next_);
        weight *= model_.discount();
        std::swap(state_, next_);
      }
      total += episode;
    }
    return total / static_cast<double>(scenarios_.episodes());
  }

 private:
  const Model& model_;
  const StoreLayout& layout_;
  const Scenarios& scenarios_;
  std::vector<double> state_, next_;
  std::vector<std::int32_t> disc_;
  std::vector<double> cont_;
};

void check_policy_size(const StoreLayout& layout, std::span<const double> s, std::span<const double> S) {
  if (s.size() != layout.stores.size() || S.size() != layout.stores.size())
    throw std::invalid_argument("an (s, S) policy needs one s and one S per store (" +
                                std::to_string(layout.stores.size()) + "), got " + std::to_string(s.size()) + " and " +
                                std::to_string(S.size()));
}

double mean_of(const std::vector<double>& v) {
  double total = 0;
  for (double x : v) total += x;
  return total / static_cast<double>(v.size());
}

struct Candidate {
  double s, S;
};

// Every (s, S) the grid holds for one store, never ordering first. Levels S at or beyond
// s + qty_upper all order qty_upper, so only the first of them is kept.
std::vector<Candidate> store_candidates(const StoreLayout::Store& store, IntRange s_range, IntRange S_range) {
  std::vector<Candidate> out{{kNever, kNever}};
  for (std::int64_t s = s_range.lo; s <= s_range.hi; ++s) {
    double S_hi = static_cast<double>(S_range.hi);
    if (std::isfinite(store.qty_upper)) S_hi = std::min(S_hi, static_cast<double>(s) + std::ceil(store.qty_upper));
    for (std::int64_t S = std::max(S_range.lo, s + 1); static_cast<double>(S) <= S_hi; ++S)
      out.push_back({static_cast<double>(s), static_cast<double>(S)});
  }
  return out;
}

}  // namespace

Scenarios::Scenarios(const Model& model, std::uint64_t seed, std::int64_t episodes)
    : episodes_(static_cast<std::size_t>(episodes)), horizon_(static_cast<std::size_t>(model.horizon())) {
  const std::size_t n = episodes_, states = model.num_state(), noises = model.num_noise();
  BatchEnv env(model, {.batch = episodes, .seed = seed, .record = false});
  initial_.resize(n * states);
  for (std::size_t b = 0; b < n; ++b)
    for (std::size_t i = 0; i < states; ++i) initial_[b * states + i] = env.state()[i * n + b];
  std::vector<std::int32_t> disc(model.num_disc() * n, 0);
  std::vector<double> cont(model.num_cont() * n);
  for (std::size_t i = 0; i < model.num_cont(); ++i)
    std::fill_n(cont.begin() + static_cast<std::ptrdiff_t>(i * n), n,
                std::clamp(0.0, model.cont_lower()[i], model.cont_upper()[i]));
  noise_.resize(n * horizon_ * noises);
  for (std::size_t t = 0; t < horizon_; ++t) {
    env.step(disc, cont);
    for (std::size_t b = 0; b < n; ++b)
      for (std::size_t k = 0; k < noises; ++k) noise_[(b * horizon_ + t) * noises + k] = env.noise()[k * n + b];
  }
}

StoreLayout find_store_layout(const Model& model) {
  // Stores come from on_hand: one unindexed store, or on_hand[0..n-1].
  StoreLayout layout;
  const auto& states = model.state_names();
  bool indexed = false;
  for (std::size_t i = 0; i < states.size(); ++i) {
    ElementName e = parse_element(states[i]);
    if (e.base != "on_hand") continue;
    if (e.indices.size() > 1)
      throw std::invalid_argument("state " + states[i] + ": on_hand must be one value per store (on_hand[s]) or a single value");
    indexed = !e.indices.empty();
    StoreLayout::Store store;
    store.label = indexed ? std::to_string(e.indices[0]) : "";
    store.on_hand = i;
    layout.stores.push_back(store);
  }
  if (layout.stores.empty())
    throw std::invalid_argument("model " + model.name() + " has no state on_hand, so no stores for an (s, S) policy");
  const std::size_t count = layout.stores.size();

  // The store an element belongs to, and the indices left after the store index.
  auto store_of = [&](const std::string& name, const ElementName& e, std::vector<std::int64_t>& rest) -> std::size_t {
    if (!indexed) {
      rest = e.indices;
      return 0;
    }
    if (e.indices.empty() || e.indices[0] < 0 || static_cast<std::size_t>(e.indices[0]) >= count)
      throw std::invalid_argument(name + " does not name one of the " + std::to_string(count) +
                                  " stores of on_hand by its first index");
    rest.assign(e.indices.begin() + 1, e.indices.end());
    return static_cast<std::size_t>(e.indices[0]);
  };

  std::vector<std::int64_t> rest;
  std::vector<std::vector<std::pair<std::int64_t, std::size_t>>> pipeline(count);  // (lag, state index)
  for (std::size_t i = 0; i < states.size(); ++i) {
    ElementName e = parse_element(states[i]);
    if (e.base != "pipeline") continue;
    std::size_t j = store_of("state " + states[i], e, rest);
    if (rest.size() > 1)
      throw std::invalid_argument("state " + states[i] + ": pipeline takes a store and a lag, pipeline[s, l]");
    pipeline[j].emplace_back(rest.empty() ? 0 : rest[0], i);
  }
  for (std::size_t j = 0; j < count; ++j) {
    std::sort(pipeline[j].begin(), pipeline[j].end());
    for (const auto& [lag, index] : pipeline[j]) layout.stores[j].pipeline.push_back(index);
  }

  const std::string supported = "an (s, S) policy sets only order (choice(2)) and qty per store";
  std::vector<bool> has_qty(count, false), has_order(count, false);
  const auto& cont = model.cont_names();
  for (std::size_t i = 0; i < cont.size(); ++i) {
    ElementName e = parse_element(cont[i]);
    if (e.base != "qty") throw std::invalid_argument("continuous action " + cont[i] + " is not qty: " + supported);
    std::size_t j = store_of("continuous action " + cont[i], e, rest);
    if (!rest.empty()) throw std::invalid_argument("continuous action " + cont[i] + ": qty has one value per store");
    layout.stores[j].qty = i;
    layout.stores[j].qty_lower = model.cont_lower()[i];
    layout.stores[j].qty_upper = model.cont_upper()[i];
    has_qty[j] = true;
  }
  const auto& disc = model.disc_names();
  for (std::size_t i = 0; i < disc.size(); ++i) {
    ElementName e = parse_element(disc[i]);
    if (e.base != "order") throw std::invalid_argument("discrete action " + disc[i] + " is not order: " + supported);
    if (model.disc_choices()[i] != 2)
      throw std::invalid_argument("discrete action " + disc[i] + " has " + std::to_string(model.disc_choices()[i]) +
                                  " choices; order must be choice(2) (0: no order, 1: order)");
    std::size_t j = store_of("discrete action " + disc[i], e, rest);
    if (!rest.empty()) throw std::invalid_argument("discrete action " + disc[i] + ": order has one value per store");
    layout.stores[j].order = i;
    has_order[j] = true;
  }
  for (std::size_t j = 0; j < count; ++j) {
    const std::string& label = layout.stores[j].label;
    if (!has_qty[j])
      throw std::invalid_argument("store " + store_element("on_hand", label) + " has no action " +
                                  store_element("qty", label));
    if (!disc.empty() && !has_order[j])
      throw std::invalid_argument("store " + store_element("on_hand", label) + " has no action " +
                                  store_element("order", label) + " while other stores have one");
  }
  return layout;
}

CostEstimate evaluate_ss(const Model& model, const StoreLayout& layout, std::span<const double> s,
                         std::span<const double> S, std::uint64_t seed, std::int64_t episodes) {
  check_policy_size(layout, s, S);
  BatchEvaluator evaluator(model, layout, seed, episodes);
  CostEstimate estimate;
  estimate.episode_costs = evaluator.run(s, S);
  estimate.mean = mean_of(estimate.episode_costs);
  const double n = static_cast<double>(episodes);
  if (episodes > 1) {
    double squares = 0;
    for (double c : estimate.episode_costs) squares += (c - estimate.mean) * (c - estimate.mean);
    estimate.ci95 = 1.96 * std::sqrt(squares / (n - 1)) / std::sqrt(n);
  }
  return estimate;
}

SsResult grid_search_ss(const Model& model, const StoreLayout& layout, std::uint64_t dev_seed, std::int64_t episodes,
                        const SsGridOptions& options) {
  double largest_qty = 0;
  for (const auto& store : layout.stores) largest_qty = std::max(largest_qty, store.qty_upper);
  if ((!options.s_range || !options.S_range) && !std::isfinite(largest_qty))
    throw std::invalid_argument("qty has no finite upper bound to derive the grid from; give the s and S ranges");
  const auto bound = static_cast<std::int64_t>(std::ceil(largest_qty));
  const IntRange s_range = options.s_range.value_or(IntRange{1, bound});
  const IntRange S_range = options.S_range.value_or(IntRange{s_range.lo + 1, 2 * bound});
  if (s_range.lo > s_range.hi || S_range.lo > S_range.hi) throw std::invalid_argument("an empty s or S range");

  unsigned threads = options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  const Scenarios scenarios(model, dev_seed, episodes);
  std::vector<ReplayEvaluator> evaluators;
  evaluators.reserve(threads);
  for (unsigned k = 0; k < threads; ++k) evaluators.emplace_back(model, layout, scenarios);

  SsResult result;
  const std::size_t count = layout.stores.size();
  result.s.assign(count, kNever);
  result.S.assign(count, kNever);
  result.dev_cost = evaluators[0].mean_cost(result.s, result.S);
  result.evaluations = 1;
  for (int sweep = 0; sweep < options.sweeps; ++sweep) {
    int changed = 0;
    for (std::size_t j = 0; j < count; ++j) {
      std::vector<Candidate> candidates = store_candidates(layout.stores[j], s_range, S_range);
      std::vector<double> costs(candidates.size());
      std::atomic<std::size_t> next{0};
      std::vector<std::exception_ptr> failures(threads);
      auto work = [&](unsigned k) {
        try {
          std::vector<double> s = result.s, S = result.S;
          for (std::size_t c; (c = next.fetch_add(1)) < candidates.size();) {
            s[j] = candidates[c].s;
            S[j] = candidates[c].S;
            costs[c] = evaluators[k].mean_cost(s, S);
          }
        } catch (...) {
          failures[k] = std::current_exception();
          next = candidates.size();
        }
      };
      std::vector<std::thread> pool;
      for (unsigned k = 1; k < threads; ++k) pool.emplace_back(work, k);
      work(0);
      for (auto& thread : pool) thread.join();
      for (const auto& failure : failures)
        if (failure) std::rethrow_exception(failure);
      result.evaluations += static_cast<std::int64_t>(candidates.size());

      // The current (s, S) stays unless something is strictly cheaper, so a sweep that finds
      // nothing better reports no change even when costs tie.
      std::size_t best = 0;
      for (std::size_t c = 1; c < candidates.size(); ++c)
        if (costs[c] < costs[best]) best = c;
      for (std::size_t c = 0; c < candidates.size(); ++c)
        if (candidates[c].s == result.s[j] && candidates[c].S == result.S[j] && costs[c] <= costs[best]) best = c;
      if (candidates[best].s != result.s[j] || candidates[best].S != result.S[j]) ++changed;
      result.s[j] = candidates[best].s;
      result.S[j] = candidates[best].S;
      result.dev_cost = costs[best];
    }
    result.stores_changed.push_back(changed);
  }
  // The replay stands in for the BatchEnv only while noise ignores states and actions; a runtime
  // where that stopped holding would show here.
  const double direct = evaluate_ss(model, layout, result.s, result.S, dev_seed, episodes).mean;
  if (!(std::fabs(direct - result.dev_cost) <= 1e-9 * std::max(1.0, std::fabs(direct))))
    throw std::logic_error("replayed scenarios disagree with the BatchEnv: dev cost " + std::to_string(result.dev_cost) +
                           " replayed, " + std::to_string(direct) + " stepped");
  result.dev_cost = direct;
  return result;
}

}  // namespace hpo::bench
