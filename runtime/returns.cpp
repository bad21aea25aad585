// returns.cpp: costs-to-go, baselines, GAE and standardization for the estimators.
#include "runtime/returns.hpp"

#include <cmath>

namespace hpo::runtime {

Matrix costs_to_go(const Matrix& cost, double discount) {
  Matrix g(cost.rows(), cost.cols());
  for (Eigen::Index e = 0; e < cost.cols(); ++e) {  // an episode's column is contiguous
    double next = 0;
    for (Eigen::Index t = cost.rows(); t-- > 0;) g(t, e) = next = cost(t, e) + discount * next;
  }
  return g;
}

Matrix leave_one_out_baseline(const Matrix& g) {
  const Eigen::VectorXd sum = g.rowwise().sum();
  return ((-g).colwise() + sum) / double(std::max<Eigen::Index>(g.cols() - 1, 1));
}

Advantages gae(const Matrix& cost, const Matrix& value, double gamma, double lambda) {
  Advantages a;
  a.advantage.resize(cost.rows(), cost.cols());
  for (Eigen::Index e = 0; e < cost.cols(); ++e) {
    double running = 0, next_value = 0;
    for (Eigen::Index t = cost.rows(); t-- > 0;) {
      const double delta = cost(t, e) + gamma * next_value - value(t, e);
      a.advantage(t, e) = running = delta + gamma * lambda * running;
      next_value = value(t, e);
    }
  }
  a.target = a.advantage + value;
  return a;
}

double standard_deviation(const Matrix& x) {
  const double mean = x.mean();
  return std::sqrt((x.array() - mean).square().mean());
}

Matrix standardized(const Matrix& x) {
  const double mean = x.mean();
  return (x.array() - mean) / (standard_deviation(x) + 1e-8);
}

Matrix discounted(Matrix w, double discount) {
  Eigen::VectorXd powers(w.rows());
  for (Eigen::Index t = 0; t < w.rows(); ++t) powers[t] = std::pow(discount, double(t));
  w.array().colwise() *= powers.array();  // column by column: rows of a column-major matrix are strided
  return w;
}

}  // namespace hpo::runtime
