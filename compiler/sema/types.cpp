// types.cpp: types and shapes of expressions, name resolution, and the checks of statements.
#include <algorithm>

#include "sema/internal.hpp"

namespace hpo::sema {

using ast::Scalar;
using ast::Type;

namespace {

const char* context_phrase(Context ctx) {
  switch (ctx) {
    case Context::Const: return "a compile-time constant (const values, array sizes, loop bounds)";
    case Context::Bound: return "an action bound (constants only)";
    case Context::ParamDefault: return "a param default (consts, params and literals only)";
    case Context::NoiseArg: return "the arguments of a noise distribution (params and consts only)";
    case Context::StateInit: return "an initial state value (params, consts and noise only)";
    case Context::Observe: return "an observation (state, params and consts only)";
    case Context::Step: return "step";
    case Context::FnBody: return "a function body (functions see only their arguments and consts)";
  }
  return "here";
}

bool allowed(ast::SymbolKind kind, Context ctx) {
  using K = ast::SymbolKind;
  switch (kind) {
    case K::Const:
    case K::Let:
    case K::LoopVar:
    case K::FnParam: return true;
    case K::Param:
      return ctx == Context::ParamDefault || ctx == Context::NoiseArg || ctx == Context::StateInit ||
             ctx == Context::Observe || ctx == Context::Step;
    case K::State: return ctx == Context::Observe || ctx == Context::Step;
    case K::Action: return ctx == Context::Step;
    case K::Noise: return ctx == Context::StateInit || ctx == Context::Step;
    case K::Fn: return false;
  }
  return false;
}

// The name an expression reads, for messages: `order` in `order[s]`.
const ast::NameRef* root_name(const ast::Expr& e) {
  if (e.kind == ast::ExprKind::Name) return static_cast<const ast::NameRef*>(&e);
  if (e.kind == ast::ExprKind::Index) return root_name(*static_cast<const ast::IndexExpr&>(e).base);
  return nullptr;
}

// An int known only at run time (period(), or an int picked by a discrete choice): it compares
// and indexes, and arithmetic on it gives a real, since the IR's integers are compile-time values.
bool runtime_int(const ast::Expr& e) { return e.type.scalar == Scalar::Int && !e.is_static; }

bool is_comparison(ast::BinaryOp op) {
  using ast::BinaryOp;
  return op == BinaryOp::Lt || op == BinaryOp::Le || op == BinaryOp::Gt || op == BinaryOp::Ge ||
         op == BinaryOp::Eq || op == BinaryOp::Ne;
}

}  // namespace

void Sema::report_not_a_number(const ast::Expr& e, const Type& t) {
  const ast::NameRef* name = root_name(e);
  std::string what = name && name->symbol ? describe(*name->symbol) : "a " + t.element().str() + " value";
  diags_.error(e.loc, what + " is a discrete choice, not a number; compare it (== 1), index with it, "
                             "or convert it explicitly with real(...)");
}

bool Sema::is_period(const ast::Expr& e) const {
  if (e.kind == ast::ExprKind::Call) return static_cast<const ast::CallExpr&>(e).builtin == ast::Builtin::Period;
  if (e.kind == ast::ExprKind::Name) return period_lets_.count(static_cast<const ast::NameRef&>(e).symbol) > 0;
  return false;
}

const ast::Symbol* Sema::lookup(const std::string& name) const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
    if (auto found = it->find(name); found != it->end()) return found->second;
  if (auto found = globals_.find(name); found != globals_.end()) return found->second;
  return nullptr;
}

ast::Symbol* Sema::declare_local(ast::SymbolKind kind, const std::string& name, SourceLoc loc, Type type,
                                 bool is_static, bool allow_shadowing) {
  const ast::Symbol* existing = nullptr;
  if (allow_shadowing) {
    if (!scopes_.empty())
      for (auto& scope : scopes_)
        if (auto it = scope.find(name); it != scope.end()) existing = it->second;
  } else {
    existing = lookup(name);
  }
  if (name == "cost") {
    diags_.error(loc, "'cost' is reserved for the step cost");
    return nullptr;
  }
  if (existing) {
    diags_.error(loc, "'" + name + "' is already declared (as " + describe(*existing) + ")");
    diags_.note(existing->loc, "'" + name + "' is declared here");
    return nullptr;
  }
  ast::Symbol& sym = model_->symbols.emplace_back();
  sym.kind = kind;
  sym.name = name;
  sym.loc = loc;
  sym.type = std::move(type);
  sym.is_static = is_static;
  scopes_.back()[name] = &sym;
  return &sym;
}

