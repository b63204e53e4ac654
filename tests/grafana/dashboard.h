// grafana/dashboard.json as the dashboard tests read it: the lint test and
// the end-to-end test walk the same panels and substitute the variables the
// same way, so the two cannot drift apart.

#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace poolscope::testing {

inline nlohmann::json load_dashboard() {
  std::ifstream in(POOLSCOPE_DASHBOARD);
  if (!in) throw std::runtime_error("cannot read " POOLSCOPE_DASHBOARD);
  return nlohmann::json::parse(in);
}

// Every panel, the children of rows (collapsed or not) included, the rows
// themselves excluded.
inline std::vector<nlohmann::json> panels_of(const nlohmann::json& dashboard) {
  std::vector<nlohmann::json> out;
  for (const nlohmann::json& p : dashboard["panels"]) {
    if (p.value("type", "") == "row") {
      for (const nlohmann::json& child : p.value("panels", nlohmann::json::array()))
        out.push_back(child);
    } else {
      out.push_back(p);
    }
  }
  return out;
}

// What Grafana puts in for the dashboard's variables when a query runs.
struct DashboardVariables {
  std::string rate_interval = "1m";  // $__rate_interval
  std::string job = ".+";            // $job
};

// expr with every variable replaced: $instance matches any instance, $pool
// and $cache any value ("All").
inline std::string substitute(std::string expr, const DashboardVariables& values = {}) {
  const std::pair<std::string, std::string> vars[] = {{"$__rate_interval", values.rate_interval},
                                                      {"$job", values.job},
                                                      {"$instance", ".+"},
                                                      {"$pool", ".*"},
                                                      {"$cache", ".*"}};
  for (const auto& [from, to] : vars) {
    for (std::size_t pos = expr.find(from); pos != std::string::npos;
         pos = expr.find(from, pos + to.size())) {
      expr.replace(pos, from.size(), to);
    }
  }
  return expr;
}

}  // namespace poolscope::testing
