// Parsing of connection URLs into SOCI backend names and connect strings.
//
// Every error message is built from the redacted URL; the password is kept
// only in ConnectionUrl::password_ and the connect string. The redaction of
// SOCI's form comes from the same parse as the connect string, so what is
// hidden is exactly what libpq would take as the password.

#include "poolscope/pool/url.h"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "poolscope/pool/errors.h"

namespace poolscope {
namespace {

constexpr std::string_view kMask = "***";

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

[[noreturn]] void bad_url(std::string_view redacted, std::string_view what) {
  throw BadUrl("bad connection URL '" + std::string(redacted) + "': " + std::string(what));
}

using Spans = std::vector<std::pair<std::size_t, std::size_t>>;  // [begin, end)

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Password parameters are hidden whatever the case of their key: libpq
// rejects "Password", but the message saying so shows the URL.
bool is_password_key(std::string_view key) { return lowercase(key) == "password"; }

// "key=value" pairs as libpq takes them: separated by whitespace, values
// optionally in single or double quotes with backslash escapes.
struct Pair {
  std::string key;
  std::string value;
  std::size_t value_begin;  // span of the raw value in the input, for redaction
  std::size_t value_end;
};

// SOCI's form, parsed: every pair, and the first problem (empty if none).
// Parsing goes on past a problem so that redaction still sees every pair.
struct Pairs {
  std::vector<Pair> pairs;
  std::string error;
};

// Returns true when body starts like "key=" (SOCI's form) rather than like a
// URI authority or path.
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

// Parses the pairs of body, which starts at offset in the URL.
Pairs parse_pairs(std::string_view body, std::size_t offset) {
  Pairs result;
  auto fail = [&result](std::string error) {
    if (result.error.empty()) result.error = std::move(error);
  };
  std::size_t i = 0;
  auto skip_spaces = [&] {
    while (i < body.size() && is_space(body[i])) ++i;
  };
  for (skip_spaces(); i < body.size(); skip_spaces()) {
    const std::size_t key_begin = i;
    while (i < body.size() && body[i] != '=' && !is_space(body[i])) ++i;
    Pair pair;
    pair.key = std::string(body.substr(key_begin, i - key_begin));
    skip_spaces();
    if (i >= body.size() || body[i] != '=') {
      fail("'" + pair.key + "' has no value (expected key=value pairs)");
      continue;  // what follows starts the next pair
    }
    ++i;
    skip_spaces();
    pair.value_begin = offset + i;
    if (i < body.size() && (body[i] == '\'' || body[i] == '"')) {
      const char quote = body[i++];
      bool closed = false;
      while (i < body.size()) {
        if (body[i] == '\\' && i + 1 < body.size()) {
          pair.value += body[i + 1];
          i += 2;
        } else if (body[i] == quote) {
          ++i;
          closed = true;
          break;
        } else {
          pair.value += body[i++];
        }
      }
      if (!closed) fail("the value of '" + pair.key + "' has no closing quote");
    } else {
      while (i < body.size() && !is_space(body[i])) pair.value += body[i++];
    }
    pair.value_end = offset + i;
    result.pairs.push_back(std::move(pair));
  }
  return result;
}

// Quotes a value for a libpq keyword/value connection string.
std::string libpq_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

// Decodes %XX escapes; returns false on a malformed escape.
bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      *out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    unsigned value = 0;
    const auto* first = in.data() + i + 1;
    const auto [ptr, ec] = std::from_chars(first, first + 2, value, 16);
    if (ec != std::errc() || ptr != first + 2) return false;
    *out += static_cast<char>(value);
    i += 2;
  }
  return true;
}

// The keywords libpq accepts, straight from libpq.
const std::set<std::string>& libpq_keywords() {
  static const std::set<std::string> keywords = [] {
    std::set<std::string> names;
    std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconndefaults(),
                                                                         &PQconninfoFree);
    for (const PQconninfoOption* o = options.get(); o != nullptr && o->keyword != nullptr; ++o) {
      names.insert(o->keyword);
    }
    return names;
  }();
  return keywords;
}