Type Sema::const_type(const ast::Symbol* sym) {
  auto& decl = const_cast<ast::ConstDecl&>(static_cast<const ast::ConstDecl&>(*sym->decl));
  auto progress = const_progress_.find(sym);
  if (progress != const_progress_.end()) {
    if (progress->second == Progress::InProgress) {
      diags_.error(decl.loc, "const '" + sym->name + "' is defined in terms of itself");
      const_progress_[sym] = Progress::Done;
      const_values_[sym] = std::nullopt;
    }
    return sym->type;
  }
  const_progress_[sym] = Progress::InProgress;
  auto saved_scopes = std::move(scopes_);
  scopes_.clear();
  Type t = type_of(*decl.value, Context::Const);
  scopes_ = std::move(saved_scopes);
  if (const_progress_[sym] == Progress::Done) return Type::error();  // a cycle was reported
  auto* mutable_sym = const_cast<ast::Symbol*>(sym);
  if (!t.is_error() && !t.is_scalar()) {
    diags_.error(decl.value->loc, "a const is a scalar (int, real or bool); use a param for arrays");
    t = Type::error();
  } else if (!t.is_error() && t.scalar == Scalar::Choice) {
    diags_.error(decl.value->loc, "a const cannot hold a discrete choice");
    t = Type::error();
  }
  mutable_sym->type = t;
  const_progress_[sym] = Progress::Done;
  return t;
}

Type Sema::type_of(ast::Expr& e, Context ctx) {
  e.type = compute_type(e, ctx);
  return e.type;
}

Type Sema::compute_type(ast::Expr& e, Context ctx) {
  switch (e.kind) {
    case ast::ExprKind::IntLit: e.is_static = true; return Type::integer();
    case ast::ExprKind::RealLit: e.is_static = true; return Type::real();
    case ast::ExprKind::BoolLit: e.is_static = true; return Type::boolean();
    case ast::ExprKind::Inf:
      if (ctx != Context::Bound) {
        diags_.error(e.loc, "'inf' is only allowed in action bounds (real in [0, inf])");
        return Type::error();
      }
      e.is_static = true;
      return Type::real();
    case ast::ExprKind::Name: return type_name(static_cast<ast::NameRef&>(e), ctx);
    case ast::ExprKind::Index: return type_index(static_cast<ast::IndexExpr&>(e), ctx);
    case ast::ExprKind::Unary: return type_unary(static_cast<ast::UnaryExpr&>(e), ctx);
    case ast::ExprKind::Binary: return type_binary(static_cast<ast::BinaryExpr&>(e), ctx);
    case ast::ExprKind::Cond: return type_cond(static_cast<ast::CondExpr&>(e), ctx);
    case ast::ExprKind::Call: return type_call(static_cast<ast::CallExpr&>(e), ctx);
    case ast::ExprKind::ArrayLit: return type_array(static_cast<ast::ArrayLit&>(e), ctx);
    case ast::ExprKind::Comprehension: return type_comprehension(static_cast<ast::Comprehension&>(e), ctx);
  }
  return Type::error();
}

Type Sema::type_name(ast::NameRef& e, Context ctx) {
  if (e.name == "cost") {
    diags_.error(e.loc, "'cost' can only be added to (cost += ...), not read");
    return Type::error();
  }
  const ast::Symbol* sym = lookup(e.name);
  if (!sym) {
    diags_.error(e.loc, "unknown name '" + e.name + "'");
    return Type::error();
  }
  e.symbol = sym;
  if (sym->kind == ast::SymbolKind::Fn) {
    diags_.error(e.loc, "'" + e.name + "' is a function; call it with " + e.name + "(...)");
    return Type::error();
  }
  if (!allowed(sym->kind, ctx)) {
    diags_.error(e.loc, describe(*sym) + " cannot be used in " + context_phrase(ctx));
    return Type::error();
  }
  if (e.next) {
    if (sym->kind != ast::SymbolKind::State) {
      diags_.error(e.loc, describe(*sym) + " is not a state; only states have a next value (x')");
      return Type::error();
    }
    if (ctx != Context::Step) {
      diags_.error(e.loc, "next state " + e.name + "' can only be used in step");
      return Type::error();
    }
  }
  e.is_static = sym->is_static;
  if (sym->kind == ast::SymbolKind::Const) return const_type(sym);
  return sym->type;
}

Type Sema::type_index(ast::IndexExpr& e, Context ctx) {
  Type base = type_of(*e.base, ctx);
  bool ok = !base.is_error();
  bool is_static = e.base->is_static;
  for (auto& index : e.indices) {
    Type t = type_of(*index, ctx);
    if (t.is_error()) { ok = false; continue; }
    is_static = is_static && index->is_static;
    if (!t.is_scalar()) {
      diags_.error(index->loc, "an index must be a single value, not an array of " + shape_str(t));
      ok = false;
    } else if (t.scalar != Scalar::Int && t.scalar != Scalar::Choice) {
      diags_.error(index->loc, "an index must be an integer (a constant or a loop variable) or a discrete choice, not " +
                                   t.str());
      ok = false;
    }
  }
  if (!ok) return Type::error();
  if (e.indices.size() > base.dims.size()) {
    const ast::NameRef* name = root_name(*e.base);
    std::string what = name ? "'" + name->name + "'" : "this value";
    diags_.error(e.loc, base.dims.empty() ? what + " is a scalar and cannot be indexed"
                                          : what + " has " + std::to_string(base.dims.size()) + " dimension" +
                                                (base.dims.size() == 1 ? "" : "s") + " but is indexed with " +
                                                std::to_string(e.indices.size()));
    return Type::error();
  }
  for (std::size_t i = 0; i < e.indices.size(); ++i) {
    const Type& t = e.indices[i]->type;
    if (t.scalar == Scalar::Choice && t.cardinality > base.dims[i]) {
      diags_.error(e.indices[i]->loc, "this index takes values 0.." + std::to_string(t.cardinality - 1) +
                                          " but the dimension has size " + std::to_string(base.dims[i]));
      return Type::error();
    }
    // period() runs over every step of the horizon: each must have an element.
    if (is_period(*e.indices[i]) && model_->horizon > 0 && base.dims[i] < model_->horizon) {
      diags_.error(e.indices[i]->loc, "this index is period(), which takes values 0.." +
                                          std::to_string(model_->horizon - 1) + " (horizon " +
                                          std::to_string(model_->horizon) + "), but the dimension has size " +
                                          std::to_string(base.dims[i]));
      return Type::error();
    }
  }
  e.is_static = is_static;
  return base.with_dims(std::vector<std::int64_t>(base.dims.begin() + static_cast<long>(e.indices.size()), base.dims.end()));
}

