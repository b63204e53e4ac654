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
//   postgresql://u@h1:5432,h2:5432/app?target_session_attrs=read-write
//   postgres://...                             (alias of postgresql://)
//
// A PostgreSQL URL is read by libpq itself (PQconninfoParse): what poolscope
// hands to SOCI, what it hides and what it shows all come from libpq's own
// reading of the text, so a password is hidden however it was written.
//
// ConnectionUrl is an immutable value: safe to share between threads.

#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace poolscope {

enum class Backend { kSqlite, kPostgreSQL };

// "sqlite" or "postgresql": the backend label used in messages and metrics.
std::string_view to_string(Backend backend) noexcept;

// A connection URL as its backend reads it: what SOCI is handed, which
// parameters it sets, the secrets it holds, and the one form of it that may
// be shown. Built only by parse(); copyable.
// The class is immutable: no concurrent call to any API of this type causes
// a data race.
class ConnectionUrl {
 public:
  // Parses url. Throws BadUrl saying what is wrong and where (a position or a
  // component: unknown scheme, bad port, unknown keyword, unclosed quote, a
  // NUL byte...). The message shows only the scheme: everything past it is
  // masked, since a URL that does not parse cannot be redacted reliably.
  static ConnectionUrl parse(std::string_view url);

  Backend backend() const noexcept { return backend_; }

  // The SOCI backend name ("sqlite3", "postgresql") and connect string, rebuilt
  // from the parse with every value quoted as the backend requires. The
  // connect string holds the password: pass it to SOCI, never print it.
  const std::string& soci_backend() const noexcept { return soci_backend_; }
  const std::string& connect_string() const noexcept { return connect_string_; }

  // The connect string with each of `defaults` (keyword, value) added unless
  // the URL sets that keyword, every value quoted as the backend requires, so
  // no value of the URL can run into an added keyword. Throws
  // std::invalid_argument for a keyword the backend does not know or a value
  // it cannot be given.
  std::string connect_string_with(
      std::span<const std::pair<std::string, std::string>> defaults) const;

  // The URL rebuilt from the parse, in the form it was written (URI or
  // keyword/value), with the password (and any other secret libpq marks as
  // such, e.g. sslpassword) replaced by "***".
  const std::string& redacted() const noexcept { return redacted_; }

  // True when the URL sets the parameter `key` (a libpq keyword, or a SOCI
  // SQLite option such as "timeout"), as the backend reads it.
  bool has_parameter(std::string_view key) const noexcept;

  // SQLite only: the database file, or ":memory:".
  const std::string& sqlite_path() const noexcept { return sqlite_path_; }
  bool sqlite_in_memory() const noexcept { return sqlite_path_ == ":memory:"; }

  // Returns text with every occurrence of this URL's secrets replaced by a
  // mask, for messages that come from a database driver. The result never
  // contains a secret, even where a mask meets the text around it.
  std::string scrub(std::string_view text) const;

 private:
  ConnectionUrl() = default;

  Backend backend_ = Backend::kSqlite;
  std::string soci_backend_;
  std::vector<std::pair<std::string, std::string>> params_;  // as the backend reads them
  std::string connect_string_;
  std::string redacted_;
  std::string sqlite_path_;
  std::vector<std::string> secrets_;  // as written in messages: raw and quoted forms
};

// Best-effort redaction of any text that may hold a URL, for text that is not
// (or not only) a URL poolscope accepts: a URL that parses gives its
// redacted() form; otherwise the password of every "scheme://user:password@"
// (any scheme: redis://, amqp://...) and the value of every key=value whose
// key names a secret (password, passwd, pwd, secret, token..., in any case,
// percent-encoded or not) are masked, over-masking rather than showing a
// password, and any password of four characters or more that libpq reads in
// the text is masked wherever it appears.
std::string redact_url(std::string_view text);

}  // namespace poolscope
