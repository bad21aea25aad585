// param_values.cpp: reading param values from JSON files and --set, checked against the model.
#include "sema/param_values.hpp"

#include "sema/internal.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace hpo {
namespace {

using nlohmann::json;

int find_param(const CheckedModel& model, const std::string& name) {
  for (std::size_t i = 0; i < model.params.size(); ++i)
    if (model.params[i].symbol->name == name) return static_cast<int>(i);
  return -1;
}

std::string param_names(const CheckedModel& model) {
  if (model.params.empty()) return "the model has no params";
  std::string s = "the model's params: ";
  for (std::size_t i = 0; i < model.params.size(); ++i) s += (i ? ", " : "") + model.params[i].symbol->name;
  return s;
}

// Flattens nested JSON arrays of numbers row-major and records their shape; false on ragged or
// non-numeric input, with the reason.
bool flatten(const json& j, std::vector<std::int64_t>& shape, std::size_t depth, std::vector<double>& out,
             std::string& why) {
  if (j.is_number()) {
    if (depth != shape.size()) {
      why = "nested arrays have different depths";
      return false;
    }
    double v = j.get<double>();
    if (!std::isfinite(v)) {
      why = "a value is not finite";
      return false;
    }
    out.push_back(v);
    return true;
  }
  if (!j.is_array()) {
    why = std::string("expected a number or an array, found ") + j.type_name();
    return false;
  }
  if (j.empty()) {
    why = "an array is empty";
    return false;
  }
  if (depth == shape.size()) {
    if (!out.empty()) {
      why = "nested arrays have different depths";
      return false;
    }
    shape.push_back(static_cast<std::int64_t>(j.size()));
  } else if (shape[depth] != static_cast<std::int64_t>(j.size())) {
    why = "rows have different lengths (" + std::to_string(shape[depth]) + " and " + std::to_string(j.size()) + ")";
    return false;
  }
  for (const auto& element : j)
    if (!flatten(element, shape, depth + 1, out, why)) return false;
  return true;
}

bool assign(const CheckedModel& model, const std::string& name, const json& value, ParamValues& values, Diagnostics& diags,
            const std::string& where) {
  int index = find_param(model, name);
  if (index < 0) {
    std::string also;
    for (const auto& c : model.consts)
      if (c.symbol->name == name && c.symbol->loc.file == model.main_file)
        also = "; '" + name + "' is a const: give it with --set " + name + "=VALUE";
    diags.error_at(where, "unknown param '" + name + "' (" + param_names(model) + ")" + also);
    return false;
  }
  const ast::Type& type = model.params[index].symbol->type;
  std::vector<std::int64_t> shape;
  std::vector<double> flat;
  std::string why;
  if (!flatten(value, shape, 0, flat, why)) {
    diags.error_at(where, "param '" + name + "': " + why);
    return false;
  }
  if (shape.empty()) {
    flat.assign(static_cast<std::size_t>(type.elements()), flat[0]);
  } else if (shape != type.dims) {
    diags.error_at(where, "param '" + name + "' has " +
                              (type.dims.empty() ? std::string("no dimensions (a scalar)") : "shape " + ast::dims_str(type.dims)) +
                              " but the value given has shape " + ast::dims_str(shape));
    return false;
  }
  values.values[index] = std::move(flat);
  values.given[index] = true;
  return true;
}

}  // namespace

ParamValues default_param_values(const CheckedModel& model) {
  ParamValues v;
  for (const auto& p : model.params) v.values.push_back(p.default_value.value_or(std::vector<double>{}));
  v.given.assign(model.params.size(), false);
  return v;
}

bool load_param_file(const CheckedModel& model, const std::string& path, ParamValues& values, SourceManager& sources,
                     Diagnostics& diags) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    diags.error_at(path, "is a directory, not a params file");
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.error_at(path, "cannot open params file");
    return false;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  FileId id = sources.add(path, buffer.str());
  const std::string& text = sources.file(id).text;
  json doc;
  // A param named twice would silently keep the last value: refuse it instead.
  std::set<std::string> names;
  std::string duplicate;
  auto note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !names.insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    doc = json::parse(text, note_keys);
  } catch (const json::parse_error& e) {
    // Point at the byte the JSON parser stopped on.
    std::size_t offset = std::min<std::size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    std::uint32_t line = 1, column = 1;
    for (std::size_t i = 0; i < offset; ++i) {
      if (text[i] == '\n') { ++line; column = 1; }
      else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++column;
    }
    std::string what = e.what();
    if (auto pos = what.find("parse error"); pos != std::string::npos) what = what.substr(pos);
    diags.error({id, line, column}, "invalid JSON: " + what);
    return false;
  } catch (const json::exception& e) {
    diags.error_at(path, std::string("invalid JSON value: ") + e.what());
    return false;
  }
  if (!doc.is_object()) {
    diags.error_at(path, "a params file is a JSON object mapping param names to values");
    return false;
  }
  if (!duplicate.empty()) {
    diags.error_at(path, "param '" + duplicate + "' is given twice");
    return false;
  }
  bool ok = true;
  for (const auto& [name, value] : doc.items()) ok = assign(model, name, value, values, diags, path) && ok;
  return ok;
}

