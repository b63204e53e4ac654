// The rules of grafana/dashboard-linter (which cannot be installed here),
// re-implemented over grafana/dashboard.json, plus: every metric the
// dashboard names exists in poolscope's real exposition, and every query
// parses with Prometheus's own parser (promtool).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "dashboard.h"
#include "sample_exposition.h"
#include "test_util.h"

namespace {

using nlohmann::json;

using poolscope::testing::load_dashboard;
using poolscope::testing::panels_of;
using poolscope::testing::substitute;

struct Target {
  std::string panel;
  std::string ref;
  std::string expr;
};

std::vector<Target> targets_of(const json& dashboard) {
  std::vector<Target> out;
  for (const json& p : panels_of(dashboard)) {
    for (const json& t : p.value("targets", json::array())) {
      out.push_back({p.value("title", "?"), t.value("refId", "?"), t.value("expr", "")});
    }
  }
  return out;
}

const json* variable(const json& dashboard, const std::string& name) {
  for (const json& v : dashboard["templating"]["list"]) {
    if (v.value("name", "") == name) return &v;
  }
  return nullptr;
}

std::string variable_query(const json& v) {
  return v["query"].is_object() ? v["query"].value("query", "") : v.value("query", "");
}

// A metric selector in an expression: the metric, its matchers, and what
// surrounds it.
struct Selector {
  std::string metric;
  std::string matchers;  // between the braces; empty when there are none
  bool braces = false;
  std::string before;  // the expression up to the metric name
  std::string after;   // the expression after the selector
};

std::vector<Selector> selectors_of(const std::string& expr) {
  std::vector<Selector> out;
  static const std::regex metric(R"(poolscope_[A-Za-z0-9_]+)");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), metric);
       it != std::sregex_iterator(); ++it) {
    Selector s;
    s.metric = it->str();
    const std::size_t begin = static_cast<std::size_t>(it->position());
    std::size_t end = begin + s.metric.size();
    s.before = expr.substr(0, begin);
    while (end < expr.size() && expr[end] == ' ') ++end;
    if (end < expr.size() && expr[end] == '{') {
      const std::size_t close = expr.find('}', end);
      s.braces = close != std::string::npos;
      s.matchers = expr.substr(end + 1, close - end - 1);
      end = close + 1;
    }
    s.after = expr.substr(end);
    out.push_back(std::move(s));
  }
  return out;
}

std::string trim_right(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

bool has_matcher(const std::string& matchers, const std::string& label,
                 const std::string& variable_name) {
  const std::regex m(label + R"(\s*=~\s*"\$)" + variable_name + "\"");
  return std::regex_search(matchers, m);
}

bool is_counter_sample(const std::string& metric) {
  for (const char* suffix : {"_total", "_count", "_sum", "_bucket"}) {
    if (metric.ends_with(suffix)) return true;
  }
  return false;
}

// Runs expressions through Prometheus's parser: promtool check rules on a
// rule file made of them.
std::pair<int, std::string> promtool_check(const std::vector<std::string>& exprs) {
  const auto file = std::filesystem::temp_directory_path() /
                    ("poolscope-dashboard-rules-" + std::to_string(::getpid()) + ".yml");
  {
    std::ofstream out(file);
    out << "groups:\n  - name: dashboard\n    rules:\n";
    for (std::size_t i = 0; i < exprs.size(); ++i) {
      out << "      - record: dashboard:query_" << i << "\n        expr: " << json(exprs[i]).dump()
          << "\n";
    }
  }
  auto result = poolscope::testing::run_command("promtool check rules " + file.string());
  std::filesystem::remove(file);
  return result;
}

// The panels grafana/.lint excludes from a rule: its "- panel: "<title>""
// entries under "  <rule>:".
std::set<std::string> lint_exclusions(const std::string& rule) {
  const std::filesystem::path lint =
      std::filesystem::path(POOLSCOPE_DASHBOARD).parent_path() / ".lint";
  std::ifstream in(lint);
  std::set<std::string> out;
  bool in_rule = false;
  static const std::regex panel(R"re(^\s+- panel:\s*"(.*)"\s*$)re");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("  ") && !line.starts_with("   ")) in_rule = line == "  " + rule + ":";
    std::smatch m;
    if (in_rule && std::regex_match(line, m, panel)) out.insert(m[1]);
  }
  return out;
}

class DashboardLintTest : public ::testing::Test {
 protected:
  json dashboard_ = load_dashboard();
};

TEST_F(DashboardLintTest, HasATemplatedPrometheusDatasource) {
  const json* ds = variable(dashboard_, "datasource");
  ASSERT_NE(ds, nullptr) << "template-datasource-rule: no 'datasource' variable";
  EXPECT_EQ((*ds)["type"], "datasource");
  EXPECT_EQ((*ds)["query"], "prometheus");
  EXPECT_EQ((*ds)["label"], "Data source");
}