Type Sema::type_unary(ast::UnaryExpr& e, Context ctx) {
  Type t = type_of(*e.operand, ctx);
  if (t.is_error()) return t;
  e.is_static = e.operand->is_static;
  if (e.op == ast::UnaryOp::Not) {
    if (t.scalar != Scalar::Bool) {
      diags_.error(e.loc, "'not' needs a bool, not " + t.str());
      return Type::error();
    }
    return t;
  }
  if (t.scalar == Scalar::Choice) {
    report_not_a_number(*e.operand, t);
    return Type::error();
  }
  if (t.scalar == Scalar::Bool || runtime_int(*e.operand)) return Type::real(t.dims);
  return t;
}

Type Sema::type_binary(ast::BinaryExpr& e, Context ctx) {
  using ast::BinaryOp;
  Type a = type_of(*e.lhs, ctx);
  Type b = type_of(*e.rhs, ctx);
  if (a.is_error() || b.is_error()) return Type::error();
  e.is_static = e.lhs->is_static && e.rhs->is_static;
  const std::string op = ast::spelling(e.op);

  if (e.op == BinaryOp::And || e.op == BinaryOp::Or) {
    for (auto* side : {e.lhs.get(), e.rhs.get()}) {
      if (side->type.scalar != Scalar::Bool || !side->type.is_scalar()) {
        diags_.error(side->loc, "'" + op + "' needs bool operands, not " + side->type.str());
        return Type::error();
      }
    }
    return Type::boolean();
  }

  // Discrete values may only be compared: with each other or with integer constants.
  if (a.scalar == Scalar::Choice || b.scalar == Scalar::Choice) {
    if (e.op == BinaryOp::Eq || e.op == BinaryOp::Ne || is_comparison(e.op)) {
      const Type& other = a.scalar == Scalar::Choice ? b : a;
      if (other.scalar == Scalar::Choice || other.scalar == Scalar::Int) {
        if (!a.is_scalar() || !b.is_scalar()) {
          diags_.error(e.loc, "compare discrete choices one element at a time");
          return Type::error();
        }
        return Type::boolean();
      }
      diags_.error(e.loc, "a discrete choice can be compared with an integer or another choice, not with " +
                              other.str());
      return Type::error();
    }
    report_not_a_number(a.scalar == Scalar::Choice ? *e.lhs : *e.rhs, a.scalar == Scalar::Choice ? a : b);
    return Type::error();
  }

  if (e.op == BinaryOp::MatMul) {
    std::size_t ra = a.dims.size(), rb = b.dims.size();
    if (ra < 1 || ra > 2 || rb < 1 || rb > 2) {
      diags_.error(e.loc, "'@' multiplies vectors and matrices, not " + shape_str(a) + " and " + shape_str(b));
      return Type::error();
    }
    std::int64_t inner_a = a.dims.back();
    std::int64_t inner_b = b.dims.front();
    if (inner_a != inner_b) {
      diags_.error(e.loc, "matrix product shapes " + ast::dims_str(a.dims) + " @ " + ast::dims_str(b.dims) +
                              " do not match: inner sizes " + std::to_string(inner_a) + " and " +
                              std::to_string(inner_b) + " differ");
      return Type::error();
    }
    std::vector<std::int64_t> dims;
    if (ra == 2) dims.push_back(a.dims[0]);
    if (rb == 2) dims.push_back(b.dims[1]);
    return Type::real(dims);
  }

  std::vector<std::int64_t> dims;
  if (a.dims.empty()) dims = b.dims;
  else if (b.dims.empty() || a.dims == b.dims) dims = a.dims;
  else {
    diags_.error(e.loc, "shapes " + ast::dims_str(a.dims) + " and " + ast::dims_str(b.dims) + " do not match in '" +
                            op + "' (arrays combine elementwise with equal shapes, or with a scalar)");
    return Type::error();
  }

  if (is_comparison(e.op)) {
    // `lo < x < hi` would compare a bool with hi; say so instead of promoting the bool.
    if ((a.scalar == Scalar::Bool) != (b.scalar == Scalar::Bool)) {
      diags_.error(e.loc, "cannot compare a bool with a number; comparisons do not chain (write lo < x and x < hi)");
      return Type::error();
    }
    return Type::boolean(dims);
  }
  if (e.op == BinaryOp::Mod) {
    if (a.scalar != Scalar::Int || b.scalar != Scalar::Int) {
      diags_.error(e.loc, "'%' needs integers, not " + a.str() + " and " + b.str());
      return Type::error();
    }
    if (!e.is_static) {
      diags_.error(e.loc, "'%' needs integers known at compile time, and " +
                              std::string(is_period(*e.lhs) || is_period(*e.rhs) ? "period()" : "this operand") +
                              " is known only at run time");
      return Type::error();
    }
    return {Scalar::Int, 0, dims};
  }
  if (e.op == BinaryOp::Div) return Type::real(dims);
  if (a.scalar == Scalar::Int && b.scalar == Scalar::Int && e.is_static) return {Scalar::Int, 0, dims};
  return Type::real(dims);
}

