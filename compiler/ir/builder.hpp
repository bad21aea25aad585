// builder.hpp: appends instructions to a Function, folding constants and sharing leaves.
#pragma once

#include <map>
#include <optional>
#include <tuple>

#include "ir/ir.hpp"

namespace hpo::ir {

class Builder {
 public:
  explicit Builder(Function& f) : f_(f), current_(&f.body) {}

  // Leaves are placed in the function's entry region and shared, so every region can use them.
  ValueId leaf(Op op, Ty ty, std::int64_t attr, SourceLoc loc = {});
  ValueId const_f(double v);
  ValueId const_i(std::int64_t v);
  ValueId const_b(bool v);
  ValueId load(Op op, Ty ty, std::int64_t base, std::int64_t stride, std::int64_t extent, ValueId index, SourceLoc loc);

  ValueId unary(Op op, ValueId a, SourceLoc loc);
  ValueId binary(Op op, ValueId a, ValueId b, SourceLoc loc);

  // Builds `if cond` with the regions filled by the callbacks, each returning its yields; the
  // results take the types of the then-branch's yields. A constant condition builds only its side.
  template <typename Then, typename Else>
  std::vector<ValueId> if_(ValueId cond, SourceLoc loc, Then&& then_fn, Else&& else_fn);

  // Builds `if cond` with regions filled by the callbacks and no yields or results yet: the
  // caller adds them (both regions' yields, then add_result) before emitting anything else.
  template <typename Then, typename Else>
  Inst& if_regions(ValueId cond, SourceLoc loc, Then&& then_fn, Else&& else_fn);
  ValueId add_result(Inst& if_inst, ValueId then_value, ValueId else_value);

  // Makes constants already in the function (e.g. a copied forward pass) known for folding.
  void adopt_constants(const Region& r);
  Region& current_region() { return *current_; }

  std::optional<double> constant(ValueId v) const {
    auto it = constants_.find(v);
    if (it == constants_.end()) return std::nullopt;
    return it->second;
  }
  Ty type(ValueId v) const { return f_.value_types[v]; }
  Function& function() { return f_; }

 private:
  ValueId emit(Inst inst, Ty result_type, Region* region);

  Function& f_;
  Region* current_;
  std::map<std::tuple<Op, Ty, std::int64_t, std::uint64_t>, ValueId> leaves_;
  std::map<ValueId, double> constants_;
};

template <typename Then, typename Else>
Inst& Builder::if_regions(ValueId cond, SourceLoc loc, Then&& then_fn, Else&& else_fn) {
  Inst inst;
  inst.op = Op::If;
  inst.operands = {cond};
  inst.loc = loc;
  Region* outer = current_;
  for (int side = 0; side < 2; ++side) {
    auto region = std::make_unique<Region>();
    current_ = region.get();
    if (side == 0) then_fn();
    else else_fn();
    inst.regions.push_back(std::move(region));
  }
  current_ = outer;
  current_->insts.push_back(std::move(inst));
  return current_->insts.back();
}

template <typename Then, typename Else>
std::vector<ValueId> Builder::if_(ValueId cond, SourceLoc loc, Then&& then_fn, Else&& else_fn) {
  if (auto c = constant(cond)) return *c != 0 ? then_fn() : else_fn();
  std::vector<ValueId> then_yields, else_yields;
  Inst& inst = if_regions(
      cond, loc, [&]() { then_yields = then_fn(); }, [&]() { else_yields = else_fn(); });
  std::vector<ValueId> results;
  for (std::size_t i = 0; i < then_yields.size(); ++i) results.push_back(add_result(inst, then_yields[i], else_yields[i]));
  return results;
}

}  // namespace hpo::ir
