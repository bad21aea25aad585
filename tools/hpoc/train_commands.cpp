// train_commands.cpp: `hpoc train` (with a live progress line, metrics, learning curve and the
// best checkpoint), `hpoc eval` (test cost with a 95% interval) and `hpoc simulate` (trajectories).
#include "train_commands.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "hpo/train.hpp"

namespace hpoc {

namespace {

std::string duration_text(double seconds) {
  char text[32];
  if (seconds < 60) std::snprintf(text, sizeof text, "%.0fs", seconds);
  else if (seconds < 3600) std::snprintf(text, sizeof text, "%dm%02ds", int(seconds) / 60, int(seconds) % 60);
  else std::snprintf(text, sizeof text, "%dh%02dm", int(seconds) / 3600, int(seconds) / 60 % 60);
  return text;
}

std::string rate_text(double per_second) {
  char text[32];
  if (per_second >= 1e6) std::snprintf(text, sizeof text, "%.2fM", per_second / 1e6);
  else if (per_second >= 1e3) std::snprintf(text, sizeof text, "%.1fk", per_second / 1e3);
  else std::snprintf(text, sizeof text, "%.0f", per_second);
  return text;
}

// One line that rewrites itself on a terminal; a line per few iterations in a log.
class Progress {
 public:
  Progress(std::int64_t iterations, bool quiet)
      : iterations_(iterations), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}

  void update(const hpo::IterationStats& s) {
    if (quiet_) return;
    const std::int64_t done = s.iteration;
    const bool evaluated = !std::isnan(s.dev_cost);
    const std::int64_t every = std::max<std::int64_t>(1, iterations_ / 20);
    if (!tty_ && !(done % every == 0 || done == iterations_ || done == 1)) return;
    // A terminal line redrawn more than ten times a second only costs time.
    const auto now = std::chrono::steady_clock::now();
    if (tty_ && done != iterations_ && !evaluated && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const int filled = int(kWidth * double(done) / double(iterations_));
    std::string bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "]";
    if (evaluated) last_dev_ = s.dev_cost;
    char line[256];
    std::snprintf(line, sizeof line, "%s %lld/%lld  %s steps/s  train %.4g  dev %.4g (best %.4g)  %s %s", bar.c_str(),
                  static_cast<long long>(done), static_cast<long long>(iterations_),
                  rate_text(double(s.samples) / std::max(s.seconds, 1e-9)).c_str(), s.train_cost, last_dev_,
                  s.best_dev_cost, done == iterations_ ? "took" : "ETA",
                  duration_text(done == iterations_ ? s.seconds
                                                    : s.seconds / double(done) * double(iterations_ - done))
                      .c_str());
    if (tty_) std::fprintf(stderr, "\r\033[K%s", line);
    else std::fprintf(stderr, "%s\n", line);
    if (tty_ && done == iterations_) std::fprintf(stderr, "\n");
  }
  void interrupt() {
    if (tty_ && !quiet_) std::fprintf(stderr, "\n");
  }

 private:
  std::int64_t iterations_;
  bool quiet_, tty_;
  double last_dev_ = NAN;
  std::chrono::steady_clock::time_point last_draw_{};
};

std::vector<int> parse_hidden(const std::string& text) {
  std::vector<int> sizes;
  std::stringstream in(text + ",");  // so a trailing comma leaves an empty item to reject
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      std::size_t used = 0;
      int v = std::stoi(item, &used);
      if (used != item.size() || item.empty()) throw std::invalid_argument(item);
      sizes.push_back(v);
    } catch (const std::exception&) {
      throw std::invalid_argument("--hidden takes layer sizes separated by commas, like 64,64; got '" + text + "'");
    }
  }
  return sizes;
}

}  // namespace

// With a declared report window, the cost per counted period too (the paper's unit for jrp).
void print_per_period(const hpo::Model& model, std::int64_t horizon, const hpo::Evaluation& e) {
  const hpo::PeriodWindow w = model.report_window(horizon);
  if (w.first == 0 && w.end == (horizon > 0 ? horizon : model.horizon())) return;
  const double periods = double(std::max<std::int64_t>(w.size(), 1));
  std::printf("  per period %.6g +- %.3g (the mean over periods %lld..%lld, the model's report window)\n",
              e.mean / periods, e.ci95 / periods, static_cast<long long>(w.first), static_cast<long long>(w.end - 1));
}

