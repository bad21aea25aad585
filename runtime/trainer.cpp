// trainer.cpp: hpo::Trainer: one iteration = a batch of rollouts, a gradient by the chosen
// estimator, an Adam step, the value fit; dev evaluations keep the best policy as a checkpoint.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "runtime/adam.hpp"
#include "runtime/estimators.hpp"
#include "runtime/model.hpp"
#include "runtime/parallel.hpp"
#include "runtime/random.hpp"
#include "runtime/trainer_state.hpp"

namespace hpo {

namespace {

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = a ^ (0x9E3779B97F4A7C15ull * (b + 1));
  return runtime::splitmix64(x);
}

// Training scenarios never meet dev or test ones: their seeds have the top bit set.
std::uint64_t training_seed(std::uint64_t seed, std::int64_t iteration) {
  return mix(seed, static_cast<std::uint64_t>(iteration)) | (1ull << 63);
}

runtime::PolicyConfig policy_config(const TrainOptions& o) {
  runtime::PolicyConfig c;
  c.hidden = o.hidden;
  const bool gaussian = o.gaussian || o.algo == Algo::PPO || o.algo == Algo::Reinforce;
  c.continuous = gaussian ? runtime::ContinuousHead::Gaussian : runtime::ContinuousHead::Deterministic;
  c.init_log_std = o.init_log_std;
  return c;
}

void validate(const Model& model, const TrainOptions& o) {
  auto fail = [](const std::string& m) { throw std::invalid_argument(m); };
  if (o.iterations < 1) fail("--iterations must be at least 1");
  if (o.batch < 2) fail("--batch must be at least 2 (the baselines compare episodes)");
  if (o.horizon < 0) fail("--horizon must be positive (0 means the model's)");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) fail("--lr must be a positive number");
  if (!(o.value_lr > 0) || !std::isfinite(o.value_lr)) fail("--value-lr must be a positive number");
  if (!(o.grad_clip >= 0)) fail("--grad-clip must be 0 (off) or positive");
  if (o.hidden.empty()) fail("--hidden needs at least one layer size");
  for (int h : o.hidden)
    if (h < 1 || h > 65536) fail("--hidden sizes must be between 1 and 65536");
  if (o.epochs < 1 || o.minibatches < 1) fail("--epochs and --minibatches must be at least 1");
  if (o.value_epochs < 0 || o.sf_epochs < 0) fail("--value-epochs and --sf-epochs cannot be negative");
  if (!(o.clip > 0)) fail("--clip must be positive");
  if (!(o.gae_lambda >= 0 && o.gae_lambda <= 1)) fail("--gae-lambda must be in [0, 1]");
  if (!(o.temperature > 0)) fail("--temperature must be positive");
  if (std::isinf(o.entropy_coef) || !std::isfinite(o.entropy_final)) fail("--entropy and --entropy-final must be finite");
  if (o.threads < 0) fail("--threads cannot be negative (0 means every core)");
  if (o.dev_episodes < 1 || o.test_episodes < 1) fail("--dev-episodes and --test-episodes must be at least 1");
  if (o.eval_every < 0) fail("--eval-every cannot be negative (0 means max(10, iterations / 25))");
  if ((o.dev_seed >> 63) || (o.test_seed >> 63)) fail("dev and test seeds must be below 2^63 (training uses the rest)");
  if (model.num_disc() == 0 && model.num_cont() == 0) fail("the model has no actions to learn");
}

}  // namespace

