// flow.cpp: checks that need the step unrolled: every state element gets exactly one next value
// on every path, a next state is read only after it is given, and constant indices are in range.
#include <algorithm>
#include <set>
#include <sstream>
#include <tuple>

#include "sema/internal.hpp"

namespace hpo::sema {

namespace {

// Per state element: given on every path so far, or on some path.
enum : std::uint8_t { kDefinite = 1, kMaybe = 2 };

struct NextStates {
  std::vector<std::vector<std::uint8_t>> flags;  // [state][element]
  std::vector<std::vector<SourceLoc>> first;     // where an element was given, for "twice" messages
};

std::string element_name(const ast::Symbol& sym, std::size_t flat, const char* suffix = "") {
  if (sym.type.dims.empty()) return sym.name + suffix;
  std::vector<std::int64_t> idx(sym.type.dims.size());
  for (std::size_t k = sym.type.dims.size(); k-- > 0;) {
    idx[k] = static_cast<std::int64_t>(flat) % sym.type.dims[k];
    flat /= static_cast<std::size_t>(sym.type.dims[k]);
  }
  std::string s = sym.name + suffix + "[";
  for (std::size_t k = 0; k < idx.size(); ++k) s += (k ? ", " : "") + std::to_string(idx[k]);
  return s + "]";
}

}  // namespace

class FlowChecker {
 public:
  FlowChecker(Sema& sema, bool track_next_states) : sema_(sema), diags_(sema.diags_) {
    if (!track_next_states) return;
    const auto& states = sema.model_->states;
    next_.flags.resize(states.size());
    next_.first.resize(states.size());
    for (std::size_t i = 0; i < states.size(); ++i) {
      auto n = static_cast<std::size_t>(std::max<std::int64_t>(states[i].symbol->type.elements(), 0));
      next_.flags[i].assign(n, 0);
      next_.first[i].assign(n, SourceLoc{});
    }
  }

  void run(const ast::Block& step, SourceLoc step_loc) {
    block(step);
    if (sema_.work_exceeded_) return;
    const auto& states = sema_.model_->states;
    for (std::size_t i = 0; i < states.size(); ++i) {
      std::vector<std::size_t> missing;
      for (std::size_t k = 0; k < next_.flags[i].size(); ++k)
        if (!(next_.flags[i][k] & kDefinite)) missing.push_back(k);
      if (missing.empty()) continue;
      const ast::Symbol& sym = *states[i].symbol;
      std::string list;
      for (std::size_t k = 0; k < missing.size() && k < 3; ++k) list += (k ? ", " : "") + element_name(sym, missing[k]);
      if (missing.size() > 3) list += " and " + std::to_string(missing.size() - 3) + " more";
      bool some_path = false;
      for (auto k : missing) some_path = some_path || (next_.flags[i][k] & kMaybe);
      diags_.error(step_loc, "state " + list + (some_path ? " does not get a next value on every path through step"
                                                         : " gets no next value in step") +
                                 " (write " + sym.name + "' = " + sym.name + " to keep it)");
      diags_.note(sym.loc, "state '" + sym.name + "' is declared here");
    }
  }

  void block(const ast::Block& b) {
    for (const auto& s : b) {
      if (sema_.work_exceeded_ || diags_.too_many()) return;
      stmt(*s);
    }
  }

 private:
  bool charge(SourceLoc loc) { return sema_.charge_work(1, loc); }

  void stmt(const ast::Stmt& s) {
    if (!charge(s.loc)) return;
    switch (s.kind) {
      case ast::StmtKind::Let: {
        const auto& let = static_cast<const ast::LetStmt&>(s);
        expr(*let.value);
        if (let.symbol && let.value->is_static) {
          if (auto v = sema_.eval(*let.value, env_)) env_.values[let.symbol] = std::move(*v);
        }
        return;
      }
      case ast::StmtKind::Assign: assign(static_cast<const ast::AssignStmt&>(s)); return;
      case ast::StmtKind::If: {
        const auto& i = static_cast<const ast::IfStmt&>(s);
        if (i.cond->is_static) {
          auto c = sema_.eval(*i.cond, env_);
          if (!c) return;
          if (c->reals[0] != 0) block(i.then_block);
          else block(i.else_block);
          return;
        }
        expr(*i.cond);
        NextStates before = next_;
        block(i.then_block);
        NextStates after_then = std::move(next_);
        next_ = before;
        block(i.else_block);
        merge(before, after_then, i);
        return;
      }
      case ast::StmtKind::For: {
        const auto& f = static_cast<const ast::ForStmt&>(s);
        auto lo = sema_.eval(*f.lo, env_);
        auto hi = sema_.eval(*f.hi, env_);
        if (!lo || !hi || !f.var_symbol) return;
        for (std::int64_t v = lo->ints[0]; v < hi->ints[0]; ++v) {
          env_.values[f.var_symbol] = Value{ast::Type::integer(), {v}, {}};
          block(f.body);
          if (sema_.work_exceeded_) break;
        }
        env_.values.erase(f.var_symbol);
        return;
      }
    }
  }

