// jrp_policy.cpp: reading a joint replenishment model, simulating and tuning the joint-trigger
// order-up-to heuristic, and the clairvoyant lower bound.
//
// Why the bound is a lower bound. Fix a scenario. Any policy plays out on it as one plan: the set O
// of periods it orders in and the quantities. Its cost is sum_i (item i's holding and backlog) +
// K |O|, and K |O| = sum_i (K / n) |O|, so the cost is the sum over items of item i's holding and
// backlog plus (K / n) per order placed in O. Item i's share is at least the least such cost of
// item i alone, ordering whenever it likes and paying K / n per order (its own orders are a subset
// of O, a zero quantity counting as no order). So the sum of those single-item optima bounds the
// plan's cost, and their mean over scenarios bounds every non-anticipative policy's expected cost.
// Each single-item optimum with known demands is an uncapacitated lot-sizing problem with
// backlogging and costs linear per unit and period plus a fixed cost per order (concave), so an
// optimal plan serves each period's demand from one order, and each order serves a contiguous
// block of periods, backlogging the earlier ones until it arrives and holding stock for the later
// ones (Zangwill 1969); demand at the end can also stay unserved. The DP below searches exactly
// those plans. Costs outside the reported window weigh zero in its variant, which keeps costs
// linear and non-negative, so the same argument holds.
#include "jrp_policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <stdexcept>

#include "runtime/parallel.hpp"

