// checkpoint.cpp: hpo::Checkpoint: a trained policy and what it was trained on, as JSON written
// atomically; it compiles its model again, evaluates on held-out scenarios and writes trajectories.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "runtime/atomic_file.hpp"
#include "runtime/model.hpp"
#include "runtime/parallel.hpp"
#include "runtime/engine.hpp"
#include "runtime/trainer_state.hpp"

namespace hpo {

using nlohmann::json;

namespace {

constexpr const char* kFormat = "hpoc-checkpoint";
constexpr int kVersion = 1;

struct Names {
  const char* text;
  int value;
};
constexpr Names kAlgos[] = {{"hpo", int(Algo::HPO)},
                            {"hpo-decoupled", int(Algo::HPODecoupled)},
                            {"ppo", int(Algo::PPO)},
                            {"reinforce", int(Algo::Reinforce)},
                            {"gumbel-st", int(Algo::GumbelST)}};
constexpr Names kAdvantages[] = {{"gae", int(Advantage::GAE)}, {"batch-mean", int(Advantage::BatchMean)}};
constexpr Names kBaselines[] = {{"value", int(Baseline::Value)}, {"batch-mean", int(Baseline::BatchMean)}};
constexpr Names kSchedules[] = {
    {"constant", int(Schedule::Constant)}, {"linear", int(Schedule::Linear)}, {"cosine", int(Schedule::Cosine)}};
constexpr Names kPrecisions[] = {{"f32", int(Precision::F32)}, {"f64", int(Precision::F64)}};

template <std::size_t N>
std::string name_of(const Names (&table)[N], int value) {
  for (const auto& n : table)
    if (n.value == value) return n.text;
  return "?";
}

template <std::size_t N>
int parse_name(const Names (&table)[N], const std::string& text, const char* what) {
  std::string choices;
  for (const auto& n : table) {
    if (text == n.text) return n.value;
    choices += std::string(choices.empty() ? "" : ", ") + n.text;
  }
  throw std::invalid_argument("unknown " + std::string(what) + " '" + text + "' (choose from " + choices + ")");
}

json number_or_null(double x) { return std::isnan(x) ? json(nullptr) : json(x); }
double number_or_nan(const json& j) { return j.is_null() ? NAN : j.get<double>(); }

json options_to_json(const TrainOptions& o) {
  return json{{"algo", to_string(o.algo)},
              {"iterations", o.iterations},
              {"batch", o.batch},
              {"horizon", o.horizon},
              {"lr", number_or_null(o.lr)},
              {"value_lr", o.value_lr},
              {"schedule", to_string(o.schedule)},
              {"grad_clip", o.grad_clip},
              {"hidden", o.hidden},
              {"precision", to_string(o.precision)},
              {"gaussian", o.gaussian},
              {"per_option", o.per_option},
              {"linear_skip", o.linear_skip},
              {"continuous_lr_scale", number_or_null(o.continuous_lr_scale)},
              {"init_log_std", o.init_log_std},
              {"entropy", number_or_null(o.entropy)},
              {"entropy_final", number_or_null(o.entropy_final)},
              {"seed", o.seed},
              {"threads", o.threads},
              {"dev_seed", o.dev_seed},
              {"test_seed", o.test_seed},
              {"dev_episodes", o.dev_episodes},
              {"test_episodes", o.test_episodes},
              {"eval_every", o.eval_every},
              {"greedy_eval", o.greedy_eval},
              {"param_average", o.param_average},
              {"out_dir", o.out_dir},
              {"sf",
               {{"gae_gamma", number_or_null(o.sf.gae_gamma)},
                {"gae_lambda", o.sf.gae_lambda},
                {"epochs", o.sf.epochs},
                {"minibatches", o.sf.minibatches},
                {"clip", o.sf.clip},
                {"target_kl", o.sf.target_kl},
                {"value_coef", o.sf.value_coef}}},
              {"hpo", {{"advantage", to_string(o.hpo.advantage)}, {"pathwise_coef", o.hpo.pathwise_coef}}},
              {"reinforce", {{"baseline", to_string(o.reinforce.baseline)}, {"value_epochs", o.reinforce.value_epochs}}},
              {"gumbel", {{"temperature", o.gumbel.temperature}}}};
}

// The critic and PPO-epoch settings both checkpoint layouts store under the same keys.
void sf_keys_from_json(const json& from, TrainOptions& o) {
  from.at("epochs").get_to(o.sf.epochs);
  from.at("minibatches").get_to(o.sf.minibatches);
  from.at("clip").get_to(o.sf.clip);
  from.at("target_kl").get_to(o.sf.target_kl);
  from.at("gae_lambda").get_to(o.sf.gae_lambda);
  from.at("value_coef").get_to(o.sf.value_coef);
}

// Checkpoints before the per-algorithm sections (no "sf" key) kept one flat list; what evaluation
// needs (precision, widths, horizon, greedy) reads the same, the training settings as they were.
void legacy_sections_from_json(const json& j, TrainOptions& o) {
  o.entropy = number_or_nan(j.at("entropy_coef"));
  j.at("entropy_final").get_to(o.entropy_final);
  sf_keys_from_json(j, o);
  o.sf.gae_gamma = 1.0;  // the model's discount then; a checkpoint does not know it
  if (o.algo == Algo::HPO || o.algo == Algo::HPODecoupled) {
    const int sf_epochs = j.at("sf_epochs").get<int>();
    o.hpo.advantage = sf_epochs > 0 ? Advantage::GAE : Advantage::BatchMean;
    o.hpo.pathwise_coef = 1.0;
    if (sf_epochs > 0) o.sf.epochs = sf_epochs;
  }
  o.reinforce.baseline = parse_baseline(j.at("baseline").get<std::string>());
  j.at("value_epochs").get_to(o.reinforce.value_epochs);
  j.at("temperature").get_to(o.gumbel.temperature);
}

TrainOptions options_from_json(const json& j) {
  TrainOptions o;
  o.algo = parse_algo(j.at("algo").get<std::string>());
  j.at("iterations").get_to(o.iterations);
  j.at("batch").get_to(o.batch);
  j.at("horizon").get_to(o.horizon);
  o.lr = number_or_nan(j.at("lr"));
  j.at("value_lr").get_to(o.value_lr);
  o.schedule = parse_schedule(j.at("schedule").get<std::string>());
  j.at("grad_clip").get_to(o.grad_clip);
  j.at("hidden").get_to(o.hidden);
  // Checkpoints from before the precision option ran their networks in double.
  o.precision = j.contains("precision") ? parse_precision(j.at("precision").get<std::string>()) : Precision::F64;
  j.at("gaussian").get_to(o.gaussian);
  // Checkpoints from before the per-option head fed the choices to the continuous head.
  o.per_option = j.value("per_option", false);
  // Checkpoints from before these options ran without a linear path, at one learning rate.
  o.linear_skip = j.value("linear_skip", false);
  o.continuous_lr_scale = j.contains("continuous_lr_scale") ? number_or_nan(j.at("continuous_lr_scale")) : 1.0;
  j.at("init_log_std").get_to(o.init_log_std);
  j.at("seed").get_to(o.seed);
  j.at("threads").get_to(o.threads);
  j.at("dev_seed").get_to(o.dev_seed);
  j.at("test_seed").get_to(o.test_seed);
  j.at("dev_episodes").get_to(o.dev_episodes);
  j.at("test_episodes").get_to(o.test_episodes);
  j.at("eval_every").get_to(o.eval_every);
  j.at("greedy_eval").get_to(o.greedy_eval);
  o.param_average = j.value("param_average", 0.0);  // checkpoints before the key: the last iterate
  j.at("out_dir").get_to(o.out_dir);
  if (!j.contains("sf")) {
    legacy_sections_from_json(j, o);
    return o;
  }
  o.entropy = number_or_nan(j.at("entropy"));
  o.entropy_final = number_or_nan(j.at("entropy_final"));
  o.sf.gae_gamma = number_or_nan(j.at("sf").at("gae_gamma"));
  sf_keys_from_json(j.at("sf"), o);
  o.hpo.advantage = parse_advantage(j.at("hpo").at("advantage").get<std::string>());
  j.at("hpo").at("pathwise_coef").get_to(o.hpo.pathwise_coef);
  o.reinforce.baseline = parse_baseline(j.at("reinforce").at("baseline").get<std::string>());
  j.at("reinforce").at("value_epochs").get_to(o.reinforce.value_epochs);
  j.at("gumbel").at("temperature").get_to(o.gumbel.temperature);
  return o;
}

std::vector<double> vector_of(const runtime::Vector& v) { return {v.data(), v.data() + v.size()}; }

// Infinite bounds do not fit JSON numbers; null stands for them.
json bounds_to_json(const std::vector<double>& v) {
  json out = json::array();
  for (double x : v) out.push_back(std::isfinite(x) ? json(x) : json(nullptr));
  return out;
}
std::vector<double> bounds_from_json(const json& j, double infinity) {
  std::vector<double> out;
  for (const auto& x : j) out.push_back(x.is_null() ? infinity : x.get<double>());
  return out;
}

}  // namespace

std::string to_string(Algo a) { return name_of(kAlgos, int(a)); }
std::string to_string(Advantage a) { return name_of(kAdvantages, int(a)); }
std::string to_string(Baseline b) { return name_of(kBaselines, int(b)); }
std::string to_string(Schedule s) { return name_of(kSchedules, int(s)); }
Algo parse_algo(const std::string& s) { return Algo(parse_name(kAlgos, s, "algorithm")); }
Advantage parse_advantage(const std::string& s) { return Advantage(parse_name(kAdvantages, s, "advantage")); }
Baseline parse_baseline(const std::string& s) { return Baseline(parse_name(kBaselines, s, "baseline")); }
Schedule parse_schedule(const std::string& s) { return Schedule(parse_name(kSchedules, s, "schedule")); }
std::string to_string(Precision p) { return name_of(kPrecisions, int(p)); }
Precision parse_precision(const std::string& s) { return Precision(parse_name(kPrecisions, s, "precision")); }

Checkpoint::Checkpoint() : impl_(std::make_unique<Impl>()) {}
Checkpoint::Checkpoint(const Checkpoint& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
Checkpoint& Checkpoint::operator=(const Checkpoint& other) {
  impl_ = std::make_unique<Impl>(*other.impl_);
  return *this;
}
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

const std::string& Checkpoint::model_path() const { return impl_->model_path; }
const std::string& Checkpoint::source_hash() const { return impl_->source_hash; }
const TrainOptions& Checkpoint::options() const { return impl_->options; }
std::int64_t Checkpoint::iteration() const { return impl_->iteration; }
double Checkpoint::dev_cost() const { return impl_->dev_cost; }

void Checkpoint::save(const std::string& path) const {
  const Impl& c = *impl_;
  const runtime::Policy& p = c.policy;
  const auto& space = p.space();
  json j{{"format", kFormat},
         {"version", kVersion},
         {"model",
          {{"path", c.model_path},
           {"source", c.model_source},
           {"source_hash", c.source_hash},
           {"stdlib_dirs", c.stdlib_dirs},
           {"sets", c.sets},
           {"reformulate", c.reformulate},
           {"param_names", c.param_names},
           {"param_values", c.param_values}}},
         {"options", options_to_json(c.options)},
         {"iteration", c.iteration},
         {"dev_cost", std::isfinite(c.dev_cost) ? json(c.dev_cost) : json(nullptr)},
         {"policy",
          {{"obs", space.obs},
           {"choices", space.choices},
           {"lower", bounds_to_json(space.lower)},
           {"upper", bounds_to_json(space.upper)},
           {"hidden", p.config().hidden},
           {"gaussian", p.gaussian()},
           {"per_option", p.config().conditioning == runtime::ChoiceConditioning::PerOption},
           {"linear_skip", p.config().linear_skip},
           {"params", p.params},
           {"value_params", p.value_params},
           {"value_scale", p.value_scale},
           {"obs_mean", vector_of(p.normalizer.mean)},
           {"obs_var", vector_of(p.normalizer.var)},
           {"obs_count", p.normalizer.count}}}};
  runtime::write_file_atomically(path, j.dump(1) + "\n", "checkpoint");
}

Checkpoint Checkpoint::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the checkpoint");
  Checkpoint result;
  Impl& c = *result.impl_;
  try {
    json j = json::parse(in);
    if (j.value("format", "") != kFormat) throw std::runtime_error("not an hpoc checkpoint");
    if (j.at("version").get<int>() != kVersion)
      throw std::runtime_error("checkpoint version " + j.at("version").dump() + " is not supported");
    const json& m = j.at("model");
    m.at("path").get_to(c.model_path);
    m.at("source").get_to(c.model_source);
    m.at("source_hash").get_to(c.source_hash);
    m.at("stdlib_dirs").get_to(c.stdlib_dirs);
    m.at("sets").get_to(c.sets);
    c.reformulate = m.value("reformulate", true);  // checkpoints before the key: always reformulated
    m.at("param_names").get_to(c.param_names);
    m.at("param_values").get_to(c.param_values);
    c.options = options_from_json(j.at("options"));
    j.at("iteration").get_to(c.iteration);
    c.dev_cost = j.at("dev_cost").is_null() ? NAN : j.at("dev_cost").get<double>();
    const json& p = j.at("policy");
    runtime::ActionSpace space;
    p.at("obs").get_to(space.obs);
    p.at("choices").get_to(space.choices);
    space.lower = bounds_from_json(p.at("lower"), -INFINITY);
    space.upper = bounds_from_json(p.at("upper"), INFINITY);
    runtime::PolicyConfig config;
    p.at("hidden").get_to(config.hidden);
    // Sizes come from a file: check them before any network is built from them.
    if (space.obs < 0 || space.obs > (1 << 24)) throw std::runtime_error("policy.obs is not a valid size");
    for (int c : space.choices)
      if (c < 1 || c > (1 << 24)) throw std::runtime_error("policy.choices holds an invalid number of choices");
    if (space.lower.size() != space.upper.size()) throw std::runtime_error("policy.lower and policy.upper differ in size");
    if (config.hidden.empty()) throw std::runtime_error("policy.hidden is empty");
    for (int h : config.hidden)
      if (h < 1 || h > 65536) throw std::runtime_error("policy.hidden holds an invalid layer size");
    if (c.param_values.size() != c.param_names.size())
      throw std::runtime_error("model.param_values has " + std::to_string(c.param_values.size()) +
                               " values for " + std::to_string(c.param_names.size()) + " param names");
    config.continuous = p.at("gaussian").get<bool>() ? runtime::ContinuousHead::Gaussian
                                                     : runtime::ContinuousHead::Deterministic;
    config.conditioning = p.value("per_option", false) ? runtime::ChoiceConditioning::PerOption
                                                       : runtime::ChoiceConditioning::ChoiceInput;
    config.linear_skip = p.value("linear_skip", false);
    c.policy = runtime::Policy(space, config, 0);
    auto read_exact = [&](const char* key, std::vector<double>& into) {
      auto values = p.at(key).get<std::vector<double>>();
      if (values.size() != into.size())
        throw std::runtime_error(std::string("policy.") + key + " has " + std::to_string(values.size()) +
                                 " values; the networks need " + std::to_string(into.size()));
      into = std::move(values);
    };
    read_exact("params", c.policy.params);
    read_exact("value_params", c.policy.value_params);
    p.at("value_scale").get_to(c.policy.value_scale);
    std::vector<double> mean, var;
    p.at("obs_mean").get_to(mean);
    p.at("obs_var").get_to(var);
    if (mean.size() != std::size_t(space.obs) || var.size() != std::size_t(space.obs))
      throw std::runtime_error("the observation statistics do not match the observation size");
    c.policy.normalizer.mean = Eigen::Map<runtime::Vector>(mean.data(), space.obs);
    c.policy.normalizer.var = Eigen::Map<runtime::Vector>(var.data(), space.obs);
    p.at("obs_count").get_to(c.policy.normalizer.count);
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": damaged checkpoint: " + e.what());
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return result;
}

Model Checkpoint::compile_model(CompileOptions options, bool allow_changed) const {
  const Impl& c = *impl_;
  for (const auto& d : c.stdlib_dirs) options.stdlib_dirs.push_back(d);
  // The assignments as trained: consts among them give the model its sizes; the params among
  // them are overwritten by the stored values below.
  options.sets.insert(options.sets.begin(), c.sets.begin(), c.sets.end());
  options.reformulate = c.reformulate;  // the generated gates are part of the policy's action space
  Model model = c.model_path.empty() ? compile_string(c.model_source, "checkpoint.hpo", options)
                                     : compile_file(c.model_path, options);
  if (!allow_changed && hpo::source_hash(model) != c.source_hash)
    throw std::runtime_error("the model " + c.model_path + " changed since this policy was trained (source hash " +
                             hpo::source_hash(model) + ", trained on " + c.source_hash +
                             "); retrain, or allow a changed model explicitly");
  if (model.param_names() != c.param_names)
    throw std::runtime_error("the model's params are not those the policy was trained with");
  if (c.param_values.size() != model.num_params())
    throw std::runtime_error("the checkpoint has " + std::to_string(c.param_values.size()) + " param values; the model has " +
                             std::to_string(model.num_params()));
  auto& impl = detail::ModelAccess::mutable_impl(model);
  impl.params = c.param_values;
  const auto space = runtime::ActionSpace::of(model);
  const auto& trained = c.policy.space();
  if (space.obs != trained.obs || space.choices != trained.choices || space.lower != trained.lower ||
      space.upper != trained.upper)
    throw std::runtime_error("the model's observations, choices or action bounds no longer match the trained policy");
  return model;
}

Evaluation Checkpoint::evaluate(const Model& model, std::uint64_t seed, std::int64_t episodes, int threads) const {
  if (episodes < 1) throw std::invalid_argument("evaluation needs at least one episode");
  auto spec = runtime::evaluation_spec(model, impl_->policy, impl_->options, seed);
  runtime::Engine engine(impl_->options.precision, threads > 0 ? threads : runtime::default_threads());
  try {
    return runtime::summarize(engine.rollout_totals(spec, episodes));
  } catch (const runtime::NonFiniteError& e) {
    throw TrainingError(e.what());
  }
}

void Checkpoint::simulate(const Model& model, std::uint64_t seed, std::int64_t episodes, std::ostream& csv) const {
  if (episodes < 1) throw std::invalid_argument("simulate needs at least one episode");
  auto spec = runtime::evaluation_spec(model, impl_->policy, impl_->options, seed);
  spec.record = true;
  spec.states = true;
  csv << "episode,t";
  for (const auto& names : {model.state_names(), model.disc_names(), model.cont_names()})
    for (const auto& n : names) csv << ",\"" << n << '"';
  csv << ",cost\n";
  csv.precision(10);
  runtime::Engine engine(impl_->options.precision, 1);
  const auto& space = impl_->policy.space();
  const std::size_t S = model.num_state(), D = model.num_disc(), C = model.num_cont();
  runtime::Batch batch;
  try {
    engine.rollout(spec, episodes, batch);
  } catch (const runtime::NonFiniteError& e) {
    throw TrainingError(e.what());
  }
  {
    const std::int64_t n = episodes;
    auto at = [&](std::int64_t t, std::size_t k, std::size_t count, std::int64_t b) {
      return (static_cast<std::size_t>(t) * count + k) * static_cast<std::size_t>(n) + static_cast<std::size_t>(b);
    };
    for (std::int64_t b = 0; b < n; ++b)
      for (std::int64_t t = 0; t < spec.horizon; ++t) {
        csv << b << ',' << t;
        for (std::size_t i = 0; i < S; ++i) csv << ',' << batch.state[at(t, i, S, b)];
        for (std::size_t i = 0; i < D; ++i) csv << ',' << batch.disc[at(t, i, D, b)];
        for (std::size_t i = 0; i < C; ++i) {
          double action = 0;
          runtime::squash(std::span<const double>(&batch.raw[at(t, i, C, b)], 1), space.lower[i], space.upper[i],
                          std::span<double>(&action, 1));
          csv << ',' << action;
        }
        csv << ',' << batch.cost(t, b) << '\n';
      }
  }
  if (!csv) throw std::runtime_error("writing the trajectories failed");
}

}  // namespace hpo
