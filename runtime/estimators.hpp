// estimators.hpp: what the gradient estimators behind --algo ask of the engine: the backward sweep
// through a stored trajectory (HPO with and without the cross term, straight-through
// Gumbel-softmax) and the score-function surrogate on flattened samples (PPO, REINFORCE, HPO's
// optional PPO epochs, the value fit).
#pragma once

#include "runtime/rollout.hpp"

namespace hpo::runtime {

struct BackwardSpec {
  double cost_weight = 1.0;       // dL/dcost_t = cost_weight * discount^t for t in costs, else 0
  PeriodWindow costs{0, std::numeric_limits<std::int64_t>::max()};  // the model's train window
  bool score_function = true;     // add log pi(d_t | o_t) * sf_weight(t, b)
  bool cross_term = true;         // let the discrete head's gradient flow back into the states
  bool straight_through = false;  // Gumbel-softmax straight-through for the discrete choices
  double temperature = 1.0;
  double entropy_coef = 0.0;      // subtract cost_weight * entropy_coef * H(pi(. | o_t)) per step and sample
};

// One row per (step, episode), row t * episodes + b, for the score-function updates that need no
// simulator.
// Rows are samples, each one's values side by side: minibatches pick rows at random.
struct Samples {
  using Rows = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Rows obs;                        // [N x obs]
  std::vector<std::int32_t> disc;  // [N x disc]
  Rows raw;                        // [N x cont]: the sampled pre-squash continuous action
  Vector logp_old_disc, logp_old_cont, advantage, target, time_fraction;
  std::int64_t rows() const { return obs.rows(); }
};
// Fills s from a batch, reusing its storage (fresh storage every iteration meant page faults on
// about 9 MB at batch 1024).
void flatten(const Batch& batch, int obs_size, int disc_size, int cont_size, Samples& s);

struct SurrogateSpec {
  bool discrete = true;        // the categorical log-probabilities take part
  bool continuous = false;     // the Gaussian log-probability takes part
  bool value = false;          // add value_coef * mean ((V - target) / value_scale)^2
  double clip = INFINITY;      // PPO's ratio clip; infinity is the plain score function
  double entropy_coef = 0.0;
  double value_coef = 0.5;
  bool normalize_advantage = false;
};
struct SurrogateStats {
  double approx_kl = 0, entropy = 0, value_loss = 0, clip_fraction = 0;  // entropy: of the discrete head
};

}  // namespace hpo::runtime
