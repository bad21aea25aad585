// policy.cpp: the policy's networks, the observation normalizer and the action squashing.
#include "runtime/policy.hpp"

#include <cmath>

namespace hpo::runtime {

int ActionSpace::logits() const {
  int n = 0;
  for (int c : choices) n += c;
  return n;
}

ActionSpace ActionSpace::of(const Model& model) {
  ActionSpace s;
  s.obs = static_cast<int>(model.num_obs());
  for (auto c : model.disc_choices()) s.choices.push_back(static_cast<int>(c));
  s.lower = model.cont_lower();
  s.upper = model.cont_upper();
  return s;
}

void Normalizer::reset(int size) {
  mean = Vector::Zero(size);
  var = Vector::Ones(size);
  count = 0;
}

void Normalizer::merge(const Eigen::Ref<const Matrix>& obs) {
  if (obs.rows() == 0) return;
  // Chan et al.'s parallel update of mean and variance, with plain sums in row order.
  const double n = static_cast<double>(obs.rows());
  Vector batch_mean(obs.cols()), batch_var(obs.cols());
  for (Eigen::Index j = 0; j < obs.cols(); ++j) {
    double sum = 0;
    for (Eigen::Index r = 0; r < obs.rows(); ++r) sum += obs(r, j);
    const double m = sum / n;
    double sq = 0;
    for (Eigen::Index r = 0; r < obs.rows(); ++r) sq += (obs(r, j) - m) * (obs(r, j) - m);
    batch_mean[j] = m;
    batch_var[j] = sq / n;
  }
  const double total = count + n;
  Vector delta = batch_mean - mean;
  if (count == 0) {
    mean = batch_mean;
    var = batch_var;
  } else {
    mean += delta * (n / total);
    var = (var * count + batch_var * n + delta.array().square().matrix() * (count * n / total)) / total;
  }
  count = total;
}

Vector Normalizer::inv_std() const { return (var.array() + 1e-8).rsqrt(); }

Policy::Policy(const ActionSpace& space, const PolicyConfig& config, std::uint64_t seed)
    : space_(space), config_(config) {
  if (has_disc()) disc_net_ = Mlp(space.obs, config.hidden, space.logits());
  if (has_cont()) cont_net_ = Mlp(space.obs + space.logits(), config.hidden, space.cont());
  value_net_ = Mlp(space.obs + 1, config.hidden, 1);
  params.assign(disc_net_.parameter_count() + cont_net_.parameter_count() + (gaussian() ? space.cont() : 0), 0.0);
  // A fresh discrete head is near uniform; a fresh continuous head starts mid-range with room to move.
  if (has_disc()) disc_net_.initialize(std::span<double>(params).subspan(0, disc_net_.parameter_count()), seed, 0.01);
  if (has_cont())
    cont_net_.initialize(std::span<double>(params).subspan(disc_net_.parameter_count(), cont_net_.parameter_count()),
                         seed + 1, 0.1);
  for (double& s : log_std_grad(params)) s = config.init_log_std;
  value_params.assign(value_net_.parameter_count(), 0.0);
  value_net_.initialize(value_params, seed + 2, 1.0);
  normalizer.reset(space.obs);
}

std::vector<Policy::Group> Policy::groups() const {
  std::vector<Group> g;
  if (has_disc()) g.push_back({"discrete", 0, disc_net_.parameter_count()});
  if (has_cont())
    g.push_back({"continuous", disc_net_.parameter_count(), cont_net_.parameter_count() + log_std().size()});
  return g;
}

static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x)); }
static double softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }

double squash(double raw, double lower, double upper) {
  const bool has_lower = std::isfinite(lower), has_upper = std::isfinite(upper);
  if (has_lower && has_upper) return lower + (upper - lower) * sigmoid(raw);
  if (has_lower) return lower + softplus(raw);
  if (has_upper) return upper - softplus(-raw);
  return raw;
}

double squash_derivative(double raw, double lower, double upper) {
  const bool has_lower = std::isfinite(lower), has_upper = std::isfinite(upper);
  if (has_lower && has_upper) {
    double s = sigmoid(raw);
    return (upper - lower) * s * (1 - s);
  }
  if (has_lower) return sigmoid(raw);
  if (has_upper) return sigmoid(-raw);
  return 1.0;
}

}  // namespace hpo::runtime