namespace runtime {

RolloutSpec evaluation_spec(const Model& model, const Policy& policy, const TrainOptions& options, std::uint64_t seed) {
  RolloutSpec spec;
  spec.model = &model;
  spec.policy = &policy;
  spec.horizon = options.horizon > 0 ? options.horizon : model.horizon();
  spec.discount = model.discount();
  spec.env_seed = seed;
  spec.policy_seed = mix(seed, 0x45564C);
  spec.mode = options.greedy_eval ? ActMode::Greedy : ActMode::Sample;
  spec.record = false;
  return spec;
}

Evaluation summarize(const Vector& totals) {
  Evaluation e;
  e.episode_costs.assign(totals.data(), totals.data() + totals.size());
  const double n = double(totals.size());
  e.mean = totals.mean();
  const double var = n > 1 ? (totals.array() - e.mean).square().sum() / (n - 1) : 0.0;
  e.ci95 = 1.96 * std::sqrt(var / n);
  return e;
}

}  // namespace runtime

using runtime::Chunk;
using runtime::Matrix;
using runtime::Vector;

struct Trainer::Impl {
  const Model* model;
  TrainOptions options;
  int threads;
  std::int64_t horizon;
  double discount;
  runtime::Policy policy;
  runtime::Adam adam, value_adam;
  std::int64_t iteration = 0, samples = 0;
  bool value_scale_set = false;
  bool cost_scale_set = false;
  double cost_scale = 1.0;
  std::vector<IterationStats> history;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::unique_ptr<Checkpoint> best;
  std::ofstream csv;

  Impl(const Model& m, TrainOptions o)
      : model(&m),
        options(std::move(o)),
        threads(options.threads > 0 ? options.threads : runtime::default_threads()),
        horizon(options.horizon > 0 ? options.horizon : m.horizon()),
        discount(m.discount()),
        policy(runtime::ActionSpace::of(m), policy_config(options), mix(options.seed, 0x494E4954)),
        adam(policy.params.size()),
        value_adam(policy.value_params.size()) {}

  bool pathwise() const {
    return options.algo == Algo::HPO || options.algo == Algo::HPODecoupled || options.algo == Algo::GumbelST;
  }
  bool uses_values() const {
    return options.algo == Algo::PPO || options.sf_epochs > 0 ||
           (options.baseline == Baseline::Value && options.algo != Algo::GumbelST);
  }

  runtime::RolloutSpec training_spec(std::uint64_t env_seed, std::uint64_t policy_seed) const {
    runtime::RolloutSpec spec;
    spec.model = model;
    spec.policy = &policy;
    spec.horizon = horizon;
    spec.discount = discount;
    spec.env_seed = env_seed;
    spec.policy_seed = policy_seed;
    spec.mode = options.algo == Algo::GumbelST ? runtime::ActMode::Gumbel : runtime::ActMode::Sample;
    spec.record = pathwise();
    spec.values = uses_values();
    return spec;
  }

  std::vector<Chunk> roll(const runtime::RolloutSpec& spec, std::int64_t episodes) const {
    std::vector<Chunk> chunks = runtime::make_chunks(episodes);
    try {
      runtime::parallel_for(chunks.size(), threads, [&](std::size_t i) { runtime::rollout(spec, chunks[i]); });
    } catch (const runtime::NonFiniteError& e) {
      throw TrainingError(e.what());
    }
    return chunks;
  }

  // Cost-to-go G_t = c_t + discount G_{t+1}, per chunk [horizon x size].
  std::vector<Matrix> costs_to_go(const std::vector<Chunk>& chunks) const {
    std::vector<Matrix> out;
    for (const auto& c : chunks) {
      Matrix g(horizon, c.size);
      Eigen::RowVectorXd next = Eigen::RowVectorXd::Zero(c.size);
      for (std::int64_t t = horizon; t-- > 0;) {
        next = c.cost.row(t) + discount * next;
        g.row(t) = next;
      }
      out.push_back(std::move(g));
    }
    return out;
  }

