// The incidents' dashboard-widget scenario: a render walks the 20 open transactions and builds an
// account object per row, whose constructor reads three settings: api_key, api_secret,
// paper_account. How each read gets its session is what the modes change:
//
//   naive  a new connection per read, no pool (60 connections per render)
//   pool   a pooled lease per read (60 checkouts per render)
//   reuse  one lease held for the render; the reads' own acquire() calls
//          share it (1 checkout, 60 nested reuses per render)
//   cached account objects from an InstanceCache, their settings from a
//          SettingsCache (no checkout once warm); a settings save evicts
//          the account, as the incident's fix cleared its cache on save
//
// The 20 rows are the widget's input, read once per worker; a render is the
// per-row account construction, which is where the incident's sessions went.

#pragma once

#include <soci/soci.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commit_log.h"
#include "database.h"
#include "latency.h"
#include "poolscope/base/mutex.h"
#include "poolscope/cache/instance_cache.h"
#include "poolscope/cache/settings_cache.h"
#include "poolscope/pool/pool.h"

namespace spdlog {
class logger;
}

namespace poolscope::load {

enum class Mode { kNaive, kPool, kReuse, kCached };

std::string_view to_string(Mode mode) noexcept;
std::optional<Mode> parse_mode(std::string_view name) noexcept;

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
  const std::string& api_secret() const noexcept { return api_secret_; }

 private:
  int id_;
  std::string api_key_;
  std::string api_secret_;
  bool paper_;
};

// The caches of the cached mode: accounts by id, settings by account. A
// save to an account's settings evicts its cached object. With a shared
// tier (--redis), the settings' second level is Redis, and the accounts'
// evictions reach every process (shared_evictions). Thread-safe.
struct WidgetCaches {
  explicit WidgetCaches(Pool& pool, std::shared_ptr<cache::SettingsTier> tier = nullptr);

  cache::SettingsCache settings;
  cache::InstanceCache<int, const Account> accounts;
  Subscription evict_on_save;     // of accounts to settings' invalidations
  Subscription shared_evictions;  // of accounts to the shared tier; ends first
};

// The settings-write scenario's bookkeeping: saves api_secret of an account
// as "secret-<account>-v<version>", versions counting up per account, and
// checks every read against the saves of every process (in a CommitLog):
//   - a save of this process must be seen by every read here that starts
//     after it returned (the local cache is invalidated before it returns);
//   - a save of another process may be missed for `window` after it
//     began (it has to travel: Redis's broadcast); a read that starts later
//     and returns an older value is stale. One within the window is late.
// Account a is written by process (a - 1) % processes only. Thread-safe.
class WriteLedger {
 public:
  WriteLedger(CommitLog& log, int process, int processes, std::chrono::nanoseconds window);

  // The accounts this process writes (empty when there are more processes
  // than accounts and this one has none).
  const std::vector<int>& accounts() const noexcept { return owned_; }

  // Saves the next version for account through caches (then reads it back:
  // a writer must see its own write). Returns false if the read-back was stale.
  // REQUIRES: account is one of accounts().
  bool write(WidgetCaches& caches, int account);

  // A read's floor, taken as it begins.
  struct Read {
    int account = 0;
    std::uint64_t own = 0;  // this process's newest committed save
    std::int64_t start_ns = 0;
  };
  Read begin_read(int account) const noexcept;
  enum class Verdict { kFresh, kLate, kStale };
  // What the read that began as r returned (the version in its api_secret).
  Verdict finish_read(const Read& r, std::uint64_t version);

  // How long after a save began this process first read it (or newer),
  // one sample per save of any process it saw.
  LatencyHistogram sightings() const;

  // The version inside an api_secret value (0 for the seeded ones).
  static std::uint64_t version_of(const std::string& api_secret) noexcept;

 private:
  struct alignas(64) Slot {
    std::mutex write;  // one writer per account keeps commit order = version order
    std::uint64_t next = 0;
    std::atomic<std::uint64_t> committed{0};  // by this process
    std::atomic<std::uint64_t> seen{0};       // newest version read here
  };
  void note_sighting(int account, std::uint64_t version);

  CommitLog& log_;
  const std::int64_t window_ns_;
  std::vector<int> owned_;
  Slot slots_[kAccounts + 1];
  mutable detail::Mutex sightings_mu_;
  LatencyHistogram sightings_ POOLSCOPE_GUARDED_BY(sightings_mu_);
};

// The leak scenario's culprit: a report export that keeps its lease for
// `hold` (or until stop) while it "formats", far past leak_threshold.
void slow_export(Pool& pool, std::chrono::duration<double> hold, const std::atomic<bool>& stop);

// Renders the widget for one worker thread. Not thread-safe: one per thread.
class WidgetRenderer {
 public:
  // pool is unused (may be null) in naive mode; url and notices (where its
  // connections' notices go) are used only there; caches only in cached
  // mode. With a ledger, every account read is checked against the last
  // committed save.
  WidgetRenderer(Mode mode, Pool* pool, const ConnectionUrl& url, WidgetCaches* caches = nullptr,
                 WriteLedger* ledger = nullptr, std::shared_ptr<spdlog::logger> notices = nullptr);
  ~WidgetRenderer();

  // One render over rows: an account object per row. Nothing is returned:
  // the work is the settings reads (queries, or cache lookups in cached
  // mode), calls with side effects that the compiler cannot drop.
  void render(const std::vector<Transaction>& rows);

  // Reads older than the save they had to see, and reads of another
  // process's previous value within the ledger's window (settings-write).
  std::uint64_t stale_reads() const noexcept { return stale_reads_; }
  std::uint64_t late_reads() const noexcept { return late_reads_; }

  // Latency of every outermost checkout so far: a read's acquire in pool
  // mode, the render's in reuse mode (not the reads' nested reuses, which
  // cost nanoseconds and would be 60 of every 61 samples), every connection
  // open in naive mode. Cached mode takes none itself.
  const LatencyHistogram& acquire_latency() const noexcept { return latency_; }
  // Connections this renderer opened itself (naive mode).
  std::uint64_t connections_opened() const noexcept { return opened_; }
  // Settings queries this renderer ran itself (every mode but cached, whose
  // queries are the settings cache's loads).
  std::uint64_t database_reads() const noexcept { return reads_; }

 private:
  class NaiveSettings;
  class PooledSettings;

  // The render's work: an account object per row.
  void build_accounts(const std::vector<Transaction>& rows);
  void check(const Account& account, const WriteLedger::Read& read);

  Mode mode_;
  Pool* pool_;
  WidgetCaches* caches_;
  WriteLedger* ledger_;
  LatencyHistogram latency_;
  std::uint64_t opened_ = 0;
  std::uint64_t reads_ = 0;
  std::uint64_t stale_reads_ = 0;
  std::uint64_t late_reads_ = 0;
  std::unique_ptr<SettingsSource> settings_;
};

}  // namespace poolscope::load
