// adjoint.cpp: the reverse-mode rules, one per IR operation, each with its math in a comment.
#include "autodiff/adjoint.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "ir/builder.hpp"

namespace hpo::autodiff {

using ir::Builder;
using ir::Function;
using ir::Inst;
using ir::Op;
using ir::Region;
using ir::Ty;
using ir::ValueId;
using ir::kNoValue;

namespace {

// An adjoint being accumulated: of a forward value (kind -1, id = value) or of an element of a
// differentiated input array (kind = index into wrt, id = element).
using Key = std::pair<int, std::int64_t>;
using Env = std::map<Key, ValueId>;
using Rename = std::vector<ValueId>;  // forward value of f -> the same value in the adjoint kernel

class Differentiator {
 public:
  Differentiator(const Function& f, const ir::Layout& layout, const std::vector<Wrt>& wrt, std::string name)
      : f_(f), layout_(layout), wrt_(wrt), b_(g_) {
    g_.name = std::move(name);
  }

  Function run() {
    active_.assign(f_.value_types.size(), false);
    activity(f_.body);
    // Forward pass first, so every forward value the rules need exists.
    Rename fwd(f_.value_types.size(), kNoValue);
    ir::clone_region(f_.body, g_.body, g_, f_.value_types, fwd);
    b_.adopt_constants(g_.body);

    Env env;
    for (std::size_t i = 0; i < f_.outputs.size(); ++i) {
      ValueId out = f_.outputs[i];
      if (!active_[out]) continue;
      accumulate(env, out, b_.leaf(Op::Bar, Ty::F64, static_cast<std::int64_t>(i)));
    }
    reverse(f_.body, fwd, env);

    for (std::size_t k = 0; k < wrt_.size(); ++k) {
      const auto& names = wrt_names(wrt_[k]);
      for (std::size_t i = 0; i < names.size(); ++i) {
        auto it = env.find({static_cast<int>(k), static_cast<std::int64_t>(i)});
        g_.outputs.push_back(it == env.end() ? b_.const_f(0.0) : it->second);
        g_.output_names.push_back(names[i] + "_bar");
      }
    }
    ir::prune(g_);
    return std::move(g_);
  }

 private:
  const std::vector<std::string>& wrt_names(Wrt w) const {
    switch (w) {
      case Wrt::State: return layout_.state;
      case Wrt::Cont: return layout_.cont;
      case Wrt::Param: return layout_.params;
    }
    return layout_.state;
  }

  // Which input array a leaf or load reads, as an index into wrt_, or -1 if not differentiated.
  int wrt_index(Op op) const {
    Wrt w;
    switch (op) {
      case Op::State: case Op::LoadState: w = Wrt::State; break;
      case Op::Cont: case Op::LoadCont: w = Wrt::Cont; break;
      case Op::Param: case Op::LoadParam: w = Wrt::Param; break;
      default: return -1;
    }
    auto it = std::find(wrt_.begin(), wrt_.end(), w);
    return it == wrt_.end() ? -1 : static_cast<int>(it - wrt_.begin());
  }

  // Activity: a value needs an adjoint when it depends smoothly on a differentiated input.
  // Comparisons, logic and conversions of bools or discrete values carry no derivative.
  void activity(const Region& r) {
    for (const Inst& inst : r.insts) {
      if (inst.op == Op::If) {
        for (const auto& region : inst.regions) activity(*region);
        for (std::size_t i = 0; i < inst.results.size(); ++i)
          active_[inst.results[i]] = active_[inst.regions[0]->yields[i]] || active_[inst.regions[1]->yields[i]];
        continue;
      }
      ValueId v = inst.results[0];
      if (f_.value_types[v] != Ty::F64) continue;
      switch (inst.op) {
        case Op::ConstF: case Op::Noise: case Op::LoadNoise: case Op::ToReal: case Op::Bar: break;
        case Op::State: case Op::Cont: case Op::Param:
        case Op::LoadState: case Op::LoadCont: case Op::LoadParam:
          active_[v] = wrt_index(inst.op) >= 0;
          break;
        default:
          for (ValueId a : inst.operands) active_[v] = active_[v] || active_[a];
      }
    }
  }

  void accumulate(Env& env, ValueId forward, ValueId contribution) { add(env, {-1, forward}, contribution); }
  void add(Env& env, Key key, ValueId contribution) {
    auto it = env.find(key);
    if (it == env.end()) env[key] = contribution;
    else it->second = b_.binary(Op::Add, it->second, contribution, {});
  }

  void defined_in(const Region& r, std::set<ValueId>& out) const {
    for (const Inst& inst : r.insts) {
      out.insert(inst.results.begin(), inst.results.end());
      for (const auto& region : inst.regions) defined_in(*region, out);
    }
  }

