// gumbel_st.cpp: straight-through Gumbel-softmax (--algo gumbel-st): choices by Gumbel-max, and
// the pathwise gradient through the simulator with the one-hot choice relaxed to a softmax in the
// backward pass. Pathwise only, biased; a baseline of the paper's comparison.
#include "runtime/learner.hpp"

namespace hpo::runtime {

namespace {

class GumbelST final : public Algorithm {
 public:
  const Batch& iterate(Learner& learner, const IterationPlan& plan, IterationStats& stats) override {
    // 1. A batch of episodes whose choices are argmax(logits + Gumbel noise), the noise kept.
    auto spec = learner.training_spec(plan.env_seed, plan.policy_seed, ActMode::Gumbel, true, false);
    const Batch& batch = learner.roll(spec, learner.options.batch);
    learner.set_scales(learner.training_returns(batch).to_go);
    // 2. The mean discounted cost per step, differentiated through the relaxed choices, minus the
    //    entropy bonus in units of the first batch's cost per step.
    const double per_sample = learner.per_sample(batch);
    std::vector<double> grad = sweep(learner, spec, batch, per_sample, plan.entropy * learner.cost_per_step);
    stats.grad_norm = learner.apply(grad, plan.lr);
    return batch;
  }

  std::vector<double> gradient(Learner& learner, std::uint64_t env_seed, std::uint64_t policy_seed,
                               std::int64_t episodes) override {
    auto spec = learner.training_spec(env_seed, policy_seed, ActMode::Gumbel, true, false);
    const Batch& batch = learner.roll(spec, episodes);
    return sweep(learner, spec, batch, 1.0 / double(episodes), 0.0);
  }

 private:
  static std::vector<double> sweep(Learner& learner, const RolloutSpec& spec, const Batch& batch, double cost_weight,
                                   double entropy_coef) {
    BackwardSpec backward;
    backward.cost_weight = cost_weight;
    backward.score_function = false;
    backward.cross_term = false;
    backward.straight_through = true;
    backward.temperature = learner.options.gumbel.temperature;
    backward.entropy_coef = entropy_coef;
    return learner.trajectory_gradients(spec, batch, backward, Matrix::Zero(batch.horizon, batch.episodes), 1)[0];
  }
};

}  // namespace

std::unique_ptr<Algorithm> make_gumbel_st() { return std::make_unique<GumbelST>(); }

}  // namespace hpo::runtime
