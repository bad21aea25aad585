// sema.hpp: checks a parsed model (names, constants, types, shapes, next-state coverage) and
// returns it as a CheckedModel: the declarations with their resolved types and the typed step.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ast/ast.hpp"
#include "ast/distribution.hpp"
#include "ast/symbol.hpp"
#include "support/diagnostics.hpp"

namespace hpo {

// A compile-time value: ints exactly, reals and bools as doubles; arrays row-major.
struct Value {
  ast::Type type;
  std::vector<std::int64_t> ints;  // Int
  std::vector<double> reals;       // Real, Bool (0/1), Choice

  std::size_t size() const { return type.scalar == ast::Scalar::Int ? ints.size() : reals.size(); }
  double as_real(std::size_t i) const { return type.scalar == ast::Scalar::Int ? double(ints[i]) : reals[i]; }
};


struct ConstInfo {
  const ast::Symbol* symbol;
  Value value;
};
struct ParamInfo {
  const ast::Symbol* symbol;
  const ast::ParamDecl* decl;
  std::optional<std::vector<double>> default_value;  // absent: must come from --params
};
struct StateInfo {
  const ast::Symbol* symbol;
  const ast::StateDecl* decl;
};
struct ActionInfo {
  const ast::Symbol* symbol;
  const ast::ActionDecl* decl;
  bool discrete = false;
  std::int64_t choices = 0;  // discrete
  double lo = 0, hi = 0;     // continuous; +-infinity when unbounded on that side
};
struct NoiseInfo {
  const ast::Symbol* symbol;
  const ast::NoiseDecl* decl;
  Distribution dist = Distribution::Normal;
};

// The periods [first, end) of an episode that count toward a total; declared with `report
// periods lo..hi` or `train periods lo..hi`, otherwise every period of the horizon.
struct PeriodRange {
  std::int64_t first = 0;
  std::int64_t end = 0;
  bool declared = false;
  SourceLoc loc;  // the declaration, when declared
};

struct CheckedModel {
  std::string name;
  bool is_module = false;   // a library file checked on its own
  FileId main_file = 0;
  std::vector<std::unique_ptr<ast::File>> files;  // the main file first, then its imports
  std::deque<ast::Symbol> symbols;                // every symbol; stable addresses

  std::vector<ConstInfo> consts;
  std::vector<ParamInfo> params;
  std::vector<StateInfo> states;
  std::vector<ActionInfo> actions;
  std::vector<NoiseInfo> noises;
  std::vector<const ast::FnDecl*> functions;
  std::vector<const ast::Expr*> observe;  // empty with observe_all_state
  bool observe_all_state = false;
  std::int64_t horizon = 0;
  double discount = 1.0;
  PeriodRange report_periods;  // periods in the reported cost
  PeriodRange train_periods;   // periods in the training loss
  bool uses_period = false;     // step or observe reads period()
  const ast::Block* step = nullptr;
};

struct CheckOptions {
  std::vector<std::string> stdlib_dirs;  // searched after the importing file's own folder
  // "NAME=VALUE" from --set: those naming a const of the main file replace its value (sizes too,
  // e.g. --set STORES=16); the others are params, assigned later by set_param.
  std::vector<std::string> sets;
};

// Where stdlib/ is found by default: $HPOC_STDLIB, then the folder fixed at build time.
std::vector<std::string> default_stdlib_dirs();

// Reads, parses and checks the file at path and everything it imports. Returns null after
// reporting errors; never throws on bad input.
std::unique_ptr<CheckedModel> check_file(const std::string& path, SourceManager& sources, Diagnostics& diags,
                                  const CheckOptions& options = {});
// The same for source text held in memory; imports are searched relative to the current folder.
std::unique_ptr<CheckedModel> check_source(const std::string& name, std::string text, SourceManager& sources,
                                    Diagnostics& diags, const CheckOptions& options = {});

// Prints the checked AST with types and positions (hpoc --emit=ast).
std::string print_ast(const CheckedModel& model);

}  // namespace hpo
