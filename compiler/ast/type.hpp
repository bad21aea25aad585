// type.hpp: the types of .hpo values: int, real, bool, choice(n), and fixed-size arrays of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hpo::ast {

enum class Scalar : std::uint8_t {
  Error,   // an expression that already failed to check; silences follow-up messages
  Int,     // compile-time integer: literals, consts, loop variables
  Real,
  Bool,
  Choice,  // a discrete value 0..cardinality-1: a discrete action or categorical noise
};

struct Type {
  Scalar scalar = Scalar::Error;
  std::int64_t cardinality = 0;  // Choice only
  std::vector<std::int64_t> dims;  // empty for a scalar; row-major

  static Type error() { return {}; }
  static Type integer() { return {Scalar::Int, 0, {}}; }
  static Type real(std::vector<std::int64_t> dims = {}) { return {Scalar::Real, 0, std::move(dims)}; }
  static Type boolean(std::vector<std::int64_t> dims = {}) { return {Scalar::Bool, 0, std::move(dims)}; }
  static Type choice(std::int64_t n, std::vector<std::int64_t> dims = {}) {
    return {Scalar::Choice, n, std::move(dims)};
  }

  bool is_error() const { return scalar == Scalar::Error; }
  bool is_scalar() const { return dims.empty(); }
  bool is_numeric() const { return scalar == Scalar::Int || scalar == Scalar::Real || scalar == Scalar::Bool; }
  std::int64_t elements() const;
  Type element() const { return {scalar, cardinality, {}}; }
  Type with_dims(std::vector<std::int64_t> d) const { return {scalar, cardinality, std::move(d)}; }
  std::string str() const;
  friend bool operator==(const Type&, const Type&) = default;
};

std::string dims_str(const std::vector<std::int64_t>& dims);

}  // namespace hpo::ast
