// train.hpp: training policies for a compiled model: the options of every estimator (HPO and the
// baselines), the Trainer that runs iterations and keeps the best policy, and checkpoints that
// evaluate and simulate a trained policy.
#pragma once

#include <cmath>
#include <functional>
#include <iosfwd>
#include <memory>

#include "hpo/hpo.hpp"

namespace hpo {

enum class Algo {
  HPO,           // pathwise through the simulator + score function for discrete choices, cross term kept
  HPODecoupled,  // the same without the cross term (the log-probability term stops at the state)
  PPO,           // clipped score function for a categorical x Gaussian policy, GAE critic
  Reinforce,     // plain score function
  GumbelST,      // straight-through Gumbel-softmax, pathwise only (biased)
};
// The score-function part of hpo (and reinforce's baseline): a critic with GAE, as the paper runs
// it, or the leave-one-out batch mean of the costs-to-go with no critic (the earlier default).
enum class Advantage { GAE, BatchMean };
enum class Baseline { Value, BatchMean };  // reinforce: the value network (Monte Carlo fit) or the batch mean
enum class Schedule { Constant, Linear, Cosine };
// The arithmetic of the policy networks. The simulator and its adjoints stay double; parameters,
// the optimizer and checkpoints too: f32 runs the networks on float copies of the weights.
enum class Precision { F32, F64 };

// Names as the command line spells them ("hpo", "hpo-decoupled", "ppo", "reinforce", "gumbel-st";
// "gae", "batch-mean"; "value", "batch-mean"; "constant", "linear", "cosine"; "f32", "f64").
// parse_* throw std::invalid_argument.
std::string to_string(Algo algo);
std::string to_string(Advantage advantage);
std::string to_string(Baseline baseline);
std::string to_string(Schedule schedule);
std::string to_string(Precision precision);
Algo parse_algo(const std::string& name);
Advantage parse_advantage(const std::string& name);
Baseline parse_baseline(const std::string& name);
Schedule parse_schedule(const std::string& name);
Precision parse_precision(const std::string& name);

// The likelihood-ratio machinery that hpo (with GAE advantages) and ppo share, with the paper's
// settings: a value network on the observations, GAE with its own gamma and lambda, and after each
// batch's first step, epochs x minibatches of PPO-clipped steps that stop at the first minibatch
// whose approximate KL from the batch's policy passes target_kl.
struct ScoreFunctionOptions {
  double gae_gamma = NAN;  // NaN picks the algorithm's (gae_gamma below)
  double gae_lambda = 0.96;
  int epochs = 4;         // 0: only the full-batch first step
  int minibatches = 4;
  double clip = 0.15;
  double target_kl = 0.015;  // 0: never stop early
  double value_coef = 0.15;
};

struct HpoOptions {  // hpo and hpo-decoupled
  // gae: the paper's loss, in units of batch standard deviations: pathwise_coef x (the pathwise
  // loss / its batch std) + normalized GAE advantages. batch-mean: the earlier variant, in cost
  // units: the pathwise loss + log pi x (G_t - leave-one-out mean), no critic, no epochs.
  Advantage advantage = Advantage::GAE;
  double pathwise_coef = 5.0;
};

struct ReinforceOptions {
  Baseline baseline = Baseline::BatchMean;
  int value_epochs = 2;  // value-network epochs per iteration when it is the baseline
};

struct GumbelOptions {
  double temperature = 1.0;
};

// Options common to every algorithm, then one section per algorithm (sf: shared by hpo and ppo).
struct TrainOptions {
  Algo algo = Algo::HPO;
  // Many small batches: the pathwise gradient is precise enough that more updates per simulated
  // step pay (on examples/inventory.hpo, batch 64 beats 256 at every budget; see docs/training.md).
  std::int64_t iterations = 1200;
  std::int64_t batch = 64;           // episodes per iteration
  std::int64_t horizon = 0;          // 0: the model's
  double lr = NAN;                   // Adam, for the policy; NaN picks the algorithm's (learning_rate)
  double value_lr = 1e-3;            // Adam, for the value network
  Schedule schedule = Schedule::Constant;
  double grad_clip = 5.0;            // per group (discrete head, continuous head): max gradient norm; 0: off
  std::vector<int> hidden = {64, 64};
  Precision precision = Precision::F32;
  bool gaussian = false;             // continuous head; ppo and reinforce always use a Gaussian
  // The continuous head has one output per (continuous component, discrete option), the chosen
  // option's reaching the simulator (the paper's); false: one output per component, the one-hot
  // choices fed in beside the observation.
  bool per_option = true;
  // Every network also maps its inputs linearly to its outputs (Mlp's linear_skip).
  bool linear_skip = true;
  // The continuous head's (and log std's) learning rate over lr; NaN picks the algorithm's
  // (continuous_lr_scale below).
  double continuous_lr_scale = NAN;
  double init_log_std = 0.0;
  // Entropy bonus on the discrete head, annealed linearly from entropy to entropy_final. Against
  // normalized advantages (hpo with gae, ppo) or, for the estimators whose loss is in cost units,
  // in units of the first batch's mean cost per step. NaN picks the algorithm's default.
  double entropy = NAN;
  double entropy_final = NAN;
  std::uint64_t seed = 0;
  int threads = 0;                   // 0: every core
  std::uint64_t dev_seed = 1000, test_seed = 1001;  // training scenarios use seeds >= 2^63
  std::int64_t dev_episodes = 1024, test_episodes = 1024;
  std::int64_t eval_every = 0;       // dev evaluation every so many iterations, after the first and the
                                     // last; 0: max(10, iterations / 25)
  bool greedy_eval = true;           // evaluate the most likely choice and the Gaussian mean
  // Polyak averaging: when positive, the policy evaluated on dev scenarios, checkpointed and
  // tested is the exponential average of the parameters after each iteration, with this decay per
  // iteration (bias-corrected, so early averages are not pulled toward the initialization); 0: the
  // last iterate. Training itself always continues from the last iterate.
  double param_average = 0.0;
  std::string out_dir;               // metrics.csv, learning_curve.svg, policy.ckpt; empty: none

