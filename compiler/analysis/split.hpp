// split.hpp: the smooth/discrete split of a model's step: every branch and non-smooth operation
// classified as regime, exogenous, kink or jump, with the jumps hpoc can reformulate rewritten
// into hybrid form (a generated discrete gate action selects the regime).
#pragma once

#include <string>
#include <vector>

#include "ir/ir.hpp"
#include "support/diagnostics.hpp"

namespace hpo::analysis {

enum class Class { Regime, Exogenous, Kink, Jump };
const char* spelling(Class c);

// One source construct, with every unrolled instance of it counted together.
struct Finding {
  Class cls;
  std::string what;  // "if", "relu", "indicator", "index", ...
  SourceLoc loc;
  std::size_t instances = 0;
  std::vector<std::string> depends;  // declarations it depends on, e.g. "qty (continuous action)"
  std::vector<std::string> gates;    // jumps: the generated discrete actions that replaced it
  std::string note;                  // jumps left alone: why, and the rewrite to make
};

struct Report {
  std::string model;
  std::vector<std::string> discrete;  // discrete actions of the model, e.g. "order[3] : choice(2)"
  std::vector<std::string> generated;  // generated gate actions with what they decide
  std::vector<Finding> findings;
};

struct Options {
  bool reformulate = true;
};

// Classifies the step of `program` and, with options.reformulate, rewrites the jumps it can:
// program.step and program.layout gain the generated gate actions. Jumps it cannot rewrite are
// reported as warnings (errors with --strict) at their source location.
Report analyze(ir::Program& program, Diagnostics& diags, const Options& options = {});

// The report as stable text for golden tests (hpoc --emit=split).
std::string print_split(const Report& report);
// The report for a person (hpoc analyze), quoting the source lines.
std::string print_report(const Report& report, const SourceManager& sources);

}  // namespace hpo::analysis
