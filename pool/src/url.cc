// Connection URLs: the scheme, the dispatch to a backend's parser, and what
// every backend shares (masking, the BadUrl text, percent-encoding).
//
// Nothing a URL holds past its scheme reaches an error message: a backend's
// parser reports a UrlProblem (what, where), and BadUrl shows the URL as
// "scheme://***". The redacted form of a URL that parses is rebuilt by its
// backend from the parse, never cut out of the input. All functions are pure:
// safe from any thread.

#include "poolscope/pool/url.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <stdexcept>
#include <utility>
#include <vector>

#include "poolscope/pool/errors.h"
#include "url_internal.h"

namespace poolscope {
namespace detail {
namespace {

constexpr std::size_t kMaxShownScheme = 32;

bool is_scheme_char(char c, bool first) {
  const auto u = static_cast<unsigned char>(c);
  if (std::isalpha(u)) return true;
  return !first && (std::isdigit(u) || c == '+' || c == '-' || c == '.');
}

// Where a problem lies, as the message says it: its position, unless a
// password (as libpq could read one anywhere in url) starts at or before it:
// the position would then tell the password's length, or how it is written
// (which part of the text one of libpq's readings takes for the password).
std::string where([[maybe_unused]] std::string_view url, std::size_t position) {
  if (position == 0) return {};
#if POOLSCOPE_WITH_POSTGRESQL
  std::vector<std::pair<std::size_t, std::size_t>> secrets;
  if (!postgresql_secret_spans(url, &secrets)) return " (no position: a password may precede it)";
  for (const auto& [begin, end] : secrets) {
    if (position - 1 >= begin) return " in or after the password";
  }
#endif
  return " at position " + std::to_string(position);
}

std::string bad_url_text(std::string_view url, const UrlProblem& problem) {
  std::string text = "bad connection URL '" + masked_url(url) + "': " + problem.what;
  text += where(url, problem.position);
  if (!problem.hint.empty()) text += "; " + problem.hint;
  return text;
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Damerau-Levenshtein (optimal string alignment) distance, case-insensitive,
// for words of at most 64 characters: three rows on the stack.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::array<std::array<std::size_t, 66>, 3> rows;
  std::size_t* before = rows[0].data();
  std::size_t* previous = rows[1].data();
  std::size_t* current = rows[2].data();
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = ascii_lower(a[i - 1]) == ascii_lower(b[j - 1]) ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && ascii_lower(a[i - 1]) == ascii_lower(b[j - 2]) &&
          ascii_lower(a[i - 2]) == ascii_lower(b[j - 1])) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

}  // namespace

// The ':' and '/' after the scheme stay, so that a missing slash shows.
std::string masked_url(std::string_view url) {
  const std::size_t scheme = scheme_length(url);
  if (scheme == 0 || scheme > kMaxShownScheme) return url.empty() ? "" : std::string(kMask);
  std::size_t end = scheme;
  while (end < url.size() && end < scheme + 3 && (url[end] == ':' || url[end] == '/')) ++end;
  if (end == scheme) return std::string(kMask);  // "app.db": not a scheme after all
  return std::string(url.substr(0, end)) + (end < url.size() ? std::string(kMask) : "");
}

std::size_t scheme_length(std::string_view s) {
  std::size_t n = 0;
  while (n < s.size() && is_scheme_char(s[n], n == 0)) ++n;
  return n;
}

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_control(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string percent_encode(std::string_view s, std::string_view keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' ||
        keep.find(c) != std::string_view::npos) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

bool percent_decode(std::string_view in, std::string* out, std::size_t* bad_at) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      *out += in[i];
      continue;
    }
    const int hi = i + 1 < in.size() ? hex(in[i + 1]) : -1;
    const int lo = i + 2 < in.size() ? hex(in[i + 2]) : -1;
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
      if (bad_at != nullptr) *bad_at = i;
      return false;
    }
    *out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

std::string_view closest_word(std::string_view word, const std::vector<std::string>& words) {
  if (word.empty() || word.size() > 64) return {};
  const std::size_t limit = word.size() <= 4 ? 1 : 2;
  std::string_view best;
  std::size_t best_distance = limit + 1;
  for (const std::string& w : words) {
    const std::size_t gap =
        w.size() > word.size() ? w.size() - word.size() : word.size() - w.size();
    if (gap > limit || w.size() > 64) continue;
    const std::size_t distance = edit_distance(word, w);
    if (distance < best_distance) {
      best = w;
      best_distance = distance;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& words) {
  const std::string_view best = closest_word(word, words);
  return best.empty() ? std::string() : " (did you mean '" + std::string(best) + "'?)";
}

std::string mask_all(std::string_view text, const std::vector<std::string>& needles) {
  // A mask made of a character no needle holds: then no needle can span a
  // mask and its neighbours, and the text between masks holds none either
  // (every occurrence, overlapping ones included, is inside a mask).
  static constexpr std::array<std::string_view, 7> kMasks = {"***", "###", "~~~", "^^^",
                                                             "!!!", "___", "..."};
  std::string_view mask;
  for (std::string_view candidate : kMasks) {
    const bool clash = std::any_of(needles.begin(), needles.end(), [&](const std::string& n) {
      return n.find(candidate[0]) != std::string::npos;
    });
    if (!clash) {
      mask = candidate;
      break;
    }
  }
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // [begin, end)
  for (const std::string& needle : needles) {
    if (needle.empty()) continue;
    for (std::size_t at = text.find(needle); at != std::string_view::npos;
         at = text.find(needle, at + 1)) {
      spans.emplace_back(at, at + needle.size());
    }
  }
  if (spans.empty()) return std::string(text);
  if (mask.empty()) return "(text hidden: it may hold a password)";
  std::sort(spans.begin(), spans.end());
  std::string out;
  std::size_t done = 0;
  for (std::size_t i = 0; i < spans.size();) {
    std::size_t end = spans[i].second;
    std::size_t j = i + 1;
    while (j < spans.size() && spans[j].first <= end) end = std::max(end, spans[j++].second);
    out.append(text.substr(done, spans[i].first - done));
    out.append(mask);
    done = end;
    i = j;
  }
  out.append(text.substr(done));
  return out;
}

}  // namespace detail

std::string_view to_string(Backend backend) noexcept {
  switch (backend) {
    case Backend::kSqlite:
      return "sqlite";
    case Backend::kPostgreSQL:
      return "postgresql";
  }
  return "unknown";
}

ConnectionUrl ConnectionUrl::parse(std::string_view url) {
  using detail::url_problem;
  ConnectionUrl result;
  try {
    if (url.empty()) url_problem("the URL is empty");
    // libpq and SQLite take C strings: whatever follows a NUL would vanish
    // without a word (an sslmode=verify-full included).
    if (const std::size_t nul = url.find('\0'); nul != std::string_view::npos) {
      url_problem("a NUL byte", nul + 1, "a URL cannot hold one, not even percent-encoded");
    }
    if (detail::is_space(url.front())) url_problem("whitespace", 1, "remove it");
    const std::size_t scheme_end = detail::scheme_length(url);
    const std::string scheme = detail::lowercase(url.substr(0, scheme_end));
    const std::string shown = scheme_end <= detail::kMaxShownScheme ? " '" + scheme + "'" : "";
    if (scheme_end == 0 || !url.substr(scheme_end).starts_with("://")) {
      if (scheme_end > 0 && url.substr(scheme_end).starts_with(":")) {
        url_problem("expected '://' after the scheme" + shown, scheme_end + 1);
      }
      if (scheme_end > 0 && url.substr(scheme_end).starts_with("//")) {
        url_problem("expected '://' after the scheme" + shown + " (the ':' is missing)",
                    scheme_end + 1);
      }
      url_problem("no scheme", 1,
                  "expected e.g. sqlite:///path/app.db, sqlite3://db=app.db or "
                  "postgresql://user@host:5432/db");
    }
    const std::size_t offset = scheme_end + 3;
    const std::string_view body = url.substr(offset);
    detail::ParsedUrl parsed;
    if (scheme == "sqlite" || scheme == "sqlite3") {
      result.backend_ = Backend::kSqlite;
      result.soci_backend_ = "sqlite3";
      parsed = detail::parse_sqlite(scheme, body, offset);
    } else if (scheme == "postgresql" || scheme == "postgres") {
#if POOLSCOPE_WITH_POSTGRESQL
      result.backend_ = Backend::kPostgreSQL;
      result.soci_backend_ = "postgresql";
      parsed = detail::parse_postgresql(scheme, body, offset);
#else
      url_problem("this poolscope was built without PostgreSQL support");
#endif
    } else {
      url_problem("unknown scheme" + shown, 1,
                  "known: sqlite, sqlite3, postgresql, postgres"
#if !POOLSCOPE_WITH_POSTGRESQL
                  " (this build has no PostgreSQL support)"
#endif
      );
    }
    result.params_ = std::move(parsed.params);
    result.redacted_ = std::move(parsed.redacted);
    result.sqlite_path_ = std::move(parsed.sqlite_path);
    result.secrets_ = std::move(parsed.secrets);
  } catch (const detail::UrlProblem& problem) {
    throw BadUrl(detail::bad_url_text(url, problem));
  }
  result.connect_string_ = result.connect_string_with({});
  return result;
}

std::string ConnectionUrl::connect_string_with(
    std::span<const std::pair<std::string, std::string>> defaults) const {
  detail::UrlParams params = params_;
  for (const auto& [key, value] : defaults) {
    const bool set =
        std::any_of(params.begin(), params.end(), [&key](const auto& p) { return p.first == key; });
    if (!set && !has_parameter(key)) params.emplace_back(key, value);
  }
#if POOLSCOPE_WITH_POSTGRESQL
  if (backend_ == Backend::kPostgreSQL) return detail::postgresql_connect_string(params);
#endif
  return detail::sqlite_connect_string(params);
}

bool ConnectionUrl::has_parameter(std::string_view key) const noexcept {
  // SOCI's SQLite backend reads db and dbname alike.
  const bool sqlite_db = backend_ == Backend::kSqlite && (key == "db" || key == "dbname");
  return std::any_of(params_.begin(), params_.end(), [&](const auto& p) {
    return p.first == key || (sqlite_db && (p.first == "db" || p.first == "dbname"));
  });
}

std::string ConnectionUrl::scrub(std::string_view text) const {
  return detail::mask_all(text, secrets_);
}

}  // namespace poolscope
