// dense.cpp: register-tiled kernels with samples as lanes: products with a fused bias, tanh or
// tanh-derivative epilogue, and weight gradients that keep each sum in a fixed order.
#include "runtime/dense.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace hpo::runtime {

namespace {

// Row vectors per tile: with 32 registers, 4 x 6 accumulators; with 16, 2 x 6.
constexpr int kTileVectors = simd::kRegisters >= 32 ? 4 : 2;

template <class S, int MR>
void gemm_tile(int k, const S* a, std::int64_t lda, const S* b, std::int64_t ldb, int n, int j0, const S* bias, S* c,
               std::int64_t ldc, Epilogue epilogue, const S* act, std::int64_t ld_act) {
  using V = simd::Vec<S>;
  constexpr int L = simd::kLanes<S>, NR = kGemmColumns;
  V acc[MR][NR];
  for (auto& row : acc)
    for (auto& v : row) v = V{};
  for (int kk = 0; kk < k; ++kk) {
    const S* ak = a + kk * lda;
    V x[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) x[r] = simd::load<S>(ak + r * L);
    const S* bk = b + kk * ldb + j0;
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const V w = simd::broadcast<S>(bk[j]);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) acc[r][j] += x[r] * w;
    }
  }
  const int columns = std::min(NR, n - j0);
  for (int j = 0; j < columns; ++j) {
    S* cj = c + (j0 + j) * ldc;
    const S bias_j = bias ? bias[j0 + j] : S(0);
    for (int r = 0; r < MR; ++r) {
      V v = acc[r][j];
      switch (epilogue) {
        case Epilogue::Linear: v += bias_j; break;
        case Epilogue::Accumulate: v += simd::load<S>(cj + r * L) + bias_j; break;
        case Epilogue::Tanh: v = simd::tanh<S>(v + bias_j); break;
        case Epilogue::TanhDerivative: {
          // d tanh(a)/da = 1 - tanh(a)^2, with tanh(a) the stored activation.
          const V h = simd::load<S>(act + (j0 + j) * ld_act + r * L);
          v = v * (S(1) - h * h);
          break;
        }
      }
      simd::store<S>(cj + r * L, v);
    }
  }
}

// The lanes' sum by halves (lane i plus lane i + half, ...): a fixed order, in log2(lanes) vector adds.
template <class S>
S sum_lanes(simd::Vec<S> v) {
  S a[simd::kLanes<S>];
  std::memcpy(a, &v, sizeof a);
  for (int half = simd::kLanes<S> / 2; half > 0; half /= 2)
    for (int i = 0; i < half; ++i) a[i] += a[i + half];
  return a[0];
}

// g[i] += v[i] for the first min(count, lanes) lanes: a whole vector when all of them count.
template <class S>
void add_to_outputs(simd::Vec<S> v, int count, S* g) {
  if (count >= simd::kLanes<S>) {
    simd::store<S>(g, simd::load<S>(g) + v);
    return;
  }
  for (int i = 0; i < count; ++i) g[i] += v[i];
}

// A square of lanes x lanes values held as one vector per row, transposed in registers: at each
// stage, within every 2d x 2d block, the two off-diagonal d x d blocks trade places.
template <class S, int... lane>
void transpose_square(simd::Vec<S> (&v)[sizeof...(lane)], std::integer_sequence<int, lane...>) {
  using I = simd::Int<S>;
  constexpr int L = sizeof...(lane);
  auto stage = [&]<int d>() {
    constexpr I low = {((lane & d) ? L + lane - d : lane)...};   // row i keeps its left block
    constexpr I high = {((lane & d) ? L + lane : lane + d)...};  // row i + d keeps its right block
#pragma GCC unroll 16
    for (int i = 0; i < L; ++i)
      if ((i & d) == 0) {
        const simd::Vec<S> a = v[i], b = v[i + d];
        v[i] = __builtin_shuffle(a, b, low);
        v[i + d] = __builtin_shuffle(a, b, high);
      }
  };
  if constexpr (L >= 16) stage.template operator()<8>();
  if constexpr (L >= 8) stage.template operator()<4>();
  if constexpr (L >= 4) stage.template operator()<2>();
  if constexpr (L >= 2) stage.template operator()<1>();
}

