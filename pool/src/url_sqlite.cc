// SQLite URLs: SOCI's form (sqlite3://db=app.db timeout=5) and the URI forms
// (sqlite:///abs/app.db?timeout=5, sqlite://relative.db, sqlite://:memory:).
//
// SOCI's SQLite backend splits its connect string on single spaces and
// takes a value in double quotes when it holds a space; it has no escapes,
// and it makes a database read-only when "readonly" appears with any value.
// So the connect string is rebuilt here from the parse, every value checked
// to be one SOCI reads back unchanged, and nothing a user wrote can run into
// an appended timeout=. SQLite URLs hold no secret. Pure functions: safe from
// any thread.

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <initializer_list>
#include <stdexcept>

#include "url_internal.h"

namespace poolscope::detail {
namespace {

// The options SOCI 4.0's SQLite backend reads (db and dbname alike).
const std::vector<std::string>& known_keys() {
  static const std::vector<std::string> keys = {"db",           "timeout",  "synchronous",
                                                "shared_cache", "readonly", "vfs"};
  return keys;
}

constexpr std::string_view kKnownText =
    "known: db, timeout, synchronous, shared_cache, readonly, vfs";

// Whether SOCI reads `value` back unchanged from quoted() below: it cannot
// take a space together with a '"', nor a leading space.
bool soci_can_hold(std::string_view value) {
  if (std::any_of(value.begin(), value.end(), [](char c) { return is_control(c); })) return false;
  if (value.starts_with(' ')) return false;
  return value.find(' ') == std::string_view::npos || value.find('"') == std::string_view::npos;
}

// A value as SOCI's parser reads it: quoted when it holds a space, starts
// with a quote or is empty (SOCI strips the first and last character of a
// quoted word, so "\"x" round-trips as "\"\"x\"").
std::string quoted(std::string_view value) {
  const bool quote =
      value.empty() || value.find(' ') != std::string_view::npos || value.starts_with('"');
  std::string out;  // appended, not "\"" + ...: GCC 12's -Wrestrict misfires on that at -O3
  out.reserve(value.size() + 2);
  if (quote) out += '"';
  out += value;
  if (quote) out += '"';
  return out;
}

std::string pairs_text(const UrlParams& params, bool for_soci) {
  std::string out;
  for (const auto& [key, value] : params) {
    // SOCI turns these on whatever their value: leave them out when false.
    if (for_soci && (key == "readonly" || key == "shared_cache") && value != "true") continue;
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    out += quoted(value);
  }
  return out;
}

// Checks and normalises the value of a known key; position is for messages.
std::string checked_value(const std::string& key, std::string value, std::size_t position) {
  auto one_of = [&](std::initializer_list<std::string_view> allowed) {
    const std::string lower = lowercase(value);
    for (std::string_view a : allowed) {
      if (lower == a) return true;
    }
    return false;
  };
  if (key == "timeout") {
    unsigned seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    // SOCI multiplies by 1000 into an int.
    if (value.empty() || ec != std::errc() || end != value.data() + value.size() ||
        seconds > 2147483) {
      url_problem("the value of 'timeout' is not a whole number of seconds from 0 to 2147483",
                  position);
    }
  } else if (key == "synchronous") {
    // Goes into "pragma synchronous=<value>": only SQLite's own values.
    if (!one_of({"off", "normal", "full", "extra", "0", "1", "2", "3"})) {
      url_problem("the value of 'synchronous' is not one of off, normal, full, extra, 0-3",
                  position);
    }
    value = lowercase(value);
  } else if (key == "readonly" || key == "shared_cache") {
    if (one_of({"true", "1", "yes", "on"})) {
      value = "true";
    } else if (one_of({"false", "0", "no", "off"})) {
      value = "false";
    } else {
      url_problem("the value of '" + key + "' is not true or false", position);
    }
  } else if (key == "vfs" && (value.empty() || value.find_first_of(" \"") != std::string::npos)) {
    url_problem("the value of 'vfs' is not a VFS name", position);
  }
  if (!soci_can_hold(value)) {
    url_problem("the value of '" + key + "' cannot be passed to SOCI", position,
                "a control character, a leading space, or a space together with '\"'");
  }
  return value;
}

void set(UrlParams* params, const std::string& key, std::string value) {
  for (auto& p : *params) {
    if (p.first == key) {
      p.second = std::move(value);
      return;
    }
  }
  if (key == "db") {
    params->emplace(params->begin(), key, std::move(value));
  } else {
    params->emplace_back(key, std::move(value));
  }
}

bool looks_like_pairs(std::string_view body) {
  std::size_t i = 0;
  while (i < body.size() && is_space(body[i])) ++i;
  const std::size_t start = i;
  while (i < body.size() && (std::isalnum(static_cast<unsigned char>(body[i])) || body[i] == '_')) {
    ++i;
  }
  while (i < body.size() && is_space(body[i])) ++i;
  return i > start && i < body.size() && body[i] == '=';
}

// SOCI's form: key=value pairs separated by whitespace, a value in double
// quotes when it holds spaces.
UrlParams parse_pairs(std::string_view body, std::size_t offset) {
  UrlParams params;
  std::size_t i = 0;
  auto skip_spaces = [&] {
    while (i < body.size() && is_space(body[i])) ++i;
  };
  for (skip_spaces(); i < body.size(); skip_spaces()) {
    const std::size_t key_begin = i;
    while (i < body.size() && body[i] != '=' && !is_space(body[i])) ++i;
    std::string key(body.substr(key_begin, i - key_begin));
    skip_spaces();
    if (i >= body.size() || body[i] != '=') {
      url_problem("no '=' after a key", offset + key_begin + 1,
                  "SOCI's form is key=value pairs separated by spaces");
    }
    if (key.empty()) url_problem("a '=' with no key before it", offset + i + 1);
    ++i;
    skip_spaces();
    const std::size_t value_begin = i;
    std::string value;
    if (i < body.size() && body[i] == '"') {
      const std::size_t close = body.find('"', i + 1);
      if (close == std::string_view::npos) {
        url_problem("a quoted value has no closing '\"'", offset + i + 1);
      }
      value = std::string(body.substr(i + 1, close - i - 1));
      i = close + 1;
      if (i < body.size() && !is_space(body[i])) {
        url_problem("text right after a closing '\"'", offset + i + 1, "add a space");
      }
    } else {
      while (i < body.size() && !is_space(body[i])) value += body[i++];
    }
    if (key == "dbname") key = "db";
    if (std::find(known_keys().begin(), known_keys().end(), key) == known_keys().end()) {
      url_problem("an unknown SQLite parameter" + did_you_mean(key, known_keys()),
                  offset + key_begin + 1, std::string(kKnownText));
    }
    set(&params, key, checked_value(key, std::move(value), offset + value_begin + 1));
  }
  return params;
}

// sqlite:///abs/path.db?timeout=5, sqlite://relative.db, sqlite://:memory:
UrlParams parse_uri(std::string_view body, std::size_t offset) {
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (is_space(body[i]) || is_control(body[i])) {
      url_problem("a space or control character", offset + i + 1, "percent-encode it (%20)");
    }
    if (body[i] == '#') {
      url_problem("a '#'", offset + i + 1, "fragments are not supported; percent-encode it (%23)");
    }
  }
  const std::size_t query = std::min(body.find('?'), body.size());
  std::string path;
  std::size_t bad = 0;
  if (!percent_decode(body.substr(0, query), &path, &bad)) {
    url_problem("a malformed %-escape in the path", offset + bad + 1,
                "a '%' starts %XX (write '%' itself as %25; %00 is not allowed)");
  }
  if (path == "/:memory:") path = ":memory:";
  if (path.empty() || path == "/") {
    url_problem("no database file", 0,
                "use sqlite:///abs/path.db, sqlite://relative.db or sqlite://:memory:");
  }
  UrlParams params;
  set(&params, "db", checked_value("db", path, offset + 1));
  for (std::size_t from = query + 1; from <= body.size();) {
    const std::size_t end = std::min(body.find('&', from), body.size());
    const std::string_view item = body.substr(from, end - from);
    const std::size_t eq = item.find('=');
    std::string key, value;
    if (!item.empty()) {
      if (eq == std::string_view::npos || eq == 0 ||
          !percent_decode(item.substr(0, eq), &key, &bad) ||
          !percent_decode(item.substr(eq + 1), &value, &bad)) {
        url_problem("a query parameter that is not key=value", offset + from + 1);
      }
      if (key == "db" || key == "dbname" ||
          std::find(known_keys().begin(), known_keys().end(), key) == known_keys().end()) {
        url_problem("an unknown SQLite parameter" + did_you_mean(key, known_keys()),
                    offset + from + 1, "known: timeout, synchronous, shared_cache, readonly, vfs");
      }
      set(&params, key, checked_value(key, std::move(value), offset + from + eq + 2));
    }
    from = end + 1;
  }
  return params;
}

}  // namespace

