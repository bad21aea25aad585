// internal.hpp: the checker shared by the sema sources (not part of sema's interface).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sema/sema.hpp"

namespace hpo::sema {

// Where an expression stands decides which names it may read.
enum class Context {
  Const,         // const values and array sizes: consts and literals only
  Bound,         // action bounds: as Const, and inf
  ParamDefault,  // as Const, and params (their defaults)
  NoiseArg,      // params and consts
  StateInit,     // params, consts and noise (a fresh draw)
  Observe,       // state, params and consts
  Step,          // everything
  FnBody,        // the function's arguments and consts
};

// Values of loop variables and of lets known at compile time, while evaluating or unrolling.
struct Env {
  std::unordered_map<const ast::Symbol*, Value> values;
  bool allow_param_defaults = false;
};

// "nan at element 2" for the first value that is not finite; empty when all are.
std::string first_non_finite(const std::vector<double>& values);

// Limits that keep hostile models from exhausting time or memory.
inline constexpr std::int64_t kMaxArrayElements = 1 << 20;
inline constexpr std::int64_t kMaxUnrolledWork = 20'000'000;

class Sema {
 public:
  Sema(SourceManager& sources, Diagnostics& diags, const CheckOptions& options)
      : sources_(sources), diags_(diags), options_(options), model_(std::make_unique<CheckedModel>()) {}

  std::unique_ptr<CheckedModel> run(FileId main);

  // ---- types.cpp
  ast::Type type_of(ast::Expr& e, Context ctx);
  void check_step_block(ast::Block& block);
  void check_fn(const ast::FnDecl& fn);

  // ---- eval.cpp: values of typed expressions known at compile time; report and return
  // nullopt where they are not.
  std::optional<Value> eval(const ast::Expr& e, Env& env);
  std::optional<Value> eval_node(const ast::Expr& e, Env& env);
  bool charge_work(std::int64_t amount, SourceLoc loc);
  std::optional<std::int64_t> const_int(ast::Expr& e, Context ctx, const std::string& what);
  std::optional<double> const_real(ast::Expr& e, Context ctx, const std::string& what);
  const Value* const_value(const ast::Symbol* sym);
  std::optional<Value> const_override(const ast::Symbol* sym, const ast::Type& type, const std::string& assignment);
  const Value* param_default(const ast::Symbol* sym);

  // ---- flow.cpp: the step unrolled with its loop variables known.
  void check_flow(const ast::Block& step, SourceLoc step_loc);
  void check_compile_time(const ast::Expr& e);

 private:
  friend class FlowChecker;
  // ---- loader.cpp
  bool load_imports(ast::File& file, std::vector<std::string>& stack);
  std::optional<std::string> find_module(const std::string& dotted, const ast::File& from);
  void declare_globals();
  ast::Symbol* declare_global(ast::SymbolKind kind, const std::string& name, SourceLoc loc, const ast::Decl* decl);

  // ---- sema.cpp
  std::vector<std::int64_t> eval_dims(std::vector<ast::ExprPtr>& dims, const std::string& what);
  void check_declarations();
  void check_action(ast::ActionDecl& d, ast::Symbol& sym);
  void check_noise(ast::NoiseDecl& d, ast::Symbol& sym);
  void check_model_items();
  void check_periods(std::vector<ast::PeriodsItem>& items, const char* which, PeriodRange& window);

  // ---- types.cpp helpers
  ast::Type compute_type(ast::Expr& e, Context ctx);
  ast::Type type_name(ast::NameRef& e, Context ctx);
  ast::Type type_index(ast::IndexExpr& e, Context ctx);
  ast::Type type_unary(ast::UnaryExpr& e, Context ctx);
  ast::Type type_binary(ast::BinaryExpr& e, Context ctx);
  ast::Type type_cond(ast::CondExpr& e, Context ctx);
  ast::Type type_call(ast::CallExpr& e, Context ctx);
  ast::Type type_builtin(ast::CallExpr& e, Context ctx);
  ast::Type type_user_call(ast::CallExpr& e, Context ctx);
  ast::Type type_array(ast::ArrayLit& e, Context ctx);
  ast::Type type_comprehension(ast::Comprehension& e, Context ctx);
  void check_stmt(ast::Stmt& s);
  void check_assign(ast::AssignStmt& s);
  bool check_condition(ast::Expr& cond, Context ctx);
  const ast::Symbol* lookup(const std::string& name) const;
  ast::Symbol* declare_local(ast::SymbolKind kind, const std::string& name, SourceLoc loc, ast::Type type,
                             bool is_static, bool allow_shadowing);
  ast::Type const_type(const ast::Symbol* sym);
  void report_not_a_number(const ast::Expr& e, const ast::Type& t);
  bool is_period(const ast::Expr& e) const;

 public:
  SourceManager& sources_;
  Diagnostics& diags_;
  const CheckOptions& options_;
  std::unique_ptr<CheckedModel> model_;

  std::map<std::string, ast::Symbol*> globals_;
  std::vector<std::map<std::string, ast::Symbol*>> scopes_;
  bool in_fn_scope_ = false;  // function bodies may reuse global names for their own
  std::unordered_map<std::string, FileId> loaded_;  // canonical path -> file
  enum class Progress { InProgress, Done };
  std::unordered_map<const ast::Symbol*, Progress> const_progress_;
  std::unordered_map<const ast::Symbol*, std::optional<Value>> const_values_;
  std::unordered_map<const ast::Symbol*, Progress> param_progress_;
  std::unordered_map<const ast::Symbol*, std::optional<Value>> param_values_;
  std::unordered_map<const ast::FnDecl*, Progress> fn_progress_;
  std::vector<const ast::FnDecl*> fn_stack_;  // functions being checked, outermost first
  std::unordered_map<const ast::Decl*, ast::Symbol*> decl_symbol_;
  std::unordered_set<const ast::Symbol*> period_lets_;  // lets that hold period(), for index range checks
  std::int64_t work_ = 0;  // unrolled statements and comprehension elements visited
  bool work_exceeded_ = false;
};

// Shared wording for messages.
std::string describe(const ast::Symbol& sym);
std::string shape_str(const ast::Type& t);

}  // namespace hpo::sema
