// parser_test.cpp: the parser builds the right AST (precedence, locations) and fails cleanly.
#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "parse/parser.hpp"

using namespace hpo;

namespace {

struct Parsed {
  SourceManager sources;
  std::ostringstream messages;
  Diagnostics diags{sources, messages};
  std::unique_ptr<ast::File> file;
};

std::unique_ptr<Parsed> parse(const std::string& text) {
  auto p = std::make_unique<Parsed>();
  FileId id = p->sources.add("p.hpo", text);
  p->file = parse_file(p->sources, id, p->diags);
  return p;
}

const ast::Expr& const_value(const ast::File& f, std::size_t i) {
  return *static_cast<const ast::ConstDecl&>(*f.decls.at(i)).value;
}

}  // namespace

TEST_CASE("a model's items land in the right places", "[parse]") {
  auto p = parse(
      "model m\nimport std.inventory\nconst N = 2\nparam a[N] = 1.0\nstate x[N] = 0.0\n"
      "action d : choice(3)\naction u[N] : real in [0, 1]\nnoise e ~ normal(0.0, 1.0)\n"
      "observe x, a\nhorizon 10\ndiscount 0.9\nfn f(v: real) -> real { let w = v * 2.0 return w }\n"
      "step { x' = x + u \n cost += sum(x) }\n");
  REQUIRE(p->file);
  const ast::File& f = *p->file;
  CHECK(f.name == "m");
  CHECK_FALSE(f.is_module);
  REQUIRE(f.imports.size() == 1);
  CHECK(f.imports[0].module == "std.inventory");
  REQUIRE(f.decls.size() == 7);
  CHECK(f.decls[0]->kind == ast::DeclKind::Const);
  CHECK(f.decls[3]->kind == ast::DeclKind::Action);
  CHECK(static_cast<const ast::ActionDecl&>(*f.decls[3]).discrete);
  CHECK_FALSE(static_cast<const ast::ActionDecl&>(*f.decls[4]).discrete);
  CHECK(static_cast<const ast::NoiseDecl&>(*f.decls[5]).dist == "normal");
  const auto& fn = static_cast<const ast::FnDecl&>(*f.decls[6]);
  CHECK(fn.params.size() == 1);
  CHECK(fn.lets.size() == 1);
  CHECK(f.observes.at(0).values.size() == 2);
  REQUIRE(f.steps.size() == 1);
  CHECK(f.steps[0].body.size() == 2);
  auto& assign = static_cast<const ast::AssignStmt&>(*f.steps[0].body[0]);
  CHECK(assign.next);
  CHECK(assign.target == "x");
  CHECK(assign.loc.line == 13);
  CHECK(assign.loc.column == 8);
}

TEST_CASE("operators bind as the language reference says", "[parse]") {
  auto p = parse("module m\nconst a = 1 + 2 * 3\nconst b = -x[0]\nconst c = A @ v * 2\nconst d = if p then 1 else 2 + 3\n"
                 "const e = a < b and c == d or not f\n");
  REQUIRE(p->file);
  const auto& a = static_cast<const ast::BinaryExpr&>(const_value(*p->file, 0));
  CHECK(a.op == ast::BinaryOp::Add);
  CHECK(static_cast<const ast::BinaryExpr&>(*a.rhs).op == ast::BinaryOp::Mul);

  const auto& b = static_cast<const ast::UnaryExpr&>(const_value(*p->file, 1));
  CHECK(b.op == ast::UnaryOp::Neg);
  CHECK(b.operand->kind == ast::ExprKind::Index);

  const auto& c = static_cast<const ast::BinaryExpr&>(const_value(*p->file, 2));
  CHECK(c.op == ast::BinaryOp::Mul);
  CHECK(static_cast<const ast::BinaryExpr&>(*c.lhs).op == ast::BinaryOp::MatMul);

  const auto& d = static_cast<const ast::CondExpr&>(const_value(*p->file, 3));
  CHECK(d.else_value->kind == ast::ExprKind::Binary);  // the else branch takes the whole sum

  const auto& e = static_cast<const ast::BinaryExpr&>(const_value(*p->file, 4));
  CHECK(e.op == ast::BinaryOp::Or);
  CHECK(static_cast<const ast::BinaryExpr&>(*e.lhs).op == ast::BinaryOp::And);
  CHECK(static_cast<const ast::UnaryExpr&>(*e.rhs).op == ast::UnaryOp::Not);
}

