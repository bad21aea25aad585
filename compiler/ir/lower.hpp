// lower.hpp: lowering a checked model to the scalar IR: loops unrolled, arrays scalarized,
// functions inlined, compile-time conditions folded, run-time branches kept as `if` regions.
#pragma once

#include <memory>

#include "ir/ir.hpp"
#include "sema/sema.hpp"

namespace hpo::ir {

// Returns null after reporting an error (only for models too large to lower).
std::unique_ptr<Program> lower(const CheckedModel& model, Diagnostics& diags);

// Above this many instructions in one kernel, lowering stops with an error.
inline constexpr std::size_t kMaxInstructions = 4'000'000;

}  // namespace hpo::ir
