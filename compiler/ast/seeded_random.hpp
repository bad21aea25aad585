// seeded_random.hpp: the language's seeded_uniform/seeded_normal, pure functions of integer keys,
// shared by constant evaluation and lowering so a model's generated matrices are the same everywhere.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace hpo {

// SplitMix64's finalizer: every key bit affects every output bit, so neighbouring keys
// (i, j) and (i, j + 1) give unrelated numbers.
inline std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline std::uint64_t seeded_hash(const std::vector<std::int64_t>& keys) {
  std::uint64_t h = 0x243f6a8885a308d3ULL;  // so that an all-zero key list does not hash to splitmix64(0)
  for (std::int64_t key : keys) h = splitmix64(h ^ static_cast<std::uint64_t>(key));
  return h;
}

// Uniform on (0, 1): the top 53 bits, shifted by half a step so that 0 and 1 never occur.
inline double open_unit_interval(std::uint64_t bits) { return (static_cast<double>(bits >> 11) + 0.5) * 0x1.0p-53; }

inline double seeded_uniform(const std::vector<std::int64_t>& keys) { return open_unit_interval(seeded_hash(keys)); }

// Standard normal by Box-Muller from two uniforms derived from the same keys.
inline double seeded_normal(const std::vector<std::int64_t>& keys) {
  std::uint64_t h = seeded_hash(keys);
  double u1 = open_unit_interval(h);
  double u2 = open_unit_interval(splitmix64(h));
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace hpo
