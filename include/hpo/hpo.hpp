// hpo.hpp: the C++ API of hpoc: compile a .hpo model to native kernels, run batched
// environments, and differentiate steps or whole stored trajectories.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace hpo {

namespace detail {
struct ModelAccess;
}

struct CompileOptions {
  std::vector<std::string> stdlib_dirs;  // searched for imports after the model's own folder
  std::string params_file;               // JSON param values, as with --params
  std::vector<std::string> sets;         // "name=value" overrides, as with --set
  bool strict = false;                   // jumps that cannot be reformulated are errors
  bool reformulate = true;               // rewrite jumps into hybrid form (generated gate actions)
  int opt_level = 2;                     // LLVM optimization: 2 or 0
};

// The periods [first, end) of an episode that count toward a total (period t is step t).
struct PeriodWindow {
  std::int64_t first = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - first; }
  bool contains(std::int64_t t) const { return first <= t && t < end; }
  friend bool operator==(const PeriodWindow&, const PeriodWindow&) = default;
};

// Thrown by compile_* with every diagnostic, formatted as hpoc prints them.
class CompileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A compiled model: its layout (names and sizes of every array), param values and JIT-compiled
// kernels. Movable; its const methods may be called from several threads at once.
class Model {
 public:
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const std::string& name() const;
  std::int64_t horizon() const;
  double discount() const;

  // Which periods count: report_window for the reported cost (`report periods lo..hi`), train_window
  // for the training loss (`train periods lo..hi`); every period when the model declares none.
  // For an episode of `horizon` steps (0: the model's), end is clipped to it, and first too (an
  // empty window) when the episode ends before the window starts.
  PeriodWindow report_window(std::int64_t horizon = 0) const;
  PeriodWindow train_window(std::int64_t horizon = 0) const;
  // Whether step or observe read period(), the step index: their kernels then need the right t.
  bool uses_period() const;

  // Element names, row-major, e.g. "on_hand[2]". Generated gate actions are discrete actions.
  const std::vector<std::string>& param_names() const;
  const std::vector<std::string>& state_names() const;
  const std::vector<std::string>& disc_names() const;
  const std::vector<std::string>& cont_names() const;
  const std::vector<std::string>& noise_names() const;
  const std::vector<std::string>& obs_names() const;
  const std::vector<std::int64_t>& disc_choices() const;
  const std::vector<double>& cont_lower() const;  // -inf when unbounded
  const std::vector<double>& cont_upper() const;  // +inf when unbounded
  std::size_t num_state() const { return state_names().size(); }
  std::size_t num_disc() const { return disc_names().size(); }
  std::size_t num_cont() const { return cont_names().size(); }
  std::size_t num_noise() const { return noise_names().size(); }
  std::size_t num_obs() const { return obs_names().size(); }
  std::size_t num_params() const { return param_names().size(); }

  // Param values (flat, row-major). set_param takes a declared param's name and all its values
  // (or one value for every element); throws std::invalid_argument on an unknown name, a wrong
  // size or a non-finite value.
  std::span<const double> params() const;
  void set_param(const std::string& name, std::span<const double> values);
  void set_param(const std::string& name, double value);

  std::string analysis() const;  // the smooth/discrete split, as `hpoc analyze` prints it
  double compile_seconds() const;
  // The warnings of the compile (jumps left alone, ...), formatted as `hpoc check` prints them; empty
  // when there were none.
  const std::string& warnings() const;

  // Per-sample kernels (ABI of docs/pipeline.md). Adjoint outputs are added to (+=). t is the step
  // index that period() reads: the step taken, or for observe the step about to be taken.
  void init(std::span<const double> noise0, std::span<double> state) const;
  void observe(std::span<const double> state, std::span<double> obs, std::int64_t t = 0) const;
  double step(std::span<const double> state, std::span<const std::int32_t> disc, std::span<const double> cont,
              std::span<const double> noise, std::span<double> next_state, std::int64_t t = 0) const;
  void step_adjoint(std::span<const double> state, std::span<const std::int32_t> disc, std::span<const double> cont,
                    std::span<const double> noise, std::span<const double> next_state_bar, double cost_bar,
                    std::span<double> state_bar, std::span<double> cont_bar, std::int64_t t = 0) const;
  void observe_adjoint(std::span<const double> state, std::span<const double> obs_bar, std::span<double> state_bar,
                       std::int64_t t = 0) const;

