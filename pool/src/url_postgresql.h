// PostgreSQL URL parsing, shared by url_postgresql.cc (reading through libpq,
// rebuilding) and url_postgresql_walk.cc (saying where a text libpq
// refuses goes wrong). Private to poolscope::pool, compiled only with
// PostgreSQL support. Pure functions: safe from any thread.

#pragma once

#if POOLSCOPE_WITH_POSTGRESQL

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "url_internal.h"

namespace poolscope::detail {

// libpq's connection keywords, and those it marks as secrets (dispchar "*":
// password, sslpassword), from libpq itself.
const std::vector<std::string>& pg_keywords();
bool is_pg_keyword(std::string_view key);
bool is_pg_secret(std::string_view key);

// The text forms of libpq's options (url_postgresql_show.cc): "a,b" as its
// items; the option of that keyword or null; a value as it goes between
// libpq's single quotes; the redacted URI and keyword=value forms (hidden:
// keywords shown as "***" too, all of them when hide_all); and every form a
// secret takes in a message (as is, quoted, percent-encoded), for scrub().
std::vector<std::string> split_list(const std::string& s);
const std::string* find_option(const UrlParams& options, std::string_view key);
std::string libpq_escape(std::string_view value);
std::string uri_text(const UrlParams& options);
std::string keyword_value_text(const UrlParams& options, const std::vector<std::string>& hidden,
                               bool hide_all);
void add_secret_forms(const std::string& secret, std::vector<std::string>* out);

// What libpq's URI parser (conninfo_uri_parse_options in fe-connect.c) makes
// of "postgresql://" + body: where each part lies in body. Used only to say
// where a text goes wrong, never to read a value: values come from libpq.
struct Span {
  std::size_t begin = 0;
  std::size_t end = 0;
};

struct UriLayout {
  bool has_userinfo = false;
  Span user;
  bool has_password = false;
  Span password;
  std::size_t userinfo_end = 0;  // index after the '@', 0 without user info
  struct Netloc {
    Span host;
    bool has_port = false;
    Span port;
  };
  std::vector<Netloc> netlocs;
  bool has_dbname = false;
  Span dbname;
  bool has_query = false;
  Span query;  // after the '?'
};

// Throws UrlProblem where libpq's splitting stops (an unclosed IPv6 '[', ...).
// offset: body's 0-based index in the whole URL, for positions.
UriLayout uri_layout(std::string_view body, std::size_t offset);

// Report the first place libpq's keyword=value or URI grammar refuses body,
// in the order libpq checks, as a UrlProblem; a generic one when none is
// found.
[[noreturn]] void diagnose_keyword_value(std::string_view body, std::size_t offset);
[[noreturn]] void diagnose_uri(std::string_view body, std::size_t offset);

// Adds to *spans (as offset + the index in body) where libpq reads a secret
// in body, read as keyword=value pairs, or as_uri as "postgresql://" + body.
// secrets: what libpq read, (keyword, value). False, adding nothing useful,
// when the walk does not find exactly those values.
bool secret_spans(std::string_view body, std::size_t offset, bool as_uri, const UrlParams& secrets,
                  std::vector<Span>* spans);

// Adds to *keywords those of body, read as keyword=value pairs, whose value
// overlaps one of spans (indices in body). False when the walk cannot read
// body as libpq does.
bool keywords_over(std::string_view body, const std::vector<Span>& spans,
                   std::vector<std::string>* keywords);

}  // namespace poolscope::detail

#endif  // POOLSCOPE_WITH_POSTGRESQL