TEST_F(DashboardLintTest, JobAndInstanceVariablesFollowTheLinter) {
  for (const auto& [name, label] : {std::pair{"job", "Job"}, {"instance", "Instance"}}) {
    const json* v = variable(dashboard_, name);
    ASSERT_NE(v, nullptr) << "template-" << name << "-rule: missing";
    EXPECT_EQ((*v)["type"], "query") << name;
    EXPECT_EQ((*v)["datasource"]["uid"], "$datasource") << name;
    EXPECT_EQ((*v)["label"], label) << name;
    EXPECT_TRUE((*v)["multi"].get<bool>()) << name;
    EXPECT_EQ((*v)["allValue"], ".+") << name;
  }
}

TEST_F(DashboardLintTest, PoolAndCacheVariablesSelectFromPoolscopeMetrics) {
  for (const char* name : {"pool", "cache"}) {
    const json* v = variable(dashboard_, name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_EQ((*v)["datasource"]["uid"], "$datasource");
    EXPECT_NE(variable_query(*v).find("label_values("), std::string::npos);
  }
}

TEST_F(DashboardLintTest, EveryPanelHasATitleADescriptionAUnitAndTheTemplatedDatasource) {
  static const std::set<std::string> kUnits = {
      "none", "short", "percent", "percentunit", "bytes", "decbytes", "s",   "ms",  "us",
      "ns",   "ops",   "reqps",   "rps",         "wps",   "cps",      "cpm", "opm", "dtdurations"};
  std::set<int> ids;
  const std::vector<json> panels = panels_of(dashboard_);
  ASSERT_GE(panels.size(), 15u);
  for (const json& p : panels) {
    const std::string title = p.value("title", "");
    EXPECT_FALSE(title.empty()) << "panel " << p.value("id", 0) << " has no title";
    EXPECT_FALSE(p.value("description", "").empty()) << "panel-title-description-rule: " << title;
    EXPECT_TRUE(kUnits.contains(p["fieldConfig"]["defaults"].value("unit", "")))
        << "panel-units-rule: " << title;
    EXPECT_EQ(p["datasource"]["uid"], "$datasource") << "panel-datasource-rule: " << title;
    EXPECT_FALSE(p.value("targets", json::array()).empty()) << "panel-no-targets-rule: " << title;
    for (const json& t : p.value("targets", json::array())) {
      EXPECT_EQ(t["datasource"]["uid"], "$datasource") << title;
    }
    EXPECT_TRUE(ids.insert(p.value("id", -1)).second) << "duplicate panel id in " << title;
  }
}

TEST_F(DashboardLintTest, EverySelectorFiltersByJobInstanceAndPool) {
  for (const Target& t : targets_of(dashboard_)) {
    const std::vector<Selector> selectors = selectors_of(t.expr);
    EXPECT_FALSE(selectors.empty()) << t.panel << " " << t.ref;
    for (const Selector& s : selectors) {
      ASSERT_TRUE(s.braces) << "target-job-rule: bare " << s.metric << " in " << t.panel;
      EXPECT_TRUE(has_matcher(s.matchers, "job", "job"))
          << "target-job-rule: " << t.panel << ": " << s.metric;
      EXPECT_TRUE(has_matcher(s.matchers, "instance", "instance"))
          << "target-instance-rule: " << t.panel;
      EXPECT_TRUE(has_matcher(s.matchers, "pool", "pool")) << t.panel << ": " << s.metric;
      if (s.metric.starts_with("poolscope_cache_")) {
        EXPECT_TRUE(has_matcher(s.matchers, "cache", "cache")) << t.panel << ": " << s.metric;
      }
    }
  }
}

TEST_F(DashboardLintTest, RangesUseRateIntervalAndCountersAreOnlyRated) {
  static const std::regex range(R"(\[([^\]]*)\])");
  static const std::regex irate(R"(\birate\s*\()");
  // Excluded panels count over the fixed window their title states.
  const std::set<std::string> fixed = lint_exclusions("target-rate-interval-rule");
  ASSERT_FALSE(fixed.empty()) << "grafana/.lint has no exclusions";
  for (const Target& t : targets_of(dashboard_)) {
    const std::string window = fixed.contains(t.panel) ? "5m" : "$__rate_interval";
    if (fixed.contains(t.panel)) {
      EXPECT_NE(t.panel.find("last 5 min"), std::string::npos) << t.panel;
    }
    for (auto it = std::sregex_iterator(t.expr.begin(), t.expr.end(), range);
         it != std::sregex_iterator(); ++it) {
      EXPECT_EQ((*it)[1], window) << "target-rate-interval-rule: " << t.panel;
    }
    EXPECT_FALSE(std::regex_search(t.expr, irate)) << t.panel;
    for (const Selector& s : selectors_of(t.expr)) {
      if (!is_counter_sample(s.metric)) continue;
      const std::string before = trim_right(s.before);
      EXPECT_TRUE(before.ends_with("rate(") || before.ends_with("increase("))
          << "target-counter-agg-rule: " << s.metric << " in " << t.panel;
      EXPECT_TRUE(s.after.starts_with("[" + window + "])")) << s.metric << " in " << t.panel;
    }
  }
}

TEST_F(DashboardLintTest, EveryQueryIsValidPromQL) {
  std::vector<std::string> exprs;
  for (const Target& t : targets_of(dashboard_)) exprs.push_back(substitute(t.expr));
  // Variable queries: label_values(<selector>, label) wraps a selector.
  static const std::regex label_values(R"(label_values\((.*),\s*[A-Za-z_]+\)\s*$)");
  for (const char* name : {"job", "instance", "pool", "cache"}) {
    std::smatch m;
    const std::string q = variable_query(*variable(dashboard_, name));
    ASSERT_TRUE(std::regex_search(q, m, label_values))
        << "template-label-promql-rule: " << name << ": " << q;
    exprs.push_back(substitute(m[1]));
  }
  const auto [status, output] = promtool_check(exprs);
  EXPECT_EQ(status, 0) << "promtool rejected a query:\n" << output;
}

TEST_F(DashboardLintTest, EveryMetricTheDashboardNamesExistsInTheExposition) {
  const std::set<std::string> exposed =
      poolscope::testing::sample_names(poolscope::testing::sample_exposition());

  std::set<std::string> named;
  for (const Target& t : targets_of(dashboard_)) {
    for (const Selector& s : selectors_of(t.expr)) named.insert(s.metric);
  }
  for (const char* name : {"job", "instance", "pool", "cache"}) {
    for (const Selector& s : selectors_of(variable_query(*variable(dashboard_, name))))
      named.insert(s.metric);
  }
  ASSERT_GT(named.size(), 20u);
  for (const std::string& metric : named)
    EXPECT_TRUE(exposed.contains(metric)) << metric << " is not exported";
}

// The first screen (the top 13 grid units, above the first time series)
// answers "is anything wrong now": one stat each, thresholds on all, red on
// the failure counts from the first one, and utilisation per instance.
TEST_F(DashboardLintTest, TheFirstScreenShowsTroubleWithThresholds) {
  std::map<std::string, json> top;  // title -> panel
  for (const json& p : panels_of(dashboard_)) {
    if (p["gridPos"]["y"].get<int>() + p["gridPos"]["h"].get<int>() <= 13) top[p["title"]] = p;
  }
  const auto red_from = [](const json& p) {
    for (const json& step : p["fieldConfig"]["defaults"]["thresholds"]["steps"]) {
      if (step["color"] == "red")
        return step["value"].is_null() ? 0.0 : step["value"].get<double>();
    }
    return -1.0;
  };
  for (const char* title :
       {"Utilisation now (busiest pool)", "Threads waiting now", "Oldest waiter",
        "Checkout timeouts, last 5 min", "Leaked leases, last 5 min", "Acquire p99 (slowest pool)",
        "Connect errors, last 5 min", "Cache hit ratio (worst cache)"}) {
    ASSERT_TRUE(top.contains(title)) << title << " is not on the first screen";
    const json& p = top[title];
    EXPECT_EQ(p["type"], "stat") << title;
    EXPECT_GE(p["fieldConfig"]["defaults"]["thresholds"]["steps"].size(), 2u) << title;
    EXPECT_GE(red_from(p), 0) << title << " never turns red";
  }
  for (const char* failure : {"Checkout timeouts, last 5 min", "Leaked leases, last 5 min",
                              "Connect errors, last 5 min"}) {
    EXPECT_EQ(red_from(top[failure]), 1) << failure << ": red from the first one";
  }
  // Worst, not average: a saturated instance must show.
  EXPECT_NE(top["Utilisation now (busiest pool)"]["targets"][0]["expr"].get<std::string>().find(
                "max(sum by (instance, pool)"),
            std::string::npos);
  ASSERT_TRUE(top.contains("Utilisation by instance, now"));
  EXPECT_EQ(top["Utilisation by instance, now"]["targets"][0]["legendFormat"],
            "{{instance}} {{pool}}");
  // No panel sums pool utilisation or waiters across instances.
  for (const Target& t : targets_of(dashboard_)) {
    if (t.expr.find("poolscope_connections_max") != std::string::npos &&
        t.expr.find("state=\"active\"") != std::string::npos) {
      EXPECT_NE(t.expr.find("by (instance, pool)"), std::string::npos) << t.panel;
    }
  }
}

TEST(GrafanaProvisioningTest, DatasourceAndDashboardProviderAreThere) {
  const std::filesystem::path root = std::filesystem::path(POOLSCOPE_DASHBOARD).parent_path();
  std::ifstream ds(root / "provisioning/datasources/prometheus.yaml");
  std::ifstream provider(root / "provisioning/dashboards/poolscope.yaml");
  const std::string ds_text((std::istreambuf_iterator<char>(ds)), {});
  const std::string provider_text((std::istreambuf_iterator<char>(provider)), {});
  EXPECT_NE(ds_text.find("type: prometheus"), std::string::npos);
  EXPECT_NE(provider_text.find("type: file"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(root / "README.md"));
}

}  // namespace