  // The baseline b(t, episode): the value network's, or the mean of the other episodes' G_t
  // (leave-one-out keeps it independent of the episode's own choices).
  std::vector<Matrix> baselines(const std::vector<Chunk>& chunks, const std::vector<Matrix>& g) const {
    std::vector<Matrix> out;
    if (options.baseline == Baseline::Value) {
      for (const auto& c : chunks) out.push_back(c.value);
      return out;
    }
    std::int64_t episodes = 0;
    Eigen::VectorXd sum = Eigen::VectorXd::Zero(horizon);
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      sum += g[i].rowwise().sum();
      episodes += chunks[i].size;
    }
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      Matrix b = (-g[i]).colwise() + sum;
      out.push_back(b / double(std::max<std::int64_t>(episodes - 1, 1)));
    }
    return out;
  }

  // GAE(lambda) advantages in cost units and their value targets, per chunk.
  void gae(const std::vector<Chunk>& chunks, std::vector<Matrix>& advantages, std::vector<Matrix>& targets) const {
    const double lambda = options.gae_lambda;
    for (const auto& c : chunks) {
      Matrix a(horizon, c.size);
      Eigen::RowVectorXd running = Eigen::RowVectorXd::Zero(c.size), next_value = Eigen::RowVectorXd::Zero(c.size);
      for (std::int64_t t = horizon; t-- > 0;) {
        Eigen::RowVectorXd delta = c.cost.row(t) + discount * next_value - c.value.row(t);
        running = delta + discount * lambda * running;
        a.row(t) = running;
        next_value = c.value.row(t);
      }
      targets.push_back(a + c.value);
      advantages.push_back(std::move(a));
    }
  }

  // The pathwise estimators' gradient of cost_weight * sum of discounted costs + SF terms, per chunk.
  std::vector<std::vector<double>> chunk_gradients(const runtime::RolloutSpec& spec, const std::vector<Chunk>& chunks,
                                                   const std::vector<Matrix>& sf_weights, double cost_weight,
                                                   double entropy_coef, bool cross_term) const {
    runtime::BackwardSpec bw;
    bw.cost_weight = cost_weight;
    bw.score_function = options.algo != Algo::GumbelST;
    bw.cross_term = cross_term;
    bw.straight_through = options.algo == Algo::GumbelST;
    bw.temperature = options.temperature;
    bw.entropy_coef = entropy_coef;
    std::vector<std::vector<double>> grads(chunks.size());
    runtime::parallel_for(chunks.size(), threads, [&](std::size_t i) {
      grads[i].assign(policy.params.size(), 0.0);
      runtime::backward_through_trajectory(spec, chunks[i], bw, sf_weights[i], grads[i]);
    });
    return grads;
  }

  std::vector<double> sum(const std::vector<std::vector<double>>& parts, std::size_t begin, std::size_t end) const {
    std::vector<double> total(policy.params.size(), 0.0);
    for (std::size_t i = begin; i < end; ++i)
      for (std::size_t k = 0; k < total.size(); ++k) total[k] += parts[i][k];
    return total;
  }

  std::vector<double> pathwise_gradient(const runtime::RolloutSpec& spec, const std::vector<Chunk>& chunks,
                                        const std::vector<Matrix>& sf_weights, double cost_weight,
                                        double entropy_coef) const {
    auto parts = chunk_gradients(spec, chunks, sf_weights, cost_weight, entropy_coef, options.algo == Algo::HPO);
    return sum(parts, 0, parts.size());
  }

  // The cross term, measured as the paper does: hpo's gradient minus the same without the cross
  // term; its size relative to the whole, and the cosine between its means over two halves of the
  // batch (near 0 when it is noise, near 1 when it carries signal). Returns hpo's gradient.
  std::vector<double> measure_cross_term(const runtime::RolloutSpec& spec, const std::vector<Chunk>& chunks,
                          const std::vector<Matrix>& sf_weights, double cost_weight, double entropy_coef,
                          IterationStats& stats) const {
    auto with = chunk_gradients(spec, chunks, sf_weights, cost_weight, entropy_coef, true);
    auto without = chunk_gradients(spec, chunks, sf_weights, cost_weight, entropy_coef, false);
    const std::size_t half = chunks.size() / 2;
    auto cross_of = [&](std::size_t begin, std::size_t end) {
      std::vector<double> a = sum(with, begin, end), b = sum(without, begin, end);
      for (std::size_t k = 0; k < a.size(); ++k) a[k] -= b[k];
      return a;
    };
    auto norm = [](const std::vector<double>& v) { return std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0)); };
    std::vector<double> cross = cross_of(0, chunks.size()), total = sum(with, 0, with.size());
    stats.cross_ratio = norm(cross) / std::max(norm(total), 1e-300);
    if (half > 0) {
      std::vector<double> a = cross_of(0, half), b = cross_of(half, chunks.size());
      stats.cross_alignment =
          std::inner_product(a.begin(), a.end(), b.begin(), 0.0) / std::max(norm(a) * norm(b), 1e-300);
    }
    return total;
  }

  // sf weights = discount^t (G_t - b_t) * scale.
  std::vector<Matrix> sf_weights(const std::vector<Chunk>& chunks, const std::vector<Matrix>& g,
                                 const std::vector<Matrix>& b, double scale) const {
    std::vector<Matrix> out;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      Matrix w = (g[i] - b[i]) * scale;
      for (std::int64_t t = 0; t < horizon; ++t) w.row(t) *= std::pow(discount, double(t));
      out.push_back(std::move(w));
    }
    return out;
  }

  // The pathwise estimators' score-function weights: none for gumbel-st, else discount^t (G_t - b_t).
  std::vector<Matrix> score_weights(const std::vector<Chunk>& chunks, const std::vector<Matrix>& g,
                                    double scale) const {
    if (options.algo != Algo::GumbelST) return sf_weights(chunks, g, baselines(chunks, g), scale);
    std::vector<Matrix> zero;
    for (const auto& c : chunks) zero.push_back(Matrix::Zero(horizon, c.size));
    return zero;
  }

  // REINFORCE's gradient of the mean cost per step over all samples, with the weights discount^t
  // (G_t - b_t) already in samples.advantage.
  runtime::SurrogateStats reinforce_gradient(const runtime::Samples& samples, double entropy_coef,
                                             std::vector<double>& grad) const {
    runtime::SurrogateSpec sf;
    sf.continuous = true;
    sf.entropy_coef = entropy_coef;
    std::vector<double> unused;
    std::vector<std::int64_t> rows(static_cast<std::size_t>(samples.rows()));
    std::iota(rows.begin(), rows.end(), 0);
    return runtime::surrogate_gradient(policy, samples, rows, sf, grad, unused, threads);
  }

  double apply(std::vector<double>& grad, double lr) {
    double sq = 0;
    for (const auto& group : policy.groups())
      sq += std::pow(runtime::clip_norm(std::span<double>(grad).subspan(group.offset, group.size), options.grad_clip), 2);
    for (double g : grad)
      if (!std::isfinite(g)) throw TrainingError("the policy gradient is not finite at iteration " + std::to_string(iteration));
    adam.step(policy.params, grad, lr);
    return std::sqrt(sq);
  }

  // Minibatch epochs of the score-function surrogate (PPO, HPO's sf epochs, the value fit).
  runtime::SurrogateStats surrogate_epochs(const runtime::Samples& samples, const runtime::SurrogateSpec& spec,
                                           int epochs, double lr, bool update_policy) {
    std::vector<std::int64_t> rows(static_cast<std::size_t>(samples.rows()));
    std::iota(rows.begin(), rows.end(), 0);
    std::mt19937_64 shuffle_rng(mix(options.seed, 0x5348 + static_cast<std::uint64_t>(iteration)));
    const std::size_t per = (rows.size() + options.minibatches - 1) / options.minibatches;
    runtime::SurrogateStats last;
    for (int epoch = 0; epoch < epochs; ++epoch) {
      std::shuffle(rows.begin(), rows.end(), shuffle_rng);
      runtime::SurrogateStats epoch_stats;
      for (std::size_t begin = 0; begin < rows.size(); begin += per) {
        std::span<const std::int64_t> batch(rows.data() + begin, std::min(per, rows.size() - begin));
        std::vector<double> grad(policy.params.size(), 0.0), value_grad(policy.value_params.size(), 0.0);
        auto s = runtime::surrogate_gradient(policy, samples, batch, spec, grad, value_grad, threads);
        if (update_policy) apply(grad, lr);
        if (spec.value) {
          runtime::clip_norm(value_grad, options.grad_clip);
          value_adam.step(policy.value_params, value_grad, options.value_lr);
        }
        const double share = double(batch.size()) / double(rows.size());
        epoch_stats.approx_kl += s.approx_kl * share;
        epoch_stats.entropy += s.entropy * share;
        epoch_stats.value_loss += s.value_loss * share;
      }
      last = epoch_stats;
      if (update_policy && options.target_kl > 0 && epoch_stats.approx_kl > 1.5 * options.target_kl) break;
    }
    return last;
  }

  void fill(runtime::Samples& samples, const std::vector<Chunk>& chunks, const std::vector<Matrix>& advantages,
            const std::vector<Matrix>& targets) const {
    std::int64_t row = 0;
    for (std::size_t i = 0; i < chunks.size(); ++i)
      for (std::int64_t t = 0; t < horizon; ++t) {
        samples.advantage.segment(row, chunks[i].size) = advantages[i].row(t).transpose();
        samples.target.segment(row, chunks[i].size) = targets[i].row(t).transpose();
        row += chunks[i].size;
      }
  }

  // Standardize observations with a first batch's statistics before any gradient uses them.
  void warm_up() {
    if (policy.normalizer.count > 0) return;
    auto spec = training_spec(training_seed(options.seed, -1), mix(options.seed ^ 0x574152, 0));
    spec.record = false;
    for (const auto& c : roll(spec, options.batch))
      for (const auto& o : c.obs) policy.normalizer.merge(o);
  }

  bool dev_evaluation_due(std::int64_t finished) const {
    const std::int64_t every =
        options.eval_every > 0 ? options.eval_every : std::max<std::int64_t>(10, (options.iterations + 24) / 25);
    return finished % every == 0 || finished == options.iterations || finished == 1;
  }

  IterationStats iterate();
  void evaluate_dev(IterationStats& stats);
  Checkpoint snapshot() const;
};

