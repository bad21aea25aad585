// jit.hpp: compiles a model's kernels with ORC LLJIT (one JIT and LLVM context per model) and
// hands out the native function pointers.
#pragma once

#include <memory>
#include <string>

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
  codegen::ObserveFn observe = nullptr;
  codegen::StepFn step = nullptr;
  codegen::StepAdjFn step_adj = nullptr;
  codegen::ObserveAdjFn observe_adj = nullptr;
  codegen::InitAdjFn init_adj = nullptr;
  codegen::InitBatchFn init_batch = nullptr;
  codegen::ObserveBatchFn observe_batch = nullptr;
  codegen::StepBatchFn step_batch = nullptr;
  codegen::StepAdjBatchFn step_adj_batch = nullptr;
  codegen::ObserveAdjBatchFn observe_adj_batch = nullptr;
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