bool Sema::check_condition(ast::Expr& cond, Context ctx) {
  Type t = type_of(cond, ctx);
  if (t.is_error()) return false;
  if (!t.is_scalar()) {
    diags_.error(cond.loc, "a condition must be a single bool, not an array of " + shape_str(t) +
                               " (use sum, max or min to reduce it)");
    return false;
  }
  if (t.scalar == Scalar::Bool) return true;
  if (t.scalar == Scalar::Choice && t.cardinality == 2) return true;
  if (t.scalar == Scalar::Choice) {
    diags_.error(cond.loc, "a " + t.str() + " value is not a condition; compare it, e.g. == 1");
    return false;
  }
  diags_.error(cond.loc, "a condition must be a bool, not " + t.str() + " (compare it, e.g. x > 0)");
  return false;
}

Type Sema::type_cond(ast::CondExpr& e, Context ctx) {
  bool ok = check_condition(*e.cond, ctx);
  Type a = type_of(*e.then_value, ctx);
  Type b = type_of(*e.else_value, ctx);
  if (!ok || a.is_error() || b.is_error()) return Type::error();
  e.is_static = e.cond->is_static && e.then_value->is_static && e.else_value->is_static;
  std::vector<std::int64_t> dims;
  if (a.dims.empty()) dims = b.dims;
  else if (b.dims.empty() || a.dims == b.dims) dims = a.dims;
  else {
    diags_.error(e.loc, "the branches of this if have different shapes: " + ast::dims_str(a.dims) + " and " +
                            ast::dims_str(b.dims));
    return Type::error();
  }
  if (a.scalar == Scalar::Choice || b.scalar == Scalar::Choice) {
    if (a.scalar == b.scalar && a.cardinality == b.cardinality) return a.with_dims(dims);
    diags_.error(e.loc, "the branches of this if must both be discrete choices of the same kind, got " + a.str() +
                            " and " + b.str());
    return Type::error();
  }
  if (a.scalar == Scalar::Int && b.scalar == Scalar::Int && (runtime_int(*e.then_value) || runtime_int(*e.else_value)))
    return Type::real(dims);
  if (a.scalar == b.scalar) return a.with_dims(dims);
  return Type::real(dims);
}

Type Sema::type_array(ast::ArrayLit& e, Context ctx) {
  Type element;
  bool ok = true;
  bool is_static = true;
  bool all_int = true, all_bool = true;
  for (std::size_t i = 0; i < e.elements.size(); ++i) {
    Type t = type_of(*e.elements[i], ctx);
    if (t.is_error()) { ok = false; continue; }
    is_static = is_static && e.elements[i]->is_static;
    if (t.scalar == Scalar::Choice) {
      report_not_a_number(*e.elements[i], t);
      ok = false;
      continue;
    }
    all_int = all_int && t.scalar == Scalar::Int;
    all_bool = all_bool && t.scalar == Scalar::Bool;
    if (element.is_error()) {
      element = t;
    } else if (element.dims != t.dims) {
      diags_.error(e.elements[i]->loc, "array literal elements have different shapes: " + shape_str(element) +
                                           " and " + shape_str(t));
      ok = false;
    }
  }
  if (!ok || element.is_error()) return Type::error();
  std::vector<std::int64_t> dims{static_cast<std::int64_t>(e.elements.size())};
  dims.insert(dims.end(), element.dims.begin(), element.dims.end());
  if (ast::Type::real(dims).elements() > kMaxArrayElements) {
    diags_.error(e.loc, "array literal is too large");
    return Type::error();
  }
  e.is_static = is_static;
  if (all_int && is_static) return {Scalar::Int, 0, dims};
  if (all_bool) return Type::boolean(dims);
  return Type::real(dims);
}

