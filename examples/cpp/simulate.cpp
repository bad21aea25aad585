// simulate.cpp: the C++ API end to end: compile the inventory model, run a batch of episodes
// under an order-up-to policy, and get the gradient of the total cost with respect to every
// order quantity by running the adjoint of the whole stored trajectory.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <hpo/hpo.hpp>

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : HPOC_SOURCE_DIR "/examples/inventory.hpo";
  hpo::Model model = [&] {
    try {
      return hpo::compile_file(path);
    } catch (const hpo::CompileError& e) {
      std::fprintf(stderr, "%s", e.what());
      std::exit(1);
    }
  }();
  std::printf("model %s: %zu state values, %zu discrete and %zu continuous actions; compiled in %.0f ms\n",
              model.name().c_str(), model.num_state(), model.num_disc(), model.num_cont(), model.compile_seconds() * 1e3);

  const std::int64_t batch = 256;
  hpo::BatchEnv env(model, {.batch = batch, .seed = 7});
  const std::size_t stores = model.num_disc();  // inventory.hpo: one order choice and one quantity per store
  const auto n = static_cast<std::size_t>(batch);
  std::vector<std::int32_t> disc(stores * n);
  std::vector<double> cont(stores * n);
  double total = 0;
  for (std::int64_t t = 0; t < model.horizon(); ++t) {
    // Order up to 20 units of stock on hand when it falls below 8 (the observation starts with on_hand).
    auto obs = env.observation();
    for (std::size_t s = 0; s < stores; ++s)
      for (std::size_t b = 0; b < n; ++b) {
        double on_hand = obs[s * n + b];
        disc[s * n + b] = on_hand < 8.0 ? 1 : 0;
        cont[s * n + b] = std::max(0.0, 20.0 - on_hand);
      }
    env.step(disc, cont);
    for (double c : env.cost()) total += c;
  }
  std::printf("mean cost per episode over %lld episodes: %.2f\n", static_cast<long long>(batch), total / double(batch));

  // d(mean total cost)/d(order quantity) for every step, store and episode.
  std::vector<double> cost_bar(static_cast<std::size_t>(env.t()) * n, 1.0 / double(batch));
  hpo::BatchEnv::Gradients g = env.backward(cost_bar);
  double norm = 0;
  for (double v : g.cont) norm += v * v;
  std::printf("gradient of the mean cost w.r.t. %zu order quantities: norm %.4f, first step store 0: %.4f\n",
              g.cont.size(), std::sqrt(norm), g.cont[0] * double(batch));
  return 0;
}
