#include "site_registry.h"

#include <algorithm>

#include "poolscope/pool/site.h"

namespace poolscope::tracing::detail {
namespace {

std::atomic<std::uint64_t> g_next_registry_id{1};

// The tables this thread writes, one per registry; handed back on exit.
struct Binding {
  std::uint64_t registry;
  std::weak_ptr<SiteRegistry> owner;
  SiteCounters* table;
};
struct ThreadBindings {
  std::vector<Binding> bindings;
  ~ThreadBindings();
};
thread_local ThreadBindings t_bindings;
// Set once t_bindings is destroyed: a lease released by a later thread_local
// destructor must not bind again (its counts go to t_discard).
thread_local bool t_bindings_gone = false;
thread_local SiteCounters t_discard[1];

ThreadBindings::~ThreadBindings() {
  t_bindings_gone = true;
  for (SiteCacheEntry& e : t_site_cache) e.registry = 0;
  for (Binding& b : bindings) {
    if (std::shared_ptr<SiteRegistry> owner = b.owner.lock()) owner->retire(b.table);
  }
}

}  // namespace

constinit thread_local SiteCacheEntry t_site_cache[kSiteCacheSize] = {};

struct SiteRegistry::Site {
  // Written once under mu_.
  std::string name;
  std::string file;
  std::string function;
  std::uint32_t line = 0;
  // Rare events.
  std::atomic<std::uint64_t> opened{0};
  std::atomic<std::uint64_t> timeouts{0};
  std::atomic<std::uint64_t> leaks{0};
};

std::size_t SiteRegistry::KeyHash::operator()(const Key& k) const noexcept {
  return std::hash<const void*>()(k.file) ^ (std::hash<const void*>()(k.function) << 1) ^
         (static_cast<std::size_t>(k.line) * 0x9E3779B97F4A7C15ull);
}

SiteRegistry::SiteRegistry(std::size_t max_sites)
    : id_(g_next_registry_id.fetch_add(1, std::memory_order_relaxed)),
      max_sites_(max_sites),
      sites_(new Site[max_sites + 1]) {
  MutexLock lock(mu_);
  sites_[max_sites_].name = "other";
  retired_.reset(new SiteCounters[max_sites_ + 1]);
}

SiteRegistry::~SiteRegistry() = default;

SiteRegistry::Entry SiteRegistry::lookup_slow(const std::source_location& site) {
  MutexLock lock(mu_);
  const std::uint32_t index = intern_locked(site);
  if (t_bindings_gone) return {index, &t_discard[0]};
  SiteCounters* counters = &thread_table_locked()[index];
  const SiteKey key = key_of(site);
  t_site_cache[site_cache_slot(key)] = SiteCacheEntry{id_, key, index, counters};
  return {index, counters};
}

std::uint32_t SiteRegistry::intern_locked(const std::source_location& site) {
  const Key key{site.file_name(), site.function_name(), site.line()};
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
  std::string name = format_site(site);
  std::uint32_t index = static_cast<std::uint32_t>(max_sites_);
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    index = it->second;  // the same site through other string addresses
  } else if (named_ < max_sites_) {
    index = named_++;
    Site& s = sites_[index];
    s.file = site.file_name();
    s.function = site.function_name();
    s.line = site.line();
    s.name = name;
    by_name_.emplace(std::move(name), index);
  } else {
    folded_.insert(std::move(name));
  }
  by_key_.emplace(key, index);
  return index;
}

SiteCounters* SiteRegistry::thread_table_locked() {
  for (const Binding& b : t_bindings.bindings) {
    if (b.registry == id_) return b.table;
  }
  SiteCounters* table = nullptr;
  if (!free_tables_.empty()) {
    table = free_tables_.back();
    free_tables_.pop_back();
  } else {
    tables_.emplace_back(new SiteCounters[max_sites_ + 1]);
    table = tables_.back().get();
  }
  t_bindings.bindings.push_back(Binding{id_, weak_from_this(), table});
  return table;
}

