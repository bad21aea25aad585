// sema.cpp: the order of checks, the declarations (sizes, bounds, distributions) and the model's items.
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "parse/parser.hpp"
#include "sema/internal.hpp"

namespace hpo {

const char* spelling(Distribution d) {
  switch (d) {
    case Distribution::Normal: return "normal";
    case Distribution::Uniform: return "uniform";
    case Distribution::Poisson: return "poisson";
    case Distribution::Bernoulli: return "bernoulli";
    case Distribution::Categorical: return "categorical";
  }
  return "?";
}

namespace sema {

std::string describe(const ast::Symbol& sym) { return std::string(ast::spelling(sym.kind)) + " '" + sym.name + "'"; }

std::string shape_str(const ast::Type& t) { return t.dims.empty() ? "a scalar" : "shape " + ast::dims_str(t.dims); }

std::unique_ptr<CheckedModel> Sema::run(FileId main) {
  auto file = parse_file(sources_, main, diags_);
  if (!file) return nullptr;
  model_->main_file = main;
  model_->name = file->name;
  model_->is_module = file->is_module;
  if (!file->has_header) {
    // Without a header nothing else about the file can be judged fairly.
    diags_.error({main, 1, 1}, "a model file starts with 'model NAME' (a library file with 'module NAME')");
    return nullptr;
  }
  std::error_code ec;
  loaded_[std::filesystem::weakly_canonical(sources_.file(main).path, ec).string()] = main;
  ast::File& main_file = *file;
  model_->files.push_back(std::move(file));
  std::vector<std::string> stack;
  if (main_file.is_module) stack.push_back(main_file.name);
  if (!load_imports(main_file, stack)) return nullptr;

  declare_globals();
  check_declarations();
  for (const auto* fn : model_->functions) check_fn(*fn);
  if (!model_->is_module) check_model_items();
  if (diags_.has_errors()) return nullptr;
  return std::move(model_);
}

std::vector<std::int64_t> Sema::eval_dims(std::vector<ast::ExprPtr>& dims, const std::string& what) {
  std::vector<std::int64_t> out;
  std::int64_t total = 1;
  for (auto& d : dims) {
    auto n = const_int(*d, Context::Const, "an array size");
    if (!n) return {-1};
    if (*n < 1) {
      diags_.error(d->loc, "array size must be at least 1, got " + std::to_string(*n));
      return {-1};
    }
    if (*n > kMaxArrayElements || total * *n > kMaxArrayElements) {
      diags_.error(d->loc, what + " is too large (more than " + std::to_string(kMaxArrayElements) + " elements)");
      return {-1};
    }
    total *= *n;
    out.push_back(*n);
  }
  return out;
}

void Sema::check_declarations() {
  for (auto& owned : model_->files) {
    for (auto& decl : owned->decls) {
      auto it = decl_symbol_.find(decl.get());
      if (it == decl_symbol_.end()) continue;
      ast::Symbol& sym = *it->second;
      switch (decl->kind) {
        case ast::DeclKind::Const:
          if (const Value* v = const_value(&sym)) model_->consts.push_back({&sym, *v});
          break;
        case ast::DeclKind::Fn: break;
        case ast::DeclKind::Param: {
          auto dims = eval_dims(decl->dims, "param '" + sym.name + "'");
          if (dims == std::vector<std::int64_t>{-1}) break;
          sym.type = ast::Type::real(dims);
          break;
        }
        case ast::DeclKind::State: {
          auto dims = eval_dims(decl->dims, "state '" + sym.name + "'");
          if (dims == std::vector<std::int64_t>{-1}) break;
          sym.type = ast::Type::real(dims);
          break;
        }
        case ast::DeclKind::Action: check_action(static_cast<ast::ActionDecl&>(*decl), sym); break;
        case ast::DeclKind::Noise: break;  // needs the params' types: below
      }
    }
  }
  // Param defaults may refer to each other: all are typed first, then evaluated (lazily, in
  // whatever order they need each other). A default that fails its check is marked as an error,
  // so that nothing evaluates it.
  for (auto& p : model_->params) {
    auto& decl = const_cast<ast::ParamDecl&>(*p.decl);
    if (!decl.default_value || p.symbol->type.is_error()) continue;
    ast::Type t = type_of(*decl.default_value, Context::ParamDefault);
    if (t.is_error()) continue;
    if (!t.is_numeric() || t.scalar == ast::Scalar::Bool) {
      diags_.error(decl.default_value->loc, "param '" + p.symbol->name + "' is real, but its default is " + t.str());
      decl.default_value->type = ast::Type::error();
    } else if (!t.dims.empty() && t.dims != p.symbol->type.dims) {
      diags_.error(decl.default_value->loc, "param '" + p.symbol->name + "' has " + shape_str(p.symbol->type) +
                                                " but its default has " + shape_str(t));
      decl.default_value->type = ast::Type::error();
    }
  }
  for (auto& p : model_->params)
    if (const Value* v = param_default(p.symbol)) p.default_value = v->reals;
  // Noise after the params: its arguments may read their defaults.
  for (auto& owned : model_->files)
    for (auto& decl : owned->decls)
      if (decl->kind == ast::DeclKind::Noise && decl_symbol_.count(decl.get()))
        check_noise(static_cast<ast::NoiseDecl&>(*decl), *decl_symbol_[decl.get()]);

  for (auto& s : model_->states) {
    auto& decl = const_cast<ast::StateDecl&>(*s.decl);
    if (s.symbol->type.is_error()) continue;
    ast::Type t = type_of(*decl.init, Context::StateInit);
    if (t.is_error()) continue;
    if (t.scalar == ast::Scalar::Choice) {
      report_not_a_number(*decl.init, t);
    } else if (!t.is_numeric()) {
      diags_.error(decl.init->loc, "the initial value of state '" + s.symbol->name + "' must be real, not " + t.str());
    } else if (!t.dims.empty() && t.dims != s.symbol->type.dims) {
      diags_.error(decl.init->loc, "state '" + s.symbol->name + "' has " + shape_str(s.symbol->type) +
                                       " but its initial value has " + shape_str(t));
    } else {
      check_compile_time(*decl.init);
    }
  }
}

void Sema::check_action(ast::ActionDecl& d, ast::Symbol& sym) {
  auto dims = eval_dims(d.dims, "action '" + sym.name + "'");
  if (dims == std::vector<std::int64_t>{-1}) return;
  ActionInfo& info = model_->actions[sym.index];
  if (d.discrete) {
    auto n = const_int(*d.choices, Context::Const, "the number of choices");
    if (!n) return;
    if (*n < 1 || *n > 1'000'000) {
      diags_.error(d.choices->loc, "the number of choices must be between 1 and 1000000, got " + std::to_string(*n));
      return;
    }
    info.discrete = true;
    info.choices = *n;
    sym.type = ast::Type::choice(*n, dims);
    return;
  }
  info.lo = -std::numeric_limits<double>::infinity();
  info.hi = std::numeric_limits<double>::infinity();
  if (d.lo) {
    auto lo = const_real(*d.lo, Context::Bound, "an action bound");
    auto hi = const_real(*d.hi, Context::Bound, "an action bound");
    if (!lo || !hi) return;
    if (std::isnan(*lo) || std::isnan(*hi) || !(*lo < *hi)) {
      diags_.error(d.lo->loc, "action '" + sym.name + "' needs lower bound < upper bound");
      return;
    }
    if (*lo == std::numeric_limits<double>::infinity() || *hi == -std::numeric_limits<double>::infinity()) {
      diags_.error(d.lo->loc, "action '" + sym.name + "' has an empty range");
      return;
    }
    info.lo = *lo;
    info.hi = *hi;
  }
  sym.type = ast::Type::real(dims);
}

void Sema::check_noise(ast::NoiseDecl& d, ast::Symbol& sym) {
  auto dims = eval_dims(d.dims, "noise '" + sym.name + "'");
  if (dims == std::vector<std::int64_t>{-1}) return;
  NoiseInfo& info = model_->noises[sym.index];
  struct Known { const char* name; Distribution dist; std::size_t arity; const char* args; };
  static const Known kKnown[] = {
      {"normal", Distribution::Normal, 2, "normal(mean, std)"},
      {"uniform", Distribution::Uniform, 2, "uniform(lo, hi)"},
      {"poisson", Distribution::Poisson, 1, "poisson(rate)"},
      {"bernoulli", Distribution::Bernoulli, 1, "bernoulli(p)"},
      {"categorical", Distribution::Categorical, 1, "categorical(probs)"},
  };
  const Known* known = nullptr;
  for (const auto& k : kKnown)
    if (d.dist == k.name) known = &k;
  if (!known) {
    diags_.error(d.dist_loc, "unknown distribution '" + d.dist + "' (known: normal, uniform, poisson, bernoulli, categorical)");
    return;
  }
  if (d.args.size() != known->arity) {
    diags_.error(d.dist_loc, std::string(known->name) + " takes " + std::to_string(known->arity) + " argument" +
                                 (known->arity == 1 ? "" : "s") + ": " + known->args);
    return;
  }
  info.dist = known->dist;
  bool ok = true;
  for (auto& arg : d.args) {
    ast::Type t = type_of(*arg, Context::NoiseArg);
    if (t.is_error()) { ok = false; continue; }
    if (t.scalar == ast::Scalar::Choice) { report_not_a_number(*arg, t); ok = false; continue; }
    if (!t.is_numeric()) {
      diags_.error(arg->loc, "distribution arguments are real numbers, not " + t.str());
      ok = false;
      continue;
    }
    if (known->dist == Distribution::Categorical) {
      std::vector<std::int64_t> per_element = dims;
      if (!t.dims.empty()) per_element.push_back(t.dims.back());
      if (t.dims.empty() || (t.dims.size() != 1 && t.dims != per_element)) {
        diags_.error(arg->loc, "categorical probabilities must have shape [K], or the noise's shape followed by K; got " +
                                   shape_str(t));
        ok = false;
        continue;
      }
      sym.type = ast::Type::choice(t.dims.back(), dims);
    } else if (!t.dims.empty() && t.dims != dims) {
      diags_.error(arg->loc, "noise '" + sym.name + "' has " + shape_str(ast::Type::real(dims)) +
                                 " but this argument has " + shape_str(t));
      ok = false;
    }
  }
  if (!ok) return;
  if (known->dist != Distribution::Categorical) sym.type = ast::Type::real(dims);

  // Where the arguments are known now (consts, param defaults), check they describe a distribution.
  for (auto& p : model_->params)
    if (!p.decl->default_value) return;
  std::vector<Value> values;
  for (auto& arg : d.args) {
    Env env;
    env.allow_param_defaults = true;
    auto v = eval(*arg, env);
    if (!v) return;
    values.push_back(std::move(*v));
  }
  auto fail = [&](std::size_t arg, const std::string& what, double got) {
    std::ostringstream msg;
    msg << "noise '" << sym.name << "': " << what << " (got " << got << ")";
    diags_.error(d.args[arg]->loc, msg.str());
  };
  for (std::size_t i = 0; i < values[0].size(); ++i) {
    double a = values[0].as_real(i);
    switch (known->dist) {
      case Distribution::Normal: break;
      case Distribution::Uniform: break;
      case Distribution::Poisson:
        if (!(a >= 0)) return fail(0, "the poisson rate must be >= 0", a);
        break;
      case Distribution::Bernoulli:
        if (!(a >= 0 && a <= 1)) return fail(0, "the bernoulli probability must be in [0, 1]", a);
        break;
      case Distribution::Categorical:
        if (!(a >= 0)) return fail(0, "categorical probabilities must be >= 0", a);
        break;
    }
  }
  if (known->dist == Distribution::Normal) {
    for (std::size_t i = 0; i < values[1].size(); ++i)
      if (!(values[1].as_real(i) >= 0)) return fail(1, "the normal std must be >= 0", values[1].as_real(i));
  }
  if (known->dist == Distribution::Uniform) {
    std::size_t n = std::max(values[0].size(), values[1].size());
    for (std::size_t i = 0; i < n; ++i) {
      double lo = values[0].as_real(values[0].size() == 1 ? 0 : i);
      double hi = values[1].as_real(values[1].size() == 1 ? 0 : i);
      if (!(lo <= hi)) return fail(0, "uniform needs lo <= hi", lo);
    }
  }
  if (known->dist == Distribution::Categorical) {
    std::int64_t k = sym.type.cardinality;
    for (std::size_t row = 0; row * k < values[0].size(); ++row) {
      double total = 0;
      for (std::int64_t j = 0; j < k; ++j) total += values[0].as_real(row * k + j);
      if (!(total > 0)) return fail(0, "categorical probabilities must not all be zero", total);
    }
  }
}

void Sema::check_model_items() {
  ast::File& file = *model_->files.front();
  // The horizon first: indices by period() in observe and step are checked against it.
  if (file.horizons.empty()) {
    diags_.error(file.header_loc.valid() ? file.header_loc : SourceLoc{file.file, 1, 1},
                 "model '" + model_->name + "' has no horizon (add e.g. 'horizon 50')");
  }
  for (std::size_t i = 1; i < file.horizons.size(); ++i) {
    diags_.error(file.horizons[i].loc, "horizon is given twice");
    diags_.note(file.horizons[0].loc, "first given here");
  }
  if (!file.horizons.empty()) {
    if (auto h = const_int(*file.horizons[0].value, Context::Const, "the horizon")) {
      if (*h < 1 || *h > 10'000'000)
        diags_.error(file.horizons[0].value->loc, "the horizon must be between 1 and 10000000, got " + std::to_string(*h));
      else
        model_->horizon = *h;
    }
  }
  // Observation: what the policy sees.
  if (file.observes.empty()) {
    model_->observe_all_state = true;
  }
  for (auto& item : file.observes) {
    for (auto& e : item.values) {
      ast::Type t = type_of(*e, Context::Observe);
      if (t.is_error()) continue;
      if (t.scalar == ast::Scalar::Choice) {
        report_not_a_number(*e, t);
      } else if (!t.is_numeric()) {
        diags_.error(e->loc, "an observation must be real, not " + t.str());
      } else {
        check_compile_time(*e);
        model_->observe.push_back(e.get());
      }
    }
  }

  for (std::size_t i = 1; i < file.discounts.size(); ++i) {
    diags_.error(file.discounts[i].loc, "discount is given twice");
    diags_.note(file.discounts[0].loc, "first given here");
  }
  if (!file.discounts.empty()) {
    if (auto g = const_real(*file.discounts[0].value, Context::Const, "the discount")) {
      if (!(*g > 0 && *g <= 1)) {
        std::ostringstream msg;
        msg << "the discount must be in (0, 1], got " << *g;
        diags_.error(file.discounts[0].value->loc, msg.str());
      } else {
        model_->discount = *g;
      }
    }
  }

  model_->report_periods.end = model_->train_periods.end = model_->horizon;
  check_periods(file.report_periods, "report", model_->report_periods);
  check_periods(file.train_periods, "train", model_->train_periods);

  if (model_->states.empty() && !diags_.has_errors())
    diags_.error(file.header_loc.valid() ? file.header_loc : SourceLoc{file.file, 1, 1},
                 "model '" + model_->name + "' declares no state");
  if (file.steps.empty()) {
    diags_.error(file.header_loc.valid() ? file.header_loc : SourceLoc{file.file, 1, 1},
                 "model '" + model_->name + "' has no step block");
    return;
  }
  for (std::size_t i = 1; i < file.steps.size(); ++i) {
    diags_.error(file.steps[i].loc, "a model has one step block");
    diags_.note(file.steps[0].loc, "the first step block is here");
  }
  model_->step = &file.steps[0].body;
  check_step_block(file.steps[0].body);
  // Unrolling needs every type and shape known: after any error it would only repeat them.
  if (!diags_.has_errors()) check_flow(file.steps[0].body, file.steps[0].loc);
}

void Sema::check_periods(std::vector<ast::PeriodsItem>& items, const char* which, PeriodRange& window) {
  const std::string what = std::string(which) + " periods";
  for (std::size_t i = 1; i < items.size(); ++i) {
    diags_.error(items[i].loc, what + " are given twice");
    diags_.note(items[0].loc, "first given here");
  }
  if (items.empty()) return;
  ast::PeriodsItem& item = items[0];
  auto lo = const_int(*item.lo, Context::Const, "the first period of '" + what + "'");
  auto hi = const_int(*item.hi, Context::Const, "the end of '" + what + "'");
  if (!lo || !hi) return;
  const std::string range = std::to_string(*lo) + ".." + std::to_string(*hi);
  if (*lo < 0) {
    diags_.error(item.lo->loc, what + " " + range + " start before period 0");
    return;
  }
  if (*hi < *lo) {
    diags_.error(item.lo->loc, what + " " + range + " are reversed: the range is first..end with end after first (write " +
                                   std::to_string(*hi) + ".." + std::to_string(*lo) + ")");
    return;
  }
  if (*hi == *lo) {
    diags_.error(item.lo->loc, what + " " + range + " are empty: the end is excluded, as in for loops (write " +
                                   std::to_string(*lo) + ".." + std::to_string(*lo + 1) + " for one period)");
    return;
  }
  // Without a horizon (already reported) the end cannot be judged.
  if (model_->horizon > 0 && *hi > model_->horizon) {
    diags_.error(item.hi->loc, what + " " + range + " go beyond the horizon: an episode has periods 0.." +
                                   std::to_string(model_->horizon) + " (horizon " + std::to_string(model_->horizon) + ")");
    return;
  }
  window = {*lo, *hi, true, item.loc};
}

}  // namespace sema

namespace {
std::unique_ptr<CheckedModel> check_loaded(FileId id, SourceManager& sources, Diagnostics& diags, const CheckOptions& options) {
  CheckOptions effective = options;
  if (effective.stdlib_dirs.empty()) effective.stdlib_dirs = default_stdlib_dirs();
  sema::Sema sema(sources, diags, effective);
  return sema.run(id);
}
}  // namespace

std::unique_ptr<CheckedModel> check_file(const std::string& path, SourceManager& sources, Diagnostics& diags,
                                  const CheckOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    diags.error_at(path, "is a directory, not a .hpo file");
    return nullptr;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.error_at(path, "cannot open file: " + std::string(std::strerror(errno)));
    return nullptr;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return check_loaded(sources.add(path, buffer.str()), sources, diags, options);
}

std::unique_ptr<CheckedModel> check_source(const std::string& name, std::string text, SourceManager& sources,
                                    Diagnostics& diags, const CheckOptions& options) {
  return check_loaded(sources.add(name, std::move(text)), sources, diags, options);
}

}  // namespace hpo
