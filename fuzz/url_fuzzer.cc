// libFuzzer target for connection URLs. The property: the password libpq sees
// in an input never shows in any text poolscope produces for it (the redacted
// form, the BadUrl message, scrub() of a driver message holding it, and
// redact_url(); the connect string, which must hold it, aside). scrub() is
// checked directly: its output may hold no password libpq gets from the
// connect string, at any length.
//
// "The password libpq sees" is every secret (password, sslpassword) of every
// reading libpq makes of the input: the input itself, the text after its
// scheme as keyword=value pairs and as a URI, also after a mistyped scheme
// ("postgresql:/", "postgres//"), since that is what the user meant. Two checks:
//  - Differential, exact: where the password's characters can be changed in
//    the input (letters and digits rotated) so that libpq's readings change
//    in the password only, every text must come out the same. A text that
//    changes depends on the password. The one part left out is a
//    "did you mean '<keyword>'?" hint, which names one of libpq's keywords.
//  - Direct, for passwords that cannot be located so: no run of 6+ letters
//    and digits (with both) of the password appears in any text, unless the
//    input holds it outside the password too (another value, past a NUL),
//    or it is the scheme or one of poolscope's own words ("sqlite3").
// A violation prints the input and the texts, and aborts (libFuzzer keeps
// the input). Stats go to stderr at exit when POOLSCOPE_FUZZ_STATS is set.
// Single-threaded, as libFuzzer and replay_main.cc call it.

#include <libpq-fe.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "poolscope/pool/errors.h"
#include "poolscope/pool/url.h"

namespace {

struct Stats {
  unsigned long long inputs = 0, with_secret = 0, differential = 0, direct = 0;
  ~Stats() {
    if (std::getenv("POOLSCOPE_FUZZ_STATS") == nullptr) return;
    std::fprintf(stderr,
                 "url_fuzzer: %llu inputs, %llu with a password libpq reads, %llu checked by "
                 "changing the password, %llu checked directly, 0 violations\n",
                 inputs, with_secret, differential, direct);
  }
} g_stats;

struct Reading {
  bool ok = false;
  std::string error;  // libpq's message
  std::vector<std::pair<std::string, std::string>> options;
  std::vector<std::string> secrets;
};

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

Reading read(const std::string& text) {
  Reading r;
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(text.c_str(), &error);
  if (error != nullptr) {
    r.error = error;
    PQfreemem(error);
  }
  r.ok = options != nullptr;
  for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (o->dispchar[0] == '*') {
      if (o->val[0] != '\0') r.secrets.emplace_back(o->val);
    } else {
      r.options.emplace_back(o->keyword, o->val);
    }
  }
  PQconninfoFree(options);
  return r;
}

// Where the body starts: after the scheme and up to three ':' or '/' (as
// typed), or 0. Changes to the input are made only past it.
std::size_t body_start(std::string_view x) {
  std::size_t i = 0;
  while (i < x.size() && (x[i] == ' ' || x[i] == '\t')) ++i;
  const std::size_t scheme = i;
  while (i < x.size() && (is_alnum(x[i]) || x[i] == '+' || x[i] == '-' || x[i] == '.')) ++i;
  const std::size_t scheme_end = i;
  while (i < x.size() && i < scheme_end + 3 && (x[i] == ':' || x[i] == '/')) ++i;
  return scheme_end > scheme && i > scheme_end ? i : 0;
}

// The texts libpq reads: the input (up to a NUL, as libpq gets it), and
// after its scheme, as keyword=value pairs and as a URI.
std::vector<std::string> reading_texts(std::string_view x) {
  const std::string whole(x.substr(0, x.find('\0')));
  std::vector<std::string> out = {whole};
  std::string lower;
  for (char c : whole.substr(0, 10)) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  // A SQLite URL that poolscope takes never reaches libpq.
  if (lower.starts_with("sqlite://") || lower.starts_with("sqlite3://")) return out;
  const std::size_t body = body_start(whole);
  if (body != 0) {
    out.push_back(whole.substr(body));
    const std::string uri = "postgresql://" + whole.substr(body);
    if (uri != whole) out.push_back(uri);
  }
  return out;
}

std::vector<Reading> readings(std::string_view x) {
  std::vector<Reading> out;
  for (const std::string& text : reading_texts(x)) out.push_back(read(text));
  return out;
}

std::vector<std::string> secrets_of(const std::vector<Reading>& rs) {
  std::vector<std::string> out;
  for (const Reading& r : rs) {
    for (const std::string& s : r.secrets) {
      if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    }
  }
  return out;
}

[[noreturn]] void violation(std::string_view x, const std::string& why,
                            const std::vector<std::string>& shown);

