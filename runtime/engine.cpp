// engine.cpp: rollouts, the trajectory's backward sweep and the score-function surrogate on the
// lane kernels, one share of the samples per thread, weight gradients summed by fixed blocks of
// samples.
#include "runtime/engine.hpp"

#include <bit>
#include <chrono>
#include <cmath>
#include <new>

#include "runtime/parallel.hpp"
#include "runtime/random.hpp"
#include "runtime/simd.hpp"

namespace hpo::runtime {

namespace {

constexpr double kHalfLog2Pi = 0.9189385332046727;

// Attributes the time since the last call to a bucket of a worker's TimeSplit.
class Laps {
 public:
  explicit Laps(TimeSplit& split) : split_(split) {}
  TimeSplit& split() { return split_; }
  void to(double TimeSplit::*bucket) {
    const auto now = std::chrono::steady_clock::now();
    split_.*bucket += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  TimeSplit& split_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// One worker's TimeSplit on a cache line of its own.
struct alignas(64) WorkerTime {
  TimeSplit split;
};

// 64-byte aligned storage, so that panel columns start on cache lines.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const AlignedAllocator&) const { return true; }
};
template <class S>
using Buffer = std::vector<S, AlignedAllocator<S>>;

// Grows a buffer to at least `size` zeros; never shrinks, so steady use allocates nothing.
template <class B>
void ensure(B& buffer, std::size_t size) {
  if (buffer.size() < size) buffer.assign(size, typename B::value_type{});
}

// Share w of n samples among `workers`, cut at multiples of the lane count.
template <class S>
std::pair<std::int64_t, std::int64_t> share(std::int64_t n, int workers, int w) {
  auto cut = [&](int i) {
    return i == workers ? n : (n * i / workers) / kLanes<S> * kLanes<S>;
  };
  return {cut(w), cut(w + 1)};
}

// n (at least 1) rounded up to an odd number of units. Arrays laid out at such a stride do not
// fall into the same few sets of the L1 cache, as they do 4 KB apart: the steps of inventory with
// 16 stores ran 7x slower at 512 samples per array than at 500.
std::int64_t odd_units(std::int64_t n, std::int64_t unit) {
  const std::int64_t units = (std::max<std::int64_t>(n, 1) + unit - 1) / unit;
  return (units | 1) * unit;
}

// The simulator's batch for a shard of n samples: n and up to 15 idle ones, an odd number of
// cache lines (eight doubles each) per array.
std::int64_t simulator_batch(std::int64_t n) { return odd_units(n, 8); }

// A panel's leading dimension for n samples: an odd number of whole vectors (columns 2 KB apart
// made the weight gradients 10% slower).
template <class S>
std::int64_t panel_rows(std::int64_t n) {
  return odd_units(n, kLanes<S>);
}

// Weight gradients are summed per block of samples (of a batch, or of a surrogate's minibatch), the
// blocks fixed by the number of samples alone: a thread owns whole blocks, so no sum depends on
// the number of threads.
constexpr int kGradientBlocks = 8;

// Worker w's share of n samples in whole gradient blocks: [begin, end) and its blocks.
struct BlockShare {
  std::int64_t begin, end;
  int first_block, end_block;
};
template <class S>
BlockShare block_share(std::int64_t n, int workers, int w) {
  const int b0 = w * kGradientBlocks / workers, b1 = (w + 1) * kGradientBlocks / workers;
  const std::int64_t begin = share<S>(n, kGradientBlocks, b0).first;
  return {begin, b1 > b0 ? share<S>(n, kGradientBlocks, b1 - 1).second : begin, b0, b1};
}

// The most samples any gradient block of n holds (at least a vector's worth): what scratch sizes take.
template <class S>
std::int64_t largest_block(std::int64_t n) {
  std::int64_t largest = kLanes<S>;
  for (int b = 0; b < kGradientBlocks; ++b) {
    auto [begin, end] = share<S>(n, kGradientBlocks, b);
    largest = std::max(largest, end - begin);
  }
  return largest;
}

// Per component, log-softmax over its logit columns, for rows [0, rows) (padded); with prob, the
// probabilities too.
template <class S>
void log_softmax(const ActionSpace& space, std::int64_t rows, const S* logits, std::int64_t ld, S* out,
                 S* prob = nullptr) {
  using V = simd::Vec<S>;
  for (std::int64_t r = 0; r < rows; r += kLanes<S>) {
    int column = 0;
    for (int count : space.choices) {
      V top = simd::load<S>(logits + column * ld + r);
      for (int k = 1; k < count; ++k) top = simd::max<S>(top, simd::load<S>(logits + (column + k) * ld + r));
      V sum{};
      for (int k = 0; k < count; ++k) {
        const V e = simd::exp<S>(simd::load<S>(logits + (column + k) * ld + r) - top);
        if (prob) simd::store<S>(prob + (column + k) * ld + r, e);  // normalized below
        sum += e;
      }
      const V log_sum = simd::log<S>(sum), inv_sum = S(1) / sum;
      for (int k = 0; k < count; ++k) {
        const simd::Vec<S> lp = (simd::load<S>(logits + (column + k) * ld + r) - top) - log_sum;
        simd::store<S>(out + (column + k) * ld + r, lp);
        if (prob) simd::store<S>(prob + (column + k) * ld + r, simd::load<S>(prob + (column + k) * ld + r) * inv_sum);
      }
      column += count;
    }
  }
}

// A column of observations normalized and clipped, as the nets see them.
template <class S>
void normalize_column(const double* __restrict o, std::int64_t n, double mean, double inv_std, S* __restrict z) {
  for (std::int64_t b = 0; b < n; ++b)
    z[b] = static_cast<S>(std::min(std::max((o[b] - mean) * inv_std, -Normalizer::kClip), Normalizer::kClip));
}

// dL/dobs from dL/dz for one column: z's derivative is inv_std where the value was not clipped.
template <class S>
void normalize_column_backward(const double* __restrict o, std::int64_t n, double mean, double inv_std,
                               const S* __restrict z_grad, double* __restrict obs_grad) {
  for (std::int64_t b = 0; b < n; ++b)
    obs_grad[b] = std::abs((o[b] - mean) * inv_std) < Normalizer::kClip ? double(z_grad[b]) * inv_std : 0.0;
}

// The continuous head's pre-squash mean, [cont x ld], from its output block and the one-hot choices
// (panel columns `hot`, one per option column): with one output per (component, option), the chosen
// options' outputs summed; else the outputs themselves. Rows [0, rows) rounded up to whole vectors.
template <class S>
const S* continuous_mean(const Policy& policy, std::int64_t rows, const S* out, const S* hot, std::int64_t ld,
                         S* mean) {
  if (!policy.per_option()) return out;
  const int C = policy.space().cont(), L = policy.space().logits();
  using V = simd::Vec<S>;
  for (int i = 0; i < C; ++i)
    for (std::int64_t r = 0; r < rows; r += kLanes<S>) {
      V sum{};
      for (int c = 0; c < L; ++c) sum += simd::load<S>(out + (i * L + c) * ld + r) * simd::load<S>(hot + c * ld + r);
      simd::store<S>(mean + i * ld + r, sum);
    }
  return mean;
}

// The adjoint of continuous_mean with per_option(): dL/dout of each (component, option) is the
// component's dL/dmean where the option was chosen, zero elsewhere; and, when hot_grad is not null
// (the straight-through estimator differentiates the one-hot choices), dL/dhot of option column c
// is sum_i out(i, c) dL/dmean_i.
template <class S>
void continuous_mean_backward(const Policy& policy, std::int64_t ld, const S* out, const S* hot, const S* mean_grad,
                              S* out_grad, S* hot_grad) {
  const int C = policy.space().cont(), L = policy.space().logits();
  using V = simd::Vec<S>;
  for (std::int64_t r = 0; r < ld; r += kLanes<S>)
    for (int c = 0; c < L; ++c) {
      const V h = simd::load<S>(hot + c * ld + r);
      V dh{};
      for (int i = 0; i < C; ++i) {
        const V g = simd::load<S>(mean_grad + i * ld + r);
        simd::store<S>(out_grad + (i * L + c) * ld + r, g * h);
        dh += simd::load<S>(out + (i * L + c) * ld + r) * g;
      }
      if (hot_grad) simd::store<S>(hot_grad + c * ld + r, dh);
    }
}

// The nets' weights in S, for one policy at one moment.
template <class S>
struct Weights {
  MlpWeights<S> disc, cont, value;
  void load(const Policy& p) {
    if (p.has_disc()) disc.load(p.disc_net(), p.disc_params());
    if (p.has_cont()) cont.load(p.cont_net(), p.cont_params());
    value.load(p.value_net(), p.value_params);
  }
};

// One thread's contiguous share of the episodes of a rollout, and everything it keeps per step.
template <class S>
struct Shard {
  std::int64_t first = 0, size = 0, ld = 0;
  std::int64_t env_batch = 0;          // the simulator's samples: the shard's, then idle ones
  int first_block = 0, end_block = 0;  // the gradient blocks it owns
  std::unique_ptr<BatchEnv> env;
  std::vector<std::uint64_t> rng;
  Buffer<S> input, disc_acts, cont_acts;  // per recorded step: [ld x (obs + logits)] and each net's block
  Buffer<S> logp, value_input, value_acts;
  Buffer<S> cont_mean, cont_mean_grad;  // [ld x cont]: the continuous head's selected outputs and their gradient
  std::vector<double> cont_action;
  std::vector<std::int32_t> disc;
  std::vector<double> uniform, cumulative;  // a discrete draw's uniforms and cumulative probabilities
  // The backward sweep's.
  Buffer<S> disc_deltas, cont_deltas, gradient_scratch;
  Buffer<S> cont_input_grad, disc_input_grad, z_grad;
  std::vector<double> log_std_term;  // [cont x size]: this step's d loss/d log_std per sample
  std::vector<double> state_bar, next_bar, cont_bar, cost_bar, obs_grad, derivative, replay_next, replay_cost;
  std::vector<std::int32_t> replay_disc;
};

// What a rollout of one shape needs: the shards and, when recorded, the backward's buffers.
template <class S>
struct Workspace {
  const Model* model = nullptr;
  std::int64_t episodes = 0, horizon = 0;
  bool record = false;
  std::vector<int> hidden;
  int obs = 0, logits = 0, cont = 0;
  std::vector<Shard<S>> shards;
  Weights<S> weights;
  // Per gradient block, each net's gradient in S (blocks a whole number of cache lines apart) and
  // the log-std gradient.
  std::size_t disc_stride = 0, cont_stride = 0;
  Buffer<S> disc_blocks, cont_blocks;
  std::vector<double> log_std_blocks;  // [blocks x cont]
  std::vector<std::exception_ptr> errors;

