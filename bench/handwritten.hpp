// handwritten.hpp: the inventory and switched-LQR examples written by hand in C++, with
// hand-derived gradients: the reference the JIT'd kernels are measured against. Same ABI and
// structure-of-arrays layout as the generated _batch kernels, same derivative conventions.
#pragma once

#include <algorithm>
#include <cstdint>

namespace hpo::bench {

// examples/inventory.hpo: 3 stores, lead time 2, lost sales.
// params: holding, penalty, fixed_cost, unit_cost, mean_demand[3]
// state: on_hand[3], pipeline[3, 2]; disc: order[3]; cont: qty[3]; noise: demand[3]
struct Inventory {
  static constexpr int kStores = 3;
  static constexpr int kState = 9;

  static void step(std::int64_t n, const double* __restrict params, const double* __restrict state,
                   const std::int32_t* __restrict disc, const double* __restrict cont, const double* __restrict noise,
                   double* __restrict next, double* __restrict cost) {
    const double holding = params[0], penalty = params[1], fixed = params[2], unit = params[3];
    for (std::int64_t b = 0; b < n; ++b) {
      double c = 0;
      for (int s = 0; s < kStores; ++s) {
        const bool order = disc[s * n + b] == 1;
        const double qty = cont[s * n + b];
        const double placed = order ? qty : 0.0;
        const double available = state[s * n + b] + state[(3 + 2 * s) * n + b];
        const double demand = noise[s * n + b];
        const double left = available - demand > 0 ? available - demand : 0.0;
        next[s * n + b] = left;
        next[(3 + 2 * s) * n + b] = state[(4 + 2 * s) * n + b];
        next[(4 + 2 * s) * n + b] = placed;
        c += holding * left + penalty * (demand - available > 0 ? demand - available : 0.0);
        if (order) c += fixed + unit * qty;
      }
      cost[b] = c;
    }
  }

  // d/d(state, qty) of sum(next_bar . next) + cost_bar * cost, added into state_bar and cont_bar.
  static void step_adj(std::int64_t n, const double* __restrict params, const double* __restrict state,
                       const std::int32_t* __restrict disc, const double* __restrict, const double* __restrict noise,
                       const double* __restrict next_bar, const double* __restrict cost_bar,
                       double* __restrict state_bar, double* __restrict cont_bar) {
    const double holding = params[0], penalty = params[1], unit = params[3];
    for (std::int64_t b = 0; b < n; ++b) {
      const double cb = cost_bar[b];
      for (int s = 0; s < kStores; ++s) {
        const bool order = disc[s * n + b] == 1;
        const double available = state[s * n + b] + state[(3 + 2 * s) * n + b];
        const double demand = noise[s * n + b];
        const double left_bar = next_bar[s * n + b] + cb * holding;
        double available_bar = available - demand > 0 ? left_bar : 0.0;
        available_bar -= demand - available > 0 ? cb * penalty : 0.0;
        state_bar[s * n + b] += available_bar;
        state_bar[(3 + 2 * s) * n + b] += available_bar;
        state_bar[(4 + 2 * s) * n + b] += next_bar[(3 + 2 * s) * n + b];
        if (order) cont_bar[s * n + b] += next_bar[(4 + 2 * s) * n + b] + cb * unit;
      }
    }
  }
};

// examples/switched_lqr.hpo: D = 4, M = 2, K = 3.
// params: A[4, 4], B[3, 4, 2], Q[4, 4], R[2, 2]; state x[4]; disc mode; cont u[2]; noise x0[4] (unused)
struct SwitchedLqr {
  static constexpr int D = 4, M = 2, K = 3;
  static constexpr int kState = D;
  static const double* A(const double* p) { return p; }
  static const double* B(const double* p) { return p + D * D; }
  static const double* Q(const double* p) { return p + D * D + K * D * M; }
  static const double* R(const double* p) { return p + D * D + K * D * M + D * D; }

  static void step(std::int64_t n, const double* __restrict params, const double* __restrict state,
                   const std::int32_t* __restrict disc, const double* __restrict cont, const double* __restrict,
                   double* __restrict next, double* __restrict cost) {
    const double *a = A(params), *q = Q(params), *r = R(params);
    for (std::int64_t b = 0; b < n; ++b) {
      const double* bm = B(params) + disc[b] * D * M;
      double x[D], u[M];
      for (int i = 0; i < D; ++i) x[i] = state[i * n + b];
      for (int j = 0; j < M; ++j) u[j] = cont[j * n + b];
      double c = 0;
      for (int i = 0; i < D; ++i) {
        double y = 0, qx = 0;
        for (int j = 0; j < D; ++j) {
          y += a[i * D + j] * x[j];
          qx += q[i * D + j] * x[j];
        }
        for (int j = 0; j < M; ++j) y += bm[i * M + j] * u[j];
        next[i * n + b] = std::min(std::max(y, -100.0), 100.0);
        c += x[i] * qx;
      }
      for (int i = 0; i < M; ++i) {
        double ru = 0;
        for (int j = 0; j < M; ++j) ru += r[i * M + j] * u[j];
        c += u[i] * ru;
      }
      cost[b] = c;
    }
  }

  static void step_adj(std::int64_t n, const double* __restrict params, const double* __restrict state,
                       const std::int32_t* __restrict disc, const double* __restrict cont, const double* __restrict,
                       const double* __restrict next_bar, const double* __restrict cost_bar,
                       double* __restrict state_bar, double* __restrict cont_bar) {
    const double *a = A(params), *q = Q(params), *r = R(params);
    for (std::int64_t b = 0; b < n; ++b) {
      const double* bm = B(params) + disc[b] * D * M;
      const double cb = cost_bar[b];
      double x[D], u[M], y_bar[D], x_bar[D] = {}, u_bar[M] = {};
      for (int i = 0; i < D; ++i) x[i] = state[i * n + b];
      for (int j = 0; j < M; ++j) u[j] = cont[j * n + b];
      for (int i = 0; i < D; ++i) {
        double y = 0;
        for (int j = 0; j < D; ++j) y += a[i * D + j] * x[j];
        for (int j = 0; j < M; ++j) y += bm[i * M + j] * u[j];
        // clamp(y, -100, 100) = min(max(y, -100), 100): y gets the adjoint inside the bounds.
        y_bar[i] = (y >= -100.0 && std::max(y, -100.0) <= 100.0) ? next_bar[i * n + b] : 0.0;
      }
      for (int i = 0; i < D; ++i)
        for (int j = 0; j < D; ++j) {
          x_bar[j] += a[i * D + j] * y_bar[i] + cb * (q[i * D + j] * x[i] + q[j * D + i] * x[i]);
        }
      for (int i = 0; i < D; ++i)
        for (int j = 0; j < M; ++j) u_bar[j] += bm[i * M + j] * y_bar[i];
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < M; ++j) u_bar[j] += cb * (r[i * M + j] * u[i] + r[j * M + i] * u[i]);
      for (int i = 0; i < D; ++i) state_bar[i * n + b] += x_bar[i];
      for (int j = 0; j < M; ++j) cont_bar[j * n + b] += u_bar[j];
    }
  }
};

}  // namespace hpo::bench
