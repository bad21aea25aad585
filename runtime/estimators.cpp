// estimators.cpp: the reverse sweep of a trajectory through policy and simulator, and the
// score-function surrogate's gradient.
#include "runtime/estimators.hpp"

#include <cmath>

#include "runtime/parallel.hpp"

namespace hpo::runtime {

void backward_through_trajectory(const RolloutSpec& spec, const Chunk& chunk, const BackwardSpec& bw,
                                 const Matrix& sf_weight, std::span<double> grad) {
  const Policy& policy = *spec.policy;
  const ActionSpace& space = policy.space();
  const BatchEnv& env = *chunk.env;
  const Model& model = *spec.model;
  const std::int64_t n = chunk.size, T = spec.horizon;
  const int O = space.obs, D = space.disc(), C = space.cont(), L = space.logits();
  const std::size_t S = model.num_state();

  std::vector<double> state_bar(S * n, 0.0), next_bar(S * n, 0.0), cont_bar(C * n), cost_bar(n);
  std::vector<double> replay_next(S * n), replay_cost(n);
  std::vector<std::int32_t> replay_disc;
  Mlp::Tape tape;
  Matrix input_grad;
  for (std::int64_t t = T; t-- > 0;) {
    const double weight = std::pow(spec.discount, double(t));
    std::swap(state_bar, next_bar);
    std::fill(state_bar.begin(), state_bar.end(), 0.0);
    std::fill(cont_bar.begin(), cont_bar.end(), 0.0);
    std::fill(cost_bar.begin(), cost_bar.end(), bw.cost_weight * weight);
    env.step_backward(t, next_bar, cost_bar, state_bar, cont_bar);

    const Matrix& obs = chunk.obs[t];
    const std::vector<std::int32_t>& disc = chunk.disc[t];
    Matrix z = policy.normalizer.apply(obs);
    Matrix z_grad = Matrix::Zero(n, O);
    Matrix one_hot_grad;
    if (C > 0) {
      Matrix hot = one_hot(space, disc, n);
      policy.cont_net().forward(policy.cont_params(), policy.cont_input(z, hot), tape);
      const Matrix& raw = chunk.raw[t];
      Matrix raw_grad(n, C);
      for (int i = 0; i < C; ++i)
        for (std::int64_t b = 0; b < n; ++b)
          raw_grad(b, i) = cont_bar[i * n + b] * squash_derivative(raw(b, i), space.lower[i], space.upper[i]);
      if (policy.gaussian()) {
        // raw = mean + exp(log_std) * eps: d raw/d mean = 1, d raw/d log_std = exp(log_std) * eps.
        auto log_std_grad = policy.log_std_grad(grad);
        auto log_std = policy.log_std();
        for (int i = 0; i < C; ++i)
          log_std_grad[i] += std::exp(log_std[i]) * raw_grad.col(i).dot(chunk.noise[t].col(i));
      }
      policy.cont_net().backward(policy.cont_params(), tape, raw_grad, policy.cont_grad(grad), &input_grad);
      z_grad += input_grad.leftCols(O);
      one_hot_grad = input_grad.rightCols(L);
    }
    if (D > 0) {
      policy.disc_net().forward(policy.disc_params(), z, tape);
      Matrix logp = log_softmax(space, tape.output);
      Matrix p = logp.array().exp();
      Matrix logits_grad = Matrix::Zero(n, L);
      int column = 0;
      for (int j = 0; j < D; ++j) {
        const int k_count = space.choices[j];
        auto block_p = p.middleCols(column, k_count);
        auto block_grad = logits_grad.middleCols(column, k_count);
        if (bw.score_function) {
          // d/dlogits log softmax(logits)_d = onehot(d) - p.
          for (std::int64_t b = 0; b < n; ++b) {
            const double w = sf_weight(t, b);
            block_grad.row(b) -= w * block_p.row(b);
            block_grad(b, disc[j * n + b]) += w;
          }
        }
        if (bw.entropy_coef != 0) {
          // d/dlogit_k H = -p_k (log p_k + H), and the loss subtracts entropy_coef * H.
          auto block_logp = logp.middleCols(column, k_count);
          Vector entropy = -(block_p.array() * block_logp.array()).rowwise().sum();
          block_grad.array() +=
              bw.entropy_coef * bw.cost_weight * block_p.array() * (block_logp.colwise() + entropy).array();
        }
        if (bw.straight_through) {
          // The step is treated as multilinear in the one-hot choice y: dL/dy_k is the loss's
          // linearization at step t evaluated with choice k (others as sampled).
          Matrix y_grad(n, k_count);
          replay_disc = disc;
          for (int k = 0; k < k_count; ++k) {
            for (std::int64_t b = 0; b < n; ++b) replay_disc[j * n + b] = k;
            env.replay_step(t, replay_disc, replay_next, replay_cost);
            for (std::int64_t b = 0; b < n; ++b) {
              double g = cost_bar[b] * replay_cost[b];
              for (std::size_t i = 0; i < S; ++i) g += next_bar[i * n + b] * replay_next[i * n + b];
              y_grad(b, k) = g;
            }
          }
          if (C > 0) y_grad += one_hot_grad.middleCols(column, k_count);
          // y = softmax((logits + g) / tau): dy/dlogits = (diag(y) - y y^T) / tau.
          Matrix scores = (logp.middleCols(column, k_count) + chunk.noise[t].middleCols(column, k_count)) / bw.temperature;
          scores.colwise() -= scores.rowwise().maxCoeff();
          Matrix y = scores.array().exp();
          y.array().colwise() /= y.rowwise().sum().array();
          Vector mean = (y.array() * y_grad.array()).rowwise().sum();
          block_grad.array() += (y.array() * (y_grad.colwise() - mean).array()) / bw.temperature;
        }
        column += k_count;
      }
      const bool into_states = bw.cross_term || bw.straight_through;
      policy.disc_net().backward(policy.disc_params(), tape, logits_grad, policy.disc_grad(grad),
                                 into_states ? &input_grad : nullptr);
      if (into_states) z_grad += input_grad;
    }
    Matrix obs_grad = policy.normalizer.backward(obs, z_grad);
    env.observe_backward(t, std::span<const double>(obs_grad.data(), obs_grad.size()), state_bar);
  }
}

Samples flatten(const std::vector<Chunk>& chunks, std::int64_t horizon) {
  Samples s;
  std::int64_t total = 0;
  for (const auto& c : chunks) total += c.size * horizon;
  if (chunks.empty()) return s;
  const Chunk& first = chunks.front();
  const auto O = first.obs.empty() ? 0 : first.obs[0].cols();
  const auto C = first.raw.empty() ? 0 : first.raw[0].cols();
  const std::size_t D = first.disc.empty() || first.size == 0 ? 0 : first.disc[0].size() / first.size;
  s.obs.resize(total, O);
  s.raw.resize(total, C);
  s.disc.assign(D * total, 0);
  s.logp_old_disc.resize(total);
  s.logp_old_cont.resize(total);
  s.advantage = Vector::Zero(total);
  s.target = Vector::Zero(total);
  s.time_fraction.resize(total);
  std::int64_t row = 0;
  for (const auto& c : chunks)
    for (std::int64_t t = 0; t < horizon; ++t) {
      s.obs.middleRows(row, c.size) = c.obs[t];
      if (C > 0) s.raw.middleRows(row, c.size) = c.raw[t];
      for (std::size_t j = 0; j < D; ++j)
        for (std::int64_t b = 0; b < c.size; ++b) s.disc[j * total + row + b] = c.disc[t][j * c.size + b];
      s.logp_old_disc.segment(row, c.size) = c.logp_disc.row(t).transpose();
      s.logp_old_cont.segment(row, c.size) = c.logp_cont.row(t).transpose();
      s.time_fraction.segment(row, c.size).setConstant(double(t) / double(horizon));
      row += c.size;
    }
  return s;
}

namespace {

constexpr std::int64_t kRowsPerTask = 512;

struct BlockResult {
  std::vector<double> policy_grad, value_grad;
  SurrogateStats stats;
};

void surrogate_block(const Policy& policy, const Samples& samples, std::span<const std::int64_t> rows,
                     const SurrogateSpec& spec, double mean_advantage, double advantage_scale, double inv_count,
                     BlockResult& out) {
  const ActionSpace& space = policy.space();
  const std::int64_t n = static_cast<std::int64_t>(rows.size()), N = samples.rows();
  const int O = space.obs, D = space.disc(), C = space.cont();
  Matrix obs(n, O), raw(n, C);
  std::vector<std::int32_t> disc(static_cast<std::size_t>(D * n));
  Vector logp_old(n), adv(n), target(n), time_fraction(n);
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int64_t src = rows[r];
    obs.row(r) = samples.obs.row(src);
    if (C > 0) raw.row(r) = samples.raw.row(src);
    for (int j = 0; j < D; ++j) disc[j * n + r] = samples.disc[j * N + src];
    logp_old[r] = (spec.discrete ? samples.logp_old_disc[src] : 0.0) +
                  (spec.continuous && policy.gaussian() ? samples.logp_old_cont[src] : 0.0);
    adv[r] = (samples.advantage[src] - mean_advantage) * advantage_scale;
    target[r] = samples.target[src];
    time_fraction[r] = samples.time_fraction[src];
  }
  Matrix z = policy.normalizer.apply(obs);
  out.policy_grad.assign(policy.params.size(), 0.0);
  out.value_grad.assign(policy.value_params.size(), 0.0);
  std::span<double> grad(out.policy_grad);
  Mlp::Tape disc_tape, cont_tape;
  Vector logp = Vector::Zero(n);
  Matrix disc_logp, cont_mean;
  if (spec.discrete && D > 0) {
    policy.disc_net().forward(policy.disc_params(), z, disc_tape);
    disc_logp = log_softmax(space, disc_tape.output);
    int column = 0;
    for (int j = 0; j < D; ++j) {
      for (std::int64_t r = 0; r < n; ++r) logp[r] += disc_logp(r, column + disc[j * n + r]);
      column += space.choices[j];
    }
  }
  const bool gaussian = spec.continuous && policy.gaussian();
  if (gaussian) {
    policy.cont_net().forward(policy.cont_params(), policy.cont_input(z, one_hot(space, disc, n)), cont_tape);
    cont_mean = cont_tape.output;
    logp += gaussian_log_prob(raw, cont_mean, policy.log_std());
  }
  // dL/dlogp per row: the clipped objective max(r A, clip(r) A) follows r A unless clipping binds.
  Vector logp_grad = Vector::Zero(n);
  for (std::int64_t r = 0; r < n; ++r) {
    const double ratio = std::exp(logp[r] - logp_old[r]);
    const double clipped = std::clamp(ratio, 1.0 - spec.clip, 1.0 + spec.clip);
    const bool binds = clipped * adv[r] > ratio * adv[r];
    if (!binds) logp_grad[r] = ratio * adv[r] * inv_count;
    out.stats.clip_fraction += (binds ? 1.0 : 0.0) * inv_count;
    out.stats.approx_kl += (logp_old[r] - logp[r]) * inv_count;
  }
  if (spec.discrete && D > 0) {
    Matrix p = disc_logp.array().exp();
    Matrix logits_grad = Matrix::Zero(n, space.logits());
    int column = 0;
    for (int j = 0; j < D; ++j) {
      const int k_count = space.choices[j];
      auto block_p = p.middleCols(column, k_count);
      auto block_logp = disc_logp.middleCols(column, k_count);
      auto block_grad = logits_grad.middleCols(column, k_count);
      block_grad = -(block_p.array().colwise() * logp_grad.array()).matrix();
      for (std::int64_t r = 0; r < n; ++r) block_grad(r, disc[j * n + r]) += logp_grad[r];
      Vector entropy = -(block_p.array() * block_logp.array()).rowwise().sum();
      out.stats.entropy += entropy.sum() * inv_count;
      if (spec.entropy_coef != 0)
        block_grad.array() += spec.entropy_coef * inv_count * block_p.array() * (block_logp.colwise() + entropy).array();
      column += k_count;
    }
    policy.disc_net().backward(policy.disc_params(), disc_tape, logits_grad, policy.disc_grad(grad), nullptr);
  }
  if (gaussian) {
    auto log_std = policy.log_std();
    auto log_std_grad = policy.log_std_grad(grad);
    Matrix mean_grad(n, C);
    for (int i = 0; i < C; ++i) {
      const double inv_var = std::exp(-2 * log_std[i]);
      Vector diff = raw.col(i) - cont_mean.col(i);
      // d log N / d mean = (raw - mean) / sigma^2; d log N / d log_std = (raw - mean)^2 / sigma^2 - 1.
      mean_grad.col(i) = (diff * inv_var).cwiseProduct(logp_grad);
      log_std_grad[i] += ((diff.array().square() * inv_var - 1.0).matrix()).dot(logp_grad);
      log_std_grad[i] -= spec.entropy_coef * n * inv_count;
    }
    policy.cont_net().backward(policy.cont_params(), cont_tape, mean_grad, policy.cont_grad(grad), nullptr);
  }
  if (spec.value) {
    Mlp::Tape value_tape;
    Matrix input(n, O + 1);
    input << z, time_fraction;
    policy.value_net().forward(policy.value_params, input, value_tape);
    Vector scaled_error = value_tape.output.col(0) - target / policy.value_scale;
    out.stats.value_loss += scaled_error.squaredNorm() * inv_count;
    Matrix out_grad = (2.0 * spec.value_coef * inv_count) * scaled_error;
    policy.value_net().backward(policy.value_params, value_tape, out_grad, out.value_grad, nullptr);
  }
}

}  // namespace

