// PostgreSQL URLs, read by libpq itself (PQconninfoParse).
//
// The body after "postgresql://" is either libpq keyword=value text (SOCI's
// form) or the rest of a libpq URI. Both readings are asked of libpq; the one
// that stands is the one libpq accepts under poolscope's stricter URI rules
// (no raw space, control character or '#', no '@' past the user info, no '='
// in a host name), a URI when both stand unless only the keyword=value one has
// a password; two readings with different passwords are refused. Everything
// after that comes from libpq's options: the connect string (every value
// single-quoted), the secrets to hide (the options libpq marks "*"), and the
// redacted form, rebuilt with the secrets as "***" so no text of the input is
// echoed. A keyword=value value that the URI reading would take for a password
// (user=x:secret@db sslmode=require) is hidden too, found by where it lies.
// Pure functions: safe from any thread (PQconninfoParse is thread-safe).

#if POOLSCOPE_WITH_POSTGRESQL

#include "url_postgresql.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <stdexcept>

namespace poolscope::detail {
namespace {

struct Keywords {
  std::vector<std::string> all;
  std::vector<std::string> secret;
};

const Keywords& keywords() {
  static const Keywords keywords = [] {
    Keywords k{{}, {"password"}};
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse("", &error);  // every option, none set
    PQfreemem(error);
    for (const PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
      k.all.emplace_back(o->keyword);
      if (o->dispchar != nullptr && o->dispchar[0] == '*' && k.all.back() != "password") {
        k.secret.emplace_back(o->keyword);
      }
    }
    PQconninfoFree(options);
    return k;
  }();
  return keywords;
}

// One reading of a text by libpq: the options it set, in libpq's order, or
// ok == false when libpq refuses the text. libpq's message is dropped unread:
// it quotes the text.
struct Reading {
  bool ok = false;
  UrlParams options;

  const std::string* find(std::string_view key) const {
    for (const auto& [k, v] : options) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  std::vector<std::string> secrets() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : options) {
      if (is_pg_secret(k) && !v.empty()) out.push_back(v);
    }
    return out;
  }
};

Reading libpq_read(std::string_view text) {
  const std::string s(text.substr(0, text.find('\0')));
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(s.c_str(), &error);
  PQfreemem(error);
  Reading r;
  r.ok = options != nullptr;
  for (const PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
    if (o->val != nullptr) r.options.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(options);
  return r;
}

bool has_uri_prefix(std::string_view s) {
  return s.starts_with("postgresql://") || s.starts_with("postgres://");
}

// Whether body starts like keyword=value text, for choosing which grammar's
// diagnosis to give when neither reading stands.
bool looks_like_keyword_value(std::string_view body) {
  std::size_t i = 0;
  while (i < body.size() && is_space(body[i])) ++i;
  const std::size_t word = i;
  while (i < body.size() && (std::isalnum(static_cast<unsigned char>(body[i])) || body[i] == '_')) {
    ++i;
  }
  const std::size_t word_end = i;
  while (i < body.size() && is_space(body[i])) ++i;
  if (word_end == word) return false;
  if (i < body.size() && body[i] == '=') return true;
  return (word_end == body.size() || is_space(body[word_end])) &&
         is_pg_keyword(lowercase(body.substr(word, word_end - word)));
}

// poolscope's rules on top of libpq's URI grammar, for a text libpq accepts:
// each refuses a mistyped URL that would otherwise connect with, and show,
// what the user did not mean (the tail of a password with a raw '@', a
// keyword=value text read as a host name...).
std::optional<UrlProblem> check_uri(std::string_view body, std::size_t offset) {
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (is_space(body[i]) || is_control(body[i])) {
      return UrlProblem{"a space or control character in a URI", offset + i + 1,
                        "percent-encode it (a space is %20)"};
    }
    if (body[i] == '#') {
      return UrlProblem{"a '#'", offset + i + 1,
                        "fragments are not supported; percent-encode it (%23)"};
    }
  }
  UriLayout layout;
  try {
    layout = uri_layout(body, offset);
  } catch (const UrlProblem& problem) {
    return problem;
  }
  const std::size_t query = layout.has_query ? layout.query.begin - 1 : body.size();
  for (std::size_t i = layout.userinfo_end; i < query; ++i) {
    if (body[i] == '@') {
      return UrlProblem{"an '@' after the user info", offset + i + 1,
                        "percent-encode '@' in a user name or password as %40"};
    }
  }
  for (const UriLayout::Netloc& netloc : layout.netlocs) {
    for (std::size_t i = netloc.host.begin; i < netloc.host.end; ++i) {
      if (body[i] == '=') {
        return UrlProblem{"a '=' in a host name", offset + i + 1,
                          "keyword=value pairs are separated by spaces (host=db dbname=app)"};
      }
    }
  }
  return std::nullopt;
}

enum class Form { kUri, kKeywordValue };

struct Choice {
  Form form;
  Reading reading;
  Reading other;  // the reading not taken, when it is a keyword=value one's URI
};

Choice choose(std::string_view body, std::size_t offset) {
  Reading uri = libpq_read("postgresql://" + std::string(body));
  std::optional<UrlProblem> uri_problem;
  if (uri.ok) uri_problem = check_uri(body, offset);
  Reading kv;
  if (!has_uri_prefix(body)) kv = libpq_read(body);
  const bool uri_stands = uri.ok && !uri_problem;
  if (uri_stands && kv.ok) {
    const std::vector<std::string> su = uri.secrets();
    const std::vector<std::string> sk = kv.secrets();
    if (!su.empty() && !sk.empty() && su != sk) {
      url_problem("it reads both as a URI and as keyword=value pairs, with different passwords", 0,
                  "percent-encode '=' in a URI's user name (%3D), or separate keyword=value "
                  "pairs with spaces");
    }
    if (su.empty() && !sk.empty()) return {Form::kKeywordValue, std::move(kv), std::move(uri)};
    return {Form::kUri, std::move(uri), {}};
  }
  if (uri_stands) return {Form::kUri, std::move(uri), {}};
  if (kv.ok) return {Form::kKeywordValue, std::move(kv), std::move(uri)};
  if (looks_like_keyword_value(body)) diagnose_keyword_value(body, offset);
  if (uri_problem) throw *uri_problem;
  diagnose_uri(body, offset);
}

bool whole_number(const std::string& s, unsigned max) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size() && value <= max;
}

