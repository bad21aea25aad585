// lower.cpp: AST of a checked model -> scalar IR kernels init, observe and step.
#include "ir/lower.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <unordered_map>

#include "ast/int_math.hpp"
#include "ast/seeded_random.hpp"
#include "ir/builder.hpp"

namespace hpo::ir {
namespace {

using ast::Scalar;

// A lowered value: an array (or scalar) of IR values, or of integers known at compile time.
struct LVal {
  std::vector<std::int64_t> dims;
  std::vector<ValueId> vals;
  std::vector<std::int64_t> ints;
  bool is_int = false;
  SourceLoc loc = {};  // where the value comes from, for the conversions made from it

  std::size_t size() const { return is_int ? ints.size() : vals.size(); }
};

LVal int_value(std::int64_t v) { return LVal{{}, {}, {v}, true}; }

std::int64_t elements(const std::vector<std::int64_t>& dims) {
  std::int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

std::string element_name(const std::string& name, const std::vector<std::int64_t>& dims, std::int64_t flat) {
  if (dims.empty()) return name;
  std::vector<std::int64_t> idx(dims.size());
  for (std::size_t k = dims.size(); k-- > 0;) {
    idx[k] = flat % dims[k];
    flat /= dims[k];
  }
  std::string s = name + "[";
  for (std::size_t k = 0; k < idx.size(); ++k) s += (k ? ", " : "") + std::to_string(idx[k]);
  return s + "]";
}

// Where each declared array starts in its kernel input.
struct Offsets {
  std::unordered_map<const ast::Symbol*, std::int64_t> start;
};

class Lowerer {
 public:
  Lowerer(const CheckedModel& m, Program& p, Diagnostics& diags) : m_(m), p_(p), diags_(diags) {}

  bool run();

 private:
  // Kernel-building context.
  struct Kernel {
    Builder* b = nullptr;
    std::map<std::int64_t, ValueId>* next = nullptr;  // flat state index -> next value (step)
    ValueId* cost = nullptr;
  };

  LVal expr(const ast::Expr& e);
  LVal lower_expr(const ast::Expr& e);
  LVal name(const ast::NameRef& n);
  LVal index(const ast::IndexExpr& e);
  LVal binary(const ast::BinaryExpr& e);
  LVal call(const ast::CallExpr& e);
  LVal cond(const ast::CondExpr& e);
  LVal select(ValueId index, std::int64_t count, const std::function<LVal(std::int64_t)>& candidate, SourceLoc loc);
  void block(const ast::Block& b);
  void stmt(const ast::Stmt& s);
  void assign(const ast::AssignStmt& a);
  void if_stmt(const ast::IfStmt& s);

  ValueId real(const LVal& v, std::size_t i) const;  // element i as F64, broadcasting scalars
  ValueId as_real(ValueId v, SourceLoc loc = {}) const;
  ValueId condition(const ast::Expr& e);
  LVal elementwise(const std::vector<LVal>& args, const std::vector<std::int64_t>& dims,
                   const std::function<ValueId(const std::vector<ValueId>&)>& f);
  bool too_big(SourceLoc loc);

  Builder& b() { return *k_.b; }

  const CheckedModel& m_;
  Program& p_;
  Diagnostics& diags_;
  Kernel k_;
  Offsets offsets_;
  std::unordered_map<const ast::Symbol*, LVal> bound_;  // lets, loop variables, fn parameters
  bool failed_ = false;
};

bool Lowerer::too_big(SourceLoc loc) {
  if (failed_) return true;
  if (k_.b->function().value_types.size() > kMaxInstructions) {
    diags_.error(loc, "the model is too large to lower (more than " + std::to_string(kMaxInstructions) +
                          " scalar operations in one kernel)");
    failed_ = true;
  }
  return failed_;
}

ValueId Lowerer::as_real(ValueId v, SourceLoc loc) const {
  if (k_.b->type(v) == Ty::F64) return v;
  if (auto c = k_.b->constant(v)) return k_.b->const_f(*c);
  return k_.b->unary(Op::ToReal, v, loc);
}

ValueId Lowerer::real(const LVal& v, std::size_t i) const {
  std::size_t k = v.size() == 1 ? 0 : i;
  if (v.is_int) return k_.b->const_f(static_cast<double>(v.ints[k]));
  return as_real(v.vals[k], v.loc);
}

LVal Lowerer::elementwise(const std::vector<LVal>& args, const std::vector<std::int64_t>& dims,
                          const std::function<ValueId(const std::vector<ValueId>&)>& f) {
  LVal out;
  out.dims = dims;
  auto n = static_cast<std::size_t>(elements(dims));
  out.vals.reserve(n);
  std::vector<ValueId> operands(args.size());
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t a = 0; a < args.size(); ++a) operands[a] = real(args[a], i);
    out.vals.push_back(f(operands));
  }
  return out;
}

LVal Lowerer::expr(const ast::Expr& e) {
  LVal v = lower_expr(e);
  v.loc = e.loc;
  return v;
}

LVal Lowerer::lower_expr(const ast::Expr& e) {
  if (too_big(e.loc)) return LVal{e.type.dims, std::vector<ValueId>(static_cast<std::size_t>(e.type.elements()), b().const_f(0)), {}, false};
  switch (e.kind) {
    case ast::ExprKind::IntLit: return int_value(static_cast<const ast::IntLit&>(e).value);
    case ast::ExprKind::RealLit: return LVal{{}, {b().const_f(static_cast<const ast::RealLit&>(e).value)}, {}, false};
    case ast::ExprKind::BoolLit: return LVal{{}, {b().const_b(static_cast<const ast::BoolLit&>(e).value)}, {}, false};
    case ast::ExprKind::Inf: return LVal{{}, {b().const_f(std::numeric_limits<double>::infinity())}, {}, false};
    case ast::ExprKind::Name: return name(static_cast<const ast::NameRef&>(e));
    case ast::ExprKind::Index: return index(static_cast<const ast::IndexExpr&>(e));
    case ast::ExprKind::Unary: {
      const auto& u = static_cast<const ast::UnaryExpr&>(e);
      LVal v = expr(*u.operand);
      if (v.is_int) {
        for (auto& x : v.ints) x = u.op == ast::UnaryOp::Neg ? -x : x;
        return v;
      }
      if (u.op == ast::UnaryOp::Plus) return e.type.scalar == Scalar::Real ? elementwise({v}, v.dims, [](auto& a) { return a[0]; }) : v;
      if (u.op == ast::UnaryOp::Not) {
        LVal out{v.dims, {}, {}, false};
        for (auto x : v.vals) out.vals.push_back(b().unary(Op::Not, x, e.loc));
        return out;
      }
      return elementwise({v}, v.dims, [&](auto& a) { return b().unary(Op::Neg, a[0], e.loc); });
    }
    case ast::ExprKind::Binary: return binary(static_cast<const ast::BinaryExpr&>(e));
    case ast::ExprKind::Cond: return cond(static_cast<const ast::CondExpr&>(e));
    case ast::ExprKind::Call: return call(static_cast<const ast::CallExpr&>(e));
    case ast::ExprKind::ArrayLit: {
      const auto& a = static_cast<const ast::ArrayLit&>(e);
      LVal out{e.type.dims, {}, {}, e.type.scalar == Scalar::Int};
      for (const auto& element : a.elements) {
        LVal v = expr(*element);
        for (std::size_t i = 0; i < v.size(); ++i) {
          if (out.is_int) out.ints.push_back(v.ints[i]);
          else if (e.type.scalar == Scalar::Real) out.vals.push_back(real(v, i));
          else out.vals.push_back(v.vals[i]);
        }
      }
      return out;
    }
    case ast::ExprKind::Comprehension: {
      const auto& c = static_cast<const ast::Comprehension&>(e);
      LVal out{e.type.dims, {}, {}, e.type.scalar == Scalar::Int};
      for (std::int64_t i = c.lo_value; i < c.hi_value; ++i) {
        bound_[c.var_symbol] = int_value(i);
        LVal v = expr(*c.body);
        for (std::size_t k = 0; k < v.size(); ++k) {
          if (out.is_int) out.ints.push_back(v.ints[k]);
          else if (e.type.scalar == Scalar::Real) out.vals.push_back(real(v, k));
          else out.vals.push_back(v.vals[k]);
        }
      }
      bound_.erase(c.var_symbol);
      return out;
    }
  }
  return {};
}

LVal Lowerer::name(const ast::NameRef& n) {
  const ast::Symbol* sym = n.symbol;
  if (auto it = bound_.find(sym); it != bound_.end()) return it->second;
  LVal out;
  out.dims = sym->type.dims;
  auto count = static_cast<std::size_t>(elements(sym->type.dims));
  using K = ast::SymbolKind;
  if (sym->kind == K::Const) {
    for (const auto& c : m_.consts) {
      if (c.symbol != sym) continue;
      if (c.value.type.scalar == Scalar::Int) return int_value(c.value.ints[0]);
      if (c.value.type.scalar == Scalar::Bool) return LVal{{}, {b().const_b(c.value.reals[0] != 0)}, {}, false};
      return LVal{{}, {b().const_f(c.value.reals[0])}, {}, false};
    }
    return LVal{{}, {b().const_f(0)}, {}, false};
  }
  if (n.next) {
    std::int64_t start = offsets_.start.at(sym);
    // Elements not given yet stay empty; sema made sure that only given ones are read.
    for (std::size_t i = 0; i < count; ++i) {
      auto it = k_.next->find(start + static_cast<std::int64_t>(i));
      out.vals.push_back(it == k_.next->end() ? kNoValue : it->second);
    }
    return out;
  }
  Op op = Op::Param;
  Ty ty = Ty::F64;
  switch (sym->kind) {
    case K::Param: op = Op::Param; break;
    case K::State: op = Op::State; break;
    case K::Action:
      op = sym->type.scalar == Scalar::Choice ? Op::Disc : Op::Cont;
      ty = sym->type.scalar == Scalar::Choice ? Ty::I64 : Ty::F64;
      break;
    case K::Noise:
      op = Op::Noise;
      ty = sym->type.scalar == Scalar::Choice ? Ty::I64 : Ty::F64;
      break;
    default: break;
  }
  std::int64_t start = offsets_.start.at(sym);
  for (std::size_t i = 0; i < count; ++i)
    out.vals.push_back(b().leaf(op, ty, start + static_cast<std::int64_t>(i), n.loc));
  return out;
}

// Picks candidate(index) with only the taken candidate evaluated: a chain of ifs.
LVal Lowerer::select(ValueId index, std::int64_t count, const std::function<LVal(std::int64_t)>& candidate,
                     SourceLoc loc) {
  if (auto c = b().constant(index)) return candidate(static_cast<std::int64_t>(*c));
  std::function<LVal(std::int64_t)> from = [&](std::int64_t k) -> LVal {
    if (k == count - 1) return candidate(k);
    ValueId is_k = b().binary(Op::Eq, index, b().const_i(k), loc);
    LVal shape;
    auto results = b().if_(
        is_k, loc,
        [&]() {
          shape = candidate(k);
          std::vector<ValueId> y;
          for (std::size_t i = 0; i < shape.size(); ++i) y.push_back(shape.is_int ? b().const_i(shape.ints[i]) : shape.vals[i]);
          return y;
        },
        [&]() {
          LVal rest = from(k + 1);
          std::vector<ValueId> y;
          for (std::size_t i = 0; i < rest.size(); ++i) y.push_back(rest.is_int ? b().const_i(rest.ints[i]) : rest.vals[i]);
          return y;
        });
    return LVal{shape.dims, results, {}, false};
  };
  return from(0);
}

LVal Lowerer::index(const ast::IndexExpr& e) {
  const auto& base_type = e.base->type;
  // Static indices first; at most the dynamic ones remain.
  std::vector<std::optional<std::int64_t>> fixed;
  std::vector<ValueId> dynamic;
  const auto& dims = base_type.dims;
  for (std::size_t k = 0; k < e.indices.size(); ++k) {
    LVal v = expr(*e.indices[k]);
    if (v.is_int) {
      fixed.push_back(v.ints[0]);
    } else if (auto c = b().constant(v.vals[0])) {
      fixed.push_back(static_cast<std::int64_t>(*c));
    } else {
      fixed.push_back(std::nullopt);
      ValueId index = v.vals[0];
      // A run-time int (period() past the horizon: the observation after the last step, or an
      // environment stepped on) reads the dimension's last element, in the interpreter as in the JIT.
      if (e.indices[k]->type.scalar == Scalar::Int) {
        // No location: the analysis reports the index, not this if, which is no branch of the model.
        ValueId last = b().const_i(dims[k] - 1);
        ValueId inside = b().binary(Op::Le, index, last, e.loc);
        index = b().if_(inside, {}, [&]() { return std::vector<ValueId>{index}; },
                        [&]() { return std::vector<ValueId>{last}; })[0];
      }
      dynamic.push_back(index);
    }
  }
  std::vector<std::int64_t> strides(dims.size(), 1);
  for (std::size_t k = dims.size(); k-- > 1;) strides[k - 1] = strides[k] * dims[k];
  std::vector<std::int64_t> rest(dims.begin() + static_cast<long>(e.indices.size()), dims.end());
  std::int64_t rest_count = elements(rest);

  // One index known only at run time, straight into a declared input: a load per element.
  const auto* name = e.base->kind == ast::ExprKind::Name ? static_cast<const ast::NameRef*>(e.base.get()) : nullptr;
  bool direct_input = name && !name->next && !bound_.count(name->symbol) &&
                      (name->symbol->kind == ast::SymbolKind::Param || name->symbol->kind == ast::SymbolKind::State ||
                       (name->symbol->kind == ast::SymbolKind::Action && name->symbol->type.scalar != Scalar::Choice) ||
                       (name->symbol->kind == ast::SymbolKind::Noise && name->symbol->type.scalar != Scalar::Choice));
  if (dynamic.size() == 1 && direct_input) {
    std::int64_t base = offsets_.start.at(name->symbol);
    std::int64_t stride = 0, extent = 0;
    for (std::size_t k = 0; k < fixed.size(); ++k) {
      if (fixed[k]) {
        base += *fixed[k] * strides[k];
      } else {
        stride = strides[k];
        extent = dims[k];
      }
    }
    Op op = name->symbol->kind == ast::SymbolKind::Param   ? Op::LoadParam
            : name->symbol->kind == ast::SymbolKind::State ? Op::LoadState
            : name->symbol->kind == ast::SymbolKind::Action ? Op::LoadCont
                                                            : Op::LoadNoise;
    LVal out{rest, {}, {}, false};
    for (std::int64_t i = 0; i < rest_count; ++i) out.vals.push_back(b().load(op, Ty::F64, base + i, stride, extent, dynamic[0], e.loc));
    return out;
  }

  LVal base = expr(*e.base);
  std::function<LVal(std::size_t, std::int64_t)> pick = [&](std::size_t k, std::int64_t offset) -> LVal {
    if (k == fixed.size()) {
      LVal out{rest, {}, {}, base.is_int};
      for (std::int64_t i = 0; i < rest_count; ++i) {
        if (base.is_int) out.ints.push_back(base.ints[static_cast<std::size_t>(offset + i)]);
        else out.vals.push_back(base.vals[static_cast<std::size_t>(offset + i)]);
      }
      return out;
    }
    if (fixed[k]) return pick(k + 1, offset + *fixed[k] * strides[k]);
    std::size_t which = 0;
    for (std::size_t j = 0; j < k; ++j)
      if (!fixed[j]) ++which;
    return select(dynamic[which], dims[k], [&](std::int64_t c) { return pick(k + 1, offset + c * strides[k]); }, e.loc);
  };
  return pick(0, 0);
}

LVal Lowerer::binary(const ast::BinaryExpr& e) {
  using ast::BinaryOp;
  if (e.op == BinaryOp::And || e.op == BinaryOp::Or) {
    // Short-circuit: the right side is evaluated only when the left does not decide.
    LVal lhs = expr(*e.lhs);
    ValueId a = lhs.vals[0];
    if (auto c = b().constant(a)) {
      if ((e.op == BinaryOp::And) == (*c == 0)) return lhs;
      return expr(*e.rhs);
    }
    auto r = b().if_(a, e.loc,
                     [&]() { return std::vector<ValueId>{e.op == BinaryOp::And ? expr(*e.rhs).vals[0] : b().const_b(true)}; },
                     [&]() { return std::vector<ValueId>{e.op == BinaryOp::And ? b().const_b(false) : expr(*e.rhs).vals[0]}; });
    return LVal{{}, r, {}, false};
  }
  LVal lhs = expr(*e.lhs);
  LVal rhs = expr(*e.rhs);
  if (lhs.is_int && rhs.is_int && e.type.scalar == Scalar::Int) {
    LVal out{e.type.dims, {}, {}, true};
    std::size_t n = std::max(lhs.size(), rhs.size());
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t x = lhs.ints[lhs.size() == 1 ? 0 : i], y = rhs.ints[rhs.size() == 1 ? 0 : i];
      switch (e.op) {
        case BinaryOp::Add: out.ints.push_back(x + y); break;
        case BinaryOp::Sub: out.ints.push_back(x - y); break;
        case BinaryOp::Mul: out.ints.push_back(x * y); break;
        case BinaryOp::Mod: out.ints.push_back(floor_mod(x, y)); break;
        default: break;
      }
    }
    return out;
  }
  if (e.op == BinaryOp::MatMul) {
    const auto& da = e.lhs->type.dims;
    const auto& db = e.rhs->type.dims;
    std::size_t m = da.size() == 2 ? static_cast<std::size_t>(da[0]) : 1;
    std::size_t k = static_cast<std::size_t>(da.back());
    std::size_t p = db.size() == 2 ? static_cast<std::size_t>(db[1]) : 1;
    LVal out{e.type.dims, {}, {}, false};
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < p; ++j) {
        ValueId acc = b().binary(Op::Mul, real(lhs, i * k), real(rhs, j), e.loc);
        for (std::size_t l = 1; l < k; ++l)
          acc = b().binary(Op::Add, acc, b().binary(Op::Mul, real(lhs, i * k + l), real(rhs, l * p + j), e.loc), e.loc);
        out.vals.push_back(acc);
      }
    return out;
  }
  Op op = Op::Add;
  bool compare = false;
  switch (e.op) {
    case BinaryOp::Add: op = Op::Add; break;
    case BinaryOp::Sub: op = Op::Sub; break;
    case BinaryOp::Mul: op = Op::Mul; break;
    case BinaryOp::Div: op = Op::Div; break;
    case BinaryOp::Lt: op = Op::Lt; compare = true; break;
    case BinaryOp::Le: op = Op::Le; compare = true; break;
    case BinaryOp::Gt: op = Op::Gt; compare = true; break;
    case BinaryOp::Ge: op = Op::Ge; compare = true; break;
    case BinaryOp::Eq: op = Op::Eq; compare = true; break;
    case BinaryOp::Ne: op = Op::Ne; compare = true; break;
    default: break;
  }
  // Comparisons of discrete values stay integer comparisons.
  bool discrete = e.lhs->type.scalar == Scalar::Choice || e.rhs->type.scalar == Scalar::Choice;
  if (compare && discrete) {
    auto as_index = [&](const LVal& v) { return v.is_int ? b().const_i(v.ints[0]) : v.vals[0]; };
    return LVal{{}, {b().binary(op, as_index(lhs), as_index(rhs), e.loc)}, {}, false};
  }
  if (compare && e.lhs->type.scalar == Scalar::Bool && e.rhs->type.scalar == Scalar::Bool) {
    LVal out{e.type.dims, {}, {}, false};
    std::size_t n = std::max(lhs.size(), rhs.size());
    for (std::size_t i = 0; i < n; ++i)
      out.vals.push_back(b().binary(op, lhs.vals[lhs.size() == 1 ? 0 : i], rhs.vals[rhs.size() == 1 ? 0 : i], e.loc));
    return out;
  }
  return elementwise({lhs, rhs}, e.type.dims, [&](auto& a) { return b().binary(op, a[0], a[1], e.loc); });
}

