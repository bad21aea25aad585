// mlp.hpp: tanh multilayer perceptrons on Eigen with hand-written backprop, their weights a view
// into one flat parameter vector so an optimizer and a checkpoint see a single array.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <span>
#include <vector>

namespace hpo::runtime {

// Rows are samples: a batch of inputs is a [batch x inputs] matrix, the same memory as the
// environment's structure-of-arrays [inputs x batch].
using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;
using Vector = Eigen::VectorXd;

class Mlp {
 public:
  Mlp() = default;
  // inputs -> hidden... (tanh) -> outputs (linear).
  Mlp(int inputs, const std::vector<int>& hidden, int outputs);

  int inputs() const { return sizes_.front(); }
  int outputs() const { return sizes_.back(); }
  std::size_t parameter_count() const { return parameter_count_; }

  // Orthogonal-like init: Gaussian weights scaled by gain/sqrt(fan_in); the last layer by
  // output_gain, so that a fresh policy is near uniform and a fresh value near zero.
  void initialize(std::span<double> params, std::uint64_t seed, double output_gain) const;

  // The activations of every layer, kept for backward.
  struct Tape {
    std::vector<Matrix> activations;  // [0] the input, then each hidden layer after tanh
    Matrix output;
  };
  void forward(std::span<const double> params, const Matrix& input, Tape& tape) const;
  // Adds dL/dparams to grad; returns dL/dinput when wanted (input_grad not null).
  void backward(std::span<const double> params, const Tape& tape, const Matrix& output_grad, std::span<double> grad,
                Matrix* input_grad) const;

 private:
  std::vector<int> sizes_;
  std::vector<std::size_t> offsets_;  // per layer, where its weights start (bias follows)
  std::size_t parameter_count_ = 0;
};

}  // namespace hpo::runtime
