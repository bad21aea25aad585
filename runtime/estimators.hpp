// estimators.hpp: the gradient estimators behind --algo: the backward sweep through a stored
// trajectory (HPO with and without the cross term, straight-through Gumbel-softmax) and the
// score-function surrogate on flattened samples (PPO, REINFORCE, HPO's optional PPO epochs, the
// value fit).
#pragma once

#include "runtime/rollout.hpp"

namespace hpo::runtime {

struct BackwardSpec {
  double cost_weight = 1.0;       // dL/dcost_t = cost_weight * discount^t
  bool score_function = true;     // add log pi(d_t | o_t) * sf_weight(t, b)
  bool cross_term = true;         // let the discrete head's gradient flow back into the states
  bool straight_through = false;  // Gumbel-softmax straight-through for the discrete choices
  double temperature = 1.0;
  double entropy_coef = 0.0;      // subtract cost_weight * entropy_coef * H(pi(. | o_t)) per step and sample
};

// Adds to grad (the policy's flat gradient) the gradient of
//   sum_b [ cost_weight sum_t (discount^t c_t - entropy_coef H_t) + sum_t log pi(d_t | o_t) sf_weight(t, b) ]
// through the whole trajectory of the chunk: policy, observe and step adjoints, states included.
void backward_through_trajectory(const RolloutSpec& spec, const Chunk& chunk, const BackwardSpec& backward,
                                 const Matrix& sf_weight, std::span<double> grad);

// One row per (episode, step), for the score-function updates that need no simulator.
struct Samples {
  Matrix obs;                      // [N x obs]
  std::vector<std::int32_t> disc;  // [disc x N]
  Matrix raw;                      // [N x cont]: the sampled pre-squash continuous action
  Vector logp_old_disc, logp_old_cont, advantage, target, time_fraction;
  std::int64_t rows() const { return obs.rows(); }
};
Samples flatten(const std::vector<Chunk>& chunks, std::int64_t horizon);

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
// Adds the gradient of the mean over `rows` of max(r A, clip(r) A) - entropy + value loss, with
// r = pi(d, u | o) / pi_old, to policy_grad and value_grad.
SurrogateStats surrogate_gradient(const Policy& policy, const Samples& samples, std::span<const std::int64_t> rows,
                                  const SurrogateSpec& spec, std::span<double> policy_grad, std::span<double> value_grad,
                                  int threads);

}  // namespace hpo::runtime
