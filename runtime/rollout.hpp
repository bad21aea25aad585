// rollout.hpp: what a batched rollout of a policy keeps: every episode's observations, choices,
// actions, costs and log-probabilities per step, in batch-level arrays whose layout does not depend
// on how the episodes were split among threads.
#pragma once

#include <limits>
#include <stdexcept>

#include "runtime/policy.hpp"

namespace hpo::runtime {

// A model produced a value that is not finite; the message names the step, episode and element.
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ActMode {
  Sample,  // discrete choices and Gaussian noise drawn from the policy
  Greedy,  // the most likely choice and the Gaussian mean
  Gumbel,  // choices by Gumbel-max, the Gumbel noise kept for a straight-through backward pass
};

struct RolloutSpec {
  const Model* model = nullptr;
  const Policy* policy = nullptr;
  std::int64_t horizon = 0;
  double discount = 1.0;
  std::uint64_t env_seed = 0;     // scenarios: the environment's noise
  std::uint64_t policy_seed = 0;  // the policy's own sampling
  ActMode mode = ActMode::Sample;
  bool record = true;             // keep the trajectory for a backward pass
  bool states = false;            // with record, copy each step's state into the batch (for export)
  bool values = false;            // evaluate the value network at every step
  // The periods summed into Batch::total (the model's report window for evaluations).
  PeriodWindow counted{0, std::numeric_limits<std::int64_t>::max()};
};

// Arrays [T][k][episodes] hold step t's k-th element of episode b at (t * k_count + k) * episodes + b.
struct Batch {
  std::int64_t episodes = 0, horizon = 0;
  std::vector<double> obs;           // [T][obs]: before normalization
  std::vector<std::int32_t> disc;    // [T][disc]
  std::vector<double> raw;           // [T][cont]: the continuous head's output before squashing
  std::vector<double> noise;         // [T][cont] Gaussian eps or [T][logits] Gumbel noise, when drawn
  std::vector<double> state;         // [T][state]: the state before each step, when asked (states)
  Matrix cost;                       // [horizon x episodes]
  Matrix logp_disc, logp_cont;       // [horizon x episodes]: log pi(d | o), log pi(u | o, d) when sampled
  Matrix value;                      // [horizon x episodes]: V(o_t) in cost units, if asked
  Vector total;                      // [episodes]: sum over the counted periods of discount^t cost_t

  // Step t's observations as [episodes x obs] (column-major: one column per element).
  Eigen::Map<const Matrix> obs_at(std::int64_t t, int obs_size) const {
    return {obs.data() + t * obs_size * episodes, episodes, obs_size};
  }
};

}  // namespace hpo::runtime
