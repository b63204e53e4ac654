// Invariant: a site's counts are the sum of its counters in every live table
// plus retired_; a table is live while its thread runs and is zeroed before
// it goes back to free_tables_, so summing every table is exact.

#include "site_registry.h"

#include <algorithm>

#include "poolscope/base/site.h"

namespace poolscope::tracing::detail {
namespace {

std::atomic<std::uint64_t> g_next_registry_id{1};

// The tables this thread writes, one per registry; handed back on exit.
struct Binding {
  std::uint64_t registry;
  std::weak_ptr<SiteRegistry> owner;
  CounterTable* table;
};
struct ThreadBindings {
  std::vector<Binding> bindings;
  ~ThreadBindings();
};
thread_local ThreadBindings t_bindings;
// Set once t_bindings is destroyed: a lease released by a later thread_local
// destructor must not bind again (its counts go to t_discard).
thread_local bool t_bindings_gone = false;
thread_local SiteCounters t_discard;

ThreadBindings::~ThreadBindings() {
  t_bindings_gone = true;
  for (SiteCacheEntry& e : t_site_cache) e.registry = 0;
  for (Binding& b : bindings) {
    if (std::shared_ptr<SiteRegistry> owner = b.owner.lock()) owner->retire(b.table);
  }
}

bool is_zero(const SiteCounters& c) noexcept {
  return c.checkouts.load(std::memory_order_relaxed) == 0 &&
         c.reuses.load(std::memory_order_relaxed) == 0 &&
         c.hold_ns.load(std::memory_order_relaxed) == 0 &&
         c.loops.load(std::memory_order_relaxed) == 0;
}

}  // namespace

constinit thread_local SiteCacheEntry t_site_cache[kSiteCacheSize] POOLSCOPE_SITE_CACHE_TLS = {};

void SiteCounters::reset() noexcept {
  checkouts.store(0, std::memory_order_relaxed);
  reuses.store(0, std::memory_order_relaxed);
  hold_ns.store(0, std::memory_order_relaxed);
  max_hold_ns.store(0, std::memory_order_relaxed);
  loops.store(0, std::memory_order_relaxed);
  last_loop.store(0, std::memory_order_relaxed);
  longest_loop.store(0, std::memory_order_relaxed);
  loop_until_ns = kNoLoop;
  run = 0;
}

void merge(SiteStats& into, const SiteStats& from) noexcept {
  into.acquires += from.acquires;
  into.checkins += from.checkins;
  into.active += from.active;
  into.reuses += from.reuses;
  into.connections_opened += from.connections_opened;
  into.timeouts += from.timeouts;
  into.leaks += from.leaks;
  into.churn_loops += from.churn_loops;
  into.total_hold += from.total_hold;
  into.max_hold = std::max(into.max_hold, from.max_hold);
}

SiteCounters& CounterTable::at(std::size_t index) {
  const std::size_t chunk = index / SiteRegistry::kChunk;
  if (chunks.size() <= chunk) chunks.resize(chunk + 1);
  if (chunks[chunk] == nullptr) chunks[chunk].reset(new SiteCounters[SiteRegistry::kChunk]);
  return chunks[chunk][index % SiteRegistry::kChunk];
}

const SiteCounters* CounterTable::find(std::size_t index) const noexcept {
  const std::size_t chunk = index / SiteRegistry::kChunk;
  if (chunk >= chunks.size() || chunks[chunk] == nullptr) return nullptr;
  return &chunks[chunk][index % SiteRegistry::kChunk];
}

struct SiteRegistry::Site {
  // Written once under mu_.
  std::string name;
  std::string file;
  std::string function;
  std::uint32_t line = 0;
  // Rare events, and the gauge of leases out.
  std::atomic<std::uint64_t> opened{0};
  std::atomic<std::uint64_t> timeouts{0};
  std::atomic<std::uint64_t> leaks{0};
  std::atomic<std::uint64_t> active{0};
};

std::size_t SiteRegistry::KeyHash::operator()(const Key& k) const noexcept {
  return std::hash<const void*>()(k.file) ^ (std::hash<const void*>()(k.function) << 1) ^
         (static_cast<std::size_t>(k.line) * 0x9E3779B97F4A7C15ull);
}

SiteRegistry::SiteRegistry(std::size_t max_sites)
    : id_(g_next_registry_id.fetch_add(1, std::memory_order_relaxed)),
      max_sites_(max_sites),
      chunks_(max_sites / kChunk + 1),
      site_chunks_(new std::atomic<Site*>[chunks_]) {
  MutexLock lock(mu_);
  for (std::size_t i = 0; i < chunks_; ++i) {
    site_chunks_[i].store(nullptr, std::memory_order_relaxed);
  }
  site_locked(static_cast<std::uint32_t>(max_sites_)).name = "other";
  retired_ = std::make_unique<CounterTable>();
}

SiteRegistry::~SiteRegistry() = default;

SiteRegistry::Site& SiteRegistry::site(std::uint32_t index) const noexcept {
  // The chunk was published (under mu_) before index was handed out, and
  // handing it out went through mu_: acquire is more than enough.
  return site_chunks_[index / kChunk].load(std::memory_order_acquire)[index % kChunk];
}

SiteRegistry::Site& SiteRegistry::site_locked(std::uint32_t index) {
  std::atomic<Site*>& chunk = site_chunks_[index / kChunk];
  if (chunk.load(std::memory_order_relaxed) == nullptr) {
    site_storage_.emplace_back(new Site[kChunk]);
    chunk.store(site_storage_.back().get(), std::memory_order_release);
  }
  return chunk.load(std::memory_order_relaxed)[index % kChunk];
}

SiteCounters& SiteRegistry::counters_slow(const poolscope::source_location& site) {
  MutexLock lock(mu_);
  const std::uint32_t index = intern_locked(site);
  if (t_bindings_gone) return t_discard;
  SiteCounters& counters = thread_table_locked()->at(index);
  const SiteKey key = key_of(site);
  t_site_cache[site_cache_slot(key)] = SiteCacheEntry{id_, key, &counters};
  return counters;
}

std::uint32_t SiteRegistry::index_of(const poolscope::source_location& site) {
  MutexLock lock(mu_);
  return intern_locked(site);
}

std::uint32_t SiteRegistry::intern_locked(const poolscope::source_location& site) {
  const Key key{site.file_name(), site.function_name(), site.line()};
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
  std::string name = format_site(site);
  std::uint32_t index = static_cast<std::uint32_t>(max_sites_);
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    index = it->second;  // the same site through other string addresses
  } else if (named_ < max_sites_) {
    Site& s = site_locked(named_);
    s.file = site.file_name();
    s.function = site.function_name();
    s.line = site.line();
    s.name = name;
    index = named_++;
    by_name_.emplace(std::move(name), index);
  } else {
    folded_.insert(std::move(name));
  }
  by_key_.emplace(key, index);
  return index;
}

