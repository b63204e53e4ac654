#include "tracer_state.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <mutex>
#include <stdexcept>

#include "pool_tracer.h"

namespace poolscope::tracing::detail {
namespace {

std::shared_ptr<spdlog::logger> default_logger() {
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (auto logger = spdlog::get("poolscope")) return logger;
  return spdlog::stderr_color_mt("poolscope");
}

}  // namespace

std::string thread_name(std::uint64_t tid) {
  std::ifstream comm("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(comm, name);
  return name;
}

TracerState::TracerState(TracerConfig config)
    : churn_threshold(config.churn_threshold),
      config_(std::move(config)),
      logger_(config_.logger != nullptr ? config_.logger : default_logger()) {}

std::vector<TracerState::Attached> TracerState::pools() const {
  MutexLock lock(mu_);
  std::vector<Attached> out;
  out.reserve(pools_.size());
  for (const Entry& e : pools_) out.push_back(e.attached);
  return out;
}

void TracerState::attach(Pool& pool, std::shared_ptr<TracerState> self) {
  std::shared_ptr<PoolTracer> started;
  {
    MutexLock lock(mu_);
    for (const Entry& e : pools_) {
      if (e.pool == &pool) {
        throw std::invalid_argument("Tracer::attach: pool '" + pool.name() +
                                    "' is already attached");
      }
    }
    started = std::make_shared<PoolTracer>(std::move(self), pool);
    Subscription subscription = pool.add_observer(started);
    pools_.push_back({&pool, {started, pool.view()}, std::move(subscription)});
  }
  started->log_start(pool);
}

void TracerState::detach(Pool& pool) {
  std::vector<Entry> gone;  // destroyed outside mu_
  {
    MutexLock lock(mu_);
    for (auto it = pools_.begin(); it != pools_.end(); ++it) {
      if (it->pool == &pool) {
        gone.push_back(std::move(*it));
        pools_.erase(it);  // ends the subscription
        break;
      }
    }
  }
  for (Entry& e : gone) {
    e.subscription = Subscription();
    e.attached.tracer->flush_timeouts(PoolTracer::Clock::now(), /*final=*/true);
  }
}

void TracerState::detach_all() {
  std::vector<Entry> gone;
  {
    MutexLock lock(mu_);
    gone.swap(pools_);
  }
  for (Entry& e : gone) {
    e.subscription = Subscription();
    e.attached.tracer->flush_timeouts(PoolTracer::Clock::now(), /*final=*/true);
  }
}

void TracerState::pool_closed(const PoolTracer* tracer) {
  std::vector<Entry> gone;  // destroyed outside mu_
  MutexLock lock(mu_);
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (it->attached.tracer.get() == tracer) {
      gone.push_back(std::move(*it));
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace poolscope::tracing::detail
