// print_ast.cpp: the checked AST as indented text with types and positions (hpoc --emit=ast).
#include <charconv>
#include <cmath>
#include <sstream>

#include "sema/sema.hpp"

namespace hpo {
namespace {

class Printer {
 public:
  explicit Printer(const CheckedModel& m) : model_(m) {}

  std::string run() {
    const ast::File& main = *model_.files.front();
    out_ << (main.is_module ? "Module " : "Model ") << main.name << '\n';
    for (std::size_t f = 1; f < model_.files.size(); ++f) line(1) << "Import " << model_.files[f]->name << '\n';
    for (const auto& fn : model_.functions) function(*fn);
    for (const auto& decl : main.decls) declaration(*decl);
    if (main.is_module) return out_.str();
    if (model_.observe_all_state) {
      line(1) << "Observe all state\n";
    } else {
      line(1) << "Observe\n";
      for (const auto* e : model_.observe) expr(*e, 2);
    }
    line(1) << "Horizon " << model_.horizon << '\n';
    line(1) << "Discount " << real(model_.discount) << '\n';
    // Only declared windows: without one, every period counts.
    for (const auto& [which, w] : {std::pair{"Report", &model_.report_periods}, std::pair{"Train", &model_.train_periods}})
      if (w->declared) line(1) << which << " periods " << w->first << ".." << w->end << at(w->loc) << '\n';
    if (model_.step) {
      line(1) << "Step\n";
      block(*model_.step, 2);
    }
    return out_.str();
  }

 private:
  std::ostream& line(int depth) {
    for (int i = 0; i < depth; ++i) out_ << "  ";
    return out_;
  }
  static std::string at(SourceLoc loc) { return " <" + std::to_string(loc.line) + ":" + std::to_string(loc.column) + ">"; }
  // The shortest text that reads back as the same double.
  static std::string real(double x) {
    char buffer[64];
    auto result = std::to_chars(buffer, buffer + sizeof buffer, x);
    return std::string(buffer, result.ptr);
  }

  void declaration(const ast::Decl& d) {
    auto find = [&](auto& table) -> decltype(&table.front()) {
      for (auto& info : table)
        if (info.decl == &d) return &info;
      return nullptr;
    };
    switch (d.kind) {
      case ast::DeclKind::Const:
        line(1) << "Const " << d.name;
        for (const auto& c : model_.consts) {
          if (c.symbol->decl != &d) continue;
          out_ << " : " << c.symbol->type.str() << " = ";
          if (c.value.type.scalar == ast::Scalar::Int) out_ << c.value.ints[0];
          else if (c.value.type.scalar == ast::Scalar::Bool) out_ << (c.value.reals[0] != 0 ? "true" : "false");
          else out_ << real(c.value.reals[0]);
        }
        out_ << at(d.loc) << '\n';
        expr(*static_cast<const ast::ConstDecl&>(d).value, 2);
        return;
      case ast::DeclKind::Param: {
        const auto* p = find(model_.params);
        line(1) << "Param " << d.name << " : " << p->symbol->type.str();
        // The folded default, row-major, where it is short enough to read.
        if (p->default_value && p->default_value->size() <= 32) {
          out_ << " = [";
          for (std::size_t i = 0; i < p->default_value->size(); ++i) out_ << (i ? ", " : "") << real((*p->default_value)[i]);
          out_ << "]";
        }
        out_ << at(d.loc) << '\n';
        if (const auto& v = static_cast<const ast::ParamDecl&>(d).default_value) expr(*v, 2);
        else line(2) << "(no default)\n";
        return;
      }
      case ast::DeclKind::State: {
        const auto* s = find(model_.states);
        line(1) << "State " << d.name << " : " << s->symbol->type.str() << at(d.loc) << '\n';
        expr(*static_cast<const ast::StateDecl&>(d).init, 2);
        return;
      }
      case ast::DeclKind::Action: {
        const auto* a = find(model_.actions);
        line(1) << "Action " << d.name << " : " << a->symbol->type.str();
        if (!a->discrete) out_ << " in [" << real(a->lo) << ", " << real(a->hi) << "]";
        out_ << at(d.loc) << '\n';
        return;
      }
      case ast::DeclKind::Noise: {
        const auto* n = find(model_.noises);
        line(1) << "Noise " << d.name << " : " << n->symbol->type.str() << " ~ " << spelling(n->dist) << at(d.loc) << '\n';
        for (const auto& a : static_cast<const ast::NoiseDecl&>(d).args) expr(*a, 2);
        return;
      }
      case ast::DeclKind::Fn: return;  // printed with all functions
    }
  }

  void function(const ast::FnDecl& fn) {
    line(1) << "Fn " << fn.name << '(';
    for (std::size_t i = 0; i < fn.params.size(); ++i)
      out_ << (i ? ", " : "") << fn.params[i].name << ": " << (fn.params[i].symbol ? fn.params[i].symbol->type.str() : "?");
    out_ << ") -> " << fn.result->type.str() << at(fn.loc) << '\n';
    for (const auto& let : fn.lets) stmt(*let, 2);
    line(2) << "Return" << at(fn.result_loc) << '\n';
    expr(*fn.result, 3);
  }

  void block(const ast::Block& b, int depth) {
    for (const auto& s : b) stmt(*s, depth);
  }

