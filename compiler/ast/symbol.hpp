// symbol.hpp: what a name in a .hpo file refers to, as resolved by sema.
#pragma once

#include <string>

#include "ast/type.hpp"
#include "support/source.hpp"

namespace hpo::ast {

struct Decl;

enum class SymbolKind { Const, Param, State, Action, Noise, Fn, Let, LoopVar, FnParam };
const char* spelling(SymbolKind k);

struct Symbol {
  SymbolKind kind;
  std::string name;
  SourceLoc loc;
  Type type;
  const Decl* decl = nullptr;  // the declaration, for module-level symbols
  int index = -1;              // position in the model's table of its kind (params, states, ...)
  bool is_static = false;      // value known at compile time (consts, loop vars, lets of those)
};

}  // namespace hpo::ast