LVal Lowerer::cond(const ast::CondExpr& e) {
  ValueId c = condition(*e.cond);
  auto n = static_cast<std::size_t>(e.type.elements());
  bool is_int = e.type.scalar == Scalar::Int;
  auto yields = [&](const ast::Expr& branch) {
    LVal v = expr(branch);
    std::vector<ValueId> y;
    for (std::size_t i = 0; i < n; ++i) {
      if (is_int) y.push_back(b().const_i(v.ints[v.size() == 1 ? 0 : i]));
      else if (e.type.scalar == Scalar::Real) y.push_back(real(v, i));
      else y.push_back(v.vals[v.size() == 1 ? 0 : i]);
    }
    return y;
  };
  if (auto k = b().constant(c)) {
    LVal v = expr(*k != 0 ? *e.then_value : *e.else_value);
    if (is_int) return LVal{e.type.dims, {}, std::vector<std::int64_t>(n, v.ints[0]), true};
    LVal out{e.type.dims, yields(*k != 0 ? *e.then_value : *e.else_value), {}, false};
    return out;
  }
  auto results = b().if_(c, e.loc, [&]() { return yields(*e.then_value); },
                         [&]() { return yields(*e.else_value); });
  return LVal{e.type.dims, results, {}, false};
}

ValueId Lowerer::condition(const ast::Expr& e) {
  LVal v = expr(e);
  if (v.is_int) return b().const_b(v.ints[0] != 0);
  ValueId x = v.vals[0];
  if (b().type(x) == Ty::I64) return b().binary(Op::Ne, x, b().const_i(0), e.loc);  // a choice(2) as condition
  return x;
}

