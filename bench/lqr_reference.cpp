// lqr_reference.cpp: the references trained switched-LQR policies are measured against: the best
// single-mode LQR controller (finite-horizon Riccati gains, one per mode), a switching rule that at
// every step takes the mode whose own LQR value function promises the least, and the optimal
// switched controller from the switched Riccati mapping (Zhang, Hu & Abate 2009; relaxed dynamic
// programming, Lincoln & Rantzer 2006).
//
//   lqr_reference examples/switched_lqr.hpo [--set D=8 ...] [--test-seed 1001] [--episodes 1024]
//                 [--relax 0] [--max-set 2000] [--json FILE]
//
// The model must be shaped like examples/switched_lqr.hpo: state x[D] observed as is, action
// mode : choice(K), action u[M], params A[D, D], B[K, D, M], Q[D, D], R[M, M], step
// x' = clamp(A x + B[mode] u) with cost x'Qx + u'Ru on the state before the step.
//
// Why the switched Riccati controller is the optimum: without the bounds on u the optimal cost-to-go
// is V_t(x) = min over P in H_t of x'Px, H_t = every mode's Riccati map of every P in H_{t+1}, H_T = {0},
// acting greedily on it attains V_t, and pruning dominated P keeps it exact; the simulation clamps u.
#include <CLI/CLI.hpp>
#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "hpo/hpo.hpp"

namespace {

using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

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

struct System {
  Matrix A, Q, R;
  std::vector<Matrix> B;  // one per mode
  double discount;
};

// One step of the Riccati recursion for mode B: given the cost-to-go x'Px after the step, the
// optimal gain K (u = -K x) and the cost-to-go x'P'x before it. The discount scales what follows
// the step, as the simulation's weights do.
void riccati_step(const System& s, const Matrix& B, const Matrix& P, Matrix& gain, Matrix& before) {
  const Matrix gP = s.discount * P;
  gain = (s.R + B.transpose() * gP * B).ldlt().solve(B.transpose() * gP * s.A);
  before = s.Q + s.A.transpose() * gP * (s.A - B * gain);
  before = 0.5 * (before + before.transpose());  // symmetric up to rounding; the dominance tests assume it
}

struct Lqr {
  std::vector<Matrix> gain;   // K_t: u = -K_t x
  std::vector<Matrix> value;  // P_t: cost-to-go x'P_t x from step t (P_T = 0)
};

// Backward Riccati recursion for sum_{t<T} g^t (x_t'Q x_t + u_t'R u_t) with x_{t+1} = A x_t + B u_t.
Lqr riccati(const System& s, const Matrix& B, std::int64_t T) {
  Lqr l;
  l.gain.resize(T);
  l.value.assign(T + 1, Matrix::Zero(s.A.rows(), s.A.rows()));
  for (std::int64_t t = T; t-- > 0;) riccati_step(s, B, l.value[t + 1], l.gain[t], l.value[t]);
  return l;
}

// The switched Riccati sets H_0..H_{T-1}: V_t(x) = min over the set's elements of x'Px, each element
// remembering the mode and gain that achieve its value (so the greedy policy needs no search over u).
struct SwitchedRiccati {
  struct Step {
    Matrix values;                // the elements' P stacked vertically (n D x D): one product rates x for all
    std::vector<Matrix> gains;    // u = -gains[i] x
    std::vector<int> modes;
    std::size_t size() const { return modes.size(); }
  };
  std::vector<Step> steps;       // steps[t] = H_t
  bool relaxed = false;          // some matrix was dropped by the relaxed test (not exactly dominated)
  std::int64_t capped_steps = 0; // steps whose set was cut to --max-set
  std::size_t largest = 0;
  bool exact() const { return !relaxed && capped_steps == 0; }
};

struct Candidate {
  Matrix P, gain;
  int mode;
  double trace;
  Vector probes;  // x'Px at fixed probe directions: cheap necessary conditions for dominance
};

// x'Px for many x in one matrix product: x'Px = sum_i P_ii x_i^2 + sum_{i<j} 2 P_ij x_i x_j is the
// dot product of these coefficients of P with the features (x_i x_j, i <= j) of x.
Vector quadratic_coefficients(const Matrix& P) {
  const Eigen::Index D = P.rows();
  Vector c(D * (D + 1) / 2);
  Eigen::Index n = 0;
  for (Eigen::Index i = 0; i < D; ++i)
    for (Eigen::Index j = i; j < D; ++j) c[n++] = i == j ? P(i, i) : 2 * P(i, j);
  return c;
}

Matrix quadratic_features(const Matrix& X) {
  const Eigen::Index D = X.rows();
  Matrix f(D * (D + 1) / 2, X.cols());
  Eigen::Index n = 0;
  for (Eigen::Index i = 0; i < D; ++i)
    for (Eigen::Index j = i; j < D; ++j) f.row(n++) = X.row(i).cwiseProduct(X.row(j));
  return f;
}

// Columns: directions drawn from a normal distribution, so uniform on the sphere once normalized.
Matrix random_directions(int D, Eigen::Index count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Matrix X(D, count);
  for (Eigen::Index j = 0; j < count; ++j)
    for (int i = 0; i < D; ++i) X(i, j) = normal(rng);
  X.colwise().normalize();
  return X;
}

// The features of the unit vectors and of 5 D random unit directions. If P' <= c P then
// v'P'v <= c v'Pv for every v, so comparing these numbers first rejects most non-dominating pairs
// without a factorization; unit length makes tol bound v'(cP - P')v as it bounds the eigenvalue.
// (On switched_lqr.hpo at D = 8 they leave a factorization for about 3% of the pairs.)
Matrix probe_features(int D) {
  Matrix V(D, 6 * D);
  V.leftCols(D).setIdentity();  // the diagonals
  V.rightCols(5 * D) = random_directions(D, 5 * D, 12345);
  return quadratic_features(V);
}

// The matrices kept so far at one step, with their probe values laid out probe by probe: the scan
// for a dominating matrix reads probe 0 of every kept matrix in one contiguous loop, which ends
// about a third of the pairs (D = 8), and the other probes only for the rest.
class KeptSet {
 public:
  KeptSet(int D, Eigen::Index probes) : work_(D, D), llt_(D), probes_(std::size_t(probes)) {}

