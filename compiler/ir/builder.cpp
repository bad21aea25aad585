// builder.cpp: instruction construction with constant folding (the same arithmetic the
// interpreter does, so folding never changes a result).
#include "ir/builder.hpp"

#include <bit>
#include <cmath>

#include "ir/eval_op.hpp"

namespace hpo::ir {

ValueId Builder::emit(Inst inst, Ty result_type, Region* region) {
  ValueId v = f_.new_value(result_type);
  inst.results = {v};
  region->insts.push_back(std::move(inst));
  return v;
}

ValueId Builder::leaf(Op op, Ty ty, std::int64_t attr, SourceLoc loc) {
  auto key = std::make_tuple(op, ty, attr, std::uint64_t{0});
  if (auto it = leaves_.find(key); it != leaves_.end()) return it->second;
  Inst inst;
  inst.op = op;
  inst.attr = attr;
  inst.loc = loc;
  ValueId v = emit(std::move(inst), ty, &f_.body);
  leaves_[key] = v;
  return v;
}

ValueId Builder::const_f(double x) {
  auto key = std::make_tuple(Op::ConstF, Ty::F64, std::int64_t{0}, std::bit_cast<std::uint64_t>(x));
  if (auto it = leaves_.find(key); it != leaves_.end()) return it->second;
  Inst inst;
  inst.op = Op::ConstF;
  inst.number = x;
  ValueId v = emit(std::move(inst), Ty::F64, &f_.body);
  leaves_[key] = v;
  constants_[v] = x;
  return v;
}

ValueId Builder::const_i(std::int64_t x) {
  ValueId v = leaf(Op::ConstI, Ty::I64, x);
  constants_[v] = static_cast<double>(x);
  return v;
}

ValueId Builder::const_b(bool x) {
  ValueId v = leaf(Op::ConstB, Ty::I1, x ? 1 : 0);
  constants_[v] = x ? 1.0 : 0.0;
  return v;
}

void Builder::adopt_constants(const Region& r) {
  for (const auto& inst : r.insts) {
    if (inst.op == Op::ConstF) constants_[inst.results[0]] = inst.number;
    if (inst.op == Op::ConstI || inst.op == Op::ConstB) constants_[inst.results[0]] = static_cast<double>(inst.attr);
  }
}

ValueId Builder::add_result(Inst& if_inst, ValueId then_value, ValueId else_value) {
  if_inst.regions[0]->yields.push_back(then_value);
  if_inst.regions[1]->yields.push_back(else_value);
  ValueId r = f_.new_value(type(then_value));
  if_inst.results.push_back(r);
  return r;
}

ValueId Builder::load(Op op, Ty ty, std::int64_t base, std::int64_t stride, std::int64_t extent, ValueId index,
                      SourceLoc loc) {
  Inst inst;
  inst.extent = extent;
  inst.op = op;
  inst.attr = base;
  inst.attr2 = stride;
  inst.operands = {index};
  inst.loc = loc;
  return emit(std::move(inst), ty, current_);
}

ValueId Builder::unary(Op op, ValueId a, SourceLoc loc) {
  Ty result = op == Op::Not ? Ty::I1 : Ty::F64;
  if (auto x = constant(a)) {
    double r = eval_op(op, *x, 0);
    return result == Ty::I1 ? const_b(r != 0) : const_f(r);
  }
  Inst inst;
  inst.op = op;
  inst.operands = {a};
  inst.loc = loc;
  return emit(std::move(inst), result, current_);
}

ValueId Builder::binary(Op op, ValueId a, ValueId b, SourceLoc loc) {
  Ty result = result_type(op);
  auto x = constant(a), y = constant(b);
  if (x && y) {
    double r = eval_op(op, *x, *y);
    return result == Ty::I1 ? const_b(r != 0) : const_f(r);
  }
  // `and`/`or` with one side known need not look at the other.
  if (op == Op::And && ((x && *x == 0) || (y && *y == 0))) return const_b(false);
  if (op == Op::Or && ((x && *x != 0) || (y && *y != 0))) return const_b(true);
  if (op == Op::And && x) return b;
  if (op == Op::And && y) return a;
  if (op == Op::Or && x) return b;
  if (op == Op::Or && y) return a;
  Inst inst;
  inst.op = op;
  inst.operands = {a, b};
  inst.loc = loc;
  return emit(std::move(inst), result, current_);
}

}  // namespace hpo::ir
