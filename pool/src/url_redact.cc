// redact_url(): best-effort redaction of any text that may hold a URL, for
// text that ConnectionUrl::parse() refuses (a mistyped URL, another scheme
// such as redis://, a log line with a URL in it).
//
// Without a parse to rebuild from, it masks where a secret is likely to be
// and prefers hiding too much: the user info's password of every "user:pw@"
// up to the last '@' of its word, every value of a key naming a secret, and
// every place where libpq itself would read a password in the text (found by
// walking the text as libpq does, and checked against what libpq read; when
// they disagree, everything past the scheme goes, as BadUrl shows it). What
// is masked depends on where the secrets are, never on what they hold.
// Pure functions: safe from any thread.

#include <algorithm>
#include <cctype>

#include "poolscope/pool/errors.h"
#include "poolscope/pool/url.h"
#include "url_internal.h"

namespace poolscope {
namespace detail {
namespace {

using Spans = std::vector<std::pair<std::size_t, std::size_t>>;  // [begin, end)

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
         c == '%';
}

bool names_secret(std::string_view raw_key) {
  std::string key;
  if (!percent_decode(raw_key, &key)) return raw_key.find('%') != std::string_view::npos;
  key = lowercase(key);
  for (std::string_view word : {"pass", "pwd", "secret", "token", "credential"}) {
    if (key.find(word) != std::string::npos) return true;
  }
  return false;
}

// "scheme://user:password@host" and its mistyped kin ("scheme:/", "scheme//",
// no scheme at all): in every word holding an '@', from the first ':' after
// the scheme to the last '@'.
void userinfo_spans(std::string_view text, Spans* spans) {
  for (std::size_t begin = 0; begin < text.size();) {
    std::size_t end = begin;
    while (end < text.size() && !is_space(text[end])) ++end;
    const std::string_view word = text.substr(begin, end - begin);
    const std::size_t last_at = word.rfind('@');
    if (last_at != std::string_view::npos) {
      std::size_t from = 0;
      if (const std::size_t s = word.substr(0, last_at).find("://"); s != std::string_view::npos) {
        from = s + 3;
      } else if (const std::size_t scheme = scheme_length(word); scheme > 0) {
        from = scheme;
        while (from < last_at && from < scheme + 3 && (word[from] == ':' || word[from] == '/')) {
          ++from;
        }
        if (from == scheme) from = 0;
      }
      const std::size_t colon = word.find(':', from);
      if (colon < last_at) spans->emplace_back(begin + colon + 1, begin + last_at);
    }
    begin = end + 1;
  }
}

// key=value where the key names a secret: a quoted value to its closing quote
// (or the end), a query item to its '&' (or the line's end), any other value
// to an unescaped space.
void secret_value_spans(std::string_view text, Spans* spans) {
  for (std::size_t eq = text.find('='); eq != std::string_view::npos; eq = text.find('=', eq + 1)) {
    // A '=' inside what is masked already is part of a secret: whether it
    // follows a secret-sounding word must not change what is shown.
    if (std::any_of(spans->begin(), spans->end(),
                    [eq](const auto& s) { return s.first <= eq && eq < s.second; })) {
      continue;
    }
    std::size_t key_end = eq;
    while (key_end > 0 && is_space(text[key_end - 1])) --key_end;
    std::size_t key_begin = key_end;
    while (key_begin > 0 && is_key_char(text[key_begin - 1])) --key_begin;
    if (key_begin == key_end || !names_secret(text.substr(key_begin, key_end - key_begin))) {
      continue;
    }
    const bool query = key_begin > 0 && (text[key_begin - 1] == '?' || text[key_begin - 1] == '&' ||
                                         text[key_begin - 1] == ';');
    std::size_t i = eq + 1;
    while (!query && i < text.size() && is_space(text[i])) ++i;
    const std::size_t value = i;
    if (i < text.size() && (text[i] == '\'' || text[i] == '"')) {
      const char quote = text[i++];
      while (i < text.size() && text[i] != quote) i += text[i] == '\\' ? 2 : 1;
      i = std::min(i + 1, text.size());
    } else if (query) {
      // libpq reads a query value up to the '&', spaces included.
      while (i < text.size() && text[i] != '&' && text[i] != '#' && text[i] != '\n') ++i;
    } else {
      while (i < text.size() && !is_space(text[i])) i += text[i] == '\\' ? 2 : 1;
      i = std::min(i, text.size());
    }
    if (i > value) spans->emplace_back(value, i);
  }
}

std::string mask_spans(std::string_view text, Spans spans) {
  std::sort(spans.begin(), spans.end());
  std::string out;
  std::size_t done = 0;
  for (const auto& [begin, end] : spans) {
    if (end <= done) continue;
    const std::size_t from = std::max(begin, done);
    out.append(text.substr(done, from - done));
    if (out.size() < kMask.size() || out.compare(out.size() - kMask.size(), kMask.size(), kMask)) {
      out.append(kMask);
    }
    done = end;
  }
  out.append(text.substr(done));
  return out;
}

}  // namespace
}  // namespace detail

std::string redact_url(std::string_view text) {
  try {
    return ConnectionUrl::parse(text).redacted();
  } catch (const BadUrl&) {
    // Not a URL poolscope accepts: mask what looks secret.
  }
  detail::Spans spans;
#if POOLSCOPE_WITH_POSTGRESQL
  // Where libpq reads a password, however written: when that place cannot
  // be told, everything past the scheme goes, as BadUrl shows it. First, so
  // that the guesses below skip what it covers.
  if (!detail::postgresql_secret_spans(text, &spans)) return detail::masked_url(text);
#endif
  detail::userinfo_spans(text, &spans);
  detail::secret_value_spans(text, &spans);
  std::string out = detail::mask_spans(text, std::move(spans));
  return out;
}

}  // namespace poolscope