  ScoreFunctionOptions sf;
  HpoOptions hpo;
  ReinforceOptions reinforce;
  GumbelOptions gumbel;
};

// The entropy bonus's start and end as `options` would run them (the algorithm's defaults for NaN).
struct EntropySchedule {
  double start, end;
};
EntropySchedule entropy_schedule(const TrainOptions& options);

// The policy's learning rate as `options` would run it: 1e-4 for ppo, 1e-3 for the others, unless set.
double learning_rate(const TrainOptions& options);
// The continuous head's learning rate over learning_rate(): 3 where the pathwise gradient trains it
// (hpo, hpo-decoupled, gumbel-st), 1 for ppo and reinforce, unless set.
double continuous_lr_scale(const TrainOptions& options);
// GAE's gamma as `options` would run it: 0.93 for ppo, 0.99 for hpo and hpo-decoupled, unless set.
double gae_gamma(const TrainOptions& options);

// What one iteration measured. Costs are mean sum_t discount^t cost_t per episode.
struct IterationStats {
  std::int64_t iteration = 0;      // 1 for the first
  std::int64_t samples = 0;        // environment steps simulated so far (dev and test excluded)
  double seconds = 0;              // wall time since training began
  double train_cost = NAN;         // of this iteration's training batch
  double dev_cost = NAN;           // when evaluated this iteration
  double best_dev_cost = NAN;
  double grad_norm = NAN;          // of the policy gradient before clipping
  double entropy = NAN;            // of the discrete head, per step
  double lr = NAN;
  // hpo, at dev evaluations: |cross term| / |gradient|, and the cosine between the cross term's
  // means over two halves of the batch (about 0 when it is noise, about 1 when it is signal).
  double cross_ratio = NAN;
  double cross_alignment = NAN;
};

struct Evaluation {
  double mean = NAN;
  double ci95 = NAN;  // half-width of the 95% confidence interval: 1.96 sd / sqrt(n)
  std::vector<double> episode_costs;
};

// Thrown when the model or the policy produces a value that is not finite; what() names the step,
// episode and state element. Training has stopped; the last good checkpoint is kept.
class TrainingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where the time of rollouts and gradients went, in seconds summed over the threads, and the
// arithmetic the policy networks did (dense layers: forward, backward and weight gradients).
struct TimeSplit {
  double simulator = 0;        // the JIT-compiled step, observe and their adjoints, with the noise draws
  double policy_forward = 0;   // the networks' forward passes and the heads (normalize, sample, squash)
  double policy_backward = 0;  // backward passes through the networks and the heads
  double weight_gradient = 0;  // the networks' weight gradients
  double policy_flops = 0;
};

class Checkpoint;

class Trainer {
 public:
  // The model must outlive the trainer. Throws std::invalid_argument for bad options.
  Trainer(const Model& model, TrainOptions options);
  Trainer(Trainer&&) noexcept;
  ~Trainer();