namespace hpo::bench {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::map<std::string, std::size_t> index_by_name(const std::vector<std::string>& names) {
  std::map<std::string, std::size_t> out;
  for (std::size_t i = 0; i < names.size(); ++i) out.emplace(names[i], i);
  return out;
}

std::size_t find_element(const std::map<std::string, std::size_t>& names, const std::string& name, const char* kind,
                         const hpo::Model& model) {
  auto it = names.find(name);
  if (it == names.end())
    throw std::invalid_argument("model " + model.name() + " has no " + kind + " " + name +
                                ": the JRP reference needs the layout of examples/jrp.hpo");
  return it->second;
}

std::string element(const std::string& base, std::size_t i) { return base + "[" + std::to_string(i) + "]"; }
std::string element(const std::string& base, std::size_t i, std::size_t j) {
  return base + "[" + std::to_string(i) + ", " + std::to_string(j) + "]";
}

void summarize(std::vector<double> all, std::vector<double> window, JrpCosts& out) {
  auto stats = [](const std::vector<double>& v, double& mean, double& ci95) {
    const double n = static_cast<double>(v.size());
    mean = 0;
    for (double x : v) mean += x / n;
    double squares = 0;
    for (double x : v) squares += (x - mean) * (x - mean);
    ci95 = v.size() > 1 ? 1.96 * std::sqrt(squares / (n - 1)) / std::sqrt(n) : 0.0;
  };
  stats(all, out.mean_all, out.ci95_all);
  stats(window, out.mean_window, out.ci95_window);
  out.all = std::move(all);
  out.window = std::move(window);
}

// Levels of a policy for an instance: order-up-to S_i and item reorder points.
struct Levels {
  std::vector<double> up_to, reorder_point;
  double shortfall_trigger = kInf;  // in units, not periods
};


double normal_quantile(double probability) {
  double lo = -10, hi = 10;
  for (int i = 0; i < 100; ++i) {
    const double mid = (lo + hi) / 2;
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < probability ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

Levels levels_of(const JrpInstance& instance, const JrpPolicy& policy) {
  Levels out;
  const double protection_periods = static_cast<double>(instance.lead) + 1.0;
  const double cover_periods = std::max(protection_periods + policy.cover, 0.0);
  double total_mean = 0;
  for (std::size_t i = 0; i < instance.items; ++i) {
    const double m = instance.mean_demand[i];
    total_mean += m;
    const double z = normal_quantile(instance.backlog[i] / (instance.backlog[i] + instance.holding[i]));
    out.up_to.push_back(m * cover_periods + (policy.safety + policy.fractile * z) * std::sqrt(m * cover_periods));
    out.reorder_point.push_back(std::isfinite(policy.reorder)
                                    ? m * protection_periods + policy.reorder * std::sqrt(m * protection_periods)
                                    : -kInf);
  }
  out.shortfall_trigger = policy.shortfall * total_mean;
  return out;
}

// One period's decision from the inventory positions; fills the quantities (in units of mean
// demand, as qty takes them) and returns whether to order.
bool decide(const JrpInstance& instance, const Levels& levels, std::span<const double> position,
            std::span<double> qty) {
  bool ordering = false;
  double shortfall = 0;
  for (std::size_t i = 0; i < instance.items; ++i) {
    if (position[i] < levels.reorder_point[i]) ordering = true;
    shortfall += std::max(levels.up_to[i] - position[i], 0.0);
  }
  if (shortfall > levels.shortfall_trigger) ordering = true;
  for (std::size_t i = 0; i < instance.items; ++i)
    qty[i] = ordering ? std::max(levels.up_to[i] - position[i], 0.0) / instance.mean_demand[i] : 0.0;
  return ordering;
}

}  // namespace

JrpInstance read_jrp_instance(const hpo::Model& model) {
  JrpInstance out;
  const auto states = index_by_name(model.state_names());
  const auto noises = index_by_name(model.noise_names());
  const auto conts = index_by_name(model.cont_names());
  const auto discs = index_by_name(model.disc_names());
  const auto params = index_by_name(model.param_names());
  auto param = [&](const std::string& name) { return model.params()[find_element(params, name, "param", model)]; };

  out.items = model.cont_names().size();
  out.horizon = static_cast<std::size_t>(model.horizon());
  if (out.items == 0) throw std::invalid_argument("model " + model.name() + " has no continuous actions qty[i]");
  out.order_action = find_element(discs, "order", "discrete action", model);
  if (model.disc_names().size() != 1 || model.disc_choices()[out.order_action] != 2)
    throw std::invalid_argument("model " + model.name() + ": the JRP reference needs exactly one discrete action, order : choice(2)");
  if (model.discount() != 1.0) throw std::invalid_argument("the JRP reference assumes discount 1");
  for (std::size_t l = 0; states.count(element("in_transit", 0, l)); ++l) out.lead = l + 2;
  if (out.lead < 2) throw std::invalid_argument("model " + model.name() + " has no state in_transit[0, 0]");
  out.fixed_cost = param("fixed_cost");
  out.in_transit_state.resize(out.items);
  for (std::size_t i = 0; i < out.items; ++i) {
    out.inventory_state.push_back(find_element(states, element("inventory", i), "state", model));
    for (std::size_t l = 0; l + 2 <= out.lead; ++l)
      out.in_transit_state[i].push_back(find_element(states, element("in_transit", i, l), "state", model));
    out.demand_noise.push_back(find_element(noises, element("demand", i), "noise", model));
    out.qty_action.push_back(find_element(conts, element("qty", i), "continuous action", model));
    if (model.cont_lower()[out.qty_action[i]] > 0 || model.cont_upper()[out.qty_action[i]] < 1e6)
      throw std::invalid_argument("qty[" + std::to_string(i) + "] must allow every quantity from 0 up");
    out.mean_demand.push_back(param(element("mean_demand", i)));
    out.holding.push_back(param(element("holding", i)));
    out.backlog.push_back(param(element("backlog", i)));
  }
  if (model.num_state() != out.items * out.lead)
    throw std::invalid_argument("model " + model.name() + " has states beyond inventory and in_transit");
  return out;
}

std::string describe(const JrpPolicy& policy) {
  auto trigger = [](double value, const char* unit) {
    if (!std::isfinite(value)) return std::string("off");
    char text[64];
    std::snprintf(text, sizeof text, "%.3f %s", value, unit);
    return std::string(text);
  };
  char text[256];
  std::snprintf(text, sizeof text, "cover %+.3f periods, safety %+.3f + %.3f z_i sd; item trigger %s, joint trigger %s",
                policy.cover, policy.safety, policy.fractile, trigger(policy.reorder, "sd").c_str(),
                trigger(policy.shortfall, "periods").c_str());
  return text;
}

JrpCosts simulate_jrp(const JrpInstance& instance, const Scenarios& scenarios, const JrpPolicy& policy,
                      std::size_t first_reported, unsigned threads) {
  const std::size_t n = instance.items, T = scenarios.horizon(), E = scenarios.episodes();
  const std::size_t transit_slots = instance.lead - 1;
  const std::size_t states = n * instance.lead, noises = n;  // checked by read_jrp_instance
  const Levels levels = levels_of(instance, policy);
  std::vector<double> all(E), window(E);
  const double reported = static_cast<double>(T - std::min(first_reported, T));
  runtime::parallel_for(E, static_cast<int>(std::max(threads, 1u)), [&](std::size_t b) {
    std::vector<double> inventory(n), transit(n * transit_slots), position(n), qty(n);
    auto initial = scenarios.initial_state(b, states);
    for (std::size_t i = 0; i < n; ++i) {
      inventory[i] = initial[instance.inventory_state[i]];
      for (std::size_t l = 0; l < transit_slots; ++l)
        transit[i * transit_slots + l] = initial[instance.in_transit_state[i][l]];
    }
    double total = 0, in_window = 0;
    for (std::size_t t = 0; t < T; ++t) {
      for (std::size_t i = 0; i < n; ++i) {
        position[i] = inventory[i];
        for (std::size_t l = 0; l < transit_slots; ++l) position[i] += transit[i * transit_slots + l];
      }
      const bool ordering = decide(instance, levels, position, qty);
      auto demand = scenarios.noise(b, t, noises);
      double cost = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double after = inventory[i] - demand[instance.demand_noise[i]];
        cost += (instance.holding[i] * std::max(after, 0.0) + instance.backlog[i] * std::max(-after, 0.0)) /
                static_cast<double>(n);
        double* slots = transit.data() + i * transit_slots;
        inventory[i] = after + slots[0];
        std::copy(slots + 1, slots + transit_slots, slots);
        slots[transit_slots - 1] = ordering ? qty[i] * instance.mean_demand[i] : 0.0;
      }
      if (ordering) cost += instance.fixed_cost / static_cast<double>(n);
      total += cost;
      if (t >= first_reported) in_window += cost;
    }
    all[b] = total / static_cast<double>(T);
    window[b] = reported > 0 ? in_window / reported : 0.0;
  });
  JrpCosts out;
  summarize(std::move(all), std::move(window), out);
  return out;
}

JrpCosts evaluate_jrp_in_model(const hpo::Model& model, const JrpInstance& instance, const JrpPolicy& policy,
                               std::uint64_t seed, std::int64_t episodes, std::size_t first_reported) {
  const auto E = static_cast<std::size_t>(episodes);
  const std::size_t n = instance.items, T = instance.horizon;
  BatchEnv env(model, {.batch = episodes, .seed = seed, .record = false});
  const Levels levels = levels_of(instance, policy);
  std::vector<std::int32_t> disc(model.num_disc() * E, 0);
  std::vector<double> cont(model.num_cont() * E, 0.0), position(n), qty(n);
  std::vector<double> all(E, 0.0), window(E, 0.0);
  for (std::size_t t = 0; t < T; ++t) {
    const double* state = env.state().data();
    for (std::size_t b = 0; b < E; ++b) {
      for (std::size_t i = 0; i < n; ++i) {
        position[i] = state[instance.inventory_state[i] * E + b];
        for (std::size_t s : instance.in_transit_state[i]) position[i] += state[s * E + b];
      }
      disc[instance.order_action * E + b] = decide(instance, levels, position, qty) ? 1 : 0;
      for (std::size_t i = 0; i < n; ++i) cont[instance.qty_action[i] * E + b] = qty[i];
    }
    env.step(disc, cont);
    for (std::size_t b = 0; b < E; ++b) {
      all[b] += env.cost()[b];
      if (t >= first_reported) window[b] += env.cost()[b];
    }
  }
  const double reported = static_cast<double>(T - std::min(first_reported, T));
  for (std::size_t b = 0; b < E; ++b) {
    all[b] /= static_cast<double>(T);
    window[b] = reported > 0 ? window[b] / reported : 0.0;
  }
  JrpCosts out;
  summarize(std::move(all), std::move(window), out);
  return out;
}

JrpSearchResult tune_jrp(const JrpInstance& instance, const Scenarios& dev, std::size_t first_reported,
                         const JrpSearchOptions& options) {
  JrpSearchResult result;
  auto objective = [&](const JrpPolicy& p) {
    ++result.evaluations;
    JrpCosts c = simulate_jrp(instance, dev, p, first_reported, options.threads);
    return options.tune_window ? c.mean_window : c.mean_all;
  };
  // The coordinates a search moves, with their ranges; a trigger that is off stays off.
  struct Coordinate {
    double JrpPolicy::*field;
    double lo, hi;
    double unit;  // the compass's first step
  };
  const std::vector<Coordinate> all_coordinates{{&JrpPolicy::cover, -1.0, 15.0, 1.0},
                                                {&JrpPolicy::safety, -3.0, 6.0, 1.0},
                                                {&JrpPolicy::fractile, -1.0, 3.0, 0.5},
                                                {&JrpPolicy::reorder, -5.0, 8.0, 1.0},
                                                {&JrpPolicy::shortfall, 0.0, 15.0, 1.0}};
  auto compass = [&](JrpPolicy start, double start_cost) {
    std::vector<Coordinate> active;
    for (const Coordinate& c : all_coordinates)
      if (std::isfinite(start.*c.field)) active.push_back(c);
    JrpPolicy best = start;
    double best_cost = start_cost;
    const int halvings = options.quick ? 1 : 6;
    double step = 1.0;  // in units of each coordinate's first step
    for (int h = 0; h < halvings; ++h, step /= 2) {
      for (bool improved = true; improved;) {
        improved = false;
        for (const Coordinate& c : active)
          for (double direction : {-1.0, 1.0}) {
            JrpPolicy trial = best;
            trial.*c.field = std::clamp(best.*c.field + direction * step * c.unit, c.lo, c.hi);
            if (trial.*c.field == best.*c.field) continue;
            const double cost = objective(trial);
            if (cost < best_cost) {
              best = trial;
              best_cost = cost;
              improved = true;
            }
          }
      }
    }
    return std::pair{best, best_cost};
  };
  // A coarse grid over the order-up-to cover and the trigger, safety fixed, finds the basin: order
  // cycles differ by whole periods, so the cost has several local minima in these two.
  auto grid_then_compass = [&](JrpPolicy base, double JrpPolicy::*trigger, std::vector<double> trigger_values) {
    JrpPolicy best = base;
    double best_cost = objective(base);
    if (!options.quick)
      for (double cover = 0; cover <= 8; cover += 1)
        for (double value : trigger_values) {
          JrpPolicy trial = base;
          trial.cover = cover;
          trial.*trigger = value;
          const double cost = objective(trial);
          if (cost < best_cost) best = trial, best_cost = cost;
        }
    return compass(best, best_cost);
  };
  JrpPolicy initial;
  initial.cover = 2;
  initial.fractile = 1;
  struct Variant {
    double JrpPolicy::*trigger;
    double start;
    std::vector<double> grid;
  };
  const std::vector<Variant> variants{{&JrpPolicy::shortfall, 2.0, {0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0}},
                                      {&JrpPolicy::reorder, 0.0, {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 5.0}}};
  result.dev_cost = kInf;
  for (const Variant& v : variants) {
    JrpPolicy base = initial;
    base.*v.trigger = v.start;
    auto [found, cost] = grid_then_compass(base, v.trigger, v.grid);
    if (cost < result.dev_cost) result.policy = found, result.dev_cost = cost;
  }
  // Both triggers, from the better single one with the other added where it barely acts.
  JrpPolicy all = result.policy;
  if (!std::isfinite(all.reorder)) all.reorder = -4;
  if (!std::isfinite(all.shortfall)) all.shortfall = 10;
  auto [combined, combined_cost] = compass(all, objective(all));
  if (combined_cost < result.dev_cost) result.policy = combined, result.dev_cost = combined_cost;
  return result;
}

namespace {

// Least cost of one item over one known demand path from zero stock (see the top of the file):
// weight[t] is 1 for a period whose cost counts, 0 otherwise; the fixed cost counts in the period
// the order is placed, `lead` periods before the first demand it can serve.
double clairvoyant_item_cost(std::span<const double> demand, std::span<const double> weight, std::size_t lead,
                             double holding, double backlog, double fixed) {
  const std::size_t T = demand.size();
  // W[k]: counted periods before k; D[k], DW[k]: demand and demand x W before k.
  std::vector<double> W(T + 1, 0), D(T + 1, 0), DW(T + 1, 0);
  for (std::size_t t = 0; t < T; ++t) {
    W[t + 1] = W[t] + weight[t];
    D[t + 1] = D[t] + demand[t];
    DW[t + 1] = DW[t] + demand[t] * W[t];
  }
  // Demand of periods a..j-1 waiting for an arrival at j; demand of j+1..b held from j.
  auto waiting = [&](std::size_t a, std::size_t j) { return backlog * (W[j] * (D[j] - D[a]) - (DW[j] - DW[a])); };
  auto held = [&](std::size_t j, std::size_t b) {
    return holding * ((DW[b + 1] - DW[j + 1]) - W[j] * (D[b + 1] - D[j + 1]));
  };
  // served[k]: least cost of serving exactly periods 0..k-1; arriving[j]: least cost of serving
  // 0..j-1 with the last block still waiting for an order that arrives in period j. Arrivals
  // before `lead` are impossible (nothing is in transit at the start).
  std::vector<double> served(T + 1, kInf), arriving(T, kInf);
  served[0] = 0;
  for (std::size_t b = lead; b < T; ++b) {
    for (std::size_t a = 0; a <= b; ++a)
      if (std::isfinite(served[a])) arriving[b] = std::min(arriving[b], served[a] + waiting(a, b));
    for (std::size_t j = lead; j <= b; ++j)
      served[b + 1] = std::min(served[b + 1], arriving[j] + fixed * weight[j - lead] + held(j, b));
  }
  // Demand of the last block may also never be served, waiting until the end.
  double best = kInf;
  for (std::size_t a = 0; a <= T; ++a)
    if (std::isfinite(served[a])) best = std::min(best, served[a] + waiting(a, T));
  return best;
}

}  // namespace

JrpCosts clairvoyant_jrp_bound(const JrpInstance& instance, const Scenarios& scenarios, std::size_t first_reported,
                               unsigned threads) {
  const std::size_t n = instance.items, T = scenarios.horizon(), E = scenarios.episodes();
  const std::size_t states = n * instance.lead;
  for (std::size_t b = 0; b < E; ++b)
    for (double x : scenarios.initial_state(b, states))
      if (x != 0) throw std::invalid_argument("the clairvoyant JRP bound assumes episodes start with nothing in stock or transit");
  std::vector<double> every(T, 1.0), counted(T, 0.0);
  for (std::size_t t = std::min(first_reported, T); t < T; ++t) counted[t] = 1.0;
  const double reported = static_cast<double>(T - std::min(first_reported, T));
  const double fixed_share = instance.fixed_cost / static_cast<double>(n);
  std::vector<double> all(E), window(E);
  runtime::parallel_for(E, static_cast<int>(std::max(threads, 1u)), [&](std::size_t b) {
    std::vector<double> demand(T);
    double total = 0, in_window = 0;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t t = 0; t < T; ++t) demand[t] = scenarios.noise(b, t, n)[instance.demand_noise[i]];
      total += clairvoyant_item_cost(demand, every, instance.lead, instance.holding[i], instance.backlog[i], fixed_share);
      in_window +=
          clairvoyant_item_cost(demand, counted, instance.lead, instance.holding[i], instance.backlog[i], fixed_share);
    }
    all[b] = total / static_cast<double>(n) / static_cast<double>(T);
    window[b] = reported > 0 ? in_window / static_cast<double>(n) / reported : 0.0;
  });
  JrpCosts out;
  summarize(std::move(all), std::move(window), out);
  return out;
}

}  // namespace hpo::bench
