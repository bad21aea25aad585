// reformulate.cpp: jumps on one continuous action rewritten into hybrid form (see reformulate.hpp).
#include "analysis/reformulate.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <sstream>
#include <string>

namespace hpo::analysis {

using ir::Inst;
using ir::Op;
using ir::Region;
using ir::Ty;
using ir::ValueId;

namespace {

std::string number(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

void rename_uses(Region& r, const std::vector<ValueId>& rename) {
  auto map = [&](ValueId& v) {
    if (v < rename.size() && rename[v] != ir::kNoValue) v = rename[v];
  };
  for (auto& inst : r.insts) {
    for (auto& v : inst.operands) map(v);
    for (auto& region : inst.regions) {
      rename_uses(*region, rename);
      for (auto& y : region->yields) map(y);
    }
  }
}

}  // namespace

void reformulate(ir::Program& program, const std::vector<JumpSite>& jump_sites, const std::vector<const Inst*>& def,
                 Report& report) {
  ir::Function& f = program.step;
  std::map<std::int64_t, std::vector<std::size_t>> by_action;
  for (std::size_t i = 0; i < jump_sites.size(); ++i) by_action[jump_sites[i].t.cont].push_back(i);
  std::vector<ValueId> rename(f.value_types.size(), ir::kNoValue);
  std::vector<Inst> prologue;
  auto emit = [&](Inst inst, Ty ty) {
    ValueId v = f.new_value(ty);
    inst.results = {v};
    prologue.push_back(std::move(inst));
    return v;
  };
  for (auto& [cont, sites] : by_action) {
    const Threshold t = jump_sites[sites[0]].t;
    bool consistent = true;
    for (auto s : sites) consistent = consistent && jump_sites[s].t == t;
    const std::string& name = program.layout.cont[static_cast<std::size_t>(cont)];
    if (!consistent) {
      for (auto s : sites)
        report.findings[jump_sites[s].finding].note =
            "hpoc cannot reformulate it (" + name + " is compared with different thresholds); add a discrete action per threshold";
      continue;
    }
    std::string gate = "gate_" + name;
    auto g = static_cast<std::int64_t>(program.layout.disc.size());
    program.layout.disc.push_back(gate);
    program.layout.disc_choices.push_back(2);
    std::string cmp = std::string(t.above ? " > " : " < ") + number(t.c);
    report.generated.push_back(gate + " : choice(2) decides " + name + cmp + " (1) or not (0); " + name + " acts as " +
                                (t.above ? "max(" : "min(") + name + ", " + number(t.c) + ") when 1 and " +
                                (t.above ? "min(" : "max(") + name + ", " + number(t.c) + ") when 0");
    for (auto s : sites) {
      auto& gates = report.findings[jump_sites[s].finding].gates;
      if (std::find(gates.begin(), gates.end(), gate) == gates.end()) gates.push_back(gate);
    }

    Inst q_inst;
    q_inst.op = Op::Cont;
    q_inst.attr = cont;
    ValueId q = emit(std::move(q_inst), Ty::F64);
    Inst gate_inst;
    gate_inst.op = Op::Disc;
    gate_inst.attr = g;
    ValueId gate_value = emit(std::move(gate_inst), Ty::I64);
    Inst one;
    one.op = Op::ConstI;
    one.attr = 1;
    ValueId one_value = emit(std::move(one), Ty::I64);
    Inst on;
    on.op = Op::Eq;
    on.operands = {gate_value, one_value};
    ValueId on_value = emit(std::move(on), Ty::I1);
    Inst c;
    c.op = Op::ConstF;
    c.number = t.c;
    ValueId c_value = emit(std::move(c), Ty::F64);
    Inst held;
    held.op = Op::If;
    held.operands = {on_value};
    for (int side = 0; side < 2; ++side) {
      auto region = std::make_unique<Region>();
      Inst clamp;
      clamp.op = (side == 0) == t.above ? Op::Max : Op::Min;
      clamp.operands = {q, c_value};
      ValueId v = f.new_value(Ty::F64);
      clamp.results = {v};
      region->insts.push_back(std::move(clamp));
      region->yields = {v};
      held.regions.push_back(std::move(region));
    }
    ValueId q_held = f.new_value(Ty::F64);
    held.results = {q_held};
    prologue.push_back(std::move(held));

    for (auto s : sites) rename[jump_sites[s].cond] = on_value;
    for (ValueId v = 0; v < def.size(); ++v)
      if (def[v] && def[v]->op == Op::Cont && def[v]->attr == cont) rename[v] = q_held;
  }
  if (prologue.empty()) return;
  rename.resize(f.value_types.size(), ir::kNoValue);
  rename_uses(f.body, rename);
  for (auto& v : f.outputs)
    if (rename[v] != ir::kNoValue) v = rename[v];
  std::move(f.body.insts.begin(), f.body.insts.end(), std::back_inserter(prologue));
  f.body.insts = std::move(prologue);
  ir::prune(f);
}

}  // namespace hpo::analysis