  // Whether some kept P' <= (1 + relax) P, i.e. the smallest eigenvalue of (1 + relax) P - P' is
  // >= -tol. Cholesky of that matrix + tol I succeeds exactly when the eigenvalue is > -tol, and
  // costs a third of an eigen-decomposition.
  bool dominated(const Candidate& p, double relax, double tol) {
    const double c = 1 + relax;
    const double first_bound = c * p.probes[0] + tol;
    for (std::size_t k = 0; k < kept_.size(); ++k) {
      if (probes_[0][k] > first_bound) continue;
      bool possible = true;
      for (std::size_t j = 1; j < probes_.size() && possible; ++j)
        possible = probes_[j][k] <= c * p.probes[Eigen::Index(j)] + tol;
      if (!possible) continue;
      work_ = c * p.P - kept_[k].P;
      work_.diagonal().array() += tol;
      llt_.compute(work_);
      if (llt_.info() == Eigen::Success) return true;
    }
    return false;
  }

  void add(Candidate c) {
    for (std::size_t j = 0; j < probes_.size(); ++j) probes_[j].push_back(c.probes[Eigen::Index(j)]);
    kept_.push_back(std::move(c));
  }

  std::vector<Candidate> release() { return std::move(kept_); }

 private:
  Matrix work_;
  Eigen::LLT<Matrix> llt_;
  std::vector<Candidate> kept_;
  std::vector<std::vector<double>> probes_;  // probes_[j][k]: probe j of kept matrix k
};

// Keep the `cap` elements that are the minimum at the most of 2 cap random directions (the rest by
// smallest trace): the policy uses only the minimum, and a matrix that is the minimum nowhere in
// the sample matters only in a thin cone of states.
std::vector<Candidate> cut_to_cap(std::vector<Candidate> kept, std::size_t cap, int D) {
  const Matrix features = quadratic_features(random_directions(D, 2 * Eigen::Index(cap), 54321));
  Matrix coefficients(Eigen::Index(kept.size()), features.rows());
  for (std::size_t i = 0; i < kept.size(); ++i) coefficients.row(Eigen::Index(i)) = quadratic_coefficients(kept[i].P);
  std::vector<std::size_t> wins(kept.size(), 0), order(kept.size());
  const Eigen::Index block = 256;  // directions per product: bounds the memory of the values
  for (Eigen::Index first = 0; first < features.cols(); first += block) {
    const Eigen::Index n = std::min(block, features.cols() - first);
    const Matrix values = coefficients * features.middleCols(first, n);  // [element, direction]
    for (Eigen::Index j = 0; j < n; ++j) {
      Eigen::Index winner;
      values.col(j).minCoeff(&winner);
      ++wins[std::size_t(winner)];
    }
  }
  std::iota(order.begin(), order.end(), 0);
  // kept is in increasing trace already, so a stable sort leaves ties in trace order.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return wins[a] > wins[b]; });
  std::vector<Candidate> chosen;
  for (std::size_t i = 0; i < cap; ++i) chosen.push_back(std::move(kept[order[i]]));
  return chosen;
}

// H_t from H_{t+1}: every mode's Riccati step of every element, then the pruning: in increasing
// trace (a dominating matrix never has the larger trace), a candidate is dropped when a kept one
// is <= (1 + relax) times it. With relax = 0 that removes only matrices that are never the
// minimum, so V_t is unchanged; with relax > 0 every state's value grows by at most that factor.
std::vector<Candidate> next_set(const System& s, const std::vector<Candidate>& after, const Matrix& probes,
                                double relax, bool& relaxed) {
  const int D = int(s.A.rows());
  std::vector<Candidate> candidates;
  for (const Candidate& c : after)
    for (int k = 0; k < int(s.B.size()); ++k) {
      Candidate n;
      riccati_step(s, s.B[k], c.P, n.gain, n.P);
      n.mode = k;
      n.trace = n.P.trace();
      n.probes = probes.transpose() * quadratic_coefficients(n.P);
      candidates.push_back(std::move(n));
    }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.trace < b.trace; });
  KeptSet kept(D, probes.cols());
  for (Candidate& c : candidates) {
    // Rounding makes equal matrices differ by ~1e-16 of their size; 1e-9 of it counts as equal.
    const double tol = 1e-9 * std::max(1.0, c.P.diagonal().maxCoeff());
    if (kept.dominated(c, 0, tol)) continue;
    if (relax > 0 && kept.dominated(c, relax, tol)) {
      relaxed = true;  // dropped with no kept matrix below it: V_t may have grown
      continue;
    }
    kept.add(std::move(c));
  }
  return kept.release();
}