IterationStats Trainer::Impl::iterate() {
  const double progress = double(iteration) / double(options.iterations);
  const double lr = runtime::scheduled(options.lr, options.schedule, progress);
  const double entropy_start = std::isnan(options.entropy_coef)
                                   ? (options.algo == Algo::PPO || options.sf_epochs > 0 ? 0.01 : 0.03)
                                   : options.entropy_coef;
  double entropy_coef = entropy_start + (options.entropy_final - entropy_start) * progress;
  auto spec = training_spec(training_seed(options.seed, iteration), mix(options.seed ^ 0x504F4C, iteration));
  warm_up();
  std::vector<Chunk> chunks = roll(spec, options.batch);
  IterationStats stats;
  stats.iteration = iteration + 1;  // counted from 1, as checkpoints and metrics rows count them
  stats.lr = lr;
  double total = 0;
  for (const auto& c : chunks) total += c.total.sum();
  stats.train_cost = total / double(options.batch);

  std::vector<Matrix> g = costs_to_go(chunks);
  if (!value_scale_set) {
    double sq = 0;
    for (const auto& m : g) sq += m.squaredNorm();
    policy.value_scale = std::max(std::sqrt(sq / double(options.batch * horizon)), 1e-6);
    value_scale_set = true;
  }
  if (!cost_scale_set) {
    cost_scale = std::max(std::abs(stats.train_cost) / double(horizon), 1e-12);
    cost_scale_set = true;
  }
  // Estimators whose loss is in cost units weigh entropy in the first batch's cost per step.
  if (options.algo != Algo::PPO && options.sf_epochs == 0) entropy_coef *= cost_scale;
  const double per_step = 1.0 / double(options.batch * horizon);  // the loss is the mean cost per step
  runtime::Samples samples;
  if (options.algo == Algo::PPO || options.algo == Algo::Reinforce || options.sf_epochs > 0 || uses_values())
    samples = runtime::flatten(chunks, horizon);

  if (pathwise()) {
    std::vector<Matrix> weights;
    if (options.sf_epochs > 0 && options.algo != Algo::GumbelST) {
      // The paper's preset: normalized GAE advantages for the score-function part.
      std::vector<Matrix> adv, targets;
      gae(chunks, adv, targets);
      double sum = 0, sq = 0;
      for (const auto& a : adv) sum += a.sum();
      const double mean = sum / double(options.batch * horizon);
      for (const auto& a : adv) sq += (a.array() - mean).square().sum();
      const double inv_sd = 1.0 / (std::sqrt(sq / double(options.batch * horizon)) + 1e-8);
      for (auto& a : adv) weights.push_back((a.array() - mean) * inv_sd * per_step);
      fill(samples, chunks, adv, targets);
    } else {
      weights = score_weights(chunks, g, per_step);
    }
    std::vector<double> grad = options.algo == Algo::HPO && dev_evaluation_due(iteration + 1)
                                   ? measure_cross_term(spec, chunks, weights, per_step, entropy_coef, stats)
                                   : pathwise_gradient(spec, chunks, weights, per_step, entropy_coef);
    stats.grad_norm = apply(grad, lr);
    if (options.sf_epochs > 0) {
      runtime::SurrogateSpec sf;
      sf.clip = options.clip;
      sf.entropy_coef = entropy_coef;
      sf.normalize_advantage = true;
      sf.value = true;
      sf.value_coef = options.value_coef;
      auto s = surrogate_epochs(samples, sf, options.sf_epochs, lr, true);
      stats.entropy = s.entropy;
    }
  } else if (options.algo == Algo::PPO) {
    std::vector<Matrix> adv, targets;
    gae(chunks, adv, targets);
    fill(samples, chunks, adv, targets);
    runtime::SurrogateSpec ppo;
    ppo.continuous = true;
    ppo.value = true;
    ppo.clip = options.clip;
    ppo.entropy_coef = entropy_coef;
    ppo.value_coef = options.value_coef;
    ppo.normalize_advantage = true;
    auto s = surrogate_epochs(samples, ppo, options.epochs, lr, true);
    stats.entropy = s.entropy;
  } else {  // REINFORCE: one score-function step on discount^t (G_t - b_t)
    std::vector<Matrix> weights = sf_weights(chunks, g, baselines(chunks, g), 1.0), targets = g;
    fill(samples, chunks, weights, targets);
    std::vector<double> grad(policy.params.size(), 0.0);
    stats.entropy = reinforce_gradient(samples, entropy_coef, grad).entropy;
    stats.grad_norm = apply(grad, lr);
  }
  // The value network learns Monte Carlo costs-to-go when it serves as hpo's or reinforce's baseline.
  if (options.algo != Algo::PPO && options.sf_epochs == 0 && uses_values() && options.value_epochs > 0) {
    std::vector<Matrix> zero;
    for (const auto& c : chunks) zero.push_back(Matrix::Zero(horizon, c.size));
    fill(samples, chunks, zero, g);
    runtime::SurrogateSpec fit;
    fit.discrete = false;
    fit.value = true;
    fit.value_coef = 1.0;
    surrogate_epochs(samples, fit, options.value_epochs, lr, false);
  }
  if (std::isnan(stats.entropy) && policy.has_disc()) {
    // Report the discrete head's entropy even when the estimator did not compute it.
    double sum = 0;
    std::int64_t rows = 0;
    for (const auto& c : chunks) {
      for (std::int64_t t = 0; t < horizon; ++t) sum -= c.logp_disc.row(t).sum();
      rows += c.size * horizon;
    }
    stats.entropy = sum / double(rows);  // -mean log p of the sampled choices estimates it
  }
  for (const auto& c : chunks)
    for (const auto& o : c.obs) policy.normalizer.merge(o);
  this->samples += options.batch * horizon;
  stats.samples = this->samples;
  ++iteration;
  if (dev_evaluation_due(iteration)) evaluate_dev(stats);
  stats.best_dev_cost = best ? best->dev_cost() : NAN;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

void Trainer::Impl::evaluate_dev(IterationStats& stats) {
  try {
    stats.dev_cost = runtime::summarize(runtime::rollout_totals(
                                            runtime::evaluation_spec(*model, policy, options, options.dev_seed),
                                            options.dev_episodes, threads))
                         .mean;
  } catch (const runtime::NonFiniteError& e) {
    throw TrainingError(std::string("the dev evaluation after iteration ") + std::to_string(iteration) + ": " +
                        e.what());
  }
  if (best && !(stats.dev_cost < best->dev_cost())) return;
  best = std::make_unique<Checkpoint>(snapshot());
  best->impl_->dev_cost = stats.dev_cost;
  if (!options.out_dir.empty()) best->save((std::filesystem::path(options.out_dir) / "policy.ckpt").string());
}

Checkpoint Trainer::Impl::snapshot() const {
  Checkpoint c;
  auto& ci = *c.impl_;
  const auto& mi = detail::ModelAccess::impl(*model);
  ci.model_path = source_path(*model);
  ci.model_source = mi.sources->file(0).text;
  ci.source_hash = source_hash(*model);
  ci.stdlib_dirs = mi.options.stdlib_dirs;
  ci.sets = mi.options.sets;
  ci.param_names = model->param_names();
  ci.param_values.assign(model->params().begin(), model->params().end());
  ci.options = options;
  ci.iteration = iteration;
  ci.policy = policy;
  return c;
}

Trainer::Trainer(const Model& model, TrainOptions options) {
  validate(model, options);
  impl_ = std::make_unique<Impl>(model, std::move(options));
  const auto& o = impl_->options;
  if (!o.out_dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(o.out_dir, error);
    if (error) throw std::runtime_error("cannot create the output folder " + o.out_dir + ": " + error.message());
    const auto path = std::filesystem::path(o.out_dir) / "metrics.csv";
    impl_->csv.open(path);
    if (!impl_->csv) throw std::runtime_error("cannot write " + path.string());
    impl_->csv << "iteration,samples,seconds,train_cost,dev_cost,best_dev_cost,grad_norm,entropy,lr,cross_ratio,"
                  "cross_alignment"
               << std::endl;
  }
}

Trainer::Trainer(Trainer&&) noexcept = default;
Trainer::~Trainer() = default;

const TrainOptions& Trainer::options() const { return impl_->options; }
const std::vector<IterationStats>& Trainer::history() const { return impl_->history; }
std::span<double> Trainer::parameters() { return impl_->policy.params; }
const Checkpoint* Trainer::best() const { return impl_->best.get(); }
Checkpoint Trainer::checkpoint() const { return impl_->snapshot(); }

IterationStats Trainer::iterate() {
  IterationStats stats = impl_->iterate();
  impl_->history.push_back(stats);
  if (impl_->csv.is_open()) {
    auto number = [](double v) {
      if (std::isnan(v)) return std::string();
      std::ostringstream text;
      text.precision(10);
      text << v;
      return text.str();
    };
    impl_->csv << stats.iteration << ',' << stats.samples << ',' << number(stats.seconds) << ','
               << number(stats.train_cost) << ',' << number(stats.dev_cost) << ',' << number(stats.best_dev_cost)
               << ',' << number(stats.grad_norm) << ',' << number(stats.entropy) << ',' << number(stats.lr) << ','
               << number(stats.cross_ratio) << ',' << number(stats.cross_alignment) << '\n';
    impl_->csv.flush();
  }
  return stats;
}

void Trainer::train(const std::function<void(const IterationStats&)>& progress) {
  auto write_curve = [&] {
    if (!impl_->options.out_dir.empty() && !impl_->history.empty())
      runtime::write_learning_curve_svg(
          impl_->history, impl_->model->name() + " (" + to_string(impl_->options.algo) + ")",
          (std::filesystem::path(impl_->options.out_dir) / "learning_curve.svg").string());
  };
  try {
    while (impl_->iteration < impl_->options.iterations) {
      IterationStats stats = iterate();
      if (progress) progress(stats);
    }
  } catch (const TrainingError&) {
    write_curve();  // the curve up to the failure; the best checkpoint stays as it was
    throw;
  }
  write_curve();
}

Evaluation Trainer::evaluate(std::uint64_t seed, std::int64_t episodes) const {
  if (episodes < 1) throw std::invalid_argument("evaluation needs at least one episode");
  try {
    return runtime::summarize(runtime::rollout_totals(
        runtime::evaluation_spec(*impl_->model, impl_->policy, impl_->options, seed), episodes, impl_->threads));
  } catch (const runtime::NonFiniteError& e) {
    throw TrainingError(e.what());
  }
}

std::vector<double> Trainer::gradient(std::uint64_t seed, std::int64_t episodes) {
  impl_->warm_up();
  const Impl& m = *impl_;
  if (m.options.algo == Algo::PPO) throw std::invalid_argument("ppo has no single gradient estimate; use reinforce");
  if (episodes < 2) throw std::invalid_argument("a gradient estimate needs at least two episodes");
  auto spec = m.training_spec(seed, mix(seed, 0x47524144));
  std::vector<Chunk> chunks = m.roll(spec, episodes);
  std::vector<Matrix> g = m.costs_to_go(chunks);
  const double per_episode = 1.0 / double(episodes);
  if (m.pathwise()) return m.pathwise_gradient(spec, chunks, m.score_weights(chunks, g, per_episode), per_episode, 0.0);
  runtime::Samples samples = runtime::flatten(chunks, m.horizon);
  m.fill(samples, chunks, m.sf_weights(chunks, g, m.baselines(chunks, g), 1.0), g);
  std::vector<double> grad(m.policy.params.size(), 0.0);
  m.reinforce_gradient(samples, 0.0, grad);
  for (double& v : grad) v *= double(m.horizon);  // the surrogate averages over steps too
  return grad;
}

void Trainer::act(std::span<const double> obs, std::span<const std::int32_t> disc, std::span<double> log_probs,
                  std::span<double> cont) const {
  const runtime::Policy& p = impl_->policy;
  const auto& space = p.space();
  if (obs.size() != std::size_t(space.obs) || disc.size() != std::size_t(space.disc()) ||
      log_probs.size() != std::size_t(space.logits()) || cont.size() != std::size_t(space.cont()))
    throw std::invalid_argument("act: arrays do not match the model's observation and action sizes");
  Matrix z = p.normalizer.apply(Eigen::Map<const Matrix>(obs.data(), 1, space.obs));
  runtime::Mlp::Tape tape;
  if (p.has_disc()) {
    p.disc_net().forward(p.disc_params(), z, tape);
    Matrix lp = runtime::log_softmax(space, tape.output);
    std::copy(lp.data(), lp.data() + lp.size(), log_probs.begin());
  }
  if (p.has_cont()) {
    p.cont_net().forward(p.cont_params(), p.cont_input(z, runtime::one_hot(space, disc, 1)), tape);
    for (int i = 0; i < space.cont(); ++i) cont[i] = runtime::squash(tape.output(0, i), space.lower[i], space.upper[i]);
  }
}

}  // namespace hpo
