// codegen.hpp: IR kernels -> LLVM IR functions, per sample and batched over structure-of-arrays.
#pragma once

#include <memory>
#include <string>

#include "autodiff/adjoint.hpp"
#include "ir/ir.hpp"

namespace llvm {
class LLVMContext;
class Module;
class TargetMachine;
}  // namespace llvm

namespace hpo::codegen {

// The C ABI of the generated kernels (all reals double, arrays row-major, discrete actions int32).
// Per sample:
//   hpo_init       (params, noise0, state)
//   hpo_observe    (params, state, obs, t)
//   hpo_step       (params, state, disc, cont, noise, next_state, cost, t)
//   hpo_step_adj   (params, state, disc, cont, noise, next_bar, cost_bar, state_bar+=, cont_bar+=, t)
//   hpo_observe_adj(params, state, obs_bar, state_bar+=, t)
//   hpo_init_adj   (params, noise0, state_bar, params_bar+=)
// t is the int64 step index that period() reads: the step being taken, or for observe the step
// about to be taken (the horizon after the last). The initial state is always that of step 0.
// Batched (`_batch` suffix): a leading int64 n, then the same arguments with every per-sample
// array laid out structure-of-arrays (element i of sample b at i * n + b); params and t are shared.
using InitFn = void (*)(const double*, const double*, double*);
using ObserveFn = void (*)(const double*, const double*, double*, std::int64_t);
using StepFn = void (*)(const double*, const double*, const std::int32_t*, const double*, const double*, double*,
                        double*, std::int64_t);
using StepAdjFn = void (*)(const double*, const double*, const std::int32_t*, const double*, const double*,
                           const double*, const double*, double*, double*, std::int64_t);
using ObserveAdjFn = void (*)(const double*, const double*, const double*, double*, std::int64_t);
using InitAdjFn = void (*)(const double*, const double*, const double*, double*);

using InitBatchFn = void (*)(std::int64_t, const double*, const double*, double*);
using ObserveBatchFn = void (*)(std::int64_t, const double*, const double*, double*, std::int64_t);
using StepBatchFn = void (*)(std::int64_t, const double*, const double*, const std::int32_t*, const double*,
                             const double*, double*, double*, std::int64_t);
using StepAdjBatchFn = void (*)(std::int64_t, const double*, const double*, const std::int32_t*, const double*,
                                const double*, const double*, const double*, double*, double*, std::int64_t);
using ObserveAdjBatchFn = void (*)(std::int64_t, const double*, const double*, const double*, double*, std::int64_t);
using InitAdjBatchFn = void (*)(std::int64_t, const double*, const double*, const double*, double*);

// Builds every kernel above into one module (not yet optimized).
std::unique_ptr<llvm::Module> generate(const ir::Program& program, const autodiff::AdjointProgram& adjoints,
                                       llvm::LLVMContext& context);

enum class OptLevel { O0, O2 };

// Runs the new pass manager's default pipeline for the level, tuned for the target machine.
void optimize(llvm::Module& module, llvm::TargetMachine& target, OptLevel level);

std::string print(const llvm::Module& module);

}  // namespace hpo::codegen
