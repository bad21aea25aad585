// engine.hpp: runs a policy's rollouts and gradients on a persistent thread pool, in the precision
// the policy networks are trained in. Each thread takes one contiguous share of the episodes (or
// samples) and handles it as one block per step; weight gradients are cut by parameters, not by
// samples, so no result depends on the number of threads.
#pragma once

#include <memory>

#include "hpo/train.hpp"
#include "runtime/estimators.hpp"

namespace hpo::runtime {

class Engine {
 public:
  Engine(Precision precision, int threads);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Precision precision() const;
  int threads() const;
  TimeSplit time_split() const;
  void reset_time_split();

  // Rolls out `episodes` episodes into batch; throws NonFiniteError when the model or the policy
  // produces NaN or infinity.
  void rollout(const RolloutSpec& spec, std::int64_t episodes, Batch& batch);
  // The episodes' totals sum_t discount^t cost_t (no trajectory kept).
  Vector rollout_totals(RolloutSpec spec, std::int64_t episodes);

  // The gradient of
  //   sum_b [ cost_weight sum_t (discount^t c_t - entropy_coef H_t) + sum_t log pi(d_t | o_t) sf_weight(t, b) ]
  // through the whole trajectory of the last rollout(spec, ...), which must have been recorded: policy,
  // observe and step adjoints, states included. With groups = 2, grads[0] and grads[1] get the
  // first and second half of the episodes; they are added to (grads[g] has the policy's size).
  void trajectory_gradient(const RolloutSpec& spec, const Batch& batch, const BackwardSpec& backward,
                           const Matrix& sf_weight, std::span<std::vector<double>> grads);

  // Adds the gradient of the mean over `rows` of max(r A, clip(r) A) - entropy + value loss, with
  // r = pi(d, u | o) / pi_old, to policy_grad and value_grad (which may be empty without spec.value).
  SurrogateStats surrogate_gradient(const Policy& policy, const Samples& samples, std::span<const std::int64_t> rows,
                                    const SurrogateSpec& spec, std::span<double> policy_grad,
                                    std::span<double> value_grad);

  // For one observation: the log-probabilities of every choice (concatenated per component) and
  // the continuous head's output for the given choices (the mean for a Gaussian head), squashed.
  void act(const Policy& policy, std::span<const double> obs, std::span<const std::int32_t> disc,
           std::span<double> log_probs, std::span<double> cont);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hpo::runtime
