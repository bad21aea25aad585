// eval.cpp: evaluation of typed expressions whose value is known at compile time (consts, sizes,
// bounds, param defaults, indices inside unrolled loops).
#include <cmath>
#include <limits>
#include <sstream>

#include "ast/int_math.hpp"
#include "ast/real_math.hpp"
#include "ast/seeded_random.hpp"
#include "sema/internal.hpp"

namespace hpo::sema {

using ast::Scalar;
using ast::Type;

namespace {

Value scalar_int(std::int64_t v) { return Value{Type::integer(), {v}, {}}; }

Value zeros(const Type& t) {
  Value v{t, {}, {}};
  auto n = static_cast<std::size_t>(t.elements());
  if (t.scalar == Scalar::Int) v.ints.assign(n, 0);
  else v.reals.assign(n, 0.0);
  return v;
}

// Element i of an operand that is either an array of the result's shape or a scalar.
double at(const Value& v, std::size_t i) { return v.as_real(v.size() == 1 ? 0 : i); }
std::int64_t at_int(const Value& v, std::size_t i) {
  std::size_t k = v.size() == 1 ? 0 : i;
  return v.type.scalar == Scalar::Int ? v.ints[k] : static_cast<std::int64_t>(v.reals[k]);
}

}  // namespace

std::string first_non_finite(const std::vector<double>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) continue;
    std::ostringstream s;
    if (std::isnan(values[i])) s << "nan";  // the sign of a NaN means nothing to a reader
    else s << values[i];
    s << " at element " << i;
    return s.str();
  }
  return "";
}

const Value* Sema::const_value(const ast::Symbol* sym) {
  if (auto it = const_values_.find(sym); it != const_values_.end()) return it->second ? &*it->second : nullptr;
  Type t = const_type(sym);
  if (t.is_error()) {
    const_values_[sym] = std::nullopt;
    return nullptr;
  }
  const auto& decl = static_cast<const ast::ConstDecl&>(*sym->decl);
  if (sym->loc.file == model_->main_file)
    for (const auto& assignment : options_.sets)
      if (assignment.substr(0, assignment.find('=')) == sym->name) {
        auto v = const_override(sym, t, assignment);
        const_values_[sym] = std::move(v);
        return const_values_[sym] ? &*const_values_[sym] : nullptr;
      }
  Env env;
  const_values_[sym] = std::nullopt;  // guards against cycles during evaluation
  auto v = eval(*decl.value, env);
  if (v && v->type.scalar != ast::Scalar::Int)
    if (auto bad = first_non_finite(v->reals); !bad.empty()) {
      // Folded into every use, a NaN or infinity would surface far from its cause, if at all.
      diags_.error(decl.value->loc, "the value of const '" + sym->name + "' is not finite (" + bad + ")");
      return nullptr;
    }
  const_values_[sym] = std::move(v);
  return const_values_[sym] ? &*const_values_[sym] : nullptr;
}

std::optional<Value> Sema::const_override(const ast::Symbol* sym, const Type& type, const std::string& assignment) {
  const std::string text = assignment.substr(assignment.find('=') + 1), where = "--set " + assignment;
  Value v;
  v.type = type;
  if (type.scalar == Scalar::Bool) {
    if (text != "true" && text != "false") {
      diags_.error_at(where, "const '" + sym->name + "' is a bool; give true or false");
      return std::nullopt;
    }
    v.reals.push_back(text == "true" ? 1.0 : 0.0);
    return v;
  }
  std::size_t used = 0;
  try {
    if (type.scalar == Scalar::Int) {
      v.ints.push_back(std::stoll(text, &used));
    } else {
      v.reals.push_back(std::stod(text, &used));
      if (!std::isfinite(v.reals.back())) used = 0;
    }
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) {
    diags_.error_at(where, "const '" + sym->name + "' is " + (type.scalar == Scalar::Int ? "an int" : "a real") +
                               "; '" + text + "' is not one");
    return std::nullopt;
  }
  return v;
}

