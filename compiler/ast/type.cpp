// type.cpp: printing types and operator names.
#include "ast/ast.hpp"
#include "ast/symbol.hpp"

namespace hpo::ast {

std::int64_t Type::elements() const {
  std::int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

std::string dims_str(const std::vector<std::int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

std::string Type::str() const {
  std::string base;
  switch (scalar) {
    case Scalar::Error: return "<error>";
    case Scalar::Int: base = "int"; break;
    case Scalar::Real: base = "real"; break;
    case Scalar::Bool: base = "bool"; break;
    case Scalar::Choice: base = "choice(" + std::to_string(cardinality) + ")"; break;
  }
  return dims.empty() ? base : base + dims_str(dims);
}

const char* spelling(BinaryOp op) {
  switch (op) {
    case BinaryOp::MatMul: return "@";
    case BinaryOp::Mul: return "*";
    case BinaryOp::Div: return "/";
    case BinaryOp::Mod: return "%";
    case BinaryOp::Add: return "+";
    case BinaryOp::Sub: return "-";
    case BinaryOp::Lt: return "<";
    case BinaryOp::Le: return "<=";
    case BinaryOp::Gt: return ">";
    case BinaryOp::Ge: return ">=";
    case BinaryOp::Eq: return "==";
    case BinaryOp::Ne: return "!=";
    case BinaryOp::And: return "and";
    case BinaryOp::Or: return "or";
  }
  return "?";
}

const char* spelling(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "-";
    case UnaryOp::Plus: return "+";
    case UnaryOp::Not: return "not";
  }
  return "?";
}

const char* spelling(Builtin b) {
  switch (b) {
    case Builtin::None: return "<user>";
    case Builtin::Relu: return "relu";
    case Builtin::Abs: return "abs";
    case Builtin::Exp: return "exp";
    case Builtin::Log: return "log";
    case Builtin::Sqrt: return "sqrt";
    case Builtin::Sin: return "sin";
    case Builtin::Cos: return "cos";
    case Builtin::Tanh: return "tanh";
    case Builtin::Sigmoid: return "sigmoid";
    case Builtin::Softplus: return "softplus";
    case Builtin::Max: return "max";
    case Builtin::Min: return "min";
    case Builtin::Pow: return "pow";
    case Builtin::Clamp: return "clamp";
    case Builtin::Sum: return "sum";
    case Builtin::Mean: return "mean";
    case Builtin::Dot: return "dot";
    case Builtin::Real: return "real";
    case Builtin::Eye: return "eye";
    case Builtin::Div: return "div";
    case Builtin::SeededUniform: return "seeded_uniform";
    case Builtin::SeededNormal: return "seeded_normal";
    case Builtin::Period: return "period";
  }
  return "?";
}

Builtin builtin_named(std::string_view name) {
  for (int b = static_cast<int>(Builtin::Relu); b <= static_cast<int>(Builtin::Period); ++b)
    if (name == spelling(static_cast<Builtin>(b))) return static_cast<Builtin>(b);
  return Builtin::None;
}

const char* spelling(SymbolKind k) {
  switch (k) {
    case SymbolKind::Const: return "const";
    case SymbolKind::Param: return "param";
    case SymbolKind::State: return "state";
    case SymbolKind::Action: return "action";
    case SymbolKind::Noise: return "noise";
    case SymbolKind::Fn: return "function";
    case SymbolKind::Let: return "let";
    case SymbolKind::LoopVar: return "loop variable";
    case SymbolKind::FnParam: return "function parameter";
  }
  return "?";
}

}  // namespace hpo::ast
