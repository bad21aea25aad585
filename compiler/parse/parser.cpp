// parser.cpp: runs the generated ANTLR parser and builds the AST from its parse tree.
#include "parse/parser.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "HpoLexer.h"
#include "HpoParser.h"
#include "antlr4-runtime.h"

namespace hpo {
namespace {

using grammar::HpoLexer;
using grammar::HpoParser;

// Returns the byte offset of the first NUL byte or invalid UTF-8 sequence (overlong forms and
// surrogates included, which the ANTLR runtime would throw on), or npos.
std::size_t find_bad_byte(const std::string& text) {
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == 0) return i;
    if (c < 0x80) { ++i; continue; }
    std::size_t extra = 0;
    if (c >= 0xC2 && c <= 0xDF) extra = 1;
    else if (c >= 0xE0 && c <= 0xEF) extra = 2;
    else if (c >= 0xF0 && c <= 0xF4) extra = 3;
    else return i;
    if (i + extra >= n) return i;
    for (std::size_t k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return i;
    auto c1 = static_cast<unsigned char>(text[i + 1]);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
      return i;
    i += extra + 1;
  }
  return std::string::npos;
}

SourceLoc loc_of_offset(const SourceFile& file, FileId id, std::size_t offset) {
  std::uint32_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset && i < file.text.size(); ++i)
    if (file.text[i] == '\n') { ++line; line_start = i + 1; }
  std::uint32_t column = 1;
  for (std::size_t i = line_start; i < offset; ++i)
    if ((static_cast<unsigned char>(file.text[i]) & 0xC0) != 0x80) ++column;
  return {id, line, column};
}

std::string describe_token_type(const antlr4::dfa::Vocabulary& vocab, std::size_t type) {
  switch (type) {
    case antlr4::Token::EOF: return "end of file";
    case HpoParser::ID: return "a name";
    case HpoParser::INT_LIT: return "an integer";
    case HpoParser::REAL_LIT: return "a number";
    default: return vocab.getDisplayName(type);
  }
}

std::string describe_token(const antlr4::Token* token) {
  if (token == nullptr || token->getType() == antlr4::Token::EOF) return "end of file";
  std::string text = token->getText();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return "'" + text + "'";
}

std::string describe_expected(const antlr4::dfa::Vocabulary& vocab, const antlr4::misc::IntervalSet& expected) {
  std::vector<std::size_t> types;
  for (const auto& interval : expected.getIntervals())
    for (ssize_t t = interval.a; t <= interval.b && types.size() < 64; ++t) types.push_back(static_cast<std::size_t>(t));
  auto has = [&](std::size_t t) { return std::find(types.begin(), types.end(), t) != types.end(); };
  // The many tokens that can start an expression read better as one word.
  bool expression = has(HpoParser::ID) && has(HpoParser::INT_LIT) && has(HpoParser::REAL_LIT);
  std::vector<std::string> words;
  if (expression) words.push_back("an expression");
  for (std::size_t t : types) {
    if (expression && (t == HpoParser::ID || t == HpoParser::INT_LIT || t == HpoParser::REAL_LIT ||
                       t == HpoParser::TRUE || t == HpoParser::FALSE || t == HpoParser::INF ||
                       t == HpoParser::IF || t == HpoParser::NOT || t == HpoParser::REAL))
      continue;
    if (expression && (vocab.getDisplayName(t) == "'('" || vocab.getDisplayName(t) == "'['" ||
                       vocab.getDisplayName(t) == "'-'" || vocab.getDisplayName(t) == "'+'" ||
                       vocab.getDisplayName(t) == "'!'"))
      continue;
    words.push_back(describe_token_type(vocab, t));
  }
  if (words.empty() || words.size() > 8) return "";
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += (i + 1 == words.size()) ? " or " : ", ";
    out += words[i];
  }
  return out;
}

// Thrown from the error listener to abandon a parse that cannot recover usefully.
struct StopParsing {};

