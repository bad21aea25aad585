// model.hpp: what hpo::Model holds (shared by the runtime's sources, not part of the API).
#pragma once

#include <memory>
#include <sstream>

#include "analysis/split.hpp"
#include "autodiff/adjoint.hpp"
#include "hpo/hpo.hpp"
#include "ir/ir.hpp"
#include "jit/jit.hpp"
#include "sema/param_values.hpp"
#include "sema/sema.hpp"

namespace hpo {

struct Model::Impl {
  std::unique_ptr<SourceManager> sources;
  std::unique_ptr<CheckedModel> checked;
  std::unique_ptr<ir::Program> program;
  autodiff::AdjointProgram adjoints;
  std::unique_ptr<jit::Kernels> kernels;
  analysis::Report report;
  ParamValues param_values;  // per declared param, and whether it was given or follows its default
  std::vector<double> params;               // param_values flattened, as the kernels read them
  std::vector<std::size_t> param_offsets;   // per declared param, where its values start
  double compile_seconds = 0;
  std::string file_path;  // absolute; empty for compile_string
  CompileOptions options;  // as compiled, so a checkpoint can compile the same model again
  std::string warnings;    // the diagnostics of a compile that succeeded, as hpoc prints them
};

namespace detail {
// What the runtime's sources need of Model's private parts.
struct ModelAccess {
  using Impl = Model::Impl;
  static Model make(std::unique_ptr<Impl> impl) { return Model(std::move(impl)); }
  static const Impl& impl(const Model& model) { return *model.impl_; }
  static Impl& mutable_impl(Model& model) { return *model.impl_; }
};
}  // namespace detail

}  // namespace hpo