LVal Lowerer::call(const ast::CallExpr& e) {
  using ast::Builtin;
  std::vector<LVal> args;
  for (const auto& a : e.args) args.push_back(expr(*a));
  if (e.builtin == Builtin::None) {
    const ast::FnDecl& fn = *e.fn;
    auto body = [&](const std::vector<LVal>& values) {
      for (std::size_t p = 0; p < fn.params.size(); ++p) bound_[fn.params[p].symbol] = values[p];
      for (const auto& let : fn.lets) bound_[let->symbol] = expr(*let->value);
      LVal r = expr(*fn.result);
      for (const auto& p : fn.params) bound_.erase(p.symbol);
      for (const auto& let : fn.lets) bound_.erase(let->symbol);
      if (e.type.scalar == Scalar::Real && !r.is_int) {
        LVal out{r.dims, {}, {}, false};
        for (std::size_t i = 0; i < r.size(); ++i) out.vals.push_back(real(r, i));
        return out;
      }
      return r;
    };
    if (e.map_dims.empty()) return body(args);
    LVal out{e.map_dims, {}, {}, false};
    auto n = static_cast<std::size_t>(elements(e.map_dims));
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<LVal> scalars;
      for (const auto& a : args) {
        std::size_t k = a.size() == 1 ? 0 : i;
        scalars.push_back(a.is_int ? LVal{{}, {b().const_f(double(a.ints[k]))}, {}, false} : LVal{{}, {a.vals[k]}, {}, false});
      }
      out.vals.push_back(body(scalars).vals[0]);
    }
    return out;
  }
  auto unary = [&](Op op) { return elementwise({args[0]}, e.type.dims, [&](auto& a) { return b().unary(op, a[0], e.loc); }); };
  switch (e.builtin) {
    case Builtin::Relu: return unary(Op::Relu);
    case Builtin::Abs: return unary(Op::Abs);
    case Builtin::Exp: return unary(Op::Exp);
    case Builtin::Log: return unary(Op::Log);
    case Builtin::Sqrt: return unary(Op::Sqrt);
    case Builtin::Sin: return unary(Op::Sin);
    case Builtin::Cos: return unary(Op::Cos);
    case Builtin::Tanh: return unary(Op::Tanh);
    case Builtin::Sigmoid: return unary(Op::Sigmoid);
    case Builtin::Softplus: return unary(Op::Softplus);
    case Builtin::Real: return elementwise({args[0]}, e.type.dims, [](auto& a) { return a[0]; });
    case Builtin::Pow: return elementwise(args, e.type.dims, [&](auto& a) { return b().binary(Op::Pow, a[0], a[1], e.loc); });
    case Builtin::Clamp:
      return elementwise(args, e.type.dims, [&](auto& a) {
        return b().binary(Op::Min, b().binary(Op::Max, a[0], a[1], e.loc), a[2], e.loc);
      });
    case Builtin::Max:
    case Builtin::Min: {
      Op op = e.builtin == Builtin::Max ? Op::Max : Op::Min;
      if (e.type.scalar == Scalar::Int) {
        std::int64_t x = args[0].ints[0], y = args[1].ints[0];
        return int_value(op == Op::Max ? std::max(x, y) : std::min(x, y));
      }
      if (e.reduction) {
        ValueId acc = real(args[0], 0);
        for (std::size_t i = 1; i < args[0].size(); ++i) acc = b().binary(op, acc, real(args[0], i), e.loc);
        return LVal{{}, {acc}, {}, false};
      }
      return elementwise(args, e.type.dims, [&](auto& a) { return b().binary(op, a[0], a[1], e.loc); });
    }
    case Builtin::Sum:
    case Builtin::Mean: {
      ValueId acc = real(args[0], 0);
      for (std::size_t i = 1; i < args[0].size(); ++i) acc = b().binary(Op::Add, acc, real(args[0], i), e.loc);
      if (e.builtin == Builtin::Mean) acc = b().binary(Op::Div, acc, b().const_f(double(args[0].size())), e.loc);
      return LVal{{}, {acc}, {}, false};
    }
    case Builtin::Dot: {
      ValueId acc = b().binary(Op::Mul, real(args[0], 0), real(args[1], 0), e.loc);
      for (std::size_t i = 1; i < args[0].size(); ++i)
        acc = b().binary(Op::Add, acc, b().binary(Op::Mul, real(args[0], i), real(args[1], i), e.loc), e.loc);
      return LVal{{}, {acc}, {}, false};
    }
    case Builtin::Eye: {
      auto n = e.type.dims[0];
      LVal out{e.type.dims, {}, {}, false};
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < n; ++j) out.vals.push_back(b().const_f(i == j ? 1.0 : 0.0));
      return out;
    }
    case Builtin::Div: {
      return int_value(floor_div(args[0].ints[0], args[1].ints[0]));
    }
    case Builtin::Period: return LVal{{}, {b().leaf(Op::Period, Ty::I64, 0, e.loc)}, {}, false};
    case Builtin::SeededUniform:
    case Builtin::SeededNormal: {
      std::vector<std::int64_t> keys;
      for (const auto& arg : args) keys.push_back(arg.ints[0]);
      double value = e.builtin == Builtin::SeededUniform ? seeded_uniform(keys) : seeded_normal(keys);
      return LVal{{}, {b().const_f(value)}, {}, false};
    }
    case Builtin::None: break;
  }
  return {};
}

