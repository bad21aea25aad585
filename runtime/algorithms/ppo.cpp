// ppo.cpp: PPO (--algo ppo) for the factorized categorical x Gaussian policy, as the paper tunes its
// baseline: a GAE critic, one full-batch step, then epochs x minibatches of clipped steps with a
// KL stop. No pathwise term: the simulator is only sampled.
#include "runtime/learner.hpp"
#include "runtime/returns.hpp"

namespace hpo::runtime {

namespace {

class Ppo final : public Algorithm {
 public:
  const Batch& iterate(Learner& learner, const IterationPlan& plan, IterationStats& stats) override {
    const TrainOptions& o = learner.options;
    // 1. A batch of episodes with the critic's values; no trajectory is kept for a backward sweep.
    auto spec = learner.training_spec(plan.env_seed, plan.policy_seed, ActMode::Sample, false, true);
    const Batch& batch = learner.roll(spec, o.batch);
    const auto [cost, g] = learner.training_returns(batch);
    learner.set_scales(g);

    // 2. GAE advantages (cost units; the surrogate standardizes them per minibatch) and value targets.
    const Advantages adv = gae(cost, batch.value, gae_gamma(o), o.sf.gae_lambda);
    Samples& samples = learner.flatten(batch);
    learner.fill(samples, adv.advantage, adv.target);

    // 3. The clipped surrogate of the whole policy (categorical x Gaussian), the value loss and the
    //    entropy bonus: first on the whole batch (ratio 1), then in minibatch epochs.
    const SurrogateSpec ppo = learner.clipped_surrogate(plan.entropy, true);
    std::vector<double> grad(learner.policy.params.size(), 0.0), value_grad(learner.policy.value_params.size(), 0.0);
    stats.entropy = learner.surrogate_all_rows(samples, ppo, grad, value_grad).entropy;
    stats.grad_norm = learner.apply(grad, plan.lr);
    learner.apply_value(value_grad);
    if (o.sf.epochs > 0) {
      auto epochs = learner.surrogate_epochs(samples, ppo, o.sf.epochs, o.sf.minibatches, o.sf.target_kl, plan.lr, true);
      if (epochs.steps > 0) stats.entropy = epochs.last.entropy;
    }
    return batch;
  }

  std::vector<double> gradient(Learner&, std::uint64_t, std::uint64_t, std::int64_t) override {
    throw std::invalid_argument("ppo has no single gradient estimate; use reinforce");
  }
};

}  // namespace

std::unique_ptr<Algorithm> make_ppo() { return std::make_unique<Ppo>(); }

}  // namespace hpo::runtime
