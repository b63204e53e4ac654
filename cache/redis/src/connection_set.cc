#include "connection_set.h"

namespace poolscope::cache::detail {
namespace {

std::vector<std::unique_ptr<Connection>> make_connections(const RedisUrl& url, std::size_t size,
                                                          std::chrono::milliseconds timeout) {
  std::vector<std::unique_ptr<Connection>> out;
  for (std::size_t i = 0; i < size; ++i) out.push_back(std::make_unique<Connection>(url, timeout));
  return out;
}

}  // namespace

ConnectionSet::ConnectionSet(const RedisUrl& url, std::size_t size,
                             std::chrono::milliseconds connect_timeout)
    : connections_(make_connections(url, size, connect_timeout)) {
  poolscope::detail::MutexLock lock(mu_);
  for (std::size_t i = size; i-- > 0;) free_.push_back(i);
}

std::optional<ConnectionSet::Lease> ConnectionSet::acquire(SteadyClock::time_point deadline) {
  poolscope::detail::MutexLock lock(mu_);
  while (!closed_ && free_.empty()) {
    if (!freed_.wait_until(mu_, deadline) && free_.empty()) return std::nullopt;
  }
  if (closed_) return std::nullopt;
  const std::size_t index = free_.back();
  free_.pop_back();
  return Lease(this, index);
}

void ConnectionSet::release(std::size_t index) noexcept {
  {
    poolscope::detail::MutexLock lock(mu_);
    if (closed_) {
      connections_[index]->close();
      return;
    }
    free_.push_back(index);
  }
  freed_.notify_one();
}

void ConnectionSet::close() noexcept {
  {
    poolscope::detail::MutexLock lock(mu_);
    closed_ = true;
    for (const std::size_t index : free_) connections_[index]->close();
  }
  freed_.notify_all();
}

}  // namespace poolscope::cache::detail
