// mlp.cpp: the tanh MLP's layout, initialization, and its passes on the lane kernels; weights are
// [out x in] column-major then a bias, per layer, then the linear path's [out x in] if any.
#include "runtime/mlp.hpp"

#include <cmath>

#include "runtime/random.hpp"

namespace hpo::runtime {

template <class S>
void MlpWeights<S>::load(const Mlp& net, std::span<const double> params) {
  const int layers = net.layers();
  if (forward_.size() != static_cast<std::size_t>(layers)) {
    forward_.clear(), backward_.clear(), bias_.clear();
    std::size_t size = 0;
    for (int l = 0; l < layers; ++l) {
      const int in = net.layer_inputs(l), out = net.layer_outputs(l);
      forward_.push_back(size);
      size += static_cast<std::size_t>(in) * padded_columns(out);
      backward_.push_back(size);
      size += static_cast<std::size_t>(out) * padded_columns(in);
      bias_.push_back(size);
      size += static_cast<std::size_t>(out);
    }
    if (net.linear_skip()) {
      skip_forward_ = size;
      size += static_cast<std::size_t>(net.inputs()) * padded_columns(net.outputs());
      skip_backward_ = size;
      size += static_cast<std::size_t>(net.outputs()) * padded_columns(net.inputs());
    }
    data_.assign(size, S(0));  // the padding columns stay zero
  }
  // W [out x in] column-major as W^T [in x padded out] and W [out x padded in], both row-major.
  auto copy_matrix = [&](const double* w, int in, int out, std::size_t forward, std::size_t backward) {
    const int ld_forward = padded_columns(out), ld_backward = padded_columns(in);
    for (int k = 0; k < in; ++k)
      for (int o = 0; o < out; ++o) {
        const S value = static_cast<S>(w[k * out + o]);
        data_[forward + k * ld_forward + o] = value;
        data_[backward + o * ld_backward + k] = value;
      }
  };
  for (int l = 0; l < layers; ++l) {
    const int in = net.layer_inputs(l), out = net.layer_outputs(l);
    const double* w = params.data() + net.layer_offset(l);
    copy_matrix(w, in, out, forward_[l], backward_[l]);
    for (int o = 0; o < out; ++o) data_[bias_[l] + o] = static_cast<S>(w[in * out + o]);
  }
  if (net.linear_skip())
    copy_matrix(params.data() + net.skip_offset(), net.inputs(), net.outputs(), skip_forward_, skip_backward_);
}

Mlp::Mlp(int inputs, const std::vector<int>& hidden, int outputs, bool linear_skip) : linear_skip_(linear_skip) {
  sizes_.push_back(inputs);
  for (int h : hidden) sizes_.push_back(h);
  sizes_.push_back(outputs);
  int width = 0;
  for (std::size_t l = 0; l + 1 < sizes_.size(); ++l) {
    offsets_.push_back(parameter_count_);
    parameter_count_ += static_cast<std::size_t>(sizes_[l + 1]) * (sizes_[l] + 1);
    activation_offsets_.push_back(width);
    width += sizes_[l + 1];
  }
  activation_offsets_.push_back(width);
  skip_offset_ = parameter_count_;
  if (linear_skip_) parameter_count_ += static_cast<std::size_t>(inputs) * outputs;
}

void Mlp::initialize(std::span<double> params, std::uint64_t seed, double output_gain) const {
  std::uint64_t words[4];
  Xoshiro::seed(words, seed, 0x4D4C50);
  Xoshiro rng(words);
  for (int l = 0; l < layers(); ++l) {
    const int in = sizes_[l], out = sizes_[l + 1];
    const bool last = l + 1 == layers();
    // tanh layers keep unit variance with gain ~ sqrt(2) (the orthogonal-init convention).
    const double scale = (last ? output_gain : std::sqrt(2.0)) / std::sqrt(static_cast<double>(in));
    double* w = params.data() + offsets_[l];
    for (int i = 0; i < in * out; ++i) w[i] = scale * standard_normal(rng);
    for (int i = 0; i < out; ++i) w[in * out + i] = 0.0;
  }
  std::fill(params.begin() + skip_offset_, params.begin() + parameter_count_, 0.0);
}

template <class S>
void Mlp::forward(const MlpWeights<S>& w, std::int64_t rows, const S* input, std::int64_t ld_input, S* activations,
                  std::int64_t ld) const {
  const S* x = input;
  std::int64_t ld_x = ld_input;
  for (int l = 0; l < layers(); ++l) {
    S* y = activations + static_cast<std::int64_t>(activation_offsets_[l]) * ld;
    const int out = sizes_[l + 1];
    lane_gemm<S>(rows, sizes_[l], out, x, ld_x, w.forward_matrix(l), padded_columns(out), w.bias(l), y, ld,
                 l + 1 == layers() ? Epilogue::Linear : Epilogue::Tanh);
    x = y;
    ld_x = ld;
  }
  if (linear_skip_)
    lane_gemm<S>(rows, inputs(), outputs(), input, ld_input, w.skip_forward_matrix(), padded_columns(outputs()),
                 nullptr, output(activations, ld, *this), ld, Epilogue::Accumulate);
}

template <class S>
void Mlp::backward(const MlpWeights<S>& w, std::int64_t rows, const S* activations, std::int64_t ld, S* deltas,
                   S* input_grad, std::int64_t ld_input_grad, int input_columns) const {
  for (int l = layers() - 1; l >= 0; --l) {
    const S* delta = deltas + static_cast<std::int64_t>(activation_offsets_[l]) * ld;
    const int in = sizes_[l], out = sizes_[l + 1];
    if (l > 0) {
      // dL/d(pre-activation of layer l-1) = (delta W) * (1 - h^2), h that layer's tanh output.
      const std::int64_t below = static_cast<std::int64_t>(activation_offsets_[l - 1]) * ld;
      lane_gemm<S>(rows, out, in, delta, ld, w.backward_matrix(l), padded_columns(in), nullptr, deltas + below, ld,
                   Epilogue::TanhDerivative, activations + below, ld);
    } else if (input_grad) {
      lane_gemm<S>(rows, out, input_columns < 0 ? in : std::min(in, input_columns), delta, ld, w.backward_matrix(l),
                   padded_columns(in), nullptr, input_grad, ld_input_grad, Epilogue::Linear);
    }
  }
  if (linear_skip_ && input_grad) {
    const int in = inputs();
    lane_gemm<S>(rows, outputs(), input_columns < 0 ? in : std::min(in, input_columns), output(deltas, ld, *this), ld,
                 w.skip_backward_matrix(), padded_columns(in), nullptr, input_grad, ld_input_grad, Epilogue::Accumulate);
  }
}

template <class S>
void Mlp::accumulate_block_gradient(std::int64_t begin, std::int64_t end, const S* input, std::int64_t ld_input,
                                    const S* activations, const S* deltas, std::int64_t ld, S* scratch,
                                    S* grad) const {
  const std::int64_t rows = end - begin;
  // One product's weight gradient; vectors run along the wider side, so that few lanes idle.
  auto product = [&](int in, int out, const S* x, std::int64_t ldx, const S* delta, S* g, bool with_bias) {
    if (out >= in) {
      const std::int64_t ld_rows = padded_rows<S>(out);
      transpose_panel<S>(rows, out, delta, ld, scratch, ld_rows);
      block_weight_gradient<S>(rows, in, out, SampleMajor::Deltas, scratch, ld_rows, x, ldx, g, with_bias);
    } else {
      const std::int64_t ld_rows = padded_rows<S>(in);
      transpose_panel<S>(rows, in, x, ldx, scratch, ld_rows);
      block_weight_gradient<S>(rows, in, out, SampleMajor::Inputs, delta, ld, scratch, ld_rows, g, with_bias);
    }
  };
  for (int l = 0; l < layers(); ++l) {
    const S* delta = deltas + static_cast<std::int64_t>(activation_offsets_[l]) * ld + begin;
    const S* x = l == 0 ? input + begin : activations + static_cast<std::int64_t>(activation_offsets_[l - 1]) * ld + begin;
    product(sizes_[l], sizes_[l + 1], x, l == 0 ? ld_input : ld, delta, grad + offsets_[l], true);
  }
  if (linear_skip_)
    product(inputs(), outputs(), input + begin, ld_input, output(deltas, ld, *this) + begin, grad + skip_offset_, false);
}

#define HPO_MLP_INSTANTIATE(S)                                                                                    \
  template class MlpWeights<S>;                                                                                   \
  template void Mlp::forward<S>(const MlpWeights<S>&, std::int64_t, const S*, std::int64_t, S*, std::int64_t) const; \
  template void Mlp::backward<S>(const MlpWeights<S>&, std::int64_t, const S*, std::int64_t, S*, S*, std::int64_t,   \
                                 int) const;                                                                                                      \
  template void Mlp::accumulate_block_gradient<S>(std::int64_t, std::int64_t, const S*, std::int64_t, const S*,      \
                                                  const S*, std::int64_t, S*, S*) const;
HPO_MLP_INSTANTIATE(float)
HPO_MLP_INSTANTIATE(double)
#undef HPO_MLP_INSTANTIATE

}  // namespace hpo::runtime
