// trainer_state.hpp: what Trainer and Checkpoint hold (shared by trainer.cpp and checkpoint.cpp).
#pragma once

#include "hpo/train.hpp"
#include "runtime/rollout.hpp"

namespace hpo {

struct Checkpoint::Impl {
  std::string model_path;    // absolute; empty when the model came from a string
  std::string model_source;  // the main file's text, to compile a string model again
  std::string source_hash;
  std::vector<std::string> stdlib_dirs;
  std::vector<std::string> sets;         // --set assignments, for consts that size the model
  bool reformulate = true;               // whether jumps were rewritten (generated gates are actions)
  std::vector<std::string> param_names;  // per element, as Model::param_names
  std::vector<double> param_values;
  TrainOptions options;
  std::int64_t iteration = 0;
  double dev_cost = NAN;
  runtime::Policy policy;
};

namespace runtime {
// The rollout settings for evaluating a policy (greedy or sampled) on a model.
RolloutSpec evaluation_spec(const Model& model, const Policy& policy, const TrainOptions& options, std::uint64_t seed);
Evaluation summarize(const Vector& totals);
void write_learning_curve_svg(const std::vector<IterationStats>& history, const std::string& title,
                              const std::string& path);
}  // namespace runtime

}  // namespace hpo
