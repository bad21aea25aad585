// ir.hpp: hpoc's scalar SSA IR: kernels (init, observe, step) as lists of scalar operations, with
// structured `if` regions so that only the branch taken is ever evaluated.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ast/distribution.hpp"
#include "support/source.hpp"

namespace hpo::ir {

enum class Ty : std::uint8_t { F64, I1, I64 };
const char* spelling(Ty t);

enum class Op : std::uint8_t {
  // Leaves. attr is the flat element index into the kernel's input array.
  ConstF, ConstI, ConstB,
  Param, State, Disc, Cont, Noise,
  Bar,  // an adjoint kernel's seed input (next_bar and cost_bar, obs_bar or state_bar)
  Period,  // the step index t (I64), a scalar argument of step and observe kernels and their adjoints
  // Loads at an index known only at run time (a discrete action or categorical noise):
  // element attr + operand0 * attr2 of the input array.
  LoadParam, LoadState, LoadCont, LoadNoise,
  // Real arithmetic.
  Add, Sub, Mul, Div, Neg, Pow, Min, Max, Relu, Abs,
  Exp, Log, Sqrt, Sin, Cos, Tanh, Sigmoid, Softplus,
  // Comparisons (of two F64 or two I64) give I1; logic on I1.
  Lt, Le, Gt, Ge, Eq, Ne, And, Or, Not,
  ToReal,  // I1 or I64 -> F64
  If,      // operand0: I1 condition; regions[0] then, regions[1] else; results from their yields
};
const char* spelling(Op op);
bool is_leaf(Op op);

using ValueId = std::uint32_t;
inline constexpr ValueId kNoValue = ~ValueId{0};

struct Region;
struct Function;

struct Inst {
  Op op;
  std::vector<ValueId> operands;
  std::vector<ValueId> results;  // one for every op but If, which has one per yielded value
  std::int64_t attr = 0;
  std::int64_t attr2 = 0;
  std::int64_t extent = 0;  // loads: how many values the run-time index may take
  double number = 0;        // ConstF
  SourceLoc loc;
  std::vector<std::unique_ptr<Region>> regions;  // If: then, else
};

struct Region {
  std::vector<Inst> insts;
  std::vector<ValueId> yields;  // the region's results, in the order of the If's results
};

// Clones a region's instructions (nested regions included) into `into`, giving every result a
// fresh value of `f`; rename maps old values to new ones and learns the clones' results.
void clone_region(const Region& from, Region& into, Function& f, const std::vector<Ty>& from_types,
                  std::vector<ValueId>& rename);

struct Function {
  std::string name;
  std::vector<Ty> value_types;  // indexed by ValueId
  Region body;
  std::vector<ValueId> outputs;           // flat; see output_names
  std::vector<std::string> output_names;  // one per output

  ValueId new_value(Ty t) {
    value_types.push_back(t);
    return static_cast<ValueId>(value_types.size() - 1);
  }
};

// The layouts of a model's flat arrays: element names in row-major order.
struct Layout {
  std::vector<std::string> params, state, disc, cont, noise, obs;
  std::vector<std::int64_t> disc_choices;            // per discrete element
  std::vector<double> cont_lo, cont_hi;              // per continuous element
  std::vector<bool> noise_is_index;                  // categorical noise elements hold an index
};

// How each noise element is drawn: its distribution and where its arguments start in the
// outputs of the noise_args kernel (params -> arguments; categorical: one probability per value).
struct NoiseDraw {
  Distribution dist = Distribution::Normal;
  std::size_t first_arg = 0;
  std::size_t arg_count = 0;
};

struct Program {
  std::string model_name;
  Layout layout;
  Function init, observe, step;
  Function noise_args;
  std::vector<NoiseDraw> noise_draws;  // one per noise element
  std::int64_t horizon = 0;
  double discount = 1.0;
};

// Removes instructions whose results nothing uses and renumbers values in order of definition.
void prune(Function& f);

// Leaves are annotated with the element they read when the layout is given.
std::string print(const Function& f, const Layout* layout = nullptr);
std::string print(const Program& p);

}  // namespace hpo::ir
