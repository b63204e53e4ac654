#include "poolscope/cache/settings_cache.h"

#include <soci/soci.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>

namespace poolscope::cache {
namespace {

[[noreturn]] void invalid(std::string_view field, std::string_view rule, const std::string& got) {
  throw std::invalid_argument("SettingsCacheConfig." + std::string(field) + " " + std::string(rule) +
                              " (got '" + got + "')");
}

// A table or column name safe to put into SQL: letters, digits, '_', and at
// most one '.' (schema.table); not starting with a digit.
bool is_identifier(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  std::size_t dots = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c == '.') {
      if (++dots > 1 || i == 0 || i + 1 == name.size()) return false;
    } else if (!std::isalnum(c) && c != '_') {
      return false;
    } else if (std::isdigit(c) && (i == 0 || name[i - 1] == '.')) {
      return false;
    }
  }
  return true;
}

template <class T>
bool parse_number(std::string_view text, T* out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && !text.empty();
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
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view yes : {"true", "1", "yes", "on"}) {
    if (lower == yes) return *out = true, true;
  }
  for (std::string_view no : {"false", "0", "no", "off"}) {
    if (lower == no) return *out = false, true;
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
    throw SettingNotFound(table_ + ": " + entity_column_ + " " + std::to_string(entity_) +
                          " has no setting '" + std::string(key) + "'");
  }
  return it->second;
}

void Settings::type_error(std::string_view key, std::string_view type) const {
  throw SettingTypeError(table_ + ": setting '" + std::string(key) + "' of " + entity_column_ + " " +
                         std::to_string(entity_) + " is '" + raw(key) + "', not a " +
                         std::string(type));
}

void SettingsCacheConfig::validate() const {
  TtlCacheConfig check = cache_config(*this);
  try {
    check.validate();
  } catch (const std::invalid_argument& e) {
    // Report it under this config's own name.
    std::string message = e.what();
    message.replace(0, std::string("TtlCacheConfig").size(), "SettingsCacheConfig");
    throw std::invalid_argument(message);
  }
  const std::pair<std::string_view, const std::string*> names[] = {
      {"table.table", &table.table},
      {"table.entity_column", &table.entity_column},
      {"table.key_column", &table.key_column},
      {"table.value_column", &table.value_column}};
  for (const auto& [field, value] : names) {
    if (!is_identifier(*value)) {
      invalid(field, "must be an SQL name (letters, digits, '_', one optional '.')", *value);
    }
  }
}

SettingsCache::SettingsCache(Pool& pool, SettingsCacheConfig config)
    : pool_(pool),
      config_(validated(std::move(config))),
      select_sql_("SELECT " + config_.table.key_column + ", " + config_.table.value_column + " FROM " +
                  config_.table.table + " WHERE " + config_.table.entity_column + " = :entity"),
      upsert_sql_("INSERT INTO " + config_.table.table + " (" + config_.table.entity_column + ", " +
                  config_.table.key_column + ", " + config_.table.value_column +
                  ") VALUES (:entity, :k, :v) ON CONFLICT (" + config_.table.entity_column + ", " +
                  config_.table.key_column + ") DO UPDATE SET " + config_.table.value_column +
                  " = excluded." + config_.table.value_column),
      cache_(cache_config(config_)) {}

std::shared_ptr<const Settings> SettingsCache::settings(std::int64_t entity, std::source_location site) {
  return cache_.get_or_load(entity, [&](const std::int64_t& id) { return load(id, site); });
}

std::shared_ptr<const Settings> SettingsCache::load(std::int64_t entity, const std::source_location& site) {
  Settings::Map values;
  {
    Lease sql = pool_.acquire(site);
    long long id = entity;
    soci::rowset<soci::row> rows = (sql->prepare << select_sql_, soci::use(id, "entity"));
    for (const soci::row& row : rows) {
      values.emplace(row.get<std::string>(0), row.get<std::string>(1));
    }
  }
  return std::make_shared<const Settings>(config_.table.table, config_.table.entity_column, entity,
                                          std::move(values));
}

void SettingsCache::save(std::int64_t entity, std::string_view key, std::string_view value,
                         std::source_location site) {
  save(entity, std::map<std::string, std::string>{{std::string(key), std::string(value)}}, site);
}

void SettingsCache::save(std::int64_t entity, const std::map<std::string, std::string>& values,
                         std::source_location site) {
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
