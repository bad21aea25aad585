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
//   hpo_observe    (params, state, obs)
//   hpo_step       (params, state, disc, cont, noise, next_state, cost)
//   hpo_step_adj   (params, state, disc, cont, noise, next_bar, cost_bar, state_bar+=, cont_bar+=)
//   hpo_observe_adj(params, state, obs_bar, state_bar+=)
//   hpo_init_adj   (params, noise0, state_bar, params_bar+=)
// Batched (`_batch` suffix): a leading int64 n, then the same arrays with every per-sample array
// laid out structure-of-arrays (element i of sample b at i * n + b); params are shared.
using InitFn = void (*)(const double*, const double*, double*);
using ObserveFn = void (*)(const double*, const double*, double*);
using StepFn = void (*)(const double*, const double*, const std::int32_t*, const double*, const double*, double*,
                        double*);
using StepAdjFn = void (*)(const double*, const double*, const std::int32_t*, const double*, const double*,
                           const double*, const double*, double*, double*);
using ObserveAdjFn = void (*)(const double*, const double*, const double*, double*);
using InitAdjFn = void (*)(const double*, const double*, const double*, double*);

using InitBatchFn = void (*)(std::int64_t, const double*, const double*, double*);
using ObserveBatchFn = void (*)(std::int64_t, const double*, const double*, double*);
using StepBatchFn = void (*)(std::int64_t, const double*, const double*, const std::int32_t*, const double*,
                             const double*, double*, double*);
using StepAdjBatchFn = void (*)(std::int64_t, const double*, const double*, const std::int32_t*, const double*,
                                const double*, const double*, const double*, double*, double*);
using ObserveAdjBatchFn = void (*)(std::int64_t, const double*, const double*, const double*, double*);
using InitAdjBatchFn = void (*)(std::int64_t, const double*, const double*, const double*, double*);

// Builds every kernel above into one module (not yet optimized).
std::unique_ptr<llvm::Module> generate(const ir::Program& program, const autodiff::AdjointProgram& adjoints,
                                       llvm::LLVMContext& context);

enum class OptLevel { O0, O2 };

// Runs the new pass manager's default pipeline for the level, tuned for the target machine.
void optimize(llvm::Module& module, llvm::TargetMachine& target, OptLevel level);

std::string print(const llvm::Module& module);

}  // namespace hpo::codegen