const Value* Sema::param_default(const ast::Symbol* sym) {
  if (auto it = param_progress_.find(sym); it != param_progress_.end()) {
    if (it->second == Progress::InProgress) {
      diags_.error(sym->loc, "the default of param '" + sym->name + "' depends on itself");
      param_values_[sym] = std::nullopt;
      it->second = Progress::Done;
      return nullptr;
    }
    auto& v = param_values_[sym];
    return v ? &*v : nullptr;
  }
  const auto& decl = static_cast<const ast::ParamDecl&>(*sym->decl);
  if (!decl.default_value || decl.default_value->type.is_error() || sym->type.is_error()) {
    param_progress_[sym] = Progress::Done;
    param_values_[sym] = std::nullopt;
    return nullptr;
  }
  param_progress_[sym] = Progress::InProgress;
  Env env;
  env.allow_param_defaults = true;
  auto v = eval(*decl.default_value, env);
  if (param_progress_[sym] == Progress::Done) return nullptr;  // a cycle was reported
  param_progress_[sym] = Progress::Done;
  if (!v) {
    param_values_[sym] = std::nullopt;
    return nullptr;
  }
  Value out = zeros(sym->type);
  for (std::size_t i = 0; i < out.reals.size(); ++i) out.reals[i] = at(*v, i);
  if (auto bad = first_non_finite(out.reals); !bad.empty()) {
    diags_.error(decl.default_value->loc, "the default of param '" + sym->name + "' is not finite (" + bad + ")");
    param_values_[sym] = std::nullopt;
    return nullptr;
  }
  param_values_[sym] = std::move(out);
  return &*param_values_[sym];
}

std::optional<std::int64_t> Sema::const_int(ast::Expr& e, Context ctx, const std::string& what) {
  Type t = type_of(e, ctx);
  if (t.is_error()) return std::nullopt;
  if (t.scalar != Scalar::Int || !t.is_scalar()) {
    diags_.error(e.loc, what + " must be an integer constant, not " + t.str());
    return std::nullopt;
  }
  Env env;
  auto v = eval(e, env);
  if (!v) return std::nullopt;
  return v->ints[0];
}

std::optional<double> Sema::const_real(ast::Expr& e, Context ctx, const std::string& what) {
  Type t = type_of(e, ctx);
  if (t.is_error()) return std::nullopt;
  if (!t.is_scalar() || (t.scalar != Scalar::Int && t.scalar != Scalar::Real)) {
    diags_.error(e.loc, what + " must be a number, not " + t.str());
    return std::nullopt;
  }
  Env env;
  auto v = eval(e, env);
  if (!v) return std::nullopt;
  return v->as_real(0);
}

// Work is counted in values produced (and products of a matrix product), so that a small text
// cannot ask for an unbounded amount of computation.
bool Sema::charge_work(std::int64_t amount, SourceLoc loc) {
  work_ += amount;
  if (work_ <= kMaxUnrolledWork) return true;
  if (!work_exceeded_)
    diags_.error(loc, "the model is too large to check (more than " + std::to_string(kMaxUnrolledWork) +
                          " values computed at compile time after unrolling loops and arrays)");
  work_exceeded_ = true;
  return false;
}

std::optional<Value> Sema::eval(const ast::Expr& e, Env& env) {
  if (e.type.is_error() || !charge_work(1, e.loc)) return std::nullopt;
  auto v = eval_node(e, env);
  if (v && !charge_work(static_cast<std::int64_t>(v->size()), e.loc)) return std::nullopt;
  return v;
}

