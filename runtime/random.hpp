// random.hpp: per-sample random streams (xoshiro256**, seeded through splitmix64) and the draws
// of each noise distribution, so that sample b of a seed always sees the same numbers.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "ast/distribution.hpp"

namespace hpo::runtime {

inline std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A view of four words of state; a UniformRandomBitGenerator for <random>'s distributions.
class Xoshiro {
 public:
  using result_type = std::uint64_t;
  explicit Xoshiro(std::uint64_t* s) : s_(s) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }

  static void seed(std::uint64_t* s, std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t x = seed ^ (0xD1B54A32D192ED03ull * (stream + 1));
    for (int i = 0; i < 4; ++i) s[i] = splitmix64(x);
  }

  result_type operator()() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  double uniform01() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }
  double open_uniform01() { return (static_cast<double>((*this)() >> 11) + 0.5) * 0x1.0p-53; }  // in (0, 1)

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t* s_;
};

// Poisson draws by inverting a tabulated distribution function: one uniform per draw, where
// std::poisson_distribution recomputes its constants and draws several numbers. The table reaches
// past the mean by 13 standard deviations and 40 more (the mass beyond is below 1e-30, far under
// the uniform's resolution). A guide table (Chen and Asau) starts each search at most a step or two
// before the answer, with the same answer as a full search. Means of 0 or above kPoissonTableLargest
// get no table: their draws are 0 or the library's.
inline constexpr double kPoissonTableLargest = 1e4;

struct PoissonTable {
  std::vector<double> cdf;           // cdf[k] = P(X <= k)
  std::vector<std::uint32_t> guide;  // guide[m]: the first k with cdf[k] > m / guide.size()
  bool empty() const { return cdf.empty(); }
};

inline PoissonTable poisson_table(double mean) {
  PoissonTable table;
  if (!(mean > 0) || mean > kPoissonTableLargest) return table;
  const double last = std::ceil(mean + 13.0 * std::sqrt(mean) + 40.0), log_mean = std::log(mean);
  double total = 0;
  for (double k = 0; k <= last; ++k) {
    total += std::exp(k * log_mean - mean - std::lgamma(k + 1.0));
    table.cdf.push_back(total);
  }
  const std::size_t cells = table.cdf.size();
  table.guide.resize(cells);
  std::uint32_t k = 0;
  for (std::size_t m = 0; m < cells; ++m) {
    while (k + 1 < cells && !(table.cdf[k] > double(m) / double(cells))) ++k;
    table.guide[m] = k;
  }
  return table;
}

// A draw from a table's parts (a BatchEnv keeps them apart).
inline double draw_poisson(std::span<const double> cdf, std::span<const std::uint32_t> guide, double mean,
                           Xoshiro& rng) {
  if (!(mean > 0)) return 0.0;
  if (cdf.empty()) return static_cast<double>(std::poisson_distribution<std::int64_t>(mean)(rng));
  const double u = rng.uniform01();
  // The first k with u < cdf[k], the last if none: every k before guide[m] has cdf[k] <= m / cells <= u.
  const std::size_t last = cdf.size() - 1;
  std::size_t k = guide[std::min(static_cast<std::size_t>(u * double(guide.size())), last)];
  while (k < last && !(u < cdf[k])) ++k;
  return static_cast<double>(k);
}

inline double draw_poisson(const PoissonTable& table, double mean, Xoshiro& rng) {
  return draw_poisson(table.cdf, table.guide, mean, rng);
}

// One draw; args as laid out by the noise_args kernel (categorical: unnormalized probabilities).
inline double draw(Distribution dist, const double* args, std::size_t count, Xoshiro& rng) {
  switch (dist) {
    case Distribution::Normal: return args[0] + args[1] * std::normal_distribution<double>(0.0, 1.0)(rng);
    case Distribution::Uniform: return args[0] + (args[1] - args[0]) * rng.uniform01();
    case Distribution::Poisson: return draw_poisson(poisson_table(args[0]), args[0], rng);  // BatchEnv keeps the table
    case Distribution::Bernoulli: return rng.uniform01() < args[0] ? 1.0 : 0.0;
    case Distribution::Categorical: {
      double total = 0;
      for (std::size_t k = 0; k < count; ++k) total += args[k];
      double u = rng.uniform01() * total, acc = 0;
      for (std::size_t k = 0; k < count; ++k) {
        acc += args[k];
        if (u < acc) return static_cast<double>(k);
      }
      return static_cast<double>(count - 1);
    }
  }
  return 0;
}

}  // namespace hpo::runtime

namespace hpo::runtime {

// Box-Muller without a cached second value, so a draw depends only on the stream's position.
inline double standard_normal(Xoshiro& rng) {
  double u1 = 1.0 - rng.uniform01();  // (0, 1]
  double u2 = rng.uniform01();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace hpo::runtime