struct TrainCommands::State {
  CLI::App *train = nullptr, *eval = nullptr, *simulate = nullptr;
  // train
  std::string config;
  std::string file, algo = "hpo", advantage = "gae", baseline = "batch-mean", schedule = "constant", hidden = "64,64", precision = "f32", out;
  hpo::TrainOptions options;
  hpo::CompileOptions compile;
  bool quiet = false, sample_eval = false, choice_input = false, no_reformulate = false;
  // eval and simulate
  std::string checkpoint, csv = "-";
  std::int64_t episodes = 0;
  std::uint64_t seed = 0;
  int threads = 0;
  bool allow_changed = false;

  void apply_config() const;
  int run_train() const;
  int run_eval() const;
  int run_simulate() const;
};

TrainCommands::TrainCommands(CLI::App& app) : state_(std::make_unique<State>()) {
  State& s = *state_;
  hpo::TrainOptions& o = s.options;
  s.train = app.add_subcommand("train", "Train a policy for a model (JIT-compiled rollouts, HPO or a baseline)");
  CLI::App* t = s.train;
  t->add_option("file", s.file, "Model file (.hpo)")->required()->type_name("FILE");
  t->add_option("--algo", s.algo, "Gradient estimator: hpo, hpo-decoupled, ppo, reinforce, gumbel-st")
      ->capture_default_str();
  t->add_option("--iterations", o.iterations, "Training iterations (one batch and update each)")->capture_default_str();
  t->add_option("--batch", o.batch, "Episodes per iteration")->capture_default_str();
  t->add_option("--horizon", o.horizon, "Steps per episode (0: the model's)")->capture_default_str();
  t->add_option("--lr", o.lr, "Adam learning rate of the policy (default: 1e-4 for ppo, 1e-3 for the others)");
  t->add_option("--value-lr", o.value_lr, "Adam learning rate of the value network")->capture_default_str();
  t->add_option("--schedule", s.schedule, "Learning-rate schedule: constant, linear, cosine")->capture_default_str();
  t->add_option("--grad-clip", o.grad_clip, "Max gradient norm per head (0: off)")->capture_default_str();
  t->add_option("--hidden", s.hidden, "Hidden layer sizes, comma-separated")->capture_default_str();
  t->add_option("--precision", s.precision, "Arithmetic of the policy networks: f32, f64 (the simulator is always f64)")
      ->capture_default_str();
  t->add_flag("--gaussian", o.gaussian, "Gaussian continuous head for hpo and gumbel-st (ppo and reinforce always)");
  t->add_flag("--choice-input", s.choice_input,
              "Continuous head: one output per component with the one-hot choices as inputs, instead of one "
              "output per (component, option) selected by the choice");
  t->add_option("--continuous-lr-scale", o.continuous_lr_scale,
                "Learning rate of the continuous head over --lr (default: 3 for hpo, hpo-decoupled and gumbel-st, "
                "whose continuous head takes one pathwise step per batch; 1 for ppo and reinforce)");
  t->add_flag("--linear-skip,!--no-linear-skip", o.linear_skip,
              "Every network also maps its inputs linearly to its outputs, so linear feedback (order-up-to, LQR) "
              "is learned directly; --no-linear-skip for plain MLPs")
      ->capture_default_str();
  t->add_option("--init-log-std", o.init_log_std, "Initial log std of a Gaussian head")->capture_default_str();
  t->add_option("--entropy", o.entropy,
                "Entropy bonus on the discrete head at the start (against standardized advantages for hpo and "
                "ppo, default 0.25 for hpo and 0.03 for ppo; in units of the first batch's cost per step otherwise, default 0.03)");
  t->add_option("--entropy-final", o.entropy_final,
                "Entropy bonus at the end, annealed linearly (default 0.001 against standardized advantages, else 0)");
  // hpo and ppo: the critic and the PPO epochs.
  t->add_option("--gae-gamma", o.sf.gae_gamma,
                "hpo, ppo: GAE gamma, its own, not the model's discount (default 0.99 for hpo, 0.93 for ppo)");
  t->add_option("--gae-lambda", o.sf.gae_lambda, "hpo, ppo: GAE lambda")->capture_default_str();
  t->add_option("--epochs", o.sf.epochs, "hpo, ppo: PPO epochs after each batch's full-batch step (0: none)")
      ->capture_default_str();
  t->add_option("--minibatches", o.sf.minibatches, "hpo, ppo: minibatches per epoch")->capture_default_str();
  t->add_option("--clip", o.sf.clip, "hpo, ppo: PPO ratio clip")->capture_default_str();
  t->add_option("--target-kl", o.sf.target_kl, "hpo, ppo: stop a batch's epochs at the first minibatch past this KL (0: never)")
      ->capture_default_str();
  t->add_option("--value-coef", o.sf.value_coef, "hpo, ppo: value-loss weight")->capture_default_str();
  // hpo
  t->add_option("--advantage", s.advantage,
                "hpo: gae (the paper's: critic, standardized losses, PPO epochs) or batch-mean (leave-one-out "
                "mean cost-to-go, cost units, one step per batch)")
      ->capture_default_str();
  t->add_option("--pathwise-coef", o.hpo.pathwise_coef, "hpo with gae: weight of the pathwise loss / its batch std")
      ->capture_default_str();
  // reinforce, gumbel-st
  t->add_option("--baseline", s.baseline, "reinforce: value, batch-mean")->capture_default_str();
  t->add_option("--value-epochs", o.reinforce.value_epochs, "reinforce with a value baseline: value epochs per batch")
      ->capture_default_str();
  t->add_option("--temperature", o.gumbel.temperature, "gumbel-st: softmax temperature")->capture_default_str();
  t->add_option("--seed", o.seed, "Seed of initialization and training scenarios")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  t->add_option("--threads", o.threads, "Threads (0: every core)")->capture_default_str();
  const auto below_2_63 = CLI::Range(std::uint64_t{0}, (std::uint64_t{1} << 63) - 1);
  t->add_option("--dev-seed", o.dev_seed, "Seed of the dev scenarios (model selection), below 2^63")
      ->capture_default_str()
      ->check(below_2_63);
  t->add_option("--test-seed", o.test_seed, "Seed of the test scenarios (the reported cost), below 2^63")
      ->capture_default_str()
      ->check(below_2_63);
  t->add_option("--dev-episodes", o.dev_episodes, "Dev episodes")->capture_default_str();
  t->add_option("--test-episodes", o.test_episodes, "Test episodes")->capture_default_str();
  t->add_option("--eval-every", o.eval_every, "Dev evaluation every N iterations (0: max(10, iterations / 25))")
      ->capture_default_str();
  t->add_option("--param-average", o.param_average,
                "Evaluate and checkpoint the exponential average of the parameters over iterations with this decay "
                "(Polyak averaging, e.g. 0.99; 0: the last iterate)")
      ->capture_default_str();
  t->add_flag("--sample-eval", s.sample_eval, "Evaluate the stochastic policy instead of its most likely actions");
  t->add_option("--out", s.out, "Output folder (default runs/<model>)")->type_name("DIR");
  t->add_flag("--quiet", s.quiet, "No progress line");
  t->add_option("--stdlib", s.compile.stdlib_dirs, "Extra folder to search for imported modules")->type_name("DIR");
  t->add_option("--params", s.compile.params_file, "JSON file with param values")->type_name("FILE");
  t->add_option("--set", s.compile.sets, "Override a param: NAME=VALUE")->type_name("NAME=VALUE");
  t->add_flag("--strict", s.compile.strict, "Treat warnings (e.g. jumps hpoc cannot reformulate) as errors");
  t->add_flag("--no-reformulate", s.no_reformulate,
              "Report jumps but do not rewrite them into hybrid form (the checkpoint remembers it)");
  t->add_option("-O", s.compile.opt_level, "LLVM optimization level: 2 (default) or 0 (fast compile)")
      ->check(CLI::IsMember({0, 2}));
  t->add_option("--config", s.config, "TOML file of options, keys as the long flags (lr = 0.001); flags win")
      ->type_name("FILE");

  auto add_checkpoint_options = [&](CLI::App* cmd) {
    cmd->add_option("checkpoint", s.checkpoint, "Checkpoint written by hpoc train")->required()->type_name("CKPT");
    cmd->add_option("--seed", s.seed, "Scenario seed below 2^63 (default: the run's test seed)")
        ->check(CLI::Range(std::uint64_t{0}, (std::uint64_t{1} << 63) - 1));
    cmd->add_option("--threads", s.threads, "Threads (0: every core)");
    cmd->add_flag("--allow-changed-model", s.allow_changed, "Use the model even if its sources changed since training");
    cmd->add_option("--stdlib", s.compile.stdlib_dirs, "Extra folder to search for imported modules")->type_name("DIR");
  };
  s.eval = app.add_subcommand("eval", "Evaluate a trained policy on held-out test scenarios");
  add_checkpoint_options(s.eval);
  s.eval->add_option("--episodes", s.episodes, "Episodes (default: the run's test episodes)");
  s.simulate = app.add_subcommand("simulate", "Write a trained policy's trajectories (state, actions, cost per step)");
  add_checkpoint_options(s.simulate);
  s.simulate->add_option("--episodes", s.episodes, "Episodes")->required();
  s.simulate->add_option("--csv", s.csv, "Output CSV file (- for standard output)")->capture_default_str();
}

