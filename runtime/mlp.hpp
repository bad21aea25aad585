// mlp.hpp: tanh multilayer perceptrons, optionally with a linear path from inputs to outputs: their
// shape and parameter layout (one flat vector of doubles that the optimizer and checkpoints see), a
// copy of the weights in the precision the networks run in, and forward, backward and
// weight-gradient passes on the lane kernels of dense.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "runtime/dense.hpp"

namespace hpo::runtime {

class Mlp;

// An Mlp's weights in precision S, laid out for lane_gemm; reload after every change of the params.
template <class S>
class MlpWeights {
 public:
  void load(const Mlp& net, std::span<const double> params);
  const S* forward_matrix(int layer) const { return data_.data() + forward_[layer]; }    // W^T, [in x out]
  const S* backward_matrix(int layer) const { return data_.data() + backward_[layer]; }  // W, [out x in]
  const S* bias(int layer) const { return data_.data() + bias_[layer]; }
  // The linear path's matrices, laid out like a layer's (no bias); only for a net with one.
  const S* skip_forward_matrix() const { return data_.data() + skip_forward_; }
  const S* skip_backward_matrix() const { return data_.data() + skip_backward_; }

 private:
  std::vector<S> data_;
  std::vector<std::size_t> forward_, backward_, bias_;
  std::size_t skip_forward_ = 0, skip_backward_ = 0;
};

class Mlp {
 public:
  Mlp() = default;
  // inputs -> hidden... (tanh) -> outputs (linear). With linear_skip the outputs also get a linear
  // map of the inputs, W_skip x (no bias of its own): linear feedback, which many controllers are
  // (LQR's u = -K x, an order-up-to rule's q = S - x), is then exact and learned directly, instead of
  // being squeezed through the hidden layers (a [64, 64] net cannot carry 70 items' own feedbacks).
  Mlp(int inputs, const std::vector<int>& hidden, int outputs, bool linear_skip = false);

  bool empty() const { return sizes_.empty(); }
  int inputs() const { return sizes_.front(); }
  int outputs() const { return sizes_.back(); }
  int layers() const { return static_cast<int>(sizes_.size()) - 1; }
  int layer_inputs(int layer) const { return sizes_[layer]; }
  int layer_outputs(int layer) const { return sizes_[layer + 1]; }
  bool linear_skip() const { return linear_skip_; }
  std::size_t parameter_count() const { return parameter_count_; }
  // Floating-point operations of `rows` samples through the layers' products (2 per multiply-add),
  // without the first layer when asked: a backward pass that needs no input gradient skips it.
  double product_flops(std::int64_t rows, bool first_layer = true) const {
    double macs = 0;
    for (int l = first_layer ? 0 : 1; l < layers(); ++l) macs += double(sizes_[l]) * sizes_[l + 1];
    if (linear_skip_) macs += double(inputs()) * outputs();
    return 2.0 * macs * double(rows);
  }
  // Layer l's weights, column-major [out x in], then its bias: [out x (in + 1)] from here.
  std::size_t layer_offset(int layer) const { return offsets_[layer]; }
  // The linear path's weights, column-major [outputs x inputs], after every layer's.
  std::size_t skip_offset() const { return skip_offset_; }

  // Orthogonal-like init: Gaussian weights scaled by gain/sqrt(fan_in); the last layer by
  // output_gain, so that a fresh policy is near uniform and a fresh value near zero. The linear
  // path starts at zero: a fresh net computes what it would without one.
  void initialize(std::span<double> params, std::uint64_t seed, double output_gain) const;

  // The forward pass writes every layer's outputs (hidden ones after tanh) side by side into one
  // column-major block: layer l's from column activation_offset(l); the output last.
  int activation_offset(int layer) const { return activation_offsets_[layer]; }
  int activation_width() const { return activation_offsets_.back(); }
  template <class S>
  static S* output(S* activations, std::int64_t ld, const Mlp& net) {
    return activations + static_cast<std::int64_t>(net.activation_offset(net.layers() - 1)) * ld;
  }

  template <class S>
  void forward(const MlpWeights<S>& w, std::int64_t rows, const S* input, std::int64_t ld_input, S* activations,
               std::int64_t ld) const;
  // Backpropagates dL/doutput, found in `deltas` at the output's place, into every layer's
  // dL/d(pre-activation) (same block layout as the activations) and, when input_grad is not
  // null, into dL/dinput: its first input_columns columns (all of them when negative).
  template <class S>
  void backward(const MlpWeights<S>& w, std::int64_t rows, const S* activations, std::int64_t ld, S* deltas,
                S* input_grad, std::int64_t ld_input_grad, int input_columns = -1) const;
  // grad (the net's gradient in S) += the weight gradient of rows [begin, end) of a backward pass
  // (its input panel, activations and deltas), each sum over those rows in order: a fixed block of
  // rows gives the same bits on any thread. begin is a multiple of the lane count; scratch holds
  // block_scratch_size(end - begin) values.
  template <class S>
  void accumulate_block_gradient(std::int64_t begin, std::int64_t end, const S* input, std::int64_t ld_input,
                                 const S* activations, const S* deltas, std::int64_t ld, S* scratch, S* grad) const;
  template <class S>
  std::size_t block_scratch_size(std::int64_t rows) const {
    int widest = 0;
    for (int l = 0; l < layers(); ++l) widest = std::max(widest, std::max(sizes_[l], sizes_[l + 1]));
    return static_cast<std::size_t>(padded_rows<S>(rows) * padded_rows<S>(widest));
  }

 private:
  std::vector<int> sizes_;
  std::vector<std::size_t> offsets_;   // per layer, where its weights start (bias follows)
  std::vector<int> activation_offsets_;  // per layer, then the total width
  bool linear_skip_ = false;
  std::size_t skip_offset_ = 0;
  std::size_t parameter_count_ = 0;
};

}  // namespace hpo::runtime
