// A mutex, its scoped lock and a condition variable, annotated for clang's
// -Wthread-safety analysis so that GUARDED_BY/REQUIRES contracts in poolscope
// are checked at compile time where the compiler supports it (GCC ignores the
// attributes). Nothing here is specific to pools; every component uses it.
//
// The classes are thread-safe in the way std::mutex and
// std::condition_variable are.

#pragma once

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>

#if defined(__clang__)
#define POOLSCOPE_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define POOLSCOPE_THREAD_ANNOTATION(x)
#endif

#define POOLSCOPE_CAPABILITY(x) POOLSCOPE_THREAD_ANNOTATION(capability(x))
#define POOLSCOPE_SCOPED_CAPABILITY POOLSCOPE_THREAD_ANNOTATION(scoped_lockable)
#define POOLSCOPE_GUARDED_BY(x) POOLSCOPE_THREAD_ANNOTATION(guarded_by(x))
#define POOLSCOPE_REQUIRES(...) POOLSCOPE_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define POOLSCOPE_EXCLUDES(...) POOLSCOPE_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define POOLSCOPE_ACQUIRE(...) POOLSCOPE_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define POOLSCOPE_RELEASE(...) POOLSCOPE_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define POOLSCOPE_ACQUIRE_SHARED(...) \
  POOLSCOPE_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define POOLSCOPE_RELEASE_GENERIC(...) \
  POOLSCOPE_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define POOLSCOPE_NO_THREAD_SAFETY_ANALYSIS POOLSCOPE_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace poolscope::detail {

class CondVar;

// std::mutex with a capability annotation.
class POOLSCOPE_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() POOLSCOPE_ACQUIRE() { mu_.lock(); }
  void unlock() POOLSCOPE_RELEASE() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// A mutex for very short critical sections that many threads pass through
// (a cache shard): it spins briefly before sleeping, so two threads that meet
// wait tens of nanoseconds instead of a futex round trip (glibc's adaptive
// mutex; elsewhere a default pthread mutex). Works with
// std::condition_variable_any.
class POOLSCOPE_CAPABILITY("mutex") SpinningMutex {
 public:
  SpinningMutex() noexcept {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
#if defined(__GLIBC__)
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(&mu_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~SpinningMutex() { pthread_mutex_destroy(&mu_); }
  SpinningMutex(const SpinningMutex&) = delete;
  SpinningMutex& operator=(const SpinningMutex&) = delete;

  void lock() POOLSCOPE_ACQUIRE() { pthread_mutex_lock(&mu_); }
  void unlock() POOLSCOPE_RELEASE() { pthread_mutex_unlock(&mu_); }

 private:
  pthread_mutex_t mu_;
};

// Holds a Mutex (or SpinningMutex) for the lifetime of the object.
template <class M>
class POOLSCOPE_SCOPED_CAPABILITY BasicMutexLock {
 public:
  explicit BasicMutexLock(M& mu) POOLSCOPE_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~BasicMutexLock() POOLSCOPE_RELEASE() { mu_.unlock(); }
  BasicMutexLock(const BasicMutexLock&) = delete;
  BasicMutexLock& operator=(const BasicMutexLock&) = delete;

 private:
  M& mu_;
};
using MutexLock = BasicMutexLock<Mutex>;

// A reader-writer lock for data read far more often than it is written,
// whose readers must not slow each other down (a cache shard). A reader
// locks one slot, the one of the CPU it runs on, so readers on different
// CPUs write different cache lines and no line travels between cores on a
// read; a writer locks every slot, in order. Each slot carries a Local that
// its reader may update while holding it (per-reader counters, say), and
// that a writer, holding every slot, may read.
//
// Reading costs an uncontended lock and unlock of a line that stays in the
// reader's core; writing costs one lock per slot, so keep writes rare. A
// reader must not take the exclusive lock while it reads (it would wait for
// its own slot). lock()/unlock() make it usable with
// std::condition_variable_any for writers.
template <class Local>
class POOLSCOPE_CAPABILITY("mutex") ReadMostlyMutex {
  struct alignas(64) Slot {
    SpinningMutex mu;
    Local local{};
  };

 public:
  // Holds one slot for the lifetime of the object.
  class POOLSCOPE_SCOPED_CAPABILITY ReaderLock {
   public:
    explicit ReaderLock(ReadMostlyMutex& mu) POOLSCOPE_ACQUIRE_SHARED(mu)
        : slot_(mu.this_cpus_slot()) {
      slot_.mu.lock();
    }
    ~ReaderLock() POOLSCOPE_RELEASE_GENERIC() { slot_.mu.unlock(); }
    ReaderLock(const ReaderLock&) = delete;
    ReaderLock& operator=(const ReaderLock&) = delete;

    // This reader's Local; only while the lock is held.
    Local& local() noexcept { return slot_.local; }

   private:
    Slot& slot_;  // not the current CPU's, if the thread moved: the one it locked
  };

  ReadMostlyMutex() : size_(slot_count()), slots_(new Slot[size_]) {}
  ReadMostlyMutex(const ReadMostlyMutex&) = delete;
  ReadMostlyMutex& operator=(const ReadMostlyMutex&) = delete;

  void lock() POOLSCOPE_ACQUIRE() {
    for (std::size_t i = 0; i < size_; ++i) slots_[i].mu.lock();
  }
  void unlock() POOLSCOPE_RELEASE() {
    for (std::size_t i = size_; i-- > 0;) slots_[i].mu.unlock();
  }

  // Calls f(const Local&) for every slot. REQUIRES: the exclusive lock is held.
  template <class F>
  void for_each_local(F&& f) const POOLSCOPE_REQUIRES(this) {
    for (std::size_t i = 0; i < size_; ++i) f(static_cast<const Local&>(slots_[i].local));
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
  Slot& this_cpus_slot() noexcept {
    // glibc reads the CPU from the thread's rseq area: a load, no system call.
    const int cpu = ::sched_getcpu();
    return slots_[cpu < 0 ? 0 : static_cast<std::size_t>(cpu) & (size_ - 1)];
  }

  // Constant after construction.
  const std::size_t size_;  // a power of two
  const std::unique_ptr<Slot[]> slots_;
};

// std::condition_variable over a Mutex. Waits may wake spuriously; callers
// loop on their predicate.
class CondVar {
 public:
  void notify_one() noexcept { cv_.notify_one(); }
  void notify_all() noexcept { cv_.notify_all(); }

  // REQUIRES: mu is held; it is held again on return.
  void wait(Mutex& mu) POOLSCOPE_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }

  // Returns false when the deadline passed. REQUIRES: mu is held.
  template <class Clock, class Duration>
  bool wait_until(Mutex& mu, std::chrono::time_point<Clock, Duration> deadline)
      POOLSCOPE_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool woke = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woke;
  }

 private:
  std::condition_variable cv_;
};

}  // namespace poolscope::detail
