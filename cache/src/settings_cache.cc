#include "poolscope/cache/settings_cache.h"

#include <soci/soci.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <vector>

#include "poolscope/base/config_check.h"

namespace poolscope::cache {
namespace {

constexpr std::string_view kConfig = "SettingsCacheConfig";

bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

// A column name (or a part of a table name) that is safe between double
// quotes: ASCII letters, digits and '_', not starting with a digit. ASCII
// by rule, not by locale, so the SQL does not depend on the environment.
bool is_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || is_ascii_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_ascii_alpha(c) || is_ascii_digit(c) || c == '_'; });
}

// A table name: a name, or schema.name.
bool is_table_name(std::string_view name) {
  const std::size_t dot = name.find('.');
  if (dot == std::string_view::npos) return is_name(name);
  return is_name(name.substr(0, dot)) && is_name(name.substr(dot + 1));
}

// name double-quoted for SQL (schema.table as "schema"."table"), so that
// reserved words work as names. Valid names hold no quote to escape.
std::string quoted(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '.') {
      out += "\".\"";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

template <class T>
bool parse_number(std::string_view text, T* out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && !text.empty();
}

// text equals lower, ignoring ASCII case. REQUIRES: lower is lower case.
bool equals_ascii_lower(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != lower[i]) return false;
  }
  return true;
}

SettingsCacheConfig validated(SettingsCacheConfig config) {
  config.validate();
  return config;
}

TtlCacheConfig cache_config(const SettingsCacheConfig& c) {
  TtlCacheConfig out;
  out.name = c.name;
  out.ttl = c.ttl;
  out.max_entries = c.max_entities;
  out.clock = c.clock;
  return out;
}

}  // namespace

bool parse_setting(std::string_view text, std::string* out) {
  out->assign(text);
  return true;
}

bool parse_setting(std::string_view text, std::string_view* out) {
  *out = text;
  return true;
}

bool parse_setting(std::string_view text, bool* out) {
  for (std::string_view yes : {"true", "1", "yes", "on"}) {
    if (equals_ascii_lower(text, yes)) return *out = true, true;
  }
  for (std::string_view no : {"false", "0", "no", "off"}) {
    if (equals_ascii_lower(text, no)) return *out = false, true;
  }
  return false;
}

bool parse_setting(std::string_view text, int* out) { return parse_number(text, out); }
bool parse_setting(std::string_view text, long* out) { return parse_number(text, out); }
bool parse_setting(std::string_view text, long long* out) { return parse_number(text, out); }
bool parse_setting(std::string_view text, double* out) { return parse_number(text, out); }

const std::string& Settings::raw(std::string_view key) const {
  const auto it = values_.find(key);
  if (it == values_.end()) {
    throw SettingNotFound(table_->table + ": " + table_->entity_column + " " +
                          std::to_string(entity_) + " has no setting '" + std::string(key) + "'");
  }
  return it->second;
}

void Settings::type_error(std::string_view key, std::string_view type) const {
  throw SettingTypeError(table_->table + ": setting '" + std::string(key) + "' of " +
                         table_->entity_column + " " + std::to_string(entity_) + " is '" +
                         raw(key) + "', not a " + std::string(type));
}

void SettingsCacheConfig::validate() const {
  poolscope::detail::check_label_name(kConfig, "name", name);
  poolscope::detail::check_not_negative(kConfig, "ttl", ttl);
  poolscope::detail::check_at_least(kConfig, "max_entities", max_entities, 1);
  if (!is_table_name(table.table)) {
    poolscope::detail::invalid_field(
        kConfig, "table.table",
        "must be an SQL name, optionally schema.name (ASCII letters, digits, '_'; "
        "not starting with a digit)",
        "'" + table.table + "'");
  }
  const std::pair<std::string_view, const std::string*> columns[] = {
      {"table.entity_column", &table.entity_column},
      {"table.key_column", &table.key_column},
      {"table.value_column", &table.value_column}};
  for (const auto& [field, value] : columns) {
    if (!is_name(*value)) {
      poolscope::detail::invalid_field(
          kConfig, field,
          "must be an SQL name (ASCII letters, digits, '_'; not starting with a digit)",
          "'" + *value + "'");
    }
  }
}