// One tile of block_weight_gradient: sum over rows r of vec[r, c] * column_j[r] for MV vectors of
// c from c0 (the sample-major operand's columns) and kGemmColumns columns j from j0 of the
// column-major operand; added to g[j * stride_j + c * stride_c]. Columns past either operand's
// width repeat its last one and are not stored.
template <class S, int MV>
void block_gradient_tile(std::int64_t rows, int vec_width, int col_width, int c0, int j0, const S* vec,
                         std::int64_t ld_vec, const S* col, std::int64_t ld_col, S* g, std::int64_t stride_j,
                         std::int64_t stride_c) {
  using V = simd::Vec<S>;
  constexpr int L = simd::kLanes<S>, NJ = kGemmColumns;
  V acc[MV][NJ];
  for (auto& row : acc)
    for (auto& v : row) v = V{};
  const S* column[NJ];
  for (int j = 0; j < NJ; ++j) column[j] = col + std::min(j0 + j, col_width - 1) * ld_col;
  for (std::int64_t r = 0; r < rows; ++r) {
    V d[MV];
#pragma GCC unroll 8
    for (int v = 0; v < MV; ++v) d[v] = simd::load<S>(vec + r * ld_vec + c0 + v * L);
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j) {
      const V w = simd::broadcast<S>(column[j][r]);
#pragma GCC unroll 8
      for (int v = 0; v < MV; ++v) acc[v][j] += d[v] * w;
    }
  }
  const int columns = std::min(NJ, col_width - j0);
  for (int j = 0; j < columns; ++j)
    for (int v = 0; v < MV; ++v) {
      const int c = c0 + v * L, count = std::min(L, vec_width - c);
      S* target = g + (j0 + j) * stride_j + c * stride_c;
      if (stride_c == 1) {
        add_to_outputs<S>(acc[v][j], count, target);
      } else {
        for (int i = 0; i < count; ++i) target[i * stride_c] += acc[v][j][i];
      }
    }
}

// The bias column from sample-major deltas: sum over rows of delta, MV vectors of outputs from o0.
template <class S, int MV>
void block_bias_tile(std::int64_t rows, int out, int o0, const S* delta, std::int64_t ld_delta, S* g) {
  using V = simd::Vec<S>;
  constexpr int L = simd::kLanes<S>;
  V acc[MV];
  for (auto& v : acc) v = V{};
  for (std::int64_t r = 0; r < rows; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < MV; ++v) acc[v] += simd::load<S>(delta + r * ld_delta + o0 + v * L);
  for (int v = 0; v < MV; ++v) add_to_outputs<S>(acc[v], out - (o0 + v * L), g + o0 + v * L);
}

// The bias column from column-major deltas: per output, lane sums over whole vectors of rows,
// then the lanes by halves, then the rows of a last partial vector in order.
template <class S>
void column_bias(std::int64_t rows, int out, const S* delta, std::int64_t ld_delta, S* g) {
  using V = simd::Vec<S>;
  constexpr int L = simd::kLanes<S>;
  const std::int64_t whole = rows / L * L;
  for (int o = 0; o < out; ++o) {
    const S* d = delta + o * ld_delta;
    V acc{};
    for (std::int64_t r = 0; r < whole; r += L) acc += simd::load<S>(d + r);
    S sum = sum_lanes<S>(acc);
    for (std::int64_t r = whole; r < rows; ++r) sum += d[r];
    g[o] += sum;
  }
}

// Cuts a sample-major operand `width` columns wide into runs of up to four vectors and calls
// tiles.operator()<vectors>(first column) for each.
template <class S, class Tiles>
void by_vectors(int width, Tiles&& tiles) {
  constexpr int L = simd::kLanes<S>, MV = 4;
  for (int c0 = 0; c0 < width; c0 += MV * L) {
    switch (std::min(MV, (width - c0 + L - 1) / L)) {
      case 4: tiles.template operator()<4>(c0); break;
      case 3: tiles.template operator()<3>(c0); break;
      case 2: tiles.template operator()<2>(c0); break;
      default: tiles.template operator()<1>(c0); break;
    }
  }
}

}  // namespace

