// The text forms of libpq's options: the connect string handed to SOCI, and
// the redacted forms rebuilt from a parse, in the URI or the keyword=value
// form, with every secret as "***". Built only from libpq's values, never
// from the input. Pure functions: safe from any thread.

#if POOLSCOPE_WITH_POSTGRESQL

#include <algorithm>
#include <stdexcept>

#include "url_postgresql.h"

namespace poolscope::detail {
namespace {

std::string shown_value(const std::string& key, const std::string& value, bool hide = false) {
  if ((hide || is_pg_secret(key)) && !value.empty()) return std::string(kMask);
  const bool plain = !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
    return is_space(c) || c == '\'' || c == '\\';
  });
  if (plain) return value;
  std::string out(1, '\'');  // appended: GCC 12 -O3 misreads "'" + s as overlapping
  out += libpq_escape(value);
  out += '\'';
  return out;
}

std::string netloc_text(const UrlParams& options) {
  const std::string* host = find_option(options, "host");
  const std::string* port = find_option(options, "port");
  std::vector<std::string> hosts = host ? split_list(*host) : std::vector<std::string>();
  std::vector<std::string> ports = port ? split_list(*port) : std::vector<std::string>();
  if (ports.size() == 1 && hosts.size() > 1) ports.assign(hosts.size(), ports.front());
  if (hosts.size() < ports.size()) hosts.resize(ports.size());
  std::string out;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    if (i != 0) out += ',';
    const std::string& h = hosts[i];
    const bool ipv6 = h.find(':') != std::string::npos;
    if (ipv6) out += '[';
    out += percent_encode(h, ipv6 ? ":" : "");
    if (ipv6) out += ']';
    if (i < ports.size() && !ports[i].empty()) {
      out += ':';
      out += percent_encode(ports[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

const std::string* find_option(const UrlParams& options, std::string_view key) {
  for (const auto& [k, v] : options) {
    if (k == key) return &v;
  }
  return nullptr;
}

// A value between libpq's single quotes.
std::string libpq_escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// hidden: keywords whose values are shown as "***" too; all when hide_all.
std::string keyword_value_text(const UrlParams& options, const std::vector<std::string>& hidden,
                               bool hide_all) {
  static constexpr std::string_view kFirst[] = {"host",   "hostaddr", "port",
                                                "dbname", "user",     "password"};
  std::string out;
  auto add = [&](const std::string& k, const std::string& v) {
    const bool hide = hide_all || std::find(hidden.begin(), hidden.end(), k) != hidden.end();
    if (!out.empty()) out += ' ';
    out += k;
    out += '=';
    out += shown_value(k, v, hide);
  };
  for (std::string_view key : kFirst) {
    if (const std::string* v = find_option(options, key)) add(std::string(key), *v);
  }
  for (const auto& [k, v] : options) {
    if (std::find(std::begin(kFirst), std::end(kFirst), k) == std::end(kFirst)) add(k, v);
  }
  return out;
}

std::string uri_text(const UrlParams& options) {
  const std::string* user = find_option(options, "user");
  const std::string* password = find_option(options, "password");
  const bool password_in_userinfo = password && !password->empty();
  std::string out;
  if (user || password_in_userinfo) {
    if (user) out += percent_encode(*user);
    if (password_in_userinfo) {
      out += ':';
      out += kMask;
    }
    out += '@';
  }
  out += netloc_text(options);
  if (const std::string* dbname = find_option(options, "dbname")) {
    out += '/';
    out += percent_encode(*dbname);
  }
  char separator = '?';
  for (const auto& [k, v] : options) {
    if (k == "user" || k == "host" || k == "port" || k == "dbname" ||
        (k == "password" && password_in_userinfo)) {
      continue;
    }
    out += separator + k + "=" +
           (is_pg_secret(k) && !v.empty() ? std::string(kMask) : percent_encode(v, "@:/,"));
    separator = '&';
  }
  return out;
}

// The forms a secret takes in text: as is, between libpq's quotes, and
// percent-encoded.
void add_secret_forms(const std::string& secret, std::vector<std::string>* out) {
  for (std::string form :
       {secret, libpq_escape(secret), percent_encode(secret), percent_encode(secret, "@:/,")}) {
    if (std::find(out->begin(), out->end(), form) == out->end()) out->push_back(std::move(form));
  }
}

std::string postgresql_connect_string(const UrlParams& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    if (!is_pg_keyword(key)) {
      throw std::invalid_argument("ConnectionUrl: '" + key + "' is not a libpq keyword");
    }
    out += (out.empty() ? "" : " ") + key + "='" + libpq_escape(value) + "'";
  }
  return out;
}

}  // namespace poolscope::detail

#endif  // POOLSCOPE_WITH_POSTGRESQL
