// estimator_test.cpp: the gradient estimators against exact gradients of models small enough to
// enumerate: hpo is unbiased, hpo-decoupled misses exactly the cross term, and on a smooth
// deterministic model hpo's pathwise chain is the derivative of the cost.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hpo/train.hpp"

namespace {

// Three steps, a Bernoulli shock per step, two regimes: regime 1 pays a fixed cost and lets u move
// x, regime 0 lets x drift and pays x^2. The discrete head sees x, so u_t changes the regime
// probabilities at t+1 and t+2: that dependence is the cross term. Three steps and the discount
// make the score-function weights discount^t (G_t - b_t) differ per step.
const char* kHybrid = R"(model cross
param p = 0.35
state x = 0.8
action d : choice(2)
action u : real in [-1.5, 1.5]
noise w ~ bernoulli(p)
observe x
horizon 3
discount 0.9
step {
  if d == 1 {
    x' = 0.5 * x + u + 0.6 * w
    cost += 1.0 + 0.3 * u * u
  } else {
    x' = x + 0.25 * u + 0.6 * w
    cost += 2.0 * x * x
  }
})";

// No discrete action and no noise: every episode is the same, so an estimate is a derivative. The
// three kinds of bounds exercise every squashing, and the product observation a nonlinear observe.
const char* kSmooth = R"(model smooth
param x0[2] = [0.5, -0.3]
state x[2] = x0
action a : real in [-1, 2]
action b : real in [0, inf]
action c : real
observe x, x[0] * x[1]
horizon 4
discount 0.95
step {
  x'[0] = 0.9 * x[0] + a - 0.5 * b * x[1]
  x'[1] = 0.8 * x[1] + 0.3 * c + 0.1 * x[0] * x[0]
  cost += (x[0] - 1.0) * (x[0] - 1.0) + 2.0 * x[1] * x[1] + 0.1 * (a * a + b * b + c * c)
})";

hpo::CompileOptions stdlib() {
  hpo::CompileOptions o;
  o.stdlib_dirs = {std::string(HPOC_SOURCE_DIR) + "/stdlib"};
  return o;
}

// Parameters of runtime::Mlp(inputs, hidden, outputs, true) (the default): weights and a bias per
// layer, then the linear path's inputs x outputs weights.
std::size_t skip_size(int inputs, int outputs) { return std::size_t(inputs) * outputs; }
std::size_t mlp_size(int inputs, const std::vector<int>& hidden, int outputs) {
  std::size_t n = 0;
  int in = inputs;
  for (int h : hidden) n += std::size_t(h) * (in + 1), in = h;
  return n + std::size_t(outputs) * (in + 1) + skip_size(inputs, outputs);
}

// One path of kHybrid: the choice and the shock of every step.
struct Path {
  std::vector<std::int32_t> d;
  std::vector<double> w;
};

struct PathValue {
  double prob = 1;                  // of the choices under the policy, times the shocks'
  std::vector<double> cost, logpi;  // per step: c_t and log pi(d_t | o_t)
};

std::vector<Path> all_paths(std::int64_t horizon) {
  std::vector<Path> paths;
  for (int code = 0; code < (1 << (2 * horizon)); ++code) {
    Path path;
    for (std::int64_t t = 0; t < horizon; ++t) {
      path.d.push_back((code >> (2 * t)) & 1);
      path.w.push_back(double((code >> (2 * t + 1)) & 1));
    }
    paths.push_back(path);
  }
  return paths;
}

// Follows a path under the trainer's current policy, with the model's per-sample kernels.
PathValue follow(const hpo::Model& model, const hpo::Trainer& trainer, const Path& path, double p) {
  PathValue v;
  std::vector<double> state(model.num_state()), next(model.num_state()), obs(model.num_obs()),
      noise0(model.num_noise(), 0.0), logp(2), u(model.num_cont());
  model.init(noise0, state);
  for (std::size_t t = 0; t < path.d.size(); ++t) {
    model.observe(state, obs);
    const std::vector<std::int32_t> d{path.d[t]};
    trainer.act(obs, d, logp, u);
    v.logpi.push_back(logp[d[0]]);
    v.prob *= std::exp(logp[d[0]]) * (path.w[t] == 1.0 ? p : 1.0 - p);
    const std::vector<double> w{path.w[t]};
    v.cost.push_back(model.step(state, d, u, w, next));
    state = next;
  }
  return v;
}

