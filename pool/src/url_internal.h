// The parts of URL parsing shared by url.cc (scheme dispatch, masking) and the
// per-backend parsers (url_sqlite.cc, url_postgresql*.cc). Private to
// poolscope::pool. Everything here is a pure function: safe from any thread.

#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace poolscope::detail {

// (keyword, value) pairs as a backend reads them, in the order they are handed
// over.
using UrlParams = std::vector<std::pair<std::string, std::string>>;

// What is wrong with a URL, thrown by the backends' parsers and turned into a
// BadUrl by ConnectionUrl::parse(). `what` never holds any text of the URL;
// `position` is 1-based in the whole URL, 0 when the problem is a component.
// `hint`, when set, says how to fix it. The message reads
// "<what> at position <position>; <hint>".
struct UrlProblem {
  std::string what;
  std::size_t position = 0;
  std::string hint;
};

[[noreturn]] inline void url_problem(std::string what, std::size_t position = 0,
                                     std::string hint = {}) {
  throw UrlProblem{std::move(what), position, std::move(hint)};
}

// A URL as its backend reads it.
struct ParsedUrl {
  UrlParams params;                  // what SOCI gets, secrets included
  std::vector<std::string> secrets;  // the values to hide (password, sslpassword)
  std::string redacted;              // rebuilt from params, secrets as "***"
  std::string sqlite_path;
};

// The backends' parsers. scheme: as it will be shown (lower case); body: the
// text after "scheme://"; offset: the body's 0-based index in the URL, for
// positions. Throw UrlProblem.
ParsedUrl parse_sqlite(std::string_view scheme, std::string_view body, std::size_t offset);

// SOCI's SQLite connect string for params (db first). Throws
// std::invalid_argument for an unknown key or a value SOCI cannot be given.
std::string sqlite_connect_string(const UrlParams& params);

#if POOLSCOPE_WITH_POSTGRESQL
ParsedUrl parse_postgresql(std::string_view scheme, std::string_view body, std::size_t offset);

// libpq's keyword=value text for params, every value single-quoted. Throws
// std::invalid_argument for a keyword libpq does not know.
std::string postgresql_connect_string(const UrlParams& params);

// Adds to *spans ([begin, end) in text) every place libpq reads a secret in
// text, however it could read it: the text as it is, the text after its
// scheme (however mistyped) and after every "://", each as keyword=value
// pairs and as a URI. False when libpq reads a secret whose place cannot be
// told. For redact_url().
bool postgresql_secret_spans(std::string_view text,
                             std::vector<std::pair<std::size_t, std::size_t>>* spans);
#endif

// Shared helpers.

inline constexpr std::string_view kMask = "***";

// libpq's isspace() in the C locale.
bool is_space(char c) noexcept;
bool is_control(char c) noexcept;  // C0 controls and DEL
std::string lowercase(std::string_view s);

// url as a BadUrl shows it: the scheme (with the ':' and '/' after it),
// everything else as "***".
std::string masked_url(std::string_view url);

// Length of the RFC 3986 scheme ([A-Za-z][A-Za-z0-9+.-]*) that starts s.
std::size_t scheme_length(std::string_view s);

// s with every byte percent-encoded except RFC 3986's unreserved characters
// and those in `keep`.
std::string percent_encode(std::string_view s, std::string_view keep = {});

// Decodes %XX escapes; false on a malformed escape or an encoded NUL, with
// *bad_at the index of the offending '%'.
bool percent_decode(std::string_view in, std::string* out, std::size_t* bad_at = nullptr);

// The word of `words` closest to `word` (at most two edits, any case), or
// empty: for "did you mean" hints that never repeat the mistyped text.
std::string_view closest_word(std::string_view word, const std::vector<std::string>& words);

// " (did you mean 'x'?)" for closest_word(), or empty.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& words);

// text with every occurrence of each needle (empty ones ignored) replaced by a
// mask. The mask shares no character with any needle, so no needle can
// reappear where a mask meets its neighbours.
std::string mask_all(std::string_view text, const std::vector<std::string>& needles);

}  // namespace poolscope::detail