SettingsCache::SettingsCache(Pool& pool, SettingsCacheConfig config)
    : pool_(pool),
      config_(validated(std::move(config))),
      table_(std::make_shared<const SettingsTable>(config_.table)),
      select_sql_("SELECT " + quoted(table_->key_column) + ", " + quoted(table_->value_column) +
                  " FROM " + quoted(table_->table) + " WHERE " + quoted(table_->entity_column) +
                  " = :entity"),
      upsert_sql_("INSERT INTO " + quoted(table_->table) + " (" + quoted(table_->entity_column) +
                  ", " + quoted(table_->key_column) + ", " + quoted(table_->value_column) +
                  ") VALUES (:entity, :k, :v) ON CONFLICT (" + quoted(table_->entity_column) +
                  ", " + quoted(table_->key_column) + ") DO UPDATE SET " +
                  quoted(table_->value_column) + " = excluded." + quoted(table_->value_column)),
      cache_(cache_config(config_)),
      tier_link_(config_.shared_tier != nullptr ? config_.shared_tier->link(*this) : nullptr) {}

std::shared_ptr<const Settings> SettingsCache::settings(std::int64_t entity,
                                                        poolscope::source_location site) {
  return cache_.get_or_load(entity, loader(site));
}

std::shared_ptr<const Settings> SettingsCache::load(std::int64_t entity,
                                                    const poolscope::source_location& site) {
  if (tier_link_ == nullptr) return load_from_database(entity, site);
  return tier_link_->load(entity, [&](std::int64_t e) { return load_from_database(e, site); });
}

std::shared_ptr<const Settings> SettingsCache::load_from_database(
    std::int64_t entity, const poolscope::source_location& site) {
  const auto read = [this, entity](soci::session& sql) {
    // A one-time query into vectors: SOCI sends it unnamed, where a rowset
    // is a prepared statement named "st_<n>", which a transaction-pooling
    // PgBouncer may route to another server session ("does not exist",
    // "already exists"). A result that fills the vectors may have more
    // rows: read again with room for twice as many.
    long long id = entity;
    for (std::size_t room = 256;; room *= 2) {
      std::vector<std::string> keys(room), texts(room);
      sql << select_sql_, soci::use(id, "entity"), soci::into(keys), soci::into(texts);
      if (keys.size() == room) continue;
      Settings::Map values;
      for (std::size_t i = 0; i < keys.size(); ++i) values.emplace(keys[i], texts[i]);
      return values;
    }
  };
  Settings::Map values;
  {
    // The pool cannot be asked whether this thread holds a lease, but
    // acquire() tells: a reused lease is the caller's own connection,
    // perhaps inside a transaction with uncommitted writes, which must not
    // reach the cache. Then read on a connection of our own. (No lease is
    // moved: moving one would end its sharing with the caller's.)
    Lease sql = pool_.acquire(site);
    if (!sql.reused()) {
      values = read(*sql);
    } else {
      sql.release();
      Lease own = pool_.acquire_new(site);
      values = read(*own);
    }
  }
  return std::make_shared<const Settings>(table_, entity, std::move(values));
}

void SettingsCache::save(std::int64_t entity, std::string_view key, std::string_view value,
                         poolscope::source_location site) {
  save(entity, std::map<std::string, std::string>{{std::string(key), std::string(value)}}, site);
}

void SettingsCache::save(std::int64_t entity, const std::map<std::string, std::string>& values,
                         poolscope::source_location site) {
  if (values.empty()) return;
  {
    Lease sql = pool_.acquire_new(site);
    soci::transaction tx(*sql);
    long long id = entity;
    for (const auto& [key, value] : values) {
      *sql << upsert_sql_, soci::use(id, "entity"), soci::use(key, "k"), soci::use(value, "v");
    }
    tx.commit();
  }
  // After the commit: a load that began before it is marked stale by this,
  // and every load after it reads the new values.
  cache_.erase(entity);
}

}  // namespace poolscope::cache