// Central differences of f() over theta[first, first + count), restored afterwards.
template <class F>
std::vector<double> central_differences(hpo::Trainer& trainer, double h, F f, std::size_t first, std::size_t count) {
  auto theta = trainer.parameters();
  std::vector<double> grad(theta.size(), 0.0);
  for (std::size_t k = first; k < first + count; ++k) {
    const double saved = theta[k];
    theta[k] = saved + h;
    const double up = f();
    theta[k] = saved - h;
    const double down = f();
    theta[k] = saved;
    grad[k] = (up - down) / (2 * h);
  }
  return grad;
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
  return s;
}

std::vector<double> minus(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> out(a.size());
  for (std::size_t k = 0; k < a.size(); ++k) out[k] = a[k] - b[k];
  return out;
}

// An exact value by finite differences, with the differences' own error (h against h/2).
struct Exact {
  std::vector<double> value, error;
};

template <class F>
Exact exact_differences(hpo::Trainer& trainer, F f, std::size_t first, std::size_t count) {
  const double h = 1e-5;
  Exact e{central_differences(trainer, h, f, first, count), {}};
  e.error = minus(e.value, central_differences(trainer, h / 2, f, first, count));
  for (double& x : e.error) x = std::abs(x);
  return e;
}

// Mean and standard error, per component, of K independent estimates.
struct Sample {
  std::vector<double> mean, se;
};

Sample summarize(const std::vector<std::vector<double>>& estimates) {
  const std::size_t K = estimates.size(), M = estimates.front().size();
  Sample s{std::vector<double>(M, 0.0), std::vector<double>(M, 0.0)};
  for (const auto& e : estimates)
    for (std::size_t k = 0; k < M; ++k) s.mean[k] += e[k] / double(K);
  for (const auto& e : estimates)
    for (std::size_t k = 0; k < M; ++k) s.se[k] += (e[k] - s.mean[k]) * (e[k] - s.mean[k]);
  for (double& x : s.se) x = std::sqrt(x / double(K - 1) / double(K));
  return s;
}

// The largest |z| over components of the estimates' mean against `target`, the standard error
// widened by the target's own finite-difference error (and a floor for components that are zero
// in both, such as the cross term's in the discrete head).
double max_z(const std::vector<std::vector<double>>& estimates, const std::vector<double>& target,
             const std::vector<double>& target_error) {
  Sample s = summarize(estimates);
  double worst = 0;
  for (std::size_t k = 0; k < target.size(); ++k) {
    const double z = (s.mean[k] - target[k]) / std::hypot(s.se[k], target_error[k], 1e-12);
    if (!std::isfinite(z)) return NAN;  // fails every comparison
    worst = std::max(worst, std::abs(z));
  }
  return worst;
}

// The t statistic of the estimates projected on `direction`, against `target` projected too.
double projected_t(const std::vector<std::vector<double>>& estimates, const std::vector<double>& target,
                   const std::vector<double>& direction) {
  std::vector<std::vector<double>> projected;
  for (const auto& e : estimates) projected.push_back({dot(e, direction)});
  Sample s = summarize(projected);
  return (s.mean[0] - dot(target, direction)) / s.se[0];
}

// kHybrid with two trainers of one policy, hpo and hpo-decoupled, and its exact gradient and cross term.
struct Hybrid {
  hpo::Model model = hpo::compile_string(kHybrid, "cross.hpo", stdlib());
  hpo::TrainOptions options;
  std::unique_ptr<hpo::Trainer> full, decoupled;
  std::size_t disc_size = 0, cont_size = 0;
  Exact gradient, cross;

