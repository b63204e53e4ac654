// PoolCore's connectors: opening connections on threads of the pool's own,
// retrying with back-off while someone waits, and delivering each new
// connection to the first waiter. A caller never blocks in a connect: it
// waits for the delivery until its deadline (pool_slow_path.cc), so a server
// that hangs mid-connect costs it at most its checkout_timeout. A connector
// holds its slot (kOpening) until it delivers or gives it back, and the slot
// keeps the core alive (pool_core.h), so ~Pool never waits for a connect.

#include <random>
#include <string>
#include <thread>
#include <utility>

#include "clock.h"
#include "pool_core.h"
#include "poolscope/pool/errors.h"

namespace poolscope::detail {
namespace {

using std::chrono::nanoseconds;

// Back-off between attempts: doubling from 10 ms up to 1 s, so a restart is
// noticed within a second and a dead server is not hammered.
constexpr std::chrono::milliseconds kFirstBackoff{10};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

void PoolCore::start_connect_locked(Slot* slot, Waiter* requester, const source_location& site) {
  auto* job = new ConnectJob{slot, requester, site};
  if (requester != nullptr) requester->job = job;
  if (connecting_++ == 0) connecting_since_ns_ = steady_ns();
  try {
    std::thread([this, job] { run_connector(job); }).detach();
  } catch (...) {
    // No thread to be had: undo, and let the waiter time out as if the
    // server were slow (the failure is in its message).
    --connecting_;
    if (requester != nullptr) requester->job = nullptr;
    delete job;
    slot->state.store(SlotState::kEmpty, std::memory_order_release);
    open_count_.fetch_sub(1, kRelaxed);
    last_connect_error_ = "could not start a connector thread";
  }
}

NoticeSink PoolCore::notice_sink(Slot* slot) const {
  return [this, slot](std::string_view severity, std::string_view message) {
    const std::string text = url_.scrub(message);
    notify(&ObserverRegistry::List::notice, &PoolObserver::on_notice, [&] {
      return NoticeEvent{config_.name, slot->connection_id.load(kRelaxed), severity, text};
    });
  };
}

bool PoolCore::open_into(Slot* slot, const source_location& site, std::uint32_t attempt,
                         std::string* error) noexcept {
  const std::int64_t start = now_ns();
  try {
    slot->conn = driver_.open(connect_string_, notice_sink(slot));
  } catch (...) {
    *error = trim(url_.scrub(exception_text(std::current_exception())));
    connect_failures_.fetch_add(1, kRelaxed);
    const nanoseconds took(now_ns() - start);
    notify(&ObserverRegistry::List::connect_failed, &PoolObserver::on_connect_failed, [&] {
      return ConnectFailedEvent{config_.name, *error, took, site, attempt};
    });
    return false;
  }
  slot->conn->statements().configure(config_.transaction_pooler ? 0 : config_.statement_cache_size,
                                     &statements_);
  const std::int64_t done = now_ns();
  slot->created_ns = done;
  slot->connect_ns = std::max<std::int64_t>(done - start, 1);
  std::int64_t expires = INT64_MAX;
  if (lifetime_ns_ > 0 && lifetime_ns_ < INT64_MAX - done) {
    // Up to 2.5% earlier, as HikariCP does, so connections opened together
    // do not all expire together.
    thread_local std::minstd_rand jitter_rng(std::random_device{}());
    const auto jitter =
        static_cast<std::int64_t>(static_cast<double>(lifetime_ns_) * 0.025 *
                                  static_cast<double>(jitter_rng() % 1000) / 1000.0);
    expires = done + lifetime_ns_ - jitter;
  }
  slot->expires_ns.store(expires, kRelaxed);
  slot->last_used_ns.store(done, kRelaxed);
  slot->invalidated.store(false, kRelaxed);
  slot->connection_id.store(next_connection_id_.fetch_add(1, kRelaxed), kRelaxed);
  opened_.fetch_add(1, kRelaxed);
  return true;
}

void PoolCore::report_connect(Slot* slot, const source_location& site) noexcept {
  const std::int64_t took = std::exchange(slot->connect_ns, 0);
  if (took == 0) return;
  notify(&ObserverRegistry::List::connect, &PoolObserver::on_connect, [&] {
    return ConnectEvent{config_.name, slot->connection_id.load(kRelaxed), nanoseconds(took), site};
  });
}

bool PoolCore::deliver_locked(ConnectJob* job) {
  Slot* slot = job->slot;
  if (job->requester != nullptr) job->requester->job = nullptr;
  const bool handed = head_ != nullptr;
  if (handed) {
    slot->state.store(SlotState::kInUse, kRelaxed);  // handed over, as from a return
    hand_over_locked(head_, slot, /*fresh=*/true);
    dispatch_locked();  // waiters whose connect this served may need another
  }
  // Else it stays kOpening until report_connect_idle() makes it idle.
  return handed;
}

void PoolCore::report_connect_idle(Slot* slot, const source_location& site) noexcept {
  report_connect(slot, site);
  {
    MutexLock lock(mu_);
    if (!closed_.load(kRelaxed)) {
      slot->state.store(SlotState::kIdle, kSeqCst);
      dispatch_locked();  // a waiter that queued meanwhile
      return;
    }
  }
  // Closed while reporting: shutdown() counted the slot (kOpening) as ours.
  close_connection(slot, CloseReason::kShutdown);
  give_back_empty(slot);  // may delete this
}

void PoolCore::run_connector(ConnectJob* job) noexcept {
  std::chrono::milliseconds backoff = kFirstBackoff;
  for (std::uint32_t attempt = 1;; ++attempt) {
    std::string error;
    const bool opened = open_into(job->slot, job->site, attempt, &error);
    bool close_now = false;    // opened, but the pool has closed
    bool report_now = false;   // opened and left idle: nobody else reports the connect
    bool remove_core = false;  // gave the slot back as the orphaned core's last
    {
      MutexLock lock(mu_);
      if (opened) {
        --connecting_;
        if (closed_.load(kRelaxed)) {
          if (job->requester != nullptr) job->requester->job = nullptr;
          close_now = true;
        } else {
          report_now = !deliver_locked(job);
        }
      } else {
        last_connect_error_ = error;
        const bool permanent = driver_.permanent_failure(error);
        Waiter* w = job->requester != nullptr ? job->requester : head_;
        if (permanent && w != nullptr && !closed_.load(kRelaxed)) {
          // Retrying cannot help: the waiter it was for (or the first one)
          // hears it now; a connect for the next starts as it leaves.
          if (w->job != nullptr) w->job->requester = nullptr;  // this job, or its own
          w->job = nullptr;
          job->requester = nullptr;
          w->error = error;
          if (w->queued) wait_list_remove_locked(w);
          w->cv.notify_one();
        }
        bool retry = !permanent && !closed_.load(kRelaxed) && head_ != nullptr;
        if (retry) {
          const auto until = std::chrono::steady_clock::now() + backoff;
          while (!closed_.load(kRelaxed) && connector_wake_.wait_until(mu_, until)) {
          }
          retry = !closed_.load(kRelaxed) && head_ != nullptr;
          backoff = std::min(backoff * 2, kMaxBackoff);
        }
        if (retry) continue;
        --connecting_;
        if (job->requester != nullptr) job->requester->job = nullptr;
        remove_core = make_empty_locked(job->slot);
      }
    }
    Slot* slot = job->slot;
    const source_location site = job->site;
    delete job;
    if (report_now) {
      // Idle now: another thread may check it out at once, and its
      // on_checkout must not come before this on_connect. The fields read
      // here are the slot's own until then, so read them first.
      report_connect_idle(slot, site);
    } else if (close_now) {
      close_connection(slot, CloseReason::kShutdown);
      give_back_empty(slot);  // may delete this
    } else if (remove_core) {
      delete this;
    }
    return;
  }
}

}  // namespace poolscope::detail