void Lowerer::block(const ast::Block& blk) {
  std::vector<const ast::Symbol*> lets;
  for (const auto& s : blk) {
    if (failed_) return;
    stmt(*s);
    if (s->kind == ast::StmtKind::Let) lets.push_back(static_cast<const ast::LetStmt&>(*s).symbol);
  }
  for (const auto* sym : lets) bound_.erase(sym);
}

void Lowerer::stmt(const ast::Stmt& s) {
  switch (s.kind) {
    case ast::StmtKind::Let: {
      const auto& let = static_cast<const ast::LetStmt&>(s);
      bound_[let.symbol] = expr(*let.value);
      return;
    }
    case ast::StmtKind::Assign: assign(static_cast<const ast::AssignStmt&>(s)); return;
    case ast::StmtKind::If: if_stmt(static_cast<const ast::IfStmt&>(s)); return;
    case ast::StmtKind::For: {
      const auto& f = static_cast<const ast::ForStmt&>(s);
      std::int64_t lo = expr(*f.lo).ints[0], hi = expr(*f.hi).ints[0];
      for (std::int64_t v = lo; v < hi && !failed_; ++v) {
        bound_[f.var_symbol] = int_value(v);
        block(f.body);
      }
      bound_.erase(f.var_symbol);
      return;
    }
  }
}