  void reverse(const Region& r, const Rename& fwd, Env& env) {
    for (auto it = r.insts.rbegin(); it != r.insts.rend(); ++it) {
      const Inst& inst = *it;
      if (inst.op == Op::If) {
        reverse_if(inst, fwd, env);
        continue;
      }
      auto found = env.find({-1, inst.results[0]});
      if (found == env.end()) continue;
      rule(inst, fwd, found->second, env);
    }
  }

  // d: the adjoint of inst's result. Each case adds the operands' shares.
  void rule(const Inst& inst, const Rename& fwd, ValueId d, Env& env) {
    auto x = [&](std::size_t i) { return fwd[inst.operands[i]]; };
    ValueId r = fwd[inst.results[0]];
    auto give = [&](std::size_t i, ValueId c) {
      if (active_[inst.operands[i]]) accumulate(env, inst.operands[i], c);
    };
    auto mul = [&](ValueId a, ValueId b) { return b_.binary(Op::Mul, a, b, inst.loc); };
    auto neg = [&](ValueId a) { return b_.unary(Op::Neg, a, inst.loc); };
    // The adjoint of the side a kink takes: (d, 0) when `taken` holds, else (0, d).
    auto split = [&](ValueId taken) {
      ValueId zero = b_.const_f(0.0);
      return b_.if_(taken, inst.loc, [&]() { return std::vector<ValueId>{d, zero}; },
                    [&]() { return std::vector<ValueId>{zero, d}; });
    };
    switch (inst.op) {
      // A leaf of a differentiated input: its adjoint is an output element.
      case Op::State: case Op::Cont: case Op::Param:
        add(env, {wrt_index(inst.op), inst.attr}, d);
        break;
      // d/dA[base + k*stride] load(k) = 1 for the k taken: scatter into that element only.
      case Op::LoadState: case Op::LoadCont: case Op::LoadParam: {
        int w = wrt_index(inst.op);
        for (std::int64_t k = 0; k < inst.extent; ++k) {
          ValueId is_k = b_.binary(Op::Eq, x(0), b_.const_i(k), inst.loc);
          ValueId share = split(is_k)[0];
          add(env, {w, inst.attr + k * inst.attr2}, share);
        }
        break;
      }
      // d/da (a + b) = 1, d/db (a + b) = 1
      case Op::Add: give(0, d); give(1, d); break;
      // d/da (a - b) = 1, d/db (a - b) = -1
      case Op::Sub: give(0, d); give(1, neg(d)); break;
      // d/da (a * b) = b, d/db (a * b) = a
      case Op::Mul: give(0, mul(d, x(1))); give(1, mul(d, x(0))); break;
      // d/da (a / b) = 1 / b, d/db (a / b) = -(a / b) / b
      case Op::Div:
        give(0, b_.binary(Op::Div, d, x(1), inst.loc));
        give(1, neg(b_.binary(Op::Div, mul(d, r), x(1), inst.loc)));
        break;
      // d/da (-a) = -1
      case Op::Neg: give(0, neg(d)); break;
      // d/da a^b = b * a^(b - 1), d/db a^b = a^b * log(a)
      case Op::Pow:
        if (active_[inst.operands[0]]) {
          ValueId b_minus_1 = b_.binary(Op::Sub, x(1), b_.const_f(1.0), inst.loc);
          give(0, mul(d, mul(x(1), b_.binary(Op::Pow, x(0), b_minus_1, inst.loc))));
        }
        if (active_[inst.operands[1]]) give(1, mul(d, mul(r, b_.unary(Op::Log, x(0), inst.loc))));
        break;
      // d/da min(a, b) = [a <= b], d/db min(a, b) = [a > b]
      case Op::Min: {
        auto shares = split(b_.binary(Op::Le, x(0), x(1), inst.loc));
        give(0, shares[0]);
        give(1, shares[1]);
        break;
      }
      // d/da max(a, b) = [a >= b], d/db max(a, b) = [a < b]
      case Op::Max: {
        auto shares = split(b_.binary(Op::Ge, x(0), x(1), inst.loc));
        give(0, shares[0]);
        give(1, shares[1]);
        break;
      }
      // d/da relu(a) = [a > 0]
      case Op::Relu: give(0, split(b_.binary(Op::Gt, x(0), b_.const_f(0.0), inst.loc))[0]); break;
      // d/da |a| = 1 if a >= 0 else -1
      case Op::Abs: {
        ValueId positive = b_.binary(Op::Ge, x(0), b_.const_f(0.0), inst.loc);
        give(0, b_.if_(positive, inst.loc, [&]() { return std::vector<ValueId>{d}; },
                       [&]() { return std::vector<ValueId>{neg(d)}; })[0]);
        break;
      }
      // d/da exp(a) = exp(a)
      case Op::Exp: give(0, mul(d, r)); break;
      // d/da log(a) = 1 / a
      case Op::Log: give(0, b_.binary(Op::Div, d, x(0), inst.loc)); break;
      // d/da sqrt(a) = 1 / (2 sqrt(a))
      case Op::Sqrt: give(0, b_.binary(Op::Div, mul(d, b_.const_f(0.5)), r, inst.loc)); break;
      // d/da sin(a) = cos(a)
      case Op::Sin: give(0, mul(d, b_.unary(Op::Cos, x(0), inst.loc))); break;
      // d/da cos(a) = -sin(a)
      case Op::Cos: give(0, neg(mul(d, b_.unary(Op::Sin, x(0), inst.loc)))); break;
      // d/da tanh(a) = 1 - tanh(a)^2
      case Op::Tanh: give(0, mul(d, b_.binary(Op::Sub, b_.const_f(1.0), mul(r, r), inst.loc))); break;
      // d/da sigmoid(a) = sigmoid(a) (1 - sigmoid(a))
      case Op::Sigmoid: give(0, mul(d, mul(r, b_.binary(Op::Sub, b_.const_f(1.0), r, inst.loc)))); break;
      // d/da softplus(a) = sigmoid(a)
      case Op::Softplus: give(0, mul(d, b_.unary(Op::Sigmoid, x(0), inst.loc))); break;
      // Constants, noise, comparisons, logic and conversions of bools or discrete values: no adjoint.
      default: break;
    }
  }

