// codegen.cpp: emits each IR kernel as an LLVM function; an IR `if` becomes a branch and a phi,
// so compiled code, like the interpreter, runs only the taken side.
#include "codegen/codegen.hpp"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <stdexcept>

namespace hpo::codegen {
namespace {

using ir::Inst;
using ir::Op;
using ir::Ty;

// Where one kernel reads and writes: array pointers, and how element i maps to an address.
struct Arrays {
  llvm::Value* params = nullptr;
  llvm::Value* state = nullptr;
  llvm::Value* disc = nullptr;
  llvm::Value* cont = nullptr;
  llvm::Value* noise = nullptr;
  llvm::Value* period = nullptr;  // i64 step index, shared by every sample of a batch
  std::vector<std::pair<llvm::Value*, std::int64_t>> bar;  // seed arrays and their lengths, in order
  struct Out {
    llvm::Value* array;
    std::int64_t count;
    bool accumulate;  // adjoint outputs add into the caller's array
  };
  std::vector<Out> outputs;  // in the order of the kernel's outputs
};

class KernelEmitter {
 public:
  KernelEmitter(llvm::Module& m, const ir::Function& f, Arrays arrays, llvm::IRBuilder<>& b, llvm::Value* n,
                llvm::Value* sample)
      : m_(m), f_(f), a_(std::move(arrays)), b_(b), n_(n), sample_(sample), values_(f.value_types.size(), nullptr) {}

  void emit() {
    region(f_.body);
    std::size_t k = 0;
    for (const auto& out : a_.outputs) {
      for (std::int64_t i = 0; i < out.count; ++i, ++k) {
        llvm::Value* v = values_[f_.outputs[k]];
        // Adding a zero adjoint changes nothing; skipping it keeps a kernel over thousands of
        // unused params (a generated matrix) from becoming thousands of stores for LLVM to chew.
        auto* constant = llvm::dyn_cast<llvm::ConstantFP>(v);
        if (out.accumulate && constant && constant->isZero()) continue;
        llvm::Value* ptr = element(out.array, b_.getInt64(i), true);
        if (out.accumulate) v = b_.CreateFAdd(b_.CreateLoad(b_.getDoubleTy(), ptr), v);
        b_.CreateStore(v, ptr);
      }
    }
  }

 private:
  // Element i of an array: per sample, i; batched (n given), i * n + sample. Params are shared.
  llvm::Value* element(llvm::Value* array, llvm::Value* i, bool per_sample, llvm::Type* type = nullptr) {
    if (n_ && per_sample) i = b_.CreateAdd(b_.CreateMul(i, n_), sample_);
    return b_.CreateGEP(type ? type : b_.getDoubleTy(), array, i);
  }

  llvm::Value* bar(std::int64_t i) {
    for (const auto& [array, count] : a_.bar) {
      if (i < count) return b_.CreateLoad(b_.getDoubleTy(), element(array, b_.getInt64(i), true));
      i -= count;
    }
    throw std::logic_error("seed index beyond the adjoint's seed arrays");
  }

  llvm::Value* intrinsic(llvm::Intrinsic::ID id, llvm::Value* x) { return b_.CreateUnaryIntrinsic(id, x); }

  llvm::Value* libm(const char* name, llvm::Value* x) {
    llvm::FunctionCallee fn = m_.getOrInsertFunction(name, b_.getDoubleTy(), b_.getDoubleTy());
    return b_.CreateCall(fn, {x});
  }

