// interpreter.hpp: the reference interpreter of IR kernels: slow, simple, and the ground truth
// that the JIT and the adjoint are checked against.
#pragma once

#include <span>
#include <stdexcept>
#include <vector>

#include "ir/ir.hpp"

namespace hpo::ir {

// The arrays a kernel reads; discrete values and categorical noise hold integers as doubles.
struct KernelInputs {
  std::span<const double> params, state, disc, cont, noise;
  std::span<const double> bar = {};  // adjoint kernels: the seed (e.g. next_bar then cost_bar)
  std::int64_t t = 0;                 // the step index that period() reads
};

// Runs f and returns its outputs in order. Throws std::out_of_range when a run-time index
// (a discrete action or categorical noise outside its range) leaves an array.
std::vector<double> interpret(const Function& f, const KernelInputs& inputs);

}  // namespace hpo::ir
