// SettingsCache: every setting of one entity (an account, an expert, ...)
// read in one query through a Pool and cached, with typed reads and
// write-through saves (the fix of ../shared/incidents/000, done once).
//
//   SettingsCache settings(pool, {.name = "account_settings",
//                                 .table = {"account_settings", "account_id",
//                                           "setting_key", "setting_value"}});
//   bool paper = settings.get<bool>(account_id, "paper_account");
//   settings.save(account_id, "api_key", new_key);   // the next read sees it
//
// Which table and columns hold the settings is configuration; the table
// needs a unique key on (entity, key), which save() relies on for its upsert
// (INSERT ... ON CONFLICT, on SQLite and PostgreSQL alike). The names go
// into the SQL double-quoted, so reserved words work; on PostgreSQL that
// also makes them case-sensitive (write them as the table has them, which
// is lower case unless it was created with quoted names).
//
// The cache holds committed data only: a load never runs on a connection
// the calling thread holds (it may be inside a transaction that has written
// but not committed). Inside such a transaction, read your own writes from
// your session, not from the cache.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "poolscope/base/source_location.h"
#include "poolscope/cache/ttl_cache.h"
#include "poolscope/pool/errors.h"
#include "poolscope/pool/pool.h"

namespace poolscope::cache {

// A setting the entity does not have.
class SettingNotFound : public Error {
 public:
  using Error::Error;
};

// A setting whose text is not a value of the requested type.
class SettingTypeError : public Error {
 public:
  using Error::Error;
};

// Where the settings are. Names are ASCII letters, digits and '_', not
// starting with a digit; the table may be qualified by a schema (app.settings).
struct SettingsTable {
  std::string table = "settings";
  std::string entity_column = "entity_id";  // an integer column
  std::string key_column = "setting_key";
  std::string value_column = "setting_value";  // text
};

class Settings;
class SettingsCache;

// A shared second level under SettingsCaches of many processes, set as
// SettingsCacheConfig::shared_tier (poolscope::cache::RedisTier, from
// poolscope::cache_redis, is one). Implementations are thread-safe.
class SettingsTier {
 public:
  // What a SettingsCache holds while it lives; destroyed before its entries.
  class Link {
   public:
    virtual ~Link() = default;
    // The settings of entity: from the shared level, else database(entity)'s.
    // Throws what database throws.
    virtual std::shared_ptr<const Settings> load(
        std::int64_t entity,
        const std::function<std::shared_ptr<const Settings>(std::int64_t)>& database) = 0;
  };

  virtual ~SettingsTier() = default;
  // Called once by the SettingsCache constructor, once cache() exists. From
  // then on the link also carries the cache's invalidations (save,
  // invalidate, clear) to every process, and theirs back. Throws
  // std::invalid_argument when this cache cannot use the tier.
  virtual std::unique_ptr<Link> link(SettingsCache& cache) = 0;
};

struct SettingsCacheConfig {
  // Label in stats and metrics: 1 to 64 of A-Z a-z 0-9 _ . : -.
  std::string name = "settings";
  SettingsTable table{};
  std::chrono::milliseconds ttl{5 * 60'000};  // zero: until saved or invalidated
  std::size_t max_entities = 10'000;          // at least 1
  std::shared_ptr<CacheClock> clock{};        // null: default_clock()
  // Many processes: a shared second level, e.g. a RedisTier. A load looks
  // there before the database, and a save reaches every process's cache.
  // Null: this process only.
  std::shared_ptr<SettingsTier> shared_tier{};

  // Throws std::invalid_argument naming the first invalid field (as
  // "SettingsCacheConfig.<field>") and its value.
  void validate() const;
};

// Text to value for typed reads: std::string, std::string_view, bool (true
// false 1 0 yes no on off, any case), int, long, long long, double.
// Returns false when text is not a whole value of that type.
bool parse_setting(std::string_view text, std::string* out);
bool parse_setting(std::string_view text, std::string_view* out);
bool parse_setting(std::string_view text, bool* out);
bool parse_setting(std::string_view text, int* out);
bool parse_setting(std::string_view text, long* out);
bool parse_setting(std::string_view text, long long* out);
bool parse_setting(std::string_view text, double* out);

template <class T>
concept SettingValue = requires(std::string_view text, T* out) {
  { parse_setting(text, out) } -> std::same_as<bool>;
};

// A SettingValue that owns what it holds, so it may outlive the cached
// Settings it was read from (std::string_view may not).
template <class T>
concept OwningSettingValue =
    SettingValue<T> && !std::same_as<std::remove_cv_t<T>, std::string_view>;

// The settings of one entity as loaded: an immutable value.
class Settings {
 public:
  using Map = std::unordered_map<std::string, std::string, CacheHash<std::string>, std::equal_to<>>;