TEST_CASE("literals keep their values and spelling", "[parse]") {
  auto p = parse("module m\nconst a = 42\nconst b = 2.5e-3\nconst c = true\nconst d = [1, 2.0]\nconst e = [i for i in 0..3]\n");
  REQUIRE(p->file);
  CHECK(static_cast<const ast::IntLit&>(const_value(*p->file, 0)).value == 42);
  CHECK(static_cast<const ast::RealLit&>(const_value(*p->file, 1)).value == Approx(2.5e-3));
  CHECK(static_cast<const ast::RealLit&>(const_value(*p->file, 1)).spelling == "2.5e-3");
  CHECK(static_cast<const ast::BoolLit&>(const_value(*p->file, 2)).value);
  CHECK(static_cast<const ast::ArrayLit&>(const_value(*p->file, 3)).elements.size() == 2);
  CHECK(static_cast<const ast::Comprehension&>(const_value(*p->file, 4)).var == "i");
}

TEST_CASE("syntax errors are reported with positions, several per file", "[parse][error]") {
  auto p = parse("model m\nstate x = (1.0\nhorizon 3\nstep { x' = 1.0 +* 2.0 }\n");
  CHECK_FALSE(p->file);
  std::string out = p->messages.str();
  CHECK(out.find("p.hpo:3:1: error:") != std::string::npos);
  CHECK(out.find("p.hpo:4:18: error: unexpected '*'") != std::string::npos);
  CHECK(p->diags.error_count() == 2);
}

TEST_CASE("bad bytes, huge literals and deep nesting give errors, not crashes", "[parse][error]") {
  auto bad_utf8 = parse("model m\nconst a = 1 // caf\xC3\n");
  CHECK_FALSE(bad_utf8->file);
  CHECK(bad_utf8->messages.str().find("p.hpo:2:19: error: unexpected byte that is not valid UTF-8") != std::string::npos);

  auto nul = parse(std::string("model m\n\0", 9));
  CHECK_FALSE(nul->file);
  CHECK(nul->messages.str().find("NUL byte") != std::string::npos);

  auto big_int = parse("module m\nconst a = 99999999999999999999999\n");
  CHECK_FALSE(big_int->file);
  CHECK(big_int->messages.str().find("is too large") != std::string::npos);

  auto big_real = parse("module m\nconst a = 1e999\n");
  CHECK_FALSE(big_real->file);
  CHECK(big_real->messages.str().find("out of range") != std::string::npos);

  auto deep = parse("module m\nconst a = " + std::string(5000, '(') + "1" + std::string(5000, ')') + "\n");
  CHECK_FALSE(deep->file);
  CHECK(deep->messages.str().find("p.hpo:2:111: error: brackets are nested too deeply") != std::string::npos);
  CHECK(deep->diags.error_count() == 1);

  std::string minus;
  for (int i = 0; i < 3000; ++i) minus += "- ";
  auto unary = parse("module m\nconst a = " + minus + "1\n");
  CHECK_FALSE(unary->file);
  CHECK(unary->messages.str().find("nesting is too deep here") != std::string::npos);
  CHECK(unary->diags.error_count() == 1);  // the parse stops there instead of recovering at length

  auto trailing_dot = parse("module m\nconst a = 1. + 2\nconst r = [i for i in 0..3]\n");
  CHECK(trailing_dot->messages.str().find("p.hpo:2:11: error: a real literal needs digits after the '.': write 1.0") !=
        std::string::npos);
  CHECK(trailing_dot->diags.error_count() == 1);  // `0..3` is still a range

  std::string chain = "module m\nconst a = 1";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  auto long_chain = parse(chain + "\n");
  CHECK_FALSE(long_chain->file);
  CHECK(long_chain->messages.str().find("too deeply nested or too long") != std::string::npos);

  auto empty = parse("");
  REQUIRE(empty->file);  // an empty file parses; sema says what is missing
  CHECK_FALSE(empty->file->has_header);
}
