// main.cpp: the hpoc command line: check models, print each pipeline stage as text, train.
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "analysis/split.hpp"
#include "autodiff/adjoint.hpp"
#include "ir/lower.hpp"
#include "jit/jit.hpp"
#include "sema/param_values.hpp"
#include "sema/sema.hpp"
#include "train_commands.hpp"

namespace {

struct Options {
  std::vector<std::string> files;
  std::string emit;
  std::vector<std::string> stdlib_dirs;
  std::string params_file;
  std::vector<std::string> sets;
  bool strict = false;
  bool no_reformulate = false;
  bool time = false;
  int opt_level = 2;
  std::string color = "auto";
};

bool use_color(const std::string& mode) {
  if (mode == "always") return true;
  if (mode == "never") return false;
  return isatty(STDERR_FILENO) != 0;
}

std::string summary(const hpo::CheckedModel& m) {
  auto count = [](const auto& table) {
    std::int64_t n = 0;
    for (const auto& info : table) n += info.symbol->type.elements();
    return n;
  };
  std::int64_t discrete = 0, continuous = 0;
  for (const auto& a : m.actions) (a.discrete ? discrete : continuous) += a.symbol->type.elements();
  if (m.is_module)
    return "module " + m.name + ": " + std::to_string(m.functions.size()) + " functions, " +
           std::to_string(m.consts.size()) + " consts";
  return "model " + m.name + ": " + std::to_string(count(m.states)) + " state values, " + std::to_string(discrete) +
         " discrete and " + std::to_string(continuous) + " continuous actions, " + std::to_string(count(m.noises)) +
         " noise values, " + std::to_string(count(m.params)) + " param values, horizon " + std::to_string(m.horizon);
}

enum class Command { Emit, Check, Analyze };

// Checks one file and runs the pipeline as far as the command needs, printing what it asks for.
// Returns the process exit code.
int run_file(const std::string& path, const Options& opt, Command command) {
  hpo::SourceManager sources;
  hpo::Diagnostics diags(sources, std::cerr, use_color(opt.color));
  diags.set_warnings_as_errors(opt.strict);
  hpo::CheckOptions check_options;
  check_options.stdlib_dirs = opt.stdlib_dirs;
  check_options.sets = opt.sets;
  for (const auto& d : hpo::default_stdlib_dirs()) check_options.stdlib_dirs.push_back(d);
  auto model = hpo::check_file(path, sources, diags, check_options);
  if (!model) return 1;
  hpo::ParamValues params;
  if (!hpo::resolve_param_values(*model, opt.params_file, opt.sets, params, sources, diags)) return 1;
  if (opt.emit == "ast") {
    std::cout << hpo::print_ast(*model);
    return diags.has_errors() ? 1 : 0;
  }
  if (model->is_module) {
    if (command == Command::Check) {
      std::cout << path << ": ok (" << summary(*model) << ")\n";
      return 0;
    }
    diags.error_at(path, "a module has no step to lower or analyze; this takes a model");
    return 1;
  }
  auto program = hpo::ir::lower(*model, diags);
  if (!program) return 1;
  if (opt.emit == "ir") {
    std::cout << hpo::ir::print(*program);
    return diags.has_errors() ? 1 : 0;
  }
  hpo::analysis::Options analysis_options;
  analysis_options.reformulate = !opt.no_reformulate;
  hpo::analysis::Report report = hpo::analysis::analyze(*program, diags, analysis_options);
  if (diags.has_errors()) return 1;  // --strict made a warning an error
  hpo::jit::Options jit_options;
  jit_options.level = opt.opt_level == 0 ? hpo::codegen::OptLevel::O0 : hpo::codegen::OptLevel::O2;
  if (opt.emit == "hybrid") {
    std::cout << hpo::ir::print(*program);
  } else if (opt.emit == "split") {
    std::cout << hpo::analysis::print_split(report);
  } else if (opt.emit == "adjoint") {
    std::cout << hpo::autodiff::print(hpo::autodiff::differentiate(*program), program->layout);
  } else if (opt.emit == "llvm") {
    std::string error;
    std::string text = hpo::jit::emit_llvm(*program, hpo::autodiff::differentiate(*program), jit_options, &error);
    if (text.empty()) {
      diags.error_at(path, "LLVM code generation failed: " + error);
      return 1;
    }
    std::cout << text;
  } else if (command == Command::Analyze) {
    std::cout << hpo::analysis::print_report(report, sources);
  } else if (command == Command::Check) {
    std::string gates;
    if (const auto n = report.generated.size(); n > 0)
      gates = ", " + std::to_string(n) + " generated gate action" + (n == 1 ? "" : "s");
    std::cout << path << ": ok (" << summary(*model) << gates << ")\n";
    if (opt.time) {
      auto start = std::chrono::steady_clock::now();
      auto adjoints = hpo::autodiff::differentiate(*program);
      double adjoint_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::string error;
      auto kernels = hpo::jit::Kernels::compile(*program, adjoints, jit_options, &error);
      if (!kernels) {
        diags.error_at(path, "JIT compilation failed: " + error);
        return 1;
      }
      std::printf("  compile times (-O%d): adjoints %.1f ms, LLVM IR %.1f ms, optimization %.1f ms, JIT %.1f ms, total %.1f ms\n",
                  opt.opt_level, adjoint_seconds * 1e3, kernels->codegen_seconds * 1e3, kernels->optimize_seconds * 1e3,
                  kernels->jit_seconds * 1e3,
                  (adjoint_seconds + kernels->codegen_seconds + kernels->optimize_seconds + kernels->jit_seconds) * 1e3);
    }
  }
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app{"hpoc: compiler and trainer for differentiable hybrid simulators (.hpo models)", "hpoc"};
  app.set_version_flag("--version", std::string("hpoc ") + HPOC_VERSION);
  app.require_subcommand(0, 1);
  Options opt;

  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("--stdlib", opt.stdlib_dirs, "Extra folder to search for imported modules")->type_name("DIR");
    cmd->add_option("--params", opt.params_file, "JSON file with param values")->type_name("FILE");
    cmd->add_option("--set", opt.sets, "Override a param: NAME=VALUE (a number or JSON array)")->type_name("NAME=VALUE");
    cmd->add_flag("--strict", opt.strict, "Treat warnings (e.g. jumps hpoc cannot reformulate) as errors");
    cmd->add_flag("--no-reformulate", opt.no_reformulate, "Report jumps but do not rewrite them into hybrid form");
    cmd->add_option("-O", opt.opt_level, "LLVM optimization level: 2 (default) or 0 (fast compile)")
        ->check(CLI::IsMember({0, 2}));
    cmd->add_option("--color", opt.color, "Colored diagnostics")->check(CLI::IsMember({"auto", "always", "never"}));
  };

