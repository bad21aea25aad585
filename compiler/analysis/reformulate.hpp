// reformulate.hpp: the rewrite of jumps on one continuous action into hybrid form (a generated gate
// action per action element and threshold); split.cpp finds the jumps and calls it.
#pragma once

#include <cstdint>
#include <vector>

#include "analysis/split.hpp"

namespace hpo::analysis {

// A jump that compares one continuous action element with a constant: `q > c`, `c <= q`, ...
struct Threshold {
  std::int64_t cont = -1;
  bool above = true;  // the comparison holds for q above c (q > c or q >= c)
  double c = 0;
  friend bool operator==(const Threshold&, const Threshold&) = default;
};

// A jump in threshold form, where it was found, and the finding that reports it.
struct JumpSite {
  ir::ValueId cond;
  Threshold t;
  std::size_t finding;  // index into Report::findings
};

// Each continuous action element compared with one threshold gets a gate: the comparison becomes
// `gate == 1`, and the action's other uses see it held on the gate's side of the threshold
// (max(q, c) above, min(q, c) below). An element compared with different thresholds is left alone,
// with a note in its findings. def: the instruction defining each value of program.step.
void reformulate(ir::Program& program, const std::vector<JumpSite>& sites, const std::vector<const ir::Inst*>& def,
                 Report& report);

}  // namespace hpo::analysis
