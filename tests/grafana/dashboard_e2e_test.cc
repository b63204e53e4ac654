// The dashboard against a real Prometheus scraping a running poolscope-load
// (both started by the ctest fixture 'metrics_stack'): every panel query,
// with the variables substituted, must run, and the core panels must return
// data.

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <thread>

#include "dashboard.h"
#include "http_client.h"
#include "test_util.h"

namespace {

using nlohmann::json;
using poolscope::testing::http_request;
using poolscope::testing::url_encode;

class GrafanaEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto env = poolscope::testing::read_env_file("POOLSCOPE_PROM_ENV", "metrics_stack");
    port_ = std::stoi(env.at("port"));
    job_ = env.at("job");
    dashboard_ = poolscope::testing::load_dashboard();
    // Wait until the target is up and rates over 10 s have samples.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    for (;;) {
      const json r = query("sum(rate(poolscope_connections_acquire_seconds_count{job=\"" + job_ +
                           "\"}[10s]))");
      if (r.value("status", "") == "success" && !r["data"]["result"].empty()) break;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << "no poolscope samples in Prometheus: " << r.dump();
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }

  // GET on Prometheus's HTTP API; the parsed body.
  json api(const std::string& path) {
    const auto response = http_request(port_, "GET", path);
    if (response.status == 0)
      throw std::runtime_error("no answer from Prometheus: " + response.error);
    return json::parse(response.body, nullptr, false);
  }

  json query(const std::string& expr) { return api("/api/v1/query?query=" + url_encode(expr)); }

  // Panels as (title, exprs), the variables substituted: this Prometheus
  // scrapes every second, and only the fixture's job.
  std::vector<std::pair<std::string, std::vector<std::string>>> panels() const {
    const poolscope::testing::DashboardVariables values{.rate_interval = "10s", .job = job_};
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    for (const json& p : poolscope::testing::panels_of(dashboard_)) {
      std::vector<std::string> exprs;
      for (const json& t : p.value("targets", json::array())) {
        exprs.push_back(poolscope::testing::substitute(t.value("expr", ""), values));
      }
      out.emplace_back(p.value("title", "?"), std::move(exprs));
    }
    return out;
  }

  int port_ = 0;
  std::string job_;
  json dashboard_;
};

TEST_F(GrafanaEndToEndTest, EveryPanelQueryRunsAndTheCorePanelsReturnData) {
  // The core panels: what a person opens the dashboard for.
  const std::set<std::string> core = {"Utilisation now (busiest pool)",
                                      "Threads waiting now",
                                      "Oldest waiter",
                                      "Checkout timeouts, last 5 min",
                                      "Leaked leases, last 5 min",
                                      "Acquire p99 (slowest pool)",
                                      "Connect errors, last 5 min",
                                      "Cache hit ratio (worst cache)",
                                      "Utilisation by instance, now",
                                      "Oldest waiter by instance",
                                      "Pool utilisation by instance",
                                      "Threads waiting by instance",
                                      "Connections: active, idle, overflow, max; threads pending",
                                      "Acquire latency p50 / p95 / p99",
                                      "Acquire latency heatmap",
                                      "Hold time (usage) p50 / p95 / p99",
                                      "Checkouts and nested reuses per second",
                                      "Connections closed per second, by reason",
                                      "Checkout timeouts",
                                      "Top call sites by checkouts",
                                      "Top call sites by hold time",
                                      "Cache hit ratio",
                                      "Cache requests per second, by result",
                                      "Cache entries",
                                      "Sessions avoided per second"};
  std::set<std::string> seen;
  for (const auto& [title, exprs] : panels()) {
    seen.insert(title);
    for (const std::string& expr : exprs) {
      // A panel may legitimately need a scrape or two more: retry briefly.
      json result;
      for (int attempt = 0; attempt < 20; ++attempt) {
        result = query(expr);
        if (result.value("status", "") != "success" || !core.contains(title) ||
            !result["data"]["result"].empty()) {
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      EXPECT_EQ(result.value("status", ""), "success") << title << ": " << expr << "\n"
                                                       << result.dump();
      if (core.contains(title)) {
        EXPECT_FALSE(result["data"]["result"].empty())
            << "core panel without data: " << title << ": " << expr;
      }
    }
  }
  for (const std::string& title : core)
    EXPECT_TRUE(seen.contains(title)) << "the dashboard lost panel " << title;
}

TEST_F(GrafanaEndToEndTest, TheVariablesFindTheirValues) {
  // Grafana answers label_values(selector, label) from the series API.
  const std::pair<std::string, std::string> variables[] = {
      {"job", "poolscope_build_info"},
      {"instance", "poolscope_build_info{job=~\"" + job_ + "\"}"},
      {"pool", "poolscope_connections_max{job=~\"" + job_ + "\", instance=~\".+\"}"},
      {"cache", "poolscope_cache_entries{job=~\"" + job_ + "\", instance=~\".+\"}"}};
  for (const auto& [label, selector] : variables) {
    const json values = api("/api/v1/label/" + label + "/values?match[]=" + url_encode(selector));
    ASSERT_EQ(values.value("status", ""), "success") << label << ": " << values.dump();
    EXPECT_FALSE(values["data"].empty()) << "no values for $" << label;
  }
  const json pools =
      api("/api/v1/label/pool/values?match[]=" + url_encode("poolscope_connections_max"));
  EXPECT_EQ(pools["data"], json::array({"load"}));
  const json caches =
      api("/api/v1/label/cache/values?match[]=" + url_encode("poolscope_cache_entries"));
  EXPECT_EQ(caches["data"], json::array({"account_settings", "accounts"}));
}

}  // namespace
