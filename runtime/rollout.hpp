// rollout.hpp: batched rollouts of a policy through the JIT'd batched kernels, split into fixed
// chunks of samples (so threads change nothing), keeping what the estimators' backward passes need.
#pragma once

#include <memory>
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
  bool record = true;             // keep the environment's trajectory for a backward pass
  bool values = false;            // evaluate the value network at every step
};

// One chunk of samples [first, first + size) of a batch, after a rollout.
struct Chunk {
  std::int64_t first = 0, size = 0;
  std::unique_ptr<BatchEnv> env;
  std::vector<Matrix> obs;                       // per step: [size x obs], before normalization
  std::vector<std::vector<std::int32_t>> disc;   // per step: [disc x size]
  std::vector<Matrix> raw;                       // per step: [size x cont], before squashing
  std::vector<Matrix> noise;                     // per step: Gaussian eps [size x cont] or Gumbel [size x logits]
  Matrix cost;                                   // [horizon x size]
  Matrix logp_disc, logp_cont;                   // [horizon x size]: log pi(d | o), log pi(u | o, d) when sampled
  Matrix value;                                  // [horizon x size]: V(o_t) in cost units, if asked
  Vector total;                                  // [size]: sum_t discount^t cost_t
};

constexpr std::int64_t kChunkSize = 16;

std::vector<Chunk> make_chunks(std::int64_t batch);
// Fills one chunk; throws NonFiniteError when the model or the policy produces NaN or infinity.
void rollout(const RolloutSpec& spec, Chunk& chunk);

// The mean and the per-episode totals of a batch rolled out on several threads.
Vector rollout_totals(const RolloutSpec& spec, std::int64_t episodes, int threads);

// log N(raw; mean, exp(log_std)) summed over components, per row.
Vector gaussian_log_prob(const Matrix& raw, const Matrix& mean, std::span<const double> log_std);

}  // namespace hpo::runtime
