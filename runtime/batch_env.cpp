// batch_env.cpp: hpo::BatchEnv: batched reset and step through the JIT's SoA kernels, noise from
// one random stream per sample, and the adjoint of a recorded trajectory.
#include <algorithm>

#include "ir/interpreter.hpp"
#include "runtime/model.hpp"
#include "runtime/random.hpp"

namespace hpo {

BatchEnv::BatchEnv(const Model& model, BatchEnvOptions options)
    : model_(&model), batch_(options.batch), record_(options.record), first_stream_(options.first_stream) {
  if (batch_ < 1) throw std::invalid_argument("a BatchEnv needs a batch of at least 1");
  rng_.resize(static_cast<std::size_t>(batch_) * 4);
  reset(options.seed);
}

void BatchEnv::draw_noise(std::vector<double>& out) {
  const auto& draws = model_->impl_->program->noise_draws;
  const auto n = static_cast<std::size_t>(batch_);
  out.resize(draws.size() * n);
  for (std::size_t b = 0; b < n; ++b) {
    runtime::Xoshiro rng(&rng_[b * 4]);
    for (std::size_t i = 0; i < draws.size(); ++i) {
      const double* args = noise_args_.data() + draws[i].first_arg;
      out[i * n + b] = draws[i].dist == Distribution::Poisson ? runtime::draw_poisson(poisson_cdf_[i], poisson_guide_[i], args[0], rng)
                                                              : runtime::draw(draws[i].dist, args, draws[i].arg_count, rng);
    }
  }
}

void BatchEnv::reset(std::uint64_t seed) {
  const Model::Impl& m = *model_->impl_;
  // Params may have changed since the last reset: the distributions follow them.
  noise_args_ = ir::interpret(m.program->noise_args, {m.params, {}, {}, {}, {}});
  const auto& draws = m.program->noise_draws;
  poisson_cdf_.resize(draws.size());
  poisson_guide_.resize(draws.size());
  for (std::size_t i = 0; i < draws.size(); ++i) {
    if (draws[i].dist != Distribution::Poisson) continue;
    runtime::PoissonTable table = runtime::poisson_table(noise_args_[draws[i].first_arg]);
    poisson_cdf_[i] = std::move(table.cdf);
    poisson_guide_[i] = std::move(table.guide);
  }
  for (std::size_t b = 0; b < static_cast<std::size_t>(batch_); ++b) runtime::Xoshiro::seed(&rng_[b * 4], seed, first_stream_ + b);
  const auto n = static_cast<std::size_t>(batch_);
  std::vector<double> noise0;
  draw_noise(noise0);
  state_.assign(model_->num_state() * n, 0.0);
  next_.assign(model_->num_state() * n, 0.0);
  obs_.assign(model_->num_obs() * n, 0.0);
  cost_.assign(n, 0.0);
  m.kernels->init_batch(batch_, m.params.data(), noise0.data(), state_.data());
  m.kernels->observe_batch(batch_, m.params.data(), state_.data(), obs_.data(), 0);
  states_.clear();
  conts_.clear();
  noises_.clear();
  discs_.clear();
  t_ = 0;
}

void BatchEnv::step(std::span<const std::int32_t> disc, std::span<const double> cont) {
  const Model::Impl& m = *model_->impl_;
  const auto n = static_cast<std::size_t>(batch_);
  if (disc.size() != model_->num_disc() * n || cont.size() != model_->num_cont() * n)
    throw std::invalid_argument("step needs " + std::to_string(model_->num_disc() * n) + " discrete and " +
                                std::to_string(model_->num_cont() * n) + " continuous values (num x batch), got " +
                                std::to_string(disc.size()) + " and " + std::to_string(cont.size()));
  check_disc(disc);
  draw_noise(noise_);
  m.kernels->step_batch(batch_, m.params.data(), state_.data(), disc.data(), cont.data(), noise_.data(), next_.data(),
                        cost_.data(), t_);
  if (record_) {
    states_.insert(states_.end(), state_.begin(), state_.end());
    discs_.insert(discs_.end(), disc.begin(), disc.end());
    conts_.insert(conts_.end(), cont.begin(), cont.end());
    noises_.insert(noises_.end(), noise_.begin(), noise_.end());
  }
  std::swap(state_, next_);
  ++t_;
  // The observation of the state before step t_ (t_ = horizon after the last step).
  m.kernels->observe_batch(batch_, m.params.data(), state_.data(), obs_.data(), t_);
}

void BatchEnv::check_disc(std::span<const std::int32_t> disc) const {
  const auto n = static_cast<std::size_t>(batch_);
  const auto& choices = model_->disc_choices();
  for (std::size_t i = 0; i < choices.size(); ++i)
    for (std::size_t b = 0; b < n; ++b) {
      std::int32_t d = disc[i * n + b];
      if (d < 0 || d >= choices[i])
        throw std::out_of_range("discrete action " + model_->disc_names()[i] + " of sample " + std::to_string(b) +
                                " is " + std::to_string(d) + "; it takes 0.." + std::to_string(choices[i] - 1));
    }
}

void BatchEnv::check_recorded(std::int64_t t, std::int64_t last, const char* what) const {
  if (!record_) throw std::logic_error(std::string(what) + " needs a BatchEnv made with record = true");
  if (t < 0 || t > last)
    throw std::out_of_range(std::string(what) + ": step " + std::to_string(t) + " is not recorded (0.." +
                            std::to_string(last) + ")");
}

std::span<const double> BatchEnv::recorded_state(std::int64_t t) const {
  check_recorded(t, t_, "recorded_state");
  if (t == t_) return state_;
  const std::size_t size = model_->num_state() * static_cast<std::size_t>(batch_);
  return {states_.data() + static_cast<std::size_t>(t) * size, size};
}

std::span<const std::int32_t> BatchEnv::recorded_disc(std::int64_t t) const {
  check_recorded(t, t_ - 1, "recorded_disc");
  const std::size_t size = model_->num_disc() * static_cast<std::size_t>(batch_);
  return {discs_.data() + static_cast<std::size_t>(t) * size, size};
}

std::span<const double> BatchEnv::recorded_cont(std::int64_t t) const {
  check_recorded(t, t_ - 1, "recorded_cont");
  const std::size_t size = model_->num_cont() * static_cast<std::size_t>(batch_);
  return {conts_.data() + static_cast<std::size_t>(t) * size, size};
}

static void require_length(std::span<const double> s, std::size_t want, const char* what) {
  if (s.size() != want)
    throw std::invalid_argument(std::string(what) + " needs " + std::to_string(want) + " values (num x batch), got " +
                                std::to_string(s.size()));
}

void BatchEnv::step_backward(std::int64_t t, std::span<const double> next_state_bar, std::span<const double> cost_bar,
                             std::span<double> state_bar, std::span<double> cont_bar) const {
  check_recorded(t, t_ - 1, "step_backward");
  const Model::Impl& m = *model_->impl_;
  const auto n = static_cast<std::size_t>(batch_), ut = static_cast<std::size_t>(t);
  const std::size_t S = model_->num_state(), C = model_->num_cont(), D = model_->num_disc(), N = model_->num_noise();
  require_length(next_state_bar, S * n, "step_backward's next_state_bar");
  require_length(cost_bar, n, "step_backward's cost_bar");
  require_length(state_bar, S * n, "step_backward's state_bar");
  require_length(cont_bar, C * n, "step_backward's cont_bar");
  m.kernels->step_adj_batch(batch_, m.params.data(), states_.data() + ut * S * n, discs_.data() + ut * D * n,
                            conts_.data() + ut * C * n, noises_.data() + ut * N * n, next_state_bar.data(),
                            cost_bar.data(), state_bar.data(), cont_bar.data(), t);
}

void BatchEnv::observe_backward(std::int64_t t, std::span<const double> obs_bar, std::span<double> state_bar) const {
  auto state = recorded_state(t);
  const Model::Impl& m = *model_->impl_;
  const auto n = static_cast<std::size_t>(batch_);
  require_length(obs_bar, model_->num_obs() * n, "observe_backward's obs_bar");
  require_length(state_bar, model_->num_state() * n, "observe_backward's state_bar");
  m.kernels->observe_adj_batch(batch_, m.params.data(), state.data(), obs_bar.data(), state_bar.data(), t);
}

void BatchEnv::replay_step(std::int64_t t, std::span<const std::int32_t> disc, std::span<double> next_state,
                           std::span<double> cost) const {
  check_recorded(t, t_ - 1, "replay_step");
  const Model::Impl& m = *model_->impl_;
  const auto n = static_cast<std::size_t>(batch_), ut = static_cast<std::size_t>(t);
  const std::size_t S = model_->num_state(), C = model_->num_cont(), N = model_->num_noise();
  if (disc.size() != model_->num_disc() * n) throw std::invalid_argument("replay_step needs num_disc x batch actions");
  check_disc(disc);
  require_length(next_state, S * n, "replay_step's next_state");
  require_length(cost, n, "replay_step's cost");
  m.kernels->step_batch(batch_, m.params.data(), states_.data() + ut * S * n, disc.data(), conts_.data() + ut * C * n,
                        noises_.data() + ut * N * n, next_state.data(), cost.data(), t);
}

BatchEnv::Gradients BatchEnv::backward(std::span<const double> cost_bar, std::span<const double> obs_bar) const {
  if (!record_) throw std::logic_error("backward needs a BatchEnv made with record = true");
  const auto n = static_cast<std::size_t>(batch_);
  const std::size_t S = model_->num_state(), C = model_->num_cont(), O = model_->num_obs(),
                    T = static_cast<std::size_t>(t_);
  if (cost_bar.size() != T * n)
    throw std::invalid_argument("backward needs one cost adjoint per step and sample (" + std::to_string(T * n) +
                                "), got " + std::to_string(cost_bar.size()));
  if (!obs_bar.empty() && obs_bar.size() != (T + 1) * O * n)
    throw std::invalid_argument("backward's observation adjoints need (steps + 1) x num_obs x batch = " +
                                std::to_string((T + 1) * O * n) + " values, got " + std::to_string(obs_bar.size()));
  Gradients g;
  g.cont.assign(T * C * n, 0.0);
  std::vector<double> state_bar(S * n, 0.0), earlier(S * n, 0.0);
  auto obs_bar_at = [&](std::size_t t) { return obs_bar.subspan(t * O * n, O * n); };
  if (!obs_bar.empty()) observe_backward(t_, obs_bar_at(T), state_bar);
  for (std::size_t t = T; t-- > 0;) {
    std::fill(earlier.begin(), earlier.end(), 0.0);
    if (!obs_bar.empty()) observe_backward(std::int64_t(t), obs_bar_at(t), earlier);
    step_backward(std::int64_t(t), state_bar, cost_bar.subspan(t * n, n), earlier,
                  std::span<double>(g.cont).subspan(t * C * n, C * n));
    std::swap(state_bar, earlier);
  }
  g.initial_state = std::move(state_bar);
  return g;
}

}  // namespace hpo
