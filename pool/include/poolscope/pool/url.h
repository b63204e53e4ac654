// Connection URLs: SOCI's own form and the usual URI forms, parsed into what
// SOCI needs to connect, plus a redacted form that is the only one poolscope
// ever prints.
//
//   sqlite3://db=app.db timeout=5              SOCI form: backend://connect-string
//   postgresql://host=db1 dbname=app user=u password=s
//   sqlite:///abs/path/app.db                  URI forms
//   sqlite://relative/app.db
//   sqlite://:memory:
//   postgresql://user:secret@host:5432/app?sslmode=disable
//   postgres://...                             (alias of postgresql://)
//
// ConnectionUrl is an immutable value: safe to share between threads.

#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace poolscope {

enum class Backend { kSqlite, kPostgreSQL };

// "sqlite" or "postgresql": the backend label used in messages and metrics.
std::string_view to_string(Backend backend) noexcept;

class ConnectionUrl {
 public:
  // Parses url. Throws BadUrl naming what is wrong (unknown scheme, missing
  // database, bad port, stray characters...), never echoing the password.
  static ConnectionUrl parse(std::string_view url);

  Backend backend() const noexcept { return backend_; }

  // The SOCI backend name ("sqlite3", "postgresql") and connect string. The
  // connect string holds the password: pass it to SOCI, never print it.
  const std::string& soci_backend() const noexcept { return soci_backend_; }
  const std::string& connect_string() const noexcept { return connect_string_; }

  // The URL as given, with the password (if any) replaced by "***".
  const std::string& redacted() const noexcept { return redacted_; }

  // True when the connect string sets the parameter `key` (a libpq keyword,
  // or a SOCI SQLite option such as "timeout"), matched exactly, as the
  // backend matches it.
  bool has_parameter(std::string_view key) const noexcept;

  // SQLite only: the database file, or ":memory:".
  const std::string& sqlite_path() const noexcept { return sqlite_path_; }
  bool sqlite_in_memory() const noexcept { return sqlite_path_ == ":memory:"; }

  // Returns text with every occurrence of this URL's password replaced by
  // "***". For messages that come from a database driver.
  std::string scrub(std::string_view text) const;

 private:
  ConnectionUrl() = default;

  Backend backend_ = Backend::kSqlite;
  std::string soci_backend_;
  std::string connect_string_;
  std::string redacted_;
  std::string sqlite_path_;
  std::string password_;
  std::vector<std::string> keys_;  // the connect string's parameters
};

// Best-effort redaction of a string that may not even parse: hides the
// password of "scheme://user:password@host" and the value of any password
// parameter, its key matched in any case (and percent-decoded in a query).
// ConnectionUrl::redacted() is this function's result.
std::string redact_url(std::string_view url);

}  // namespace poolscope