// Everything poolscope shows for x but scrub(), checked here on a driver
// message holding the secrets libpq gets in the connect string.
std::vector<std::string> texts(std::string_view x) {
  std::vector<std::string> out = {poolscope::redact_url(x)};
  try {
    const poolscope::ConnectionUrl url = poolscope::ConnectionUrl::parse(x);
    out.push_back(url.redacted());
    // scrub() masks the password wherever it is, so its output depends on
    // the password by design: checked here, directly, at any length.
    if (url.backend() == poolscope::Backend::kPostgreSQL) {
      for (const std::string& s : read(url.connect_string()).secrets) {
        const std::string scrubbed =
            url.scrub("FATAL: password authentication failed for " + s + " (" + s + s + ")");
        if (scrubbed.find(s) != std::string::npos) violation(x, "scrub() leaves it", {scrubbed});
      }
    }
  } catch (const poolscope::BadUrl& e) {
    out.push_back(e.what());
  }
  return out;
}

// text without its "did you mean '<keyword>'?" hints: "; did you mean 'x'?"
// (with " (keywords are lower case)") and " (did you mean 'x'?)".
std::string without_hints(std::string text) {
  for (std::size_t at = text.find("did you mean '"); at != std::string::npos;
       at = text.find("did you mean '")) {
    std::size_t end = text.find('?', at);
    end = end == std::string::npos ? text.size() : end + 1;
    std::size_t begin = at;
    if (begin >= 2 && text.compare(begin - 2, 2, " (") == 0 && end < text.size() &&
        text[end] == ')') {
      begin -= 2;
      ++end;
    } else if (begin >= 2 && text.compare(begin - 2, 2, "; ") == 0) {
      begin -= 2;
      const std::string lower = " (keywords are lower case)";
      if (text.compare(end, lower.size(), lower) == 0) end += lower.size();
    }
    text.erase(begin, end - begin);
  }
  return text;
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  return out;
}

[[noreturn]] void violation(std::string_view x, const std::string& why,
                            const std::vector<std::string>& shown) {
  std::fprintf(stderr, "url_fuzzer: VIOLATION: %s\n  input: %s\n", why.c_str(),
               printable(x).c_str());
  for (const std::string& t : shown) std::fprintf(stderr, "  text:  %s\n", printable(t).c_str());
  std::abort();
}

bool rotatable(std::string_view x, std::size_t i) {
  // The two characters after a '%' stay, so that escapes stay what they are.
  return is_alnum(x[i]) && !(i >= 1 && x[i - 1] == '%') && !(i >= 2 && x[i - 2] == '%');
}

char rotate(char c) {
  if (c >= 'a' && c <= 'z') return c == 'z' ? 'a' : static_cast<char>(c + 1);
  if (c >= 'A' && c <= 'Z') return c == 'Z' ? 'A' : static_cast<char>(c + 1);
  if (c >= '0' && c <= '9') return c == '9' ? '0' : static_cast<char>(c + 1);
  return c;
}

// x with the letters and digits at `at` rotated (a->b, z->a, 9->0).
std::string rotated(std::string_view x, const std::vector<std::size_t>& at) {
  std::string y(x);
  for (std::size_t i : at) y[i] = rotate(y[i]);
  return y;
}

// Whether libpq refuses b where it refuses a: the same message, or the one
// whose quoted text is a's rotated (the failure lies in the changed text).
bool same_failure(const Reading& a, const Reading& b) {
  if (a.error == b.error) return true;
  std::string expected = a.error;
  bool quoted = false;
  for (char& c : expected) {
    if (c == '"') quoted = !quoted;
    if (quoted) c = rotate(c);
  }
  return expected == b.error;
}

// Whether reading b is reading a with every secret changed and nothing else.
bool only_secrets_differ(const Reading& a, const Reading& b) {
  if (a.ok != b.ok || a.options != b.options || !same_failure(a, b) ||
      a.secrets.size() != b.secrets.size()) {
    return false;
  }
  for (std::size_t j = 0; j < a.secrets.size(); ++j) {
    if (a.secrets[j] == b.secrets[j]) return false;
  }
  return true;
}

// Spans of x that may hold the secret's characters: where it is written as
// is, then (escaped or encoded) between characters that end a value, the
// lengths closest to the secret's first.
std::vector<std::pair<std::size_t, std::size_t>> candidate_spans(std::string_view x,
                                                                 const std::string& secret) {
  const std::size_t from = body_start(x);
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (std::size_t at = x.find(secret, from); at != std::string_view::npos && spans.size() < 4;
       at = x.find(secret, at + 1)) {
    spans.emplace_back(at, at + secret.size());
  }
  const std::string_view stops = " \t\n'\"@&=:/?,#";
  std::vector<std::size_t> starts = {from}, ends;
  for (std::size_t i = from; i < x.size(); ++i) {
    if (stops.find(x[i]) != std::string_view::npos) {
      starts.push_back(i + 1);
      ends.push_back(i);
    }
  }
  ends.push_back(x.size());
  std::vector<std::pair<std::size_t, std::size_t>> structured;
  for (std::size_t s : starts) {
    for (std::size_t e : ends) {
      if (e > s && e - s >= secret.size() && e - s <= 3 * secret.size() + 2) {
        structured.emplace_back(s, e);
      }
    }
  }
  auto distance = [&secret](const std::pair<std::size_t, std::size_t>& span) {
    return span.second - span.first - secret.size();
  };
  std::stable_sort(structured.begin(), structured.end(),
                   [&](const auto& a, const auto& b) { return distance(a) < distance(b); });
  if (structured.size() > 24) structured.resize(24);
  spans.insert(spans.end(), structured.begin(), structured.end());
  return spans;
}