// Turns ANTLR's messages into short ones in our words, reported at the offending token.
// Nesting beyond the limit, or too many errors in one file, ends the parse.
class SyntaxErrorListener : public antlr4::BaseErrorListener {
 public:
  SyntaxErrorListener(Diagnostics& diags, FileId file) : diags_(diags), file_(file) {}

  void syntaxError(antlr4::Recognizer* recognizer, antlr4::Token* offending, std::size_t line,
                   std::size_t column, const std::string& antlr_message, std::exception_ptr error) override {
    SourceLoc loc{file_, static_cast<std::uint32_t>(line), static_cast<std::uint32_t>(column + 1)};
    if (offending != nullptr && offending->getType() == HpoLexer::UNKNOWN_CHAR) {
      diags_.error(loc, "unexpected character " + describe_token(offending));
      return;
    }
    if (offending != nullptr && offending->getType() == HpoLexer::UNTERMINATED_COMMENT) {
      diags_.error(loc, "unterminated /* comment");
      return;
    }
    if (offending != nullptr && offending->getType() == HpoLexer::INCOMPLETE_REAL) {
      diags_.error(loc, "a real literal needs digits after the '.': write " + offending->getText() + "0");
      stop_if_too_many();
      return;
    }
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const antlr4::FailedPredicateException&) {
        diags_.error(loc, "nesting is too deep here (the parser's limit is " + std::to_string(HpoParser::kMaxNesting) +
                              " levels); split it up, e.g. with let");
        throw StopParsing{};
      } catch (...) {
      }
    }
    auto* parser = dynamic_cast<antlr4::Parser*>(recognizer);
    std::string found = describe_token(offending);
    if (parser == nullptr) {
      diags_.error(loc, antlr_message);
      return;
    }
    std::string expected = describe_expected(parser->getVocabulary(), parser->getExpectedTokens());
    if (antlr_message.rfind("missing ", 0) == 0) {
      diags_.error(loc, (expected.empty() ? std::string("missing token") : "expected " + expected) + " before " + found);
    } else if (expected.empty()) {
      diags_.error(loc, "unexpected " + found);
    } else {
      diags_.error(loc, "unexpected " + found + "; expected " + expected);
    }
    stop_if_too_many();
  }

  // Recovery from badly broken input can go on for long; a few dozen errors say enough.
  void stop_if_too_many() {
    if (++count_ >= kMaxSyntaxErrors || diags_.too_many()) throw StopParsing{};
  }

 private:
  static constexpr int kMaxSyntaxErrors = 25;
  int count_ = 0;
 public:

 private:
  Diagnostics& diags_;
  FileId file_;
};

// Builds AST nodes from the parse tree of a file that parsed without errors.
class AstBuilder {
 public:
  AstBuilder(Diagnostics& diags, FileId file) : diags_(diags), file_(file) {}

  std::unique_ptr<ast::File> build(HpoParser::FileContext* tree);
  bool failed() const { return failed_; }

 private:
  SourceLoc loc(const antlr4::Token* t) const {
    if (t == nullptr) return {file_, 1, 1};
    return {file_, static_cast<std::uint32_t>(t->getLine()), static_cast<std::uint32_t>(t->getCharPositionInLine() + 1)};
  }
  SourceLoc loc(antlr4::ParserRuleContext* ctx) const { return loc(ctx ? ctx->getStart() : nullptr); }

  ast::ExprPtr expr(HpoParser::ExprContext* ctx);
  ast::ExprPtr primary(HpoParser::PrimaryContext* ctx);
  std::vector<ast::ExprPtr> exprs(const std::vector<HpoParser::ExprContext*>& list);
  std::vector<ast::ExprPtr> dims(HpoParser::DimsContext* ctx) { return ctx ? exprs(ctx->expr()) : std::vector<ast::ExprPtr>{}; }
  ast::Block block(HpoParser::BlockContext* ctx);
  ast::StmtPtr stmt(HpoParser::StmtContext* ctx);
  std::unique_ptr<ast::LetStmt> let(HpoParser::LetStmtContext* ctx);
  ast::StmtPtr if_stmt(HpoParser::IfStmtContext* ctx);
  ast::TypeRef type_ref(HpoParser::TypeRefContext* ctx);
  void item(HpoParser::ItemContext* ctx, ast::File& file);

