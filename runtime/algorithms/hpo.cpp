// hpo.cpp: Hybrid Policy Optimization (--algo hpo, hpo-decoupled): the pathwise gradient through
// the simulator for the continuous head, the score function for the discrete choices, as the
// paper runs it (a GAE critic, one full-batch step, then PPO epochs) or in the earlier batch-mean form.
#include <numeric>

#include "runtime/learner.hpp"
#include "runtime/returns.hpp"

namespace hpo::runtime {

namespace {

class Hpo final : public Algorithm {
 public:
  explicit Hpo(bool cross_term) : cross_term_(cross_term) {}

  const Batch& iterate(Learner& learner, const IterationPlan& plan, IterationStats& stats) override {
    const TrainOptions& o = learner.options;
    const bool gae_critic = o.hpo.advantage == Advantage::GAE;
    // 1. A batch of episodes, the trajectory kept for the backward sweep; the critic's values
    //    (on the same observations, detached) when it gives the advantages.
    auto spec = learner.training_spec(plan.env_seed, plan.policy_seed, ActMode::Sample, true, gae_critic);
    const Batch& batch = learner.roll(spec, o.batch);
    const auto [cost, g] = learner.training_returns(batch);
    learner.set_scales(g);
    const double per_sample = learner.per_sample(batch);  // the losses are means over counted steps and episodes

    // 2. The loss of the full-batch step. gae: pathwise_coef x (mean discounted cost / its batch
    //    standard deviation) + log pi(d_t | o_t) x standardized GAE advantage - entropy, with the
    //    ratio at 1 (PPO's clipped term has this gradient there). batch-mean: in cost units, the
    //    score-function weight discount^t (G_t - mean of the other episodes' G_t).
    BackwardSpec backward;
    Matrix sf_weights;
    Advantages gae_result;
    if (gae_critic) {
      gae_result = gae(cost, batch.value, gae_gamma(o), o.sf.gae_lambda);
      const PeriodWindow w = learner.train_window;
      const double cost_sd = standard_deviation(batch.cost.middleRows(w.first, w.size()));
      backward.cost_weight = o.hpo.pathwise_coef * per_sample / std::max(cost_sd, 1e-12);
      sf_weights = standardized(gae_result.advantage) * per_sample;
      backward.entropy_coef = plan.entropy * per_sample / backward.cost_weight;
    } else {
      backward.cost_weight = per_sample;
      sf_weights = discounted(g - leave_one_out_baseline(g), learner.discount) * per_sample;
      backward.entropy_coef = plan.entropy * learner.cost_per_step;
    }
    backward.cross_term = cross_term_;
    std::vector<double> grad = plan.measure_cross_term && cross_term_
                                   ? measure_cross_term(learner, spec, batch, backward, sf_weights, stats)
                                   : learner.trajectory_gradients(spec, batch, backward, sf_weights, 1)[0];
    if (!gae_critic) {
      stats.grad_norm = learner.apply(grad, plan.lr);
      return batch;
    }

    // 3. The critic's loss in the same step (its own network and optimizer): the value targets on
    //    every sample.
    Samples& samples = learner.flatten(batch);
    learner.fill(samples, gae_result.advantage, gae_result.target);
    SurrogateSpec value_fit;
    value_fit.discrete = false;
    value_fit.value = true;
    value_fit.value_coef = o.sf.value_coef;
    std::vector<double> unused(learner.policy.params.size(), 0.0), value_grad(learner.policy.value_params.size(), 0.0);
    learner.surrogate_all_rows(samples, value_fit, unused, value_grad);
    learner.apply_value(value_grad);
    stats.grad_norm = learner.apply(grad, plan.lr);

    // 4. PPO-only epochs on the discrete head and the critic, states as recorded (no pathwise
    //    term, no cross term), until the policy has moved target_kl away from the batch's.
    if (o.sf.epochs > 0 && learner.policy.has_disc()) {
      const SurrogateSpec ppo = learner.clipped_surrogate(plan.entropy, false);
      auto epochs = learner.surrogate_epochs(samples, ppo, o.sf.epochs, o.sf.minibatches, o.sf.target_kl, plan.lr, true);
      stats.entropy = epochs.last.entropy;
    }
    return batch;
  }

  std::vector<double> gradient(Learner& learner, std::uint64_t env_seed, std::uint64_t policy_seed,
                               std::int64_t episodes) override {
    // The unbiased estimate of d/dtheta E[sum_t discount^t c_t] per episode, in cost units: the
    // score-function weight G_t minus the critic's value (gae) or the other episodes' mean, both
    // independent of the episode's own choice at t. (GAE with lambda < 1 and standardization are
    // what training uses; they trade a little bias for variance.)
    const bool critic = learner.options.hpo.advantage == Advantage::GAE;
    auto spec = learner.training_spec(env_seed, policy_seed, ActMode::Sample, true, critic);
    const Batch& batch = learner.roll(spec, episodes);
    const Matrix g = learner.training_returns(batch).to_go;
    const double per_episode = 1.0 / double(episodes);
    BackwardSpec backward;
    backward.cost_weight = per_episode;
    backward.cross_term = cross_term_;
    const Matrix baseline = critic ? batch.value : leave_one_out_baseline(g);
    const Matrix weights = discounted(g - baseline, learner.discount) * per_episode;
    return learner.trajectory_gradients(spec, batch, backward, weights, 1)[0];
  }

 private:
  // The cross term, measured as the paper does: the gradient minus the same without the cross
  // term; its size relative to the whole, and the cosine between its means over two halves of the
  // batch (near 0 when it is noise, near 1 when it carries signal). Returns the whole gradient.
  static std::vector<double> measure_cross_term(Learner& learner, const RolloutSpec& spec, const Batch& batch,
                                                BackwardSpec backward, const Matrix& sf_weights,
                                                IterationStats& stats) {
    backward.cross_term = true;
    auto with = learner.trajectory_gradients(spec, batch, backward, sf_weights, 2);
    backward.cross_term = false;
    auto without = learner.trajectory_gradients(spec, batch, backward, sf_weights, 2);
    const std::size_t size = learner.policy.params.size();
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

  bool cross_term_;
};

}  // namespace

std::unique_ptr<Algorithm> make_hpo(bool cross_term) { return std::make_unique<Hpo>(cross_term); }

}  // namespace hpo::runtime