 private:
  friend struct detail::ModelAccess;
  friend class BatchEnv;
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parse, check, analyze, differentiate and JIT-compile. Throws CompileError.
Model compile_file(const std::string& path, const CompileOptions& options = {});
Model compile_string(const std::string& source, const std::string& name = "model.hpo",
                     const CompileOptions& options = {});

// A hash of every source file the model was compiled from (FNV-1a, 64 bits, hex), and the main
// file's absolute path ("" for compile_string): what a checkpoint records of its model.
std::string source_hash(const Model& model);
const std::string& source_path(const Model& model);

struct BatchEnvOptions {
  std::int64_t batch = 1;
  std::uint64_t seed = 0;
  bool record = true;  // keep what backward() needs (states, actions, noise of every step)
  // Sample b draws from random stream first_stream + b of the seed: B environments of batch 1
  // with first_stream 0..B-1 see exactly the scenarios of one environment of batch B.
  std::uint64_t first_stream = 0;
};

// B copies of a model's environment stepped together. Arrays are structure-of-arrays: element i
// of sample b is at [i * batch + b]. Sample b draws its noise from its own stream of `seed`, so
// results do not depend on how work is split across threads. Not thread-safe itself; use one
// BatchEnv per thread (they may share one Model).
class BatchEnv {
 public:
  BatchEnv(const Model& model, BatchEnvOptions options);

  void reset(std::uint64_t seed);  // draws the reset noise, runs init, clears the trajectory
  // One step of every sample; disc is [num_disc x batch], cont [num_cont x batch]. Discrete values
  // outside their range throw std::out_of_range.
  void step(std::span<const std::int32_t> disc, std::span<const double> cont);

  std::int64_t batch() const { return batch_; }
  std::int64_t t() const { return t_; }
  std::span<const double> state() const { return state_; }
  std::span<const double> observation() const { return obs_; }
  std::span<const double> cost() const { return cost_; }  // of the last step, per sample
  std::span<const double> noise() const { return noise_; }  // drawn for the last step
  std::span<const double> recorded_state(std::int64_t t) const;  // the state before step t (needs record)
  std::span<const std::int32_t> recorded_disc(std::int64_t t) const;
  std::span<const double> recorded_cont(std::int64_t t) const;

  // The adjoint of the stored trajectory (needs record): given dL/dcost_t ([t()][batch], row t
  // for step t) and optionally dL/dobs_t ([t() + 1][num_obs x batch], observations before step t
  // and after the last), returns dL/dcont_t ([t()][num_cont x batch]) and dL/dstate_0.
  struct Gradients {
    std::vector<double> cont;
    std::vector<double> initial_state;
  };
  Gradients backward(std::span<const double> cost_bar, std::span<const double> obs_bar = {}) const;

  // The same adjoint one step at a time, for callers whose actions depend on the observations (a
  // policy): sweep t = t()-1 down to 0. step_backward adds dL/dstate_t to state_bar and dL/dcont_t
  // to cont_bar given dL/dstate_{t+1} and dL/dcost_t; observe_backward adds dL/dstate_t for
  // dL/dobs_t (t in 0..t()). All arrays are [num x batch].
  void step_backward(std::int64_t t, std::span<const double> next_state_bar, std::span<const double> cost_bar,
                     std::span<double> state_bar, std::span<double> cont_bar) const;
  void observe_backward(std::int64_t t, std::span<const double> obs_bar, std::span<double> state_bar) const;
  // Recorded step t again with other discrete actions (same state, continuous actions and noise).
  void replay_step(std::int64_t t, std::span<const std::int32_t> disc, std::span<double> next_state,
                   std::span<double> cost) const;

 private:
  void draw_noise(std::vector<double>& out);
  void check_disc(std::span<const std::int32_t> disc) const;
  void check_recorded(std::int64_t t, std::int64_t last, const char* what) const;

  const Model* model_;
  std::int64_t batch_;
  bool record_;
  std::uint64_t first_stream_;
  std::int64_t t_ = 0;
  std::vector<std::uint64_t> rng_;  // four words of xoshiro256** state per sample
  std::vector<double> noise_args_;
  std::vector<std::vector<double>> poisson_cdf_;         // per noise draw: a Poisson draw's table, else empty
  std::vector<std::vector<std::uint32_t>> poisson_guide_;  // and where its searches start
  std::vector<double> state_, obs_, cost_, noise_, next_;
  std::vector<double> states_, conts_, noises_;  // recorded, step after step
  std::vector<std::int32_t> discs_;
};

}  // namespace hpo