  ast::ExprPtr too_deep(SourceLoc at) {
    if (!failed_) diags_.error(at, "expression is too deeply nested or too long (more than " +
                                       std::to_string(kMaxDepth) + " levels); split it with let");
    failed_ = true;
    return std::make_unique<ast::IntLit>(at, 0);
  }

  static constexpr int kMaxDepth = 2000;
  Diagnostics& diags_;
  FileId file_;
  int depth_ = 0;
  bool failed_ = false;
};

struct DepthGuard {
  explicit DepthGuard(int& d) : depth(d) { ++depth; }
  ~DepthGuard() { --depth; }
  int& depth;
};

std::unique_ptr<ast::File> AstBuilder::build(HpoParser::FileContext* tree) {
  auto file = std::make_unique<ast::File>();
  file->file = file_;
  if (auto* header = tree->header()) {
    file->has_header = true;
    file->header_loc = loc(header);
    if (auto* model = dynamic_cast<HpoParser::ModelHeaderContext*>(header)) {
      file->name = model->name->getText();
    } else if (auto* module = dynamic_cast<HpoParser::ModuleHeaderContext*>(header)) {
      file->is_module = true;
      file->name = module->dottedName()->getText();
    }
  }
  for (auto* it : tree->item()) item(it, *file);
  return file;
}

void AstBuilder::item(HpoParser::ItemContext* ctx, ast::File& file) {
  if (auto* c = dynamic_cast<HpoParser::ImportItemContext*>(ctx)) {
    file.imports.push_back({loc(c->dottedName()), c->dottedName()->getText()});
  } else if (auto* c = dynamic_cast<HpoParser::ConstItemContext*>(ctx)) {
    file.decls.push_back(std::make_unique<ast::ConstDecl>(loc(c->name), c->name->getText(), expr(c->expr())));
  } else if (auto* c = dynamic_cast<HpoParser::ParamItemContext*>(ctx)) {
    auto d = std::make_unique<ast::ParamDecl>(loc(c->name), c->name->getText());
    d->dims = dims(c->dims());
    if (c->expr()) d->default_value = expr(c->expr());
    file.decls.push_back(std::move(d));
  } else if (auto* c = dynamic_cast<HpoParser::StateItemContext*>(ctx)) {
    auto d = std::make_unique<ast::StateDecl>(loc(c->name), c->name->getText());
    d->dims = dims(c->dims());
    d->init = expr(c->expr());
    file.decls.push_back(std::move(d));
  } else if (auto* c = dynamic_cast<HpoParser::ActionItemContext*>(ctx)) {
    auto d = std::make_unique<ast::ActionDecl>(loc(c->name), c->name->getText());
    d->dims = dims(c->dims());
    d->type_loc = loc(c->actionType());
    if (auto* choice = dynamic_cast<HpoParser::ChoiceTypeContext*>(c->actionType())) {
      d->discrete = true;
      d->choices = expr(choice->expr());
    } else if (auto* real = dynamic_cast<HpoParser::RealTypeContext*>(c->actionType())) {
      if (real->lo) d->lo = expr(real->lo);
      if (real->hi) d->hi = expr(real->hi);
    }
    file.decls.push_back(std::move(d));
  } else if (auto* c = dynamic_cast<HpoParser::NoiseItemContext*>(ctx)) {
    auto d = std::make_unique<ast::NoiseDecl>(loc(c->name), c->name->getText());
    d->dims = dims(c->dims());
    d->dist = c->dist->getText();
    d->dist_loc = loc(c->dist);
    if (c->args()) d->args = exprs(c->args()->expr());
    file.decls.push_back(std::move(d));
  } else if (auto* c = dynamic_cast<HpoParser::ObserveItemContext*>(ctx)) {
    file.observes.push_back({loc(c), exprs(c->expr())});
  } else if (auto* c = dynamic_cast<HpoParser::HorizonItemContext*>(ctx)) {
    file.horizons.push_back({loc(c), expr(c->expr())});
  } else if (auto* c = dynamic_cast<HpoParser::DiscountItemContext*>(ctx)) {
    file.discounts.push_back({loc(c), expr(c->expr())});
  } else if (auto* c = dynamic_cast<HpoParser::PeriodsItemContext*>(ctx)) {
    auto& items = c->which->getType() == HpoParser::REPORT ? file.report_periods : file.train_periods;
    items.push_back({loc(c), expr(c->lo), expr(c->hi)});
  } else if (auto* c = dynamic_cast<HpoParser::FnItemContext*>(ctx)) {
    auto d = std::make_unique<ast::FnDecl>(loc(c->name), c->name->getText());
    for (auto* p : c->fnParam()) d->params.push_back({loc(p->name), p->name->getText(), type_ref(p->typeRef()), nullptr});
    if (c->typeRef()) d->return_type = type_ref(c->typeRef());
    auto* body = c->fnBody();
    for (auto* l : body->letStmt()) d->lets.push_back(let(l));
    d->result = expr(body->expr());
    d->result_loc = loc(body->RETURN()->getSymbol());
    file.decls.push_back(std::move(d));
  } else if (auto* c = dynamic_cast<HpoParser::StepItemContext*>(ctx)) {
    file.steps.push_back({loc(c), block(c->block())});
  }
}