  // The reverse of `if c {A} else {B}` is `if c {A; reverse A} else {B; reverse B}` on the same
  // c: the branch taken is replayed and differentiated, the other never runs. Adjoints of
  // values from outside the if that either side changes flow out as the reverse if's results.
  void reverse_if(const Inst& inst, const Rename& fwd, Env& env) {
    bool any = false;
    for (ValueId r : inst.results) any = any || env.count({-1, r});
    if (!any) return;
    const Env before = env;
    Env sides[2];
    ValueId zero = b_.const_f(0.0);
    auto side = [&](int s) {
      Rename local = fwd;
      ir::clone_region(*inst.regions[s], b_.current_region(), g_, f_.value_types, local);
      Env e = before;
      for (std::size_t i = 0; i < inst.results.size(); ++i) {
        auto it = before.find({-1, inst.results[i]});
        ValueId y = inst.regions[s]->yields[i];
        if (it != before.end() && active_[y]) accumulate(e, y, it->second);
      }
      reverse(*inst.regions[s], local, e);
      sides[s] = std::move(e);
    };
    Inst& reversed = b_.if_regions(fwd[inst.operands[0]], inst.loc, [&]() { side(0); }, [&]() { side(1); });
    std::set<ValueId> inner;
    for (const auto& region : inst.regions) defined_in(*region, inner);
    std::set<Key> changed;
    for (const auto& s : sides)
      for (const auto& [key, value] : s) {
        if (key.first == -1 && (inner.count(static_cast<ValueId>(key.second)) ||
                                std::find(inst.results.begin(), inst.results.end(), key.second) != inst.results.end()))
          continue;
        auto old = before.find(key);
        if (old == before.end() || old->second != value) changed.insert(key);
      }
    auto value_on = [&](const Env& e, const Key& key) {
      auto it = e.find(key);
      return it != e.end() ? it->second : zero;
    };
    for (const Key& key : changed) env[key] = b_.add_result(reversed, value_on(sides[0], key), value_on(sides[1], key));
  }

  const Function& f_;
  const ir::Layout& layout_;
  std::vector<Wrt> wrt_;
  Function g_;
  Builder b_;
  std::vector<bool> active_;
};

}  // namespace

Function adjoint(const Function& f, const ir::Layout& layout, const std::vector<Wrt>& wrt, std::string name) {
  return Differentiator(f, layout, wrt, std::move(name)).run();
}

AdjointProgram differentiate(const ir::Program& program) {
  AdjointProgram out;
  out.step_adj = adjoint(program.step, program.layout, {Wrt::State, Wrt::Cont}, "step_adj");
  out.observe_adj = adjoint(program.observe, program.layout, {Wrt::State}, "observe_adj");
  out.init_adj = adjoint(program.init, program.layout, {Wrt::Param}, "init_adj");
  return out;
}

std::string print(const AdjointProgram& a, const ir::Layout& layout) {
  return ir::print(a.step_adj, &layout) + "\n" + ir::print(a.observe_adj, &layout) + "\n" + ir::print(a.init_adj, &layout);
}

}  // namespace hpo::autodiff