// A change of x's password that libpq reads as a change of the password
// only (reading `which` first, the cheap rejection): then every text must
// come out the same.
bool differential(std::string_view x, const std::vector<Reading>& rs, std::size_t which,
                  const std::string& secret, const std::vector<std::string>& shown) {
  int budget = 160;  // libpq parses per secret, then the direct check instead
  for (const auto& [begin, end] : candidate_spans(x, secret)) {
    // Only the characters that libpq takes into the password: rotating any
    // other (a host that a later host= overrides) would change what poolscope
    // rightly shows.
    std::vector<std::size_t> at;
    for (std::size_t i = begin; i < end; ++i) {
      if (!rotatable(x, i)) continue;
      if (--budget < 0) return false;
      const Reading one = read(reading_texts(rotated(x, {i}))[which]);
      if (one.secrets.size() == rs[which].secrets.size() && one.secrets != rs[which].secrets) {
        at.push_back(i);
      }
    }
    if (at.empty()) continue;
    const std::string y = rotated(x, at);
    const std::vector<Reading> ry = readings(y);
    if (ry.size() != rs.size() || !only_secrets_differ(rs[which], ry[which])) continue;
    bool others = true;
    for (std::size_t i = 0; i < rs.size() && others; ++i) {
      others = rs[i].secrets.empty() ? (rs[i].ok == ry[i].ok && rs[i].options == ry[i].options &&
                                        same_failure(rs[i], ry[i]) && ry[i].secrets.empty())
                                     : only_secrets_differ(rs[i], ry[i]);
    }
    if (!others) continue;
    const std::vector<std::string> shown_y = texts(y);
    for (std::size_t i = 0; i < shown.size(); ++i) {
      if (without_hints(shown[i]) != without_hints(shown_y[i])) {
        violation(x, "a text depends on the password (changed: " + printable(y) + ")",
                  {shown[i], shown_y[i]});
      }
    }
    return true;
  }
  return false;
}

// Runs of 6+ letters and digits, with both, of the secret.
std::vector<std::string> telling_pieces(const std::string& secret) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < secret.size();) {
    std::size_t j = i;
    while (j < secret.size() && is_alnum(secret[j])) ++j;
    const std::string run = secret.substr(i, j - i);
    const bool digit =
        std::any_of(run.begin(), run.end(), [](char c) { return c >= '0' && c <= '9'; });
    const bool letter = std::any_of(run.begin(), run.end(), [](char c) { return c > '9'; });
    if (run.size() >= 6 && digit && letter) out.push_back(run);
    i = j + 1;
  }
  return out;
}

void direct(std::string_view x, const Reading& from, const std::string& secret,
            const std::vector<std::string>& shown) {
  // What may show: the same reading's other values, and what follows a NUL
  // (libpq never sees it).
  // The scheme, shown by design, and poolscope's own words with a digit
  // ("known: sqlite, sqlite3, ...").
  std::string explained = std::string(x.substr(0, body_start(x))) + "\nsqlite3\n";
  for (const auto& [k, v] : from.options) explained += k + "\n" + v + "\n";
  if (const std::size_t nul = x.find('\0'); nul != std::string_view::npos) {
    explained += x.substr(nul);
  }
  auto count = [](std::string_view text, const std::string& piece) {
    std::size_t n = 0;
    for (std::size_t at = text.find(piece); at != std::string_view::npos;
         at = text.find(piece, at + 1)) {
      ++n;
    }
    return n;
  };
  for (const std::string& piece : telling_pieces(secret)) {
    if (explained.find(piece) != std::string::npos) continue;
    // Written in the input outside the password too: it may show from there.
    if (count(x, piece) > count(secret, piece)) continue;
    for (const std::string& t : shown) {
      if (t.find(piece) != std::string::npos) violation(x, "shows '" + piece + "'", shown);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  const std::string_view x(reinterpret_cast<const char*>(data), size);
  ++g_stats.inputs;
  const std::vector<Reading> rs = readings(x);
  const std::vector<std::string> secrets = secrets_of(rs);
  const std::vector<std::string> shown = texts(x);  // crashes and UB count too
  if (!secrets.empty()) ++g_stats.with_secret;
  for (std::size_t which = 0; which < rs.size(); ++which) {
    for (const std::string& secret : rs[which].secrets) {
      if (differential(x, rs, which, secret, shown)) {
        ++g_stats.differential;
      } else {
        ++g_stats.direct;
        direct(x, rs[which], secret, shown);
      }
    }
  }
  return 0;
}
