// eval_op.hpp: the arithmetic of every scalar IR operation, shared by constant folding and the
// reference interpreter so both compute bit-for-bit the same values.
#pragma once

#include <cmath>

#include "ast/real_math.hpp"
#include "ir/ir.hpp"

namespace hpo::ir {

inline Ty result_type(Op op) {
  switch (op) {
    case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq: case Op::Ne:
    case Op::And: case Op::Or: case Op::Not: case Op::ConstB:
      return Ty::I1;
    case Op::ConstI: case Op::Disc: case Op::Period:
      return Ty::I64;
    default:
      return Ty::F64;
  }
}

// a, b: operand values (I1 as 0/1, I64 as its integer value); b unused for unary ops.
inline double eval_op(Op op, double a, double b) {
  switch (op) {
    case Op::Add: return a + b;
    case Op::Sub: return a - b;
    case Op::Mul: return a * b;
    case Op::Div: return a / b;
    case Op::Neg: return -a;
    case Op::Pow: return std::pow(a, b);
    case Op::Min: return real::min(a, b);
    case Op::Max: return real::max(a, b);
    case Op::Relu: return real::relu(a);
    case Op::Abs: return std::fabs(a);
    case Op::Exp: return std::exp(a);
    case Op::Log: return std::log(a);
    case Op::Sqrt: return std::sqrt(a);
    case Op::Sin: return std::sin(a);
    case Op::Cos: return std::cos(a);
    case Op::Tanh: return std::tanh(a);
    case Op::Sigmoid: return real::sigmoid(a);
    case Op::Softplus: return real::softplus(a);
    case Op::Lt: return a < b;
    case Op::Le: return a <= b;
    case Op::Gt: return a > b;
    case Op::Ge: return a >= b;
    case Op::Eq: return a == b;
    case Op::Ne: return a != b;
    case Op::And: return (a != 0) && (b != 0);
    case Op::Or: return (a != 0) || (b != 0);
    case Op::Not: return a == 0;
    case Op::ToReal: return a;
    default: return 0;
  }
}

}  // namespace hpo::ir
