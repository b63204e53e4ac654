// grafana/rules/poolscope.rules.yml: valid for Prometheus (promtool check
// rules), firing and not firing as tests/grafana/rules_test.yml says
// (promtool test rules), per instance, and naming only metrics poolscope
// exports.

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <string>

#include "exposition.h"
#include "sample_exposition.h"
#include "test_util.h"

namespace {

std::string read(const char* path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(PrometheusRulesTest, PromtoolAcceptsTheRules) {
  const auto [status, output] =
      poolscope::testing::run_command("promtool check rules " POOLSCOPE_RULES);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("SUCCESS"), std::string::npos) << output;
}

TEST(PrometheusRulesTest, EachAlertFiresAndStaysQuietAsItsUnitTestsSay) {
  const auto [status, output] =
      poolscope::testing::run_command("promtool test rules " POOLSCOPE_RULES_TEST);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("SUCCESS"), std::string::npos) << output;
  // Every alert of the rules file has a test case.
  const std::string rules = read(POOLSCOPE_RULES), tests = read(POOLSCOPE_RULES_TEST);
  static const std::regex alert(R"(- alert: (\w+))");
  int alerts = 0;
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), alert);
       it != std::sregex_iterator(); ++it, ++alerts) {
    EXPECT_NE(tests.find("alertname: " + (*it)[1].str()), std::string::npos)
        << (*it)[1] << " has no unit test";
  }
  EXPECT_GE(alerts, 8);
}

TEST(PrometheusRulesTest, EveryAggregationKeepsTheInstance) {
  const std::string rules = read(POOLSCOPE_RULES);
  static const std::regex by(R"(\b(sum|max|min|avg) by \(([^)]*)\))");
  int aggregations = 0;
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), by); it != std::sregex_iterator();
       ++it, ++aggregations) {
    EXPECT_NE((*it)[2].str().find("instance"), std::string::npos)
        << "an instance summed away: " << it->str();
  }
  EXPECT_GT(aggregations, 10);
}

TEST(PrometheusRulesTest, EveryMetricTheRulesNameExistsInTheExposition) {
  const std::set<std::string> exposed =
      poolscope::testing::sample_names(poolscope::testing::sample_exposition());
  const std::string rules = read(POOLSCOPE_RULES);
  static const std::regex metric(R"(poolscope_[A-Za-z0-9_]+)");
  std::set<std::string> named;
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), metric);
       it != std::sregex_iterator(); ++it) {
    named.insert(it->str());
  }
  ASSERT_GE(named.size(), 8u);
  for (const std::string& m : named) EXPECT_TRUE(exposed.contains(m)) << m << " is not exported";
}

}  // namespace