// Replaces the given spans of s with the mask (overlapping spans as one).
std::string mask_spans(std::string_view s, Spans spans) {
  std::sort(spans.begin(), spans.end());
  Spans merged;
  for (const auto& span : spans) {
    if (!merged.empty() && span.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, span.second);
    } else {
      merged.push_back(span);
    }
  }
  std::string out(s);
  for (auto it = merged.rbegin(); it != merged.rend(); ++it) {
    out.replace(it->first, it->second - it->first, kMask);
  }
  return out;
}

// Spans of the password values in the URI query that starts at `from`
// (after the '?'). Keys are compared percent-decoded, as the parser decodes
// them; a value whose key does not decode is hidden too.
void query_password_spans(std::string_view s, std::size_t from, Spans* spans) {
  while (from <= s.size()) {
    const std::size_t end = std::min(s.find('&', from), s.size());
    const std::string_view item = s.substr(from, end - from);
    const std::size_t eq = item.find('=');
    std::string key;
    if (eq != std::string_view::npos &&
        (!percent_decode(item.substr(0, eq), &key) || is_password_key(key))) {
      spans->emplace_back(from + eq + 1, end);
    }
    from = end + 1;
  }
}

// The span of the password in "scheme://user:password@host...", if any.
// Follows RFC 3986 (the authority ends at the first '/', '?' or '#'), but when
// that authority has no '@' and one appears later, the user info probably
// holds an unencoded '/', '?' or '#': mask from the first ':' to the last '@'
// rather than risk showing a password. Over-masking is the safe failure.
bool userinfo_password_span(std::string_view s, std::size_t authority_begin,
                            std::pair<std::size_t, std::size_t>* span) {
  const std::size_t authority_end = std::min(s.find_first_of("/?#", authority_begin), s.size());
  std::size_t at = s.substr(0, authority_end).rfind('@');
  if (at == std::string_view::npos || at < authority_begin) at = s.rfind('@');
  if (at == std::string_view::npos || at < authority_begin) return false;
  const std::size_t colon = s.find(':', authority_begin);
  if (colon == std::string_view::npos || colon > at) return false;
  *span = {colon + 1, at};
  return true;
}

// The redacted form of url. When its body is in SOCI's form, *pairs gets
// the parse of it, for ConnectionUrl::parse() to go on with.
std::string redact(std::string_view url, std::optional<Pairs>* pairs) {
  Spans spans;
  const std::size_t scheme_end = url.find("://");
  const std::size_t body = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  if (looks_like_pairs(url.substr(body))) {
    *pairs = parse_pairs(url.substr(body), body);
    for (const Pair& pair : (*pairs)->pairs) {
      if (is_password_key(pair.key)) spans.emplace_back(pair.value_begin, pair.value_end);
    }
  } else {
    std::size_t query_from = body;
    std::pair<std::size_t, std::size_t> span;
    if (scheme_end != std::string_view::npos && userinfo_password_span(url, body, &span)) {
      spans.push_back(span);
      query_from = span.second;  // a '?' inside the password starts no query
    }
    const std::size_t query = url.find('?', query_from);
    if (query != std::string_view::npos) query_password_spans(url, query + 1, &spans);
  }
  return mask_spans(url, std::move(spans));
}

}  // namespace

std::string_view to_string(Backend backend) noexcept {
  switch (backend) {
    case Backend::kSqlite:
      return "sqlite";
    case Backend::kPostgreSQL:
      return "postgresql";
  }
  return "unknown";
}

std::string redact_url(std::string_view url) {
  std::optional<Pairs> pairs;
  return redact(url, &pairs);
}

std::string ConnectionUrl::scrub(std::string_view text) const {
  std::string out(text);
  if (password_.empty()) return out;
  for (std::size_t pos = out.find(password_); pos != std::string::npos;
       pos = out.find(password_, pos + kMask.size())) {
    out.replace(pos, password_.size(), kMask);
  }
  return out;
}

