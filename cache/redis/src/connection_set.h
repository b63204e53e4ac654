// ConnectionSet: a small bounded set of Connections for the tier's
// commands (hiredis contexts are not thread-safe: one caller per connection
// at a time). A caller waits for a free connection at most until its call's
// deadline; connections connect lazily, on the first call that needs one,
// within that call's deadline.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "connection.h"
#include "poolscope/base/mutex.h"

namespace poolscope::cache::detail {

class ConnectionSet {
 public:
  // One connection, held until the Lease goes. Move-only.
  class Lease {
   public:
    Lease(Lease&& other) noexcept
        : set_(std::exchange(other.set_, nullptr)), index_(other.index_) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease() {
      if (set_ != nullptr) set_->release(index_);
    }
    Connection& operator*() const noexcept { return *set_->connections_[index_]; }
    Connection* operator->() const noexcept { return set_->connections_[index_].get(); }

   private:
    friend class ConnectionSet;
    Lease(ConnectionSet* set, std::size_t index) : set_(set), index_(index) {}
    ConnectionSet* set_;
    std::size_t index_;
  };

  // REQUIRES: url outlives the set; size >= 1.
  ConnectionSet(const RedisUrl& url, std::size_t size, std::chrono::milliseconds connect_timeout);

  // A free connection, waiting for one until deadline; nullopt when none
  // became free in time or the set is closed.
  std::optional<Lease> acquire(SteadyClock::time_point deadline);

  // Closes idle connections now and busy ones when they come back; every
  // later acquire() fails.
  void close() noexcept;

 private:
  void release(std::size_t index) noexcept;

  // Constant after construction.
  const std::vector<std::unique_ptr<Connection>> connections_;

  poolscope::detail::Mutex mu_;
  poolscope::detail::CondVar freed_;
  std::vector<std::size_t> free_ POOLSCOPE_GUARDED_BY(mu_);  // a stack: the last used goes first
  bool closed_ POOLSCOPE_GUARDED_BY(mu_) = false;
};

}  // namespace poolscope::cache::detail