  // After `if c {A} else {B}`: an element is given for sure only if both branches give it.
  void merge(const NextStates& before, const NextStates& then_state, const ast::IfStmt& i) {
    const auto& states = sema_.model_->states;
    for (std::size_t s = 0; s < next_.flags.size(); ++s) {
      std::vector<std::size_t> one_sided;
      for (std::size_t k = 0; k < next_.flags[s].size(); ++k) {
        std::uint8_t a = then_state.flags[s][k], b = next_.flags[s][k];
        std::uint8_t merged = static_cast<std::uint8_t>(((a & b) & kDefinite) | ((a | b) & kMaybe));
        if ((merged & kMaybe) && !(merged & kDefinite) && !(before.flags[s][k] & kMaybe)) one_sided.push_back(k);
        if (!next_.first[s][k].valid()) next_.first[s][k] = then_state.first[s][k];
        next_.flags[s][k] = merged;
      }
      if (one_sided.empty()) continue;
      std::string list;
      for (std::size_t k = 0; k < one_sided.size() && k < 3; ++k)
        list += (k ? ", " : "") + element_name(*states[s].symbol, one_sided[k]);
      if (one_sided.size() > 3) list += " and " + std::to_string(one_sided.size() - 3) + " more";
      diags_.error(i.loc, "state " + list + " gets a next value in only one branch of this if; give it in both");
      // Reported once: treat it as given from here on.
      for (auto k : one_sided) next_.flags[s][k] |= kDefinite;
    }
  }

  // The flat elements of a state that `indices` select; nullopt for indices not known here.
  std::vector<std::size_t> select(const ast::Symbol& sym, const std::vector<ast::ExprPtr>& indices, bool& ok) {
    const auto& dims = sym.type.dims;
    std::vector<std::size_t> out{0};
    ok = true;
    for (std::size_t k = 0; k < dims.size(); ++k) {
      std::vector<std::int64_t> choices;
      if (k < indices.size() && indices[k]->is_static) {
        auto v = sema_.eval(*indices[k], env_);
        if (!v) { ok = false; return {}; }
        std::int64_t i = v->ints[0];
        if (i < 0 || i >= dims[k]) {
          out_of_range(indices[k]->loc, "index " + std::to_string(i) + " is out of range for dimension " +
                                            std::to_string(k + 1) + " of '" + sym.name + "' (size " +
                                            std::to_string(dims[k]) + ")");
          ok = false;
          return {};
        }
        choices.push_back(i);
      } else {
        for (std::int64_t i = 0; i < dims[k]; ++i) choices.push_back(i);
      }
      std::vector<std::size_t> next;
      next.reserve(out.size() * choices.size());
      for (auto base : out)
        for (auto c : choices) next.push_back(base * static_cast<std::size_t>(dims[k]) + static_cast<std::size_t>(c));
      out = std::move(next);
    }
    return out;
  }

  void assign(const ast::AssignStmt& a) {
    expr(*a.value);
    if (a.is_cost || !a.symbol || a.symbol->kind != ast::SymbolKind::State) return;
    for (const auto& index : a.indices) expr(*index);
    bool ok = true;
    auto elements = select(*a.symbol, a.indices, ok);
    if (!ok) return;
    auto s = static_cast<std::size_t>(a.symbol->index);
    for (auto k : elements) {
      if (next_.flags[s][k] & (kDefinite | kMaybe)) {
        diags_.error(a.loc, "state " + element_name(*a.symbol, k) + " is given a next value twice");
        if (next_.first[s][k].valid()) diags_.note(next_.first[s][k], "it was given here first");
        return;
      }
    }
    for (auto k : elements) {
      next_.flags[s][k] = kDefinite | kMaybe;
      next_.first[s][k] = a.loc;
    }
  }