void Lowerer::assign(const ast::AssignStmt& a) {
  LVal value = expr(*a.value);
  if (a.is_cost) {
    // The first addition starts the sum (0 + x would only add an instruction).
    *k_.cost = *k_.cost == kNoValue ? real(value, 0) : b().binary(Op::Add, *k_.cost, real(value, 0), a.loc);
    return;
  }
  const auto& dims = a.symbol->type.dims;
  std::int64_t offset = 0, stride = elements(dims);
  for (std::size_t k = 0; k < a.indices.size(); ++k) {
    stride /= dims[k];
    offset += expr(*a.indices[k]).ints[0] * stride;
  }
  std::int64_t start = offsets_.start.at(a.symbol);
  for (std::int64_t i = 0; i < stride; ++i) (*k_.next)[start + offset + i] = real(value, static_cast<std::size_t>(i));
}

// Both branches are lowered into regions; every next-state element or cost that either branch
// changes flows out of the `if` as a result.
void Lowerer::if_stmt(const ast::IfStmt& s) {
  ValueId c = condition(*s.cond);
  if (auto k = b().constant(c)) {
    block(*k != 0 ? s.then_block : s.else_block);
    return;
  }
  const auto before_next = *k_.next;
  const ValueId before_cost = *k_.cost;
  std::map<std::int64_t, ValueId> then_next, else_next;
  ValueId then_cost = before_cost, else_cost = before_cost;
  auto run_branch = [&](const ast::Block& blk, std::map<std::int64_t, ValueId>& next_out, ValueId& cost_out) {
    *k_.next = before_next;
    *k_.cost = before_cost;
    block(blk);
    next_out = *k_.next;
    cost_out = *k_.cost;
  };
  // Made before the if: a constant emitted after it could move the instruction it returns.
  const ValueId zero = b().const_f(0.0);
  Inst& inst = b().if_regions(
      c, s.loc, [&]() { run_branch(s.then_block, then_next, then_cost); },
      [&]() { run_branch(s.else_block, else_next, else_cost); });
  *k_.next = before_next;
  *k_.cost = before_cost;
  auto value_in = [&](const std::map<std::int64_t, ValueId>& next, std::int64_t key) {
    auto it = next.find(key);
    return it == next.end() ? kNoValue : it->second;
  };
  std::vector<std::int64_t> keys;
  for (const auto* branch : {&then_next, &else_next})
    for (const auto& [key, v] : *branch)
      if (value_in(before_next, key) != v) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (auto key : keys) (*k_.next)[key] = b().add_result(inst, value_in(then_next, key), value_in(else_next, key));
  if (then_cost != before_cost || else_cost != before_cost) {
    auto or_zero = [&](ValueId v) { return v == kNoValue ? zero : v; };
    *k_.cost = b().add_result(inst, or_zero(then_cost), or_zero(else_cost));
  }
}

