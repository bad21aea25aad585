// kernels_test.cpp: the policy runtime's numerics: the lane kernels against a double-precision
// reference, their independence from where a sample sits, the vectorized exp/log/tanh, the
// tabulated Poisson sampler, and f32 training gradients against f64 ones.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "hpo/train.hpp"
#include "runtime/dense.hpp"
#include "runtime/random.hpp"

namespace {

using namespace hpo::runtime;

template <class S>
std::vector<S> random_vector(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<S> v(size);
  for (auto& x : v) x = static_cast<S>(u(rng));
  return v;
}

// C = tanh(A B + bias) through lane_gemm, A [rows x k] with leading dimension ld.
template <class S>
std::vector<S> product(std::int64_t rows, std::int64_t ld, int k, int n, const std::vector<S>& a, const std::vector<S>& b,
                       const std::vector<S>& bias) {
  std::vector<S> b_rows(static_cast<std::size_t>(k) * padded_columns(n), S(0));
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < n; ++j) b_rows[i * padded_columns(n) + j] = b[i * n + j];
  std::vector<S> c(static_cast<std::size_t>(ld) * n, S(0));
  lane_gemm<S>(rows, k, n, a.data(), ld, b_rows.data(), padded_columns(n), bias.data(), c.data(), ld, Epilogue::Tanh);
  return c;
}

// The worst |C - reference| over C = tanh(A B + bias), the reference in long double.
template <class S>
double worst_error(int rows, int k, int n) {
  const std::int64_t ld = padded_rows<S>(rows);
  auto a = random_vector<S>(ld * k, 1), b = random_vector<S>(std::size_t(k) * n, 2), bias = random_vector<S>(n, 3);
  auto c = product<S>(rows, ld, k, n, a, b, bias);
  double worst = 0;
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < n; ++j) {
      long double sum = bias[j];
      for (int i = 0; i < k; ++i) sum += static_cast<long double>(a[i * ld + r]) * b[i * n + j];
      worst = std::max(worst, std::abs(double(c[j * ld + r]) - double(std::tanh(sum))));
    }
  return worst;
}

}  // namespace

TEST_CASE("lane_gemm with a tanh epilogue matches a long-double reference within the precision's rounding",
          "[kernels]") {
  // A sum of k products of numbers in [-1, 1] rounds by at most about k * eps * k / 2 in the worst
  // case, sqrt(k) * eps in practice; tanh is 1-Lipschitz and adds a few ulps of 1.
  for (int k : {1, 7, 64, 300}) {
    INFO("k = " << k);
    CHECK(worst_error<float>(37, k, 13) < 4 * k * 6e-8 + 5e-7);
    CHECK(worst_error<double>(37, k, 13) < 4 * k * 1.2e-16 + 1e-15);
  }
}

TEST_CASE("a sample's outputs do not depend on the other samples of its block or on its position", "[kernels]") {
  const int k = 29, n = 17, rows = 100;
  const std::int64_t ld = padded_rows<float>(rows);
  auto a = random_vector<float>(ld * k, 4), b = random_vector<float>(std::size_t(k) * n, 5), bias = random_vector<float>(n, 6);
  const auto whole = product<float>(rows, ld, k, n, a, b, bias);
  // The last 21 samples alone, starting at row 0 of their own panel.
  const int first = 79, count = rows - first;
  const std::int64_t ld_part = padded_rows<float>(count);
  std::vector<float> part(ld_part * k, 0.0f);
  for (int i = 0; i < k; ++i)
    for (int r = 0; r < count; ++r) part[i * ld_part + r] = a[i * ld + first + r];
  const auto alone = product<float>(count, ld_part, k, n, part, b, bias);
  for (int j = 0; j < n; ++j)
    for (int r = 0; r < count; ++r) REQUIRE(alone[j * ld_part + r] == whole[j * ld + first + r]);
}

TEMPLATE_TEST_CASE("transpose_panel turns a column-major panel sample-major, zero-padding the columns", "[kernels]",
                   float, double) {
  using S = TestType;
  for (auto [rows, cols] : {std::pair{37, 5}, std::pair{16, 16}, std::pair{70, 33}}) {
    const std::int64_t ld = padded_rows<S>(rows) + kLanes<S>;  // a leading dimension past the rows
    const std::int64_t ld_rows = padded_rows<S>(cols);
    auto src = random_vector<S>(ld * cols, 11);
    std::vector<S> dst(padded_rows<S>(rows) * ld_rows, S(-7));
    transpose_panel<S>(rows, cols, src.data(), ld, dst.data(), ld_rows);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < ld_rows; ++c) CHECK(dst[r * ld_rows + c] == (c < cols ? src[c * ld + r] : S(0)));
  }
}

