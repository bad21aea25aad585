// parser.hpp: turns .hpo source text into an AST with source locations (ANTLR underneath).
#pragma once

#include <memory>

#include "ast/ast.hpp"
#include "support/diagnostics.hpp"

namespace hpo {

// Reports syntax errors to diags (several per file where recovery allows) and returns null when
// there were any; never throws on bad input.
std::unique_ptr<ast::File> parse_file(const SourceManager& sources, FileId file, Diagnostics& diags);

// Input larger than this is refused before lexing (bytes).
inline constexpr std::size_t kMaxSourceBytes = 16u << 20;
// Brackets ( [ { nested deeper than this are refused before parsing.
inline constexpr int kMaxBracketDepth = 100;

}  // namespace hpo
