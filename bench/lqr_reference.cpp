// lqr_reference.cpp: the references trained switched-LQR policies are measured against: the best
// single-mode LQR controller (finite-horizon Riccati gains, one per mode) and a switching rule
// that at every step takes the mode whose own LQR value function promises the least.
//
//   lqr_reference examples/switched_lqr.hpo [--set D=8 ...] [--test-seed 1001] [--episodes 1024]
//
// The model must be shaped like examples/switched_lqr.hpo: state x[D] observed as is, action
// mode : choice(K), action u[M], params A[D, D], B[K, D, M], Q[D, D], R[M, M], step
// x' = clamp(A x + B[mode] u) with cost x'Qx + u'Ru on the state before the step.
#include <CLI/CLI.hpp>
#include <Eigen/Dense>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>

#include "hpo/hpo.hpp"

namespace {

using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;

// The values of a declared param, row-major, found by its first element's name.
std::vector<double> param(const hpo::Model& model, const std::string& name, std::size_t count,
                          const std::string& first_element) {
  const auto& names = model.param_names();
  for (std::size_t i = 0; i + count <= names.size(); ++i)
    if (names[i] == first_element) return {model.params().begin() + i, model.params().begin() + i + count};
  throw std::invalid_argument("the model has no param " + name + " (looked for " + first_element + ")");
}

Matrix matrix(const std::vector<double>& v, std::size_t offset, int rows, int cols) {
  Matrix m(rows, cols);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m(i, j) = v[offset + std::size_t(i) * cols + j];
  return m;
}

struct Lqr {
  std::vector<Matrix> gain;   // K_t: u = -K_t x
  std::vector<Matrix> value;  // P_t: cost-to-go x'P_t x from step t (P_T = 0)
};

// Backward Riccati recursion for sum_{t<T} x_t'Q x_t + u_t'R u_t with x_{t+1} = A x_t + B u_t.
Lqr riccati(const Matrix& A, const Matrix& B, const Matrix& Q, const Matrix& R, std::int64_t T) {
  Lqr l;
  l.gain.resize(T);
  l.value.assign(T + 1, Matrix::Zero(A.rows(), A.rows()));
  for (std::int64_t t = T; t-- > 0;) {
    const Matrix& P = l.value[t + 1];
    l.gain[t] = (R + B.transpose() * P * B).ldlt().solve(B.transpose() * P * A);
    l.value[t] = Q + A.transpose() * P * (A - B * l.gain[t]);
  }
  return l;
}

struct Estimate {
  double mean, ci95;
};

// Mean discounted cost of a state-feedback rule over `episodes` scenarios of `seed`.
Estimate evaluate(const hpo::Model& model, std::uint64_t seed, std::int64_t episodes,
                  const std::function<int(std::int64_t t, const Vector& x, Vector& u)>& rule) {
  hpo::BatchEnv env(model, {.batch = episodes, .seed = seed, .record = false});
  const std::size_t n = std::size_t(episodes), D = model.num_state(), M = model.num_cont();
  std::vector<std::int32_t> disc(n);
  std::vector<double> cont(M * n), total(n, 0.0);
  Vector x(D), u(M);
  double weight = 1.0;
  for (std::int64_t t = 0; t < model.horizon(); ++t) {
    auto state = env.state();
    for (std::size_t b = 0; b < n; ++b) {
      for (std::size_t i = 0; i < D; ++i) x[i] = state[i * n + b];
      disc[b] = rule(t, x, u);
      for (std::size_t j = 0; j < M; ++j)
        cont[j * n + b] = std::clamp(u[j], model.cont_lower()[j], model.cont_upper()[j]);
    }
    env.step(disc, cont);
    for (std::size_t b = 0; b < n; ++b) total[b] += weight * env.cost()[b];
    weight *= model.discount();
  }
  double mean = 0, sq = 0;
  for (double c : total) mean += c / double(n);
  for (double c : total) sq += (c - mean) * (c - mean);
  return {mean, 1.96 * std::sqrt(sq / double(n > 1 ? n - 1 : 1) / double(n))};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The best single-mode LQR and a value-based switching rule for switched-LQR models", "lqr_reference"};
  std::string path;
  hpo::CompileOptions compile;
  std::uint64_t seed = 1001;
  std::int64_t episodes = 1024;
  app.add_option("model", path, "Model file (.hpo)")->required();
  app.add_option("--set", compile.sets, "NAME=VALUE for a param or const");
  app.add_option("--params", compile.params_file, "JSON file with param values");
  app.add_option("--test-seed", seed, "Scenario seed (hpoc train's test seed by default)")->capture_default_str();
  app.add_option("--episodes", episodes, "Episodes")->capture_default_str()->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    const auto start = std::chrono::steady_clock::now();
    hpo::Model model = hpo::compile_file(path, compile);
    if (model.num_disc() != 1 || model.num_obs() != model.num_state())
      throw std::invalid_argument("expected one mode action and the whole state observed");
    const int D = int(model.num_state()), M = int(model.num_cont()), K = int(model.disc_choices()[0]);
    const std::int64_t T = model.horizon();
    const Matrix A = matrix(param(model, "A", D * D, "A[0, 0]"), 0, D, D);
    const auto b = param(model, "B", std::size_t(K) * D * M, "B[0, 0, 0]");
    const Matrix Q = matrix(param(model, "Q", D * D, "Q[0, 0]"), 0, D, D);
    const Matrix R = matrix(param(model, "R", M * M, "R[0, 0]"), 0, M, M);
    std::vector<Matrix> B;
    std::vector<Lqr> lqr;
    for (int k = 0; k < K; ++k) {
      B.push_back(matrix(b, std::size_t(k) * D * M, D, M));
      lqr.push_back(riccati(A, B.back(), Q, R, T));
    }
    std::printf("model %s: D = %d, M = %d, K = %d, horizon %lld; test seed %llu, %lld episodes\n", model.name().c_str(),
                D, M, K, (long long)T, (unsigned long long)seed, (long long)episodes);
    double best = INFINITY;
    int best_mode = 0;
    for (int k = 0; k < K; ++k) {
      Estimate e = evaluate(model, seed, episodes, [&](std::int64_t t, const Vector& x, Vector& u) {
        u = -lqr[k].gain[t] * x;
        return k;
      });
      std::printf("  mode %d alone (LQR): %.3f +- %.3f\n", k, e.mean, e.ci95);
      if (e.mean < best) best = e.mean, best_mode = k;
    }
    std::printf("best single-mode LQR: mode %d, test cost %.3f\n", best_mode, best);
    // One step of policy improvement over the single-mode LQR policies: the mode whose own value
    // function rates the next state (and this input) lowest.
    Estimate s = evaluate(model, seed, episodes, [&](std::int64_t t, const Vector& x, Vector& u) {
      double lowest = INFINITY;
      int chosen = 0;
      for (int k = 0; k < K; ++k) {
        Vector uk = -lqr[k].gain[t] * x;
        for (int j = 0; j < M; ++j) uk[j] = std::clamp(uk[j], model.cont_lower()[j], model.cont_upper()[j]);
        Vector next = A * x + B[k] * uk;
        const double score = uk.dot(R * uk) + next.dot(lqr[k].value[t + 1] * next);
        if (score < lowest) lowest = score, chosen = k, u = uk;
      }
      return chosen;
    });
    std::printf("switching rule (per step, the mode whose LQR value is lowest): test cost %.3f +- %.3f\n", s.mean,
                s.ci95);
    std::printf("took %.2f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  } catch (const hpo::CompileError& e) {
    std::fprintf(stderr, "%s", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lqr_reference: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
