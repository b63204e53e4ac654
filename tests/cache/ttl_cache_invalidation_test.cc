// TtlCache invalidation: by key prefix and glob, listeners and apply(), and
// what readers see while an invalidation runs.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache_test_util.h"
#include "poolscope/cache/ttl_cache.h"
#include "test_util.h"

namespace poolscope::cache {
namespace {

using namespace std::chrono_literals;
using testing::manual;
using testing::TtlCacheTest;

TEST_F(TtlCacheTest, PrefixInvalidationRemovesOnlyKeysWithThePrefix) {
  TtlCache<std::string, int> cache(manual(clock_));
  for (const char* key : {"user:1", "user:10", "users", "account:1", "user:"}) cache.put(key, 1);
  EXPECT_EQ(cache.invalidate_prefix("user:"), 3u);
  EXPECT_EQ(cache.get(std::string("users")), 1);
  EXPECT_EQ(cache.get(std::string("account:1")), 1);
  EXPECT_EQ(cache.get(std::string("user:10")), std::nullopt);
}

TEST_F(TtlCacheTest, GlobInvalidationTreatsOnlyStarAndQuestionMarkAsWildcards) {
  TtlCache<std::string, int> cache(manual(clock_));
  const std::vector<std::string> keys = {
      "pair:ETH/USDT",         "pair:BTC/USDT", "pair:[x]",  "pair:x",   "pair.1",  "pairX1",
      "strategy:ETH/USDT:rsi", "a+b(c)^$",      "a+b(c)^$!", "star*key", "starXkey"};
  auto reset = [&] {
    cache.clear();
    for (const std::string& k : keys) cache.put(k, 1);
  };
  auto invalidated = [&](std::string_view pattern) {
    reset();
    cache.invalidate_glob(pattern);
    std::vector<std::string> gone;
    for (const std::string& k : keys) {
      if (!cache.get(k)) gone.push_back(k);
    }
    return gone;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(invalidated("pair:*"), (V{"pair:ETH/USDT", "pair:BTC/USDT", "pair:[x]", "pair:x"}));
  EXPECT_EQ(invalidated("pair:[x]"), (V{"pair:[x]"})) << "'[' and ']' are literal";
  EXPECT_EQ(invalidated("pair.?"), (V{"pair.1"})) << "'.' is literal, '?' one character";
  EXPECT_EQ(invalidated("*:ETH/*"), (V{"pair:ETH/USDT", "strategy:ETH/USDT:rsi"}));
  EXPECT_EQ(invalidated("a+b(c)^$"), (V{"a+b(c)^$"})) << "regex characters are literal";
  EXPECT_EQ(invalidated("star\\*key"), (V{"star*key"})) << "'\\*' is a literal star";
  EXPECT_EQ(invalidated("star?key"), (V{"star*key", "starXkey"}));
  EXPECT_EQ(invalidated("*"), keys);
  EXPECT_EQ(invalidated("nothing*"), V{});
}

TEST_F(TtlCacheTest, AnInvalidationListenerCarriesInvalidationsToAnotherCache) {
  // Two caches standing in for two processes, joined by a "bus".
  TtlCache<std::string, int> a(manual(clock_)), b(manual(clock_));
  int a_heard = 0, b_heard = 0;
  Subscription to_b = a.add_invalidation_listener([&](const Invalidation<std::string>& inv) {
    ++a_heard;
    b.apply(inv);
  });
  Subscription from_b =
      b.add_invalidation_listener([&](const Invalidation<std::string>&) { ++b_heard; });
  for (auto* cache : {&a, &b}) {
    for (const char* key : {"x:1", "x:2", "y:1", "z"}) cache->put(key, 1);
  }
  a.invalidate_glob("x:*");
  EXPECT_EQ(b.get(std::string("x:1")), std::nullopt);
  EXPECT_EQ(b.get(std::string("y:1")), 1);
  a.erase("z");
  EXPECT_EQ(b.get(std::string("z")), std::nullopt);
  a.invalidate_prefix("y:");
  EXPECT_EQ(b.get(std::string("y:1")), std::nullopt);
  a.clear();
  EXPECT_EQ(a_heard, 4);
  EXPECT_EQ(b_heard, 0) << "apply() must not echo back onto the bus";
}

// Keys of 256 characters, as in issue 11: every tenth ends in "b" and digits,
// the rest in digits alone, all after a long run of 'a'.
std::vector<std::string> long_keys(int count) {
  std::vector<std::string> keys;
  for (int i = 0; i < count; ++i) {
    char digits[24];
    std::snprintf(digits, sizeof digits, "%016d", i);
    keys.push_back(std::string(i % 10 == 7 ? 239 : 240, 'a') + (i % 10 == 7 ? "b" : "") + digits);
  }
  return keys;
}

// Read latencies, sorted, from a thread that reads random keys while
// `measuring` is set.
class LatencyProbe {
 public:
  LatencyProbe(TtlCache<std::string, int>& cache, const std::vector<std::string>& keys)
      : thread_([this, &cache, &keys] { run(cache, keys); }) {
    EXPECT_TRUE(poolscope::testing::eventually([this] { return warmed_.load(); }));
  }
  ~LatencyProbe() { stop(); }

  void measure(bool on) { measuring_.store(on); }
  // Stops the thread; the latencies in nanoseconds, sorted.
  const std::vector<double>& stop() {
    if (thread_.joinable()) {
      stop_.store(true);
      thread_.join();
      std::sort(latencies_.begin(), latencies_.end());
    }
    return latencies_;
  }

 private:
  void run(TtlCache<std::string, int>& cache, const std::vector<std::string>& keys) {
    std::minstd_rand rng(7);
    latencies_.reserve(4'000'000);
    for (std::size_t n = 0; !stop_.load(std::memory_order_relaxed); ++n) {
      const std::string& key = keys[rng() % keys.size()];
      const bool timed = measuring_.load(std::memory_order_relaxed);
      const auto begin = std::chrono::steady_clock::now();
      static_cast<void>(cache.get(key));
      const auto end = std::chrono::steady_clock::now();
      if (timed && measuring_.load(std::memory_order_relaxed) && latencies_.size() < 4'000'000) {
        latencies_.push_back(std::chrono::duration<double, std::nano>(end - begin).count());
      }
      if (n == 1000) warmed_.store(true);
    }
  }

  std::atomic<bool> measuring_{false}, stop_{false}, warmed_{false};
  std::vector<double> latencies_;  // the thread's until it is joined
  std::thread thread_;
};

TEST_F(TtlCacheTest, APathologicalGlobInvalidationNeverStallsReaders) {
  // Issue 11: one pattern over 100k keys of 256 characters took 39 s with
  // backtracking, holding each shard's writer lock while it matched
  // (readers blocked 1.4 s). The same here, in one shard (so a lock held for
  // the whole match would stall every read), a reader timing each get.
  constexpr int kKeys = 100'000;
  const std::vector<std::string> keys = long_keys(kKeys);
  TtlCache<std::string, int> cache(manual(clock_, kKeys, /*shards=*/1));
  for (int i = 0; i < kKeys; ++i) cache.put(keys[i], i);
  const auto timed_invalidation = [&](const std::string& pattern, std::size_t* removed) {
    const auto begin = std::chrono::steady_clock::now();
    *removed = cache.invalidate_glob(pattern);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  };
  LatencyProbe probe(cache, keys);  // reading throughout, so both runs share the machine alike
  std::size_t removed = 0;
  // Baseline: a pattern as long, on which backtracking gives up at once.
  const double plain_s = timed_invalidation("*" + std::string(100, 'c') + "b*", &removed);
  EXPECT_EQ(removed, 0u);
  probe.measure(true);
  const double pathological_s = timed_invalidation("*" + std::string(100, 'a') + "b*", &removed);
  probe.measure(false);
  const std::vector<double>& ns = probe.stop();
  EXPECT_EQ(removed, static_cast<std::size_t>(kKeys / 10)) << "exactly the keys with a 'b'";
  ASSERT_GE(ns.size(), 100u) << "the reader must get on while the invalidation runs";
  const double p50 = ns[ns.size() / 2], p99 = ns[ns.size() * 99 / 100], worst = ns.back();
  std::printf(
      "glob invalidation of %d keys of 256 characters: pathological %.3f s, plain "
      "%.3f s; %zu reads meanwhile: p50 %.0f ns, p99 %.0f ns, max %.3f ms\n",
      kKeys, pathological_s, plain_s, ns.size(), p50, p99, worst / 1e6);
  // Linear matching: the pathological pattern costs about what the plain one does.
  EXPECT_LT(pathological_s, 3 * plain_s + 0.05);
  // Readers wait for one short step at most, never for the whole match (the
  // slowest read here is a thread waiting for a core, on a busy machine).
  EXPECT_LT(worst / 1e9, pathological_s / 2);
}

}  // namespace
}  // namespace poolscope::cache