TEST_CASE("a block's weight gradient is the gradient, to the bit the same wherever the block sits", "[kernels]") {
  // Outputs and inputs past a multiple of the lanes; both operands in turn sample-major.
  for (auto [in, out, which] : {std::tuple{13, 70, SampleMajor::Deltas}, std::tuple{70, 5, SampleMajor::Inputs}}) {
    const int rows = 45;
    const std::int64_t ld = padded_rows<float>(rows + 32);
    auto delta = random_vector<float>(ld * out, 5), x = random_vector<float>(ld * in, 6);
    // The block's rows at offset `at` of the panels, zeros elsewhere.
    auto gradient = [&](std::int64_t at, bool with_bias = true) {
      std::vector<float> moved_delta(ld * out, 0.0f), moved_x(ld * in, 0.0f);
      for (int o = 0; o < out; ++o)
        for (int r = 0; r < rows; ++r) moved_delta[o * ld + at + r] = delta[o * ld + r];
      for (int k = 0; k < in; ++k)
        for (int r = 0; r < rows; ++r) moved_x[k * ld + at + r] = x[k * ld + r];
      const bool deltas = which == SampleMajor::Deltas;
      const int width = deltas ? out : in;
      const std::int64_t ld_rows = padded_rows<float>(width);
      std::vector<float> rows_first(padded_rows<float>(rows) * ld_rows);
      transpose_panel<float>(rows, width, (deltas ? moved_delta : moved_x).data() + at, ld, rows_first.data(), ld_rows);
      std::vector<float> g(std::size_t(out) * (in + 1), 0.5f);
      if (deltas)
        block_weight_gradient<float>(rows, in, out, which, rows_first.data(), ld_rows, moved_x.data() + at, ld, g.data(),
                                     with_bias);
      else
        block_weight_gradient<float>(rows, in, out, which, moved_delta.data() + at, ld, rows_first.data(), ld_rows,
                                     g.data(), with_bias);
      return g;
    };
    const auto at_zero = gradient(0);
    CHECK(gradient(16) == at_zero);
    CHECK(gradient(32) == at_zero);
    // Without the bias column (an Mlp's linear path): the weights the same, the column untouched.
    const auto no_bias = gradient(0, false);
    for (std::size_t i = 0; i < no_bias.size(); ++i) CHECK(no_bias[i] == (i < std::size_t(in) * out ? at_zero[i] : 0.5f));
    for (int o = 0; o < out; ++o)
      for (int k = 0; k <= in; ++k) {
        double sum = 0.5;
        for (int r = 0; r < rows; ++r) sum += double(delta[o * ld + r]) * (k == in ? 1.0 : double(x[k * ld + r]));
        CHECK(at_zero[k * out + o] == Approx(sum).margin(2e-5));
      }
  }
}

TEST_CASE("vectorized exp, log and tanh stay within a few ulps of libm", "[kernels]") {
  using V = simd::Vec<float>;
  constexpr int L = simd::kLanes<float>;
  double worst_exp = 0, worst_log = 0, worst_tanh = 0;
  for (float x = -80.0f; x < 80.0f; x += 0.37f) {
    V v = simd::broadcast<float>(x);
    worst_exp = std::max(worst_exp, std::abs(double(simd::exp<float>(v)[L - 1]) / std::exp(double(x)) - 1));
    worst_tanh = std::max(worst_tanh, std::abs(double(simd::tanh<float>(v)[0]) - std::tanh(double(x))));
    const float positive = std::exp(x / 8);
    worst_log = std::max(worst_log, std::abs(double(simd::log<float>(simd::broadcast<float>(positive))[0]) -
                                             std::log(double(positive))));
  }
  CHECK(worst_exp < 4e-7);   // a few float ulps, relative
  CHECK(worst_tanh < 4e-7);  // absolute: tanh = 1 - 2 / (e^2x + 1) cancels near 0
  CHECK(worst_log < 1e-6);   // absolute, |log| up to 10
  CHECK(std::isnan(simd::log<float>(simd::broadcast<float>(-1.0f))[0]));
  CHECK(simd::log<float>(simd::broadcast<float>(0.0f))[0] == -INFINITY);
  CHECK(std::isnan(simd::exp<float>(simd::broadcast<float>(NAN))[0]));
  CHECK(simd::tanh<float>(simd::broadcast<float>(1e30f))[0] == 1.0f);
  CHECK(simd::tanh<double>(simd::broadcast<double>(-1e300))[0] == -1.0);
}

