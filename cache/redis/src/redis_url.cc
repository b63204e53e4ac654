// Parsing of Redis URLs. Every message is built from the redacted URL
// (poolscope::redact_url, the one redaction every poolscope URL goes
// through); the password is kept in RedisUrl::password_ alone.

#include "poolscope/cache/redis/redis_url.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>

#include "poolscope/pool/errors.h"
#include "poolscope/pool/url.h"

namespace poolscope::cache {
namespace {

constexpr std::string_view kMask = "***";
constexpr std::string_view kForms =
    "expected redis://[[user]:password@]host[:port][/db] or "
    "unix://[[user]:password@]/path/redis.sock[?db=N]";

[[noreturn]] void bad_url(std::string_view redacted, std::string_view what) {
  throw BadUrl("bad Redis URL '" + std::string(redacted) + "': " + std::string(what));
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding; false on a malformed escape.
bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      *out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    *out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

// A whole non-negative decimal number no larger than max.
bool parse_number(std::string_view text, int max, int* out) {
  if (text.empty() || text.size() > 10) return false;
  long long value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < 0 || value > max) {
    return false;
  }
  *out = static_cast<int>(value);
  return true;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// Quotes a part of the URL for a message: at most 40 characters of it.
std::string quoted(std::string_view part) {
  return "'" + std::string(part.substr(0, 40)) + (part.size() > 40 ? "...'" : "'");
}

// Where the user info ends in body (the part after "://"), or npos. A TCP
// URL's path is a database number, so its last '@' ends the user info,
// whatever the password holds unencoded; a socket path may hold an '@', so
// there the last '@' before the path does (as redact_url reads it), unless
// there is none and one follows.
std::size_t userinfo_end(std::string_view body, bool unix_socket) {
  if (!unix_socket) return body.rfind('@');
  const std::size_t authority_end = std::min(body.find_first_of("/?#"), body.size());
  const std::size_t at = body.substr(0, authority_end).rfind('@');
  return at != std::string_view::npos ? at : body.rfind('@');
}

// The URL with the password as "***": what redact_url makes of it, except
// that the user info ends where the parser says it does, so that what the
// parser takes for the password is what is hidden, even when it holds an
// unencoded '@' or '/'.
std::string redact_redis_url(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return redact_url(url);
  const std::string_view body = url.substr(scheme_end + 3);
  const bool unix_socket = lowercase(url.substr(0, scheme_end)) == "unix";
  const std::size_t at = userinfo_end(body, unix_socket);
  const std::size_t colon = body.find(':');
  if (at == std::string_view::npos || colon == std::string_view::npos || colon > at) {
    return redact_url(url);
  }
  return std::string(url.substr(0, scheme_end + 3 + colon + 1)) + std::string(kMask) +
         std::string(body.substr(at));
}

}  // namespace

std::string RedisUrl::scrub(std::string_view text) const {
  std::string out(text);
  if (password_.empty()) return out;
  for (std::size_t pos = out.find(password_); pos != std::string::npos;
       pos = out.find(password_, pos + kMask.size())) {
    out.replace(pos, password_.size(), kMask);
  }
  return out;
}

// User info "[user]:password" up to userinfo_end(); removes it from body.
void RedisUrl::parse_userinfo(std::string_view* body, bool unix_socket) {
  const std::string& shown = redacted_;
  const std::size_t at = userinfo_end(*body, unix_socket);
  if (at == std::string_view::npos) return;
  const std::string_view info = body->substr(0, at);
  body->remove_prefix(at + 1);
  const std::size_t colon = info.find(':');
  if (colon == std::string_view::npos) {
    bad_url(shown, "user " + quoted(info) +
                       " without a password: Redis AUTH needs one (redis://user:password@host)");
  }
  if (!percent_decode(info.substr(0, colon), &user_)) {
    bad_url(shown, "the user has a malformed %-escape");
  }
  if (!percent_decode(info.substr(colon + 1), &password_)) {
    bad_url(shown, "the password has a malformed %-escape");
  }
  if (password_.empty()) bad_url(shown, "the password is empty");
  has_password_ = true;
}

void RedisUrl::parse_unix(std::string_view path, std::string_view query) {
  const std::string& shown = redacted_;
  if (path.empty() || path[0] != '/') {
    bad_url(shown, "the socket path must be absolute (unix:///run/redis/redis.sock)");
  }
  if (path.size() == 1 || path.back() == '/') bad_url(shown, "the socket path names no file");
  socket_path_ = std::string(path);
  if (query.empty()) return;
  if (!query.starts_with("db=")) {
    bad_url(shown,
            "unknown query parameter " + quoted(query.substr(0, query.find('='))) + " (only db=N)");
  }
  if (!parse_number(query.substr(3), std::numeric_limits<int>::max(), &database_)) {
    bad_url(shown, "database " + quoted(query.substr(3)) + " is not a number (0, 1, ...)");
  }
}

void RedisUrl::parse_tcp(std::string_view body) {
  const std::string& shown = redacted_;
  const std::size_t slash = body.find('/');
  const std::string_view host_port = body.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view db = body.substr(slash + 1);
    if (!db.empty() && !parse_number(db, std::numeric_limits<int>::max(), &database_)) {
      bad_url(shown, "database " + quoted(db) + " is not a number (0, 1, ...)");
    }
  }
  std::optional<std::string_view> port;
  if (!host_port.empty() && host_port[0] == '[') {
    const std::size_t close = host_port.find(']');
    if (close == std::string_view::npos) bad_url(shown, "an IPv6 address misses its ']'");
    host_ = std::string(host_port.substr(1, close - 1));
    const std::string_view rest = host_port.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') {
      bad_url(shown, "stray characters " + quoted(rest) + " after the host");
    }
    if (!rest.empty()) port = rest.substr(1);
    if (host_.empty() || host_.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) {
      bad_url(shown, "bad IPv6 address " + quoted(host_));
    }
  } else {
    const std::size_t colon = host_port.find(':');
    host_ = std::string(host_port.substr(0, colon));
    if (colon != std::string_view::npos) port = host_port.substr(colon + 1);
    if (host_.empty()) bad_url(shown, "no host; " + std::string(kForms));
    if (!std::all_of(host_.begin(), host_.end(), is_host_char)) {
      bad_url(shown, "bad host " + quoted(host_));
    }
  }
  if (port && (!parse_number(*port, 65535, &port_) || port_ == 0)) {
    bad_url(shown, "bad port " + quoted(*port) + " (1 to 65535)");
  }
}