  Hybrid(hpo::Advantage advantage, bool per_option) {
    REQUIRE(model.param_names() == std::vector<std::string>{"p"});
    REQUIRE(model.num_disc() == 1);
    REQUIRE(model.num_cont() == 1);
    REQUIRE(model.num_noise() == 1);
    options.hidden = {8};
    options.precision = hpo::Precision::F64;  // compared with exact gradients to 1e-7
    options.threads = 2;
    options.batch = 1024;
    options.hpo.advantage = advantage;
    options.per_option = per_option;
    options.seed = 7;
    full = std::make_unique<hpo::Trainer>(model, options);
    options.algo = hpo::Algo::HPODecoupled;
    decoupled = std::make_unique<hpo::Trainer>(model, options);
    // The first gradient fixes the observation normalizer (from the same first batch in both).
    full->gradient(1, 16);
    decoupled->gradient(1, 16);

    auto theta = full->parameters();
    disc_size = mlp_size(1, options.hidden, 2);
    // One output per option, or the one-hot choice as inputs beside x.
    cont_size = per_option ? mlp_size(1, options.hidden, 2) : mlp_size(1 + 2, options.hidden, 1);
    REQUIRE(theta.size() == disc_size + cont_size);
    // A fresh discrete head is near uniform, so d log pi / dx, and with it the cross term, would be
    // tiny; scaling its output layer makes the probabilities move with x without saturating.
    const std::size_t disc_skip = skip_size(1, 2), output_layer = 2 * (options.hidden.back() + 1);
    for (std::size_t k = disc_size - disc_skip - output_layer; k < disc_size - disc_skip; ++k) theta[k] *= 200.0;
    // The linear paths start at zero; nonzero weights put them in every gradient checked below.
    for (std::size_t k = disc_size - disc_skip; k < disc_size; ++k) theta[k] = k % 2 ? 0.4 : -0.3;
    for (std::size_t k = theta.size() - (per_option ? skip_size(1, 2) : skip_size(3, 1)); k < theta.size(); ++k)
      theta[k] = k % 2 ? -0.2 : 0.25;
    std::copy(theta.begin(), theta.end(), decoupled->parameters().begin());
    for (double x : {-1.0, 0.0, 0.8, 1.5, 3.0})
      for (std::int32_t d : {0, 1}) {
        std::vector<double> a(2), b(2), ua(1), ub(1);
        full->act(std::vector<double>{x}, std::vector<std::int32_t>{d}, a, ua);
        decoupled->act(std::vector<double>{x}, std::vector<std::int32_t>{d}, b, ub);
        REQUIRE(a == b);
        REQUIRE(ua == ub);
      }

    const double p = model.params()[0];
    const auto paths = all_paths(model.horizon());
    auto expected_cost = [&] {
      double total = 0;
      for (const auto& path : paths) {
        PathValue v = follow(model, *full, path, p);
        double weight = 1, sum = 0;
        for (double c : v.cost) sum += weight * c, weight *= model.discount();
        total += v.prob * sum;
      }
      return total;
    };
    gradient = exact_differences(*full, expected_cost, 0, theta.size());

    // The cross term: the derivative of sum_t discount^t G_t log pi(d_t | o_t) through the states
    // alone, path weights and costs-to-go held at the current parameters. Only the continuous head
    // moves the states, so the discrete head's part is zero.
    std::vector<PathValue> base;
    for (const auto& path : paths) base.push_back(follow(model, *full, path, p));
    auto score_through_states = [&] {
      double total = 0;
      for (std::size_t i = 0; i < paths.size(); ++i) {
        PathValue v = follow(model, *full, paths[i], p);
        double G = 0;
        for (std::int64_t t = model.horizon(); t-- > 0;) {
          G = base[i].cost[t] + model.discount() * G;
          total += base[i].prob * std::pow(model.discount(), double(t)) * G * v.logpi[t];
        }
      }
      return total;
    };
    cross = exact_differences(*full, score_through_states, disc_size, cont_size);
  }
};

// K independent estimates per estimator from the same scenarios; their difference is then the
// sampled cross term itself, with far less noise than either.
struct Estimates {
  std::vector<std::vector<double>> full, decoupled, difference;
};

Estimates monte_carlo(Hybrid& h, int K, std::int64_t episodes) {
  Estimates e;
  for (int k = 0; k < K; ++k) {
    e.full.push_back(h.full->gradient(5000 + k, episodes));
    e.decoupled.push_back(h.decoupled->gradient(5000 + k, episodes));
    e.difference.push_back(minus(e.full.back(), e.decoupled.back()));
  }
  return e;
}

// Tolerances. The K = 100 estimates come from distinct seeds, so they are independent (the batch
// mean couples episodes only within one estimate), and each averages 4096 episodes, so they are
// close to normal: a component's (mean - exact) / SE, SE from the estimates themselves, follows
// Student's t with 99 degrees of freedom. P(|t| > 4.5) = 1.9e-5, so over the 68 (or 75) components of one
// comparison a correct estimator fails with probability below 1.4e-3 (Bonferroni); a single
// projected statistic gets 4.0 (P = 1.2e-4). The finite differences' own error, ~1e-10, widens SE.
// The seeds are fixed, so the test is deterministic: these are the odds that the chosen seeds
// would have produced a false failure.
constexpr int kBatches = 100;
constexpr std::int64_t kEpisodes = 4096;
constexpr double kComponentZ = 4.5, kProjectedT = 4.0;
// A missing cross term must stand out: several times the tolerance in the worst component.
constexpr double kDetectable = 20.0;