ast::TypeRef AstBuilder::type_ref(HpoParser::TypeRefContext* ctx) {
  ast::TypeRef t;
  t.loc = loc(ctx);
  switch (ctx->base->getType()) {
    case HpoParser::INT: t.base = ast::Scalar::Int; break;
    case HpoParser::BOOL: t.base = ast::Scalar::Bool; break;
    default: t.base = ast::Scalar::Real; break;
  }
  t.dims = dims(ctx->dims());
  return t;
}

ast::Block AstBuilder::block(HpoParser::BlockContext* ctx) {
  ast::Block out;
  DepthGuard guard(depth_);
  if (depth_ > kMaxDepth) { too_deep(loc(ctx)); return out; }
  for (auto* s : ctx->stmt()) out.push_back(stmt(s));
  return out;
}

std::unique_ptr<ast::LetStmt> AstBuilder::let(HpoParser::LetStmtContext* ctx) {
  return std::make_unique<ast::LetStmt>(loc(ctx), ctx->name->getText(), expr(ctx->expr()));
}

ast::StmtPtr AstBuilder::if_stmt(HpoParser::IfStmtContext* ctx) {
  DepthGuard guard(depth_);
  auto s = std::make_unique<ast::IfStmt>(loc(ctx), depth_ > kMaxDepth ? too_deep(loc(ctx)) : expr(ctx->cond));
  if (depth_ > kMaxDepth) return s;
  s->then_block = block(ctx->then);
  if (ctx->otherwise) {
    s->has_else = true;
    s->else_block = block(ctx->otherwise);
  } else if (ctx->elseIf) {
    s->has_else = true;
    s->else_block.push_back(if_stmt(ctx->elseIf));
  }
  return s;
}

ast::StmtPtr AstBuilder::stmt(HpoParser::StmtContext* ctx) {
  if (auto* l = ctx->letStmt()) return let(l);
  if (auto* i = ctx->ifStmt()) return if_stmt(i);
  if (auto* f = ctx->forStmt()) {
    auto s = std::make_unique<ast::ForStmt>(loc(f), f->var->getText(), loc(f->var), expr(f->lo), expr(f->hi));
    s->body = block(f->body);
    return s;
  }
  auto* a = ctx->assignStmt();
  std::vector<ast::ExprPtr> indices;
  if (a->index()) indices = exprs(a->index()->expr());
  auto op = a->op->getText() == "+=" ? ast::AssignOp::Add : ast::AssignOp::Set;
  return std::make_unique<ast::AssignStmt>(loc(a->target), a->target->getText(), a->prime != nullptr,
                                           std::move(indices), op, expr(a->expr()));
}