Type Sema::type_comprehension(ast::Comprehension& e, Context ctx) {
  Type lo = type_of(*e.lo, ctx);
  Type hi = type_of(*e.hi, ctx);
  if (lo.is_error() || hi.is_error()) return Type::error();
  for (auto* bound : {e.lo.get(), e.hi.get()}) {
    if (bound->type.scalar != Scalar::Int || !bound->type.is_scalar() || !bound->is_static) {
      diags_.error(bound->loc, "comprehension bounds must be integer constants: they fix the array's size");
      return Type::error();
    }
  }
  Env env;
  auto lo_value = eval(*e.lo, env);
  auto hi_value = eval(*e.hi, env);
  if (!lo_value || !hi_value) return Type::error();
  e.lo_value = lo_value->ints[0];
  e.hi_value = hi_value->ints[0];
  std::int64_t span = 0;
  if (e.hi_value > e.lo_value && (__builtin_sub_overflow(e.hi_value, e.lo_value, &span) || span > kMaxArrayElements)) {
    diags_.error(e.loc, "comprehension range is too large");
    return Type::error();
  }
  if (e.hi_value <= e.lo_value) {
    diags_.error(e.loc, "comprehension range " + std::to_string(e.lo_value) + ".." + std::to_string(e.hi_value) +
                            " is empty");
    return Type::error();
  }
  scopes_.emplace_back();
  auto* var = declare_local(ast::SymbolKind::LoopVar, e.var, e.var_loc, Type::integer(), true, in_fn_scope_);
  e.var_symbol = var;
  Type body = type_of(*e.body, ctx);
  scopes_.pop_back();
  if (!var || body.is_error()) return Type::error();
  if (body.scalar == Scalar::Choice) {
    report_not_a_number(*e.body, body);
    return Type::error();
  }
  std::vector<std::int64_t> dims{e.hi_value - e.lo_value};
  dims.insert(dims.end(), body.dims.begin(), body.dims.end());
  if (Type::real(dims).elements() > kMaxArrayElements) {
    diags_.error(e.loc, "comprehension result is too large");
    return Type::error();
  }
  e.is_static = e.body->is_static;
  if (runtime_int(*e.body)) return Type::real(dims);
  return body.with_dims(dims);
}

Type Sema::type_call(ast::CallExpr& e, Context ctx) {
  e.builtin = ast::builtin_named(e.callee);
  if (e.builtin != ast::Builtin::None) return type_builtin(e, ctx);
  return type_user_call(e, ctx);
}

