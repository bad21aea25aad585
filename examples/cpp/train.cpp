// train.cpp: training from C++: compile the newsvendor model, train a policy with HPO, compare its
// order with the critical fractile, and evaluate it on held-out scenarios.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <hpo/train.hpp>

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : HPOC_SOURCE_DIR "/examples/newsvendor.hpo";
  try {
    hpo::Model model = hpo::compile_file(path);
    hpo::TrainOptions options;
    options.algo = hpo::Algo::HPO;
    options.iterations = 300;
    options.batch = 256;
    options.lr = 3e-3;
    options.schedule = hpo::Schedule::Linear;  // one noisy step: let the order settle
    hpo::Trainer trainer(model, options);
    trainer.train([](const hpo::IterationStats& s) {
      if (s.iteration % 100 == 0) std::printf("iteration %lld: train cost %.3f\n", (long long)s.iteration, s.train_cost);
    });

    // The policy's order for the (constant) observation, against q* = mu + sigma * Phi^-1(p / (p + h)).
    std::vector<double> obs(model.num_obs(), 0.0), log_probs, order(1);
    trainer.act(obs, {}, log_probs, order);
    const double q_star = 20.0 + 5.0 * 0.8416212335729143;  // Phi^-1(0.8) for the defaults
    std::printf("learned order %.3f, critical fractile %.3f (%.2f%% off)\n", order[0], q_star,
                100.0 * std::abs(order[0] - q_star) / q_star);

    const hpo::Checkpoint* best = trainer.best();
    hpo::Evaluation test = best->evaluate(model, 1001, 4096);
    std::printf("test cost %.3f +- %.3f (95%% CI), best dev cost %.3f at iteration %lld\n", test.mean, test.ci95,
                best->dev_cost(), (long long)best->iteration());
    return std::abs(order[0] - q_star) / q_star < 0.05 ? 0 : 1;
  } catch (const hpo::CompileError& e) {
    std::fprintf(stderr, "%s", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 1;
}
