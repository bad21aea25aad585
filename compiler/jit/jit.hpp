// jit.hpp: compiles a model's kernels with ORC LLJIT (one JIT and LLVM context per model) and
// hands out the native function pointers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "autodiff/adjoint.hpp"
#include "codegen/codegen.hpp"
#include "ir/ir.hpp"

namespace llvm::orc {
class LLJIT;
}

namespace hpo::jit {

struct Options {
  codegen::OptLevel level = codegen::OptLevel::O2;
};

// A kernel whose last argument is the step index t (codegen.hpp). A call may leave t out, which
// passes 0: enough for models that never read period(), whose kernels ignore t, and it keeps
// callers written before t existed working. The runtime always passes it.
template <typename... Args>
struct PeriodKernel {
  using Fn = void (*)(Args..., std::int64_t);
  Fn fn = nullptr;
  void operator()(Args... args, std::int64_t t = 0) const { fn(args..., t); }
};
using ObserveKernel = PeriodKernel<const double*, const double*, double*>;
using StepKernel = PeriodKernel<const double*, const double*, const std::int32_t*, const double*, const double*,
                                double*, double*>;
using StepAdjKernel = PeriodKernel<const double*, const double*, const std::int32_t*, const double*, const double*,
                                   const double*, const double*, double*, double*>;
using ObserveAdjKernel = PeriodKernel<const double*, const double*, const double*, double*>;
using ObserveBatchKernel = PeriodKernel<std::int64_t, const double*, const double*, double*>;
using StepBatchKernel = PeriodKernel<std::int64_t, const double*, const double*, const std::int32_t*, const double*,
                                     const double*, double*, double*>;
using StepAdjBatchKernel = PeriodKernel<std::int64_t, const double*, const double*, const std::int32_t*, const double*,
                                        const double*, const double*, const double*, double*, double*>;
using ObserveAdjBatchKernel = PeriodKernel<std::int64_t, const double*, const double*, const double*, double*>;
static_assert(std::is_same_v<StepKernel::Fn, codegen::StepFn> && std::is_same_v<StepAdjKernel::Fn, codegen::StepAdjFn> &&
              std::is_same_v<ObserveKernel::Fn, codegen::ObserveFn> &&
              std::is_same_v<ObserveAdjKernel::Fn, codegen::ObserveAdjFn> &&
              std::is_same_v<StepBatchKernel::Fn, codegen::StepBatchFn> &&
              std::is_same_v<StepAdjBatchKernel::Fn, codegen::StepAdjBatchFn> &&
              std::is_same_v<ObserveBatchKernel::Fn, codegen::ObserveBatchFn> &&
              std::is_same_v<ObserveAdjBatchKernel::Fn, codegen::ObserveAdjBatchFn>);

// The compiled kernels; calling them from several threads at once is safe (they are pure).
class Kernels {
 public:
  ~Kernels();
  Kernels(Kernels&&) noexcept;
  Kernels& operator=(Kernels&&) noexcept;

  // Returns null and sets *error when LLVM fails (never aborts the process).
  static std::unique_ptr<Kernels> compile(const ir::Program& program, const autodiff::AdjointProgram& adjoints,
                                          const Options& options, std::string* error);

  codegen::InitFn init = nullptr;
  ObserveKernel observe;
  StepKernel step;
  StepAdjKernel step_adj;
  ObserveAdjKernel observe_adj;
  codegen::InitAdjFn init_adj = nullptr;
  codegen::InitBatchFn init_batch = nullptr;
  ObserveBatchKernel observe_batch;
  StepBatchKernel step_batch;
  StepAdjBatchKernel step_adj_batch;
  ObserveAdjBatchKernel observe_adj_batch;
  codegen::InitAdjBatchFn init_adj_batch = nullptr;

  double codegen_seconds = 0;   // IR -> LLVM IR
  double optimize_seconds = 0;  // the pass pipeline
  double jit_seconds = 0;       // machine code and symbol lookup

 private:
  Kernels();
  std::unique_ptr<llvm::orc::LLJIT> jit_;
};

// The optimized LLVM IR of every kernel, as text (hpoc --emit=llvm).
std::string emit_llvm(const ir::Program& program, const autodiff::AdjointProgram& adjoints, const Options& options,
                      std::string* error);

}  // namespace hpo::jit
