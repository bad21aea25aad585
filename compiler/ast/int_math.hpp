// int_math.hpp: the language's integer division and modulo (floor semantics), shared by
// constant evaluation and lowering so both give the same integers.
#pragma once

#include <cstdint>

namespace hpo {

// floor(x / y); y != 0 and not (x == INT64_MIN and y == -1): callers check first.
inline std::int64_t floor_div(std::int64_t x, std::int64_t y) {
  std::int64_t q = x / y;
  if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
  return q;
}

// x - y * floor(x / y): the sign of the divisor; y != 0.
inline std::int64_t floor_mod(std::int64_t x, std::int64_t y) {
  std::int64_t r = y == -1 ? 0 : x % y;
  return r != 0 && ((r < 0) != (y < 0)) ? r + y : r;
}

}  // namespace hpo
