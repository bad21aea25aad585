// model.hpp: what hpo::Model holds (shared by the runtime's sources, not part of the API).
#pragma once

#include <memory>
#include <sstream>

#include "analysis/split.hpp"
#include "autodiff/adjoint.hpp"
#include "hpo/hpo.hpp"
#include "ir/ir.hpp"
#include "jit/jit.hpp"
#include "sema/sema.hpp"

namespace hpo {

struct Model::Impl {
  std::unique_ptr<SourceManager> sources;
  std::unique_ptr<CheckedModel> checked;
  std::unique_ptr<ir::Program> program;
  autodiff::AdjointProgram adjoints;
  std::unique_ptr<jit::Kernels> kernels;
  analysis::Report report;
  std::vector<double> params;
  std::vector<std::size_t> param_offsets;  // per declared param, where its values start
  double compile_seconds = 0;
};

}  // namespace hpo