CounterTable* SiteRegistry::thread_table_locked() {
  for (const Binding& b : t_bindings.bindings) {
    if (b.registry == id_) return b.table;
  }
  CounterTable* table = nullptr;
  if (!free_tables_.empty()) {
    table = free_tables_.back();
    free_tables_.pop_back();
  } else {
    tables_.push_back(std::make_unique<CounterTable>());
    table = tables_.back().get();
  }
  t_bindings.bindings.push_back(Binding{id_, weak_from_this(), table});
  return table;
}

void SiteRegistry::retire(CounterTable* table) noexcept {
  MutexLock lock(mu_);
  for (std::size_t chunk = 0; chunk < table->chunks.size(); ++chunk) {
    if (table->chunks[chunk] == nullptr) continue;
    for (std::size_t i = 0; i < kChunk; ++i) {
      SiteCounters& from = table->chunks[chunk][i];
      if (!is_zero(from)) {
        try {
          SiteCounters& into = retired_->at(chunk * kChunk + i);
          bump(into.checkouts, from.checkouts.load(std::memory_order_relaxed));
          bump(into.reuses, from.reuses.load(std::memory_order_relaxed));
          bump(into.hold_ns, from.hold_ns.load(std::memory_order_relaxed));
          raise_max(into.max_hold_ns, from.max_hold_ns.load(std::memory_order_relaxed));
          bump(into.loops, from.loops.load(std::memory_order_relaxed));
          raise_max(into.last_loop, from.last_loop.load(std::memory_order_relaxed));
          raise_max(into.longest_loop, from.longest_loop.load(std::memory_order_relaxed));
        } catch (...) {
          // Out of memory at thread exit: these counts are lost, nothing else.
        }
      }
      from.reset();
    }
  }
  free_tables_.push_back(table);
}

void SiteRegistry::add_opened(std::uint32_t index) noexcept {
  site(index).opened.fetch_add(1, std::memory_order_relaxed);
}

void SiteRegistry::add_timeout(std::uint32_t index) noexcept {
  site(index).timeouts.fetch_add(1, std::memory_order_relaxed);
}

void SiteRegistry::add_leak(std::uint32_t index) noexcept {
  site(index).leaks.fetch_add(1, std::memory_order_relaxed);
}