  // hybrid: the IR after reformulation, with the generated gate actions in place.
  const std::vector<std::string> stages{"ast", "ir", "hybrid", "split", "adjoint", "llvm"};
  app.add_option("--emit", opt.emit, "Print a pipeline stage as text")->check(CLI::IsMember(stages));
  app.add_option("file", opt.files, "Model file (.hpo) to compile with --emit")->type_name("FILE");
  add_common(&app);

  CLI::App* check = app.add_subcommand("check", "Check model files and report diagnostics");
  check->add_option("files", opt.files, "Model files (.hpo)")->required()->type_name("FILE");
  add_common(check);
  check->add_flag("--time", opt.time, "Also JIT-compile the kernels and report how long each stage took");
  check->add_option("--emit", opt.emit, "Also print a pipeline stage as text")->check(CLI::IsMember(stages));

  CLI::App* analyze = app.add_subcommand("analyze", "Show the smooth/discrete split: regimes, kinks and jumps");
  analyze->add_option("files", opt.files, "Model files (.hpo)")->required()->type_name("FILE");
  add_common(analyze);

  hpoc::TrainCommands train_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (train_commands.parsed()) {
    // The options before a subcommand belong to --emit; train, eval and simulate take their own.
    for (const CLI::Option* option : app.get_options())
      if (option->nonpositional() && option->count() > 0) {
        std::cerr << "hpoc: error: " << option->get_name()
                  << " before the subcommand is not applied to it; give it after the subcommand\n";
        return 2;
      }
    return train_commands.run();
  }

  Command command = check->parsed() ? Command::Check : analyze->parsed() ? Command::Analyze : Command::Emit;
  bool is_check = command != Command::Emit;
  if (!is_check && opt.emit.empty()) {
    std::cerr << app.help();
    return opt.files.empty() && argc == 1 ? 0 : 2;
  }
  if (opt.files.empty()) {
    std::cerr << "hpoc: error: no input file\n";
    return 2;
  }
  if (!is_check && opt.files.size() != 1) {
    std::cerr << "hpoc: error: --emit takes one file\n";
    return 2;
  }
  int status = 0;
  for (const auto& path : opt.files) status = std::max(status, run_file(path, opt, command));
  return status;
}

// The front end recurses over nested input; give it a stack far above any limit it enforces.
int run_with_large_stack(int argc, char** argv) {
  struct Call {
    int argc;
    char** argv;
    int result;
  } call{argc, argv, 0};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, std::size_t{512} << 20);
  pthread_t thread;
  auto body = [](void* p) -> void* {
    auto* c = static_cast<Call*>(p);
    try {
      c->result = run(c->argc, c->argv);
    } catch (const std::exception& e) {
      std::cerr << "hpoc: internal error: " << e.what() << '\n';
      c->result = 3;
    }
    return nullptr;
  };
  if (pthread_create(&thread, &attr, body, &call) != 0) return run(argc, argv);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  return call.result;
}

}  // namespace

int main(int argc, char** argv) {
  // Training allocates and frees the same large matrices every iteration; glibc would hand them
  // back to the kernel each time and pay page faults (a tenth of training time) to get them again.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc accepts on 64-bit
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  try {
    return run_with_large_stack(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "hpoc: internal error: " << e.what() << '\n';
    return 3;
  }
}
