// poolscope-cache-loop: cache hits in a plain loop, outside Google Benchmark,
// the way a service's read path runs them: 1,000 string keys of 30 bytes
// (past the small-string buffer) held by the caller in a
// std::vector<std::string>, values std::shared_ptr<const std::string> copied
// out per hit, each thread walking every key in order from its own starting
// point, --passes times. The contenders: poolscope's TtlCache (default TTL,
// default clock), one std::mutex around a std::unordered_map, and TBB's
// concurrent_hash_map (when built with TBB). One run prints one JSON object;
// scripts/bench.sh interleaves runs. ns_per_hit is a hit's share of the mean
// thread's wall time, so 1 and 2 threads compare per thread.
//
//   poolscope-cache-loop --impl ttl|mutex|tbb --threads 2 --passes 1000
//
// For callgrind, run --threads 1 with two --passes and divide the difference
// in instructions by the difference in hits: filling the map cancels out.

#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#if defined(POOLSCOPE_BENCH_TBB)
#include <oneapi/tbb/concurrent_hash_map.h>
#endif

#include "poolscope/cache/ttl_cache.h"

namespace {

using Value = std::shared_ptr<const std::string>;
constexpr std::size_t kKeys = 1000;

// "account_settings:ETH/USDT:0042": 30 bytes, each allocated on its own.
std::vector<std::string> make_keys() {
  std::vector<std::string> out;
  out.reserve(kKeys);
  for (std::size_t i = 0; i < kKeys; ++i) {
    char digits[8];
    std::snprintf(digits, sizeof digits, "%04zu", i);
    out.push_back(std::string("account_settings:ETH/USDT:") + digits);
  }
  return out;
}

Value make_value() { return std::make_shared<const std::string>(200, 'v'); }

// A contender: filled once, then hit concurrently. Each hit is one
// noinline function, so a profile can count it alone.
class Contender {
 public:
  virtual ~Contender() = default;
  virtual std::size_t hit(const std::string& key) = 0;
};

class TtlContender final : public Contender {
 public:
  explicit TtlContender(const std::vector<std::string>& keys) {
    for (const std::string& k : keys) cache_.put(k, make_value());
  }
  [[gnu::noinline]] std::size_t hit(const std::string& key) override {
    const std::optional<Value> v = cache_.get(key);
    return v ? (*v)->size() : 0;
  }

 private:
  poolscope::cache::TtlCache<std::string, Value> cache_{{.name = "cache-loop"}};
};

class MutexContender final : public Contender {
 public:
  explicit MutexContender(const std::vector<std::string>& keys) {
    for (const std::string& k : keys) map_.emplace(k, make_value());
  }
  [[gnu::noinline]] std::size_t hit(const std::string& key) override {
    Value v;
    {
      std::lock_guard lock(mu_);
      const auto it = map_.find(key);
      if (it != map_.end()) v = it->second;
    }
    return v ? v->size() : 0;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, Value> map_;
};

#if defined(POOLSCOPE_BENCH_TBB)
class TbbContender final : public Contender {
 public:
  explicit TbbContender(const std::vector<std::string>& keys) {
    for (const std::string& k : keys) map_.insert({k, make_value()});
  }
  [[gnu::noinline]] std::size_t hit(const std::string& key) override {
    Value v;
    {
      Map::const_accessor a;
      if (map_.find(a, key)) v = a->second;
    }
    return v ? v->size() : 0;
  }

 private:
  using Map = oneapi::tbb::concurrent_hash_map<std::string, Value>;
  Map map_;
};
#endif

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct ThreadResult {
  double seconds = 0;
  double cpu_seconds = 0;
  std::size_t sink = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"poolscope-cache-loop: cache hits in a plain loop"};
  std::string impl = "ttl";
  int threads = 1;
  int passes = 1000;
  app.add_option("--impl", impl, "ttl, mutex or tbb")
      ->check(CLI::IsMember({"ttl", "mutex", "tbb"}));
  app.add_option("--threads", threads, "Threads")->check(CLI::Range(1, 256));
  app.add_option("--passes", passes, "Walks over the keys per thread")
      ->check(CLI::Range(1, 1'000'000));
  CLI11_PARSE(app, argc, argv);

  const std::vector<std::string> keys = make_keys();
  std::unique_ptr<Contender> contender;
  if (impl == "ttl") contender = std::make_unique<TtlContender>(keys);
  if (impl == "mutex") contender = std::make_unique<MutexContender>(keys);
#if defined(POOLSCOPE_BENCH_TBB)
  if (impl == "tbb") contender = std::make_unique<TbbContender>(keys);
#endif
  if (contender == nullptr) {
    std::fprintf(stderr, "poolscope-cache-loop: built without %s\n", impl.c_str());
    return 2;
  }

  std::vector<ThreadResult> results(static_cast<std::size_t>(threads));
  std::barrier start(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ThreadResult& mine = results[static_cast<std::size_t>(t)];
      // Threads spread over the keys, so they rarely copy the same value
      // (touch the same reference count) at once.
      const std::size_t first = (static_cast<std::size_t>(t) * (kKeys / 2 + 1)) % kKeys;
      std::size_t sink = 0;
      start.arrive_and_wait();
      const auto begin = std::chrono::steady_clock::now();
      const double cpu_begin = thread_cpu_seconds();
      for (int pass = 0; pass < passes; ++pass) {
        for (std::size_t i = first; i < kKeys; ++i) sink += contender->hit(keys[i]);
        for (std::size_t i = 0; i < first; ++i) sink += contender->hit(keys[i]);
      }
      mine.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
      mine.cpu_seconds = thread_cpu_seconds() - cpu_begin;
      mine.sink = sink;
    });
  }
  for (std::thread& w : workers) w.join();

  const double hits_per_thread = static_cast<double>(passes) * kKeys;
  double total = 0, total_cpu = 0, slowest = 0;
  std::size_t sink = 0;
  for (const ThreadResult& r : results) {
    total += r.seconds;
    total_cpu += r.cpu_seconds;
    slowest = std::max(slowest, r.seconds);
    sink += r.sink;
  }
  // Every hit found its 200-byte value, or the loop measured misses.
  if (sink != static_cast<std::size_t>(hits_per_thread) * 200 * results.size()) {
    std::fprintf(stderr, "poolscope-cache-loop: a hit missed\n");
    return 1;
  }
  std::printf(
      "{\"impl\": \"%s\", \"threads\": %d, \"passes\": %d, \"keys\": %zu, \"ns_per_hit\": %.2f, "
      "\"cpu_ns_per_hit\": %.2f, \"slowest_thread_ns_per_hit\": %.2f}\n",
      impl.c_str(), threads, passes, kKeys, total / threads / hits_per_thread * 1e9,
      total_cpu / threads / hits_per_thread * 1e9, slowest / hits_per_thread * 1e9);
  return 0;
}
