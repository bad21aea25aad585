// policy.hpp: the policy networks for a compiled model: a factorized categorical head per discrete
// action, a continuous head whose outputs depend on the sampled choices (deterministic or a
// reparameterized Gaussian, squashed into the action's bounds), a value network for baselines and
// the observation normalizer they share.
#pragma once

#include <string>

#include <Eigen/Dense>

#include "hpo/hpo.hpp"
#include "runtime/mlp.hpp"

namespace hpo::runtime {

// Batch-level arrays of the runtime: rows are samples (episodes or steps), in double.
using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;
using Vector = Eigen::VectorXd;

enum class ContinuousHead { Deterministic, Gaussian };

// How the continuous head learns of the discrete choices. PerOption (the paper's): it sees the
// observation only and has one output per (continuous component, discrete option); the chosen
// options select which reach the simulator, so each regime gets its own outputs and gradient
// reaches only the taken one's. With several discrete components a continuous component is the sum
// of the outputs of each component's chosen option. ChoiceInput: one output per continuous
// component, the one-hot choices fed in beside the observation.
enum class ChoiceConditioning { PerOption, ChoiceInput };

struct PolicyConfig {
  std::vector<int> hidden = {64, 64};
  ContinuousHead continuous = ContinuousHead::Deterministic;
  ChoiceConditioning conditioning = ChoiceConditioning::PerOption;
  double init_log_std = 0.0;  // Gaussian head: the initial log standard deviation of every component
  bool linear_skip = true;    // every network also maps its inputs linearly to its outputs
};

// What a policy must know of its model; kept so a policy outlives nothing it points to.
struct ActionSpace {
  int obs = 0;
  std::vector<int> choices;  // per discrete component
  std::vector<double> lower, upper;
  int logits() const;        // sum of choices
  int disc() const { return static_cast<int>(choices.size()); }
  int cont() const { return static_cast<int>(lower.size()); }
  static ActionSpace of(const Model& model);
};

// Observations are standardized with running statistics, frozen while one gradient is computed.
struct Normalizer {
  Vector mean, var;
  double count = 0;
  static constexpr double kClip = 10.0;
  void reset(int size);
  // Rows are observations. Sums run over rows in a fixed order, so the statistics depend only on the batch.
  void merge(const Eigen::Ref<const Matrix>& obs);
  // z = clip((obs - mean) / sqrt(var + 1e-8), -kClip, kClip) = (obs - mean) * inv_std; dz/dobs = inv_std
  // where not clipped.
  Vector inv_std() const;
};

class Policy {
 public:
  Policy() = default;
  Policy(const ActionSpace& space, const PolicyConfig& config, std::uint64_t seed);

  const ActionSpace& space() const { return space_; }
  const PolicyConfig& config() const { return config_; }
  bool has_disc() const { return space_.disc() > 0; }
  bool has_cont() const { return space_.cont() > 0; }
  bool gaussian() const { return has_cont() && config_.continuous == ContinuousHead::Gaussian; }
  // Whether the continuous head has one output per (continuous component, option).
  bool per_option() const {
    return has_cont() && has_disc() && config_.conditioning == ChoiceConditioning::PerOption;
  }

  // The trainable parameters, one flat array in groups: discrete net, continuous net, log std.
  std::vector<double> params;
  std::vector<double> value_params;  // the value network, trained by its own optimizer
  Normalizer normalizer;
  double value_scale = 1.0;  // the value net predicts cost-to-go / value_scale

  struct Group {
    std::string name;
    std::size_t offset, size;
  };
  std::vector<Group> groups() const;
  std::span<const double> disc_params() const { return {params.data(), disc_net_.parameter_count()}; }
  std::span<const double> cont_params() const {
    return {params.data() + disc_net_.parameter_count(), cont_net_.parameter_count()};
  }
  std::span<const double> log_std() const {
    return {params.data() + disc_net_.parameter_count() + cont_net_.parameter_count(),
            gaussian() ? static_cast<std::size_t>(space_.cont()) : 0};
  }
  std::span<double> disc_grad(std::span<double> grad) const { return grad.subspan(0, disc_net_.parameter_count()); }
  std::span<double> cont_grad(std::span<double> grad) const {
    return grad.subspan(disc_net_.parameter_count(), cont_net_.parameter_count());
  }
  std::span<double> log_std_grad(std::span<double> grad) const {
    return grad.subspan(disc_net_.parameter_count() + cont_net_.parameter_count(), log_std().size());
  }

  const Mlp& disc_net() const { return disc_net_; }
  const Mlp& cont_net() const { return cont_net_; }
  const Mlp& value_net() const { return value_net_; }

  // The discrete head sees the normalized observation; the continuous head the normalized
  // observation, and the one-hot discrete choices unless per_option(); the value net the normalized
  // observation and the fraction of the horizon elapsed. With per_option(), output row i * logits + c
  // belongs to continuous component i and option column c.

 private:
  ActionSpace space_;
  PolicyConfig config_;
  Mlp disc_net_, cont_net_, value_net_;
};

// Squashing raw continuous outputs into their bounds: a + (b-a) sigmoid(r) on [a,b], a + softplus(r)
// on [a,inf), b - softplus(-r) on (-inf,b], r when unbounded; out[i] = squash(raw[i]), or its
// derivative. Vectorized, every element through the same code whatever its position.
void squash(std::span<const double> raw, double lower, double upper, std::span<double> out);
void squash_derivative(std::span<const double> raw, double lower, double upper, std::span<double> out);

}  // namespace hpo::runtime