Type Sema::type_builtin(ast::CallExpr& e, Context ctx) {
  using ast::Builtin;
  const std::string name = e.callee;
  std::vector<Type> args;
  bool ok = true;
  bool is_static = true;
  for (auto& arg : e.args) {
    args.push_back(type_of(*arg, ctx));
    if (args.back().is_error()) ok = false;
    is_static = is_static && arg->is_static;
  }
  if (!ok) return Type::error();
  auto arity = [&](std::size_t lo, std::size_t hi, const char* signature) {
    if (e.args.size() < lo || e.args.size() > hi) {
      diags_.error(e.loc, "'" + name + "' takes " +
                              (lo == hi ? std::to_string(lo) : std::to_string(lo) + " or " + std::to_string(hi)) +
                              " argument" + (hi == 1 ? "" : "s") + ": " + signature);
      return false;
    }
    return true;
  };
  // Numbers only; a discrete choice is never silently a number.
  auto numeric = [&](std::size_t i) {
    if (args[i].scalar == ast::Scalar::Choice && e.builtin != Builtin::Real) {
      report_not_a_number(*e.args[i], args[i]);
      return false;
    }
    return true;
  };
  auto broadcast = [&](std::vector<std::int64_t>& dims) {
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (!numeric(i)) return false;
      if (args[i].dims.empty()) continue;
      if (dims.empty()) dims = args[i].dims;
      else if (dims != args[i].dims) {
        diags_.error(e.args[i]->loc, "'" + name + "' arguments have different shapes: " + ast::dims_str(dims) +
                                         " and " + ast::dims_str(args[i].dims));
        return false;
      }
    }
    return true;
  };
  e.is_static = is_static;
  std::vector<std::int64_t> dims;
  switch (e.builtin) {
    case Builtin::Relu: case Builtin::Abs: case Builtin::Exp: case Builtin::Log: case Builtin::Sqrt:
    case Builtin::Sin: case Builtin::Cos: case Builtin::Tanh: case Builtin::Sigmoid: case Builtin::Softplus:
      if (!arity(1, 1, (name + "(x)").c_str()) || !broadcast(dims)) return Type::error();
      return Type::real(dims);
    case Builtin::Max: case Builtin::Min:
      if (!arity(1, 2, (name + "(a, b), or " + name + "(array)").c_str())) return Type::error();
      if (e.args.size() == 1) {
        if (!numeric(0)) return Type::error();
        if (args[0].dims.empty()) {
          diags_.error(e.loc, "'" + name + "' with one argument reduces an array, but this is a scalar");
          return Type::error();
        }
        e.reduction = true;
        return Type::real();
      }
      if (!broadcast(dims)) return Type::error();
      if (args[0].scalar == ast::Scalar::Int && args[1].scalar == ast::Scalar::Int && is_static) return Type::integer();
      return Type::real(dims);
    case Builtin::Pow:
      if (!arity(2, 2, "pow(base, exponent)") || !broadcast(dims)) return Type::error();
      return Type::real(dims);
    case Builtin::Clamp:
      if (!arity(3, 3, "clamp(x, lo, hi)") || !broadcast(dims)) return Type::error();
      return Type::real(dims);
    case Builtin::Sum: case Builtin::Mean:
      if (!arity(1, 1, (name + "(array)").c_str()) || !numeric(0)) return Type::error();
      if (args[0].dims.empty()) {
        diags_.error(e.loc, "'" + name + "' reduces an array, but this is a scalar");
        return Type::error();
      }
      return Type::real();
    case Builtin::Dot:
      if (!arity(2, 2, "dot(a, b)") || !numeric(0) || !numeric(1)) return Type::error();
      if (args[0].dims.size() != 1 || args[1].dims.size() != 1 || args[0].dims != args[1].dims) {
        diags_.error(e.loc, "'dot' needs two vectors of the same length, got " + shape_str(args[0]) + " and " +
                                shape_str(args[1]));
        return Type::error();
      }
      return Type::real();
    case Builtin::Real:
      if (!arity(1, 1, "real(x)")) return Type::error();
      return Type::real(args[0].dims);
    case Builtin::Eye: {
      if (!arity(1, 1, "eye(n)")) return Type::error();
      if (args[0].scalar != ast::Scalar::Int || !e.args[0]->is_static || !args[0].is_scalar()) {
        diags_.error(e.args[0]->loc, "'eye' needs an integer constant size");
        return Type::error();
      }
      Env env;
      auto n = eval(*e.args[0], env);
      if (!n) return Type::error();
      std::int64_t size = n->ints[0];
      if (size < 1 || size > kMaxArrayElements / size) {
        diags_.error(e.args[0]->loc, "eye(" + std::to_string(size) + ") has an invalid size");
        return Type::error();
      }
      return Type::real({size, size});
    }
    case Builtin::Div:
      if (!arity(2, 2, "div(a, b)")) return Type::error();
      for (std::size_t i = 0; i < 2; ++i) {
        if (args[i].scalar != ast::Scalar::Int || !args[i].is_scalar()) {
          diags_.error(e.args[i]->loc, "'div' is integer division; it needs integers, not " + args[i].str());
          return Type::error();
        }
        if (!e.args[i]->is_static) {
          diags_.error(e.args[i]->loc, "'div' needs integers known at compile time, and " +
                                           std::string(is_period(*e.args[i]) ? "period()" : "this one") +
                                           " is known only at run time (use '/' for a real quotient)");
          return Type::error();
        }
      }
      return Type::integer();
    case Builtin::SeededUniform: case Builtin::SeededNormal:
      if (e.args.empty()) {
        diags_.error(e.loc, "'" + name + "' takes a seed and any number of integer keys: " + name + "(seed, i, j, ...)");
        return Type::error();
      }
      for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i].scalar != ast::Scalar::Int || !args[i].is_scalar()) {
          diags_.error(e.args[i]->loc, "'" + name + "' keys are integers (a seed, loop indices), not " + args[i].str());
          return Type::error();
        }
        if (!e.args[i]->is_static) {
          diags_.error(e.args[i]->loc, "'" + name + "' keys must be known at compile time (a seed, loop indices)");
          return Type::error();
        }
      }
      return Type::real();
    case Builtin::Period:
      if (!arity(0, 0, "period()")) return Type::error();
      if (ctx != Context::Step && ctx != Context::Observe) {
        diags_.error(e.loc, std::string("period() is the index of the current step, known only in step and observe, "
                                        "not in ") + context_phrase(ctx));
        return Type::error();
      }
      model_->uses_period = true;
      e.is_static = false;
      return Type::integer();
    case Builtin::None: break;
  }
  return Type::error();
}

Type Sema::type_user_call(ast::CallExpr& e, Context ctx) {
  const ast::Symbol* sym = lookup(e.callee);
  for (auto& arg : e.args) type_of(*arg, ctx);
  if (!sym) {
    diags_.error(e.loc, "unknown function '" + e.callee + "'");
    return Type::error();
  }
  if (sym->kind != ast::SymbolKind::Fn) {
    diags_.error(e.loc, describe(*sym) + " is not a function");
    return Type::error();
  }
  const auto& fn = static_cast<const ast::FnDecl&>(*sym->decl);
  e.fn = &fn;
  check_fn(fn);
  if (e.args.size() != fn.params.size()) {
    diags_.error(e.loc, "'" + fn.name + "' takes " + std::to_string(fn.params.size()) + " argument" +
                            (fn.params.size() == 1 ? "" : "s") + ", got " + std::to_string(e.args.size()));
    diags_.note(fn.loc, "'" + fn.name + "' is declared here");
    return Type::error();
  }
  if (sym->type.is_error()) return Type::error();
  bool all_scalar_params = true;
  for (const auto& p : fn.params) all_scalar_params = all_scalar_params && p.symbol && p.symbol->type.is_scalar();
  std::vector<std::int64_t> map_dims;
  for (std::size_t i = 0; i < e.args.size(); ++i) {
    const Type& arg = e.args[i]->type;
    if (arg.is_error()) return Type::error();
    if (!fn.params[i].symbol) return Type::error();
    const Type& want = fn.params[i].symbol->type;
    if (arg.scalar == ast::Scalar::Choice) {
      report_not_a_number(*e.args[i], arg);
      return Type::error();
    }
    bool scalar_ok = want.scalar == ast::Scalar::Real ? arg.is_numeric() : arg.scalar == want.scalar;
    if (!scalar_ok) {
      diags_.error(e.args[i]->loc, "argument " + std::to_string(i + 1) + " of '" + fn.name + "' must be " +
                                       want.element().str() + ", not " + arg.element().str());
      return Type::error();
    }
    if (arg.dims == want.dims) continue;
    if (all_scalar_params && !arg.dims.empty() && (map_dims.empty() || map_dims == arg.dims)) {
      map_dims = arg.dims;  // a scalar function applied elementwise
      continue;
    }
    diags_.error(e.args[i]->loc, "argument " + std::to_string(i + 1) + " of '" + fn.name + "' must have " +
                                     shape_str(want) + ", not " + shape_str(arg));
    return Type::error();
  }
  e.map_dims = map_dims;
  if (!map_dims.empty()) {
    if (!sym->type.is_scalar()) {
      diags_.error(e.loc, "'" + fn.name + "' returns an array, so it cannot be applied elementwise");
      return Type::error();
    }
    return sym->type.with_dims(map_dims);
  }
  return sym->type;
}

