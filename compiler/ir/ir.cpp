// ir.cpp: names of IR operations and the text form of kernels (hpoc --emit=ir).
#include <charconv>
#include <sstream>

#include "ir/ir.hpp"

namespace hpo::ir {

const char* spelling(Ty t) {
  switch (t) {
    case Ty::F64: return "f64";
    case Ty::I1: return "i1";
    case Ty::I64: return "i64";
  }
  return "?";
}

const char* spelling(Op op) {
  switch (op) {
    case Op::ConstF: return "const";
    case Op::ConstI: return "const";
    case Op::ConstB: return "const";
    case Op::Param: return "param";
    case Op::State: return "state";
    case Op::Disc: return "disc";
    case Op::Cont: return "cont";
    case Op::Noise: return "noise";
    case Op::Bar: return "bar";
    case Op::Period: return "period";
    case Op::LoadParam: return "load.param";
    case Op::LoadState: return "load.state";
    case Op::LoadCont: return "load.cont";
    case Op::LoadNoise: return "load.noise";
    case Op::Add: return "add";
    case Op::Sub: return "sub";
    case Op::Mul: return "mul";
    case Op::Div: return "div";
    case Op::Neg: return "neg";
    case Op::Pow: return "pow";
    case Op::Min: return "min";
    case Op::Max: return "max";
    case Op::Relu: return "relu";
    case Op::Abs: return "abs";
    case Op::Exp: return "exp";
    case Op::Log: return "log";
    case Op::Sqrt: return "sqrt";
    case Op::Sin: return "sin";
    case Op::Cos: return "cos";
    case Op::Tanh: return "tanh";
    case Op::Sigmoid: return "sigmoid";
    case Op::Softplus: return "softplus";
    case Op::Lt: return "lt";
    case Op::Le: return "le";
    case Op::Gt: return "gt";
    case Op::Ge: return "ge";
    case Op::Eq: return "eq";
    case Op::Ne: return "ne";
    case Op::And: return "and";
    case Op::Or: return "or";
    case Op::Not: return "not";
    case Op::ToReal: return "to_real";
    case Op::If: return "if";
  }
  return "?";
}

bool is_leaf(Op op) {
  switch (op) {
    case Op::ConstF: case Op::ConstI: case Op::ConstB:
    case Op::Param: case Op::State: case Op::Disc: case Op::Cont: case Op::Noise: case Op::Bar: case Op::Period:
      return true;
    default:
      return false;
  }
}

namespace {

std::string number(double x) {
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, x);
  return std::string(buffer, result.ptr);
}

class Printer {
 public:
  Printer(const Function& f, const Layout* layout) : f_(f), layout_(layout) {}

  std::string run() {
    out_ << "func " << f_.name << " {\n";
    region(f_.body, 1);
    indent(1) << "return";
    for (std::size_t i = 0; i < f_.outputs.size(); ++i)
      out_ << (i ? ", " : " ") << f_.output_names[i] << " = %" << f_.outputs[i];
    out_ << "\n}\n";
    return out_.str();
  }

 private:
  std::ostream& indent(int depth) {
    for (int i = 0; i < depth; ++i) out_ << "  ";
    return out_;
  }

  std::string input_name(Op op, std::int64_t i) const {
    if (!layout_) return "";
    const std::vector<std::string>* names = nullptr;
    switch (op) {
      case Op::Param: case Op::LoadParam: names = &layout_->params; break;
      case Op::State: case Op::LoadState: names = &layout_->state; break;
      case Op::Disc: names = &layout_->disc; break;
      case Op::Cont: case Op::LoadCont: names = &layout_->cont; break;
      case Op::Noise: case Op::LoadNoise: names = &layout_->noise; break;
      default: return "";
    }
    if (i < 0 || static_cast<std::size_t>(i) >= names->size()) return "";
    return (*names)[static_cast<std::size_t>(i)];
  }

  void region(const Region& r, int depth) {
    for (const auto& inst : r.insts) instruction(inst, depth);
  }

  void instruction(const Inst& inst, int depth) {
    indent(depth);
    if (inst.op == Op::If) {
      for (std::size_t i = 0; i < inst.results.size(); ++i) out_ << (i ? ", " : "") << '%' << inst.results[i];
      if (!inst.results.empty()) out_ << " = ";
      out_ << "if %" << inst.operands[0] << " -> (";
      for (std::size_t i = 0; i < inst.results.size(); ++i) out_ << (i ? ", " : "") << spelling(f_.value_types[inst.results[i]]);
      out_ << ")" << loc(inst.loc) << " {\n";
      for (std::size_t side = 0; side < 2; ++side) {
        if (side == 1) indent(depth) << "} else {\n";
        region(*inst.regions[side], depth + 1);
        indent(depth + 1) << "yield";
        const auto& y = inst.regions[side]->yields;
        for (std::size_t i = 0; i < y.size(); ++i) out_ << (i ? ", %" : " %") << y[i];
        out_ << '\n';
      }
      indent(depth) << "}\n";
      return;
    }
    ValueId v = inst.results[0];
    out_ << '%' << v << " = " << spelling(inst.op);
    switch (inst.op) {
      case Op::ConstF: out_ << ' ' << number(inst.number); break;
      case Op::ConstI: out_ << ' ' << inst.attr; break;
      case Op::ConstB: out_ << ' ' << (inst.attr ? "true" : "false"); break;
      case Op::Param: case Op::State: case Op::Disc: case Op::Cont: case Op::Noise: case Op::Bar:
        out_ << ' ' << inst.attr;
        break;
      case Op::LoadParam: case Op::LoadState: case Op::LoadCont: case Op::LoadNoise:
        out_ << ' ' << inst.attr << " + %" << inst.operands[0] << " * " << inst.attr2;
        break;
      default:
        for (std::size_t i = 0; i < inst.operands.size(); ++i) out_ << (i ? ", %" : " %") << inst.operands[i];
    }
    out_ << " : " << spelling(f_.value_types[v]);
    std::string name = input_name(inst.op, inst.attr);
    if (!name.empty()) out_ << "  ; " << name << (is_leaf(inst.op) ? "" : " + ...");
    out_ << loc(inst.loc) << '\n';
  }