TrainCommands::~TrainCommands() = default;

bool TrainCommands::parsed() const { return state_->train->parsed() || state_->eval->parsed() || state_->simulate->parsed(); }

int TrainCommands::run() const {
  if (state_->train->parsed()) return state_->run_train();
  if (state_->eval->parsed()) return state_->run_eval();
  return state_->run_simulate();
}

// Options from the TOML file fill in what the command line left unset.
void TrainCommands::State::apply_config() const {
  if (!std::filesystem::is_regular_file(config)) throw std::invalid_argument(config + ": cannot read the config file");
  toml::table table;
  try {
    table = toml::parse_file(config);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw std::invalid_argument(config + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) +
                                ": " + std::string(e.description()));
  }
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    const auto line = std::to_string(key.source().begin.line), column = std::to_string(key.source().begin.column);
    const std::string where = config + ":" + line + ":" + column + ": ";
    CLI::Option* option = name == "config" || name == "file" ? nullptr : train->get_option_no_throw("--" + name);
    if (!option) throw std::invalid_argument(where + "'" + name + "' is not an option of hpoc train");
    if (option->count() > 0) continue;
    auto text = [&](const toml::node& value) -> std::string {
      if (auto v = value.value<std::string>()) return *v;
      if (value.is_boolean()) return *value.value<bool>() ? "true" : "false";
      if (value.is_integer()) return std::to_string(*value.value<std::int64_t>());
      if (value.is_floating_point()) {
        std::ostringstream out;
        out.precision(17);
        out << *value.value<double>();
        return out.str();
      }
      throw std::invalid_argument(where + "'" + name + "' takes a string, number or boolean");
    };
    if (const toml::array* values = node.as_array()) {
      for (const auto& v : *values) option->add_result(text(v));
    } else {
      option->add_result(text(node));
    }
    try {
      option->run_callback();
    } catch (const CLI::ParseError& e) {
      throw std::invalid_argument(where + e.what());
    }
  }
}

