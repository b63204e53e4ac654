// The incidents' dashboard-widget scenario (../shared/incidents/000, 002, 004):
// a render walks the 20 open transactions and builds an account object per
// row, whose constructor reads three settings: api_key, api_secret,
// paper_account. How each read gets its session is what the modes change:
//
//   naive  a new connection per read, no pool (60 connections per render)
//   pool   a pooled lease per read (60 checkouts per render)
//   reuse  one lease held for the render; the reads' own acquire() calls
//          share it (1 checkout, 60 nested reuses per render)
//
// The 20 rows are the widget's input, read once per worker; a render is the
// per-row account construction, which is where the incident's sessions went.

#pragma once

#include <soci/soci.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "latency.h"
#include "poolscope/pool/pool.h"

namespace poolscope::load {

enum class Mode { kNaive, kPool, kReuse };

std::string_view to_string(Mode mode) noexcept;
std::optional<Mode> parse_mode(std::string_view name) noexcept;

inline constexpr int kAccounts = 5;
inline constexpr int kOpenTransactions = 20;
inline constexpr int kReadsPerAccount = 3;
inline constexpr int kReadsPerRender = kOpenTransactions * kReadsPerAccount;

struct Transaction {
  int id = 0;
  int account_id = 0;
  std::string symbol;
  int quantity = 0;
};

// Creates the scenario's tables and fills them (idempotent: reseeds).
void seed(soci::session& sql, Backend backend);

std::vector<Transaction> load_open_transactions(soci::session& sql);

// Where a settings read gets its session.
class SettingsSource {
 public:
  virtual ~SettingsSource() = default;
  // Returns the setting's value; throws if the account has no such setting.
  virtual std::string read(int account_id, const std::string& key) = 0;
};

// The account object of the incidents: its constructor reads its settings.
class Account {
 public:
  Account(int id, SettingsSource& settings);

  int id() const noexcept { return id_; }
  bool paper() const noexcept { return paper_; }
  std::size_t credential_length() const noexcept { return api_key_.size() + api_secret_.size(); }

 private:
  int id_;
  std::string api_key_;
  std::string api_secret_;
  bool paper_;
};

// The leak scenario's culprit: a report export that keeps its lease for
// `hold` (or until stop) while it "formats", far past leak_threshold.
void slow_export(Pool& pool, std::chrono::duration<double> hold, const std::atomic<bool>& stop);

// Renders the widget for one worker thread. Not thread-safe: one per thread.
class WidgetRenderer {
 public:
  // pool is unused (may be null) in naive mode; url is used only there.
  WidgetRenderer(Mode mode, Pool* pool, const ConnectionUrl& url);
  ~WidgetRenderer();

  // One render over rows; returns a checksum of the accounts built.
  std::uint64_t render(const std::vector<Transaction>& rows);

  // Latency of every acquire (naive: every connection open) so far.
  const LatencyHistogram& acquire_latency() const noexcept { return latency_; }
  // Connections this renderer opened itself (naive mode).
  std::uint64_t connections_opened() const noexcept { return opened_; }

 private:
  class NaiveSettings;
  class PooledSettings;

  Mode mode_;
  Pool* pool_;
  LatencyHistogram latency_;
  std::uint64_t opened_ = 0;
  std::unique_ptr<SettingsSource> settings_;
};

}  // namespace poolscope::load
