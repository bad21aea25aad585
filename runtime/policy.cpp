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

void Normalizer::merge(const Matrix& obs) {
  if (obs.rows() == 0) return;
  // Chan et al.'s parallel update of mean and variance.
  const double n = static_cast<double>(obs.rows());
  Vector batch_mean = obs.colwise().mean().transpose();
  Vector batch_var = (obs.rowwise() - batch_mean.transpose()).array().square().colwise().sum().transpose() / n;
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

Matrix Normalizer::apply(const Matrix& obs) const {
  Vector inv_std = (var.array() + 1e-8).rsqrt();
  Matrix z = (obs.rowwise() - mean.transpose()) * inv_std.asDiagonal();
  return z.cwiseMax(-kClip).cwiseMin(kClip);
}

Matrix Normalizer::backward(const Matrix& obs, const Matrix& z_grad) const {
  Vector inv_std = (var.array() + 1e-8).rsqrt();
  Matrix raw = (obs.rowwise() - mean.transpose()) * inv_std.asDiagonal();
  Matrix inside = (raw.array().abs() < kClip).cast<double>();
  return (z_grad.array() * inside.array()).matrix() * inv_std.asDiagonal();
}

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

Matrix Policy::cont_input(const Matrix& z, const Matrix& one_hot) const {
  Matrix x(z.rows(), z.cols() + one_hot.cols());
  x << z, one_hot;
  return x;
}

Matrix Policy::value_input(const Matrix& z, double time_fraction) const {
  Matrix x(z.rows(), z.cols() + 1);
  x << z, Matrix::Constant(z.rows(), 1, time_fraction);
  return x;
}

Matrix log_softmax(const ActionSpace& space, const Matrix& logits) {
  Matrix out(logits.rows(), logits.cols());
  int column = 0;
  for (int n : space.choices) {
    auto block = logits.middleCols(column, n);
    Vector top = block.rowwise().maxCoeff();
    Matrix shifted = block.colwise() - top;
    Vector log_sum = shifted.array().exp().rowwise().sum().log();
    out.middleCols(column, n) = shifted.colwise() - log_sum;
    column += n;
  }
  return out;
}

Matrix one_hot(const ActionSpace& space, std::span<const std::int32_t> disc, std::int64_t batch) {
  Matrix out = Matrix::Zero(batch, space.logits());
  int column = 0;
  for (std::size_t j = 0; j < space.choices.size(); ++j) {
    for (std::int64_t b = 0; b < batch; ++b) out(b, column + disc[j * batch + b]) = 1.0;
    column += space.choices[j];
  }
  return out;
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
