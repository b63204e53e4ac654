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
// (INSERT ... ON CONFLICT, on SQLite and PostgreSQL alike).
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

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

struct SettingsTable {
  std::string table = "settings";
  std::string entity_column = "entity_id";  // an integer column
  std::string key_column = "setting_key";
  std::string value_column = "setting_value";  // text
};

struct SettingsCacheConfig {
  std::string name = "settings";
  SettingsTable table;
  std::chrono::milliseconds ttl{5 * 60'000};  // zero: until saved or invalidated
  std::size_t max_entities = 10'000;
  std::shared_ptr<CacheClock> clock;  // null: default_clock()

  // Throws std::invalid_argument naming the field: the name, the TTL, and
  // table and column names (letters, digits, '_', one optional '.').
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

// The settings of one entity as loaded: an immutable value.
class Settings {
 public:
  using Map = std::unordered_map<std::string, std::string, CacheHash<std::string>, std::equal_to<>>;

  Settings(std::string table, std::string entity_column, std::int64_t entity, Map values)
      : table_(std::move(table)), entity_column_(std::move(entity_column)), entity_(entity),
        values_(std::move(values)) {}

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

  std::string table_;
  std::string entity_column_;
  std::int64_t entity_;
  Map values_;
};

class SettingsCache {
 public:
  // REQUIRES: pool outlives the cache. Throws std::invalid_argument for a bad config.
  SettingsCache(Pool& pool, SettingsCacheConfig config = {});

  // All settings of entity: from the cache, or one query through the pool
  // (concurrent misses share it). site is recorded on the lease.
  std::shared_ptr<const Settings> settings(std::int64_t entity,
                                           std::source_location site = std::source_location::current());

  // One setting as T (see Settings::get). Throws SettingNotFound, SettingTypeError.
  template <SettingValue T>
  T get(std::int64_t entity, std::string_view key,
        std::source_location site = std::source_location::current()) {
    return settings(entity, site)->template get<T>(key);
  }

  template <SettingValue T>
  std::optional<T> find(std::int64_t entity, std::string_view key,
                        std::source_location site = std::source_location::current()) {
    return settings(entity, site)->template find<T>(key);
  }

  // Writes the settings in one transaction, commits, then invalidates the
  // entity, so the next read (on any thread) sees them. Writes on a
  // connection of its own (Pool::acquire_new), committed before this returns
  // even when the calling thread holds a lease; the caller's transaction is
  // not joined. Throws what the database throws; on failure nothing is saved
  // and the cache is unchanged.
  void save(std::int64_t entity, std::string_view key, std::string_view value,
            std::source_location site = std::source_location::current());
  void save(std::int64_t entity, const std::map<std::string, std::string>& values,
            std::source_location site = std::source_location::current());

  // Drops the cached settings of entity / of every entity.
  bool invalidate(std::int64_t entity) { return cache_.erase(entity); }
  void clear() { cache_.clear(); }

  CacheStats stats() const { return cache_.stats(); }
  const std::string& name() const noexcept { return cache_.name(); }
  const SettingsCacheConfig& config() const noexcept { return config_; }
  const Pool& pool() const noexcept { return pool_; }

  // The underlying cache, for invalidation wiring.
  TtlCache<std::int64_t, std::shared_ptr<const Settings>>& cache() noexcept { return cache_; }

 private:
  std::shared_ptr<const Settings> load(std::int64_t entity, const std::source_location& site);

  // Constant after construction.
  Pool& pool_;
  const SettingsCacheConfig config_;
  const std::string select_sql_;
  const std::string upsert_sql_;
  TtlCache<std::int64_t, std::shared_ptr<const Settings>> cache_;
};

}  // namespace poolscope::cache
