// train_commands.hpp: the `hpoc train`, `hpoc eval` and `hpoc simulate` subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace hpoc {

class TrainCommands {
 public:
  explicit TrainCommands(CLI::App& app);
  ~TrainCommands();
  bool parsed() const;  // whether one of them was given
  int run() const;      // the process exit code

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace hpoc
