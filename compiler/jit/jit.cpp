// jit.cpp: ORC LLJIT (LLVM 19) set up for the host, with the math functions the kernels call
// registered explicitly.
#include "jit/jit.hpp"

#include <llvm/ExecutionEngine/Orc/Core.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/TargetSelect.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>

namespace hpo::jit {
namespace {

void initialize_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

template <typename T>
bool fail(std::string* error, llvm::Expected<T>& value, const char* what) {
  if (value) return false;
  if (error) *error = std::string(what) + ": " + llvm::toString(value.takeError());
  else llvm::consumeError(value.takeError());
  return true;
}

using Unary = double (*)(double);
using Binary = double (*)(double, double);

// Everything the generated code may call, by the names LLVM lowers its intrinsics to.
std::vector<std::pair<const char*, void*>> math_symbols() {
  return {
      {"exp", reinterpret_cast<void*>(static_cast<Unary>(&std::exp))},
      {"log", reinterpret_cast<void*>(static_cast<Unary>(&std::log))},
      {"sin", reinterpret_cast<void*>(static_cast<Unary>(&std::sin))},
      {"cos", reinterpret_cast<void*>(static_cast<Unary>(&std::cos))},
      {"tanh", reinterpret_cast<void*>(static_cast<Unary>(&std::tanh))},
      {"log1p", reinterpret_cast<void*>(static_cast<Unary>(&std::log1p))},
      {"sqrt", reinterpret_cast<void*>(static_cast<Unary>(&std::sqrt))},
      {"pow", reinterpret_cast<void*>(static_cast<Binary>(&std::pow))},
      {"fmin", reinterpret_cast<void*>(static_cast<Binary>(&std::fmin))},
      {"fmax", reinterpret_cast<void*>(static_cast<Binary>(&std::fmax))},
      {"memset", reinterpret_cast<void*>(&std::memset)},
      {"memcpy", reinterpret_cast<void*>(&std::memcpy)},
  };
}

// Builds the module and runs the pipeline for the host machine.
std::unique_ptr<llvm::Module> build_module(const ir::Program& program, const autodiff::AdjointProgram& adjoints,
                                           const Options& options, llvm::LLVMContext& context,
                                           llvm::orc::JITTargetMachineBuilder& machine, Kernels* timing,
                                           std::string* error) {
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<llvm::Module> module;
  try {
    module = codegen::generate(program, adjoints, context);
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return nullptr;
  }
  if (timing) timing->codegen_seconds = seconds_since(start);
  auto target = machine.createTargetMachine();
  if (fail(error, target, "cannot create a target machine for this host")) return nullptr;
  start = std::chrono::steady_clock::now();
  codegen::optimize(*module, **target, options.level);
  if (timing) timing->optimize_seconds = seconds_since(start);
  return module;
}

}  // namespace

Kernels::Kernels() = default;
Kernels::~Kernels() = default;
Kernels::Kernels(Kernels&&) noexcept = default;
Kernels& Kernels::operator=(Kernels&&) noexcept = default;

std::unique_ptr<Kernels> Kernels::compile(const ir::Program& program, const autodiff::AdjointProgram& adjoints,
                                          const Options& options, std::string* error) {
  initialize_llvm();
  std::unique_ptr<Kernels> kernels(new Kernels());
  auto machine = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (fail(error, machine, "cannot describe this host to LLVM")) return nullptr;
  machine->setCodeGenOptLevel(options.level == codegen::OptLevel::O0 ? llvm::CodeGenOptLevel::None
                                                                     : llvm::CodeGenOptLevel::Default);
  auto context = std::make_unique<llvm::LLVMContext>();
  auto module = build_module(program, adjoints, options, *context, *machine, kernels.get(), error);
  if (!module) return nullptr;

  auto start = std::chrono::steady_clock::now();
  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(*machine).create();
  if (fail(error, jit, "cannot start the JIT")) return nullptr;
  kernels->jit_ = std::move(*jit);
  llvm::orc::LLJIT& lljit = *kernels->jit_;
  llvm::orc::SymbolMap symbols;
  for (const auto& [name, address] : math_symbols())
    symbols[lljit.mangleAndIntern(name)] = {llvm::orc::ExecutorAddr::fromPtr(address), llvm::JITSymbolFlags::Exported};
  if (auto err = lljit.getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(symbols)))) {
    if (error) *error = "cannot register math functions: " + llvm::toString(std::move(err));
    return nullptr;
  }
  if (auto err = lljit.addIRModule(llvm::orc::ThreadSafeModule(std::move(module), std::move(context)))) {
    if (error) *error = "cannot add the kernels to the JIT: " + llvm::toString(std::move(err));
    return nullptr;
  }
  bool ok = true;
  auto find = [&](const char* name, auto& slot) {
    auto address = lljit.lookup(name);
    if (fail(error, address, name)) {
      ok = false;
      return;
    }
    slot = address->toPtr<std::remove_reference_t<decltype(slot)>>();
  };
  find("hpo_init", kernels->init);
  find("hpo_observe", kernels->observe);
  find("hpo_step", kernels->step);
  find("hpo_step_adj", kernels->step_adj);
  find("hpo_observe_adj", kernels->observe_adj);
  find("hpo_init_adj", kernels->init_adj);
  find("hpo_init_batch", kernels->init_batch);
  find("hpo_observe_batch", kernels->observe_batch);
  find("hpo_step_batch", kernels->step_batch);
  find("hpo_step_adj_batch", kernels->step_adj_batch);
  find("hpo_observe_adj_batch", kernels->observe_adj_batch);
  find("hpo_init_adj_batch", kernels->init_adj_batch);
  if (!ok) return nullptr;
  kernels->jit_seconds = seconds_since(start);
  return kernels;
}

std::string emit_llvm(const ir::Program& program, const autodiff::AdjointProgram& adjoints, const Options& options,
                      std::string* error) {
  initialize_llvm();
  auto machine = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (fail(error, machine, "cannot describe this host to LLVM")) return {};
  llvm::LLVMContext context;
  auto module = build_module(program, adjoints, options, context, *machine, nullptr, error);
  if (!module) return {};
  return codegen::print(*module);
}

}  // namespace hpo::jit
