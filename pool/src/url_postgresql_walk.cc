// Walking a PostgreSQL URL the way libpq's parsers do (conninfo_parse,
// conninfo_uri_parse_options and conninfo_uri_parse_params in fe-connect.c),
// with positions: to say where a text libpq refuses goes wrong, and where in
// a text poolscope refuses libpq would read a secret, for redact_url().
//
// The walk never decides a value: a secret's span counts only when what the
// walk finds there is exactly what libpq read, and a message never holds any
// of the text, only a position, the component and a known keyword. Pure
// functions: safe from any thread.

#if POOLSCOPE_WITH_POSTGRESQL

#include <algorithm>

#include "url_postgresql.h"

namespace poolscope::detail {
namespace {

constexpr std::string_view kEscapeHint =
    "a '%' starts %XX (write '%' itself as %25; %00 is not allowed)";

// A keyword and its value as a walk finds them: spans in the text walked,
// and the value as libpq stores it (unescaped or percent-decoded).
struct Item {
  Span key;
  Span value;
  std::string keyword;  // after libpq's renames
  std::string text;
};

// libpq renames these before looking them up.
std::string libpq_keyword(std::string key, std::string_view value) {
  if (key == "requiressl") return "sslmode";
  if (key == "ssl" && value == "true") return "sslmode";
  return key;
}

std::string decoded(std::string_view body, Span span, std::size_t offset,
                    const std::string& component) {
  std::string out;
  std::size_t bad = 0;
  if (!percent_decode(body.substr(span.begin, span.end - span.begin), &out, &bad)) {
    url_problem("a malformed %-escape in the " + component, offset + span.begin + bad + 1,
                std::string(kEscapeHint));
  }
  return out;
}

std::string unknown_keyword_hint(std::string_view key) {
  std::string hint = did_you_mean(key, pg_keywords());
  if (hint.empty()) return {};
  return hint.substr(2, hint.size() - 3) +
         (lowercase(key) == key ? "" : " (keywords are lower case)");
}

// keyword=value text (conninfo_parse). Throws at the first problem, in
// libpq's order: each pair is read, then its keyword looked up.
std::vector<Item> walk_keyword_value(std::string_view body, std::size_t offset) {
  std::vector<Item> items;
  const std::size_t n = body.size();
  for (std::size_t i = 0; i < n;) {
    if (is_space(body[i])) {
      ++i;
      continue;
    }
    Item item;
    item.key.begin = i;
    while (i < n && body[i] != '=' && !is_space(body[i])) ++i;
    item.key.end = i;
    while (i < n && is_space(body[i])) ++i;
    if (i >= n || body[i] != '=') {
      url_problem("no '=' after a keyword", offset + item.key.begin + 1,
                  "write keyword=value pairs separated by spaces, a value holding spaces "
                  "in single quotes");
    }
    ++i;
    while (i < n && is_space(body[i])) ++i;
    item.value.begin = i;
    const bool quoted = i < n && body[i] == '\'';
    for (i += quoted ? 1 : 0;; ++i) {
      if (i >= n) {
        if (!quoted) break;
        url_problem("a quoted value has no closing quote", offset + item.value.begin + 1,
                    "end it with ' (write a quote inside it as \\')");
      }
      if (body[i] == '\\') {
        if (i + 1 < n) item.text += body[++i];
      } else if (quoted && body[i] == '\'') {
        ++i;
        break;
      } else if (!quoted && is_space(body[i])) {
        break;
      } else {
        item.text += body[i];
      }
    }
    item.value.end = i;
    const std::string key(body.substr(item.key.begin, item.key.end - item.key.begin));
    if (key.empty()) url_problem("a '=' with no keyword before it", offset + item.key.begin + 1);
    item.keyword = libpq_keyword(key, "");
    if (!is_pg_keyword(item.keyword)) {
      url_problem("an unknown keyword", offset + item.key.begin + 1, unknown_keyword_hint(key));
    }
    items.push_back(std::move(item));
  }
  return items;
}

// The query after the '?' (conninfo_uri_parse_params).
std::vector<Item> walk_query(std::string_view body, Span query, std::size_t offset) {
  std::vector<Item> items;
  std::size_t p = query.begin;
  while (p < query.end) {
    const std::size_t begin = p;
    std::size_t eq = std::string_view::npos;
    for (;; ++p) {
      if (p < query.end && body[p] == '=') {
        if (eq != std::string_view::npos) {
          url_problem("a second '=' in a query parameter", offset + p + 1,
                      "percent-encode '=' in a value as %3D");
        }
        eq = p;
      } else if (p == query.end || body[p] == '&') {
        if (eq == std::string_view::npos) {
          url_problem("a query parameter without '='", offset + begin + 1,
                      "write ?key=value&key=value");
        }
        break;
      }
    }
    Item item{{begin, eq}, {eq + 1, p}, {}, {}};
    if (p < query.end) ++p;  // past the '&'
    const std::string key = decoded(body, item.key, offset, "name of a query parameter");
    item.text = decoded(body, item.value, offset, "value of a query parameter");
    item.keyword = libpq_keyword(key, item.text);
    if (!is_pg_keyword(item.keyword)) {
      url_problem("an unknown query parameter", offset + begin + 1, unknown_keyword_hint(key));
    }
    items.push_back(std::move(item));
  }
  return items;
}

// Every keyword and value of "postgresql://" + body, in the order libpq
// stores them (the user info, then the query; host, port and dbname, which
// hold no secret, only checked).
std::vector<Item> walk_uri(std::string_view body, std::size_t offset) {
  const UriLayout layout = uri_layout(body, offset);
  std::vector<Item> items;
  if (layout.has_userinfo) {
    decoded(body, layout.user, offset, "user name");
    if (layout.has_password) {
      Item password{{}, layout.password, "password", {}};
      password.text = decoded(body, layout.password, offset, "password");
      if (!password.text.empty()) items.push_back(std::move(password));
    }
  }
  for (const UriLayout::Netloc& netloc : layout.netlocs) decoded(body, netloc.host, offset, "host");
  for (const UriLayout::Netloc& netloc : layout.netlocs) {
    if (netloc.has_port) decoded(body, netloc.port, offset, "port");
  }
  if (layout.has_dbname) decoded(body, layout.dbname, offset, "database name");
  if (layout.has_query) {
    for (Item& item : walk_query(body, layout.query, offset)) items.push_back(std::move(item));
  }
  return items;
}

}  // namespace

UriLayout uri_layout(std::string_view body, std::size_t offset) {
  UriLayout layout;
  const std::size_t n = body.size();
  auto at = [&](std::size_t i) { return i < n ? body[i] : '\0'; };
  std::size_t p = 0;
  const std::size_t look = std::min(body.find_first_of("@/"), n);
  if (at(look) == '@') {
    layout.has_userinfo = true;
    const std::size_t user_end = body.find_first_of(":@");
    layout.user = {0, user_end};
    if (body[user_end] == ':') {
      layout.has_password = true;
      layout.password = {user_end + 1, look};
    }
    p = look + 1;
    layout.userinfo_end = p;
  }
  char prev = '\0';
  for (;;) {
    UriLayout::Netloc netloc;
    if (at(p) == '[') {
      const std::size_t close = body.find(']', p + 1);
      if (close == std::string_view::npos) {
        url_problem("no ']' closing the IPv6 address", offset + p + 1);
      }
      if (close == p + 1) url_problem("an empty IPv6 address", offset + p + 1);
      netloc.host = {p + 1, close};
      p = close + 1;
      if (p < n && std::string_view(":/?,").find(body[p]) == std::string_view::npos) {
        url_problem("unexpected character after an IPv6 address", offset + p + 1,
                    "expected ':', '/', '?' or ','");
      }
    } else {
      const std::size_t end = std::min(body.find_first_of(":/?,", p), n);
      netloc.host = {p, end};
      p = end;
    }
    prev = at(p);
    if (prev == ':') {
      const std::size_t end = std::min(body.find_first_of("/?,", p + 1), n);
      netloc.has_port = true;
      netloc.port = {p + 1, end};
      p = end;
      prev = at(p);
    }
    layout.netlocs.push_back(netloc);
    if (prev != ',') break;
    ++p;
  }
  if (prev != '\0' && prev != '?') {
    const std::size_t end = std::min(body.find('?', p + 1), n);
    layout.has_dbname = true;
    layout.dbname = {p + 1, end};
    p = end;
    prev = at(p);
  }
  if (prev != '\0') {
    layout.has_query = true;
    layout.query = {p + 1, n};
  }
  return layout;
}

void diagnose_keyword_value(std::string_view body, std::size_t offset) {
  walk_keyword_value(body, offset);
  url_problem("libpq cannot read it as keyword=value pairs");
}

void diagnose_uri(std::string_view body, std::size_t offset) {
  walk_uri(body, offset);
  url_problem("libpq cannot read it as a connection URI");
}

bool secret_spans(std::string_view body, std::size_t offset, bool as_uri, const UrlParams& secrets,
                  std::vector<Span>* spans) {
  std::vector<Item> items;
  try {
    items = as_uri ? walk_uri(body, offset) : walk_keyword_value(body, offset);
  } catch (const UrlProblem&) {
    return false;  // libpq read it: the walk disagrees
  }
  for (const auto& [keyword, value] : secrets) {
    const auto last = std::find_if(items.rbegin(), items.rend(),
                                   [&](const Item& item) { return item.keyword == keyword; });
    if (last == items.rend() || last->text != value) return false;
  }
  for (const Item& item : items) {
    if (is_pg_secret(item.keyword))
      spans->push_back({offset + item.value.begin, offset + item.value.end});
  }
  return true;
}

bool keywords_over(std::string_view body, const std::vector<Span>& spans,
                   std::vector<std::string>* keywords) {
  std::vector<Item> items;
  try {
    items = walk_keyword_value(body, 0);
  } catch (const UrlProblem&) {
    return false;
  }
  for (const Item& item : items) {
    const bool over = std::any_of(spans.begin(), spans.end(), [&](const Span& s) {
      return item.value.begin < s.end && s.begin < item.value.end;
    });
    if (over) keywords->push_back(item.keyword);
  }
  return true;
}

}  // namespace poolscope::detail

#endif  // POOLSCOPE_WITH_POSTGRESQL
