#include "poolscope/cache/detail/dependency.h"

#include <algorithm>

namespace poolscope::cache::detail {
namespace {

using Queue = std::vector<std::shared_ptr<Dependent>>;

// The dependents waiting to be invalidated by the outermost
// invalidate_dependents() running on this thread, if any.
thread_local Queue* t_queue = nullptr;

bool same(const std::weak_ptr<Dependent>& w, const std::shared_ptr<Dependent>& d) noexcept {
  return !w.owner_before(d) && !d.owner_before(w);
}

// Moves what still exists of list onto queue.
void enqueue(DependentList& list, Queue& queue) {
  for (std::weak_ptr<Dependent>& w : list) {
    if (std::shared_ptr<Dependent> d = w.lock()) queue.push_back(std::move(d));
  }
}

// Invalidates what still exists of list, here and now (the fallback when
// queueing fails for want of memory; invalidating twice is harmless).
void invalidate_now(DependentList& list) noexcept {
  for (std::weak_ptr<Dependent>& w : list) {
    if (std::shared_ptr<Dependent> d = w.lock()) d->invalidate();
  }
}

}  // namespace

void add_dependent(DependentList& list, const std::shared_ptr<Dependent>& d) {
  std::erase_if(list, [](const std::weak_ptr<Dependent>& w) { return w.expired(); });
  if (std::none_of(list.begin(), list.end(),
                   [&d](const std::weak_ptr<Dependent>& w) { return same(w, d); })) {
    list.emplace_back(d);
  }
}

bool all_gone(const DependentList& list) noexcept {
  return std::all_of(list.begin(), list.end(),
                     [](const std::weak_ptr<Dependent>& w) { return w.expired(); });
}

void invalidate_dependents(DependentList list) noexcept {
  if (list.empty()) return;
  if (t_queue != nullptr) {
    // Inside an invalidation already (a dependent evicting its entry): the
    // loop below, further up this thread's stack, takes these too.
    try {
      enqueue(list, *t_queue);
    } catch (...) {
      invalidate_now(list);
    }
    return;
  }
  Queue queue;
  t_queue = &queue;
  try {
    enqueue(list, queue);
  } catch (...) {
    invalidate_now(list);
  }
  while (!queue.empty()) {
    // Held while it runs: evicting its entry may drop the entry's own reference.
    const std::shared_ptr<Dependent> d = std::move(queue.back());
    queue.pop_back();
    d->invalidate();
  }
  t_queue = nullptr;
}

}  // namespace poolscope::cache::detail
