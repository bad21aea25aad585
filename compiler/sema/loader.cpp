// loader.cpp: reads imported modules (with cycle detection) and declares the module-level names.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "parse/parser.hpp"
#include "sema/internal.hpp"

#ifndef HPOC_STDLIB_DIR
#define HPOC_STDLIB_DIR ""
#endif

namespace hpo {

std::vector<std::string> default_stdlib_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("HPOC_STDLIB"); env != nullptr && *env != '\0') dirs.emplace_back(env);
  if (std::string(HPOC_STDLIB_DIR).size() > 0) dirs.emplace_back(HPOC_STDLIB_DIR);
  return dirs;
}

namespace sema {
namespace fs = std::filesystem;


std::optional<std::string> Sema::find_module(const std::string& dotted, const ast::File& from) {
  std::string relative;
  for (char c : dotted) relative += (c == '.') ? '/' : c;
  relative += ".hpo";
  std::vector<std::string> roots;
  roots.push_back(fs::path(sources_.file(from.file).path).parent_path().string());
  // A module may import its siblings by their full dotted name, from the model's folder.
  std::string main_root = fs::path(sources_.file(model_->main_file).path).parent_path().string();
  if (main_root != roots.front()) roots.push_back(main_root);
  for (const auto& d : options_.stdlib_dirs) roots.push_back(d);
  for (const auto& root : roots) {
    std::error_code ec;
    fs::path candidate = fs::path(root.empty() ? "." : root) / relative;
    if (fs::is_regular_file(candidate, ec)) return candidate.string();
  }
  return std::nullopt;
}

// Depth-first over imports; stack holds the dotted names being loaded, to name a cycle.
bool Sema::load_imports(ast::File& file, std::vector<std::string>& stack) {
  bool ok = true;
  for (const auto& import : file.imports) {
    if (std::find(stack.begin(), stack.end(), import.module) != stack.end()) {
      std::string cycle;
      bool in_cycle = false;
      for (const auto& name : stack) {
        if (name == import.module) in_cycle = true;
        if (in_cycle) cycle += name + " -> ";
      }
      diags_.error(import.loc, "import cycle: " + cycle + import.module);
      ok = false;
      continue;
    }
    auto path = find_module(import.module, file);
    if (!path) {
      std::string where = fs::path(sources_.file(file.file).path).parent_path().string();
      if (where.empty()) where = ".";
      for (const auto& d : options_.stdlib_dirs) where += ", " + d;
      std::string relative;
      for (char c : import.module) relative += (c == '.') ? '/' : c;
      diags_.error(import.loc, "cannot find module '" + import.module + "' (looked for " + relative + ".hpo in " + where + ")");
      ok = false;
      continue;
    }
    std::error_code ec;
    std::string canonical = fs::weakly_canonical(*path, ec).string();
    if (ec) canonical = *path;
    if (auto seen = loaded_.find(canonical); seen != loaded_.end()) {
      // The main file was loaded first: reaching it again is a cycle through the model itself.
      if (seen->second == model_->main_file) {
        diags_.error(import.loc,
                     "'" + import.module + "' is the file being checked (" + *path + "): importing it is a cycle");
        ok = false;
      }
      continue;
    }

    std::ifstream in(*path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    if (!in) {
      diags_.error(import.loc, "cannot read module file '" + *path + "'");
      ok = false;
      continue;
    }
    FileId id = sources_.add(*path, buffer.str());
    loaded_[canonical] = id;
    auto module = parse_file(sources_, id, diags_);
    if (!module) {
      diags_.note(import.loc, "in the module imported here");
      ok = false;
      continue;
    }
    if (!module->is_module || module->name != import.module) {
      diags_.error(module->has_header ? module->header_loc : SourceLoc{id, 1, 1},
                   "a module imported as '" + import.module + "' must start with 'module " + import.module + "'");
      diags_.note(import.loc, "imported here");
      ok = false;
      continue;
    }
    ast::File& loaded = *module;
    model_->files.push_back(std::move(module));
    stack.push_back(import.module);
    ok = load_imports(loaded, stack) && ok;
    stack.pop_back();
  }
  return ok;
}

ast::Symbol* Sema::declare_global(ast::SymbolKind kind, const std::string& name, SourceLoc loc, const ast::Decl* decl) {
  if (name == "cost") {
    diags_.error(loc, "'cost' is reserved for the step cost (write cost += ... in step)");
    return nullptr;
  }
  // Calls and names never stand in the same place, so only a function may not reuse a built-in's name.
  if (kind == ast::SymbolKind::Fn && ast::builtin_named(name) != ast::Builtin::None) {
    diags_.error(loc, "'" + name + "' is the name of a built-in function");
    return nullptr;
  }
  if (auto it = globals_.find(name); it != globals_.end()) {
    diags_.error(loc, "redefinition of '" + name + "'");
    diags_.note(it->second->loc, "previous definition of '" + name + "' is here");
    return nullptr;
  }
  ast::Symbol& sym = model_->symbols.emplace_back();
  sym.kind = kind;
  sym.name = name;
  sym.loc = loc;
  sym.decl = decl;
  sym.is_static = kind == ast::SymbolKind::Const;
  globals_[name] = &sym;
  if (decl) decl_symbol_[decl] = &sym;
  return &sym;
}

void Sema::declare_globals() {
  // Modules first so that a clash names the model's declaration as the redefinition.
  for (std::size_t f = model_->files.size(); f-- > 0;) {
    ast::File& file = *model_->files[f];
    for (auto& decl : file.decls) {
      using ast::DeclKind;
      using ast::SymbolKind;
      if (file.is_module && decl->kind != DeclKind::Const && decl->kind != DeclKind::Fn) {
        diags_.error(decl->loc, "a module can only contain import, const and fn; '" + decl->name + "' belongs in a model");
        continue;
      }
      SymbolKind kind = SymbolKind::Const;
      switch (decl->kind) {
        case DeclKind::Const: kind = SymbolKind::Const; break;
        case DeclKind::Param: kind = SymbolKind::Param; break;
        case DeclKind::State: kind = SymbolKind::State; break;
        case DeclKind::Action: kind = SymbolKind::Action; break;
        case DeclKind::Noise: kind = SymbolKind::Noise; break;
        case DeclKind::Fn: kind = SymbolKind::Fn; break;
      }
      ast::Symbol* sym = declare_global(kind, decl->name, decl->loc, decl.get());
      if (!sym) continue;
      switch (decl->kind) {
        case DeclKind::Param:
          sym->index = static_cast<int>(model_->params.size());
          model_->params.push_back({sym, static_cast<const ast::ParamDecl*>(decl.get()), std::nullopt});
          break;
        case DeclKind::State:
          sym->index = static_cast<int>(model_->states.size());
          model_->states.push_back({sym, static_cast<const ast::StateDecl*>(decl.get())});
          break;
        case DeclKind::Action:
          sym->index = static_cast<int>(model_->actions.size());
          model_->actions.push_back({sym, static_cast<const ast::ActionDecl*>(decl.get())});
          break;
        case DeclKind::Noise:
          sym->index = static_cast<int>(model_->noises.size());
          model_->noises.push_back({sym, static_cast<const ast::NoiseDecl*>(decl.get())});
          break;
        case DeclKind::Fn:
          model_->functions.push_back(static_cast<const ast::FnDecl*>(decl.get()));
          break;
        case DeclKind::Const:
          break;
      }
    }
    if (file.is_module) {
      auto refuse = [&](SourceLoc loc, const char* what) {
        diags_.error(loc, std::string("a module can only contain import, const and fn; '") + what + "' belongs in a model");
      };
      for (auto& o : file.observes) refuse(o.loc, "observe");
      for (auto& h : file.horizons) refuse(h.loc, "horizon");
      for (auto& d : file.discounts) refuse(d.loc, "discount");
      for (auto& r : file.report_periods) refuse(r.loc, "report periods");
      for (auto& r : file.train_periods) refuse(r.loc, "train periods");
      for (auto& s : file.steps) refuse(s.loc, "step");
    }
  }
}

}  // namespace sema
}  // namespace hpo