  bool fits(const RolloutSpec& spec, std::int64_t n) const {
    const ActionSpace& space = spec.policy->space();
    return model == spec.model && episodes == n && horizon == spec.horizon && record == spec.record &&
           hidden == spec.policy->config().hidden && obs == space.obs && logits == space.logits() &&
           cont == space.cont();
  }

  Workspace(const RolloutSpec& spec, std::int64_t n, int workers)
      : model(spec.model), episodes(n), horizon(spec.horizon), record(spec.record),
        hidden(spec.policy->config().hidden) {
    const Policy& policy = *spec.policy;
    const ActionSpace& space = policy.space();
    obs = space.obs, logits = space.logits(), cont = space.cont();
    const int D = space.disc(), O = obs, L = logits, C = cont;
    const std::size_t S_ = model->num_state();
    const std::int64_t steps = record ? horizon : 1;
    shards.resize(workers);
    const std::int64_t max_block = largest_block<S>(n);
    for (int w = 0; w < workers; ++w) {
      Shard<S>& sh = shards[w];
      const BlockShare part = block_share<S>(n, workers, w);
      const std::int64_t begin = part.begin;
      sh.first_block = part.first_block, sh.end_block = part.end_block;
      sh.first = begin;
      sh.size = part.end - begin;
      sh.ld = panel_rows<S>(sh.size);
      if (sh.size == 0) continue;
      // The idle samples draw from the next shard's streams, harmlessly: their results are never read.
      sh.env_batch = simulator_batch(sh.size);
      sh.env = std::make_unique<BatchEnv>(*model, BatchEnvOptions{.batch = sh.env_batch, .seed = 0, .record = record,
                                                                  .first_stream = static_cast<std::uint64_t>(begin)});
      const std::size_t m = static_cast<std::size_t>(sh.env_batch);
      sh.rng.assign(static_cast<std::size_t>(sh.size) * 4, 0);
      const std::size_t ld = static_cast<std::size_t>(sh.ld);
      sh.input.assign(steps * ld * (O + L), S(0));
      if (policy.has_disc()) sh.disc_acts.assign(steps * ld * policy.disc_net().activation_width(), S(0));
      if (policy.has_cont()) sh.cont_acts.assign(steps * ld * policy.cont_net().activation_width(), S(0));
      sh.cont_mean.assign(ld * C, S(0));
      sh.logp.assign(2 * ld * std::max(L, 1), S(0));  // log-probabilities, then probabilities
      sh.value_input.assign(ld * (O + 1), S(0));
      sh.value_acts.assign(ld * policy.value_net().activation_width(), S(0));
      // The idle samples keep the first choices and the lower bounds.
      sh.cont_action.assign(C * m, 0.0);
      for (int i = 0; i < C; ++i) std::fill_n(sh.cont_action.begin() + i * m, m, space.lower[i]);
      sh.disc.assign(D * m, 0);
      sh.uniform.assign(static_cast<std::size_t>(sh.size), 0.0);
      sh.cumulative.assign(static_cast<std::size_t>(sh.size), 0.0);
      if (!record) continue;
      const std::size_t nn = static_cast<std::size_t>(sh.size);
      std::size_t scratch = 0;
      if (policy.has_disc()) {
        sh.disc_deltas.assign(ld * policy.disc_net().activation_width(), S(0));
        sh.disc_input_grad.assign(ld * O, S(0));
        scratch = policy.disc_net().block_scratch_size<S>(max_block);
      }
      if (policy.has_cont()) {
        sh.cont_deltas.assign(ld * policy.cont_net().activation_width(), S(0));
        sh.cont_input_grad.assign(ld * (O + L), S(0));
        sh.cont_mean_grad.assign(ld * C, S(0));
        scratch = std::max(scratch, policy.cont_net().block_scratch_size<S>(max_block));
      }
      sh.gradient_scratch.assign(scratch, S(0));
      sh.log_std_term.assign(C * nn, 0.0);
      sh.z_grad.assign(ld * (O + 1), S(0));  // then one column of score-function weights
      sh.state_bar.assign(S_ * m, 0.0);
      sh.next_bar.assign(S_ * m, 0.0);
      sh.cont_bar.assign(C * m, 0.0);
      sh.cost_bar.assign(m, 0.0);
      sh.obs_grad.assign(O * m, 0.0);
      sh.derivative.assign(nn, 0.0);
      sh.replay_next.assign(S_ * m, 0.0);
      sh.replay_cost.assign(m, 0.0);
      sh.replay_disc.assign(D * m, 0);
    }
    if (record) {
      auto stride = [](const Mlp& net) {
        return static_cast<std::size_t>(padded_rows<S>(net.empty() ? 0 : static_cast<std::int64_t>(net.parameter_count())));
      };
      disc_stride = stride(policy.disc_net());
      cont_stride = stride(policy.cont_net());
      disc_blocks.assign(kGradientBlocks * disc_stride, S(0));
      cont_blocks.assign(kGradientBlocks * cont_stride, S(0));
      log_std_blocks.assign(static_cast<std::size_t>(kGradientBlocks * C), 0.0);
    }
    errors.assign(workers, nullptr);
  }
};

void check_finite(const BatchEnv& env, std::int64_t samples, const Model& model, std::int64_t first, std::int64_t t) {
  const auto n = static_cast<std::size_t>(env.batch());
  auto cost = env.cost();
  auto state = env.state();
  // A value is not finite when its exponent bits are all ones: one vectorized scan tells whether to look closer.
  constexpr std::uint64_t kExponent = 0x7ff0000000000000ull;
  std::uint64_t odd = 0;
  for (auto values : {cost, state})
    for (double x : values) odd |= (std::bit_cast<std::uint64_t>(x) & kExponent) == kExponent;
  if (!odd) return;
  const std::size_t state_size = model.num_state();
  for (std::size_t b = 0; b < static_cast<std::size_t>(samples); ++b) {
    bool finite = std::isfinite(cost[b]);
    for (std::size_t i = 0; i < state_size && finite; ++i) finite = std::isfinite(state[i * n + b]);
    if (finite) continue;
    std::string where;
    for (std::size_t i = 0; i < state_size && where.empty(); ++i)
      if (!std::isfinite(state[i * n + b])) where = "state " + model.state_names()[i] + " = " + std::to_string(state[i * n + b]);
    if (where.empty()) where = "its cost = " + std::to_string(cost[b]);
    throw NonFiniteError("step " + std::to_string(t) + " of episode " + std::to_string(first + std::int64_t(b)) +
                         " produced a value that is not finite: " + where);
  }
}

template <class S>
void rollout_share(const RolloutSpec& spec, Workspace<S>& ws, Shard<S>& sh, const Vector& mean, const Vector& inv_std,
                   Batch& batch, Laps laps) {
  if (sh.size == 0) return;
  const Model& model = *spec.model;
  const Policy& policy = *spec.policy;
  const ActionSpace& space = policy.space();
  const int O = space.obs, D = space.disc(), C = space.cont(), L = space.logits();
  const std::int64_t n = sh.size, m = sh.env_batch, N = batch.episodes, T = spec.horizon, ld = sh.ld, first = sh.first;
  const std::int64_t state_size = static_cast<std::int64_t>(model.num_state());
  BatchEnv& env = *sh.env;
  env.reset(spec.env_seed);
  laps.to(&TimeSplit::simulator);
  for (std::int64_t b = 0; b < n; ++b)
    Xoshiro::seed(&sh.rng[b * 4], spec.policy_seed, static_cast<std::uint64_t>(first + b));
  for (std::int64_t b = 0; b < n; ++b) batch.total[first + b] = 0.0;
  auto log_std = policy.log_std();
  const bool draw_gaussian = policy.gaussian() && spec.mode != ActMode::Greedy;
  double weight = 1.0;
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int64_t slot = spec.record ? t : 0;
    S* input = sh.input.data() + slot * ld * (O + L);
    auto obs = env.observation();
    for (int j = 0; j < O; ++j) {
      const double* o = obs.data() + j * m;
      std::copy(o, o + n, batch.obs.data() + (t * O + j) * N + first);
      normalize_column<S>(o, n, mean[j], inv_std[j], input + j * ld);
    }
    if (spec.record && spec.states) {
      auto state = env.state();
      for (std::int64_t i = 0; i < state_size; ++i)
        std::copy(state.data() + i * m, state.data() + i * m + n, batch.state.data() + (t * state_size + i) * N + first);
    }
    if (D > 0) {
      S* acts = sh.disc_acts.data() + slot * ld * policy.disc_net().activation_width();
      policy.disc_net().forward(ws.weights.disc, n, input, ld, acts, ld);
      S* logp = sh.logp.data();
      const S* prob = logp + L * ld;
      log_softmax<S>(space, n, Mlp::output(acts, ld, policy.disc_net()), ld, logp, logp + L * ld);
      int column = 0;
      for (int j = 0; j < D; ++j) {
        const int count = space.choices[j];
        std::int32_t* chosen = sh.disc.data() + j * m;
        if (spec.mode == ActMode::Sample) {
          // The first k whose cumulative probability exceeds u, else the last: with the sums
          // nondecreasing, the number of them at or below u. Branch-free, lane by lane.
          double* u = sh.uniform.data();
          for (std::int64_t b = 0; b < n; ++b) u[b] = Xoshiro(&sh.rng[b * 4]).uniform01();
          double* acc = sh.cumulative.data();
          std::fill(acc, acc + n, 0.0);
          std::fill(chosen, chosen + n, 0);
          for (int k = 0; k + 1 < count; ++k) {
            const S* p = prob + (column + k) * ld;
            for (std::int64_t b = 0; b < n; ++b) {
              acc[b] += double(p[b]);
              chosen[b] += acc[b] <= u[b] ? 1 : 0;
            }
          }
        }
        for (std::int64_t b = 0; b < n; ++b) {
          if (spec.mode == ActMode::Greedy) {
            chosen[b] = 0;
            for (int k = 1; k < count; ++k)
              if (logp[(column + k) * ld + b] > logp[(column + chosen[b]) * ld + b]) chosen[b] = k;
          } else if (spec.mode == ActMode::Gumbel) {
            Xoshiro rng(&sh.rng[b * 4]);
            double best = -INFINITY;
            for (int k = 0; k < count; ++k) {
              const double g = -std::log(-std::log(rng.open_uniform01()));
              batch.noise[((t * L) + column + k) * N + first + b] = g;
              const double score = double(logp[(column + k) * ld + b]) + g;
              if (score > best) best = score, chosen[b] = k;
            }
          }
          batch.disc[(t * D + j) * N + first + b] = chosen[b];
          batch.logp_disc(t, first + b) += double(logp[(column + chosen[b]) * ld + b]);
        }
        for (int k = 0; k < count; ++k) {
          S* hot = input + (O + column + k) * ld;
          for (std::int64_t b = 0; b < n; ++b) hot[b] = sh.disc[j * m + b] == k ? S(1) : S(0);
        }
        column += count;
      }
    }
    if (C > 0) {
      S* acts = sh.cont_acts.data() + slot * ld * policy.cont_net().activation_width();
      policy.cont_net().forward(ws.weights.cont, n, input, ld, acts, ld);
      const S* out =
          continuous_mean(policy, n, Mlp::output(acts, ld, policy.cont_net()), input + O * ld, ld, sh.cont_mean.data());
      for (int i = 0; i < C; ++i) {
        const double sigma = draw_gaussian ? std::exp(log_std[i]) : 0.0;
        for (std::int64_t b = 0; b < n; ++b) {
          double raw = double(out[i * ld + b]);
          if (draw_gaussian) {
            Xoshiro rng(&sh.rng[b * 4]);
            const double eps = standard_normal(rng);
            raw += sigma * eps;
            batch.noise[(t * C + i) * N + first + b] = eps;
            const double z = (raw - double(out[i * ld + b])) / sigma;
            batch.logp_cont(t, first + b) -= 0.5 * z * z + log_std[i] + kHalfLog2Pi;
          }
          batch.raw[(t * C + i) * N + first + b] = raw;
        }
        squash(std::span<const double>(batch.raw.data() + (t * C + i) * N + first, n), space.lower[i], space.upper[i],
               std::span<double>(sh.cont_action.data() + i * m, n));
      }
    }
    if (spec.values) {
      S* vin = sh.value_input.data();
      std::copy(input, input + O * ld, vin);
      std::fill(vin + O * ld, vin + (O + 1) * ld, static_cast<S>(double(t) / double(T)));
      policy.value_net().forward(ws.weights.value, n, vin, ld, sh.value_acts.data(), ld);
      const S* v = Mlp::output(sh.value_acts.data(), ld, policy.value_net());
      for (std::int64_t b = 0; b < n; ++b) batch.value(t, first + b) = double(v[b]) * policy.value_scale;
    }
    laps.to(&TimeSplit::policy_forward);
    env.step(sh.disc, sh.cont_action);
    check_finite(env, n, model, first, t);
    auto cost = env.cost();
    const bool counted = spec.counted.contains(t);
    for (std::int64_t b = 0; b < n; ++b) {
      batch.cost(t, first + b) = cost[b];
      if (counted) batch.total[first + b] += weight * cost[b];
    }
    weight *= spec.discount;
    laps.to(&TimeSplit::simulator);
  }
  double flops = 0;
  if (D > 0) flops += policy.disc_net().product_flops(n);
  if (C > 0) flops += policy.cont_net().product_flops(n);
  if (spec.values) flops += policy.value_net().product_flops(n);
  laps.split().policy_flops += flops * double(T);
}

// One step of the backward sweep on one shard: the simulator's adjoint, the heads' output
// gradients, both nets' backward passes into the observation, and the packed deltas for the
// weight gradients.
template <class S>
void backward_share(const RolloutSpec& spec, const BackwardSpec& bw, const Matrix& sf_weight, const Batch& batch,
                    const Vector& mean, const Vector& inv_std, Workspace<S>& ws, Shard<S>& sh, std::int64_t t,
                    Laps& laps) {
  if (sh.size == 0) return;
  const Policy& policy = *spec.policy;
  const ActionSpace& space = policy.space();
  const Model& model = *spec.model;
  const int O = space.obs, D = space.disc(), C = space.cont(), L = space.logits();
  const std::int64_t n = sh.size, m = sh.env_batch, N = batch.episodes, ld = sh.ld, first = sh.first;
  const std::size_t state_size = model.num_state();
  const BatchEnv& env = *sh.env;
  std::swap(sh.state_bar, sh.next_bar);
  std::fill(sh.state_bar.begin(), sh.state_bar.end(), 0.0);
  std::fill(sh.cont_bar.begin(), sh.cont_bar.end(), 0.0);
  std::fill(sh.cost_bar.begin(), sh.cost_bar.end(),
            bw.costs.contains(t) ? bw.cost_weight * std::pow(spec.discount, double(t)) : 0.0);
  env.step_backward(t, sh.next_bar, sh.cost_bar, sh.state_bar, sh.cont_bar);
  laps.to(&TimeSplit::simulator);

  const S* input = sh.input.data() + t * ld * (O + L);
  S* z_grad = sh.z_grad.data();
  std::fill(sh.z_grad.begin(), sh.z_grad.end(), S(0));
  if (C > 0) {
    const Mlp& net = policy.cont_net();
    const S* acts = sh.cont_acts.data() + t * ld * net.activation_width();
    S* deltas = sh.cont_deltas.data();
    S* raw_grad = policy.per_option() ? sh.cont_mean_grad.data() : Mlp::output(deltas, ld, net);
    auto log_std = policy.log_std();
    for (int i = 0; i < C; ++i) {
      squash_derivative(std::span<const double>(batch.raw.data() + (t * C + i) * N + first, n), space.lower[i],
                        space.upper[i], sh.derivative);
      for (std::int64_t b = 0; b < n; ++b) {
        const double g = sh.cont_bar[i * m + b] * sh.derivative[b];
        raw_grad[i * ld + b] = static_cast<S>(g);
        // raw = mean + exp(log_std) * eps: d raw/d mean = 1, d raw/d log_std = exp(log_std) * eps.
        if (policy.gaussian())
          sh.log_std_term[i * n + b] = std::exp(log_std[i]) * g * batch.noise[(t * C + i) * N + first + b];
      }
      std::fill(raw_grad + i * ld + n, raw_grad + (i + 1) * ld, S(0));
    }
    // The one-hot choices' gradient matters only to the straight-through estimator.
    if (policy.per_option())
      continuous_mean_backward(policy, ld, Mlp::output(acts, ld, net), input + O * ld, raw_grad,
                               Mlp::output(deltas, ld, net),
                               bw.straight_through ? sh.cont_input_grad.data() + O * ld : static_cast<S*>(nullptr));
    net.backward(ws.weights.cont, n, acts, ld, deltas, sh.cont_input_grad.data(), ld,
                 bw.straight_through || policy.per_option() ? -1 : O);
    for (std::int64_t k = 0; k < O * ld; ++k) z_grad[k] += sh.cont_input_grad[k];
  }
  if (D > 0) {
    const Mlp& net = policy.disc_net();
    const S* acts = sh.disc_acts.data() + t * ld * net.activation_width();
    S* deltas = sh.disc_deltas.data();
    S* logits_grad = Mlp::output(deltas, ld, net);
    std::fill(logits_grad, logits_grad + L * ld, S(0));
    S* logp = sh.logp.data();
    S* prob = logp + L * ld;
    log_softmax<S>(space, n, Mlp::output(acts, ld, net), ld, logp, prob);
    const S* one_hot_grad = sh.cont_input_grad.empty() || !bw.straight_through ? nullptr : sh.cont_input_grad.data() + O * ld;
    // The score-function weights of this step, contiguous and zero past the shard's episodes.
    S* weight = sh.z_grad.data() + O * ld;
    for (std::int64_t b = 0; b < n; ++b) weight[b] = bw.score_function ? static_cast<S>(sf_weight(t, first + b)) : S(0);
    std::fill(weight + n, weight + ld, S(0));
    const S entropy_weight = static_cast<S>(bw.entropy_coef * bw.cost_weight);
    using V = simd::Vec<S>;
    int column = 0;
    for (int j = 0; j < D; ++j) {
      const int count = space.choices[j];
      for (std::int64_t r = 0; r < ld; r += kLanes<S>) {
        const V w = simd::load<S>(weight + r);
        V entropy{};
        for (int k = 0; k < count; ++k)
          entropy -= simd::load<S>(prob + (column + k) * ld + r) * simd::load<S>(logp + (column + k) * ld + r);
        for (int k = 0; k < count; ++k) {
          const V p = simd::load<S>(prob + (column + k) * ld + r), lp = simd::load<S>(logp + (column + k) * ld + r);
          // d/dlogits log softmax(logits)_d = onehot(d) - p, the one-hot kept in the input panel;
          // d/dlogit_k H = -p_k (log p_k + H), and the loss subtracts entropy_coef * H.
          const V hot = simd::load<S>(input + (O + column + k) * ld + r);
          simd::store<S>(logits_grad + (column + k) * ld + r, (hot - p) * w + entropy_weight * p * (lp + entropy));
        }
      }
      for (int k = 0; k < count; ++k)
        std::fill(logits_grad + (column + k) * ld + n, logits_grad + (column + k + 1) * ld, S(0));
      if (bw.straight_through) {
        // The step is treated as multilinear in the one-hot choice y: dL/dy_k is the loss's
        // linearization at step t evaluated with choice k (others as sampled).
        std::vector<double> y_grad(static_cast<std::size_t>(n * count));
        for (int jj = 0; jj < D; ++jj)
          for (std::int64_t b = 0; b < n; ++b) sh.replay_disc[jj * m + b] = batch.disc[(t * D + jj) * N + first + b];
        laps.to(&TimeSplit::policy_backward);
        for (int k = 0; k < count; ++k) {
          for (std::int64_t b = 0; b < n; ++b) sh.replay_disc[j * m + b] = k;
          env.replay_step(t, sh.replay_disc, sh.replay_next, sh.replay_cost);
          for (std::int64_t b = 0; b < n; ++b) {
            double g = sh.cost_bar[b] * sh.replay_cost[b];
            for (std::size_t i = 0; i < state_size; ++i) g += sh.next_bar[i * m + b] * sh.replay_next[i * m + b];
            if (one_hot_grad) g += double(one_hot_grad[(column + k) * ld + b]);
            y_grad[b * count + k] = g;
          }
        }
        laps.to(&TimeSplit::simulator);
        // y = softmax((logits + g) / tau): dy/dlogits = (diag(y) - y y^T) / tau.
        std::vector<double> y(count);
        for (std::int64_t b = 0; b < n; ++b) {
          double top = -INFINITY, sum = 0, mean_grad = 0;
          for (int k = 0; k < count; ++k) {
            y[k] = (double(logp[(column + k) * ld + b]) + batch.noise[(t * L + column + k) * N + first + b]) / bw.temperature;
            top = std::max(top, y[k]);
          }
          for (int k = 0; k < count; ++k) sum += (y[k] = std::exp(y[k] - top));
          for (int k = 0; k < count; ++k) mean_grad += (y[k] /= sum) * y_grad[b * count + k];
          for (int k = 0; k < count; ++k)
            logits_grad[(column + k) * ld + b] +=
                static_cast<S>(y[k] * (y_grad[b * count + k] - mean_grad) / bw.temperature);
        }
      }
      column += count;
    }
    const bool into_states = bw.cross_term || bw.straight_through;
    net.backward(ws.weights.disc, n, acts, ld, deltas, into_states ? sh.disc_input_grad.data() : nullptr, ld);
    if (into_states)
      for (std::int64_t k = 0; k < O * ld; ++k) z_grad[k] += sh.disc_input_grad[k];
  }
  for (int j = 0; j < O; ++j)
    normalize_column_backward<S>(batch.obs.data() + (t * O + j) * N + first, n, mean[j], inv_std[j], z_grad + j * ld,
                                 sh.obs_grad.data() + j * m);
  laps.to(&TimeSplit::policy_backward);
  env.observe_backward(t, sh.obs_grad, sh.state_bar);
  laps.to(&TimeSplit::simulator);
  double flops = 0;  // the backward products; the weight gradients' come below
  if (C > 0) flops += policy.cont_net().product_flops(n);
  if (D > 0) flops += policy.disc_net().product_flops(n, bw.cross_term || bw.straight_through);
  laps.split().policy_flops += flops;

  // This step's weight gradients, block by block, while the step's activations are in cache.
  for (int block = sh.first_block; block < sh.end_block; ++block) {
    auto [begin, end] = share<S>(N, kGradientBlocks, block);
    begin -= first, end -= first;
    if (C > 0) {
      const Mlp& net = policy.cont_net();
      net.accumulate_block_gradient(begin, end, input, ld, sh.cont_acts.data() + t * ld * net.activation_width(),
                                    sh.cont_deltas.data(), ld, sh.gradient_scratch.data(),
                                    ws.cont_blocks.data() + block * ws.cont_stride);
      if (policy.gaussian())
        for (int i = 0; i < C; ++i) {
          double sum = 0;
          for (std::int64_t b = begin; b < end; ++b) sum += sh.log_std_term[i * n + b];
          ws.log_std_blocks[block * C + i] += sum;
        }
    }
    if (D > 0) {
      const Mlp& net = policy.disc_net();
      net.accumulate_block_gradient(begin, end, input, ld, sh.disc_acts.data() + t * ld * net.activation_width(),
                                    sh.disc_deltas.data(), ld, sh.gradient_scratch.data(),
                                    ws.disc_blocks.data() + block * ws.disc_stride);
    }
  }
  double gradient_flops = 0;
  if (C > 0) gradient_flops += policy.cont_net().product_flops(n);
  if (D > 0) gradient_flops += policy.disc_net().product_flops(n);
  laps.split().policy_flops += gradient_flops;
  laps.to(&TimeSplit::weight_gradient);
}

template <class S>
void trajectory_gradient_impl(ThreadPool& pool, std::vector<WorkerTime>& time, Workspace<S>& ws,
                              const RolloutSpec& spec, const Batch& batch, const BackwardSpec& bw,
                              const Matrix& sf_weight, std::span<std::vector<double>> grads) {
  const Policy& policy = *spec.policy;
  const int groups = static_cast<int>(grads.size());
  if (groups < 1 || kGradientBlocks % groups != 0)
    throw std::invalid_argument("trajectory_gradient: " + std::to_string(groups) + " groups do not divide the " +
                                std::to_string(kGradientBlocks) + " gradient blocks");
  const std::int64_t T = spec.horizon;
  const int C = policy.space().cont();
  ws.weights.load(policy);
  const Vector mean = policy.normalizer.mean, inv_std = policy.normalizer.inv_std();
  std::fill(ws.errors.begin(), ws.errors.end(), nullptr);
  // Shards are independent through the whole sweep: no thread waits for another until the end.
  pool.run([&](int w) {
    Laps laps(time[w].split);
    Shard<S>& sh = ws.shards[w];
    const int b0 = sh.first_block, b1 = sh.end_block;
    std::fill(ws.disc_blocks.begin() + b0 * ws.disc_stride, ws.disc_blocks.begin() + b1 * ws.disc_stride, S(0));
    std::fill(ws.cont_blocks.begin() + b0 * ws.cont_stride, ws.cont_blocks.begin() + b1 * ws.cont_stride, S(0));
    std::fill(ws.log_std_blocks.begin() + b0 * C, ws.log_std_blocks.begin() + b1 * C, 0.0);
    std::fill(sh.state_bar.begin(), sh.state_bar.end(), 0.0);
    std::fill(sh.next_bar.begin(), sh.next_bar.end(), 0.0);
    try {
      for (std::int64_t t = T; t-- > 0;) backward_share(spec, bw, sf_weight, batch, mean, inv_std, ws, sh, t, laps);
    } catch (...) {
      ws.errors[w] = std::current_exception();
    }
  });
  for (auto& e : ws.errors)
    if (e) std::rethrow_exception(e);
  const std::size_t disc_size = policy.disc_net().empty() ? 0 : policy.disc_net().parameter_count();
  const std::size_t cont_size = policy.cont_net().empty() ? 0 : policy.cont_net().parameter_count();
  // Group g is blocks [g B / groups, (g + 1) B / groups): the episodes share(N, groups, g).
  for (int block = 0; block < kGradientBlocks; ++block) {
    std::vector<double>& out = grads[block * groups / kGradientBlocks];
    const S* disc = ws.disc_blocks.data() + block * ws.disc_stride;
    const S* cont = ws.cont_blocks.data() + block * ws.cont_stride;
    for (std::size_t k = 0; k < disc_size; ++k) out[k] += double(disc[k]);
    for (std::size_t k = 0; k < cont_size; ++k) out[disc_size + k] += double(cont[k]);
    for (int i = 0; i < static_cast<int>(policy.log_std().size()); ++i)
      out[disc_size + cont_size + i] += ws.log_std_blocks[block * C + i];
  }
}

// The surrogate's rows are taken a chunk at a time, forward, backward and weight gradients, so
// that a chunk's activations and deltas stay in the core's cache (a chunk of 256 rows of the 64,64
// networks takes about half a megabyte).
constexpr std::int64_t kSurrogateChunk = 256;

// The score-function surrogate's buffers: one worker's whole gradient blocks of a minibatch's
// rows, and the chunk of them at hand (first, size).
template <class S>
struct SurrogateShard {
  std::int64_t first = 0, size = 0, ld = 0;
  int first_block = 0, end_block = 0;
  Buffer<S> input, value_input, disc_acts, cont_acts, value_acts, disc_deltas, cont_deltas, value_deltas, logp;
  Buffer<S> cont_mean, cont_mean_grad, gradient_scratch;
  std::vector<double> logp_row;  // the chunk's log-probabilities of its actions
};

template <class S>
struct SurrogateWorkspace {
  std::vector<SurrogateShard<S>> shards;
  Weights<S> weights;
  Buffer<S> blocks[3];  // per net, per gradient block (as the trajectory's), its gradient in S
  // Per row of the minibatch: d loss/d log pi, the stats' terms and d loss/d log_std per component.
  std::vector<double> logp_grad, kl, clip, entropy, value_loss, log_std_part;
  std::vector<std::exception_ptr> errors;
};

template <class S>
SurrogateStats surrogate_impl(ThreadPool& pool, std::vector<WorkerTime>& time, SurrogateWorkspace<S>& ws,
                              const Policy& policy, const Samples& samples,
                              std::span<const std::int64_t> rows, const SurrogateSpec& spec,
                              std::span<double> policy_grad, std::span<double> value_grad) {
  const ActionSpace& space = policy.space();
  const int O = space.obs, D = space.disc(), C = space.cont(), L = space.logits();
  const std::int64_t R = static_cast<std::int64_t>(rows.size());
  const int workers = pool.size();
  SurrogateStats stats;
  if (R == 0) return stats;
  double mean_adv = 0, scale = 1;
  if (spec.normalize_advantage) {
    double sum = 0, sq = 0;
    for (auto r : rows) sum += samples.advantage[r];
    mean_adv = sum / double(R);
    for (auto r : rows) sq += (samples.advantage[r] - mean_adv) * (samples.advantage[r] - mean_adv);
    scale = 1.0 / (std::sqrt(sq / double(R)) + 1e-8);
  }
  const double inv_count = 1.0 / double(R);
  const bool disc = spec.discrete && D > 0, gaussian = spec.continuous && policy.gaussian();
  const Mlp* nets[3] = {disc ? &policy.disc_net() : nullptr, gaussian ? &policy.cont_net() : nullptr,
                        spec.value ? &policy.value_net() : nullptr};
  ws.weights.load(policy);
  // Buffers grow to the largest minibatch and stay.
  ws.shards.resize(workers);
  const std::int64_t max_block = largest_block<S>(R);
  for (int w = 0; w < workers; ++w) {
    auto& sh = ws.shards[w];
    const BlockShare part = block_share<S>(R, workers, w);
    sh.ld = panel_rows<S>(std::min(max_block, kSurrogateChunk));
    sh.first_block = part.first_block, sh.end_block = part.end_block;
    const std::size_t ld = static_cast<std::size_t>(sh.ld);
    ensure(sh.input, ld * (O + L));
    ensure(sh.value_input, ld * (O + 1));
    ensure(sh.logp, 2 * ld * std::max(L, 1));  // log-probabilities, then probabilities
    ensure(sh.logp_row, static_cast<std::size_t>(ld));
    ensure(sh.cont_mean, ld * C);
    ensure(sh.cont_mean_grad, ld * C);
    auto net_buffers = [&](const Mlp* net, Buffer<S>& acts, Buffer<S>& deltas) {
      if (!net) return;
      ensure(acts, ld * net->activation_width());
      ensure(deltas, ld * net->activation_width());
    };
    net_buffers(nets[0], sh.disc_acts, sh.disc_deltas);
    net_buffers(nets[1], sh.cont_acts, sh.cont_deltas);
    net_buffers(nets[2], sh.value_acts, sh.value_deltas);
    for (const Mlp* net : nets)
      if (net) ensure(sh.gradient_scratch, net->block_scratch_size<S>(std::min(max_block, kSurrogateChunk)));
  }
  std::size_t stride[3] = {0, 0, 0};  // between blocks: whole vectors, so blocks share no cache line
  for (int i = 0; i < 3; ++i)
    if (nets[i]) {
      stride[i] = static_cast<std::size_t>(padded_rows<S>(static_cast<std::int64_t>(nets[i]->parameter_count())));
      ensure(ws.blocks[i], kGradientBlocks * stride[i]);
    }
  for (auto* v : {&ws.logp_grad, &ws.kl, &ws.clip, &ws.entropy, &ws.value_loss}) ensure(*v, static_cast<std::size_t>(R));
  ensure(ws.log_std_part, static_cast<std::size_t>(R * std::max(C, 1)));
  ws.errors.assign(workers, nullptr);
  const Vector mean = policy.normalizer.mean, inv_std = policy.normalizer.inv_std();
  auto log_std = policy.log_std();

  auto forward_backward = [&](SurrogateShard<S>& sh) {
    const std::int64_t n = sh.size, ld = sh.ld;
    if (n == 0) return;
    S* input = sh.input.data();
    for (int j = 0; j < O; ++j)
      for (std::int64_t r = 0; r < n; ++r) {
        const std::int64_t src = rows[sh.first + r];
        input[j * ld + r] = static_cast<S>(
            std::clamp((samples.obs(src, j) - mean[j]) * inv_std[j], -Normalizer::kClip, Normalizer::kClip));
      }
    auto disc_of = [&](int j, std::int64_t r) { return samples.disc[rows[sh.first + r] * D + j]; };
    std::vector<double>& logp_row = sh.logp_row;  // sized for a whole chunk: no allocation
    std::fill_n(logp_row.begin(), n, 0.0);
    if (disc) {
      policy.disc_net().forward(ws.weights.disc, n, input, ld, sh.disc_acts.data(), ld);
      log_softmax<S>(space, n, Mlp::output(sh.disc_acts.data(), ld, policy.disc_net()), ld, sh.logp.data(),
                     sh.logp.data() + L * ld);
      int column = 0;
      for (int j = 0; j < D; ++j) {
        for (std::int64_t r = 0; r < n; ++r) logp_row[r] += double(sh.logp[(column + disc_of(j, r)) * ld + r]);
        column += space.choices[j];
      }
    }
    if (gaussian) {
      int column = 0;
      for (int j = 0; j < D; ++j) {
        for (int k = 0; k < space.choices[j]; ++k)
          for (std::int64_t r = 0; r < n; ++r) input[(O + column + k) * ld + r] = disc_of(j, r) == k ? S(1) : S(0);
        column += space.choices[j];
      }
      policy.cont_net().forward(ws.weights.cont, n, input, ld, sh.cont_acts.data(), ld);
      const S* out = continuous_mean(policy, n, Mlp::output(sh.cont_acts.data(), ld, policy.cont_net()), input + O * ld,
                                     ld, sh.cont_mean.data());
      for (int i = 0; i < C; ++i) {
        const double inv = std::exp(-log_std[i]);
        for (std::int64_t r = 0; r < n; ++r) {
          const double z = (samples.raw(rows[sh.first + r], i) - double(out[i * ld + r])) * inv;
          logp_row[r] -= 0.5 * z * z + log_std[i] + kHalfLog2Pi;
        }
      }
    }
    // dL/dlogp per row: the clipped objective max(r A, clip(r) A) follows r A unless clipping binds.
    for (std::int64_t r = 0; r < n; ++r) {
      const std::int64_t src = rows[sh.first + r], at = sh.first + r;
      const double old = (spec.discrete ? samples.logp_old_disc[src] : 0.0) +
                         (spec.continuous && policy.gaussian() ? samples.logp_old_cont[src] : 0.0);
      const double adv = (samples.advantage[src] - mean_adv) * scale;
      const double ratio = std::exp(logp_row[r] - old);
      const double clipped = std::clamp(ratio, 1.0 - spec.clip, 1.0 + spec.clip);
      const bool binds = clipped * adv > ratio * adv;
      ws.logp_grad[at] = binds ? 0.0 : ratio * adv * inv_count;
      ws.clip[at] = binds ? inv_count : 0.0;
      ws.kl[at] = (old - logp_row[r]) * inv_count;
      ws.entropy[at] = 0;
    }
    if (disc) {
      S* logits_grad = Mlp::output(sh.disc_deltas.data(), ld, policy.disc_net());
      std::fill(logits_grad, logits_grad + L * ld, S(0));
      int column = 0;
      for (int j = 0; j < D; ++j) {
        const int count = space.choices[j];
        const S* logp = sh.logp.data();
        const S* prob = logp + L * ld;
        for (std::int64_t r = 0; r < n; ++r) {
          const std::int64_t at = sh.first + r;
          double h = 0;
          for (int k = 0; k < count; ++k) h -= double(prob[(column + k) * ld + r]) * double(logp[(column + k) * ld + r]);
          ws.entropy[at] += h * inv_count;
          for (int k = 0; k < count; ++k) {
            const double lp = double(logp[(column + k) * ld + r]), p = double(prob[(column + k) * ld + r]);
            double g = -p * ws.logp_grad[at] + (k == disc_of(j, r) ? ws.logp_grad[at] : 0.0);
            if (spec.entropy_coef != 0) g += spec.entropy_coef * inv_count * p * (lp + h);
            logits_grad[(column + k) * ld + r] = static_cast<S>(g);
          }
        }
        column += count;
      }
      policy.disc_net().backward(ws.weights.disc, n, sh.disc_acts.data(), ld, sh.disc_deltas.data(), static_cast<S*>(nullptr), 0);
    }
    if (gaussian) {
      const S* out = policy.per_option() ? sh.cont_mean.data() : Mlp::output(sh.cont_acts.data(), ld, policy.cont_net());
      S* mean_grad = policy.per_option() ? sh.cont_mean_grad.data() : Mlp::output(sh.cont_deltas.data(), ld, policy.cont_net());
      for (int i = 0; i < C; ++i) {
        const double inv_var = std::exp(-2 * log_std[i]);
        for (std::int64_t r = 0; r < n; ++r) {
          const std::int64_t at = sh.first + r;
          const double diff = samples.raw(rows[at], i) - double(out[i * ld + r]);
          // d log N / d mean = (raw - mean) / sigma^2; d log N / d log_std = (raw - mean)^2 / sigma^2 - 1.
          mean_grad[i * ld + r] = static_cast<S>(diff * inv_var * ws.logp_grad[at]);
          ws.log_std_part[i * R + at] = (diff * diff * inv_var - 1.0) * ws.logp_grad[at];
        }
        std::fill(mean_grad + i * ld + n, mean_grad + (i + 1) * ld, S(0));
      }
      if (policy.per_option())
        continuous_mean_backward(policy, ld, Mlp::output(sh.cont_acts.data(), ld, policy.cont_net()), input + O * ld,
                                 mean_grad, Mlp::output(sh.cont_deltas.data(), ld, policy.cont_net()),
                                 static_cast<S*>(nullptr));
      policy.cont_net().backward(ws.weights.cont, n, sh.cont_acts.data(), ld, sh.cont_deltas.data(), static_cast<S*>(nullptr), 0);
    }
    if (spec.value) {
      S* vin = sh.value_input.data();
      std::copy(input, input + O * ld, vin);
      for (std::int64_t r = 0; r < n; ++r) vin[O * ld + r] = static_cast<S>(samples.time_fraction[rows[sh.first + r]]);
      policy.value_net().forward(ws.weights.value, n, vin, ld, sh.value_acts.data(), ld);
      const S* v = Mlp::output(sh.value_acts.data(), ld, policy.value_net());
      S* v_grad = Mlp::output(sh.value_deltas.data(), ld, policy.value_net());
      for (std::int64_t r = 0; r < n; ++r) {
        const std::int64_t at = sh.first + r;
        const double error = double(v[r]) - samples.target[rows[at]] / policy.value_scale;
        ws.value_loss[at] = error * error * inv_count;
        v_grad[r] = static_cast<S>(2.0 * spec.value_coef * inv_count * error);
      }
      std::fill(v_grad + n, v_grad + ld, S(0));
      policy.value_net().backward(ws.weights.value, n, sh.value_acts.data(), ld, sh.value_deltas.data(), static_cast<S*>(nullptr), 0);
    }
  };

  // Each worker's rows are whole gradient blocks: it sums their gradients itself, no waiting.
  pool.run([&](int w) {
    Laps laps(time[w].split);
    SurrogateShard<S>& sh = ws.shards[w];
    try {
      for (int block = sh.first_block; block < sh.end_block; ++block) {
        for (int i = 0; i < 3; ++i)
          if (nets[i]) std::fill_n(ws.blocks[i].data() + block * stride[i], nets[i]->parameter_count(), S(0));
        // A block's sums run chunk by chunk in order: the same cuts on any number of threads.
        const auto [block_begin, block_end] = share<S>(R, kGradientBlocks, block);
        for (sh.first = block_begin; sh.first < block_end; sh.first += kSurrogateChunk) {
          sh.size = std::min(kSurrogateChunk, block_end - sh.first);
          forward_backward(sh);
          double flops = 0;
          for (const Mlp* net : nets)
            if (net) flops += net->product_flops(sh.size) + net->product_flops(sh.size, false);
          laps.split().policy_flops += flops;
          laps.to(&TimeSplit::policy_backward);
          for (int i = 0; i < 3; ++i) {
            if (!nets[i]) continue;
            const S* input = i == 2 ? sh.value_input.data() : sh.input.data();
            const S* acts = (i == 0 ? sh.disc_acts : i == 1 ? sh.cont_acts : sh.value_acts).data();
            const S* deltas = (i == 0 ? sh.disc_deltas : i == 1 ? sh.cont_deltas : sh.value_deltas).data();
            nets[i]->accumulate_block_gradient(0, sh.size, input, sh.ld, acts, deltas, sh.ld, sh.gradient_scratch.data(),
                                               ws.blocks[i].data() + block * stride[i]);
            laps.split().policy_flops += nets[i]->product_flops(sh.size);
          }
          laps.to(&TimeSplit::weight_gradient);
        }
      }
    } catch (...) {
      ws.errors[w] = std::current_exception();
    }
  });
  for (auto& e : ws.errors)
    if (e) std::rethrow_exception(e);
  for (std::int64_t r = 0; r < R; ++r) {
    stats.approx_kl += ws.kl[r];
    stats.clip_fraction += ws.clip[r];
    stats.entropy += ws.entropy[r];
    if (spec.value) stats.value_loss += ws.value_loss[r];
  }
  // The blocks in order, into each net's place in the gradients.
  auto add_blocks = [&](int i, double* out) {
    for (int block = 0; block < kGradientBlocks; ++block) {
      const S* grad = ws.blocks[i].data() + block * stride[i];
      for (std::size_t k = 0; k < nets[i]->parameter_count(); ++k) out[k] += double(grad[k]);
    }
  };
  const std::size_t disc_size = policy.disc_net().empty() ? 0 : policy.disc_net().parameter_count();
  if (nets[0]) add_blocks(0, policy_grad.data());
  if (nets[1]) {
    add_blocks(1, policy_grad.data() + disc_size);
    auto log_std_grad = policy.log_std_grad(policy_grad);
    for (int i = 0; i < C; ++i) {
      double sum = 0;
      for (std::int64_t r = 0; r < R; ++r) sum += ws.log_std_part[i * R + r];
      log_std_grad[i] += sum - spec.entropy_coef;
    }
  }
  if (nets[2]) add_blocks(2, value_grad.data());
  return stats;
}

}  // namespace

struct Engine::Impl {
  Precision precision;
  ThreadPool pool;
  std::vector<WorkerTime> time;
  std::unique_ptr<Workspace<float>> f32[2];
  std::unique_ptr<Workspace<double>> f64[2];
  SurrogateWorkspace<float> surrogate_f32;
  SurrogateWorkspace<double> surrogate_f64;

