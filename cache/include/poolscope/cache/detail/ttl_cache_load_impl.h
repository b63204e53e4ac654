// TtlCache's implementation, continued: single-flight loads, warm-up, and
// the eviction of entries whose inputs were invalidated. Included by
// ttl_cache.h only.

#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>

namespace poolscope::cache {

template <class K, class V, class Hash, class Eq>
template <class F>
auto TtlCache<K, V, Hash, Eq>::load(Shard& s, const LoadRequest& r, F& loader,
                                    std::optional<V>& out) -> LoadOutcome {
  LoadOutcome outcome = LoadOutcome::kLoaded;
  const std::shared_ptr<Flight> flight = begin_load(s, r, out, outcome);
  if (flight == nullptr) return outcome;

  // From here the flight must end, whatever throws: otherwise its waiters,
  // and every later miss on the key, would wait for it forever.
  struct EndGuard {
    Shard& s;
    const K& key;
    Flight& flight;
    bool ended = false;
    ~EndGuard() {
      if (ended) return;
      typename Shard::WriterLock lock(s.mu);
      if (!flight.error && !flight.value) {
        flight.error =
            std::make_exception_ptr(std::logic_error("TtlCache: a load ended without a result"));
      }
      s.end_flight(key, flight);
    }
  } guard{s, r.probe.key, *flight};

  // This thread's innermost load while the loader runs: what it reads in
  // other caches records this load's Dependent.
  LoadRecorder recorder(*this, r.probe, flight->generation);
  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t cost_before = detail::session_cost_clock();
  std::exception_ptr error;
  try {
    out.emplace(loader(r.probe.key));
  } catch (...) {
    error = std::current_exception();
  }
  flight->cost = detail::session_cost_clock() - cost_before;  // only this thread writes it yet
  finish_load(s, r, *flight, recorder, out, error, std::chrono::steady_clock::now() - started);
  guard.ended = true;
  if (error) std::rethrow_exception(error);
  return LoadOutcome::kLoaded;
}

template <class K, class V, class Hash, class Eq>
auto TtlCache<K, V, Hash, Eq>::begin_load(Shard& s, const LoadRequest& r, std::optional<V>& out,
                                          LoadOutcome& outcome) -> std::shared_ptr<Flight> {
  const K& key = r.probe.key;
  const std::shared_ptr<detail::Dependent>* dependent =
      r.reader != nullptr ? &r.reader->dependent() : nullptr;
  const TimePoint t = now();
  typename Shard::WriterLock lock(s.mu);
  // Recorded with the lookup, under one lock (see visit_exclusive).
  if (dependent != nullptr) s.add_dependent(key, *dependent);
  if (r.mode == LoadMode::kGet || r.mode == LoadMode::kWarm) {
    if (const Node* n = s.find_live(r.probe, t)) {
      outcome = r.mode == LoadMode::kWarm ? LoadOutcome::kPresent : LoadOutcome::kHit;
      if (r.mode == LoadMode::kWarm) return nullptr;
      s.count_hit(*n);  // put or loaded since the shared lookup
      limit_by(r.reader, *n, t);
      out.emplace(n->value);
      return nullptr;
    }
    if (r.mode == LoadMode::kGet) ++s.counts.misses;
  }
  if (auto it = s.flights.find(key); it != s.flights.end()) {
    switch (r.mode) {
      case LoadMode::kWarm:
      case LoadMode::kRefresh:
        outcome = LoadOutcome::kInProgress;
        return nullptr;
      case LoadMode::kReload:
        s.detach_flight(it);
        break;
      case LoadMode::kGet: {
        // Someone is loading this key: wait for that result instead.
        const std::shared_ptr<Flight> flight = it->second;
        flight->done_cv.wait(s.mu, [&] { return flight->done; });
        if (flight->error) std::rethrow_exception(flight->error);
        s.counts.sessions_avoided += flight->cost;
        detail::credit_sessions_avoided(flight->cost);
        if (r.reader != nullptr && flight->lifetime.count() != 0) {
          r.reader->limit_lifetime(flight->lifetime);
        }
        out.emplace(*flight->value);
        outcome = LoadOutcome::kJoined;
        return nullptr;
      }
    }
  }
  auto flight = std::make_shared<Flight>();
  flight->generation = s.next_generation++;
  s.flights.emplace(key, flight);
  return flight;
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::finish_load(Shard& s, const LoadRequest& r, Flight& flight,
                                           LoadRecorder& recorder, std::optional<V>& out,
                                           std::exception_ptr& error, Nanos took) {
  // No longer than the entries the loader read: zero (no TTL) is no limit.
  const Nanos own = r.ttl.count() == 0 ? Nanos::max() : r.ttl;
  const Nanos lifetime = std::min(own, recorder.lifetime());
  const TimePoint loaded_at = now();
  detail::DependentList replaced;
  {
    typename Shard::WriterLock lock(s.mu);
    s.counts.load_time += took;
    if (!error) {
      try {
        flight.value = *out;
        flight.lifetime = lifetime == Nanos::max() ? Nanos(0) : lifetime;
        if (!flight.stale) {
          s.insert(r.probe, *out,
                   {expiry(loaded_at, flight.lifetime), loaded_at, flight.cost, flight.generation,
                    recorder.take_dependent()});
          // A new value for entries read before (not a first load, which
          // reads what they read): what was built from the old one goes.
          if (r.mode == LoadMode::kReload || r.mode == LoadMode::kRefresh) {
            s.take_dependents(r.probe.key, replaced);
          }
        }
      } catch (...) {
        // Copying the value failed: for this caller and the waiters alike.
        error = std::current_exception();
        flight.value.reset();
      }
    }
    if (error) {
      ++s.counts.load_failures;
      flight.error = error;
    } else {
      ++s.counts.loads;
    }
    s.end_flight(r.probe.key, flight);
  }
  detail::invalidate_dependents(std::move(replaced));
  if (!error && r.reader != nullptr && flight.lifetime.count() != 0) {
    r.reader->limit_lifetime(flight.lifetime);
  }
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::evict_dependent(const K& key, std::size_t hash,
                                               std::uint64_t generation) noexcept {
  Shard& s = shard_of(hash);
  std::unique_ptr<Node> gone;  // destroyed outside the lock
  detail::DependentList fired;
  {
    typename Shard::WriterLock lock(s.mu);
    bool evicted = false;
    if (auto it = s.flights.find(key);
        it != s.flights.end() && it->second->generation == generation) {
      s.detach_flight(it);
      evicted = true;
    }
    if (Node* n = s.find(Probe<K>{key, hash}); n != nullptr && n->generation == generation) {
      gone = s.remove(*n);
      ++s.counts.evictions_invalidated;
      evicted = true;
    }
    // What was built from this entry (or from the running load's result) goes too.
    if (evicted) s.take_dependents(key, fired);
  }
  detail::invalidate_dependents(std::move(fired));
}

template <class K, class V, class Hash, class Eq>
template <class Range, class F>
WarmResult TtlCache<K, V, Hash, Eq>::warm(const Range& keys, F&& loader) {
  WarmResult result;
  detail::LoadFrame* const reader = detail::t_load_frame;
  for (const K& key : keys) {
    const Probe<K> probe{key, hash_of(key)};
    std::optional<V> unused;
    try {
      switch (load(shard_of(probe.hash), {probe, ttl_, LoadMode::kWarm, reader}, loader, unused)) {
        case LoadOutcome::kPresent:
          ++result.present;
          break;
        case LoadOutcome::kInProgress:
          ++result.in_progress;
          break;
        default:
          ++result.loaded;
      }
    } catch (...) {
      ++result.failed;
    }
  }
  return result;
}

}  // namespace poolscope::cache