// What libpq would refuse only when connecting, refused now with a message
// that names the component and never its value.
void validate(const Reading& r) {
  const std::string* host = r.find("host");
  const std::string* hostaddr = r.find("hostaddr");
  const std::size_t hosts = host       ? split_list(*host).size()
                            : hostaddr ? split_list(*hostaddr).size()
                                       : 1;
  if (const std::string* port = r.find("port")) {
    const std::vector<std::string> ports = split_list(*port);
    for (std::size_t i = 0; i < ports.size(); ++i) {
      if (!ports[i].empty() && (!whole_number(ports[i], 65535) ||
                                ports[i].find_first_not_of('0') == std::string::npos)) {
        url_problem((ports.size() > 1
                         ? "port " + std::to_string(i + 1) + " of " + std::to_string(ports.size())
                         : std::string("the port")) +
                    " is not a number from 1 to 65535");
      }
    }
    if (ports.size() > 1 && ports.size() != hosts) {
      url_problem(std::to_string(ports.size()) + " ports for " + std::to_string(hosts) + " hosts",
                  0, "give one port for every host, or one per host");
    }
  }
  if (host && hostaddr && split_list(*host).size() != split_list(*hostaddr).size()) {
    url_problem("the host and hostaddr lists differ in length");
  }
  if (const std::string* t = r.find("connect_timeout"); t && !whole_number(*t, 2147483647)) {
    url_problem("the value of 'connect_timeout' is not a whole number of seconds");
  }
  struct Choices {
    std::string_view key;
    std::vector<std::string_view> allowed;
  };
  static const std::vector<Choices> kChoices = {
      {"sslmode", {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}},
      {"gssencmode", {"disable", "prefer", "require"}},
      {"channel_binding", {"disable", "prefer", "require"}},
      {"target_session_attrs",
       {"any", "read-write", "read-only", "primary", "standby", "prefer-standby"}}};
  for (const Choices& c : kChoices) {
    const std::string* value = r.find(c.key);
    if (!value || std::find(c.allowed.begin(), c.allowed.end(), *value) != c.allowed.end()) {
      continue;
    }
    std::string list;
    for (std::string_view a : c.allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    url_problem("the value of '" + std::string(c.key) + "' is not one of " + list);
  }
}

}  // namespace

const std::vector<std::string>& pg_keywords() { return keywords().all; }

bool is_pg_keyword(std::string_view key) {
  const auto& all = keywords().all;
  return std::find(all.begin(), all.end(), key) != all.end();
}