bool ConnectionUrl::has_parameter(std::string_view key) const noexcept {
  return std::find(keys_.begin(), keys_.end(), key) != keys_.end();
}

ConnectionUrl ConnectionUrl::parse(std::string_view url) {
  ConnectionUrl result;
  std::optional<Pairs> pairs;  // set when the body is in SOCI's form
  result.redacted_ = redact(url, &pairs);
  const std::string& shown = result.redacted_;

  if (url.empty()) bad_url(shown, "the URL is empty");
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    bad_url(shown,
            "no '://' after the scheme; expected e.g. sqlite:///path/app.db, "
            "sqlite3://db=app.db or postgresql://user@host:5432/db");
  }
  const std::string scheme = lowercase(url.substr(0, scheme_end));
  const std::size_t body_offset = scheme_end + 3;
  const std::string_view body = url.substr(body_offset);

  if (scheme == "sqlite" || scheme == "sqlite3") {
    result.backend_ = Backend::kSqlite;
    result.soci_backend_ = "sqlite3";
  } else if (scheme == "postgresql" || scheme == "postgres") {
    result.backend_ = Backend::kPostgreSQL;
    result.soci_backend_ = "postgresql";
  } else {
    bad_url(shown,
            "unknown scheme '" + scheme + "' (known: sqlite, sqlite3, postgresql, postgres)");
  }

  if (pairs) {
    // SOCI's own form: the body is the connect string, passed through.
    if (!pairs->error.empty()) bad_url(shown, pairs->error);
    for (const Pair& pair : pairs->pairs) {
      result.keys_.push_back(pair.key);
      if (is_password_key(pair.key)) result.password_ = pair.value;
      if (result.backend_ == Backend::kSqlite && (pair.key == "db" || pair.key == "dbname")) {
        result.sqlite_path_ = pair.value;
      }
      if (result.backend_ == Backend::kPostgreSQL && !libpq_keywords().contains(pair.key)) {
        bad_url(shown, "'" + pair.key + "' is not a PostgreSQL connection parameter");
      }
    }
    if (result.backend_ == Backend::kSqlite && result.sqlite_path_.empty()) {
      bad_url(shown, "no database file: add db=<path> (or db=:memory:)");
    }
    result.connect_string_ = std::string(body);
    return result;
  }

  for (char c : body) {
    if (std::isspace(static_cast<unsigned char>(c)) ||
        std::iscntrl(static_cast<unsigned char>(c))) {
      bad_url(shown, "unexpected whitespace or control character; percent-encode it (%20)");
    }
  }
  if (body.find('#') != std::string_view::npos) {
    bad_url(shown, "unexpected '#' (fragments are not supported; percent-encode it as %23)");
  }

  const std::size_t query_begin = body.find('?');
  const std::string_view before_query = body.substr(0, query_begin);
  std::vector<std::pair<std::string, std::string>> query;
  if (query_begin != std::string_view::npos) {
    std::string_view rest = body.substr(query_begin + 1);
    while (!rest.empty()) {
      const std::size_t amp = rest.find('&');
      const std::string_view item = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      if (item.empty()) continue;
      const std::size_t eq = item.find('=');
      std::string key, value;
      if (eq == std::string_view::npos || eq == 0 || !percent_decode(item.substr(0, eq), &key) ||
          !percent_decode(item.substr(eq + 1), &value)) {
        bad_url(shown, "query parameter '" + std::string(item.substr(0, eq)) +
                           "' is not of the form key=value");
      }
      query.emplace_back(std::move(key), std::move(value));
    }
  }

  if (result.backend_ == Backend::kSqlite) {
    std::string path;
    if (!percent_decode(before_query, &path)) bad_url(shown, "malformed %-escape in the path");
    if (path == "/:memory:") path = ":memory:";
    if (path.empty() || path == "/") {
      bad_url(shown,
              "no database file: use sqlite:///abs/path.db, sqlite://relative.db or "
              "sqlite://:memory:");
    }
    result.sqlite_path_ = path;
    std::string connect =
        "db=" + (path.find_first_of(" \"") == std::string::npos ? path : "\"" + path + "\"");
    result.keys_.push_back("db");
    static constexpr std::array<std::string_view, 6> kKnown = {
        "timeout", "synchronous", "shared_cache", "readonly", "nocreate", "vfs"};
    for (const auto& [key, value] : query) {
      if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end()) {
        bad_url(shown,
                "unknown SQLite parameter '" + key +
                    "' (known: timeout, synchronous, shared_cache, readonly, nocreate, vfs)");
      }
      if (key == "timeout") {
        int seconds = -1;
        const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
        if (ec != std::errc() || ptr != value.data() + value.size() || seconds < 0) {
          bad_url(shown, "timeout '" + value + "' is not a whole number of seconds");
        }
      }
      connect += " " + key + "=" + value;
      result.keys_.push_back(key);
    }
    result.connect_string_ = std::move(connect);
    return result;
  }

  // postgresql://[user[:password]@][host][:port][/dbname][?key=value&...]
  const std::size_t slash = before_query.find('/');
  const std::string_view authority = before_query.substr(0, slash);
  if (authority.find('@') == std::string_view::npos &&
      before_query.find('@') != std::string_view::npos) {
    bad_url(shown, "the user name or password contains '/', '?' or '#'; percent-encode it");
  }
  const std::string_view db_part =
      slash == std::string_view::npos ? std::string_view() : before_query.substr(slash + 1);
  std::string user, password, host, port, dbname;
  std::string_view hostport = authority;
  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    hostport = authority.substr(at + 1);
    const std::size_t colon = userinfo.find(':');
    if (!percent_decode(userinfo.substr(0, colon), &user)) {
      bad_url(shown, "malformed %-escape in the user name");
    }
    if (colon != std::string_view::npos && !percent_decode(userinfo.substr(colon + 1), &password)) {
      bad_url(shown, "malformed %-escape in the password");
    }
  }
  std::string_view port_text;
  if (!hostport.empty() && hostport.front() == '[') {
    const std::size_t close = hostport.find(']');
    if (close == std::string_view::npos) bad_url(shown, "IPv6 host has no closing ']'");
    host = std::string(hostport.substr(1, close - 1));
    const std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url(shown, "unexpected text after the IPv6 host");
      port_text = after.substr(1);
    }
  } else {
    const std::size_t colon = hostport.find(':');
    if (!percent_decode(hostport.substr(0, colon), &host)) {
      bad_url(shown, "malformed %-escape in the host");
    }
    if (colon != std::string_view::npos) port_text = hostport.substr(colon + 1);
  }
  if (!port_text.empty() || hostport.ends_with(':')) {
    int value = 0;
    const auto [ptr, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
        value < 1 || value > 65535) {
      bad_url(shown, "port '" + std::string(port_text) + "' is not a number from 1 to 65535");
    }
    port = std::string(port_text);
  }
  if (db_part.find('/') != std::string_view::npos) {
    bad_url(shown, "the database name contains '/' (percent-encode it as %2F)");
  }
  if (!percent_decode(db_part, &dbname)) bad_url(shown, "malformed %-escape in the database name");

  std::string connect;
  auto add = [&connect, &result](std::string_view key, std::string_view value) {
    result.keys_.emplace_back(key);
    if (!connect.empty()) connect += ' ';
    connect += key;
    connect += '=';
    connect += libpq_quote(value);
  };
  if (!host.empty()) add("host", host);
  if (!port.empty()) add("port", port);
  if (!dbname.empty()) add("dbname", dbname);
  if (!user.empty()) add("user", user);
  if (!password.empty()) add("password", password);
  for (const auto& [key, value] : query) {
    if (!libpq_keywords().contains(key)) {
      bad_url(shown, "'" + key + "' is not a PostgreSQL connection parameter");
    }
    if (key == "password") password = value;
    add(key, value);
  }
  result.password_ = std::move(password);
  result.connect_string_ = std::move(connect);
  return result;
}

}  // namespace poolscope
