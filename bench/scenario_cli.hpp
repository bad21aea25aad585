// scenario_cli.hpp: what the reference tools of bench/ share on their command lines: the model with
// its overrides, compiled once, and the dev and test scenarios a policy is tuned and scored on.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>

#include "hpo/hpo.hpp"

namespace hpo::bench {

struct ScenarioOptions {
  std::string model_path;
  hpo::CompileOptions compile;  // --set, --params (when offered), --stdlib
  std::uint64_t dev_seed = 1000;
  std::uint64_t test_seed = 1001;
  std::int64_t episodes = 1024;
};

// The model, --set, --params when `with_params`, --stdlib, the two seeds and the episodes per seed;
// `search` names what chooses on the dev scenarios.
inline void add_scenario_options(CLI::App& app, ScenarioOptions& o, const std::string& search, bool with_params) {
  app.add_option("model", o.model_path, "Model file (.hpo)")->required()->type_name("FILE");
  app.add_option("--set", o.compile.sets, "Override a const or param: NAME=VALUE (a number or JSON array)")
      ->type_name("NAME=VALUE");
  if (with_params) app.add_option("--params", o.compile.params_file, "JSON file with param values")->type_name("FILE");
  app.add_option("--stdlib", o.compile.stdlib_dirs, "Extra folder to search for imported modules")->type_name("DIR");
  app.add_option("--dev-seed", o.dev_seed, "Seed of the scenarios the " + search + " chooses on")->capture_default_str();
  app.add_option("--test-seed", o.test_seed, "Seed of the scenarios the chosen policy is scored on")->capture_default_str();
  app.add_option("--episodes", o.episodes, "Episodes per seed (the batch of one BatchEnv)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

// The compiled model, or nothing once its error is printed (the installed stdlib is searched after
// the --stdlib folders).
inline std::optional<hpo::Model> compile_scenario_model(const ScenarioOptions& o) {
  try {
    return hpo::compile_file(o.model_path, o.compile);
  } catch (const hpo::CompileError& e) {
    std::cerr << e.what();
    return std::nullopt;
  }
}

inline double seconds_since(std::chrono::steady_clock::time_point from) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
}

}  // namespace hpo::bench
