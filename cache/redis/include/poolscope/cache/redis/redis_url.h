// Redis URLs, as redis-cli, redis-py and most clients write them:
//
//   redis://host                         port 6379, database 0, no AUTH
//   redis://host:6380/2                  database 2 (SELECT 2)
//   redis://:secret@host                 AUTH secret (the default user)
//   redis://app:secret@host:6379/1       AUTH app secret (a Redis 6 ACL user)
//   redis://[::1]:6379                   an IPv6 address in brackets
//   unix:///run/redis/redis.sock         a Unix socket (path absolute)
//   unix://:secret@/run/redis.sock?db=3  ... with AUTH and SELECT
//
// User and password may be percent-encoded (%40 for '@'). rediss:// (TLS)
// is refused: Debian's hiredis 0.14 has no TLS. A malformed URL throws
// poolscope::BadUrl naming the part that is wrong; the message, like every
// message and stat poolscope makes, shows the URL with its password as
// "***".
//
// RedisUrl is an immutable value: safe to share between threads.

#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace poolscope::cache {

class RedisUrl {
 public:
  // Throws poolscope::BadUrl.
  static RedisUrl parse(std::string_view url);

  bool is_unix() const noexcept { return !socket_path_.empty(); }
  const std::string& host() const noexcept { return host_; }  // TCP only; no brackets
  int port() const noexcept { return port_; }                 // TCP only
  const std::string& socket_path() const noexcept { return socket_path_; }
  const std::string& user() const noexcept { return user_; }  // empty: the default user
  // The password, for AUTH only: never print it.
  const std::string& password() const noexcept { return password_; }
  bool has_password() const noexcept { return has_password_; }
  int database() const noexcept { return database_; }

  // The URL as given, with the password replaced by "***" (as
  // poolscope::redact_url does for every URL; where a password holds an
  // unencoded '@' or '/', all of what this parser takes for it).
  const std::string& redacted() const noexcept { return redacted_; }

  // text with every occurrence of the password replaced by "***": for
  // messages that come from the server or the client library.
  std::string scrub(std::string_view text) const;

 private:
  RedisUrl() = default;
  void parse_userinfo(std::string_view* body, bool unix_socket);
  void parse_unix(std::string_view path, std::string_view query);
  void parse_tcp(std::string_view body);

  std::string host_;
  int port_ = 6379;
  std::string socket_path_;
  std::string user_;
  std::string password_;
  bool has_password_ = false;
  int database_ = 0;
  std::string redacted_;
};

}  // namespace poolscope::cache
