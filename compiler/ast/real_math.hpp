// real_math.hpp: the language's real built-ins as scalar functions, one definition shared by sema's
// constant evaluation and the IR's folding and interpreter (codegen emits the same operations), so
// a constant has one value wherever it is computed.
#pragma once

#include <cmath>

#include "ast/ast.hpp"

namespace hpo::real {

// min and max ignore a NaN operand (IEEE minNum/maxNum, LLVM's minnum/maxnum): max(0.0 / 0.0, 1.0) = 1.
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline double clamp(double x, double lo, double hi) { return min(max(x, lo), hi); }
inline double relu(double x) { return x > 0 ? x : 0.0; }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
// Both branches are finite or +inf, never NaN.
inline double softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }
inline double identity(double x) { return x; }

// The one-argument elementwise built-ins (relu ... softplus, real); nullptr for any other.
inline double (*unary(ast::Builtin b))(double) {
  using ast::Builtin;
  switch (b) {
    case Builtin::Relu: return relu;
    case Builtin::Abs: return [](double x) { return std::fabs(x); };
    case Builtin::Exp: return [](double x) { return std::exp(x); };
    case Builtin::Log: return [](double x) { return std::log(x); };
    case Builtin::Sqrt: return [](double x) { return std::sqrt(x); };
    case Builtin::Sin: return [](double x) { return std::sin(x); };
    case Builtin::Cos: return [](double x) { return std::cos(x); };
    case Builtin::Tanh: return [](double x) { return std::tanh(x); };
    case Builtin::Sigmoid: return sigmoid;
    case Builtin::Softplus: return softplus;
    case Builtin::Real: return identity;
    default: return nullptr;
  }
}

}  // namespace hpo::real
