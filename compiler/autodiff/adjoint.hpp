// adjoint.hpp: reverse-mode differentiation of IR kernels by source transformation: each adjoint
// kernel replays the forward pass, then runs the reverse statements in reverse order.
#pragma once

#include <string>
#include <vector>

#include "ir/ir.hpp"

namespace hpo::autodiff {

// The inputs an adjoint differentiates with respect to; each adds one output array.
enum class Wrt { State, Cont, Param };

// The adjoint of f: it reads f's inputs plus a seed array `bar` (one value per output of f) and
// returns, per entry of wrt in order, the gradient of sum_i bar[i] * output_i with respect to
// that input array. Discrete actions, noise and integers get no adjoint; only the branch taken
// is differentiated; the derivative of a kink (relu, max, min, abs) is that of the side taken.
ir::Function adjoint(const ir::Function& f, const ir::Layout& layout, const std::vector<Wrt>& wrt, std::string name);

struct AdjointProgram {
  ir::Function step_adj;     // bar = (next_bar..., cost_bar) -> (state_bar, cont_bar)
  ir::Function observe_adj;  // bar = obs_bar -> state_bar
  ir::Function init_adj;     // bar = state_bar -> param_bar (initial state may depend on params)
};

AdjointProgram differentiate(const ir::Program& program);
std::string print(const AdjointProgram& adjoints, const ir::Layout& layout);

}  // namespace hpo::autodiff
