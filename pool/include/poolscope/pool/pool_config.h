// PoolConfig: how a Pool sizes, recycles, validates and resets connections.
// Sizing follows SQLAlchemy's QueuePool (pool_size + max_overflow); lifetime,
// validation and timeouts follow HikariCP. A plain value type.

#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace poolscope {

// What happens to a connection's open transaction when its lease comes back.
enum class ResetOnReturn {
  kRollback,  // roll back a transaction left open (SQLAlchemy's default)
  kNone,      // leave it: only for code that never leaves one open
};

struct PoolConfig {
  // Where to connect: see url.h for the accepted forms. Required.
  std::string url{};

  // Label in messages, logs and metrics. Empty: "pool-<n>", numbered per
  // process like HikariCP's "HikariPool-1". At most 64 of [A-Za-z0-9_.:-].
  std::string name{};

  // Connections kept open once made (QueuePool's pool_size).
  std::size_t pool_size = 10;

  // Extra connections allowed under load; closed again when they come back
  // to a pool that already holds pool_size idle connections.
  std::size_t max_overflow = 20;

  // How long acquire() waits for a connection before throwing PoolTimeout.
  // milliseconds::max(): for as long as it takes.
  std::chrono::milliseconds checkout_timeout{30'000};

  // Connections older than this are closed and replaced (when idle, or when
  // they come back), with up to 2.5% jitter so they do not all expire at once.
  // Zero: never. Not applied to an in-memory SQLite database, which a close
  // would erase.
  std::chrono::milliseconds max_lifetime{30 * 60'000};

  // Idle connections unused for this long are closed, down to min_idle.
  // Zero: never. Not applied to an in-memory SQLite database.
  std::chrono::milliseconds idle_timeout{10 * 60'000};

  // Connections opened at construction and kept open even when idle.
  // At most pool_size.
  std::size_t min_idle = 0;

  // Validate a connection on checkout (SQLAlchemy's pool_pre_ping), unless it
  // was used within validation_interval (HikariCP's alive-bypass window).
  bool validate_on_checkout = true;
  std::chrono::milliseconds validation_interval{500};

  // The query that validates a connection. Empty: the backend's cheapest
  // check (an empty round trip on PostgreSQL, none needed for SQLite).
  std::string validation_query{};

  ResetOnReturn reset_on_return = ResetOnReturn::kRollback;

  // PostgreSQL: libpq's connect_timeout, unless the URL sets one. Rounded up
  // to whole seconds; at most INT_MAX seconds.
  std::chrono::milliseconds connect_timeout{10'000};

  // SQLite files: how long a statement waits on a locked database (the busy
  // timeout), unless the URL sets timeout=. Rounded up to whole seconds; at
  // most 2147483 s (SQLite takes milliseconds as an int).
  std::chrono::milliseconds sqlite_busy_timeout{5'000};

  // PostgreSQL: a transaction-pooling proxy (PgBouncer with pool_mode =
  // transaction, before 1.21) sits between the pool and the server, so one
  // server session may serve another client between transactions. Then
  // poolscope prepares no named statements (its statement cache is off) and
  // relies on no session state across transactions. Leave it false for a
  // direct connection or session pooling.
  bool transaction_pooler = false;

  // Prepared statements kept per connection (Lease::prepared()), least
  // recently used out first. Zero: none, every prepared() statement runs as a
  // one-time query. Behind a transaction_pooler it is always zero.
  std::size_t statement_cache_size = 128;

  // How often the housekeeper closes expired and idle connections. It runs
  // more often when max_lifetime or idle_timeout are shorter than this.
  std::chrono::milliseconds housekeeping_interval{30'000};

  // Throws std::invalid_argument naming the first invalid field and its
  // value, e.g. "PoolConfig.pool_size must be at least 1 (got 0)".
  void validate() const;
};

}  // namespace poolscope
