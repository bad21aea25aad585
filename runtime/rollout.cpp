// rollout.cpp: one chunk's rollout: observe, normalize, choose, squash, step, check for NaN.
#include "runtime/rollout.hpp"

#include <cmath>

#include "runtime/parallel.hpp"
#include "runtime/random.hpp"

namespace hpo::runtime {

std::vector<Chunk> make_chunks(std::int64_t batch) {
  std::vector<Chunk> chunks;
  for (std::int64_t first = 0; first < batch; first += kChunkSize) {
    Chunk c;
    c.first = first;
    c.size = std::min(kChunkSize, batch - first);
    chunks.push_back(std::move(c));
  }
  return chunks;
}

Vector gaussian_log_prob(const Matrix& raw, const Matrix& mean, std::span<const double> log_std) {
  Vector out = Vector::Constant(raw.rows(), 0.0);
  constexpr double kHalfLog2Pi = 0.9189385332046727;
  for (Eigen::Index i = 0; i < raw.cols(); ++i) {
    const double inv = std::exp(-log_std[i]);
    out.array() -= 0.5 * ((raw.col(i) - mean.col(i)) * inv).array().square() + log_std[i] + kHalfLog2Pi;
  }
  return out;
}

namespace {

void check_finite(const Chunk& chunk, const Model& model, std::int64_t t) {
  const auto n = static_cast<std::size_t>(chunk.size);
  auto cost = chunk.env->cost();
  auto state = chunk.env->state();
  for (std::size_t b = 0; b < n; ++b) {
    std::string where;
    for (std::size_t i = 0; i < model.num_state() && where.empty(); ++i)
      if (!std::isfinite(state[i * n + b])) where = "state " + model.state_names()[i] + " = " + std::to_string(state[i * n + b]);
    if (where.empty() && !std::isfinite(cost[b])) where = "its cost = " + std::to_string(cost[b]);
    if (!where.empty())
      throw NonFiniteError("step " + std::to_string(t) + " of episode " + std::to_string(chunk.first + b) +
                           " produced a value that is not finite: " + where);
  }
}

}  // namespace

void rollout(const RolloutSpec& spec, Chunk& chunk) {
  const Model& model = *spec.model;
  const Policy& policy = *spec.policy;
  const ActionSpace& space = policy.space();
  const std::int64_t n = chunk.size, T = spec.horizon;
  const int D = space.disc(), C = space.cont();
  chunk.env = std::make_unique<BatchEnv>(
      model, BatchEnvOptions{.batch = n, .seed = spec.env_seed, .record = spec.record,
                             .first_stream = static_cast<std::uint64_t>(chunk.first)});
  // The policy draws from its own streams, one per sample, like the environment.
  std::vector<std::uint64_t> rng_words(static_cast<std::size_t>(n) * 4);
  for (std::int64_t b = 0; b < n; ++b)
    Xoshiro::seed(&rng_words[b * 4], spec.policy_seed, static_cast<std::uint64_t>(chunk.first + b));
  chunk.obs.assign(T, Matrix());
  chunk.disc.assign(T, {});
  chunk.raw.assign(T, Matrix());
  chunk.noise.assign(T, Matrix());
  chunk.cost.resize(T, n);
  chunk.logp_disc = Matrix::Zero(T, n);
  chunk.logp_cont = Matrix::Zero(T, n);
  chunk.value = Matrix::Zero(T, n);
  chunk.total = Vector::Zero(n);

  Mlp::Tape tape;
  std::vector<double> cont_action(static_cast<std::size_t>(C * n));
  double weight = 1.0;
  for (std::int64_t t = 0; t < T; ++t) {
    auto obs_view = chunk.env->observation();
    Matrix obs = Eigen::Map<const Matrix>(obs_view.data(), n, space.obs);
    Matrix z = policy.normalizer.apply(obs);
    std::vector<std::int32_t>& disc = chunk.disc[t];
    disc.assign(static_cast<std::size_t>(D * n), 0);
    if (D > 0) {
      policy.disc_net().forward(policy.disc_params(), z, tape);
      Matrix logp = log_softmax(space, tape.output);
      if (spec.mode == ActMode::Gumbel) chunk.noise[t].resize(n, space.logits());
      int column = 0;
      for (int j = 0; j < D; ++j) {
        const int k_count = space.choices[j];
        for (std::int64_t b = 0; b < n; ++b) {
          Xoshiro rng(&rng_words[b * 4]);
          int chosen = 0;
          if (spec.mode == ActMode::Greedy) {
            logp.row(b).segment(column, k_count).maxCoeff(&chosen);
          } else if (spec.mode == ActMode::Gumbel) {
            double best = -INFINITY;
            for (int k = 0; k < k_count; ++k) {
              double g = -std::log(-std::log(rng.open_uniform01()));
              chunk.noise[t](b, column + k) = g;
              if (logp(b, column + k) + g > best) best = logp(b, column + k) + g, chosen = k;
            }
          } else {
            double u = rng.uniform01(), acc = 0;
            chosen = k_count - 1;
            for (int k = 0; k < k_count; ++k) {
              acc += std::exp(logp(b, column + k));
              if (u < acc) {
                chosen = k;
                break;
              }
            }
          }
          disc[j * n + b] = chosen;
          chunk.logp_disc(t, b) += logp(b, column + chosen);
        }
        column += k_count;
      }
    }
    if (C > 0) {
      policy.cont_net().forward(policy.cont_params(), policy.cont_input(z, one_hot(space, disc, n)), tape);
      Matrix& raw = chunk.raw[t];
      raw = tape.output;
      if (policy.gaussian() && spec.mode != ActMode::Greedy) {
        Matrix& eps = chunk.noise[t];
        eps.resize(n, C);
        for (std::int64_t b = 0; b < n; ++b) {
          Xoshiro rng(&rng_words[b * 4]);
          for (int i = 0; i < C; ++i) eps(b, i) = standard_normal(rng);
        }
        auto log_std = policy.log_std();
        for (int i = 0; i < C; ++i) raw.col(i) += std::exp(log_std[i]) * eps.col(i);
        chunk.logp_cont.row(t) += gaussian_log_prob(raw, tape.output, log_std).transpose();
      }
      for (int i = 0; i < C; ++i)
        for (std::int64_t b = 0; b < n; ++b)
          cont_action[i * n + b] = squash(raw(b, i), space.lower[i], space.upper[i]);
    }
    if (spec.values) {
      policy.value_net().forward(policy.value_params, policy.value_input(z, double(t) / double(T)), tape);
      chunk.value.row(t) = tape.output.col(0).transpose() * policy.value_scale;
    }
    chunk.env->step(disc, cont_action);
    check_finite(chunk, model, t);
    auto cost = chunk.env->cost();
    for (std::int64_t b = 0; b < n; ++b) {
      chunk.cost(t, b) = cost[b];
      chunk.total[b] += weight * cost[b];
    }
    weight *= spec.discount;
    chunk.obs[t] = std::move(obs);
  }
}

Vector rollout_totals(const RolloutSpec& spec, std::int64_t episodes, int threads) {
  std::vector<Chunk> chunks = make_chunks(episodes);
  parallel_for(chunks.size(), threads, [&](std::size_t i) { rollout(spec, chunks[i]); });
  Vector totals(episodes);
  for (const auto& c : chunks) totals.segment(c.first, c.size) = c.total;
  return totals;
}

}  // namespace hpo::runtime