  const TrainOptions& options() const;
  // All remaining iterations; progress is called after each. Throws TrainingError.
  void train(const std::function<void(const IterationStats&)>& progress = {});
  IterationStats iterate();  // one iteration
  const std::vector<IterationStats>& history() const;

  // The current policy on `episodes` scenarios of `seed` (greedy as the options say).
  Evaluation evaluate(std::uint64_t seed, std::int64_t episodes) const;
  // One estimate, from `episodes` training scenarios of `seed`, of the gradient of the expected
  // sum_t discount^t cost_t per episode with respect to the policy parameters, by the options'
  // algorithm (hpo, hpo-decoupled, gumbel-st, reinforce). Changes nothing but, before the first
  // iteration, the observation statistics (from a first batch, as the first iteration would).
  std::vector<double> gradient(std::uint64_t seed, std::int64_t episodes);
  std::span<double> parameters();
  // Cumulative since the trainer was made (or the last reset_time_split()), dev evaluations included.
  TimeSplit time_split() const;
  void reset_time_split();
  // The policy's probabilities and continuous actions, for tests and tools: for one observation,
  // the log-probability of each choice per discrete component (concatenated) and the continuous
  // action (the mean for a Gaussian head).
  void act(std::span<const double> obs, std::span<const std::int32_t> disc, std::span<double> log_probs,
           std::span<double> cont) const;

  Checkpoint checkpoint() const;  // the current policy
  const Checkpoint* best() const;   // the best by dev cost so far (null before the first dev evaluation)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A trained policy with what it was trained on: the model's path, a hash of its sources, the param
// values and the options. Files are JSON, written to a temporary file and renamed into place.
class Checkpoint {
 public:
  Checkpoint();
  Checkpoint(const Checkpoint&);
  Checkpoint& operator=(const Checkpoint&);
  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;
  ~Checkpoint();

  static Checkpoint load(const std::string& path);  // throws std::runtime_error naming the file
  void save(const std::string& path) const;

  const std::string& model_path() const;
  const std::string& source_hash() const;
  const TrainOptions& options() const;
  std::int64_t iteration() const;
  double dev_cost() const;

  // Compiles the model it was trained on with the stored param values. Throws CompileError, or
  // std::runtime_error when the sources changed since training (unless allow_changed).
  Model compile_model(CompileOptions options = {}, bool allow_changed = false) const;
  Evaluation evaluate(const Model& model, std::uint64_t seed, std::int64_t episodes, int threads = 0) const;
  // Writes one CSV row per episode and step: episode, t, the state, the actions, the cost.
  void simulate(const Model& model, std::uint64_t seed, std::int64_t episodes, std::ostream& csv) const;

 private:
  friend class Trainer;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hpo
