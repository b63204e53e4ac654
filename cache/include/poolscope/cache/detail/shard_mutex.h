// ShardMutex: the reader-writer lock of a TtlCache shard, whose data is read
// far more often than it is written and whose readers must not slow each
// other down. A reader locks one slot, the one of the CPU it runs on, so
// readers on different CPUs write different cache lines and no line travels
// between cores on a read; a writer locks every slot, in order. Each slot
// carries a Local that its reader may update while holding it (hit
// counters), and that a writer, holding every slot, may read.
//
// One more slot, locked first by writers, is for long readers (a scan that
// matches an invalidation pattern against every key, a step at a time):
// they share it with each other and wait only for writers, and a reader on
// a CPU slot never waits for them, even when one is preempted mid-step.
//
// A slot's lock is one word, taken with a compare-and-swap and released with
// an exchange, inline; only when a writer (or a reader preempted inside its
// read) holds it does a thread spin briefly and then sleep on a futex. Which
// CPU a thread runs on is asked every 64th read: a thread that moved uses its
// old CPU's slot for a few reads, which is correct, only not local.
//
// The classes are thread-safe in the way std::shared_mutex is. A reader must
// not take the exclusive lock while it reads (it would wait for its own slot).

#pragma once

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "poolscope/base/mutex.h"

namespace poolscope::cache::detail {

// A lock word: 0 free, 1 held, 2 held with sleepers (Drepper's "Futexes Are
// Tricky", mutex 3).
class SlotLock {
 public:
  void lock() noexcept {
    std::uint32_t expected = 0;
    if (!word_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) [[unlikely]] {
      lock_slow();
    }
  }
  void unlock() noexcept {
    if (word_.exchange(0, std::memory_order_release) == 2) [[unlikely]] {
      word_.notify_one();
    }
  }

 private:
  void lock_slow() noexcept {
    // A writer holds a shard for well under a microsecond: spin that long.
    for (int i = 0; i < 64; ++i) {
      std::uint32_t expected = 0;
      if (word_.load(std::memory_order_relaxed) == 0 &&
          word_.compare_exchange_weak(expected, 1, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
        return;
      }
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    while (word_.exchange(2, std::memory_order_acquire) != 0) {
      word_.wait(2, std::memory_order_relaxed);
    }
  }

  std::atomic<std::uint32_t> word_{0};
};

// The CPU this thread last found itself on, asked again every 64th call.
struct CpuHint {
  std::uint32_t cpu = 0;
  std::uint32_t calls_left = 0;
};
inline thread_local CpuHint t_cpu_hint;

inline std::uint32_t this_cpu_hint() noexcept {
  CpuHint& hint = t_cpu_hint;
  if (hint.calls_left-- == 0) [[unlikely]] {
    hint.calls_left = 63;
    const int cpu = ::sched_getcpu();
    hint.cpu = cpu < 0 ? 0u : static_cast<std::uint32_t>(cpu);
  }
  return hint.cpu;
}

template <class Local>
class POOLSCOPE_CAPABILITY("mutex") ShardMutex {
  struct alignas(64) Slot {
    SlotLock lock;
    Local local{};
  };

 public:
  // Holds one slot for the lifetime of the object: the CPU's, or for a
  // long reader (kScan) the slot of long readers.
  enum class Kind { kHit, kScan };
  class POOLSCOPE_SCOPED_CAPABILITY ReaderLock {
   public:
    explicit ReaderLock(const ShardMutex& mu, Kind kind = Kind::kHit) POOLSCOPE_ACQUIRE_SHARED(mu)
        : slot_(mu.slots_[kind == Kind::kScan ? 0 : 1 + (this_cpu_hint() & mu.mask_)]) {
      slot_.lock.lock();
    }
    ~ReaderLock() POOLSCOPE_RELEASE_GENERIC() { slot_.lock.unlock(); }
    ReaderLock(const ReaderLock&) = delete;
    ReaderLock& operator=(const ReaderLock&) = delete;

    // This reader's Local; only while the lock is held.
    Local& local() noexcept { return slot_.local; }

   private:
    Slot& slot_;  // the one it locked, wherever the thread runs now
  };

  ShardMutex() : mask_(slot_count() - 1), slots_(new Slot[mask_ + 2]) {}
  ShardMutex(const ShardMutex&) = delete;
  ShardMutex& operator=(const ShardMutex&) = delete;

  // The long readers' slot first: a writer waiting for a scan's step holds
  // no CPU slot meanwhile, so hits go on.
  void lock() const POOLSCOPE_ACQUIRE() {
    for (std::size_t i = 0; i <= mask_ + 1; ++i) slots_[i].lock.lock();
  }
  void unlock() const POOLSCOPE_RELEASE() {
    for (std::size_t i = mask_ + 2; i-- > 0;) slots_[i].lock.unlock();
  }

  // Calls f(const Local&) for every slot. REQUIRES: the exclusive lock is held.
  template <class F>
  void for_each_local(F&& f) const POOLSCOPE_REQUIRES(this) {
    for (std::size_t i = 0; i <= mask_ + 1; ++i) f(static_cast<const Local&>(slots_[i].local));
  }

 private:
  // One slot per CPU, up to 64 (past that, CPUs share slots: still correct,
  // readers on a shared slot just meet again).
  static std::size_t slot_count() noexcept {
    static const std::size_t n = [] {
      const long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
      return std::bit_ceil(static_cast<std::size_t>(std::clamp(cpus, 1L, 64L)));
    }();
    return n;
  }

  // Constant after construction.
  const std::size_t mask_;  // CPU slots - 1, a power of two less one; slot 0 is for scans
  const std::unique_ptr<Slot[]> slots_;
};

}  // namespace poolscope::cache::detail