std::vector<ast::ExprPtr> AstBuilder::exprs(const std::vector<HpoParser::ExprContext*>& list) {
  std::vector<ast::ExprPtr> out;
  out.reserve(list.size());
  for (auto* e : list) out.push_back(expr(e));
  return out;
}

ast::BinaryOp binary_op(const std::string& op) {
  using ast::BinaryOp;
  if (op == "@") return BinaryOp::MatMul;
  if (op == "*") return BinaryOp::Mul;
  if (op == "/") return BinaryOp::Div;
  if (op == "%") return BinaryOp::Mod;
  if (op == "+") return BinaryOp::Add;
  if (op == "-") return BinaryOp::Sub;
  if (op == "<") return BinaryOp::Lt;
  if (op == "<=") return BinaryOp::Le;
  if (op == ">") return BinaryOp::Gt;
  if (op == ">=") return BinaryOp::Ge;
  if (op == "==") return BinaryOp::Eq;
  if (op == "!=") return BinaryOp::Ne;
  if (op == "and" || op == "&&") return BinaryOp::And;
  return BinaryOp::Or;
}

ast::ExprPtr AstBuilder::expr(HpoParser::ExprContext* ctx) {
  DepthGuard guard(depth_);
  if (depth_ > kMaxDepth || failed_) return too_deep(loc(ctx));
  if (auto* p = dynamic_cast<HpoParser::PrimaryExprContext*>(ctx)) return primary(p->primary());
  if (auto* i = dynamic_cast<HpoParser::IndexExprContext*>(ctx)) {
    auto base = expr(i->expr());
    return std::make_unique<ast::IndexExpr>(loc(i->index()), std::move(base), exprs(i->index()->expr()));
  }
  if (auto* u = dynamic_cast<HpoParser::UnaryExprContext*>(ctx)) {
    std::string op = u->op->getText();
    ast::UnaryOp kind = op == "-" ? ast::UnaryOp::Neg : op == "+" ? ast::UnaryOp::Plus : ast::UnaryOp::Not;
    return std::make_unique<ast::UnaryExpr>(loc(u->op), kind, expr(u->expr()));
  }
  if (auto* b = dynamic_cast<HpoParser::BinaryExprContext*>(ctx)) {
    auto lhs = expr(b->expr(0));
    auto rhs = expr(b->expr(1));
    return std::make_unique<ast::BinaryExpr>(loc(b->op), binary_op(b->op->getText()), std::move(lhs), std::move(rhs));
  }
  auto* c = dynamic_cast<HpoParser::CondExprContext*>(ctx);
  auto cond = expr(c->cond);
  auto then_value = expr(c->then);
  auto else_value = expr(c->otherwise);
  return std::make_unique<ast::CondExpr>(loc(c), std::move(cond), std::move(then_value), std::move(else_value));
}