template <class S>
void transpose_panel(std::int64_t rows, int cols, const S* src, std::int64_t ld_src, S* dst, std::int64_t ld_dst) {
  using V = simd::Vec<S>;
  constexpr int L = simd::kLanes<S>;
  for (std::int64_t r0 = 0; r0 < rows; r0 += L)
    for (int c0 = 0; c0 < ld_dst; c0 += L) {
      V v[L];
      for (int i = 0; i < L; ++i) v[i] = c0 + i < cols ? simd::load<S>(src + (c0 + i) * ld_src + r0) : V{};
      transpose_square<S>(v, std::make_integer_sequence<int, L>{});
      for (int i = 0; i < L; ++i) simd::store<S>(dst + (r0 + i) * ld_dst + c0, v[i]);
    }
}

template <class S>
void block_weight_gradient(std::int64_t rows, int in, int out, SampleMajor which, const S* delta,
                           std::int64_t ld_delta, const S* x, std::int64_t ldx, S* g, bool with_bias) {
  S* bias = g + static_cast<std::int64_t>(in) * out;
  if (which == SampleMajor::Deltas) {
    by_vectors<S>(out, [&]<int MV>(int o0) {
      for (int k0 = 0; k0 < in; k0 += kGemmColumns)
        block_gradient_tile<S, MV>(rows, out, in, o0, k0, delta, ld_delta, x, ldx, g, out, 1);
      if (with_bias) block_bias_tile<S, MV>(rows, out, o0, delta, ld_delta, bias);
    });
  } else {
    by_vectors<S>(in, [&]<int MV>(int k0) {
      for (int o0 = 0; o0 < out; o0 += kGemmColumns)
        block_gradient_tile<S, MV>(rows, in, out, k0, o0, x, ldx, delta, ld_delta, g, 1, out);
    });
    if (with_bias) column_bias<S>(rows, out, delta, ld_delta, bias);
  }
}

template <class S>
void lane_gemm(std::int64_t rows, int k, int n, const S* a, std::int64_t lda, const S* b, std::int64_t ldb,
               const S* bias, S* c, std::int64_t ldc, Epilogue epilogue, const S* act, std::int64_t ld_act) {
  constexpr int L = simd::kLanes<S>;
  const std::int64_t vectors = (rows + L - 1) / L;
  for (std::int64_t v0 = 0; v0 < vectors; v0 += kTileVectors) {
    const int m = static_cast<int>(std::min<std::int64_t>(kTileVectors, vectors - v0));
    const S* a_tile = a + v0 * L;
    S* c_tile = c + v0 * L;
    const S* act_tile = act ? act + v0 * L : nullptr;
    for (int j0 = 0; j0 < n; j0 += kGemmColumns) {
      // The next row of tiles' outputs and stored activations are often cold (a step's activations
      // come back from memory in the backward sweep): ask for them a row of tiles ahead.
      if (v0 + kTileVectors < vectors) {
        const std::int64_t next = (v0 + kTileVectors) * L;
        for (int j = j0; j < std::min(n, j0 + kGemmColumns); ++j)
          for (int line = 0; line < kTileVectors * simd::kBytes; line += 64) {
            __builtin_prefetch(reinterpret_cast<const char*>(c + j * ldc + next) + line, 1);
            if (act) __builtin_prefetch(reinterpret_cast<const char*>(act + j * ld_act + next) + line, 0);
          }
      }
      auto tile = [&]<int MR>() {
        gemm_tile<S, MR>(k, a_tile, lda, b, ldb, n, j0, bias, c_tile, ldc, epilogue, act_tile, ld_act);
      };
      if (m == kTileVectors) tile.template operator()<kTileVectors>();
      else if (m == 1) tile.template operator()<1>();
      else if constexpr (kTileVectors > 2) {
        if (m == 2) tile.template operator()<2>();
        else tile.template operator()<3>();
      }
    }
  }
}

#define HPO_DENSE_INSTANTIATE(S)                                                                                      \
  template void lane_gemm<S>(std::int64_t, int, int, const S*, std::int64_t, const S*, std::int64_t, const S*, S*,  \
                             std::int64_t, Epilogue, const S*, std::int64_t);                                          \
  template void transpose_panel<S>(std::int64_t, int, const S*, std::int64_t, S*, std::int64_t);                      \
  template void block_weight_gradient<S>(std::int64_t, int, int, SampleMajor, const S*, std::int64_t, const S*,     \
                                         std::int64_t, S*, bool);
HPO_DENSE_INSTANTIATE(float)
HPO_DENSE_INSTANTIATE(double)
#undef HPO_DENSE_INSTANTIATE

}  // namespace hpo::runtime
