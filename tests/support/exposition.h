// Reading Prometheus text exposition in tests.

#pragma once

#include <map>
#include <set>
#include <sstream>
#include <string>

namespace poolscope::testing {

// series ("name{labels}" exactly as printed) -> value.
inline std::map<std::string, double> parse_samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

// The sample names (without labels) in the exposition.
inline std::set<std::string> sample_names(const std::string& text) {
  std::set<std::string> out;
  for (const auto& [series, value] : parse_samples(text))
    out.insert(series.substr(0, series.find('{')));
  return out;
}

}  // namespace poolscope::testing