  void stmt(const ast::Stmt& s, int depth) {
    switch (s.kind) {
      case ast::StmtKind::Let: {
        const auto& l = static_cast<const ast::LetStmt&>(s);
        line(depth) << "Let " << l.name << " : " << l.value->type.str() << at(s.loc) << '\n';
        expr(*l.value, depth + 1);
        return;
      }
      case ast::StmtKind::Assign: {
        const auto& a = static_cast<const ast::AssignStmt&>(s);
        if (a.is_cost) {
          line(depth) << "AddCost" << at(s.loc) << '\n';
        } else {
          line(depth) << "Next " << a.target << "'" << (a.indices.empty() ? "" : "[...]") << at(s.loc) << '\n';
          for (const auto& i : a.indices) {
            line(depth + 1) << "Index\n";
            expr(*i, depth + 2);
          }
        }
        expr(*a.value, depth + 1);
        return;
      }
      case ast::StmtKind::If: {
        const auto& i = static_cast<const ast::IfStmt&>(s);
        line(depth) << "If" << (i.cond->is_static ? " (compile time)" : "") << at(s.loc) << '\n';
        expr(*i.cond, depth + 1);
        line(depth) << "Then\n";
        block(i.then_block, depth + 1);
        if (i.has_else) {
          line(depth) << "Else\n";
          block(i.else_block, depth + 1);
        }
        return;
      }
      case ast::StmtKind::For: {
        const auto& f = static_cast<const ast::ForStmt&>(s);
        line(depth) << "For " << f.var << at(s.loc) << '\n';
        expr(*f.lo, depth + 1);
        expr(*f.hi, depth + 1);
        line(depth) << "Do\n";
        block(f.body, depth + 1);
        return;
      }
    }
  }

  void expr(const ast::Expr& e, int depth) {
    std::ostream& o = line(depth);
    switch (e.kind) {
      case ast::ExprKind::IntLit: o << "Int " << static_cast<const ast::IntLit&>(e).value; break;
      case ast::ExprKind::RealLit: o << "Real " << static_cast<const ast::RealLit&>(e).spelling; break;
      case ast::ExprKind::BoolLit: o << "Bool " << (static_cast<const ast::BoolLit&>(e).value ? "true" : "false"); break;
      case ast::ExprKind::Inf: o << "Inf"; break;
      case ast::ExprKind::Name: {
        const auto& n = static_cast<const ast::NameRef&>(e);
        o << "Name " << n.name << (n.next ? "'" : "");
        if (n.symbol) o << " (" << ast::spelling(n.symbol->kind) << ")";
        break;
      }
      case ast::ExprKind::Index: o << "Index"; break;
      case ast::ExprKind::Unary: o << "Unary " << ast::spelling(static_cast<const ast::UnaryExpr&>(e).op); break;
      case ast::ExprKind::Binary: o << "Binary " << ast::spelling(static_cast<const ast::BinaryExpr&>(e).op); break;
      case ast::ExprKind::Cond: o << "IfExpr"; break;
      case ast::ExprKind::Call: {
        const auto& c = static_cast<const ast::CallExpr&>(e);
        o << "Call " << c.callee << (c.builtin == ast::Builtin::None ? "" : " (builtin)")
          << (c.map_dims.empty() ? "" : " (elementwise)");
        break;
      }
      case ast::ExprKind::ArrayLit: o << "Array"; break;
      case ast::ExprKind::Comprehension: {
        const auto& c = static_cast<const ast::Comprehension&>(e);
        o << "Comprehension " << c.var << " in " << c.lo_value << ".." << c.hi_value;
        break;
      }
    }
    o << " : " << e.type.str() << (e.is_static ? " static" : "") << at(e.loc) << '\n';
    switch (e.kind) {
      case ast::ExprKind::Index: {
        const auto& i = static_cast<const ast::IndexExpr&>(e);
        expr(*i.base, depth + 1);
        for (const auto& x : i.indices) expr(*x, depth + 1);
        break;
      }
      case ast::ExprKind::Unary: expr(*static_cast<const ast::UnaryExpr&>(e).operand, depth + 1); break;
      case ast::ExprKind::Binary: {
        const auto& b = static_cast<const ast::BinaryExpr&>(e);
        expr(*b.lhs, depth + 1);
        expr(*b.rhs, depth + 1);
        break;
      }
      case ast::ExprKind::Cond: {
        const auto& c = static_cast<const ast::CondExpr&>(e);
        expr(*c.cond, depth + 1);
        expr(*c.then_value, depth + 1);
        expr(*c.else_value, depth + 1);
        break;
      }
      case ast::ExprKind::Call:
        for (const auto& a : static_cast<const ast::CallExpr&>(e).args) expr(*a, depth + 1);
        break;
      case ast::ExprKind::ArrayLit:
        for (const auto& a : static_cast<const ast::ArrayLit&>(e).elements) expr(*a, depth + 1);
        break;
      case ast::ExprKind::Comprehension: expr(*static_cast<const ast::Comprehension&>(e).body, depth + 1); break;
      default: break;
    }
  }

  const CheckedModel& model_;
  std::ostringstream out_;
};

}  // namespace

std::string print_ast(const CheckedModel& model) { return Printer(model).run(); }

}  // namespace hpo