RedisUrl RedisUrl::parse(std::string_view url) {
  RedisUrl r;
  r.redacted_ = redact_redis_url(url);
  const std::string& shown = r.redacted_;
  if (url.empty()) bad_url(shown, "the URL is empty; " + std::string(kForms));
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    bad_url(shown, "no '://' after the scheme; " + std::string(kForms));
  }
  const std::string scheme = lowercase(url.substr(0, scheme_end));
  if (scheme == "rediss") {
    bad_url(shown, "rediss:// (TLS) is not supported: Debian's hiredis 0.14 has no TLS");
  }
  if (scheme != "redis" && scheme != "unix") {
    bad_url(shown, "unknown scheme " + quoted(scheme) + "; " + std::string(kForms));
  }
  std::string_view body = url.substr(scheme_end + 3);
  r.parse_userinfo(&body, scheme == "unix");
  std::string_view query;
  if (const std::size_t q = body.find('?'); q != std::string_view::npos) {
    query = body.substr(q + 1);
    body = body.substr(0, q);
  }
  if (body.find('#') != std::string_view::npos) bad_url(shown, "a '#' fragment is not allowed");
  if (scheme == "unix") {
    r.parse_unix(body, query);
  } else {
    if (!query.empty()) {
      bad_url(shown, "unexpected query " + quoted(query) +
                         "; the database goes in the path (redis://host:6379/2)");
    }
    r.parse_tcp(body);
  }
  return r;
}

}  // namespace poolscope::cache