  Impl(Precision p, int threads) : precision(p), pool(threads), time(pool.size()) {}

  template <class S>
  Workspace<S>& workspace(const RolloutSpec& spec, std::int64_t episodes) {
    auto& slot = [&]() -> std::unique_ptr<Workspace<S>>& {
      if constexpr (std::is_same_v<S, float>) return f32[spec.record ? 0 : 1];
      else return f64[spec.record ? 0 : 1];
    }();
    if (!slot || !slot->fits(spec, episodes)) {
      slot.reset();
      slot = std::make_unique<Workspace<S>>(spec, episodes, pool.size());
    }
    return *slot;
  }

  template <class S>
  void rollout(const RolloutSpec& spec, std::int64_t episodes, Batch& batch) {
    const Policy& policy = *spec.policy;
    const ActionSpace& space = policy.space();
    const std::int64_t T = spec.horizon, N = episodes;
    const std::size_t O = space.obs, D = space.disc(), C = space.cont(), L = space.logits();
    Workspace<S>& ws = workspace<S>(spec, episodes);
    ws.weights.load(policy);
    batch.episodes = N;
    batch.horizon = T;
    auto size = [&](std::size_t k) { return static_cast<std::size_t>(T) * k * static_cast<std::size_t>(N); };
    batch.obs.resize(size(O));
    batch.disc.resize(size(D));
    batch.raw.resize(size(C));
    batch.noise.resize(size(std::max(C, L)));
    batch.state.resize(spec.record && spec.states ? size(spec.model->num_state()) : 0);
    batch.cost.resize(T, N);
    batch.logp_disc.setZero(T, N);
    batch.logp_cont.setZero(T, N);
    batch.value.setZero(T, N);
    batch.total.resize(N);
    const Vector mean = policy.normalizer.mean, inv_std = policy.normalizer.inv_std();
    pool.run([&](int w) { rollout_share(spec, ws, ws.shards[w], mean, inv_std, batch, Laps(time[w].split)); });
  }
};

Engine::Engine(Precision precision, int threads) : impl_(std::make_unique<Impl>(precision, threads)) {}
Engine::~Engine() = default;
Precision Engine::precision() const { return impl_->precision; }
int Engine::threads() const { return impl_->pool.size(); }

TimeSplit Engine::time_split() const {
  TimeSplit sum;
  for (const auto& w : impl_->time) {
    sum.simulator += w.split.simulator;
    sum.policy_forward += w.split.policy_forward;
    sum.policy_backward += w.split.policy_backward;
    sum.weight_gradient += w.split.weight_gradient;
    sum.policy_flops += w.split.policy_flops;
  }
  return sum;
}

void Engine::reset_time_split() {
  for (auto& w : impl_->time) w.split = TimeSplit{};
}

void Engine::rollout(const RolloutSpec& spec, std::int64_t episodes, Batch& batch) {
  if (impl_->precision == Precision::F32) impl_->rollout<float>(spec, episodes, batch);
  else impl_->rollout<double>(spec, episodes, batch);
}

Vector Engine::rollout_totals(RolloutSpec spec, std::int64_t episodes) {
  spec.record = false;
  Batch batch;
  rollout(spec, episodes, batch);
  return batch.total;
}

void Engine::trajectory_gradient(const RolloutSpec& spec, const Batch& batch, const BackwardSpec& backward,
                                 const Matrix& sf_weight, std::span<std::vector<double>> grads) {
  if (grads.empty() || grads.size() > 2) throw std::invalid_argument("trajectory_gradient takes one or two groups");
  if (!spec.record) throw std::logic_error("trajectory_gradient needs a recorded rollout");
  if (impl_->precision == Precision::F32)
    trajectory_gradient_impl(impl_->pool, impl_->time, impl_->workspace<float>(spec, batch.episodes), spec, batch,
                             backward, sf_weight, grads);
  else
    trajectory_gradient_impl(impl_->pool, impl_->time, impl_->workspace<double>(spec, batch.episodes), spec, batch,
                             backward, sf_weight, grads);
}

SurrogateStats Engine::surrogate_gradient(const Policy& policy, const Samples& samples,
                                          std::span<const std::int64_t> rows, const SurrogateSpec& spec,
                                          std::span<double> policy_grad, std::span<double> value_grad) {
  if (impl_->precision == Precision::F32)
    return surrogate_impl(impl_->pool, impl_->time, impl_->surrogate_f32, policy, samples, rows, spec, policy_grad,
                          value_grad);
  return surrogate_impl(impl_->pool, impl_->time, impl_->surrogate_f64, policy, samples, rows, spec, policy_grad,
                        value_grad);
}

namespace {
template <class S>
void act_impl(const Policy& p, std::span<const double> obs, std::span<const std::int32_t> disc,
              std::span<double> log_probs, std::span<double> cont) {
  const ActionSpace& space = p.space();
  const int O = space.obs, L = space.logits();
  const std::int64_t ld = kLanes<S>;
  Weights<S> weights;
  weights.load(p);
  Buffer<S> input(ld * (O + L), S(0));
  const Vector inv_std = p.normalizer.inv_std();
  for (int j = 0; j < O; ++j)
    input[j * ld] = static_cast<S>(
        std::clamp((obs[j] - p.normalizer.mean[j]) * inv_std[j], -Normalizer::kClip, Normalizer::kClip));
  if (p.has_disc()) {
    Buffer<S> acts(ld * p.disc_net().activation_width()), logp(ld * L);
    p.disc_net().forward(weights.disc, 1, input.data(), ld, acts.data(), ld);
    log_softmax<S>(space, 1, Mlp::output(acts.data(), ld, p.disc_net()), ld, logp.data());
    for (int k = 0; k < L; ++k) log_probs[k] = double(logp[k * ld]);
    int column = 0;
    for (int j = 0; j < space.disc(); ++j) {
      input[(O + column + disc[j]) * ld] = S(1);
      column += space.choices[j];
    }
  }
  if (p.has_cont()) {
    Buffer<S> acts(ld * p.cont_net().activation_width()), mean(ld * space.cont());
    p.cont_net().forward(weights.cont, 1, input.data(), ld, acts.data(), ld);
    const S* out = continuous_mean(p, 1, Mlp::output(acts.data(), ld, p.cont_net()), input.data() + O * ld, ld, mean.data());
    for (int i = 0; i < space.cont(); ++i) {
      const double raw = double(out[i * ld]);
      squash(std::span<const double>(&raw, 1), space.lower[i], space.upper[i], cont.subspan(i, 1));
    }
  }
}
}  // namespace

void Engine::act(const Policy& policy, std::span<const double> obs, std::span<const std::int32_t> disc,
                 std::span<double> log_probs, std::span<double> cont) {
  if (impl_->precision == Precision::F32) act_impl<float>(policy, obs, disc, log_probs, cont);
  else act_impl<double>(policy, obs, disc, log_probs, cont);
}

void flatten(const Batch& batch, int obs_size, int disc_size, int cont_size, Samples& s) {
  const std::int64_t N = batch.episodes, T = batch.horizon, total = N * T;
  s.obs.resize(total, obs_size);
  s.raw.resize(total, cont_size);
  s.disc.assign(static_cast<std::size_t>(disc_size * total), 0);
  s.logp_old_disc.resize(total);
  s.logp_old_cont.resize(total);
  s.advantage = Vector::Zero(total);
  s.target = Vector::Zero(total);
  s.time_fraction.resize(total);
  // The batch's columns into rows, 64 samples at a time: each column is read in order while the
  // rows being written stay in cache.
  constexpr std::int64_t kChunk = 64;
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int64_t row = t * N;
    const double* obs = batch.obs.data() + t * obs_size * N;
    const double* raw = batch.raw.data() + t * cont_size * N;
    const std::int32_t* disc = batch.disc.data() + t * disc_size * N;
    for (std::int64_t b0 = 0; b0 < N; b0 += kChunk) {
      const std::int64_t b1 = std::min(N, b0 + kChunk);
      for (int j = 0; j < obs_size; ++j)
        for (std::int64_t b = b0; b < b1; ++b) s.obs(row + b, j) = obs[j * N + b];
      for (int i = 0; i < cont_size; ++i)
        for (std::int64_t b = b0; b < b1; ++b) s.raw(row + b, i) = raw[i * N + b];
      for (int j = 0; j < disc_size; ++j)
        for (std::int64_t b = b0; b < b1; ++b) s.disc[(row + b) * disc_size + j] = disc[j * N + b];
    }
    s.logp_old_disc.segment(row, N) = batch.logp_disc.row(t).transpose();
    s.logp_old_cont.segment(row, N) = batch.logp_cont.row(t).transpose();
    s.time_fraction.segment(row, N).setConstant(double(t) / double(T));
  }
}

}  // namespace hpo::runtime