void check_unbiased(hpo::Advantage advantage, bool per_option = true) {
  Hybrid h(advantage, per_option);
  const auto& exact = h.gradient.value;
  const auto& cross = h.cross.value;
  const std::vector<double> without_cross = minus(exact, cross);
  std::vector<double> error_without_cross(exact.size());
  for (std::size_t k = 0; k < exact.size(); ++k) error_without_cross[k] = h.gradient.error[k] + h.cross.error[k];

  // The exact values are themselves exact to far below the Monte Carlo error.
  CHECK(*std::max_element(h.gradient.error.begin(), h.gradient.error.end()) < 1e-7 * norm(exact));
  CHECK(*std::max_element(h.cross.error.begin(), h.cross.error.end()) < 1e-7 * norm(cross));

  const Estimates e = monte_carlo(h, kBatches, kEpisodes);
  const Sample full = summarize(e.full);
  double cross_in_se = 0;
  for (std::size_t k = 0; k < cross.size(); ++k) cross_in_se = std::max(cross_in_se, std::abs(cross[k]) / full.se[k]);

  const double z_full = max_z(e.full, exact, h.gradient.error);
  const double z_decoupled = max_z(e.decoupled, without_cross, error_without_cross);
  const double z_difference = max_z(e.difference, cross, h.cross.error);
  const double z_decoupled_vs_exact = max_z(e.decoupled, exact, h.gradient.error);
  const double t_full_exact = projected_t(e.full, exact, exact), t_full_cross = projected_t(e.full, exact, cross);
  const double t_decoupled_cross = projected_t(e.decoupled, without_cross, cross);
  const double t_decoupled_vs_exact = projected_t(e.decoupled, exact, cross);
  INFO("exact gradient norm " << norm(exact) << ", cross term norm " << norm(cross)
                              << ", largest |cross| / SE(hpo) " << cross_in_se);
  INFO("largest |z|: hpo " << z_full << ", decoupled " << z_decoupled << ", their difference against the cross term "
                           << z_difference << ", decoupled against the exact gradient " << z_decoupled_vs_exact);
  INFO("projected t: hpo on the exact gradient " << t_full_exact << " and on the cross term " << t_full_cross
                                                 << ", decoupled on the cross term " << t_decoupled_cross
                                                 << " (against the exact gradient " << t_decoupled_vs_exact << ")");
  CHECK(z_full <= kComponentZ);
  CHECK(std::abs(t_full_exact) <= kProjectedT);
  CHECK(std::abs(t_full_cross) <= kProjectedT);
  CHECK(z_decoupled <= kComponentZ);
  CHECK(std::abs(t_decoupled_cross) <= kProjectedT);
  CHECK(z_difference <= kComponentZ);
  // The comparison has power: the cross term is many standard errors, and decoupled misses it.
  CHECK(cross_in_se >= kDetectable);
  CHECK(z_decoupled_vs_exact >= kDetectable);
  CHECK(std::abs(t_decoupled_vs_exact) >= kDetectable);
}

}  // namespace

TEST_CASE("with a batch-mean baseline, hpo's mean is the exact gradient and hpo-decoupled's that minus the cross term",
          "[estimator]") {
  check_unbiased(hpo::Advantage::BatchMean);
}

TEST_CASE("with the one-hot choices fed to the continuous head instead of one output per option, hpo stays unbiased",
          "[estimator]") {
  check_unbiased(hpo::Advantage::BatchMean, false);
}

TEST_CASE("with the critic's values as the baseline (untrained: a fixed function of the state), hpo stays unbiased",
          "[estimator]") {
  check_unbiased(hpo::Advantage::GAE);
}

