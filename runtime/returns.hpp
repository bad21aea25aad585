// returns.hpp: the return and advantage arithmetic every estimator draws on: costs-to-go, the
// leave-one-out batch-mean baseline, GAE and standardization. Matrices are [horizon x episodes].
#pragma once

#include "runtime/policy.hpp"

namespace hpo::runtime {

// G_t = c_t + discount G_{t+1}.
Matrix costs_to_go(const Matrix& cost, double discount);

// b(t, e) = the mean of the other episodes' G_t: independent of episode e's own choices.
Matrix leave_one_out_baseline(const Matrix& g);

// GAE(lambda) with its own gamma, in cost units: A_t = sum_k (gamma lambda)^k delta_{t+k} with
// delta_t = c_t + gamma V_{t+1} - V_t (V past the horizon is 0); targets = A + V.
struct Advantages {
  Matrix advantage, target;
};
Advantages gae(const Matrix& cost, const Matrix& value, double gamma, double lambda);

// (x - mean) / (standard deviation + 1e-8) over every entry.
Matrix standardized(const Matrix& x);
// The standard deviation over every entry (population).
double standard_deviation(const Matrix& x);

// w(t, e) * discount^t.
Matrix discounted(Matrix w, double discount);

}  // namespace hpo::runtime
