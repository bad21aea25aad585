// policy.hpp: the policy networks for a compiled model: a factorized categorical head per discrete
// action, a continuous head that sees the observation and the sampled choices (deterministic or a
// reparameterized Gaussian, squashed into the action's bounds), a value network for baselines and
// the observation normalizer they share.
#pragma once

#include <string>

#include "hpo/hpo.hpp"
#include "runtime/mlp.hpp"

namespace hpo::runtime {

enum class ContinuousHead { Deterministic, Gaussian };

struct PolicyConfig {
  std::vector<int> hidden = {64, 64};
  ContinuousHead continuous = ContinuousHead::Deterministic;
  double init_log_std = 0.0;  // Gaussian head: the initial log standard deviation of every component
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
  void merge(const Matrix& obs);  // rows are observations
  Matrix apply(const Matrix& obs) const;
  // dL/dobs from dL/dz (zero where z was clipped).
  Matrix backward(const Matrix& obs, const Matrix& z_grad) const;
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

  // The continuous head's input: the normalized observation and the one-hot discrete choices.
  Matrix cont_input(const Matrix& z, const Matrix& one_hot) const;
  // The value net's input: the normalized observation and the fraction of the horizon elapsed.
  Matrix value_input(const Matrix& z, double time_fraction) const;

 private:
  ActionSpace space_;
  PolicyConfig config_;
  Mlp disc_net_, cont_net_, value_net_;
};

// Per component j, log-softmax over its logit columns.
Matrix log_softmax(const ActionSpace& space, const Matrix& logits);
// One-hot rows of the choices d ([disc x batch], structure of arrays).
Matrix one_hot(const ActionSpace& space, std::span<const std::int32_t> disc, std::int64_t batch);

// Squashing a raw continuous output into its bounds: a + (b-a) sigmoid(r) on [a,b], a + softplus(r)
// on [a,inf), b - softplus(-r) on (-inf,b], r when unbounded.
double squash(double raw, double lower, double upper);
double squash_derivative(double raw, double lower, double upper);

}  // namespace hpo::runtime