void Sema::check_fn(const ast::FnDecl& cfn) {
  auto& fn = const_cast<ast::FnDecl&>(cfn);
  auto it = decl_symbol_.find(&fn);
  if (it == decl_symbol_.end()) return;
  ast::Symbol* sym = it->second;
  if (auto p = fn_progress_.find(&fn); p != fn_progress_.end()) {
    if (p->second == Progress::InProgress) {
      // The functions being checked form the call path; the cycle starts where fn entered it.
      std::string cycle;
      auto first = std::find(fn_stack_.begin(), fn_stack_.end(), &fn);
      for (auto f = first; f != fn_stack_.end(); ++f) cycle += (*f)->name + " -> ";
      diags_.error(fn.loc, "function '" + fn.name + "' calls itself (" + cycle + fn.name +
                               "); recursion is not supported: steps are unrolled");
      p->second = Progress::Done;
      sym->type = Type::error();
    }
    return;
  }
  fn_progress_[&fn] = Progress::InProgress;
  fn_stack_.push_back(&fn);
  auto saved_scopes = std::move(scopes_);
  bool saved_in_fn = in_fn_scope_;
  scopes_.clear();
  scopes_.emplace_back();
  in_fn_scope_ = true;
  bool ok = true;
  auto resolve_type = [&](ast::TypeRef& ref, const std::string& what) -> std::optional<Type> {
    if (ref.base == Scalar::Int) {
      diags_.error(ref.loc, "function parameters and results are real or bool (int values are compile-time only)");
      return std::nullopt;
    }
    auto dims = eval_dims(ref.dims, what);
    if (dims == std::vector<std::int64_t>{-1}) return std::nullopt;
    return Type{ref.base, 0, dims};
  };
  for (auto& p : fn.params) {
    auto t = resolve_type(p.type, "parameter '" + p.name + "'");
    if (!t) ok = false;
    // Declared even when its type failed, so its uses do not add "unknown name" errors.
    p.symbol = declare_local(ast::SymbolKind::FnParam, p.name, p.loc, t ? *t : Type::error(), false, true);
    if (!p.symbol) ok = false;
  }
  for (auto& let : fn.lets) {
    Type t = type_of(*let->value, Context::FnBody);
    if (t.is_error()) { ok = false; continue; }
    let->symbol = declare_local(ast::SymbolKind::Let, let->name, let->loc, t, let->value->is_static, true);
    if (!let->symbol) ok = false;
  }
  Type result = type_of(*fn.result, Context::FnBody);
  if (result.is_error()) ok = false;
  if (ok && fn.return_type) {
    auto declared = resolve_type(*fn.return_type, "the result of '" + fn.name + "'");
    if (!declared) {
      ok = false;
    } else {
      bool scalar_ok = declared->scalar == Scalar::Real ? result.is_numeric() : result.scalar == declared->scalar;
      if (!scalar_ok || result.dims != declared->dims) {
        diags_.error(fn.result->loc, "'" + fn.name + "' is declared to return " + declared->str() + " but returns " +
                                         result.str());
        ok = false;
      } else {
        result = *declared;
      }
    }
  }
  if (ok && result.scalar == Scalar::Choice) {
    diags_.error(fn.result->loc, "a function cannot return a discrete choice");
    ok = false;
  }
  if (ok && result.scalar == Scalar::Int) result = Type::real(result.dims);
  if (ok) {
    for (auto& let : fn.lets) check_compile_time(*let->value);
    check_compile_time(*fn.result);
  }
  scopes_ = std::move(saved_scopes);
  in_fn_scope_ = saved_in_fn;
  fn_stack_.pop_back();
  if (fn_progress_[&fn] == Progress::Done) return;  // recursion was reported inside
  fn_progress_[&fn] = Progress::Done;
  sym->type = ok ? result : Type::error();
}

// ---------------------------------------------------------------- statements of step

void Sema::check_step_block(ast::Block& block) {
  scopes_.emplace_back();
  for (auto& s : block) {
    if (diags_.too_many()) break;
    check_stmt(*s);
  }
  scopes_.pop_back();
}