  llvm::Value* op(const Inst& inst) {
    auto x = [&](std::size_t i) { return values_[inst.operands[i]]; };
    llvm::Type* dbl = b_.getDoubleTy();
    switch (inst.op) {
      case Op::ConstF: return llvm::ConstantFP::get(dbl, inst.number);
      case Op::ConstI: return b_.getInt64(static_cast<std::uint64_t>(inst.attr));
      case Op::ConstB: return b_.getInt1(inst.attr != 0);
      case Op::Param: return b_.CreateLoad(dbl, element(a_.params, b_.getInt64(inst.attr), false));
      case Op::State: return b_.CreateLoad(dbl, element(a_.state, b_.getInt64(inst.attr), true));
      case Op::Cont: return b_.CreateLoad(dbl, element(a_.cont, b_.getInt64(inst.attr), true));
      case Op::Disc:
        return b_.CreateSExt(b_.CreateLoad(b_.getInt32Ty(), element(a_.disc, b_.getInt64(inst.attr), true, b_.getInt32Ty())),
                             b_.getInt64Ty());
      case Op::Noise: {
        llvm::Value* v = b_.CreateLoad(dbl, element(a_.noise, b_.getInt64(inst.attr), true));
        return f_.value_types[inst.results[0]] == Ty::I64 ? b_.CreateFPToSI(v, b_.getInt64Ty()) : v;
      }
      case Op::Bar: return bar(inst.attr);
      case Op::Period:
        if (!a_.period) throw std::logic_error("period() in a kernel that is not given the step index");
        return a_.period;
      case Op::LoadParam: case Op::LoadState: case Op::LoadCont: case Op::LoadNoise: {
        // The runtime passes valid discrete values; clamping keeps a bad one inside the array.
        llvm::Value* k = x(0);
        k = b_.CreateSelect(b_.CreateICmpSLT(k, b_.getInt64(0)), b_.getInt64(0), k);
        k = b_.CreateSelect(b_.CreateICmpSGE(k, b_.getInt64(static_cast<std::uint64_t>(inst.extent))),
                            b_.getInt64(static_cast<std::uint64_t>(inst.extent - 1)), k);
        llvm::Value* i = b_.CreateAdd(b_.getInt64(static_cast<std::uint64_t>(inst.attr)),
                                      b_.CreateMul(k, b_.getInt64(static_cast<std::uint64_t>(inst.attr2))));
        llvm::Value* array = inst.op == Op::LoadParam ? a_.params
                             : inst.op == Op::LoadState ? a_.state
                             : inst.op == Op::LoadCont  ? a_.cont
                                                        : a_.noise;
        return b_.CreateLoad(dbl, element(array, i, inst.op != Op::LoadParam));
      }
      case Op::Add: return b_.CreateFAdd(x(0), x(1));
      case Op::Sub: return b_.CreateFSub(x(0), x(1));
      case Op::Mul: return b_.CreateFMul(x(0), x(1));
      case Op::Div: return b_.CreateFDiv(x(0), x(1));
      case Op::Neg: return b_.CreateFNeg(x(0));
      case Op::Pow: return b_.CreateBinaryIntrinsic(llvm::Intrinsic::pow, x(0), x(1));
      // fmin/fmax semantics, as the interpreter's std::fmin/std::fmax.
      case Op::Min: return b_.CreateBinaryIntrinsic(llvm::Intrinsic::minnum, x(0), x(1));
      case Op::Max: return b_.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, x(0), x(1));
      case Op::Relu:
        return b_.CreateSelect(b_.CreateFCmpOGT(x(0), llvm::ConstantFP::get(dbl, 0.0)), x(0), llvm::ConstantFP::get(dbl, 0.0));
      case Op::Abs: return intrinsic(llvm::Intrinsic::fabs, x(0));
      case Op::Exp: return intrinsic(llvm::Intrinsic::exp, x(0));
      case Op::Log: return intrinsic(llvm::Intrinsic::log, x(0));
      case Op::Sqrt: return intrinsic(llvm::Intrinsic::sqrt, x(0));
      case Op::Sin: return intrinsic(llvm::Intrinsic::sin, x(0));
      case Op::Cos: return intrinsic(llvm::Intrinsic::cos, x(0));
      case Op::Tanh: return libm("tanh", x(0));
      // sigmoid(a) = 1 / (1 + exp(-a))
      case Op::Sigmoid: {
        llvm::Value* e = intrinsic(llvm::Intrinsic::exp, b_.CreateFNeg(x(0)));
        return b_.CreateFDiv(llvm::ConstantFP::get(dbl, 1.0), b_.CreateFAdd(llvm::ConstantFP::get(dbl, 1.0), e));
      }
      // softplus(a) = a when a > 30, else log1p(exp(a)): both sides are finite or +inf, never NaN.
      case Op::Softplus: {
        llvm::Value* smooth = libm("log1p", intrinsic(llvm::Intrinsic::exp, x(0)));
        return b_.CreateSelect(b_.CreateFCmpOGT(x(0), llvm::ConstantFP::get(dbl, 30.0)), x(0), smooth);
      }
      case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq: case Op::Ne: return compare(inst);
      case Op::And: return b_.CreateAnd(x(0), x(1));
      case Op::Or: return b_.CreateOr(x(0), x(1));
      case Op::Not: return b_.CreateXor(x(0), b_.getInt1(true));
      case Op::ToReal:
        return f_.value_types[inst.operands[0]] == Ty::I1 ? b_.CreateUIToFP(x(0), dbl) : b_.CreateSIToFP(x(0), dbl);
      case Op::If: break;
    }
    throw std::logic_error("unhandled IR operation in codegen");
  }

