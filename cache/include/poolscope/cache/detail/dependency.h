// How caches built from other caches stay coherent (an account object built
// from its settings): while a cache's loader runs on a thread, every entry
// it reads in a cache (hit, miss or load) records the load's Dependent, and
// invalidating or replacing that entry later invalidates the Dependent,
// which evicts the entry the load made, or keeps it out of the cache if the
// load is still running; entries built from that one follow in turn. It
// happens in the process that invalidates, whether the invalidation was
// local or applied from elsewhere (TtlCache::apply), and it calls no
// invalidation listener (each process derives its own dependents).
//
// A read records its Dependent under the same exclusive shard lock as the
// lookup, and an invalidation takes the Dependents under the lock that
// removes the entry, so a load that read an entry either is invalidated
// with it or read it after it was gone: an invalidation while a factory
// runs never leaves a stale instance cached. A loaded entry also expires no
// later than the entries its load read.
//
// Thread-safe. LoadFrame is per thread: loads on one thread nest.

#pragma once

#include <chrono>
#include <memory>
#include <vector>

namespace poolscope::cache::detail {

// A cache entry, or a load that will make one, as the entries its load read
// know it.
class Dependent {
 public:
  virtual ~Dependent() = default;
  Dependent(const Dependent&) = delete;
  Dependent& operator=(const Dependent&) = delete;

  // Evicts the entry (or keeps the running load out of the cache), and
  // invalidates what depends on it. Must not throw; takes no lock but its
  // own cache's.
  virtual void invalidate() noexcept = 0;

 protected:
  Dependent() = default;
};

using DependentList = std::vector<std::weak_ptr<Dependent>>;

class LoadFrame;
// The innermost load running on this thread, or null. Every cache read checks it.
inline thread_local LoadFrame* t_load_frame = nullptr;

// A load running on this thread: what the entries it reads report to.
// Constructing one makes it this thread's innermost load until destroyed.
class LoadFrame {
 public:
  LoadFrame(const LoadFrame&) = delete;
  LoadFrame& operator=(const LoadFrame&) = delete;

  // The Dependent that stands for this load's result, made on first use.
  // Throws std::bad_alloc.
  virtual const std::shared_ptr<Dependent>& dependent() = 0;

  // The result may live at most remaining from now (an entry it read
  // expires then).
  void limit_lifetime(std::chrono::nanoseconds remaining) noexcept {
    if (remaining < lifetime_) lifetime_ = remaining;
  }
  std::chrono::nanoseconds lifetime() const noexcept { return lifetime_; }

 protected:
  LoadFrame() noexcept : outer_(t_load_frame) { t_load_frame = this; }
  ~LoadFrame() { t_load_frame = outer_; }

 private:
  LoadFrame* const outer_;
  std::chrono::nanoseconds lifetime_ = std::chrono::nanoseconds::max();
};

// Adds d to list, unless it is there already; drops entries whose
// Dependent is gone. Throws std::bad_alloc.
void add_dependent(DependentList& list, const std::shared_ptr<Dependent>& d);

// True when no Dependent of list exists any more.
bool all_gone(const DependentList& list) noexcept;

// Invalidates every Dependent of list that still exists, and those that
// depend on them: one at a time on this thread, without recursion, so
// chains and cycles of dependents end (each is taken out of its entry's
// list as it is invalidated).
void invalidate_dependents(DependentList list) noexcept;

}  // namespace poolscope::cache::detail