void SiteRegistry::set_active(
    const std::unordered_map<std::uint32_t, std::uint64_t>& active) noexcept {
  MutexLock lock(mu_);
  for (std::uint32_t i = 0; i <= named_; ++i) {
    const std::uint32_t index = i < named_ ? i : static_cast<std::uint32_t>(max_sites_);
    const auto it = active.find(index);
    site(index).active.store(it != active.end() ? it->second : 0, std::memory_order_relaxed);
  }
}

void SiteRegistry::note_loop(const poolscope::source_location& where, std::uint64_t thread,
                             const StackTrace& stack) {
  MutexLock lock(mu_);
  const std::uint32_t index = intern_locked(where);
  loops_.try_emplace(index, Loop{where, thread, stack});
}

std::optional<SiteRegistry::Loop> SiteRegistry::take_loop(std::uint32_t index) {
  MutexLock lock(mu_);
  const auto it = loops_.find(index);
  if (it == loops_.end()) return std::nullopt;
  Loop loop = it->second;
  loops_.erase(it);
  return loop;
}

std::string SiteRegistry::name(std::uint32_t index) const {
  MutexLock lock(mu_);
  return site(index).name;
}

template <class F>
void SiteRegistry::for_each_counters_locked(std::uint32_t index, F&& f) const {
  if (const SiteCounters* c = retired_->find(index)) f(*c);
  for (const auto& table : tables_) {
    if (const SiteCounters* c = table->find(index)) f(*c);
  }
}

SiteStats SiteRegistry::stats_locked(std::uint32_t index) const {
  const Site& from = site(index);
  SiteStats s;
  s.name = from.name;
  s.file = from.file;
  s.function = from.function;
  s.line = from.line;
  s.other = index == max_sites_;
  std::uint64_t hold_ns = 0;
  std::uint64_t max_hold_ns = 0;
  for_each_counters_locked(index, [&](const SiteCounters& c) {
    s.acquires += c.checkouts.load(std::memory_order_relaxed);
    s.reuses += c.reuses.load(std::memory_order_relaxed);
    s.churn_loops += c.loops.load(std::memory_order_relaxed);
    hold_ns += c.hold_ns.load(std::memory_order_relaxed);
    max_hold_ns = std::max(max_hold_ns, c.max_hold_ns.load(std::memory_order_relaxed));
  });
  s.checkins = s.acquires;
  s.total_hold = std::chrono::nanoseconds(hold_ns);
  s.max_hold = std::chrono::nanoseconds(max_hold_ns);
  s.active = from.active.load(std::memory_order_relaxed);
  s.connections_opened = from.opened.load(std::memory_order_relaxed);
  s.timeouts = from.timeouts.load(std::memory_order_relaxed);
  s.leaks = from.leaks.load(std::memory_order_relaxed);
  return s;
}

std::vector<SiteStats> SiteRegistry::snapshot() const {
  MutexLock lock(mu_);
  std::vector<SiteStats> out;
  out.reserve(named_ + 1);
  for (std::uint32_t i = 0; i < named_; ++i) out.push_back(stats_locked(i));
  out.push_back(stats_locked(static_cast<std::uint32_t>(max_sites_)));
  return out;
}

std::vector<std::uint64_t> SiteRegistry::checkouts() const {
  MutexLock lock(mu_);
  std::vector<std::uint64_t> out(named_ + 1);
  for (std::uint32_t i = 0; i <= named_; ++i) {
    const std::uint32_t index = i < named_ ? i : static_cast<std::uint32_t>(max_sites_);
    for_each_counters_locked(index, [&](const SiteCounters& c) {
      out[i] += c.checkouts.load(std::memory_order_relaxed);
    });
  }
  return out;
}

std::vector<LoopCounts> SiteRegistry::loop_counts() const {
  MutexLock lock(mu_);
  std::vector<LoopCounts> out(named_ + 1);
  for (std::uint32_t i = 0; i <= named_; ++i) {
    const std::uint32_t index = i < named_ ? i : static_cast<std::uint32_t>(max_sites_);
    for_each_counters_locked(index, [&](const SiteCounters& c) {
      const std::uint64_t latest = c.last_loop.load(std::memory_order_relaxed);
      out[i].loops += c.loops.load(std::memory_order_relaxed);
      out[i].latest_sum += latest;
      out[i].longest = std::max(out[i].longest, c.longest_loop.load(std::memory_order_relaxed));
    });
  }
  return out;
}

std::uint64_t SiteRegistry::folded() const {
  MutexLock lock(mu_);
  return folded_.size();
}

}  // namespace poolscope::tracing::detail
