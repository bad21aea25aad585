// alloc_test.cpp: the per-step loops of training allocate nothing: once its buffers exist, an
// iteration makes as many heap allocations at 40 steps per episode as at 10. A binary of its own,
// because it replaces the global operator new to count.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <atomic>
#include <cstdlib>
#include <new>

#include "hpo/train.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};

void* allocate(std::size_t size, std::size_t alignment) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  size = size == 0 ? 1 : size;
  void* p = alignment <= alignof(std::max_align_t) ? std::malloc(size)
                                                   : std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t size) { return allocate(size, alignof(std::max_align_t)); }
void* operator new(std::size_t size, std::align_val_t alignment) { return allocate(size, std::size_t(alignment)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

long allocations_per_iteration(const hpo::Model& model, std::int64_t horizon, hpo::Advantage advantage) {
  hpo::TrainOptions o;
  o.horizon = horizon;
  o.batch = 100;  // not a multiple of the lanes: a partial last vector
  o.threads = 2;
  o.hidden = {32, 32};
  o.hpo.advantage = advantage;  // gae: the critic, its full-batch step and PPO epochs
  o.sf.target_kl = 0;           // every minibatch of the epochs runs
  o.iterations = 1000;  // no schedule step and no dev evaluation within the measured iteration
  o.eval_every = 1000;
  o.dev_episodes = 4;
  hpo::Trainer trainer(model, o);
  trainer.iterate();  // allocates the buffers, measures the cross term
  trainer.iterate();
  allocations = 0;
  counting = true;
  trainer.iterate();
  counting = false;
  return allocations.load();
}

}  // namespace

TEST_CASE("an iteration allocates the same number of times whatever the horizon", "[alloc]") {
  hpo::CompileOptions compile;
  compile.stdlib_dirs = {std::string(HPOC_SOURCE_DIR) + "/stdlib"};
  const hpo::Model model = hpo::compile_file(std::string(HPOC_SOURCE_DIR) + "/examples/inventory.hpo", compile);
  for (hpo::Advantage advantage : {hpo::Advantage::BatchMean, hpo::Advantage::GAE}) {
    INFO("advantage " << hpo::to_string(advantage));
    const long short_episodes = allocations_per_iteration(model, 10, advantage);
    const long long_episodes = allocations_per_iteration(model, 40, advantage);
    INFO("allocations per iteration: " << short_episodes << " at 10 steps, " << long_episodes << " at 40");
    CHECK(short_episodes == long_episodes);
    CHECK(short_episodes < 1000);  // per iteration: 1000 or 4000 sample-steps, 16 PPO minibatches
  }
}
