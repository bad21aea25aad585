// policy.cpp: the policy's networks, the observation normalizer and the action squashing.
#include "runtime/policy.hpp"

#include <algorithm>
#include <cmath>

#include "runtime/simd.hpp"

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

namespace {

// sum over r < n of f(x[r]), as eight partial sums (row r into sum r mod 8) added pairwise at the
// end: a fixed order, whatever the vector width, and one that vectorizes.
template <class F>
double interleaved_sum(const double* x, Eigen::Index n, F f) {
  constexpr int kParts = 8;
  double part[kParts] = {};
  Eigen::Index r = 0;
  for (; r + kParts <= n; r += kParts)
    for (int i = 0; i < kParts; ++i) part[i] += f(x[r + i]);
  for (int i = 0; r < n; ++r, ++i) part[i] += f(x[r]);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

}  // namespace

void Normalizer::merge(const Eigen::Ref<const Matrix>& obs) {
  if (obs.rows() == 0) return;
  // Chan et al.'s parallel update of mean and variance.
  const double n = static_cast<double>(obs.rows());
  Vector batch_mean(obs.cols()), batch_var(obs.cols());
  for (Eigen::Index j = 0; j < obs.cols(); ++j) {
    const double* column = obs.col(j).data();
    const double m = interleaved_sum(column, obs.rows(), [](double x) { return x; }) / n;
    batch_mean[j] = m;
    batch_var[j] = interleaved_sum(column, obs.rows(), [m](double x) { return (x - m) * (x - m); }) / n;
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
  const bool skip = config.linear_skip;
  if (has_disc()) disc_net_ = Mlp(space.obs, config.hidden, space.logits(), skip);
  if (has_cont())
    cont_net_ = per_option() ? Mlp(space.obs, config.hidden, space.cont() * space.logits(), skip)
                             : Mlp(space.obs + space.logits(), config.hidden, space.cont(), skip);
  value_net_ = Mlp(space.obs + 1, config.hidden, 1, skip);
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

namespace {

using V = simd::Vec<double>;
constexpr int kLanes = simd::kLanes<double>;

V sigmoid(V x) { return 1.0 / (1.0 + simd::exp<double>(-x)); }
// log(1 + e^x) = max(x, 0) + log(1 + e^-|x|), exact in both tails.
V softplus(V x) {
  const V negative_abs = x < 0 ? x : -x;
  V tail = simd::exp<double>(negative_abs);
  for (int i = 0; i < kLanes; ++i) tail[i] = std::log1p(tail[i]);
  return simd::max<double>(x, V{}) + tail;
}

// Applies f to raw in whole vectors, the tail through a zero-padded one.
template <class F>
void by_vectors(std::span<const double> raw, std::span<double> out, F f) {
  std::size_t i = 0;
  for (; i + kLanes <= raw.size(); i += kLanes) simd::store<double>(out.data() + i, f(simd::load<double>(raw.data() + i)));
  if (i == raw.size()) return;
  double tail[kLanes] = {};
  std::copy(raw.begin() + static_cast<std::ptrdiff_t>(i), raw.end(), tail);
  simd::store<double>(tail, f(simd::load<double>(tail)));
  std::copy(tail, tail + (raw.size() - i), out.begin() + static_cast<std::ptrdiff_t>(i));
}

}  // namespace

void squash(std::span<const double> raw, double lower, double upper, std::span<double> out) {
  const bool has_lower = std::isfinite(lower), has_upper = std::isfinite(upper);
  if (has_lower && has_upper) by_vectors(raw, out, [&](V r) { return lower + (upper - lower) * sigmoid(r); });
  else if (has_lower) by_vectors(raw, out, [&](V r) { return lower + softplus(r); });
  else if (has_upper) by_vectors(raw, out, [&](V r) { return upper - softplus(-r); });
  else std::copy(raw.begin(), raw.end(), out.begin());
}

void squash_derivative(std::span<const double> raw, double lower, double upper, std::span<double> out) {
  const bool has_lower = std::isfinite(lower), has_upper = std::isfinite(upper);
  if (has_lower && has_upper) by_vectors(raw, out, [&](V r) {
      const V s = sigmoid(r);
      return (upper - lower) * s * (1.0 - s);
    });
  else if (has_lower) by_vectors(raw, out, [](V r) { return sigmoid(r); });
  else if (has_upper) by_vectors(raw, out, [](V r) { return sigmoid(-r); });
  else std::fill(out.begin(), out.end(), 1.0);
}

}  // namespace hpo::runtime