  static std::string loc(SourceLoc l) {
    if (!l.valid()) return "";
    return "  @" + std::to_string(l.line) + ":" + std::to_string(l.column);
  }

  const Function& f_;
  const Layout* layout_;
  std::ostringstream out_;
};

}  // namespace

void clone_region(const Region& from, Region& into, Function& f, const std::vector<Ty>& from_types,
                  std::vector<ValueId>& rename) {
  auto mapped = [&](ValueId v) { return v < rename.size() && rename[v] != kNoValue ? rename[v] : v; };
  for (const Inst& inst : from.insts) {
    Inst copy;
    copy.op = inst.op;
    copy.attr = inst.attr;
    copy.attr2 = inst.attr2;
    copy.extent = inst.extent;
    copy.number = inst.number;
    copy.loc = inst.loc;
    for (ValueId v : inst.operands) copy.operands.push_back(mapped(v));
    for (const auto& region : inst.regions) {
      auto r = std::make_unique<Region>();
      clone_region(*region, *r, f, from_types, rename);
      for (ValueId y : region->yields) r->yields.push_back(mapped(y));
      copy.regions.push_back(std::move(r));
    }
    for (ValueId v : inst.results) {
      ValueId fresh = f.new_value(from_types[v]);
      if (v >= rename.size()) rename.resize(v + 1, kNoValue);
      rename[v] = fresh;
      copy.results.push_back(fresh);
    }
    into.insts.push_back(std::move(copy));
  }
}

namespace {

// Marks what the outputs need, walking each region backwards; an If is needed when any of its
// results is, and then needs its condition and the yields of its needed results.
void mark(const Region& r, std::vector<bool>& live) {
  for (auto it = r.insts.rbegin(); it != r.insts.rend(); ++it) {
    const Inst& inst = *it;
    bool needed = false;
    for (ValueId v : inst.results) needed = needed || live[v];
    if (!needed) continue;
    for (ValueId v : inst.operands) live[v] = true;
    if (inst.op == Op::If) {
      for (const auto& region : inst.regions) {
        for (std::size_t i = 0; i < inst.results.size(); ++i)
          if (live[inst.results[i]]) live[region->yields[i]] = true;
        mark(*region, live);
      }
    }
  }
}

void sweep(Region& r, const std::vector<bool>& live) {
  std::vector<Inst> kept;
  for (auto& inst : r.insts) {
    bool needed = false;
    for (ValueId v : inst.results) needed = needed || live[v];
    if (!needed) continue;
    if (inst.op == Op::If) {
      std::vector<ValueId> results;
      std::vector<ValueId> yields[2];
      for (std::size_t i = 0; i < inst.results.size(); ++i) {
        if (!live[inst.results[i]]) continue;
        results.push_back(inst.results[i]);
        for (int side = 0; side < 2; ++side) yields[side].push_back(inst.regions[side]->yields[i]);
      }
      inst.results = std::move(results);
      for (int side = 0; side < 2; ++side) {
        inst.regions[side]->yields = std::move(yields[side]);
        sweep(*inst.regions[side], live);
      }
    }
    kept.push_back(std::move(inst));
  }
  r.insts = std::move(kept);
}

void renumber(Region& r, std::vector<ValueId>& map, std::vector<Ty>& types, const std::vector<Ty>& old_types) {
  auto define = [&](ValueId& v) {
    map[v] = static_cast<ValueId>(types.size());
    types.push_back(old_types[v]);
    v = map[v];
  };
  for (auto& inst : r.insts) {
    for (auto& v : inst.operands) v = map[v];
    if (inst.op == Op::If) {
      for (auto& region : inst.regions) {
        renumber(*region, map, types, old_types);
        for (auto& y : region->yields) y = map[y];
      }
    }
    for (auto& v : inst.results) define(v);
  }
}

}  // namespace

void prune(Function& f) {
  std::vector<bool> live(f.value_types.size(), false);
  for (ValueId v : f.outputs) live[v] = true;
  mark(f.body, live);
  sweep(f.body, live);
  std::vector<ValueId> map(f.value_types.size(), kNoValue);
  std::vector<Ty> types;
  renumber(f.body, map, types, f.value_types);
  f.value_types = std::move(types);
  for (auto& v : f.outputs) v = map[v];
}

std::string print(const Function& f, const Layout* layout) { return Printer(f, layout).run(); }

std::string print(const Program& p) {
  std::ostringstream out;
  out << "model " << p.model_name << "\n";
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    out << what << '[' << names.size() << "]:";
    for (const auto& n : names) out << ' ' << n;
    out << '\n';
  };
  list("params", p.layout.params);
  list("state", p.layout.state);
  list("disc", p.layout.disc);
  list("cont", p.layout.cont);
  list("noise", p.layout.noise);
  out << '\n' << Printer(p.init, &p.layout).run() << '\n' << Printer(p.observe, &p.layout).run() << '\n'
      << Printer(p.step, &p.layout).run();
  return out.str();
}

}  // namespace hpo::ir