bool is_pg_secret(std::string_view key) {
  const auto& secret = keywords().secret;
  return std::find(secret.begin(), secret.end(), key) != secret.end();
}

ParsedUrl parse_postgresql(std::string_view scheme, std::string_view body, std::size_t offset) {
  const Choice choice = choose(body, offset);
  validate(choice.reading);
  ParsedUrl parsed;
  parsed.params = choice.reading.options;
  for (const std::string& secret : choice.reading.secrets()) {
    add_secret_forms(secret, &parsed.secrets);
  }
  if (choice.form == Form::kUri) {
    parsed.redacted = std::string(scheme) + "://" + uri_text(choice.reading.options);
    return parsed;
  }
  // Read as a URI, the same text may hold a password (user=x:secret@db): the
  // values that overlap it are not shown either, found by where they lie, so
  // that what is hidden never depends on what a password holds.
  std::vector<std::string> hidden;
  bool hide_all = false;
  if (choice.other.ok) {
    UrlParams secrets;
    for (const auto& [k, v] : choice.other.options) {
      if (is_pg_secret(k) && !v.empty()) secrets.emplace_back(k, v);
    }
    std::vector<Span> spans;
    if (!secrets.empty()) {
      hide_all =
          !secret_spans(body, 0, true, secrets, &spans) || !keywords_over(body, spans, &hidden);
    }
  }
  parsed.redacted =
      std::string(scheme) + "://" + keyword_value_text(choice.reading.options, hidden, hide_all);
  // A driver may quote them (a user name): scrub() hides them as well.
  for (const auto& [k, v] : choice.reading.options) {
    const bool hide = hide_all || std::find(hidden.begin(), hidden.end(), k) != hidden.end();
    if (hide && !v.empty()) add_secret_forms(v, &parsed.secrets);
  }
  return parsed;
}

bool postgresql_secret_spans(std::string_view text,
                             std::vector<std::pair<std::size_t, std::size_t>>* spans) {
  text = text.substr(0, text.find('\0'));  // what libpq would be given
  std::vector<Span> found;
  // One reading: body (from offset in text) as a URI or as keyword=value pairs.
  auto read = [&](std::size_t offset, std::size_t end, bool as_uri) {
    const std::string_view body = text.substr(offset, end - offset);
    // libpq reads such "pairs" as a URI: the reading after its "://" is that.
    if (!as_uri && has_uri_prefix(body)) return true;
    const Reading r = libpq_read(as_uri ? "postgresql://" + std::string(body) : std::string(body));
    UrlParams secrets;
    for (const auto& [k, v] : r.options) {
      if (is_pg_secret(k) && !v.empty()) secrets.emplace_back(k, v);
    }
    return secrets.empty() || secret_spans(body, offset, as_uri, secrets, &found);
  };
  auto read_both = [&](std::size_t offset, std::size_t end) {
    const bool as_pairs = read(offset, end, false);
    return read(offset, end, true) && as_pairs;
  };
  bool agreed = true;
  if (has_uri_prefix(text)) {
    agreed &= read(text.find("://") + 3, text.size(), true);
  } else {
    agreed &= read(0, text.size(), false);
  }
  // After a scheme however mistyped ("postgresql:/", "postgres//"), and
  // after every "://", up to the next space and to the end.
  std::size_t start = 0;
  while (start < text.size() && is_space(text[start])) ++start;
  std::size_t scheme_end = start;  // leniently: letters first or not
  while (scheme_end < text.size() &&
         (std::isalnum(static_cast<unsigned char>(text[scheme_end])) ||
          std::string_view("+-.").find(text[scheme_end]) != std::string_view::npos)) {
    ++scheme_end;
  }
  std::size_t body = scheme_end;
  while (body < text.size() && body < scheme_end + 3 && (text[body] == ':' || text[body] == '/')) {
    ++body;
  }
  if (scheme_end > start && body > scheme_end) agreed &= read_both(body, text.size());
  for (std::size_t at = text.find("://"); at != std::string_view::npos;
       at = text.find("://", at + 1)) {
    const std::size_t end =
        std::find_if(text.begin() + at + 3, text.end(), is_space) - text.begin();
    agreed &= read_both(at + 3, end);
    if (end != text.size()) agreed &= read_both(at + 3, text.size());
  }
  for (const Span& span : found) spans->emplace_back(span.begin, span.end);
  return agreed;
}

}  // namespace poolscope::detail

#endif  // POOLSCOPE_WITH_POSTGRESQL
