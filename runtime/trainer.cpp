// trainer.cpp: hpo::Trainer: one iteration = a batch of rollouts, a gradient by the chosen
// estimator, an Adam step, the value fit; dev evaluations keep the best policy as a checkpoint.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "runtime/adam.hpp"
#include "runtime/engine.hpp"
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

using runtime::Batch;
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
  std::unique_ptr<runtime::Engine> engine;  // its workspaces change; the policy does not
  std::unique_ptr<Batch> batch = std::make_unique<Batch>();
  std::unique_ptr<runtime::Samples> flat = std::make_unique<runtime::Samples>();  // flatten()'s
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
        value_adam(policy.value_params.size()),
        engine(std::make_unique<runtime::Engine>(options.precision, threads)) {}

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

  // The last rollout; its arrays are reused, so that iterations allocate nothing.
  const Batch& roll(const runtime::RolloutSpec& spec, std::int64_t episodes) const {
    try {
      engine->rollout(spec, episodes, *batch);
    } catch (const runtime::NonFiniteError& e) {
      throw TrainingError(e.what());
    }
    return *batch;
  }

  void merge_observations(const Batch& batch) {
    for (std::int64_t t = 0; t < batch.horizon; ++t) policy.normalizer.merge(batch.obs_at(t, policy.space().obs));
  }

  // Cost-to-go G_t = c_t + discount G_{t+1}, [horizon x episodes].
  Matrix costs_to_go(const Batch& batch) const {
    Matrix g(horizon, batch.episodes);
    for (Eigen::Index b = 0; b < batch.episodes; ++b) {  // an episode's column is contiguous
      double next = 0;
      for (std::int64_t t = horizon; t-- > 0;) g(t, b) = next = batch.cost(t, b) + discount * next;
    }
    return g;
  }

  // The baseline b(t, episode): the value network's, or the mean of the other episodes' G_t
  // (leave-one-out keeps it independent of the episode's own choices).
  Matrix baselines(const Batch& batch, const Matrix& g) const {
    if (options.baseline == Baseline::Value) return batch.value;
    const Eigen::VectorXd sum = g.rowwise().sum();
    return ((-g).colwise() + sum) / double(std::max<std::int64_t>(batch.episodes - 1, 1));
  }

  // GAE(lambda) advantages in cost units and their value targets.
  void gae(const Batch& batch, Matrix& advantages, Matrix& targets) const {
    const double lambda = options.gae_lambda;
    advantages.resize(horizon, batch.episodes);
    Eigen::RowVectorXd running = Eigen::RowVectorXd::Zero(batch.episodes),
                       next_value = Eigen::RowVectorXd::Zero(batch.episodes);
    for (std::int64_t t = horizon; t-- > 0;) {
      Eigen::RowVectorXd delta = batch.cost.row(t) + discount * next_value - batch.value.row(t);
      running = delta + discount * lambda * running;
      advantages.row(t) = running;
      next_value = batch.value.row(t);
    }
    targets = advantages + batch.value;
  }

  // The pathwise estimators' gradient of cost_weight * sum of discounted costs + SF terms, for
  // the episodes in `groups` equal parts.
  std::vector<std::vector<double>> trajectory_gradients(const runtime::RolloutSpec& spec, const Batch& batch,
                                                        const Matrix& sf_weights, double cost_weight,
                                                        double entropy_coef, bool cross_term, int groups) const {
    runtime::BackwardSpec bw;
    bw.cost_weight = cost_weight;
    bw.score_function = options.algo != Algo::GumbelST;
    bw.cross_term = cross_term;
    bw.straight_through = options.algo == Algo::GumbelST;
    bw.temperature = options.temperature;
    bw.entropy_coef = entropy_coef;
    std::vector<std::vector<double>> grads(groups, std::vector<double>(policy.params.size(), 0.0));
    engine->trajectory_gradient(spec, batch, bw, sf_weights, grads);
    return grads;
  }

  std::vector<double> pathwise_gradient(const runtime::RolloutSpec& spec, const Batch& batch, const Matrix& sf_weights,
                                        double cost_weight, double entropy_coef) const {
    return trajectory_gradients(spec, batch, sf_weights, cost_weight, entropy_coef, options.algo == Algo::HPO, 1)[0];
  }

  // The cross term, measured as the paper does: hpo's gradient minus the same without the cross
  // term; its size relative to the whole, and the cosine between its means over two halves of the
  // batch (near 0 when it is noise, near 1 when it carries signal). Returns hpo's gradient.
  std::vector<double> measure_cross_term(const runtime::RolloutSpec& spec, const Batch& batch,
                                         const Matrix& sf_weights, double cost_weight, double entropy_coef,
                                         IterationStats& stats) const {
    auto with = trajectory_gradients(spec, batch, sf_weights, cost_weight, entropy_coef, true, 2);
    auto without = trajectory_gradients(spec, batch, sf_weights, cost_weight, entropy_coef, false, 2);
    const std::size_t size = policy.params.size();
    std::vector<double> a(size), b(size), cross(size), total(size);
    for (std::size_t k = 0; k < size; ++k) {
      a[k] = with[0][k] - without[0][k];
      b[k] = with[1][k] - without[1][k];
      cross[k] = a[k] + b[k];
      total[k] = with[0][k] + with[1][k];
    }
    auto norm = [](const std::vector<double>& v) { return std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0)); };
    stats.cross_ratio = norm(cross) / std::max(norm(total), 1e-300);
    if (batch.episodes > 1)
      stats.cross_alignment =
          std::inner_product(a.begin(), a.end(), b.begin(), 0.0) / std::max(norm(a) * norm(b), 1e-300);
    return total;
  }

  // sf weights = discount^t (G_t - b_t) * scale.
  Matrix sf_weights(const Matrix& g, const Matrix& b, double scale) const {
    Eigen::VectorXd powers(horizon);
    for (std::int64_t t = 0; t < horizon; ++t) powers[t] = std::pow(discount, double(t));
    Matrix w = (g - b) * scale;
    w.array().colwise() *= powers.array();  // column by column: rows of a column-major matrix are strided
    return w;
  }

  // The pathwise estimators' score-function weights: none for gumbel-st, else discount^t (G_t - b_t).
  Matrix score_weights(const Batch& batch, const Matrix& g, double scale) const {
    if (options.algo != Algo::GumbelST) return sf_weights(g, baselines(batch, g), scale);
    return Matrix::Zero(horizon, batch.episodes);
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
    return engine->surrogate_gradient(policy, samples, rows, sf, grad, unused);
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
        auto s = engine->surrogate_gradient(policy, samples, batch, spec, grad, value_grad);
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

  // Row t * episodes + b of the samples gets (t, b) of the matrices.
  void fill(runtime::Samples& samples, const Matrix& advantages, const Matrix& targets) const {
    const std::int64_t episodes = advantages.cols();
    Eigen::Map<Matrix>(samples.advantage.data(), episodes, horizon) = advantages.transpose();
    Eigen::Map<Matrix>(samples.target.data(), episodes, horizon) = targets.transpose();
  }

  runtime::Samples& flatten(const Batch& batch) const {
    const auto& space = policy.space();
    runtime::flatten(batch, space.obs, space.disc(), space.cont(), *flat);
    return *flat;
  }

  // Standardize observations with a first batch's statistics before any gradient uses them.
  void warm_up() {
    if (policy.normalizer.count > 0) return;
    auto spec = training_spec(training_seed(options.seed, -1), mix(options.seed ^ 0x574152, 0));
    spec.record = false;
    merge_observations(roll(spec, options.batch));
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
  const Batch& batch = roll(spec, options.batch);
  IterationStats stats;
  stats.iteration = iteration + 1;  // counted from 1, as checkpoints and metrics rows count them
  stats.lr = lr;
  stats.train_cost = batch.total.sum() / double(options.batch);

  const Matrix g = costs_to_go(batch);
  if (!value_scale_set) {
    policy.value_scale = std::max(std::sqrt(g.squaredNorm() / double(options.batch * horizon)), 1e-6);
    value_scale_set = true;
  }
  if (!cost_scale_set) {
    cost_scale = std::max(std::abs(stats.train_cost) / double(horizon), 1e-12);
    cost_scale_set = true;
  }
  // Estimators whose loss is in cost units weigh entropy in the first batch's cost per step.
  if (options.algo != Algo::PPO && options.sf_epochs == 0) entropy_coef *= cost_scale;
  const double per_step = 1.0 / double(options.batch * horizon);  // the loss is the mean cost per step
  runtime::Samples& samples = *flat;
  if (options.algo == Algo::PPO || options.algo == Algo::Reinforce || options.sf_epochs > 0 || uses_values())
    flatten(batch);

  if (pathwise()) {
    Matrix weights;
    if (options.sf_epochs > 0 && options.algo != Algo::GumbelST) {
      // The paper's preset: normalized GAE advantages for the score-function part.
      Matrix adv, targets;
      gae(batch, adv, targets);
      const double mean = adv.mean();
      const double inv_sd = 1.0 / (std::sqrt((adv.array() - mean).square().mean()) + 1e-8);
      weights = (adv.array() - mean) * inv_sd * per_step;
      fill(samples, adv, targets);
    } else {
      weights = score_weights(batch, g, per_step);
    }
    std::vector<double> grad = options.algo == Algo::HPO && dev_evaluation_due(iteration + 1)
                                   ? measure_cross_term(spec, batch, weights, per_step, entropy_coef, stats)
                                   : pathwise_gradient(spec, batch, weights, per_step, entropy_coef);
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
    Matrix adv, targets;
    gae(batch, adv, targets);
    fill(samples, adv, targets);
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
    fill(samples, sf_weights(g, baselines(batch, g), 1.0), g);
    std::vector<double> grad(policy.params.size(), 0.0);
    stats.entropy = reinforce_gradient(samples, entropy_coef, grad).entropy;
    stats.grad_norm = apply(grad, lr);
  }
  // The value network learns Monte Carlo costs-to-go when it serves as hpo's or reinforce's baseline.
  if (options.algo != Algo::PPO && options.sf_epochs == 0 && uses_values() && options.value_epochs > 0) {
    fill(samples, Matrix::Zero(horizon, batch.episodes), g);
    runtime::SurrogateSpec fit;
    fit.discrete = false;
    fit.value = true;
    fit.value_coef = 1.0;
    surrogate_epochs(samples, fit, options.value_epochs, lr, false);
  }
  if (std::isnan(stats.entropy) && policy.has_disc()) {
    // Report the discrete head's entropy even when the estimator did not compute it: -mean log p
    // of the sampled choices estimates it.
    stats.entropy = -batch.logp_disc.sum() / double(batch.logp_disc.size());
  }
  merge_observations(batch);
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
    stats.dev_cost =
        runtime::summarize(engine->rollout_totals(runtime::evaluation_spec(*model, policy, options, options.dev_seed),
                                                  options.dev_episodes))
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
TimeSplit Trainer::time_split() const { return impl_->engine->time_split(); }
void Trainer::reset_time_split() { impl_->engine->reset_time_split(); }
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
    return runtime::summarize(impl_->engine->rollout_totals(
        runtime::evaluation_spec(*impl_->model, impl_->policy, impl_->options, seed), episodes));
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
  const Batch& batch = m.roll(spec, episodes);
  const Matrix g = m.costs_to_go(batch);
  const double per_episode = 1.0 / double(episodes);
  if (m.pathwise()) return m.pathwise_gradient(spec, batch, m.score_weights(batch, g, per_episode), per_episode, 0.0);
  runtime::Samples& samples = m.flatten(batch);
  m.fill(samples, m.sf_weights(g, m.baselines(batch, g), 1.0), g);
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
  impl_->engine->act(p, obs, disc, log_probs, cont);
}

}  // namespace hpo
