// ObserverRegistry: a pool's observers, indexed by the events each wants.
//
// Readers (every pool event) load the current list with one acquire load and
// no lock. A change builds a new list under mu_ and publishes it; old lists
// are kept, with their shared_ptrs, until the registry goes, so a callback
// in flight on another thread never sees a freed observer. The registry is
// owned by a shared_ptr; a Subscription holds it weakly, so ending a
// subscription after the pool is gone is a no-op.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "poolscope/base/mutex.h"
#include "poolscope/base/subscription.h"
#include "poolscope/pool/observer.h"

namespace poolscope::detail {

class ObserverRegistry : public std::enable_shared_from_this<ObserverRegistry> {
 public:
  // The observers, and for each event the ones that want it.
  struct List {
    std::vector<std::shared_ptr<PoolObserver>> all;
    std::vector<PoolObserver*> connect, connect_failed, checkout, reuse, checkin, close, timeout,
        notice, shutdown;
    // Every lease's return reads these, not the vector: the first checkin
    // observer (null for none) and whether there are more.
    PoolObserver* first_checkin = nullptr;
    bool more_checkins = false;
  };

  ObserverRegistry() {
    MutexLock lock(mu_);
    replace_locked({});
  }

  // The list in effect now; valid for the registry's lifetime.
  const List& current() const noexcept { return *current_.load(std::memory_order_acquire); }

  // Adds observer; the Subscription removes it again.
  Subscription add(std::shared_ptr<PoolObserver> observer) {
    const PoolObserver* key = observer.get();
    {
      MutexLock lock(mu_);
      std::vector<std::shared_ptr<PoolObserver>> all =
          current_.load(std::memory_order_relaxed)->all;
      all.push_back(std::move(observer));
      replace_locked(std::move(all));
    }
    return Subscription([weak = weak_from_this(), key] {
      if (const std::shared_ptr<ObserverRegistry> self = weak.lock()) self->remove(key);
    });
  }

 private:
  void remove(const PoolObserver* observer) {
    MutexLock lock(mu_);
    std::vector<std::shared_ptr<PoolObserver>> all = current_.load(std::memory_order_relaxed)->all;
    std::erase_if(all, [observer](const auto& o) { return o.get() == observer; });
    replace_locked(std::move(all));
  }

  void replace_locked(std::vector<std::shared_ptr<PoolObserver>> all) POOLSCOPE_REQUIRES(mu_) {
    auto list = std::make_unique<List>();
    for (const std::shared_ptr<PoolObserver>& o : all) {
      const unsigned events = o->events();
      const std::pair<PoolEvents, std::vector<PoolObserver*> List::*> lists[] = {
          {kConnectEvents, &List::connect},   {kConnectFailedEvents, &List::connect_failed},
          {kCheckoutEvents, &List::checkout}, {kReuseEvents, &List::reuse},
          {kCheckinEvents, &List::checkin},   {kCloseEvents, &List::close},
          {kTimeoutEvents, &List::timeout},   {kNoticeEvents, &List::notice},
          {kShutdownEvents, &List::shutdown}};
      for (const auto& [event, member] : lists) {
        if ((events & event) != 0) ((*list).*member).push_back(o.get());
      }
    }
    if (!list->checkin.empty()) list->first_checkin = list->checkin.front();
    list->more_checkins = list->checkin.size() > 1;
    list->all = std::move(all);
    lists_.push_back(std::move(list));
    current_.store(lists_.back().get(), std::memory_order_release);
  }

  std::atomic<const List*> current_{nullptr};
  Mutex mu_;
  std::vector<std::unique_ptr<List>> lists_ POOLSCOPE_GUARDED_BY(mu_);
};

}  // namespace poolscope::detail
