// dense.hpp: the dense-layer kernels of the policy networks, with samples as SIMD lanes. Every
// sample's outputs are a fixed sequence of operations on that sample's inputs, whatever the number
// of samples or where they sit, and a weight gradient sums a block of samples in a fixed order:
// blocks can be shared among threads any way without changing a bit of the result.
#pragma once

#include <cstdint>

#include "runtime/simd.hpp"

namespace hpo::runtime {

// Samples per SIMD vector; a panel's leading dimension is a multiple of it.
template <class S>
inline constexpr std::int64_t kLanes = simd::kLanes<S>;
template <class S>
inline std::int64_t padded_rows(std::int64_t rows) {
  return (rows + kLanes<S> - 1) / kLanes<S> * kLanes<S>;
}

// Columns of a row-major right-hand side are read in groups of kGemmColumns: a weight copy pads its
// rows (leading dimension) to a multiple of it, with zeros.
inline constexpr int kGemmColumns = 6;
inline int padded_columns(int n) { return (n + kGemmColumns - 1) / kGemmColumns * kGemmColumns; }

enum class Epilogue {
  Linear,          // C = sum + bias
  Tanh,            // C = tanh(sum + bias)
  TanhDerivative,  // C = sum * (1 - act^2), act the tanh layer's output: backprop into that layer
  Accumulate,      // C = C + sum + bias: a second product added to an output already written
};

// C[r, j] = epilogue(sum_k A[r, k] B[k, j]) for rows r < rows, j < n; the sum runs k = 0, 1, ...
// A and C are column-major with leading dimensions lda, ldc (multiples of the lane count, rows
// up to the padded count are read and written); B is row-major [k x ldb] with ldb = padded_columns(n)
// and zeros past n. bias has n entries or is null; act is column-major like C (TanhDerivative).
template <class S>
void lane_gemm(std::int64_t rows, int k, int n, const S* a, std::int64_t lda, const S* b, std::int64_t ldb,
               const S* bias, S* c, std::int64_t ldc, Epilogue epilogue, const S* act = nullptr,
               std::int64_t ld_act = 0);

// Rows [0, padded_rows(rows)) of a column-major panel (samples contiguous) copied sample-major:
// dst[r * ld_dst + c] = src[c * ld_src + r] for c < cols, zero for c in [cols, ld_dst); ld_dst is
// a multiple of the lane count at least cols. Whole lane groups are moved in registers.
template <class S>
void transpose_panel(std::int64_t rows, int cols, const S* src, std::int64_t ld_src, S* dst, std::int64_t ld_dst);

// Which operand of block_weight_gradient comes sample-major; the other is column-major.
enum class SampleMajor {
  Deltas,  // vectors along the outputs: for layers with at least as many outputs as inputs
  Inputs,  // vectors along the inputs: for layers that narrow, like a network's output layer
};

// G[o, k] += sum over r = 0, 1, ..., rows - 1 of delta[r, o] x[r, k], for all o < out and k <= in
// (k = in is the bias, x = 1); the operand `which` sample-major as transpose_panel writes it (its
// leading dimension a multiple of the lane count), the other column-major; G column-major
// [out x (in + 1)], or [out x in] without the bias column when with_bias is false. Each sum runs over
// the rows in a fixed order: a block of rows gives the same bits whichever thread handles it and
// wherever its rows sit.
template <class S>
void block_weight_gradient(std::int64_t rows, int in, int out, SampleMajor which, const S* delta,
                           std::int64_t ld_delta, const S* x, std::int64_t ldx, S* g, bool with_bias = true);

}  // namespace hpo::runtime