SwitchedRiccati switched_riccati(const System& s, std::int64_t T, double relax, std::size_t cap) {
  const int D = int(s.A.rows());
  const Matrix probes = probe_features(D);
  SwitchedRiccati r;
  r.steps.resize(T);
  std::vector<Candidate> set(1);  // H_T = {0}: no terminal cost
  set[0].P = Matrix::Zero(D, D);
  for (std::int64_t t = T; t-- > 0;) {
    set = next_set(s, set, probes, relax, r.relaxed);
    if (set.size() > cap) set = cut_to_cap(std::move(set), cap, D), ++r.capped_steps;
    r.largest = std::max(r.largest, set.size());
    SwitchedRiccati::Step& step = r.steps[t];
    step.values.resize(Eigen::Index(set.size()) * D, D);
    for (std::size_t i = 0; i < set.size(); ++i) {
      step.values.middleRows(Eigen::Index(i) * D, D) = set[i].P;
      step.gains.push_back(set[i].gain);
      step.modes.push_back(set[i].mode);
    }
  }
  return r;
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

nlohmann::json estimate_json(const Estimate& e) { return {{"test_cost", e.mean}, {"ci95", e.ci95}}; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "The best single-mode LQR, a value-based switching rule and the switched Riccati optimum for switched-LQR models",
      "lqr_reference"};
  std::string path, json_path;
  hpo::CompileOptions compile;
  std::uint64_t seed = 1001;
  std::int64_t episodes = 1024;
  double relax = 0;
  std::size_t max_set = 2000;
  app.add_option("model", path, "Model file (.hpo)")->required();
  app.add_option("--set", compile.sets, "NAME=VALUE for a param or const");
  app.add_option("--params", compile.params_file, "JSON file with param values");
  app.add_option("--test-seed", seed, "Scenario seed (hpoc train's test seed by default)")->capture_default_str();
  app.add_option("--episodes", episodes, "Episodes")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--relax", relax,
                 "Switched Riccati: drop a matrix P when a kept P' <= (1 + RELAX) P; the value is then within "
                 "(1 + RELAX)^horizon of the optimum (0: exact)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-set", max_set,
                 "Switched Riccati: at most this many matrices per step, those lowest in the most of 2 MAX_SET random "
                 "directions (when cut: not exact; time grows as K MAX_SET^2)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--json", json_path, "Also write every reference to this JSON file");
  CLI11_PARSE(app, argc, argv);
  // Line by line even into a pipe: the first references show while the switched Riccati sets, which
  // can take minutes with a large --max-set, are built.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    const auto start = Clock::now();
    hpo::Model model = hpo::compile_file(path, compile);
    if (model.num_disc() != 1 || model.num_obs() != model.num_state())
      throw std::invalid_argument("expected one mode action and the whole state observed");
    const int D = int(model.num_state()), M = int(model.num_cont()), K = int(model.disc_choices()[0]);
    const std::int64_t T = model.horizon();
    System sys{.A = matrix(param(model, "A", D * D, "A[0, 0]"), 0, D, D),
               .Q = matrix(param(model, "Q", D * D, "Q[0, 0]"), 0, D, D),
               .R = matrix(param(model, "R", M * M, "R[0, 0]"), 0, M, M),
               .B = {},
               .discount = model.discount()};
    const auto b = param(model, "B", std::size_t(K) * D * M, "B[0, 0, 0]");
    for (int k = 0; k < K; ++k) sys.B.push_back(matrix(b, std::size_t(k) * D * M, D, M));
    auto clamp_u = [&](Vector& u) {
      for (int j = 0; j < M; ++j) u[j] = std::clamp(u[j], model.cont_lower()[j], model.cont_upper()[j]);
    };
    std::printf("model %s: D = %d, M = %d, K = %d, horizon %lld; test seed %llu, %lld episodes\n", model.name().c_str(),
                D, M, K, (long long)T, (unsigned long long)seed, (long long)episodes);
    nlohmann::json out = {{"model", model.name()}, {"D", D},          {"M", M},
                          {"K", K},                {"horizon", T},    {"discount", model.discount()},
                          {"test_seed", seed},     {"episodes", episodes}};

    auto single_start = Clock::now();
    std::vector<Lqr> lqr;
    for (int k = 0; k < K; ++k) lqr.push_back(riccati(sys, sys.B[k], T));
    Estimate best{INFINITY, 0};
    int best_mode = 0;
    nlohmann::json modes = nlohmann::json::array();
    for (int k = 0; k < K; ++k) {
      Estimate e = evaluate(model, seed, episodes, [&](std::int64_t t, const Vector& x, Vector& u) {
        u = -lqr[k].gain[t] * x;
        return k;
      });
      std::printf("  mode %d alone (LQR): %.3f +- %.3f\n", k, e.mean, e.ci95);
      modes.push_back({{"mode", k}, {"test_cost", e.mean}, {"ci95", e.ci95}});
      if (e.mean < best.mean) best = e, best_mode = k;
    }
    const double single_seconds = seconds_since(single_start);
    std::printf("best single-mode LQR: mode %d, test cost %.3f (%.2f s)\n", best_mode, best.mean, single_seconds);
    out["single_mode"] = estimate_json(best);
    out["single_mode"]["best_mode"] = best_mode;
    out["single_mode"]["modes"] = modes;
    out["single_mode"]["seconds"] = single_seconds;

    // One step of policy improvement over the single-mode LQR policies: the mode whose own value
    // function rates the next state (and this input) lowest.
    auto rule_start = Clock::now();
    Estimate s = evaluate(model, seed, episodes, [&](std::int64_t t, const Vector& x, Vector& u) {
      double lowest = INFINITY;
      int chosen = 0;
      for (int k = 0; k < K; ++k) {
        Vector uk = -lqr[k].gain[t] * x;
        clamp_u(uk);
        Vector next = sys.A * x + sys.B[k] * uk;
        const double score = uk.dot(sys.R * uk) + next.dot(lqr[k].value[t + 1] * next);
        if (score < lowest) lowest = score, chosen = k, u = uk;
      }
      return chosen;
    });
    const double rule_seconds = seconds_since(rule_start);
    std::printf("switching rule (per step, the mode whose LQR value is lowest): test cost %.3f +- %.3f (%.2f s)\n",
                s.mean, s.ci95, rule_seconds);
    out["switching_rule"] = estimate_json(s);
    out["switching_rule"]["seconds"] = rule_seconds;

    // The greedy policy on the switched Riccati value function: the element of H_t lowest at x
    // gives the mode and the gain.
    auto riccati_start = Clock::now();
    const SwitchedRiccati sr = switched_riccati(sys, T, relax, max_set);
    const double build_seconds = seconds_since(riccati_start);
    double predicted = 0;  // mean of V_0 over the test start states
    Vector rated;
    Estimate o = evaluate(model, seed, episodes, [&](std::int64_t t, const Vector& x, Vector& u) {
      const SwitchedRiccati::Step& step = sr.steps[t];
      rated.noalias() = step.values * x;
      std::size_t best_i = 0;
      double lowest = INFINITY;
      for (std::size_t i = 0; i < step.size(); ++i) {
        const double v = x.dot(rated.segment(Eigen::Index(i) * D, D));
        if (v < lowest) lowest = v, best_i = i;
      }
      if (t == 0) predicted += lowest / double(episodes);  // called once per episode at t = 0
      u = -step.gains[best_i] * x;
      return step.modes[best_i];
    });
    const double riccati_seconds = seconds_since(riccati_start);
    std::vector<std::size_t> sizes;
    for (const auto& step : sr.steps) sizes.push_back(step.size());
    char how[128] = "exact";
    if (sr.capped_steps > 0)
      std::snprintf(how, sizeof how, "capped at %zu in %lld steps%s", max_set, (long long)sr.capped_steps,
                    sr.relaxed ? ", relaxed" : "");
    else if (sr.relaxed)
      std::snprintf(how, sizeof how, "relaxed by %g", relax);
    std::printf("switched Riccati (%s, sets of up to %zu matrices): test cost %.6f +- %.3f (%.2f s)\n", how,
                sr.largest, o.mean, o.ci95, riccati_seconds);
    // V_0 at the test starts: every element is the cost of following its own modes and gains, so
    // it bounds the policy's cost without the bounds on u from above (with them the simulation can
    // only differ where a clamp binds). Pruning without relaxation keeps it the optimum, so no policy
    // does better on these starts (the state clamp at 100 aside); relaxed pruning lifts it by at
    // most (1 + relax)^horizon; a capped set may lift it by anything.
    const double lift = std::pow(1 + relax, double(T));
    std::printf("  optimum without the bounds on u, at the test starts: ");
    if (sr.exact())
      std::printf("%.6f\n", predicted);
    else if (sr.capped_steps == 0)
      std::printf("in [%.6f, %.6f] ((1 + relax)^horizon = %.6g)\n", predicted / lift, predicted, lift);
    else
      std::printf("at most %.6f (capped sets give no lower bound)\n", predicted);
    out["switched_riccati"] = estimate_json(o);
    out["switched_riccati"]["exact"] = sr.exact();
    out["switched_riccati"]["relax"] = relax;
    out["switched_riccati"]["relaxed"] = sr.relaxed;
    out["switched_riccati"]["max_set"] = max_set;
    out["switched_riccati"]["capped_steps"] = sr.capped_steps;
    out["switched_riccati"]["largest_set"] = sr.largest;
    out["switched_riccati"]["set_sizes"] = sizes;
    out["switched_riccati"]["value_at_starts"] = predicted;  // an upper bound on the unconstrained optimum
    out["switched_riccati"]["optimum_lower_bound"] =
        sr.capped_steps == 0 ? nlohmann::json(predicted / lift) : nlohmann::json(nullptr);
    out["switched_riccati"]["build_seconds"] = build_seconds;
    out["switched_riccati"]["seconds"] = riccati_seconds;

    const double total = seconds_since(start);
    out["compile_seconds"] = model.compile_seconds();
    out["total_seconds"] = total;
    std::printf("took %.2f s\n", total);
    if (!json_path.empty()) {
      std::ofstream file(json_path);
      file << out.dump(2) << '\n';
      if (!file) throw std::runtime_error("could not write " + json_path);
    }
  } catch (const hpo::CompileError& e) {
    std::fprintf(stderr, "%s", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lqr_reference: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