  // What parse() found.
  enum class Parse { kOk, kMissing, kBadValue };

  // table says where the settings came from, for error messages; every
  // Settings of one cache shares it. REQUIRES: table is not null.
  Settings(std::shared_ptr<const SettingsTable> table, std::int64_t entity, Map values)
      : table_(std::move(table)), entity_(entity), values_(std::move(values)) {}

  const SettingsTable& table() const noexcept { return *table_; }
  std::int64_t entity() const noexcept { return entity_; }
  const Map& values() const noexcept { return values_; }
  bool contains(std::string_view key) const { return values_.find(key) != values_.end(); }

  // The setting as T. Throws SettingNotFound or SettingTypeError, naming the
  // table, the entity and the key. A std::string_view lives as long as this.
  template <SettingValue T>
  T get(std::string_view key) const {
    T value{};
    if (!parse_setting(raw(key), &value)) type_error(key, type_name(&value));
    return value;
  }

  // As get(), but nullopt for a missing key (a bad conversion still throws).
  template <SettingValue T>
  std::optional<T> find(std::string_view key) const {
    if (!contains(key)) return std::nullopt;
    return get<T>(key);
  }

  // As get(), but says what went wrong instead of throwing it (a
  // std::string may still throw std::bad_alloc). *out is set for kOk only.
  template <SettingValue T>
  Parse parse(std::string_view key, T* out) const {
    const auto it = values_.find(key);
    if (it == values_.end()) return Parse::kMissing;
    return parse_setting(it->second, out) ? Parse::kOk : Parse::kBadValue;
  }

 private:
  const std::string& raw(std::string_view key) const;
  [[noreturn]] void type_error(std::string_view key, std::string_view type) const;
  static std::string_view type_name(const std::string*) { return "string"; }
  static std::string_view type_name(const std::string_view*) { return "string"; }
  static std::string_view type_name(const bool*) { return "bool"; }
  static std::string_view type_name(const int*) { return "int"; }
  static std::string_view type_name(const long*) { return "long"; }
  static std::string_view type_name(const long long*) { return "long long"; }
  static std::string_view type_name(const double*) { return "double"; }

  std::shared_ptr<const SettingsTable> table_;
  std::int64_t entity_;
  Map values_;
};

class SettingsCache {
  // Declared first: the templates below call it, and a deduced return type
  // must be seen before its use.
  auto loader(const poolscope::source_location& site) {
    return [this, &site](const std::int64_t& entity) { return load(entity, site); };
  }

 public:
  // REQUIRES: pool outlives the cache. Throws std::invalid_argument for a bad config.
  SettingsCache(Pool& pool, SettingsCacheConfig config = {});

  // All settings of entity: from the cache, or one query through the pool
  // (concurrent misses share it). site is recorded on the lease.
  //
  // The query runs on a connection the thread does not hold: if the thread
  // holds a lease on the pool, on one of its own (Pool::acquire_new), so an
  // uncommitted write of the caller's is never cached. That takes a second
  // connection; if every connection is held by threads doing the same, each
  // waits checkout_timeout and gets PoolTimeout (size the pool for two per
  // such thread). Throws what the pool and the database throw.
  std::shared_ptr<const Settings> settings(
      std::int64_t entity, poolscope::source_location site = poolscope::source_location::current());

