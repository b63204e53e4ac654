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
#define POOLSCOPE_REQUIRES_SHARED(...) \
  POOLSCOPE_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
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