bool Lowerer::run() {
  Layout& layout = p_.layout;
  auto lay_out = [&](const auto& table, std::vector<std::string>& names) {
    std::int64_t offset = 0;
    for (const auto& info : table) {
      offsets_.start[info.symbol] = offset;
      std::int64_t n = elements(info.symbol->type.dims);
      for (std::int64_t i = 0; i < n; ++i) names.push_back(element_name(info.symbol->name, info.symbol->type.dims, i));
      offset += n;
    }
  };
  lay_out(m_.params, layout.params);
  lay_out(m_.states, layout.state);
  lay_out(m_.noises, layout.noise);
  for (const auto& n : m_.noises)
    for (std::int64_t i = 0; i < elements(n.symbol->type.dims); ++i)
      layout.noise_is_index.push_back(n.symbol->type.scalar == Scalar::Choice);
  // Discrete and continuous actions are numbered separately.
  std::int64_t disc = 0, cont = 0;
  for (const auto& a : m_.actions) {
    std::int64_t n = elements(a.symbol->type.dims);
    offsets_.start[a.symbol] = a.discrete ? disc : cont;
    for (std::int64_t i = 0; i < n; ++i) {
      std::string name = element_name(a.symbol->name, a.symbol->type.dims, i);
      if (a.discrete) {
        layout.disc.push_back(name);
        layout.disc_choices.push_back(a.choices);
      } else {
        layout.cont.push_back(name);
        layout.cont_lo.push_back(a.lo);
        layout.cont_hi.push_back(a.hi);
      }
    }
    (a.discrete ? disc : cont) += n;
  }

  // init: state from its initializers; noise read there is the reset draw.
  p_.init.name = "init";
  {
    Builder builder(p_.init);
    k_ = Kernel{&builder, nullptr, nullptr};
    for (const auto& s : m_.states) {
      LVal v = expr(*s.decl->init);
      auto n = static_cast<std::size_t>(elements(s.symbol->type.dims));
      for (std::size_t i = 0; i < n; ++i) {
        p_.init.outputs.push_back(real(v, i));
        p_.init.output_names.push_back(layout.state[static_cast<std::size_t>(offsets_.start[s.symbol]) + i]);
      }
    }
  }
  // observe: the listed expressions, or all state.
  p_.observe.name = "observe";
  {
    Builder builder(p_.observe);
    k_ = Kernel{&builder, nullptr, nullptr};
    if (m_.observe_all_state) {
      for (std::size_t i = 0; i < layout.state.size(); ++i) {
        p_.observe.outputs.push_back(builder.leaf(Op::State, Ty::F64, static_cast<std::int64_t>(i)));
        p_.observe.output_names.push_back(layout.state[i]);
      }
    } else {
      for (std::size_t k = 0; k < m_.observe.size(); ++k) {
        const ast::Expr& e = *m_.observe[k];
        LVal v = expr(e);
        for (std::size_t i = 0; i < static_cast<std::size_t>(e.type.elements()); ++i) {
          p_.observe.outputs.push_back(real(v, i));
          p_.observe.output_names.push_back("obs" + std::to_string(k) + (e.type.dims.empty() ? "" : element_name("", e.type.dims, static_cast<std::int64_t>(i))));
        }
      }
    }
    layout.obs = p_.observe.output_names;
  }
  // noise_args: the arguments of each noise element's distribution, from params alone.
  p_.noise_args.name = "noise_args";
  {
    Builder builder(p_.noise_args);
    k_ = Kernel{&builder, nullptr, nullptr};
    for (const auto& n : m_.noises) {
      std::vector<LVal> args;
      for (const auto& a : n.decl->args) args.push_back(expr(*a));
      auto count = static_cast<std::size_t>(elements(n.symbol->type.dims));
      for (std::size_t i = 0; i < count; ++i) {
        NoiseDraw draw;
        draw.dist = n.dist;
        draw.first_arg = p_.noise_args.outputs.size();
        if (n.dist == Distribution::Categorical) {
          // probs: [K] shared by every element, or [dims..., K] per element.
          const LVal& probs = args[0];
          auto k = static_cast<std::size_t>(n.symbol->type.cardinality);
          std::size_t start = probs.size() == k ? 0 : i * k;
          for (std::size_t j = 0; j < k; ++j) p_.noise_args.outputs.push_back(real(probs, start + j));
        } else {
          for (const auto& a : args) p_.noise_args.outputs.push_back(real(a, i));
        }
        draw.arg_count = p_.noise_args.outputs.size() - draw.first_arg;
        for (std::size_t j = 0; j < draw.arg_count; ++j)
          p_.noise_args.output_names.push_back(layout.noise[p_.noise_draws.size()] + ".arg" + std::to_string(j));
        p_.noise_draws.push_back(draw);
      }
    }
  }
  p_.horizon = m_.horizon;
  p_.discount = m_.discount;

  // step: next state and cost.
  p_.step.name = "step";
  {
    Builder builder(p_.step);
    std::map<std::int64_t, ValueId> next;
    ValueId cost = kNoValue;
    k_ = Kernel{&builder, &next, &cost};
    block(*m_.step);
    if (cost == kNoValue) cost = builder.const_f(0.0);
    for (std::size_t i = 0; i < layout.state.size(); ++i) {
      p_.step.outputs.push_back(next.at(static_cast<std::int64_t>(i)));
      p_.step.output_names.push_back(layout.state[i] + "'");
    }
    p_.step.outputs.push_back(cost);
    p_.step.output_names.push_back("cost");
  }
  return !failed_;
}

}  // namespace

std::unique_ptr<Program> lower(const CheckedModel& model, Diagnostics& diags) {
  auto program = std::make_unique<Program>();
  program->model_name = model.name;
  Lowerer lowerer(model, *program, diags);
  if (!lowerer.run()) return nullptr;
  for (Function* f : {&program->init, &program->observe, &program->step, &program->noise_args}) prune(*f);
  return program;
}

}  // namespace hpo::ir
