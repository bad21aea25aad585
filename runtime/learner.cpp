// learner.cpp: the steps the training algorithms share: rollouts, clipped Adam steps, backward
// sweeps, flattening a batch into samples and minibatch epochs of the score-function surrogate.
#include "runtime/learner.hpp"

#include <numeric>
#include <random>

#include "runtime/parallel.hpp"
#include "runtime/random.hpp"
#include "runtime/returns.hpp"

namespace hpo::runtime {

namespace {

PolicyConfig policy_config(const TrainOptions& o) {
  PolicyConfig c;
  c.hidden = o.hidden;
  const bool gaussian = o.gaussian || o.algo == Algo::PPO || o.algo == Algo::Reinforce;
  c.continuous = gaussian ? ContinuousHead::Gaussian : ContinuousHead::Deterministic;
  c.init_log_std = o.init_log_std;
  c.conditioning = o.per_option ? ChoiceConditioning::PerOption : ChoiceConditioning::ChoiceInput;
  c.linear_skip = o.linear_skip;
  return c;
}

}  // namespace

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = a ^ (0x9E3779B97F4A7C15ull * (b + 1));
  return splitmix64(x);
}

Learner::Learner(const Model& m, const TrainOptions& o)
    : model(&m),
      options(o),
      threads(o.threads > 0 ? o.threads : default_threads()),
      horizon(o.horizon > 0 ? o.horizon : m.horizon()),
      discount(m.discount()),
      train_window(m.train_window(horizon)),
      report_window(m.report_window(horizon)),
      policy(ActionSpace::of(m), policy_config(o), mix(o.seed, 0x494E4954)),
      value_adam(policy.value_params.size()),
      engine(std::make_unique<Engine>(o.precision, threads)) {
  for (const auto& group : policy.groups()) group_adam.emplace_back(group.size);
}

RolloutSpec Learner::training_spec(std::uint64_t env_seed, std::uint64_t policy_seed, ActMode mode, bool record,
                                   bool values) const {
  RolloutSpec spec;
  spec.model = model;
  spec.policy = &policy;
  spec.horizon = horizon;
  spec.discount = discount;
  spec.env_seed = env_seed;
  spec.policy_seed = policy_seed;
  spec.mode = mode;
  spec.record = record;
  spec.values = values;
  spec.counted = report_window;
  return spec;
}

const Batch& Learner::roll(const RolloutSpec& spec, std::int64_t episodes) const {
  try {
    engine->rollout(spec, episodes, *batch);
  } catch (const NonFiniteError& e) {
    throw TrainingError(e.what());
  }
  return *batch;
}

Learner::Returns Learner::training_returns(const Batch& b) const {
  Returns r;
  if (train_window.first == 0 && train_window.end == horizon) {
    r.cost = b.cost;
  } else {
    r.cost = Matrix::Zero(b.cost.rows(), b.cost.cols());
    r.cost.middleRows(train_window.first, train_window.size()) =
        b.cost.middleRows(train_window.first, train_window.size());
  }
  r.to_go = costs_to_go(r.cost, discount);
  return r;
}

void Learner::set_scales(const Matrix& g) {
  if (scales_set) return;
  policy.value_scale = std::max(std::sqrt(g.squaredNorm() / double(g.size())), 1e-6);
  const double per_episode = g.row(0).mean();  // sum_t discount^t c_t over the train window
  cost_per_step = std::max(std::abs(per_episode) / double(std::max<std::int64_t>(train_window.size(), 1)), 1e-12);
  scales_set = true;
}

double Learner::apply(std::vector<double>& grad, double lr, Heads heads) {
  for (double g : grad)
    if (!std::isfinite(g)) throw TrainingError("the policy gradient is not finite at iteration " + std::to_string(iteration + 1));
  double sq = 0;
  const auto groups = policy.groups();
  const double continuous_lr = lr * continuous_lr_scale(options);
  for (std::size_t k = 0; k < groups.size(); ++k) {
    if (heads == Heads::DiscreteOnly && groups[k].name != "discrete") continue;
    auto part = std::span<double>(grad).subspan(groups[k].offset, groups[k].size);
    sq += std::pow(clip_norm(part, options.grad_clip), 2);
    const double group_lr = groups[k].name == "discrete" ? lr : continuous_lr;
    group_adam[k].step(std::span<double>(policy.params).subspan(groups[k].offset, groups[k].size), part, group_lr);
  }
  return std::sqrt(sq);
}

