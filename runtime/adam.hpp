// adam.hpp: the Adam optimizer with per-group gradient-norm clipping and learning-rate schedules.
#pragma once

#include <cmath>
#include <span>
#include <vector>

#include "hpo/train.hpp"

namespace hpo::runtime {

class Adam {
 public:
  explicit Adam(std::size_t size, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-5)
      : m_(size, 0.0), v_(size, 0.0), beta1_(beta1), beta2_(beta2), eps_(eps) {}

  void step(std::span<double> params, std::span<const double> grad, double lr) {
    ++t_;
    const double c1 = 1.0 - std::pow(beta1_, double(t_)), c2 = 1.0 - std::pow(beta2_, double(t_));
    for (std::size_t i = 0; i < params.size(); ++i) {
      m_[i] = beta1_ * m_[i] + (1 - beta1_) * grad[i];
      v_[i] = beta2_ * v_[i] + (1 - beta2_) * grad[i] * grad[i];
      params[i] -= lr * (m_[i] / c1) / (std::sqrt(v_[i] / c2) + eps_);
    }
  }

 private:
  std::vector<double> m_, v_;
  double beta1_, beta2_, eps_;
  long t_ = 0;
};

// Scales grad[offset, offset + size) to norm at most max_norm; returns the norm before.
inline double clip_norm(std::span<double> grad, double max_norm) {
  double sq = 0;
  for (double g : grad) sq += g * g;
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm)
    for (double& g : grad) g *= max_norm / norm;
  return norm;
}

// The learning rate at `progress` in [0, 1] of training.
inline double scheduled(double lr, Schedule schedule, double progress) {
  switch (schedule) {
    case Schedule::Constant: return lr;
    case Schedule::Linear: return lr * (1.0 - progress);
    case Schedule::Cosine: return lr * 0.5 * (1.0 + std::cos(3.141592653589793 * progress));
  }
  return lr;
}

}  // namespace hpo::runtime
