// reinforce.cpp: REINFORCE (--algo reinforce): one score-function step per batch for the whole
// policy (categorical x Gaussian) on discount^t (G_t - b_t), with the batch-mean or a value baseline.
#include "runtime/learner.hpp"
#include "runtime/returns.hpp"

namespace hpo::runtime {

namespace {

class Reinforce final : public Algorithm {
 public:
  const Batch& iterate(Learner& learner, const IterationPlan& plan, IterationStats& stats) override {
    const TrainOptions& o = learner.options;
    const bool value_baseline = o.reinforce.baseline == Baseline::Value;
    // 1. A batch of episodes (with the value network's predictions when it is the baseline).
    auto spec = learner.training_spec(plan.env_seed, plan.policy_seed, ActMode::Sample, false, value_baseline);
    const Batch& batch = learner.roll(spec, o.batch);
    const Matrix g = learner.training_returns(batch).to_go;
    learner.set_scales(g);

    // 2. The score-function step: the mean over samples of log pi(d, u | o) discount^t (G_t - b_t),
    //    minus the entropy bonus in units of the first batch's cost per step.
    Samples& samples = score_samples(learner, batch, g);
    std::vector<double> grad(learner.policy.params.size(), 0.0);
    stats.entropy = score_gradient(learner, samples, plan.entropy * learner.cost_per_step, grad).entropy;
    stats.grad_norm = learner.apply(grad, plan.lr);

    // 3. The value network learns Monte Carlo costs-to-go when it is the baseline.
    if (value_baseline && o.reinforce.value_epochs > 0) {
      learner.fill(samples, Matrix::Zero(g.rows(), g.cols()), g);
      SurrogateSpec fit;
      fit.discrete = false;
      fit.value = true;
      fit.value_coef = 1.0;
      learner.surrogate_epochs(samples, fit, o.reinforce.value_epochs, o.sf.minibatches, 0.0, plan.lr, false);
    }
    return batch;
  }

  std::vector<double> gradient(Learner& learner, std::uint64_t env_seed, std::uint64_t policy_seed,
                               std::int64_t episodes) override {
    auto spec = learner.training_spec(env_seed, policy_seed, ActMode::Sample, false,
                                      learner.options.reinforce.baseline == Baseline::Value);
    const Batch& batch = learner.roll(spec, episodes);
    Samples& samples = score_samples(learner, batch, learner.training_returns(batch).to_go);
    std::vector<double> grad(learner.policy.params.size(), 0.0);
    score_gradient(learner, samples, 0.0, grad);
    for (double& v : grad) v *= double(learner.horizon);  // the surrogate averages over steps too
    return grad;
  }

 private:
  static Samples& score_samples(Learner& learner, const Batch& batch, const Matrix& g) {
    const Matrix baseline =
        learner.options.reinforce.baseline == Baseline::Value ? batch.value : leave_one_out_baseline(g);
    Samples& samples = learner.flatten(batch);
    learner.fill(samples, discounted(g - baseline, learner.discount), g);
    return samples;
  }

  static SurrogateStats score_gradient(Learner& learner, const Samples& samples, double entropy_coef,
                                       std::vector<double>& grad) {
    SurrogateSpec sf;
    sf.continuous = true;
    sf.entropy_coef = entropy_coef;
    std::vector<double> unused;
    return learner.surrogate_all_rows(samples, sf, grad, unused);
  }
};

}  // namespace

std::unique_ptr<Algorithm> make_reinforce() { return std::make_unique<Reinforce>(); }

}  // namespace hpo::runtime