void Learner::apply_value(std::vector<double>& value_grad) {
  clip_norm(value_grad, options.grad_clip);
  value_adam.step(policy.value_params, value_grad, options.value_lr);
}

std::vector<std::vector<double>> Learner::trajectory_gradients(const RolloutSpec& spec, const Batch& b,
                                                               const BackwardSpec& backward,
                                                               const Matrix& sf_weights, int groups) const {
  std::vector<std::vector<double>> grads(groups, std::vector<double>(policy.params.size(), 0.0));
  BackwardSpec windowed = backward;
  windowed.costs = train_window;
  engine->trajectory_gradient(spec, b, windowed, sf_weights, grads);
  return grads;
}

Samples& Learner::flatten(const Batch& b) const {
  const auto& space = policy.space();
  runtime::flatten(b, space.obs, space.disc(), space.cont(), *flat);
  return *flat;
}

void Learner::fill(Samples& samples, const Matrix& advantages, const Matrix& targets) const {
  const std::int64_t episodes = advantages.cols();
  Eigen::Map<Matrix>(samples.advantage.data(), episodes, horizon) = advantages.transpose();
  Eigen::Map<Matrix>(samples.target.data(), episodes, horizon) = targets.transpose();
}

SurrogateSpec Learner::clipped_surrogate(double entropy_coef, bool continuous) const {
  SurrogateSpec spec;
  spec.continuous = continuous;
  spec.clip = options.sf.clip;
  spec.entropy_coef = entropy_coef;
  spec.normalize_advantage = true;
  spec.value = true;
  spec.value_coef = options.sf.value_coef;
  return spec;
}

SurrogateStats Learner::surrogate_all_rows(const Samples& samples, const SurrogateSpec& spec,
                                           std::vector<double>& grad, std::vector<double>& value_grad) const {
  std::vector<std::int64_t> rows(static_cast<std::size_t>(samples.rows()));
  std::iota(rows.begin(), rows.end(), 0);
  return engine->surrogate_gradient(policy, samples, rows, spec, grad, value_grad);
}

Learner::EpochStats Learner::surrogate_epochs(const Samples& samples, const SurrogateSpec& spec, int epochs,
                                              int minibatches, double target_kl, double lr, bool update_policy) {
  std::vector<std::int64_t> rows(static_cast<std::size_t>(samples.rows()));
  std::iota(rows.begin(), rows.end(), 0);
  std::mt19937_64 shuffle_rng(mix(options.seed, 0x5348 + static_cast<std::uint64_t>(iteration)));
  const std::size_t per = (rows.size() + minibatches - 1) / minibatches;
  EpochStats out;
  std::vector<double> grad(policy.params.size()), value_grad(policy.value_params.size());
  for (int epoch = 0; epoch < epochs && !out.stopped_early; ++epoch) {
    std::shuffle(rows.begin(), rows.end(), shuffle_rng);
    SurrogateStats epoch_stats;
    for (std::size_t begin = 0; begin < rows.size(); begin += per) {
      std::span<const std::int64_t> minibatch(rows.data() + begin, std::min(per, rows.size() - begin));
      std::fill(grad.begin(), grad.end(), 0.0);
      std::fill(value_grad.begin(), value_grad.end(), 0.0);
      auto s = engine->surrogate_gradient(policy, samples, minibatch, spec, grad, value_grad);
      const double share = double(minibatch.size()) / double(rows.size());
      epoch_stats.approx_kl += s.approx_kl * share;
      epoch_stats.entropy += s.entropy * share;
      epoch_stats.value_loss += s.value_loss * share;
      epoch_stats.clip_fraction += s.clip_fraction * share;
      // The KL is measured before this minibatch's step: past the target, the policy has moved
      // far enough from the one that collected the batch.
      if (update_policy && target_kl > 0 && s.approx_kl > target_kl) {
        out.stopped_early = true;
        break;
      }
      if (update_policy) apply(grad, lr, spec.continuous ? Heads::Both : Heads::DiscreteOnly);
      if (spec.value) apply_value(value_grad);
      ++out.steps;
    }
    out.last = epoch_stats;
  }
  return out;
}

std::unique_ptr<Algorithm> make_algorithm(Algo algo) {
  switch (algo) {
    case Algo::HPO: return make_hpo(true);
    case Algo::HPODecoupled: return make_hpo(false);
    case Algo::PPO: return make_ppo();
    case Algo::Reinforce: return make_reinforce();
    case Algo::GumbelST: return make_gumbel_st();
  }
  throw std::invalid_argument("unknown algorithm");
}

}  // namespace hpo::runtime