  // The interpreter compares with C++ operators: ordered comparisons, and != true on NaN.
  llvm::Value* compare(const Inst& inst) {
    llvm::Value* a = values_[inst.operands[0]];
    llvm::Value* c = values_[inst.operands[1]];
    Ty t = f_.value_types[inst.operands[0]];
    if (t == Ty::F64) {
      switch (inst.op) {
        case Op::Lt: return b_.CreateFCmpOLT(a, c);
        case Op::Le: return b_.CreateFCmpOLE(a, c);
        case Op::Gt: return b_.CreateFCmpOGT(a, c);
        case Op::Ge: return b_.CreateFCmpOGE(a, c);
        case Op::Eq: return b_.CreateFCmpOEQ(a, c);
        default: return b_.CreateFCmpUNE(a, c);
      }
    }
    switch (inst.op) {
      case Op::Lt: return b_.CreateICmpSLT(a, c);
      case Op::Le: return b_.CreateICmpSLE(a, c);
      case Op::Gt: return b_.CreateICmpSGT(a, c);
      case Op::Ge: return b_.CreateICmpSGE(a, c);
      case Op::Eq: return b_.CreateICmpEQ(a, c);
      default: return b_.CreateICmpNE(a, c);
    }
  }

  void region(const ir::Region& r) {
    for (const Inst& inst : r.insts) {
      if (inst.op != Op::If) {
        values_[inst.results[0]] = op(inst);
        continue;
      }
      // Regions that compute nothing only choose between values that exist already: a select
      // chooses the same way without a branch (the kinks' adjoints are of this form).
      if (inst.regions[0]->insts.empty() && inst.regions[1]->insts.empty()) {
        for (std::size_t i = 0; i < inst.results.size(); ++i)
          values_[inst.results[i]] = b_.CreateSelect(values_[inst.operands[0]], values_[inst.regions[0]->yields[i]],
                                                     values_[inst.regions[1]->yields[i]]);
        continue;
      }
      llvm::Function* fn = b_.GetInsertBlock()->getParent();
      auto* then_bb = llvm::BasicBlock::Create(b_.getContext(), "then", fn);
      auto* else_bb = llvm::BasicBlock::Create(b_.getContext(), "else", fn);
      auto* merge_bb = llvm::BasicBlock::Create(b_.getContext(), "merge", fn);
      b_.CreateCondBr(values_[inst.operands[0]], then_bb, else_bb);
      llvm::BasicBlock* ends[2];
      std::vector<llvm::Value*> yields[2];
      llvm::BasicBlock* starts[2] = {then_bb, else_bb};
      for (int side = 0; side < 2; ++side) {
        b_.SetInsertPoint(starts[side]);
        region(*inst.regions[side]);
        for (auto y : inst.regions[side]->yields) yields[side].push_back(values_[y]);
        ends[side] = b_.GetInsertBlock();
        b_.CreateBr(merge_bb);
      }
      b_.SetInsertPoint(merge_bb);
      for (std::size_t i = 0; i < inst.results.size(); ++i) {
        llvm::PHINode* phi = b_.CreatePHI(yields[0][i]->getType(), 2);
        phi->addIncoming(yields[0][i], ends[0]);
        phi->addIncoming(yields[1][i], ends[1]);
        values_[inst.results[i]] = phi;
      }
    }
  }

