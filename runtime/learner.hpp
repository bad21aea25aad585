// learner.hpp: what every training algorithm works on (the policy, its optimizers, the engine and
// the last batch) and the steps they share: rollouts, clipped Adam steps, backward sweeps and
// minibatch epochs of the score-function surrogate. The algorithms themselves live one per file in
// runtime/algorithms/.
#pragma once

#include <memory>

#include "runtime/adam.hpp"
#include "runtime/engine.hpp"

namespace hpo::runtime {

std::uint64_t mix(std::uint64_t a, std::uint64_t b);

struct Learner {
  const Model* model;
  const TrainOptions& options;
  int threads;
  std::int64_t horizon;
  double discount;
  // The periods whose costs the training loss counts, and those the reported costs sum
  // (`train periods`, `report periods`; every period when the model declares none).
  PeriodWindow train_window, report_window;
  Policy policy;
  // One optimizer per parameter group (Policy::groups), so that steps that train one head alone
  // (hpo's PPO epochs: the discrete head) leave the other's moments and parameters as they are.
  std::vector<Adam> group_adam;
  Adam value_adam;
  std::unique_ptr<Engine> engine;  // its workspaces change; the policy does not
  std::unique_ptr<Batch> batch = std::make_unique<Batch>();
  std::unique_ptr<Samples> flat = std::make_unique<Samples>();  // flatten()'s, reused
  std::int64_t iteration = 0;  // finished iterations
  // Set from the first training batch: the value network's output scale (RMS cost-to-go) and the
  // mean cost per step (the unit of entropy bonuses in cost units).
  bool scales_set = false;
  double cost_per_step = 1.0;

  Learner(const Model& model, const TrainOptions& options);

  RolloutSpec training_spec(std::uint64_t env_seed, std::uint64_t policy_seed, ActMode mode, bool record,
                            bool values) const;
  // Rolls out into *batch (its arrays are reused, so iterations allocate nothing); throws TrainingError.
  const Batch& roll(const RolloutSpec& spec, std::int64_t episodes) const;
  // The batch's costs as the training loss counts them (zero outside the train window) and their
  // costs-to-go G_t = c_t + discount G_{t+1}.
  struct Returns {
    Matrix cost, to_go;
  };
  Returns training_returns(const Batch& batch) const;
  // Sets the scales from the first training batch's costs-to-go (later calls change nothing).
  void set_scales(const Matrix& to_go);
  // 1 / (episodes x periods in the train window): the losses are means per counted step.
  double per_sample(const Batch& batch) const {
    return 1.0 / (double(batch.episodes) * double(std::max<std::int64_t>(train_window.size(), 1)));
  }

  // Per-group gradient-norm clipping and an Adam step of every group, or of the discrete head's
  // alone; returns the norm before clipping. Throws TrainingError for a gradient that is not finite.
  enum class Heads { Both, DiscreteOnly };
  double apply(std::vector<double>& grad, double lr, Heads heads = Heads::Both);
  void apply_value(std::vector<double>& value_grad);

  // gradient of cost_weight sum_t (discount^t c_t [t in the train window] - entropy_coef H_t) + sum_t log pi(d_t | o_t) w(t, e)
  // through the last recorded rollout, for the episodes in `groups` equal parts.
  std::vector<std::vector<double>> trajectory_gradients(const RolloutSpec& spec, const Batch& batch,
                                                        const BackwardSpec& backward, const Matrix& sf_weights,
                                                        int groups) const;

  Samples& flatten(const Batch& batch) const;
  // Row t * episodes + e of the samples gets (t, e) of the matrices.
  void fill(Samples& samples, const Matrix& advantages, const Matrix& targets) const;

  // PPO's clipped surrogate (options.sf's clip, advantages standardized per minibatch) of the
  // discrete head, and of the Gaussian continuous head with `continuous`, plus the critic's loss.
  SurrogateSpec clipped_surrogate(double entropy_coef, bool continuous) const;
  // The surrogate on all rows at once (one gradient, no update).
  SurrogateStats surrogate_all_rows(const Samples& samples, const SurrogateSpec& spec, std::vector<double>& grad,
                                    std::vector<double>& value_grad) const;
  // epochs x minibatches of the surrogate, each minibatch an Adam step (of the heads that take part
  // in spec when update_policy, of the value network when spec.value); stops at the first minibatch
  // whose approximate KL passes target_kl (0: never).
  struct EpochStats {
    SurrogateStats last;
    int steps = 0;
    bool stopped_early = false;
  };
  EpochStats surrogate_epochs(const Samples& samples, const SurrogateSpec& spec, int epochs, int minibatches,
                              double target_kl, double lr, bool update_policy);
};

// The iteration the algorithm is asked to run.
struct IterationPlan {
  double lr;
  double entropy;                 // this iteration's entropy coefficient, annealed
  std::uint64_t env_seed, policy_seed;
  bool measure_cross_term;        // hpo: also split off the cross term (at dev evaluations)
};

class Algorithm {
 public:
  virtual ~Algorithm() = default;
  // Rolls out a batch and updates the policy (and the value network); returns the batch (the
  // trainer reads its cost and observations).
  virtual const Batch& iterate(Learner& learner, const IterationPlan& plan, IterationStats& stats) = 0;
  // One gradient estimate of the mean episode cost from `episodes` scenarios of env_seed, without
  // updating; throws std::invalid_argument for algorithms that have none.
  virtual std::vector<double> gradient(Learner& learner, std::uint64_t env_seed, std::uint64_t policy_seed,
                                       std::int64_t episodes) = 0;
};

std::unique_ptr<Algorithm> make_hpo(bool cross_term);
std::unique_ptr<Algorithm> make_ppo();
std::unique_ptr<Algorithm> make_reinforce();
std::unique_ptr<Algorithm> make_gumbel_st();
std::unique_ptr<Algorithm> make_algorithm(Algo algo);

}  // namespace hpo::runtime