void Sema::check_stmt(ast::Stmt& s) {
  switch (s.kind) {
    case ast::StmtKind::Let: {
      auto& let = static_cast<ast::LetStmt&>(s);
      Type t = type_of(*let.value, Context::Step);
      let.symbol = declare_local(ast::SymbolKind::Let, let.name, let.loc, t, let.value->is_static, false);
      if (let.symbol && is_period(*let.value)) period_lets_.insert(let.symbol);
      return;
    }
    case ast::StmtKind::Assign: check_assign(static_cast<ast::AssignStmt&>(s)); return;
    case ast::StmtKind::If: {
      auto& i = static_cast<ast::IfStmt&>(s);
      check_condition(*i.cond, Context::Step);
      check_step_block(i.then_block);
      if (i.has_else) check_step_block(i.else_block);
      return;
    }
    case ast::StmtKind::For: {
      auto& f = static_cast<ast::ForStmt&>(s);
      bool ok = true;
      for (auto* bound : {f.lo.get(), f.hi.get()}) {
        Type t = type_of(*bound, Context::Step);
        if (t.is_error()) { ok = false; continue; }
        if (t.scalar != Scalar::Int || !t.is_scalar() || !bound->is_static) {
          diags_.error(bound->loc, "loop bounds must be compile-time integers (consts, literals, loop variables)");
          ok = false;
        }
      }
      scopes_.emplace_back();
      f.var_symbol = declare_local(ast::SymbolKind::LoopVar, f.var, f.var_loc, Type::integer(), true, false);
      if (ok) check_step_block(f.body);
      scopes_.pop_back();
      return;
    }
  }
}

void Sema::check_assign(ast::AssignStmt& s) {
  Type value = type_of(*s.value, Context::Step);
  if (s.target == "cost") {
    s.is_cost = true;
    if (s.next || !s.indices.empty()) {
      diags_.error(s.loc, "'cost' is a scalar accumulator: write cost += ...");
      return;
    }
    if (s.op != ast::AssignOp::Add) {
      diags_.error(s.loc, "use 'cost += ...' to add to the step cost");
      return;
    }
    if (value.is_error()) return;
    if (value.scalar == Scalar::Choice) return report_not_a_number(*s.value, value);
    if (!value.is_scalar() || !value.is_numeric()) {
      diags_.error(s.value->loc, "the step cost is a real scalar, but this is " + value.str() +
                                     (value.is_scalar() ? "" : " (use sum(...) to add up an array)"));
    }
    return;
  }
  const ast::Symbol* sym = lookup(s.target);
  if (!sym) {
    diags_.error(s.loc, "unknown name '" + s.target + "'");
    return;
  }
  s.symbol = sym;
  using K = ast::SymbolKind;
  if (sym->kind != K::State) {
    std::string why;
    switch (sym->kind) {
      case K::Action: why = "actions are chosen by the policy and are read-only"; break;
      case K::Noise: why = "noise is drawn by the simulator and is read-only"; break;
      case K::Param: why = "params are read-only (override them with --set or --params)"; break;
      case K::Const: why = "consts cannot change"; break;
      case K::Let: why = "a let binds a value once; declare a new name instead"; break;
      case K::LoopVar: why = "loop variables are read-only"; break;
      default: why = "only states change, through x' = ..."; break;
    }
    diags_.error(s.loc, "cannot assign to " + describe(*sym) + ": " + why);
    return;
  }
  if (!s.next) {
    diags_.error(s.loc, "cannot assign to state '" + s.target + "' itself; write " + s.target +
                            "' = ... to give its next value");
    return;
  }
  if (s.op != ast::AssignOp::Set) {
    diags_.error(s.loc, "a next state is given once with '=', not '+='");
    return;
  }
  bool ok = true;
  for (auto& index : s.indices) {
    Type t = type_of(*index, Context::Step);
    if (t.is_error()) { ok = false; continue; }
    if (t.scalar != Scalar::Int || !t.is_scalar() || !index->is_static) {
      diags_.error(index->loc, "the index of a next-state assignment must be known at compile time "
                               "(a constant or a loop variable), so that each element gets exactly one value");
      ok = false;
    }
  }
  if (!ok || sym->type.is_error()) return;
  if (s.indices.size() > sym->type.dims.size()) {
    diags_.error(s.loc, "state '" + s.target + "' has " + std::to_string(sym->type.dims.size()) +
                            " dimension(s) but is indexed with " + std::to_string(s.indices.size()));
    return;
  }
  if (value.is_error()) return;
  if (value.scalar == Scalar::Choice) return report_not_a_number(*s.value, value);
  if (!value.is_numeric()) {
    diags_.error(s.value->loc, "a state is real, but this value is " + value.str());
    return;
  }
  std::vector<std::int64_t> target_dims(sym->type.dims.begin() + static_cast<long>(s.indices.size()), sym->type.dims.end());
  if (!value.dims.empty() && value.dims != target_dims) {
    diags_.error(s.value->loc, "'" + s.target + "'" + (s.indices.empty() ? "" : "[...]") + " has " +
                                   shape_str(Type::real(target_dims)) + " but the value has " + shape_str(value));
  }
}

}  // namespace hpo::sema
