#include "poolscope/pool/pool.h"

#include <atomic>
#include <stdexcept>
#include <utility>

#include "pool_core.h"

#if POOLSCOPE_WITH_POSTGRESQL
#include <soci/postgresql/soci-postgresql.h>
#endif
#if POOLSCOPE_WITH_SQLITE
#include <soci/sqlite3/soci-sqlite3.h>
#endif

namespace poolscope {
namespace {

std::atomic<std::uint64_t> g_unnamed_pools{0};  // for "pool-<n>" names

}  // namespace

std::uint64_t checkouts_on_this_thread() noexcept { return detail::thread_checkouts(); }

Pool::Pool(PoolConfig config) {
  if (config.name.empty()) {
    config.name =
        "pool-" + std::to_string(g_unnamed_pools.fetch_add(1, std::memory_order_relaxed) + 1);
  }
  config.validate();
  ConnectionUrl url = ConnectionUrl::parse(config.url);
  if (url.backend() == Backend::kSqlite && url.sqlite_in_memory() &&
      config.pool_size + config.max_overflow > 1) {
    throw std::invalid_argument(
        "PoolConfig.pool_size + max_overflow is " +
        std::to_string(config.pool_size + config.max_overflow) + " but " + url.redacted() +
        " gives every connection its own empty database; use pool_size = 1 and "
        "max_overflow = 0, or a database file");
  }
  config.url = url.redacted();
  core_ = new detail::PoolCore(std::move(config), std::move(url));
  try {
    core_->start();
  } catch (...) {
    core_->shutdown();
    throw;
  }
}

namespace {

// The URL for a SOCI backend and connect string: SOCI's own form.
PoolConfig with_soci_url(const soci::backend_factory& backend, std::string_view connect_string,
                         PoolConfig config) {
  if (!config.url.empty()) {
    throw std::invalid_argument(
        "PoolConfig.url must be empty when a SOCI backend and connect string are given");
  }
  std::string scheme;
#if POOLSCOPE_WITH_POSTGRESQL
  if (&backend == &soci::postgresql) scheme = "postgresql://";
#endif
#if POOLSCOPE_WITH_SQLITE
  if (&backend == &soci::sqlite3) scheme = "sqlite3://";
#endif
  if (scheme.empty()) {
    throw std::invalid_argument(
        "Pool: no poolscope driver for this SOCI backend (poolscope has "
#if POOLSCOPE_WITH_POSTGRESQL
        "soci::postgresql "
#endif
#if POOLSCOPE_WITH_SQLITE
        "soci::sqlite3"
#endif
        ")");
  }
  config.url = scheme + std::string(connect_string);
  return config;
}

}  // namespace

Pool::Pool(const soci::backend_factory& backend, std::string_view connect_string, PoolConfig config)
    : Pool(with_soci_url(backend, connect_string, std::move(config))) {}

Pool::~Pool() { core_->shutdown(); }

Lease Pool::acquire(poolscope::source_location site) {
  return core_->acquire(site, /*share=*/true);
}

std::optional<Lease> Pool::try_acquire(std::chrono::milliseconds timeout,
                                       poolscope::source_location site) {
  return core_->try_acquire(site, timeout);
}

Lease Pool::acquire_new(poolscope::source_location site) {
  return core_->acquire(site, /*share=*/false);
}

PoolStats Pool::stats() const { return core_->stats(); }

std::vector<LeaseInfo> Pool::active_leases() const { return core_->active_leases(); }

const std::string& Pool::name() const noexcept { return core_->config().name; }

Backend Pool::backend() const noexcept { return core_->url().backend(); }

const std::string& Pool::redacted_url() const noexcept { return core_->url().redacted(); }

const PoolConfig& Pool::config() const noexcept { return core_->config(); }

Subscription Pool::add_observer(std::shared_ptr<PoolObserver> observer) {
  if (observer == nullptr) throw std::invalid_argument("Pool::add_observer: observer is null");
  return core_->add_observer(std::move(observer));
}

PoolView Pool::view() const {
  PoolView v;
  v.watch_ = core_->watch();
  v.core_ = core_;
  return v;
}

std::optional<PoolStats> PoolView::stats() const {
  if (const auto alive = watch_.lock()) return core_->stats();
  return std::nullopt;
}

std::optional<std::vector<LeaseInfo>> PoolView::active_leases() const {
  if (const auto alive = watch_.lock()) return core_->active_leases();
  return std::nullopt;
}

bool PoolView::expired() const { return watch_.expired(); }

// Moves keep sharing: which thread shares a checkout is decided by the
// thread that uses the lease (Lease::session()), not by the move.
Lease::Lease(Lease&& other) noexcept
    : core_(std::exchange(other.core_, nullptr)),
      slot_(std::exchange(other.slot_, nullptr)),
      share_(std::exchange(other.share_, nullptr)),
      session_(std::exchange(other.session_, nullptr)),
      site_(other.site_),
      reused_(other.reused_) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    core_ = std::exchange(other.core_, nullptr);
    slot_ = std::exchange(other.slot_, nullptr);
    share_ = std::exchange(other.share_, nullptr);
    session_ = std::exchange(other.session_, nullptr);
    site_ = other.site_;
    reused_ = other.reused_;
  }
  return *this;
}

void Lease::release_slow() noexcept {
  detail::PoolCore* core = std::exchange(core_, nullptr);
  detail::Slot* slot = std::exchange(slot_, nullptr);
  share_ = nullptr;
  session_ = nullptr;
  core->release_ref(slot);
}

void Lease::used_on_another_thread() const noexcept { core_->claim_for_this_thread(slot_); }

PreparedStatement& Lease::prepared(std::string_view sql) const {
  static_cast<void>(session());  // a use, as of the session
  detail::Connection& conn = *slot_->conn;
  return conn.statements().get(conn, sql);
}

void Lease::invalidate() noexcept {
  if (slot_ != nullptr) slot_->invalidated.store(true, std::memory_order_relaxed);
}

std::uint64_t Lease::connection_id() const noexcept {
  return slot_ != nullptr ? slot_->connection_id.load(std::memory_order_relaxed) : 0;
}

}  // namespace poolscope