TEST_CASE("without choices or noise, an hpo estimate is the cost's derivative through policy, simulator and normalizer",
          "[estimator]") {
  hpo::Model model = hpo::compile_string(kSmooth, "smooth.hpo", stdlib());
  REQUIRE(model.num_disc() == 0);
  REQUIRE(model.num_noise() == 0);
  hpo::TrainOptions options;
  options.hidden = {6, 5};
  options.precision = hpo::Precision::F64;  // a derivative check: exact arithmetic
  options.threads = 2;
  options.batch = 8;
  hpo::Trainer trainer(model, options);
  trainer.gradient(1, 2);  // fixes the normalizer
  auto theta = trainer.parameters();
  REQUIRE(theta.size() == mlp_size(3, options.hidden, 3));
  // A fresh head barely depends on the observation; larger output weights make the chain matter,
  // and nonzero linear-path weights (they start at zero) put that path in the check.
  const std::size_t skip = skip_size(3, 3);
  for (std::size_t k = theta.size() - skip - 3 * (options.hidden.back() + 1); k < theta.size() - skip; ++k)
    theta[k] *= 10.0;
  for (std::size_t k = theta.size() - skip; k < theta.size(); ++k) theta[k] = 0.1 * double(int(k % 5) - 2);

  auto cost = [&] {
    std::vector<double> state(model.num_state()), next(model.num_state()), obs(model.num_obs()), u(3), none;
    model.init(none, state);
    double total = 0, weight = 1;
    for (std::int64_t t = 0; t < model.horizon(); ++t) {
      model.observe(state, obs);
      trainer.act(obs, {}, {}, u);
      total += weight * model.step(state, {}, u, none, next);
      weight *= model.discount();
      state = next;
    }
    return total;
  };
  const Exact exact = exact_differences(trainer, cost, 0, theta.size());
  const std::vector<double> estimate = trainer.gradient(3, 4);
  const double scale = norm(exact.value);
  INFO("gradient norm " << scale);
  REQUIRE(scale > 0.1);
  double worst = 0;
  for (std::size_t k = 0; k < estimate.size(); ++k) worst = std::max(worst, std::abs(estimate[k] - exact.value[k]));
  INFO("largest |estimate - finite difference| " << worst);
  // Central differences with h = 1e-5 are good to ~1e-10 here (h against h/2 says so), so the
  // tolerance leaves room only for rounding in the adjoint chain.
  CHECK(*std::max_element(exact.error.begin(), exact.error.end()) < 1e-8 * scale);
  CHECK(worst < 1e-6 * scale);
}

TEST_CASE("with batches of four episodes, the leave-one-out batch mean still leaves hpo unbiased", "[estimator]") {
  // A baseline that counted the episode's own cost-to-go would shrink the score-function part by
  // 1/(N-1): invisible at thousands of episodes, a third here.
  Hybrid h(hpo::Advantage::BatchMean, true);
  std::vector<std::vector<double>> estimates;
  for (int k = 0; k < 50000; ++k) estimates.push_back(h.full->gradient(90000 + k, 4));
  // 50000 estimates: the t statistics are normal; P(|z| > 4.5) = 6.8e-6, times 68 components.
  const double z = max_z(estimates, h.gradient.value, h.gradient.error);
  const double t = projected_t(estimates, h.gradient.value, h.gradient.value);
  INFO("largest |z| " << z << ", projected on the exact gradient " << t);
  CHECK(z <= kComponentZ);
  CHECK(std::abs(t) <= kProjectedT);
}

TEST_CASE("the continuous head's outputs of an option reach the action only when that option is chosen",
          "[estimator]") {
  hpo::Model model = hpo::compile_string(kHybrid, "cross.hpo", stdlib());
  hpo::TrainOptions options;
  options.hidden = {8};
  options.precision = hpo::Precision::F64;
  options.threads = 1;
  hpo::Trainer trainer(model, options);
  auto theta = trainer.parameters();
  const std::size_t disc_size = mlp_size(1, options.hidden, 2);
  REQUIRE(theta.size() == disc_size + mlp_size(1, options.hidden, 2));
  auto act = [&](std::int32_t d) {
    std::vector<double> log_probs(2), u(1);
    trainer.act(std::vector<double>{0.8}, std::vector<std::int32_t>{d}, log_probs, u);
    return u[0];
  };
  const double u0 = act(0), u1 = act(1);
  // The net ends with its linear path's weights, row i * options + c in each column: the last
  // is option 1's (the observation, 0.8, is not zero, so they count).
  theta.back() += 0.5;
  CHECK(act(0) == u0);
  CHECK(act(1) != u1);
  theta[theta.size() - 2] += 0.5;
  CHECK(act(0) != u0);
}