ast::ExprPtr AstBuilder::primary(HpoParser::PrimaryContext* ctx) {
  SourceLoc at = loc(ctx);
  if (auto* i = dynamic_cast<HpoParser::IntLiteralContext*>(ctx)) {
    const std::string text = i->getText();
    errno = 0;
    char* end = nullptr;
    long long value = std::strtoll(text.c_str(), &end, 10);
    if (errno == ERANGE) {
      diags_.error(at, "integer literal " + (text.size() > 30 ? text.substr(0, 27) + "..." : text) +
                           " is too large (the limit is " + std::to_string(std::numeric_limits<std::int64_t>::max()) + ")");
      value = 0;
    }
    return std::make_unique<ast::IntLit>(at, value);
  }
  if (auto* r = dynamic_cast<HpoParser::RealLiteralContext*>(ctx)) {
    const std::string text = r->getText();
    double value = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(value)) {
      diags_.error(at, "real literal " + (text.size() > 30 ? text.substr(0, 27) + "..." : text) +
                           " is out of range for a 64-bit real");
      value = 0;
    }
    return std::make_unique<ast::RealLit>(at, value, text);
  }
  if (auto* b = dynamic_cast<HpoParser::BoolLiteralContext*>(ctx)) return std::make_unique<ast::BoolLit>(at, b->TRUE() != nullptr);
  if (dynamic_cast<HpoParser::InfLiteralContext*>(ctx)) return std::make_unique<ast::InfLit>(at);
  if (auto* c = dynamic_cast<HpoParser::CallExprContext*>(ctx)) {
    std::vector<ast::ExprPtr> args;
    if (c->args()) args = exprs(c->args()->expr());
    return std::make_unique<ast::CallExpr>(at, c->callee->getText(), std::move(args));
  }
  if (auto* n = dynamic_cast<HpoParser::NextStateRefContext*>(ctx)) return std::make_unique<ast::NameRef>(at, n->name->getText(), true);
  if (auto* n = dynamic_cast<HpoParser::NameRefContext*>(ctx)) return std::make_unique<ast::NameRef>(at, n->name->getText(), false);
  if (auto* p = dynamic_cast<HpoParser::ParenExprContext*>(ctx)) return expr(p->expr());
  if (auto* c = dynamic_cast<HpoParser::ComprehensionContext*>(ctx)) {
    auto body = expr(c->expr(0));
    return std::make_unique<ast::Comprehension>(at, std::move(body), c->var->getText(), loc(c->var), expr(c->lo), expr(c->hi));
  }
  auto* a = dynamic_cast<HpoParser::ArrayLiteralContext*>(ctx);
  return std::make_unique<ast::ArrayLit>(at, exprs(a->args()->expr()));
}

}  // namespace

std::unique_ptr<ast::File> parse_file(const SourceManager& sources, FileId id, Diagnostics& diags) {
  const SourceFile& file = sources.file(id);
  if (file.text.size() > kMaxSourceBytes) {
    diags.error_at(file.path, "file is too large (" + std::to_string(file.text.size()) + " bytes; the limit is " +
                                  std::to_string(kMaxSourceBytes) + ")");
    return nullptr;
  }
  if (std::size_t bad = find_bad_byte(file.text); bad != std::string::npos) {
    const char* what = file.text[bad] == '\0' ? "NUL byte" : "byte that is not valid UTF-8";
    diags.error(loc_of_offset(file, id, bad), std::string("unexpected ") + what + "; .hpo files are UTF-8 text");
    return nullptr;
  }

  std::size_t errors_before = diags.error_count();
  SyntaxErrorListener listener(diags, id);
  antlr4::ANTLRInputStream input(file.text);
  input.name = file.path;
  HpoLexer lexer(&input);
  lexer.removeErrorListeners();
  lexer.addErrorListener(&listener);
  antlr4::CommonTokenStream tokens(&lexer);
  // Brackets nested beyond any sensible model are refused before parsing: ANTLR's recovery
  // from them can take very long.
  tokens.fill();
  int depth = 0;
  for (antlr4::Token* token : tokens.getTokens()) {
    const std::string text = token->getType() == antlr4::Token::EOF ? "" : token->getText();
    if (text == "(" || text == "[" || text == "{") {
      if (++depth > kMaxBracketDepth) {
        diags.error({id, static_cast<std::uint32_t>(token->getLine()), static_cast<std::uint32_t>(token->getCharPositionInLine() + 1)},
                    "brackets are nested too deeply (more than " + std::to_string(kMaxBracketDepth) + " levels)");
        return nullptr;
      }
    } else if (text == ")" || text == "]" || text == "}") {
      depth = std::max(0, depth - 1);
    }
  }
  HpoParser parser(&tokens);
  parser.removeErrorListeners();
  parser.addErrorListener(&listener);
  HpoParser::FileContext* tree = nullptr;
  try {
    tree = parser.file();
  } catch (const StopParsing&) {
    return nullptr;
  } catch (const std::exception& e) {
    // The runtime's recovery should never throw; if it does, say so instead of crashing.
    diags.error_at(file.path, std::string("internal parser error: ") + e.what());
    return nullptr;
  }
  if (diags.error_count() > errors_before) return nullptr;

  AstBuilder builder(diags, id);
  auto ast = builder.build(tree);
  if (builder.failed() || diags.error_count() > errors_before) return nullptr;
  return ast;
}

}  // namespace hpo
