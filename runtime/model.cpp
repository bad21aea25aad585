// model.cpp: hpo::Model: the whole compile pipeline behind one call, and the per-sample kernels.
#include "runtime/model.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cmath>
#include <functional>

#include "ir/lower.hpp"
#include "sema/param_values.hpp"

namespace hpo {

namespace {

void require_size(std::size_t got, std::size_t want, const char* what) {
  if (got < want)
    throw std::invalid_argument(std::string(what) + " has " + std::to_string(got) + " elements; the model needs " +
                                std::to_string(want));
}

}  // namespace


Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

// Runs every stage; diagnostics go to a string that a CompileError carries.
static Model compile(std::function<std::unique_ptr<CheckedModel>(SourceManager&, Diagnostics&, const CheckOptions&)> check,
                     const CompileOptions& options) {
  auto start = std::chrono::steady_clock::now();
  auto impl = std::make_unique<detail::ModelAccess::Impl>();
  impl->sources = std::make_unique<SourceManager>();
  impl->options = options;
  std::ostringstream messages;
  Diagnostics diags(*impl->sources, messages);
  diags.set_warnings_as_errors(options.strict);
  CheckOptions check_options;
  check_options.stdlib_dirs = options.stdlib_dirs;
  check_options.sets = options.sets;
  for (const auto& d : default_stdlib_dirs()) check_options.stdlib_dirs.push_back(d);
  impl->checked = check(*impl->sources, diags, check_options);
  if (!impl->checked) throw CompileError(messages.str());
  if (impl->checked->is_module) throw CompileError("a module has no step to compile; give a model");
  ParamValues& values = impl->param_values;
  bool ok = resolve_param_values(*impl->checked, options.params_file, options.sets, values, *impl->sources, diags);
  ok = ok && require_all_params(*impl->checked, values, diags);
  if (!ok) throw CompileError(messages.str());
  for (const auto& v : values.values) {
    impl->param_offsets.push_back(impl->params.size());
    impl->params.insert(impl->params.end(), v.begin(), v.end());
  }
  impl->program = ir::lower(*impl->checked, diags);
  if (!impl->program) throw CompileError(messages.str());
  analysis::Options analysis_options;
  analysis_options.reformulate = options.reformulate;
  impl->report = analysis::analyze(*impl->program, diags, analysis_options);
  if (diags.has_errors()) throw CompileError(messages.str());
  impl->adjoints = autodiff::differentiate(*impl->program);
  jit::Options jit_options;
  jit_options.level = options.opt_level == 0 ? codegen::OptLevel::O0 : codegen::OptLevel::O2;
  std::string error;
  impl->kernels = jit::Kernels::compile(*impl->program, impl->adjoints, jit_options, &error);
  if (!impl->kernels) throw CompileError("JIT compilation failed: " + error);
  impl->compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  impl->warnings = messages.str();
  return detail::ModelAccess::make(std::move(impl));
}

Model compile_file(const std::string& path, const CompileOptions& options) {
  Model model = compile(
      [&](SourceManager& s, Diagnostics& d, const CheckOptions& o) { return check_file(path, s, d, o); }, options);
  std::error_code error;
  auto absolute = std::filesystem::absolute(path, error);
  detail::ModelAccess::mutable_impl(model).file_path = error ? path : absolute.lexically_normal().string();
  return model;
}

Model compile_string(const std::string& source, const std::string& name, const CompileOptions& options) {
  return compile(
      [&](SourceManager& s, Diagnostics& d, const CheckOptions& o) { return check_source(name, source, s, d, o); },
      options);
}

const std::string& Model::name() const { return impl_->program->model_name; }
std::int64_t Model::horizon() const { return impl_->program->horizon; }
double Model::discount() const { return impl_->program->discount; }
const std::vector<std::string>& Model::param_names() const { return impl_->program->layout.params; }
const std::vector<std::string>& Model::state_names() const { return impl_->program->layout.state; }
const std::vector<std::string>& Model::disc_names() const { return impl_->program->layout.disc; }
const std::vector<std::string>& Model::cont_names() const { return impl_->program->layout.cont; }
const std::vector<std::string>& Model::noise_names() const { return impl_->program->layout.noise; }
const std::vector<std::string>& Model::obs_names() const { return impl_->program->layout.obs; }
const std::vector<std::int64_t>& Model::disc_choices() const { return impl_->program->layout.disc_choices; }
const std::vector<double>& Model::cont_lower() const { return impl_->program->layout.cont_lo; }
const std::vector<double>& Model::cont_upper() const { return impl_->program->layout.cont_hi; }
std::span<const double> Model::params() const { return impl_->params; }
bool Model::uses_period() const { return impl_->checked->uses_period; }

static PeriodWindow clip(const PeriodWindow& declared, std::int64_t horizon) {
  PeriodWindow w = declared;
  w.end = std::min(w.end, horizon);
  w.first = std::min(w.first, w.end);
  return w;
}

// An undeclared window is every period of whatever horizon the episode has.
PeriodWindow Model::report_window(std::int64_t horizon) const {
  if (horizon <= 0) horizon = this->horizon();
  const auto& w = impl_->checked->report_periods;
  return clip(w.declared ? PeriodWindow{w.first, w.end} : PeriodWindow{0, horizon}, horizon);
}

PeriodWindow Model::train_window(std::int64_t horizon) const {
  if (horizon <= 0) horizon = this->horizon();
  const auto& w = impl_->checked->train_periods;
  return clip(w.declared ? PeriodWindow{w.first, w.end} : PeriodWindow{0, horizon}, horizon);
}
double Model::compile_seconds() const { return impl_->compile_seconds; }
const std::string& Model::warnings() const { return impl_->warnings; }
std::string Model::analysis() const { return analysis::print_report(impl_->report, *impl_->sources); }

void Model::set_param(const std::string& name, std::span<const double> values) {
  const auto& params = impl_->checked->params;
  for (std::size_t p = 0; p < params.size(); ++p) {
    if (params[p].symbol->name != name) continue;
    auto count = static_cast<std::size_t>(params[p].symbol->type.elements());
    if (values.size() != count && values.size() != 1)
      throw std::invalid_argument("param '" + name + "' has " + std::to_string(count) + " elements, got " +
                                  std::to_string(values.size()));
    for (double v : values)
      if (!std::isfinite(v)) throw std::invalid_argument("param '" + name + "' must be finite");
    // The params whose defaults read this one follow it, as with --set.
    ParamValues next = impl_->param_values;
    next.values[p].assign(count, values[0]);
    if (values.size() == count) next.values[p].assign(values.begin(), values.end());
    next.given[p] = true;
    std::ostringstream messages;
    Diagnostics diags(*impl_->sources, messages);
    if (!derive_param_values(*impl_->checked, next, *impl_->sources, diags)) throw std::invalid_argument(messages.str());
    impl_->param_values = std::move(next);
    for (std::size_t q = 0; q < params.size(); ++q)
      std::copy(impl_->param_values.values[q].begin(), impl_->param_values.values[q].end(),
                impl_->params.begin() + static_cast<std::ptrdiff_t>(impl_->param_offsets[q]));
    return;
  }
  throw std::invalid_argument("unknown param '" + name + "'");
}

std::string source_hash(const Model& model) {
  const SourceManager& sources = *detail::ModelAccess::impl(model).sources;
  std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
  auto mix = [&](std::string_view bytes) {
    for (unsigned char c : bytes) hash = (hash ^ c) * 0x100000001b3ull;
  };
  for (std::size_t i = 0; i < sources.size(); ++i) {
    mix(sources.file(static_cast<FileId>(i)).text);
    mix(std::string_view("\0", 1));
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

const std::string& source_path(const Model& model) { return detail::ModelAccess::impl(model).file_path; }

void Model::set_param(const std::string& name, double value) { set_param(name, std::span<const double>(&value, 1)); }

void Model::init(std::span<const double> noise0, std::span<double> state) const {
  require_size(noise0.size(), num_noise(), "noise0");
  require_size(state.size(), num_state(), "state");
  impl_->kernels->init(impl_->params.data(), noise0.data(), state.data());
}

void Model::observe(std::span<const double> state, std::span<double> obs, std::int64_t t) const {
  require_size(state.size(), num_state(), "state");
  require_size(obs.size(), num_obs(), "obs");
  impl_->kernels->observe(impl_->params.data(), state.data(), obs.data(), t);
}

double Model::step(std::span<const double> state, std::span<const std::int32_t> disc, std::span<const double> cont,
                   std::span<const double> noise, std::span<double> next_state, std::int64_t t) const {
  require_size(state.size(), num_state(), "state");
  require_size(disc.size(), num_disc(), "disc");
  require_size(cont.size(), num_cont(), "cont");
  require_size(noise.size(), num_noise(), "noise");
  require_size(next_state.size(), num_state(), "next_state");
  double cost = 0;
  impl_->kernels->step(impl_->params.data(), state.data(), disc.data(), cont.data(), noise.data(), next_state.data(), &cost,
                       t);
  return cost;
}

void Model::step_adjoint(std::span<const double> state, std::span<const std::int32_t> disc, std::span<const double> cont,
                         std::span<const double> noise, std::span<const double> next_state_bar, double cost_bar,
                         std::span<double> state_bar, std::span<double> cont_bar, std::int64_t t) const {
  require_size(state.size(), num_state(), "state");
  require_size(disc.size(), num_disc(), "disc");
  require_size(cont.size(), num_cont(), "cont");
  require_size(noise.size(), num_noise(), "noise");
  require_size(next_state_bar.size(), num_state(), "next_state_bar");
  require_size(state_bar.size(), num_state(), "state_bar");
  require_size(cont_bar.size(), num_cont(), "cont_bar");
  impl_->kernels->step_adj(impl_->params.data(), state.data(), disc.data(), cont.data(), noise.data(),
                           next_state_bar.data(), &cost_bar, state_bar.data(), cont_bar.data(), t);
}

void Model::observe_adjoint(std::span<const double> state, std::span<const double> obs_bar,
                            std::span<double> state_bar, std::int64_t t) const {
  require_size(state.size(), num_state(), "state");
  require_size(obs_bar.size(), num_obs(), "obs_bar");
  require_size(state_bar.size(), num_state(), "state_bar");
  impl_->kernels->observe_adj(impl_->params.data(), state.data(), obs_bar.data(), state_bar.data(), t);
}

}  // namespace hpo