void SiteRegistry::retire(SiteCounters* table) noexcept {
  MutexLock lock(mu_);
  for (std::size_t i = 0; i <= max_sites_; ++i) {
    SiteCounters& from = table[i];
    SiteCounters& to = retired_[i];
    bump(to.acquires, from.acquires.load(std::memory_order_relaxed));
    bump(to.reuses, from.reuses.load(std::memory_order_relaxed));
    bump(to.hold_ns, from.hold_ns.load(std::memory_order_relaxed));
    raise_max(to.max_hold_ns, from.max_hold_ns.load(std::memory_order_relaxed));
    from.acquires.store(0, std::memory_order_relaxed);
    from.reuses.store(0, std::memory_order_relaxed);
    from.hold_ns.store(0, std::memory_order_relaxed);
    from.max_hold_ns.store(0, std::memory_order_relaxed);
  }
  free_tables_.push_back(table);
}

void SiteRegistry::add_opened(std::uint32_t index) noexcept {
  sites_[index].opened.fetch_add(1, std::memory_order_relaxed);
}

void SiteRegistry::add_timeout(std::uint32_t index) noexcept {
  sites_[index].timeouts.fetch_add(1, std::memory_order_relaxed);
}

void SiteRegistry::add_leak(std::uint32_t index) noexcept {
  sites_[index].leaks.fetch_add(1, std::memory_order_relaxed);
}

std::string SiteRegistry::name(std::uint32_t index) const {
  MutexLock lock(mu_);
  return sites_[index].name;
}

void SiteRegistry::sum_locked(std::uint32_t index, SiteStats* out) const {
  // Free tables are zeroed, so summing every table is exact.
  std::uint64_t max_hold = retired_[index].max_hold_ns.load(std::memory_order_relaxed);
  std::uint64_t hold = retired_[index].hold_ns.load(std::memory_order_relaxed);
  out->acquires = retired_[index].acquires.load(std::memory_order_relaxed);
  out->reuses = retired_[index].reuses.load(std::memory_order_relaxed);
  for (const auto& table : tables_) {
    const SiteCounters& c = table[index];
    out->acquires += c.acquires.load(std::memory_order_relaxed);
    out->reuses += c.reuses.load(std::memory_order_relaxed);
    hold += c.hold_ns.load(std::memory_order_relaxed);
    max_hold = std::max(max_hold, c.max_hold_ns.load(std::memory_order_relaxed));
  }
  out->total_hold = std::chrono::nanoseconds(hold);
  out->max_hold = std::chrono::nanoseconds(max_hold);
  const Site& site = sites_[index];
  out->connections_opened = site.opened.load(std::memory_order_relaxed);
  out->timeouts = site.timeouts.load(std::memory_order_relaxed);
  out->leaks = site.leaks.load(std::memory_order_relaxed);
}

std::vector<SiteStats> SiteRegistry::snapshot() const {
  MutexLock lock(mu_);
  std::vector<SiteStats> out;
  out.reserve(named_ + 1);
  for (std::uint32_t i = 0; i < named_; ++i) {
    SiteStats s;
    s.name = sites_[i].name;
    s.file = sites_[i].file;
    s.function = sites_[i].function;
    s.line = sites_[i].line;
    sum_locked(i, &s);
    out.push_back(std::move(s));
  }
  SiteStats other;
  other.name = "other";
  other.other = true;
  sum_locked(static_cast<std::uint32_t>(max_sites_), &other);
  out.push_back(std::move(other));
  return out;
}

std::vector<std::uint64_t> SiteRegistry::acquires() const {
  MutexLock lock(mu_);
  std::vector<std::uint64_t> out(max_sites_ + 1);
  for (std::size_t i = 0; i <= max_sites_; ++i) {
    out[i] = retired_[i].acquires.load(std::memory_order_relaxed);
    for (const auto& table : tables_) out[i] += table[i].acquires.load(std::memory_order_relaxed);
  }
  return out;
}

std::uint64_t SiteRegistry::folded() const {
  MutexLock lock(mu_);
  return folded_.size();
}

}  // namespace poolscope::tracing::detail