std::optional<Value> Sema::eval_node(const ast::Expr& e, Env& env) {
  switch (e.kind) {
    case ast::ExprKind::IntLit: return scalar_int(static_cast<const ast::IntLit&>(e).value);
    case ast::ExprKind::RealLit: return Value{Type::real(), {}, {static_cast<const ast::RealLit&>(e).value}};
    case ast::ExprKind::BoolLit: return Value{Type::boolean(), {}, {static_cast<const ast::BoolLit&>(e).value ? 1.0 : 0.0}};
    case ast::ExprKind::Inf: return Value{Type::real(), {}, {std::numeric_limits<double>::infinity()}};
    case ast::ExprKind::Name: {
      const auto& n = static_cast<const ast::NameRef&>(e);
      const ast::Symbol* sym = n.symbol;
      if (!sym) return std::nullopt;
      if (auto it = env.values.find(sym); it != env.values.end()) return it->second;
      if (sym->kind == ast::SymbolKind::Const) {
        const Value* v = const_value(sym);
        if (!v) return std::nullopt;
        return *v;
      }
      if (sym->kind == ast::SymbolKind::Param && env.allow_param_defaults) {
        const Value* v = param_default(sym);
        if (!v) {
          const auto& decl = static_cast<const ast::ParamDecl&>(*sym->decl);
          if (!decl.default_value) diags_.error(e.loc, "param '" + sym->name + "' has no default value to use here");
          return std::nullopt;
        }
        return *v;
      }
      diags_.error(e.loc, describe(*sym) + " is not known at compile time");
      return std::nullopt;
    }
    case ast::ExprKind::Index: {
      const auto& ix = static_cast<const ast::IndexExpr&>(e);
      auto base = eval(*ix.base, env);
      if (!base) return std::nullopt;
      std::size_t offset = 0;
      std::size_t stride = base->size();
      for (std::size_t k = 0; k < ix.indices.size(); ++k) {
        auto idx = eval(*ix.indices[k], env);
        if (!idx) return std::nullopt;
        std::int64_t i = at_int(*idx, 0);
        std::int64_t size = ix.base->type.dims[k];
        if (i < 0 || i >= size) {
          diags_.error(ix.indices[k]->loc, "index " + std::to_string(i) + " is out of range for a dimension of size " +
                                               std::to_string(size));
          return std::nullopt;
        }
        stride /= static_cast<std::size_t>(size);
        offset += static_cast<std::size_t>(i) * stride;
      }
      Value out{e.type, {}, {}};
      if (base->type.scalar == Scalar::Int) out.ints.assign(base->ints.begin() + offset, base->ints.begin() + offset + stride);
      else out.reals.assign(base->reals.begin() + offset, base->reals.begin() + offset + stride);
      return out;
    }
    case ast::ExprKind::Unary: {
      const auto& u = static_cast<const ast::UnaryExpr&>(e);
      auto v = eval(*u.operand, env);
      if (!v) return std::nullopt;
      Value out = zeros(e.type);
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (u.op == ast::UnaryOp::Not) out.reals[i] = v->reals[i] != 0 ? 0.0 : 1.0;
        else if (e.type.scalar == Scalar::Int) {
          std::int64_t x = v->ints[i];
          if (u.op == ast::UnaryOp::Neg && x == std::numeric_limits<std::int64_t>::min()) {
            diags_.error(e.loc, "integer overflow");
            return std::nullopt;
          }
          out.ints[i] = u.op == ast::UnaryOp::Neg ? -x : x;
        } else {
          out.reals[i] = u.op == ast::UnaryOp::Neg ? -v->as_real(i) : v->as_real(i);
        }
      }
      return out;
    }
    case ast::ExprKind::Binary: {
      using ast::BinaryOp;
      const auto& b = static_cast<const ast::BinaryExpr&>(e);
      auto lhs = eval(*b.lhs, env);
      if (!lhs) return std::nullopt;
      // `and`/`or` do not evaluate their right side when the left decides.
      if (b.op == BinaryOp::And && lhs->reals[0] == 0) return Value{Type::boolean(), {}, {0.0}};
      if (b.op == BinaryOp::Or && lhs->reals[0] != 0) return Value{Type::boolean(), {}, {1.0}};
      auto rhs = eval(*b.rhs, env);
      if (!rhs) return std::nullopt;
      Value out = zeros(e.type);
      if (b.op == BinaryOp::MatMul) {
        const auto& da = b.lhs->type.dims;
        const auto& db = b.rhs->type.dims;
        std::size_t m = da.size() == 2 ? static_cast<std::size_t>(da[0]) : 1;
        std::size_t k = static_cast<std::size_t>(da.back());
        std::size_t p = db.size() == 2 ? static_cast<std::size_t>(db[1]) : 1;
        if (!charge_work(static_cast<std::int64_t>(m * k * p), e.loc)) return std::nullopt;
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t j = 0; j < p; ++j) {
            double acc = 0;
            for (std::size_t l = 0; l < k; ++l) acc += lhs->as_real(i * k + l) * rhs->as_real(l * p + j);
            out.reals[i * p + j] = acc;
          }
        return out;
      }
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (e.type.scalar == Scalar::Int) {
          std::int64_t x = at_int(*lhs, i), y = at_int(*rhs, i), r = 0;
          bool overflow = false;
          switch (b.op) {
            case BinaryOp::Add: overflow = __builtin_add_overflow(x, y, &r); break;
            case BinaryOp::Sub: overflow = __builtin_sub_overflow(x, y, &r); break;
            case BinaryOp::Mul: overflow = __builtin_mul_overflow(x, y, &r); break;
            case BinaryOp::Mod:
              if (y == 0) {
                diags_.error(e.loc, "integer modulo by zero");
                return std::nullopt;
              }
              r = floor_mod(x, y);
              break;
            default: break;
          }
          if (overflow) {
            diags_.error(e.loc, "integer overflow in '" + std::string(ast::spelling(b.op)) + "'");
            return std::nullopt;
          }
          out.ints[i] = r;
          continue;
        }
        double x = at(*lhs, i), y = at(*rhs, i), r = 0;
        switch (b.op) {
          case BinaryOp::Add: r = x + y; break;
          case BinaryOp::Sub: r = x - y; break;
          case BinaryOp::Mul: r = x * y; break;
          case BinaryOp::Div: r = x / y; break;
          case BinaryOp::Lt: r = x < y; break;
          case BinaryOp::Le: r = x <= y; break;
          case BinaryOp::Gt: r = x > y; break;
          case BinaryOp::Ge: r = x >= y; break;
          case BinaryOp::Eq: r = x == y; break;
          case BinaryOp::Ne: r = x != y; break;
          case BinaryOp::And: r = (x != 0) && (y != 0); break;
          case BinaryOp::Or: r = (x != 0) || (y != 0); break;
          default: break;
        }
        out.reals[i] = r;
      }
      return out;
    }
    case ast::ExprKind::Cond: {
      const auto& c = static_cast<const ast::CondExpr&>(e);
      auto cond = eval(*c.cond, env);
      if (!cond) return std::nullopt;
      auto v = eval(cond->reals[0] != 0 ? *c.then_value : *c.else_value, env);
      if (!v) return std::nullopt;
      Value out = zeros(e.type);
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (e.type.scalar == Scalar::Int) out.ints[i] = at_int(*v, i);
        else out.reals[i] = at(*v, i);
      }
      return out;
    }
    case ast::ExprKind::Call: {
      using ast::Builtin;
      const auto& call = static_cast<const ast::CallExpr&>(e);
      std::vector<Value> args;
      for (const auto& a : call.args) {
        auto v = eval(*a, env);
        if (!v) return std::nullopt;
        args.push_back(std::move(*v));
      }
      Value out = zeros(e.type);
      if (call.builtin == Builtin::None) {
        const ast::FnDecl& fn = *call.fn;
        std::size_t n = call.map_dims.empty() ? 1 : out.size();
        for (std::size_t i = 0; i < n; ++i) {
          Env inner;
          inner.allow_param_defaults = false;
          for (std::size_t p = 0; p < fn.params.size(); ++p) {
            Value arg = args[p];
            if (!call.map_dims.empty()) {
              double x = at(args[p], i);
              arg = fn.params[p].symbol->type.scalar == Scalar::Bool ? Value{Type::boolean(), {}, {x}}
                                                                     : Value{Type::real(), {}, {x}};
            }
            inner.values[fn.params[p].symbol] = std::move(arg);
          }
          for (const auto& let : fn.lets) {
            auto v = eval(*let->value, inner);
            if (!v) return std::nullopt;
            inner.values[let->symbol] = std::move(*v);
          }
          auto r = eval(*fn.result, inner);
          if (!r) return std::nullopt;
          if (call.map_dims.empty()) {
            for (std::size_t k = 0; k < out.size(); ++k) out.reals[k] = r->as_real(k);
          } else {
            out.reals[i] = r->as_real(0);
          }
        }
        return out;
      }
      if (auto f = real::unary(call.builtin)) {
        for (std::size_t i = 0; i < out.size(); ++i) out.reals[i] = f(at(args[0], i));
        return out;
      }
      switch (call.builtin) {
        case Builtin::Max:
        case Builtin::Min: {
          bool is_max = call.builtin == Builtin::Max;
          if (call.reduction) {
            double r = args[0].as_real(0);
            for (std::size_t i = 1; i < args[0].size(); ++i)
              r = is_max ? real::max(r, args[0].as_real(i)) : real::min(r, args[0].as_real(i));
            out.reals[0] = r;
            return out;
          }
          for (std::size_t i = 0; i < out.size(); ++i) {
            if (e.type.scalar == Scalar::Int) {
              out.ints[i] = is_max ? std::max(at_int(args[0], i), at_int(args[1], i))
                                   : std::min(at_int(args[0], i), at_int(args[1], i));
            } else {
              out.reals[i] = is_max ? real::max(at(args[0], i), at(args[1], i)) : real::min(at(args[0], i), at(args[1], i));
            }
          }
          return out;
        }
        case Builtin::Pow:
          for (std::size_t i = 0; i < out.size(); ++i) out.reals[i] = std::pow(at(args[0], i), at(args[1], i));
          return out;
        case Builtin::Clamp:
          for (std::size_t i = 0; i < out.size(); ++i)
            out.reals[i] = real::clamp(at(args[0], i), at(args[1], i), at(args[2], i));
          return out;
        case Builtin::Sum:
        case Builtin::Mean: {
          double total = 0;
          for (std::size_t i = 0; i < args[0].size(); ++i) total += args[0].as_real(i);
          out.reals[0] = call.builtin == Builtin::Sum ? total : total / static_cast<double>(args[0].size());
          return out;
        }
        case Builtin::Dot: {
          double total = 0;
          for (std::size_t i = 0; i < args[0].size(); ++i) total += args[0].as_real(i) * args[1].as_real(i);
          out.reals[0] = total;
          return out;
        }
        case Builtin::Eye: {
          auto n = static_cast<std::size_t>(e.type.dims[0]);
          for (std::size_t i = 0; i < n; ++i) out.reals[i * n + i] = 1.0;
          return out;
        }
        case Builtin::Div: {
          std::int64_t x = args[0].ints[0], y = args[1].ints[0];
          if (y == 0) {
            diags_.error(e.loc, "integer division by zero");
            return std::nullopt;
          }
          if (y == -1) {
            if (x == std::numeric_limits<std::int64_t>::min()) {
              diags_.error(e.loc, "integer overflow in 'div'");
              return std::nullopt;
            }
            out.ints[0] = -x;
            return out;
          }
          out.ints[0] = floor_div(x, y);
          return out;
        }
        case Builtin::SeededUniform:
        case Builtin::SeededNormal: {
          std::vector<std::int64_t> keys;
          for (const auto& arg : args) keys.push_back(arg.ints[0]);
          out.reals[0] = call.builtin == Builtin::SeededUniform ? seeded_uniform(keys) : seeded_normal(keys);
          return out;
        }
        case Builtin::Period:
          diags_.error(e.loc, "period() is not known at compile time (it is the index of the current step)");
          return std::nullopt;
        case Builtin::Relu: case Builtin::Abs: case Builtin::Exp: case Builtin::Log: case Builtin::Sqrt:
        case Builtin::Sin: case Builtin::Cos: case Builtin::Tanh: case Builtin::Sigmoid: case Builtin::Softplus:
        case Builtin::Real:  // real::unary, above
        case Builtin::None: break;
      }
      return std::nullopt;
    }
    case ast::ExprKind::ArrayLit: {
      const auto& a = static_cast<const ast::ArrayLit&>(e);
      Value out{e.type, {}, {}};
      for (const auto& element : a.elements) {
        auto v = eval(*element, env);
        if (!v) return std::nullopt;
        for (std::size_t i = 0; i < v->size(); ++i) {
          if (e.type.scalar == Scalar::Int) out.ints.push_back(v->ints[i]);
          else out.reals.push_back(v->as_real(i));
        }
      }
      return out;
    }
    case ast::ExprKind::Comprehension: {
      const auto& c = static_cast<const ast::Comprehension&>(e);
      Value out{e.type, {}, {}};
      for (std::int64_t i = c.lo_value; i < c.hi_value; ++i) {
        env.values[c.var_symbol] = scalar_int(i);
        auto v = eval(*c.body, env);
        if (!v) {
          env.values.erase(c.var_symbol);
          return std::nullopt;
        }
        for (std::size_t k = 0; k < v->size(); ++k) {
          if (e.type.scalar == Scalar::Int) out.ints.push_back(v->ints[k]);
          else out.reals.push_back(v->as_real(k));
        }
      }
      env.values.erase(c.var_symbol);
      return out;
    }
  }
  return std::nullopt;
}

}  // namespace hpo::sema