TEST_CASE("the tabulated Poisson sampler draws the Poisson distribution", "[kernels]") {
  for (double mean : {0.3, 5.0, 57.0}) {
    INFO("mean " << mean);
    const auto table = poisson_table(mean);
    std::uint64_t words[4];
    Xoshiro::seed(words, 11, 0);
    Xoshiro rng(words);
    constexpr int draws = 200000;
    std::vector<int> counts(400, 0);
    double sum = 0, sq = 0;
    for (int i = 0; i < draws; ++i) {
      const double k = draw_poisson(table, mean, rng);
      REQUIRE(k == std::floor(k));
      sum += k, sq += k * k;
      counts[std::min<int>(int(k), 399)] += 1;
    }
    const double m = sum / draws, var = sq / draws - m * m;
    // Mean and variance within 5 standard errors (var of the sample variance ~ (mu + 2 mu^2) / n).
    CHECK(std::abs(m - mean) < 5 * std::sqrt(mean / draws));
    CHECK(std::abs(var - mean) < 5 * std::sqrt((mean + 2 * mean * mean) / draws));
    // Chi-square over the values with an expected count of at least 20, against a generous bound
    // (its mean is the number of cells, its sd sqrt(2 cells)).
    double chi2 = 0;
    int cells = 0;
    for (int k = 0; k < 400; ++k) {
      const double expected = draws * std::exp(k * std::log(mean) - mean - std::lgamma(k + 1.0));
      if (expected < 20) continue;
      chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
      ++cells;
    }
    CHECK(chi2 < cells + 6 * std::sqrt(2.0 * cells));
  }
  // The guide table only shortens the search: every draw is the full inversion's answer.
  for (double mean : {0.05, 4.0, 6.0, 900.0}) {
    const auto table = poisson_table(mean);
    std::uint64_t words[4], copy[4];
    Xoshiro::seed(words, 5, 1);
    std::copy(words, words + 4, copy);
    Xoshiro rng(words), same(copy);
    for (int i = 0; i < 20000; ++i) {
      const double u = same.uniform01();
      const auto first_above = std::upper_bound(table.cdf.begin(), table.cdf.end(), u) - table.cdf.begin();
      REQUIRE(draw_poisson(table, mean, rng) == double(std::min<std::ptrdiff_t>(first_above, table.cdf.size() - 1)));
    }
  }
  std::uint64_t words[4];
  Xoshiro::seed(words, 1, 0);
  Xoshiro rng(words);
  CHECK(draw_poisson(poisson_table(0.0), 0.0, rng) == 0.0);
  CHECK(poisson_table(2e4).empty());  // past the table's range: the library's sampler
  CHECK(std::abs(draw_poisson(poisson_table(2e4), 2e4, rng) - 2e4) < 1e3);
}

TEST_CASE("an f32 gradient estimate agrees with the f64 one on the same scenarios", "[kernels][train]") {
  hpo::CompileOptions compile;
  compile.stdlib_dirs = {std::string(HPOC_SOURCE_DIR) + "/stdlib"};
  const hpo::Model model = hpo::compile_file(std::string(HPOC_SOURCE_DIR) + "/examples/inventory.hpo", compile);
  auto estimate = [&](hpo::Precision precision, hpo::Algo algo) {
    hpo::TrainOptions o;
    o.algo = algo;
    o.precision = precision;
    o.hidden = {64, 64};
    o.threads = 2;
    hpo::Trainer trainer(model, o);
    return trainer.gradient(17, 256);
  };
  for (hpo::Algo algo : {hpo::Algo::HPO, hpo::Algo::Reinforce}) {
    INFO(hpo::to_string(algo));
    const auto g32 = estimate(hpo::Precision::F32, algo), g64 = estimate(hpo::Precision::F64, algo);
    double diff = 0, norm = 0;
    for (std::size_t k = 0; k < g64.size(); ++k) diff += (g32[k] - g64[k]) * (g32[k] - g64[k]), norm += g64[k] * g64[k];
    // Same choices (the sampling sees float probabilities but draws with the same uniforms; a
    // flip needs a uniform within ~1e-7 of a boundary: expected flips 256 x 50 x 3 x 1e-7 << 1).
    // The estimate then differs by float rounding through 50 steps of two networks and the
    // simulator's adjoints: relative 1e-7 per operation, amplified by the chain's conditioning.
    // Measured 1e-7 to 3e-7 on AVX-512; the bound leaves room for other instruction sets' roundings.
    INFO("relative difference " << std::sqrt(diff / norm));
    CHECK(std::sqrt(diff / norm) < 1e-5);
  }
}
