// Entries built from other caches' entries: evicted when those are
// invalidated or replaced, however the invalidation comes, and never
// cached stale by a load that raced with it.

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cache_test_util.h"
#include "poolscope/cache/ttl_cache.h"

namespace poolscope::cache {
namespace {

using namespace std::chrono_literals;
using testing::finish;
using testing::manual;
using testing::start;
using testing::TtlCacheTest;

// A source cache of versions and a cache of labels built from it.
struct Layers {
  explicit Layers(const TtlCacheConfig& config) : source(config), derived(config) {}

  std::string label(int key) {
    return derived.get_or_load(key, [this](const int& k) {
      ++builds;
      const std::optional<int> version = source.get(k);
      return "v" + (version ? std::to_string(*version) : std::string("none"));
    });
  }

  TtlCache<int, int> source;
  TtlCache<int, std::string> derived;
  std::atomic<int> builds{0};
};

TEST_F(TtlCacheTest, AnEntryBuiltFromAnotherCacheGoesWhenThatEntryIsInvalidated) {
  using Action = std::function<void(TtlCache<int, int>&)>;
  const std::vector<std::pair<const char*, Action>> actions = {
      {"erase", [](auto& c) { c.erase(1); }},
      {"put", [](auto& c) { c.put(1, 2); }},
      {"reload", [](auto& c) { c.reload(1, [](const int&) { return 2; }); }},
      {"invalidate_if", [](auto& c) { c.invalidate_if([](const int& k) { return k == 1; }); }},
      {"clear", [](auto& c) { c.clear(); }},
      {"apply key",
       [](auto& c) {
         c.apply({Invalidation<int>::Kind::kKey, 1, {}});
       }},
      {"apply all",
       [](auto& c) {
         c.apply({Invalidation<int>::Kind::kAll, std::nullopt, {}});
       }},
  };
  for (const auto& [name, action] : actions) {
    Layers layers(manual(clock_));
    layers.source.put(1, 1);
    layers.source.put(2, 1);
    EXPECT_EQ(layers.label(1), "v1");
    EXPECT_EQ(layers.label(2), "v1");
    action(layers.source);
    EXPECT_EQ(layers.derived.get(1), std::nullopt) << name;
    EXPECT_EQ(layers.label(1), layers.source.get(1) ? "v2" : "vnone") << name;
    if (std::string(name).find("all") == std::string::npos && std::string(name) != "clear") {
      EXPECT_EQ(layers.derived.get(2), "v1") << name << ": entries built from others stay";
    }
  }
}

TEST_F(TtlCacheTest, AnAppliedInvalidationEvictsDerivedEntriesWithoutCallingAnyListener) {
  // The Redis tier's subscriber applies what another process invalidated:
  // nothing goes back on the bus, but what was built here from it goes.
  Layers layers(manual(clock_));
  int heard = 0;
  const Subscription a = layers.source.add_invalidation_listener([&](const auto&) { ++heard; });
  const Subscription b = layers.derived.add_invalidation_listener([&](const auto&) { ++heard; });
  layers.source.put(1, 1);
  EXPECT_EQ(layers.label(1), "v1");
  layers.source.apply({Invalidation<int>::Kind::kKey, 1, {}});
  EXPECT_EQ(layers.derived.get(1), std::nullopt);
  EXPECT_EQ(heard, 0);
  EXPECT_EQ(layers.derived.stats().evictions_invalidated, 1u);
}

TEST_F(TtlCacheTest, ADerivedEntryOutlivesItsSourcesEvictionButNotItsInvalidation) {
  TtlCacheConfig small = manual(clock_, /*max_entries=*/1, /*shards=*/1);
  TtlCache<int, int> source(small);
  TtlCache<int, std::string> derived(manual(clock_));
  const auto label = [&](int key) {
    return derived.get_or_load(key, [&](const int& k) {
      return std::to_string(source.get_or_load(k, [](const int& n) { return n * 10; }));
    });
  };
  const std::string first = label(1);
  label(2);  // source holds one entry: 1 goes, by capacity
  EXPECT_EQ(source.stats().evictions_capacity, 1u);
  EXPECT_EQ(derived.get(1), first) << "an eviction by capacity changes no value";
  EXPECT_FALSE(source.erase(1)) << "not cached any more...";
  EXPECT_EQ(derived.get(1), std::nullopt) << "...but what was built from it still goes";
}

TEST_F(TtlCacheTest, InvalidationsFollowChainsOfDerivedEntriesAndEndOnCycles) {
  TtlCache<int, int> c(manual(clock_)), b(manual(clock_)), a(manual(clock_));
  c.put(1, 1);
  b.get_or_load(1, [&](const int& k) { return *c.get(k) + 1; });
  a.get_or_load(1,
                [&](const int& k) { return b.get_or_load(k, [](const int&) { return 0; }) + 1; });
  c.erase(1);
  EXPECT_EQ(b.get(1), std::nullopt);
  EXPECT_EQ(a.get(1), std::nullopt) << "built from b, which was built from c";

  // Two entries of one cache, each built from the other: a cycle.
  TtlCache<int, int> x(manual(clock_));
  x.get_or_load(1, [&](const int&) { return x.get(2).value_or(0) + 1; });  // 2 absent yet
  x.get_or_load(2, [&](const int&) { return x.get(1).value_or(0) + 1; });
  auto erased = start([&] { return x.erase(1); });
  EXPECT_TRUE(finish(erased)) << "the invalidation must end";
  EXPECT_EQ(x.get(2), std::nullopt);
}

TEST_F(TtlCacheTest, ADerivedEntryExpiresNoLaterThanWhatItWasBuiltFrom) {
  TtlCacheConfig short_lived = manual(clock_);
  short_lived.ttl = 10s;
  TtlCacheConfig forever = manual(clock_);
  forever.ttl = 0ms;
  TtlCache<int, int> source(short_lived);
  TtlCache<int, std::string> derived(forever);
  int builds = 0;
  // Entry `key` of derived, built from entry 1 of source.
  const auto label = [&](int key) {
    return derived.get_or_load(key, [&](const int&) {
      ++builds;
      return std::to_string(source.get_or_load(1, [](const int& n) { return n; }));
    });
  };
  label(1);  // source 1 loaded now: both expire in 10 s
  clock_->advance(4s);
  label(2);             // built from the cached source 1: expires with it, in 6 s
  clock_->advance(5s);  // 9 s
  label(1);
  label(2);
  EXPECT_EQ(builds, 2) << "both still cached";
  clock_->advance(2s);  // 11 s: source 1 has expired, and so have both
  label(1);
  label(2);
  EXPECT_EQ(builds, 4);
}

TEST_F(TtlCacheTest, AnInvalidationWhileABuildRunsKeepsItsStaleResultOutOfTheCache) {
  Layers layers(manual(clock_));
  layers.source.put(1, 1);
  std::promise<void> read, release;
  auto build = start([&] {
    return layers.derived.get_or_load(1, [&](const int& k) {
      const int version = *layers.source.get(k);  // read before the put below
      read.set_value();
      release.get_future().wait();
      return "v" + std::to_string(version);
    });
  });
  read.get_future().wait();
  layers.source.put(1, 2);  // a save while the factory runs
  release.set_value();
  EXPECT_EQ(finish(build), "v1") << "its own caller gets what it built";
  EXPECT_EQ(layers.derived.get(1), std::nullopt) << "but it must not be cached";
  EXPECT_EQ(layers.label(1), "v2");
}

TEST_F(TtlCacheTest, AfterAWriteNoReaderSeesADerivedEntryBuiltFromTheValueBefore) {
  Layers layers(manual(clock_, /*max_entries=*/16, /*shards=*/2));
  constexpr int kKeys = 4;
  std::atomic<int> committed[kKeys] = {};
  for (int k = 0; k < kKeys; ++k) layers.source.put(k, 0);
  std::atomic<bool> stop{false};
  std::atomic<int> stale{0}, reads{0};
  std::thread writer([&] {
    for (int version = 1; !stop.load(); ++version) {
      const int k = version % kKeys;
      layers.source.put(k, version);
      committed[k].store(version);
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      for (int i = r; !stop.load(); ++i) {
        const int k = i % kKeys;
        const int floor = committed[k].load();
        const int seen = std::stoi(layers.label(k).substr(1));
        reads.fetch_add(1);
        if (seen < floor) stale.fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(500ms);
  stop = true;
  writer.join();
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(stale.load(), 0);
  EXPECT_GT(reads.load(), 100);
}

TEST_F(TtlCacheTest, DerivedCachesMayGoBeforeOrAfterTheirSources) {
  auto source = std::make_unique<TtlCache<std::string, int>>(manual(clock_));
  auto derived = std::make_unique<TtlCache<std::string, int>>(manual(clock_));
  source->put("user:1", 1);
  derived->get_or_load("user:1", [&](const std::string& k) { return *source->get(k); });
  derived.reset();
  EXPECT_EQ(source->invalidate_glob("user:*"), 1u) << "its dependent is gone: nothing to do";
  derived = std::make_unique<TtlCache<std::string, int>>(manual(clock_));
  source->put("user:2", 2);
  derived->get_or_load("user:2", [&](const std::string& k) { return *source->get(k); });
  EXPECT_EQ(source->invalidate_prefix("user:"), 1u);
  EXPECT_EQ(derived->get(std::string("user:2")), std::nullopt);
  derived->get_or_load("user:3", [&](const std::string& k) { return source->get(k).value_or(3); });
  source.reset();
  EXPECT_EQ(derived->get(std::string("user:3")), 3) << "its source gone, the entry stays as it is";
}

}  // namespace
}  // namespace poolscope::cache
