// parallel.hpp: run work on a few threads. Each task writes only its own outputs and the caller
// combines them in a fixed order, so results do not depend on the number of threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hpo::runtime {

inline int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Calls task(i) for i in [0, count); rethrows the exception of the lowest-numbered failed task.
inline void parallel_for(std::size_t count, int threads, const std::function<void(std::size_t)>& task) {
  if (count == 0) return;
  std::vector<std::exception_ptr> errors(count);
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < count;) {
      try {
        task(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  const std::size_t helpers = std::min<std::size_t>(count, static_cast<std::size_t>(std::max(threads, 1))) - 1;
  std::vector<std::thread> pool;
  for (std::size_t i = 0; i < helpers; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Waits until `done()` holds: spins first (a thread that another one wakes through the kernel loses
// tens of microseconds, and training hands work to the pool several times an iteration), then
// yields its core.
template <class Done>
void spin_until(Done done) {
  for (int spins = 0; !done(); ++spins) {
    if (spins < (1 << 11)) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
}

// Threads started once and kept: run(job) calls job(w) on every worker w in [0, size()) (the
// caller is worker 0) and returns when all are done, rethrowing the lowest worker's exception.
class ThreadPool {
 public:
  explicit ThreadPool(int threads) : size_(std::max(threads, 1)), errors_(size_) {
    for (int w = 1; w < size_; ++w) workers_.emplace_back([this, w] { loop(w); });
  }
  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  void run(const std::function<void(int)>& job) {
    job_ = &job;
    pending_.store(size_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mutex_);  // a worker about to sleep sees the new generation or the notify
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    execute(0);
    spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; });
    job_ = nullptr;
    for (auto& e : errors_)
      if (e) {
        auto error = e;
        for (auto& x : errors_) x = nullptr;
        std::rethrow_exception(error);
      }
  }

 private:
  void execute(int w) {
    try {
      (*job_)(w);
    } catch (...) {
      errors_[w] = std::current_exception();
    }
  }
  void loop(int w) {
    std::uint64_t seen = 0;
    for (;;) {
      // Jobs come in quick succession while training: look for the next one a while before sleeping.
      for (int spins = 0; spins < (1 << 11) && generation_.load(std::memory_order_acquire) == seen; ++spins) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        seen = generation_.load(std::memory_order_acquire);
        if (stop_) return;
      }
      execute(w);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  int size_;
  std::vector<std::exception_ptr> errors_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<int> pending_{0};
  std::atomic<std::uint64_t> generation_{0};
  bool stop_ = false;
};

}  // namespace hpo::runtime