int TrainCommands::State::run_train() const {
  hpo::TrainOptions o = options;
  try {
    if (!config.empty()) {
      apply_config();
      o = options;
    }
    o.algo = hpo::parse_algo(algo);
    o.hpo.advantage = hpo::parse_advantage(advantage);
    o.reinforce.baseline = hpo::parse_baseline(baseline);
    o.schedule = hpo::parse_schedule(schedule);
    o.hidden = parse_hidden(hidden);
    o.precision = hpo::parse_precision(precision);
    o.greedy_eval = !sample_eval;
    o.per_option = !choice_input;
    // NaN leaves a rate to the algorithm; given explicitly, it is a mistake.
    for (auto [flag, value] : {std::pair{"--lr", o.lr}, std::pair{"--continuous-lr-scale", o.continuous_lr_scale}})
      if (train->count(flag) > 0 && !(value > 0 && std::isfinite(value)))
        throw std::invalid_argument(std::string(flag) + " must be a positive number");
    if (train->count("--gae-gamma") > 0 && std::isnan(o.sf.gae_gamma))
      throw std::invalid_argument("--gae-gamma must be in [0, 1]");
  } catch (const std::invalid_argument& e) {
    std::cerr << "hpoc train: error: " << e.what() << '\n';
    return 2;
  }
  std::unique_ptr<hpo::Model> model;
  try {
    hpo::CompileOptions c = compile;
    c.reformulate = !no_reformulate;
    model = std::make_unique<hpo::Model>(hpo::compile_file(file, c));
  } catch (const hpo::CompileError& e) {
    std::cerr << e.what();
    return 1;
  }
  std::cerr << model->warnings();  // jumps left alone train with a biased gradient: say so before training
  o.out_dir = out.empty() ? (std::filesystem::path("runs") / model->name()).string() : out;
  std::unique_ptr<hpo::Trainer> trainer;
  try {
    trainer = std::make_unique<hpo::Trainer>(*model, o);
  } catch (const std::invalid_argument& e) {
    std::cerr << "hpoc train: error: " << e.what() << '\n';
    return 2;
  } catch (const std::runtime_error& e) {
    std::cerr << "hpoc train: error: " << e.what() << '\n';
    return 1;
  }
  const auto ckpt = (std::filesystem::path(o.out_dir) / "policy.ckpt").string();
  std::cerr << "training " << model->name() << " with " << hpo::to_string(o.algo) << ": " << o.iterations
            << " iterations x " << o.batch << " episodes x " << (o.horizon > 0 ? o.horizon : model->horizon())
            << " steps (compiled in " << std::lround(model->compile_seconds() * 1e3) << " ms)\n";
  Progress progress(o.iterations, quiet);
  try {
    trainer->train([&](const hpo::IterationStats& s) { progress.update(s); });
  } catch (const hpo::TrainingError& e) {
    progress.interrupt();
    std::cerr << file << ": error: training stopped: " << e.what() << '\n';
    if (trainer->best()) std::cerr << "the last good checkpoint is kept: " << ckpt << '\n';
    return 1;
  }
  const hpo::Checkpoint* best = trainer->best();
  if (!best) {
    std::cerr << "hpoc train: error: no dev evaluation gave a finite cost; no checkpoint written\n";
    return 1;
  }
  try {
    hpo::Evaluation test = best->evaluate(*model, o.test_seed, o.test_episodes, o.threads);
    const auto& h = trainer->history();
    std::printf("%s: test cost %.6g +- %.3g (95%% CI, %lld episodes, seed %llu) from iteration %lld (dev %.6g); %s in %s\n",
                model->name().c_str(), test.mean, test.ci95, static_cast<long long>(o.test_episodes),
                static_cast<unsigned long long>(o.test_seed), static_cast<long long>(best->iteration()),
                best->dev_cost(), hpo::to_string(o.algo).c_str(), duration_text(h.back().seconds).c_str());
    print_per_period(*model, o.horizon, test);
    std::printf("  checkpoint %s\n  metrics    %s\n  curve      %s\n", ckpt.c_str(),
                (std::filesystem::path(o.out_dir) / "metrics.csv").c_str(),
                (std::filesystem::path(o.out_dir) / "learning_curve.svg").c_str());
  } catch (const hpo::TrainingError& e) {
    std::cerr << file << ": error: the test evaluation failed: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

int TrainCommands::State::run_eval() const {
  try {
    hpo::Checkpoint ckpt = hpo::Checkpoint::load(checkpoint);
    hpo::Model model = ckpt.compile_model(compile, allow_changed);
    const auto& o = ckpt.options();
    const std::uint64_t s = eval->count("--seed") ? seed : o.test_seed;
    if (eval->count("--episodes") && episodes < 1) throw std::invalid_argument("--episodes must be at least 1");
    const std::int64_t n = eval->count("--episodes") ? episodes : o.test_episodes;
    hpo::Evaluation e = ckpt.evaluate(model, s, n, threads);
    std::printf("%s: test cost %.6g +- %.3g (95%% CI, %lld episodes, seed %llu); trained with %s, iteration %lld\n",
                model.name().c_str(), e.mean, e.ci95, static_cast<long long>(n), static_cast<unsigned long long>(s),
                hpo::to_string(o.algo).c_str(), static_cast<long long>(ckpt.iteration()));
    print_per_period(model, o.horizon, e);
    return 0;
  } catch (const hpo::CompileError& e) {
    std::cerr << e.what();
  } catch (const std::exception& e) {
    std::cerr << "hpoc eval: error: " << e.what() << '\n';
  }
  return 1;
}

int TrainCommands::State::run_simulate() const {
  try {
    if (episodes < 1) throw std::invalid_argument("--episodes must be at least 1");
    hpo::Checkpoint ckpt = hpo::Checkpoint::load(checkpoint);
    hpo::Model model = ckpt.compile_model(compile, allow_changed);
    const std::uint64_t s = simulate->count("--seed") ? seed : ckpt.options().test_seed;
    if (csv == "-") {
      ckpt.simulate(model, s, episodes, std::cout);
      return 0;
    }
    // Written beside the target and renamed, so a failure leaves no half file behind.
    const std::string temporary = csv + ".tmp";
    try {
      std::ofstream out(temporary);
      if (!out) throw std::runtime_error("cannot write " + csv);
      ckpt.simulate(model, s, episodes, out);
      out.close();
      std::filesystem::rename(temporary, csv);
    } catch (...) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw;
    }
    const auto horizon = ckpt.options().horizon > 0 ? ckpt.options().horizon : model.horizon();
    std::cerr << "wrote " << episodes << " episodes x " << horizon << " steps to " << csv << '\n';
    return 0;
  } catch (const hpo::CompileError& e) {
    std::cerr << e.what();
  } catch (const std::exception& e) {
    std::cerr << "hpoc simulate: error: " << e.what() << '\n';
  }
  return 1;
}

}  // namespace hpoc