  // One setting as T (see Settings::get), read in place in the cache. Loads
  // as settings() does. Throws SettingNotFound, SettingTypeError. Not for
  // std::string_view, which would outlive the cached settings: use
  // settings(entity)->get<std::string_view>(key) and keep the shared_ptr.
  template <OwningSettingValue T>
  T get(std::int64_t entity, std::string_view key,
        poolscope::source_location site = poolscope::source_location::current()) {
    T value{};
    std::shared_ptr<const Settings>
        failed;  // set only when the read fails: thrown outside the lock
    cache_.visit_or_load(entity, loader(site), [&](const std::shared_ptr<const Settings>& s) {
      if (s->parse(key, &value) != Settings::Parse::kOk) failed = s;
    });
    if (failed != nullptr) return failed->template get<T>(key);  // throws the precise error
    return value;
  }

  // As get(), but nullopt when the entity has no such setting.
  template <OwningSettingValue T>
  std::optional<T> find(std::int64_t entity, std::string_view key,
                        poolscope::source_location site = poolscope::source_location::current()) {
    std::optional<T> value;
    std::shared_ptr<const Settings> failed;
    cache_.visit_or_load(entity, loader(site), [&](const std::shared_ptr<const Settings>& s) {
      T parsed{};
      switch (s->parse(key, &parsed)) {
        case Settings::Parse::kOk:
          value.emplace(std::move(parsed));
          break;
        case Settings::Parse::kMissing:
          break;
        case Settings::Parse::kBadValue:
          failed = s;
          break;
      }
    });
    if (failed != nullptr) return failed->template find<T>(key);  // throws SettingTypeError
    return value;
  }

  // Writes the settings in one transaction, commits, then invalidates the
  // entity, so the next read (on any thread) sees them, and so do objects
  // built from them (an InstanceCache's instances are evicted). Writes on a
  // connection of its own (Pool::acquire_new), committed before this returns
  // even when the calling thread holds a lease; the caller's transaction is
  // not joined. Throws what the database throws; on failure nothing is saved
  // and the cache is unchanged.
  void save(std::int64_t entity, std::string_view key, std::string_view value,
            poolscope::source_location site = poolscope::source_location::current());
  void save(std::int64_t entity, const std::map<std::string, std::string>& values,
            poolscope::source_location site = poolscope::source_location::current());

  // Drops the cached settings of entity / of every entity, and what was
  // built from them.
  bool invalidate(std::int64_t entity) { return cache_.erase(entity); }
  void clear() { cache_.clear(); }

  CacheStats stats() const { return cache_.stats(); }
  const std::string& name() const noexcept { return cache_.name(); }
  const SettingsCacheConfig& config() const noexcept { return config_; }
  const Pool& pool() const noexcept { return pool_; }

  // See TtlCache::watch(). (Only tier_link_ comes after cache_, and goes
  // first: while cache_ lives, so does everything stats() reads.)
  poolscope::detail::Lifeline::Watch watch() const { return cache_.watch(); }

  // The underlying cache: add_invalidation_listener() for an invalidation
  // bus, apply() for what it brings from other processes.
  TtlCache<std::int64_t, std::shared_ptr<const Settings>>& cache() noexcept { return cache_; }

 private:
  std::shared_ptr<const Settings> load(std::int64_t entity, const poolscope::source_location& site);
  std::shared_ptr<const Settings> load_from_database(std::int64_t entity,
                                                     const poolscope::source_location& site);

  // Constant after construction.
  Pool& pool_;
  const SettingsCacheConfig config_;
  const std::shared_ptr<const SettingsTable> table_;  // config_.table, shared by every Settings
  const std::string select_sql_;
  const std::string upsert_sql_;
  TtlCache<std::int64_t, std::shared_ptr<const Settings>> cache_;
  // Last: made once cache_ exists, and gone before it.
  const std::unique_ptr<SettingsTier::Link> tier_link_;
};

}  // namespace poolscope::cache