 public:
  // Walks an expression: indices known here are range-checked, a next state must be given before
  // it is read, and only the taken side of a compile-time condition is looked at.
  void expr(const ast::Expr& e) {
    if (sema_.work_exceeded_) return;
    // Integers are compile-time values: evaluating them here reports division by zero and
    // overflow before lowering would compute them.
    if (e.type.scalar == ast::Scalar::Int && e.is_static && !e.type.is_error()) {
      sema_.eval(e, env_);
      return;
    }
    switch (e.kind) {
      case ast::ExprKind::Name: {
        const auto& n = static_cast<const ast::NameRef&>(e);
        if (n.next && n.symbol) require_given(*n.symbol, {}, e.loc);
        return;
      }
      case ast::ExprKind::Index: {
        const auto& ix = static_cast<const ast::IndexExpr&>(e);
        for (const auto& i : ix.indices) expr(*i);
        if (ix.base->kind == ast::ExprKind::Name) {
          const auto& n = static_cast<const ast::NameRef&>(*ix.base);
          if (n.next && n.symbol) {
            require_given(*n.symbol, ix.indices, e.loc);
            return;
          }
        } else {
          expr(*ix.base);
        }
        if (ix.base->type.is_error() || ix.base->type.dims.size() < ix.indices.size()) return;
        for (std::size_t k = 0; k < ix.indices.size(); ++k) {
          if (!ix.indices[k]->is_static || ix.indices[k]->type.scalar != ast::Scalar::Int) continue;
          auto v = sema_.eval(*ix.indices[k], env_);
          if (!v) continue;
          std::int64_t i = v->ints[0];
          std::int64_t size = ix.base->type.dims[k];
          if (i < 0 || i >= size) {
            const ast::NameRef* name =
                ix.base->kind == ast::ExprKind::Name ? static_cast<const ast::NameRef*>(ix.base.get()) : nullptr;
            out_of_range(ix.indices[k]->loc, "index " + std::to_string(i) + " is out of range for dimension " +
                                                 std::to_string(k + 1) + (name ? " of '" + name->name + "'" : "") +
                                                 " (size " + std::to_string(size) + ")");
          }
        }
        return;
      }
      case ast::ExprKind::Unary: expr(*static_cast<const ast::UnaryExpr&>(e).operand); return;
      case ast::ExprKind::Binary: {
        const auto& b = static_cast<const ast::BinaryExpr&>(e);
        expr(*b.lhs);
        expr(*b.rhs);
        return;
      }
      case ast::ExprKind::Cond: {
        const auto& c = static_cast<const ast::CondExpr&>(e);
        if (c.cond->is_static) {
          auto v = sema_.eval(*c.cond, env_);
          if (v) expr(v->reals[0] != 0 ? *c.then_value : *c.else_value);
          return;
        }
        expr(*c.cond);
        expr(*c.then_value);
        expr(*c.else_value);
        return;
      }
      case ast::ExprKind::Call:
        for (const auto& a : static_cast<const ast::CallExpr&>(e).args) expr(*a);
        return;
      case ast::ExprKind::ArrayLit:
        for (const auto& a : static_cast<const ast::ArrayLit&>(e).elements) expr(*a);
        return;
      case ast::ExprKind::Comprehension: {
        const auto& c = static_cast<const ast::Comprehension&>(e);
        if (!c.var_symbol) return;
        for (std::int64_t i = c.lo_value; i < c.hi_value; ++i) {
          if (!charge(e.loc)) break;
          env_.values[c.var_symbol] = Value{ast::Type::integer(), {i}, {}};
          expr(*c.body);
        }
        env_.values.erase(c.var_symbol);
        return;
      }
      default: return;
    }
  }

 private:
  // Said once per place, naming the loop iteration where it first happens.
  void out_of_range(SourceLoc loc, const std::string& message) {
    if (!reported_.insert({loc.file, loc.line, loc.column}).second) return;
    std::vector<std::pair<SourceLoc, std::string>> loops;
    for (const auto& [sym, value] : env_.values)
      if (sym->kind == ast::SymbolKind::LoopVar && value.type.scalar == ast::Scalar::Int)
        loops.push_back({sym->loc, sym->name + " = " + std::to_string(value.ints[0])});
    std::sort(loops.begin(), loops.end(), [](const auto& a, const auto& b) {
      return std::tie(a.first.line, a.first.column) < std::tie(b.first.line, b.first.column);
    });
    std::string where;
    for (const auto& [loc_of_var, text] : loops) where += (where.empty() ? "" : ", ") + text;
    diags_.error(loc, message + (where.empty() ? "" : " when " + where));
  }

  void require_given(const ast::Symbol& sym, const std::vector<ast::ExprPtr>& indices, SourceLoc loc) {
    if (sym.index < 0 || next_.flags.empty()) return;
    bool ok = true;
    auto elements = select(sym, indices, ok);
    if (!ok) return;
    auto s = static_cast<std::size_t>(sym.index);
    for (auto k : elements) {
      if (!(next_.flags[s][k] & kDefinite)) {
        diags_.error(loc, "next state " + element_name(sym, k, "'") + " is read before it is given a value");
        return;
      }
    }
  }

  Sema& sema_;
  Diagnostics& diags_;
  Env env_;
  NextStates next_;
  std::set<std::tuple<FileId, std::uint32_t, std::uint32_t>> reported_;
};

void Sema::check_flow(const ast::Block& step, SourceLoc step_loc) {
  FlowChecker checker(*this, true);
  checker.run(step, step_loc);
}

void Sema::check_compile_time(const ast::Expr& e) {
  // Outside step there are no next states; the same walk range-checks constant indices and
  // evaluates compile-time integers.
  FlowChecker checker(*this, false);
  checker.expr(e);
}

}  // namespace hpo::sema
