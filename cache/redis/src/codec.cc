// The settings codec. Strict: a decode either consumes every byte of a
// well-formed encoding or fails, so a truncated or foreign value is a miss.

#include "poolscope/cache/redis/codec.h"

#include <algorithm>
#include <charconv>
#include <vector>

namespace poolscope::cache {
namespace {

// Reads "<digits><terminator>" at *pos; false if absent or too large.
bool read_length(std::string_view bytes, std::size_t* pos, char terminator, std::size_t* out) {
  const char* begin = bytes.data() + *pos;
  const char* end = bytes.data() + bytes.size();
  const auto [ptr, ec] = std::from_chars(begin, end, *out);
  if (ec != std::errc() || ptr == begin || ptr == end || *ptr != terminator) return false;
  *pos = static_cast<std::size_t>(ptr - bytes.data()) + 1;
  return true;
}

// Reads "<length>:<bytes>" at *pos.
bool read_string(std::string_view bytes, std::size_t* pos, std::string* out) {
  std::size_t length = 0;
  if (!read_length(bytes, pos, ':', &length) || length > bytes.size() - *pos) return false;
  out->assign(bytes.substr(*pos, length));
  *pos += length;
  return true;
}

void append_string(std::string* out, std::string_view s) {
  *out += std::to_string(s.size());
  *out += ':';
  *out += s;
}

}  // namespace

std::string encode_settings(const Settings& settings) {
  std::vector<const Settings::Map::value_type*> entries;
  entries.reserve(settings.values().size());
  for (const auto& entry : settings.values()) entries.push_back(&entry);
  std::sort(entries.begin(), entries.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  std::string out = std::to_string(entries.size()) + "\n";
  for (const auto* entry : entries) {
    append_string(&out, entry->first);
    append_string(&out, entry->second);
  }
  return out;
}

std::shared_ptr<const Settings> decode_settings(std::shared_ptr<const SettingsTable> table,
                                                std::int64_t entity, std::string_view bytes) {
  std::size_t pos = 0;
  std::size_t count = 0;
  // Each setting takes at least 4 bytes ("0:0:"): a count beyond that is a lie.
  if (!read_length(bytes, &pos, '\n', &count) || count > bytes.size() / 4) return nullptr;
  Settings::Map values;
  values.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::string key;
    std::string value;
    if (!read_string(bytes, &pos, &key) || !read_string(bytes, &pos, &value)) return nullptr;
    if (!values.emplace(std::move(key), std::move(value)).second) return nullptr;  // duplicate
  }
  if (pos != bytes.size()) return nullptr;
  return std::make_shared<const Settings>(std::move(table), entity, std::move(values));
}

}  // namespace poolscope::cache
