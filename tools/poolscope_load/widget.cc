#include "widget.h"

#include <charconv>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "notices.h"

namespace poolscope::load {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

std::string_view to_string(Mode mode) noexcept {
  switch (mode) {
    case Mode::kNaive:
      return "naive";
    case Mode::kPool:
      return "pool";
    case Mode::kReuse:
      return "reuse";
    case Mode::kCached:
      return "cached";
  }
  return "unknown";
}

std::optional<Mode> parse_mode(std::string_view name) noexcept {
  for (Mode mode : {Mode::kNaive, Mode::kPool, Mode::kReuse, Mode::kCached}) {
    if (to_string(mode) == name) return mode;
  }
  return std::nullopt;
}

void slow_export(Pool& pool, std::chrono::duration<double> hold, const std::atomic<bool>& stop) {
  Lease sql = pool.acquire();
  int open = 0;
  *sql << "SELECT count(*) FROM transactions WHERE status = 'OPEN'", soci::into(open);
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(hold);
  while (Clock::now() < until && !stop.load(std::memory_order_relaxed)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Account::Account(int id, SettingsSource& settings)
    : id_(id),
      api_key_(settings.read(id, "api_key")),
      api_secret_(settings.read(id, "api_secret")),
      paper_(settings.read(id, "paper_account") == "true") {}

namespace {

constexpr const char* kSettingQuery =
    "SELECT setting_value FROM account_settings WHERE account_id = :a AND setting_key = :k";

std::string query_setting(soci::session& sql, int account_id, const std::string& key) {
  std::string value;
  soci::indicator ind = soci::i_null;
  sql << kSettingQuery, soci::use(account_id), soci::use(key), soci::into(value, ind);
  if (!sql.got_data() || ind != soci::i_ok) {
    throw std::runtime_error("account " + std::to_string(account_id) + " has no setting '" + key +
                             "'");
  }
  return value;
}

}  // namespace

// Before any fix: every read opens its own connection, no pool.
class WidgetRenderer::NaiveSettings : public SettingsSource {
 public:
  NaiveSettings(const ConnectionUrl& url, WidgetRenderer& owner,
                std::shared_ptr<spdlog::logger> notices)
      : url_(url), owner_(owner), notices_(std::move(notices)) {
    connect_ = url.connect_string();
    if (url.backend() == Backend::kSqlite && connect_.find("timeout=") == std::string::npos) {
      connect_ += " timeout=5";
    }
  }

  std::string read(int account_id, const std::string& key) override {
    const auto start = Clock::now();
    soci::session sql(url_.soci_backend(), connect_);
    owner_.latency_.record(Clock::now() - start);
    ++owner_.opened_;
    std::optional<NoticeRoute> route;
    if (notices_ != nullptr) route.emplace(sql, notices_, url_, "naive connection");
    ++owner_.reads_;
    return query_setting(sql, account_id, key);
  }

 private:
  const ConnectionUrl& url_;
  WidgetRenderer& owner_;
  const std::shared_ptr<spdlog::logger> notices_;
  std::string connect_;
};

// A pooled lease per read; in reuse mode the render's lease is shared.
class WidgetRenderer::PooledSettings : public SettingsSource {
 public:
  explicit PooledSettings(WidgetRenderer& owner) : owner_(owner) {}

  std::string read(int account_id, const std::string& key) override {
    const auto start = Clock::now();
    Lease sql = owner_.pool_->acquire();
    // In reuse mode that was a nested reuse of the render's lease, whose
    // checkout render() timed: not a checkout, not sampled.
    if (owner_.mode_ != Mode::kReuse) owner_.latency_.record(Clock::now() - start);
    ++owner_.reads_;
    // Prepared once per connection (Lease::prepared), re-executed by every
    // later read on it, as pgjdbc does after a few uses of a statement.
    std::string value;
    soci::indicator ind = soci::i_null;
    PreparedStatement& st = sql.prepared(kSettingQuery);
    if (!st.execute(soci::use(account_id), soci::use(key), soci::into(value, ind)) ||
        ind != soci::i_ok) {
      throw std::runtime_error("account " + std::to_string(account_id) + " has no setting '" + key +
                               "'");
    }
    return value;
  }

 private:
  WidgetRenderer& owner_;
};

// Settings through the SettingsCache: what the cached accounts read.
class CachedSettings : public SettingsSource {
 public:
  explicit CachedSettings(cache::SettingsCache& cache) : cache_(cache) {}
  std::string read(int account_id, const std::string& key) override {
    return cache_.get<std::string>(account_id, key);
  }

 private:
  cache::SettingsCache& cache_;
};

WidgetCaches::WidgetCaches(Pool& pool, std::shared_ptr<cache::SettingsTier> tier)
    : settings(pool, {.name = "account_settings",
                      .table = {"account_settings", "account_id", "setting_key", "setting_value"},
                      .shared_tier = std::move(tier)}),
      accounts(
          [this](const int& id) {
            CachedSettings source(settings);
            return std::make_shared<const Account>(id, source);
          },
          {.name = "accounts"}) {
  // A save evicts the account object built from the old settings.
  evict_on_save = settings.cache().add_invalidation_listener(
      [this](const cache::Invalidation<std::int64_t>& inv) {
        if (inv.key) {
          accounts.evict(static_cast<int>(*inv.key));
        } else {
          accounts.clear();
        }
      });
}

WriteLedger::WriteLedger(CommitLog& log, int process, int processes,
                         std::chrono::nanoseconds window)
    : log_(log), window_ns_(window.count()) {
  for (int a = 1; a <= kAccounts; ++a) {
    if ((a - 1) % processes == process) owned_.push_back(a);
  }
}

bool WriteLedger::write(WidgetCaches& caches, int account) {
  Slot& slot = slots_[account];
  std::lock_guard lock(slot.write);
  const std::uint64_t version = ++slot.next;
  // Timed from before the save: its commit comes a little later, so the
  // windows measured from here overstate by the save's own duration.
  log_.begin(account, version, CommitLog::now_ns());
  caches.settings.save(account, "api_secret",
                       "secret-" + std::to_string(account) + "-v" + std::to_string(version));
  slot.committed.store(version, std::memory_order_release);
  log_.committed(account, version);
  const Read read = begin_read(account);
  return finish_read(read, version_of(caches.accounts.get(account)->api_secret())) !=
         Verdict::kStale;
}

WriteLedger::Read WriteLedger::begin_read(int account) const noexcept {
  return {account, slots_[account].committed.load(std::memory_order_acquire), CommitLog::now_ns()};
}

WriteLedger::Verdict WriteLedger::finish_read(const Read& r, std::uint64_t version) {
  note_sighting(r.account, version);
  if (version < r.own) return Verdict::kStale;
  if (version >= log_.newest(r.account)) return Verdict::kFresh;
  if (version < log_.version_at(r.account, r.start_ns - window_ns_)) return Verdict::kStale;
  return version < log_.version_at(r.account, r.start_ns) ? Verdict::kLate : Verdict::kFresh;
}

void WriteLedger::note_sighting(int account, std::uint64_t version) {
  std::atomic<std::uint64_t>& seen = slots_[account].seen;
  std::uint64_t before = seen.load(std::memory_order_relaxed);
  do {
    if (version <= before) return;  // seen here already
  } while (!seen.compare_exchange_weak(before, version, std::memory_order_relaxed));
  // This thread moved it from `before`: the saves in between are its to report.
  const std::vector<std::int64_t> lags = log_.saw(account, before, version, CommitLog::now_ns());
  detail::MutexLock lock(sightings_mu_);
  for (const std::int64_t ns : lags) sightings_.record(std::chrono::nanoseconds(ns));
}

LatencyHistogram WriteLedger::sightings() const {
  detail::MutexLock lock(sightings_mu_);
  return sightings_;
}

std::uint64_t WriteLedger::version_of(const std::string& api_secret) noexcept {
  const std::size_t v = api_secret.rfind("-v");
  if (v == std::string::npos) return 0;
  std::uint64_t version = 0;
  std::from_chars(api_secret.data() + v + 2, api_secret.data() + api_secret.size(), version);
  return version;
}

WidgetRenderer::WidgetRenderer(Mode mode, Pool* pool, const ConnectionUrl& url,
                               WidgetCaches* caches, WriteLedger* ledger,
                               std::shared_ptr<spdlog::logger> notices)
    : mode_(mode), pool_(pool), caches_(caches), ledger_(ledger) {
  if (mode == Mode::kNaive) {
    settings_ = std::make_unique<NaiveSettings>(url, *this, std::move(notices));
  } else {
    if (pool == nullptr) throw std::invalid_argument("WidgetRenderer: pool mode needs a pool");
    if (mode == Mode::kCached && caches == nullptr) {
      throw std::invalid_argument("WidgetRenderer: cached mode needs the caches");
    }
    settings_ = std::make_unique<PooledSettings>(*this);
  }
}

void WidgetRenderer::check(const Account& account, const WriteLedger::Read& read) {
  switch (ledger_->finish_read(read, WriteLedger::version_of(account.api_secret()))) {
    case WriteLedger::Verdict::kStale:
      ++stale_reads_;
      break;
    case WriteLedger::Verdict::kLate:
      ++late_reads_;
      break;
    case WriteLedger::Verdict::kFresh:
      break;
  }
}

WidgetRenderer::~WidgetRenderer() = default;

void WidgetRenderer::render(const std::vector<Transaction>& rows) {
  if (mode_ != Mode::kReuse) {
    build_accounts(rows);
    return;
  }
  const auto start = Clock::now();
  // Held for the render, and not moved: a moved lease stops sharing, and the
  // reads' own acquire() calls must share this one.
  const Lease render_lease = pool_->acquire();
  latency_.record(Clock::now() - start);
  build_accounts(rows);
}

void WidgetRenderer::build_accounts(const std::vector<Transaction>& rows) {
  for (const Transaction& row : rows) {
    // The saves committed before this read began: the read must see them.
    const WriteLedger::Read read =
        ledger_ != nullptr ? ledger_->begin_read(row.account_id) : WriteLedger::Read{};
    std::shared_ptr<const Account> cached;
    std::optional<Account> built;
    if (mode_ == Mode::kCached) {
      cached = caches_->accounts.get(row.account_id);
    } else {
      built.emplace(row.account_id, *settings_);
    }
    const Account& account = cached != nullptr ? *cached : *built;
    if (ledger_ != nullptr) check(account, read);
  }
}

}  // namespace poolscope::load
