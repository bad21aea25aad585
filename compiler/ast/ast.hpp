// ast.hpp: the abstract syntax tree of a .hpo file; sema fills in types and resolved symbols.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ast/type.hpp"
#include "support/source.hpp"

namespace hpo::ast {

struct Symbol;
struct FnDecl;

// ---------------------------------------------------------------- expressions

enum class ExprKind { IntLit, RealLit, BoolLit, Inf, Name, Index, Unary, Binary, Cond, Call, ArrayLit, Comprehension };

struct Expr {
  Expr(ExprKind k, SourceLoc l) : kind(k), loc(l) {}
  virtual ~Expr() = default;
  ExprKind kind;
  SourceLoc loc;
  Type type;            // set by sema
  bool is_static = false;  // set by sema: value known at compile time once loop variables are
};
using ExprPtr = std::unique_ptr<Expr>;

struct IntLit : Expr {
  IntLit(SourceLoc l, std::int64_t v) : Expr(ExprKind::IntLit, l), value(v) {}
  std::int64_t value;
};
struct RealLit : Expr {
  RealLit(SourceLoc l, double v, std::string s) : Expr(ExprKind::RealLit, l), value(v), spelling(std::move(s)) {}
  double value;
  std::string spelling;
};
struct BoolLit : Expr {
  BoolLit(SourceLoc l, bool v) : Expr(ExprKind::BoolLit, l), value(v) {}
  bool value;
};
struct InfLit : Expr {
  explicit InfLit(SourceLoc l) : Expr(ExprKind::Inf, l) {}
};
// `x` or, with next set, `x'` (the next value of state x).
struct NameRef : Expr {
  NameRef(SourceLoc l, std::string n, bool nx) : Expr(ExprKind::Name, l), name(std::move(n)), next(nx) {}
  std::string name;
  bool next;
  const Symbol* symbol = nullptr;  // set by sema
};
struct IndexExpr : Expr {
  IndexExpr(SourceLoc l, ExprPtr b, std::vector<ExprPtr> i)
      : Expr(ExprKind::Index, l), base(std::move(b)), indices(std::move(i)) {}
  ExprPtr base;
  std::vector<ExprPtr> indices;
};

enum class UnaryOp { Neg, Plus, Not };
struct UnaryExpr : Expr {
  UnaryExpr(SourceLoc l, UnaryOp o, ExprPtr e) : Expr(ExprKind::Unary, l), op(o), operand(std::move(e)) {}
  UnaryOp op;
  ExprPtr operand;
};

enum class BinaryOp { MatMul, Mul, Div, Mod, Add, Sub, Lt, Le, Gt, Ge, Eq, Ne, And, Or };
const char* spelling(BinaryOp op);
const char* spelling(UnaryOp op);

struct BinaryExpr : Expr {
  BinaryExpr(SourceLoc l, BinaryOp o, ExprPtr a, ExprPtr b)
      : Expr(ExprKind::Binary, l), op(o), lhs(std::move(a)), rhs(std::move(b)) {}
  BinaryOp op;
  ExprPtr lhs, rhs;
};
struct CondExpr : Expr {
  CondExpr(SourceLoc l, ExprPtr c, ExprPtr t, ExprPtr e)
      : Expr(ExprKind::Cond, l), cond(std::move(c)), then_value(std::move(t)), else_value(std::move(e)) {}
  ExprPtr cond, then_value, else_value;
};

enum class Builtin {
  None,  // a user-defined function
  Relu, Abs, Exp, Log, Sqrt, Sin, Cos, Tanh, Sigmoid, Softplus,  // elementwise, one argument
  Max, Min, Pow,                                                 // elementwise, two (max/min: one = reduction)
  Clamp, Sum, Mean, Dot, Real, Eye, Div,
  SeededUniform, SeededNormal,                                   // pseudo-random numbers from integer keys
  Period,                                                        // the step index, known only at run time
};
const char* spelling(Builtin b);
// The built-in a call to `name` means; None for a user function. spelling() is the one list of names.
Builtin builtin_named(std::string_view name);

struct CallExpr : Expr {
  CallExpr(SourceLoc l, std::string c, std::vector<ExprPtr> a)
      : Expr(ExprKind::Call, l), callee(std::move(c)), args(std::move(a)) {}
  std::string callee;
  std::vector<ExprPtr> args;
  Builtin builtin = Builtin::None;  // set by sema
  bool reduction = false;           // set by sema: max(x) / min(x) over one array
  const FnDecl* fn = nullptr;       // set by sema for user functions
  std::vector<std::int64_t> map_dims;  // set by sema: a scalar function applied elementwise over these
};
struct ArrayLit : Expr {
  ArrayLit(SourceLoc l, std::vector<ExprPtr> e) : Expr(ExprKind::ArrayLit, l), elements(std::move(e)) {}
  std::vector<ExprPtr> elements;
};
// [body for var in lo..hi]
struct Comprehension : Expr {
  Comprehension(SourceLoc l, ExprPtr b, std::string v, SourceLoc vl, ExprPtr lo_, ExprPtr hi_)
      : Expr(ExprKind::Comprehension, l), body(std::move(b)), var(std::move(v)), var_loc(vl),
        lo(std::move(lo_)), hi(std::move(hi_)) {}
  ExprPtr body;
  std::string var;
  SourceLoc var_loc;
  ExprPtr lo, hi;
  const Symbol* var_symbol = nullptr;  // set by sema
  std::int64_t lo_value = 0, hi_value = 0;  // set by sema
};

// ---------------------------------------------------------------- statements

enum class StmtKind { Let, Assign, If, For };

struct Stmt {
  Stmt(StmtKind k, SourceLoc l) : kind(k), loc(l) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  SourceLoc loc;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Block = std::vector<StmtPtr>;

struct LetStmt : Stmt {
  LetStmt(SourceLoc l, std::string n, ExprPtr v) : Stmt(StmtKind::Let, l), name(std::move(n)), value(std::move(v)) {}
  std::string name;
  ExprPtr value;
  const Symbol* symbol = nullptr;  // set by sema
};

enum class AssignOp { Set, Add };
// `x'[i] = e`, `cost += e`; also the forms sema rejects (`x = e`, `order[0] = e`).
struct AssignStmt : Stmt {
  AssignStmt(SourceLoc l, std::string t, bool nx, std::vector<ExprPtr> i, AssignOp o, ExprPtr v)
      : Stmt(StmtKind::Assign, l), target(std::move(t)), next(nx), indices(std::move(i)), op(o), value(std::move(v)) {}
  std::string target;
  bool next;
  std::vector<ExprPtr> indices;
  AssignOp op;
  ExprPtr value;
  const Symbol* symbol = nullptr;  // set by sema; null for `cost`
  bool is_cost = false;            // set by sema
};
struct IfStmt : Stmt {
  IfStmt(SourceLoc l, ExprPtr c) : Stmt(StmtKind::If, l), cond(std::move(c)) {}
  ExprPtr cond;
  Block then_block;
  Block else_block;  // an `else if` is an else block holding one IfStmt
  bool has_else = false;
};
struct ForStmt : Stmt {
  ForStmt(SourceLoc l, std::string v, SourceLoc vl, ExprPtr lo_, ExprPtr hi_)
      : Stmt(StmtKind::For, l), var(std::move(v)), var_loc(vl), lo(std::move(lo_)), hi(std::move(hi_)) {}
  std::string var;
  SourceLoc var_loc;
  ExprPtr lo, hi;
  Block body;
  const Symbol* var_symbol = nullptr;  // set by sema
};

// ---------------------------------------------------------------- declarations

enum class DeclKind { Const, Param, State, Action, Noise, Fn };

struct Decl {
  Decl(DeclKind k, SourceLoc l, std::string n) : kind(k), loc(l), name(std::move(n)) {}
  virtual ~Decl() = default;
  DeclKind kind;
  SourceLoc loc;
  std::string name;
  std::vector<ExprPtr> dims;  // declared array sizes, empty for scalars
};
using DeclPtr = std::unique_ptr<Decl>;

struct ConstDecl : Decl {
  ConstDecl(SourceLoc l, std::string n, ExprPtr v) : Decl(DeclKind::Const, l, std::move(n)), value(std::move(v)) {}
  ExprPtr value;
};
struct ParamDecl : Decl {
  ParamDecl(SourceLoc l, std::string n) : Decl(DeclKind::Param, l, std::move(n)) {}
  ExprPtr default_value;  // may be null: then --params must give it
};
struct StateDecl : Decl {
  StateDecl(SourceLoc l, std::string n) : Decl(DeclKind::State, l, std::move(n)) {}
  ExprPtr init;
};
struct ActionDecl : Decl {
  ActionDecl(SourceLoc l, std::string n) : Decl(DeclKind::Action, l, std::move(n)) {}
  bool discrete = false;
  SourceLoc type_loc;
  ExprPtr choices;  // discrete: number of choices
  ExprPtr lo, hi;   // continuous: bounds, both null when unbounded
};
struct NoiseDecl : Decl {
  NoiseDecl(SourceLoc l, std::string n) : Decl(DeclKind::Noise, l, std::move(n)) {}
  std::string dist;
  SourceLoc dist_loc;
  std::vector<ExprPtr> args;
};

struct TypeRef {
  SourceLoc loc;
  Scalar base = Scalar::Real;
  std::vector<ExprPtr> dims;
};
struct FnParam {
  SourceLoc loc;
  std::string name;
  TypeRef type;
  const Symbol* symbol = nullptr;  // set by sema
};
struct FnDecl : Decl {
  FnDecl(SourceLoc l, std::string n) : Decl(DeclKind::Fn, l, std::move(n)) {}
  std::vector<FnParam> params;
  std::optional<TypeRef> return_type;
  std::vector<std::unique_ptr<LetStmt>> lets;
  ExprPtr result;
  SourceLoc result_loc;
};

struct ImportDecl {
  SourceLoc loc;
  std::string module;  // dotted name
};

struct ObserveItem {
  SourceLoc loc;
  std::vector<ExprPtr> values;
};
struct ExprItem {  // horizon, discount
  SourceLoc loc;
  ExprPtr value;
};
// `report periods lo..hi`, `train periods lo..hi`: which periods count, half-open.
struct PeriodsItem {
  SourceLoc loc;
  ExprPtr lo, hi;
};
struct StepItem {
  SourceLoc loc;
  Block body;
};

struct File {
  FileId file = 0;
  bool has_header = false;
  bool is_module = false;
  std::string name;  // model name or dotted module name
  SourceLoc header_loc;
  std::vector<ImportDecl> imports;
  std::vector<DeclPtr> decls;
  std::vector<ObserveItem> observes;
  std::vector<ExprItem> horizons;
  std::vector<ExprItem> discounts;
  std::vector<PeriodsItem> report_periods;
  std::vector<PeriodsItem> train_periods;
  std::vector<StepItem> steps;
};

}  // namespace hpo::ast