SurrogateStats surrogate_gradient(const Policy& policy, const Samples& samples, std::span<const std::int64_t> rows,
                                  const SurrogateSpec& spec, std::span<double> policy_grad, std::span<double> value_grad,
                                  int threads) {
  double mean = 0, scale = 1;
  if (spec.normalize_advantage && !rows.empty()) {
    double sum = 0, sq = 0;
    for (auto r : rows) sum += samples.advantage[r];
    mean = sum / double(rows.size());
    for (auto r : rows) sq += (samples.advantage[r] - mean) * (samples.advantage[r] - mean);
    scale = 1.0 / (std::sqrt(sq / double(rows.size())) + 1e-8);
  }
  const double inv_count = rows.empty() ? 0.0 : 1.0 / double(rows.size());
  const std::size_t tasks = (rows.size() + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<BlockResult> results(tasks);
  parallel_for(tasks, threads, [&](std::size_t i) {
    const std::size_t begin = i * kRowsPerTask, count = std::min<std::size_t>(kRowsPerTask, rows.size() - begin);
    surrogate_block(policy, samples, rows.subspan(begin, count), spec, mean, scale, inv_count, results[i]);
  });
  SurrogateStats stats;
  for (const auto& r : results) {
    for (std::size_t k = 0; k < policy_grad.size(); ++k) policy_grad[k] += r.policy_grad[k];
    for (std::size_t k = 0; k < value_grad.size(); ++k) value_grad[k] += r.value_grad[k];
    stats.approx_kl += r.stats.approx_kl;
    stats.entropy += r.stats.entropy;
    stats.value_loss += r.stats.value_loss;
    stats.clip_fraction += r.stats.clip_fraction;
  }
  return stats;
}

}  // namespace hpo::runtime