ParsedUrl parse_sqlite(std::string_view scheme, std::string_view body, std::size_t offset) {
  ParsedUrl parsed;
  const bool pairs = looks_like_pairs(body);
  parsed.params = pairs ? parse_pairs(body, offset) : parse_uri(body, offset);
  if (parsed.params.empty() || parsed.params.front().first != "db" ||
      parsed.params.front().second.empty()) {
    url_problem("no database file", 0, "add db=<path> (or db=:memory:)");
  }
  parsed.sqlite_path = parsed.params.front().second;
  parsed.redacted = std::string(scheme) + "://";
  if (pairs) {
    parsed.redacted += pairs_text(parsed.params, false);
  } else {
    parsed.redacted += percent_encode(parsed.sqlite_path, "/:");
    for (std::size_t i = 1; i < parsed.params.size(); ++i) {
      parsed.redacted += (i == 1 ? "?" : "&") + parsed.params[i].first + "=" +
                         percent_encode(parsed.params[i].second);
    }
  }
  return parsed;
}

std::string sqlite_connect_string(const UrlParams& params) {
  UrlParams ordered;
  for (const auto& [key, value] : params) {
    const std::string k = key == "dbname" ? "db" : key;
    if (std::find(known_keys().begin(), known_keys().end(), k) == known_keys().end()) {
      throw std::invalid_argument("ConnectionUrl: '" + key + "' is not a SOCI SQLite option (" +
                                  std::string(kKnownText) + ")");
    }
    if (!soci_can_hold(value)) {
      throw std::invalid_argument("ConnectionUrl: the value of '" + key +
                                  "' cannot be passed to SOCI's SQLite backend");
    }
    set(&ordered, k, value);
  }
  return pairs_text(ordered, true);
}

}  // namespace poolscope::detail