bool set_param(const CheckedModel& model, const std::string& assignment, ParamValues& values, Diagnostics& diags) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    diags.error_at("--set " + assignment, "expected NAME=VALUE, e.g. --set holding=2");
    return false;
  }
  std::string name = assignment.substr(0, eq);
  // A const of the model was replaced while checking (CheckOptions::sets).
  for (const auto& c : model.consts)
    if (c.symbol->name == name && c.symbol->loc.file == model.main_file) return true;
  json value;
  try {
    value = json::parse(assignment.substr(eq + 1));
  } catch (const json::exception&) {
    diags.error_at("--set " + assignment, "the value must be a finite number or a JSON array of them");
    return false;
  }
  return assign(model, name, value, values, diags, "--set " + assignment);
}

bool derive_param_values(const CheckedModel& model, ParamValues& values, SourceManager& sources, Diagnostics& diags) {
  using Progress = sema::Sema::Progress;
  const CheckOptions no_options;
  // A fresh checker that knows the model's consts and the param values settled so far evaluates
  // the rest: the same evaluation (and limits) as when the model was checked.
  auto evaluator = [&](Diagnostics& d, bool with_formulas) {
    auto e = std::make_unique<sema::Sema>(sources, d, no_options);
    for (const auto& c : model.consts) {
      e->const_values_[c.symbol] = c.value;
      e->const_progress_[c.symbol] = Progress::Done;
    }
    for (std::size_t i = 0; i < model.params.size(); ++i) {
      const ParamInfo& p = model.params[i];
      if (with_formulas && p.decl->default_value && !values.given[i]) continue;
      if (!values.values[i].empty()) e->param_values_[p.symbol] = Value{p.symbol->type, {}, values.values[i]};
      else e->param_values_[p.symbol] = std::nullopt;
      e->param_progress_[p.symbol] = Progress::Done;
    }
    return e;
  };
  const std::size_t errors_before = diags.error_count();
  auto params = evaluator(diags, true);
  for (std::size_t i = 0; i < model.params.size(); ++i) {
    const ParamInfo& p = model.params[i];
    if (!p.decl->default_value || values.given[i]) continue;
    if (const Value* v = params->param_default(p.symbol)) values.values[i] = v->reals;
  }
  if (diags.error_count() > errors_before) return false;

  // An initializer that reads noise is not known before an episode starts: the quiet evaluator's
  // complaint about that is dropped.
  std::ostringstream ignored;
  Diagnostics quiet(sources, ignored);
  auto states = evaluator(quiet, false);
  for (const auto& s : model.states) {
    sema::Env env;
    env.allow_param_defaults = true;  // the values settled above
    auto v = states->eval(*s.decl->init, env);
    if (!v || v->type.scalar == ast::Scalar::Int) continue;
    if (auto bad = sema::first_non_finite(v->reals); !bad.empty())
      diags.error(s.decl->init->loc, "the initial value of state '" + s.symbol->name + "' is not finite (" + bad + ")");
  }
  return diags.error_count() == errors_before;
}

bool resolve_param_values(const CheckedModel& model, const std::string& params_file, const std::vector<std::string>& sets,
                          ParamValues& values, SourceManager& sources, Diagnostics& diags) {
  values = default_param_values(model);
  bool ok = true;
  if (!params_file.empty()) ok = load_param_file(model, params_file, values, sources, diags) && ok;
  for (const auto& s : sets) ok = set_param(model, s, values, diags) && ok;
  return ok && derive_param_values(model, values, sources, diags);
}

bool require_all_params(const CheckedModel& model, const ParamValues& values, Diagnostics& diags) {
  bool ok = true;
  for (std::size_t i = 0; i < model.params.size(); ++i) {
    if (!values.values[i].empty()) continue;
    diags.error(model.params[i].symbol->loc, "param '" + model.params[i].symbol->name +
                                                 "' has no default; give it with --params FILE.json or --set");
    ok = false;
  }
  return ok;
}

}  // namespace hpo
