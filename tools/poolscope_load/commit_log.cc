// Memory orders: a Save's version is stored last with release and read
// first with acquire, so a reader that finds the version it looks for also
// finds that save's start time. The rest is counted with relaxed atomics:
// the figures are read after every process has stopped.

#include "commit_log.h"

#include <algorithm>
#include <chrono>

namespace poolscope::load {

std::int64_t CommitLog::now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void CommitLog::begin(int account, std::uint64_t version, std::int64_t start_ns) noexcept {
  Save& s = accounts_[account].ring[version % kRing];
  s.version.store(0, std::memory_order_relaxed);
  s.start_ns.store(start_ns, std::memory_order_relaxed);
  s.committed_ns.store(0, std::memory_order_relaxed);
  s.last_seen_ns.store(0, std::memory_order_relaxed);
  s.seen_by.store(0, std::memory_order_relaxed);
  s.version.store(version, std::memory_order_release);
}

void CommitLog::committed(int account, std::uint64_t version) noexcept {
  if (Save* s = find(account, version)) s->committed_ns.store(now_ns(), std::memory_order_relaxed);
  accounts_[account].committed.store(version, std::memory_order_release);
}

CommitLog::Save* CommitLog::find(int account, std::uint64_t version) noexcept {
  Save& s = accounts_[account].ring[version % kRing];
  return s.version.load(std::memory_order_acquire) == version ? &s : nullptr;
}

const CommitLog::Save* CommitLog::find(int account, std::uint64_t version) const noexcept {
  return const_cast<CommitLog*>(this)->find(account, version);
}

std::uint64_t CommitLog::newest(int account) const noexcept {
  return accounts_[account].committed.load(std::memory_order_acquire);
}

std::uint64_t CommitLog::version_at(int account, std::int64_t at_ns) const noexcept {
  const std::uint64_t newest = accounts_[account].committed.load(std::memory_order_acquire);
  if (newest == 0) return 0;
  // Commit times grow with the version (one writer per account, one save
  // at a time): the newest version committed by at_ns, by bisection over
  // the ring. (Not by start time: a read that starts while a slow save runs
  // may return the value before it.)
  std::uint64_t lo = newest > kRing - 1 ? newest - (kRing - 1) : 1;
  std::uint64_t hi = newest;
  std::uint64_t found = 0;
  while (lo <= hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    const Save* s = find(account, mid);
    const std::int64_t committed =
        s != nullptr ? s->committed_ns.load(std::memory_order_relaxed) : 0;
    if (committed != 0 && committed <= at_ns) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;  // mid >= 1, so this ends the loop at worst
    }
  }
  return found;
}

std::vector<std::int64_t> CommitLog::saw(int account, std::uint64_t from, std::uint64_t to,
                                         std::int64_t seen_ns) noexcept {
  std::vector<std::int64_t> lags;
  if (to > from + kRing) from = to - kRing;  // older saves have left the ring
  for (std::uint64_t v = from + 1; v <= to; ++v) {
    Save* s = find(account, v);
    if (s == nullptr) continue;
    std::int64_t last = s->last_seen_ns.load(std::memory_order_relaxed);
    while (last < seen_ns &&
           !s->last_seen_ns.compare_exchange_weak(last, seen_ns, std::memory_order_relaxed)) {
    }
    s->seen_by.fetch_add(1, std::memory_order_relaxed);
    try {
      lags.push_back(
          std::max<std::int64_t>(0, seen_ns - s->start_ns.load(std::memory_order_relaxed)));
    } catch (...) {
      // Out of memory: this sighting goes unmeasured in this process.
    }
  }
  return lags;
}

CommitLog::Windows CommitLog::windows(int processes) const {
  Windows out;
  for (int a = 1; a <= kAccounts; ++a) {
    const std::uint64_t newest = accounts_[a].committed.load(std::memory_order_acquire);
    const std::uint64_t first = newest > kRing - 1 ? newest - (kRing - 1) : 1;
    for (std::uint64_t v = first; v <= newest; ++v) {
      const Save* s = find(a, v);
      if (s == nullptr) continue;
      if (s->seen_by.load(std::memory_order_relaxed) < static_cast<std::uint32_t>(processes)) {
        ++out.unseen;
        continue;
      }
      const std::int64_t lag = s->last_seen_ns.load(std::memory_order_relaxed) -
                               s->start_ns.load(std::memory_order_relaxed);
      out.ms.push_back(static_cast<double>(std::max<std::int64_t>(0, lag)) / 1e6);
    }
  }
  std::sort(out.ms.begin(), out.ms.end());
  return out;
}

}  // namespace poolscope::load