  llvm::Module& m_;
  const ir::Function& f_;
  Arrays a_;
  llvm::IRBuilder<>& b_;
  llvm::Value* n_;
  llvm::Value* sample_;
  std::vector<llvm::Value*> values_;
};

enum class Arg { Params, State, Disc, Cont, Noise, Bar, Out, OutAcc, Period };

struct Param {
  Arg kind;
  std::int64_t count = 0;  // Bar and outputs: elements
};

// Emits f as `name_batch` (a loop over the samples, vectorized across them) and as `name` (one
// sample, its indices constant: a third faster at batch 1 than the loop called with n = 1).
void emit_kernel(llvm::Module& m, const std::string& name, const ir::Function& f, const std::vector<Param>& params) {
  llvm::LLVMContext& ctx = m.getContext();
  llvm::IRBuilder<> b(ctx);
  for (bool batched : {true, false}) {
    std::vector<llvm::Type*> types;
    if (batched) types.push_back(b.getInt64Ty());
    for (const auto& p : params)
      types.push_back(p.kind == Arg::Period ? static_cast<llvm::Type*>(b.getInt64Ty()) : b.getPtrTy());
    auto* type = llvm::FunctionType::get(b.getVoidTy(), types, false);
    auto* fn = llvm::Function::Create(type, llvm::Function::ExternalLinkage, batched ? name + "_batch" : name, m);
    fn->addFnAttr(llvm::Attribute::NoUnwind);
    std::size_t first = batched ? 1 : 0;
    for (std::size_t i = 0; i < params.size(); ++i)
      if (params[i].kind != Arg::Period) fn->addParamAttr(static_cast<unsigned>(first + i), llvm::Attribute::NoAlias);

    Arrays arrays;
    for (std::size_t i = 0; i < params.size(); ++i) {
      llvm::Value* arg = fn->getArg(static_cast<unsigned>(first + i));
      switch (params[i].kind) {
        case Arg::Params: arrays.params = arg; break;
        case Arg::State: arrays.state = arg; break;
        case Arg::Disc: arrays.disc = arg; break;
        case Arg::Cont: arrays.cont = arg; break;
        case Arg::Noise: arrays.noise = arg; break;
        case Arg::Bar: arrays.bar.push_back({arg, params[i].count}); break;
        case Arg::Out: arrays.outputs.push_back({arg, params[i].count, false}); break;
        case Arg::OutAcc: arrays.outputs.push_back({arg, params[i].count, true}); break;
        case Arg::Period: arrays.period = arg; break;
      }
    }
    auto* entry = llvm::BasicBlock::Create(ctx, "entry", fn);
    b.SetInsertPoint(entry);
    if (!batched) {
      KernelEmitter(m, f, arrays, b, nullptr, nullptr).emit();
      b.CreateRetVoid();
      continue;
    }
    // for (sample = 0; sample < n; ++sample) kernel(sample)
    llvm::Value* n = fn->getArg(0);
    auto* header = llvm::BasicBlock::Create(ctx, "loop", fn);
    auto* body = llvm::BasicBlock::Create(ctx, "body", fn);
    auto* exit = llvm::BasicBlock::Create(ctx, "exit", fn);
    b.CreateBr(header);
    b.SetInsertPoint(header);
    llvm::PHINode* sample = b.CreatePHI(b.getInt64Ty(), 2, "sample");
    sample->addIncoming(b.getInt64(0), entry);
    b.CreateCondBr(b.CreateICmpSLT(sample, n), body, exit);
    b.SetInsertPoint(body);
    KernelEmitter(m, f, arrays, b, n, sample).emit();
    llvm::Value* next = b.CreateAdd(sample, b.getInt64(1), "", true, true);
    sample->addIncoming(next, b.GetInsertBlock());
    b.CreateBr(header);
    b.SetInsertPoint(exit);
    b.CreateRetVoid();
  }
}

}  // namespace

std::unique_ptr<llvm::Module> generate(const ir::Program& p, const autodiff::AdjointProgram& a, llvm::LLVMContext& context) {
  auto module = std::make_unique<llvm::Module>("hpo_" + p.model_name, context);
  auto S = static_cast<std::int64_t>(p.layout.state.size());
  auto C = static_cast<std::int64_t>(p.layout.cont.size());
  auto P = static_cast<std::int64_t>(p.layout.params.size());
  auto O = static_cast<std::int64_t>(p.layout.obs.size());
  emit_kernel(*module, "hpo_init", p.init, {{Arg::Params}, {Arg::Noise}, {Arg::Out, S}});
  emit_kernel(*module, "hpo_observe", p.observe, {{Arg::Params}, {Arg::State}, {Arg::Out, O}, {Arg::Period}});
  emit_kernel(*module, "hpo_step", p.step,
              {{Arg::Params}, {Arg::State}, {Arg::Disc}, {Arg::Cont}, {Arg::Noise}, {Arg::Out, S}, {Arg::Out, 1},
               {Arg::Period}});
  emit_kernel(*module, "hpo_step_adj", a.step_adj,
              {{Arg::Params}, {Arg::State}, {Arg::Disc}, {Arg::Cont}, {Arg::Noise}, {Arg::Bar, S}, {Arg::Bar, 1},
               {Arg::OutAcc, S}, {Arg::OutAcc, C}, {Arg::Period}});
  emit_kernel(*module, "hpo_observe_adj", a.observe_adj,
              {{Arg::Params}, {Arg::State}, {Arg::Bar, O}, {Arg::OutAcc, S}, {Arg::Period}});
  emit_kernel(*module, "hpo_init_adj", a.init_adj, {{Arg::Params}, {Arg::Noise}, {Arg::Bar, S}, {Arg::OutAcc, P}});
  std::string errors;
  llvm::raw_string_ostream stream(errors);
  if (llvm::verifyModule(*module, &stream)) throw std::logic_error("codegen produced invalid LLVM IR: " + errors);
  return module;
}

std::string print(const llvm::Module& module) {
  std::string text;
  llvm::raw_string_ostream stream(text);
  module.print(stream, nullptr);
  return text;
}

}  // namespace hpo::codegen
