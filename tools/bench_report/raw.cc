// Reading scripts/bench.sh's raw results, the spread of a figure, the text
// helpers, and the machine the figures come from.

#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "report.h"

namespace poolscope::bench_report {
namespace {

std::vector<json> read_lines(const std::filesystem::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  if (!in) return out;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::exception& e) {
      throw std::runtime_error(path.string() + ":" + std::to_string(number) + ": " + e.what());
    }
  }
  return out;
}

json read_document(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return json::object();
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

std::string first_line_with(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) {
      std::string value = line.substr(line.find(':') + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      return value;
    }
  }
  return "unknown";
}

std::string command_output(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
    ::pclose(pipe);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

double Spread::min() const { return *std::min_element(values.begin(), values.end()); }
double Spread::max() const { return *std::max_element(values.begin(), values.end()); }
double Spread::median() const {
  std::vector<double> v = values;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Raw read_raw(const std::string& dir) {
  const std::filesystem::path d(dir);
  if (!std::filesystem::is_directory(d)) throw std::runtime_error(dir + " is not a directory");
  Raw raw;
  raw.meta = read_document(d / "meta.json");
  raw.contention = read_lines(d / "contention.jsonl");
  raw.widget = read_lines(d / "widget.jsonl");
  raw.cache_loop = read_lines(d / "cache-loop.jsonl");
  raw.callgrind = read_lines(d / "callgrind.jsonl");
  raw.bench = read_document(d / "bench.json");
  return raw;
}

std::string times(double x) {
  char text[32];
  std::snprintf(text, sizeof text, x >= 100 ? "%.0fx" : "%.2fx", x);
  return text;
}

std::string nanos(double ns) {
  char text[32];
  if (ns >= 1e9) {
    std::snprintf(text, sizeof text, "%.2f s", ns / 1e9);
  } else if (ns >= 1e6) {
    std::snprintf(text, sizeof text, "%.1f ms", ns / 1e6);
  } else if (ns >= 1e4) {
    std::snprintf(text, sizeof text, "%.0f µs", ns / 1e3);
  } else if (ns >= 1e3) {
    std::snprintf(text, sizeof text, "%.1f µs", ns / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.0f ns", ns);
  }
  return text;
}

std::string fixed(double v, int digits) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

std::string spread_text(const Spread& s, std::string (*format)(double)) {
  if (s.empty()) return "n/a";
  if (s.values.size() == 1) return format(s.median());
  return format(s.median()) + " (" + format(s.min()) + " - " + format(s.max()) + ")";
}

std::string min_median_max(const Spread& s, std::string (*format)(double)) {
  if (s.empty()) return "n/a";
  if (s.values.size() == 1) return format(s.median());
  return format(s.min()) + " / " + format(s.median()) + " / " + format(s.max());
}

void machine_section(std::ostream& out, const Raw& raw) {
  utsname uts{};
  ::uname(&uts);
  const json& m = raw.meta;
  auto meta = [&](const char* key) {
    if (!m.contains(key)) return std::string("unknown");
    return m[key].is_string() ? m[key].get<std::string>() : m[key].dump();
  };
  out << "## Machine\n\n"
      << "| | |\n|---|---|\n"
      << "| CPU | " << first_line_with("/proc/cpuinfo", "model name") << " |\n"
      << "| cores | " << command_output("nproc") << " (shared with other work: load average "
      << meta("load_average_end") << " when the run ended) |\n"
      << "| memory | " << first_line_with("/proc/meminfo", "MemTotal") << " |\n"
      << "| kernel | " << uts.sysname << " " << uts.release << " " << uts.machine << " |\n"
      << "| clocksource | "
      << command_output("cat /sys/devices/system/clocksource/clocksource0/current_clocksource")
      << " |\n"
      << "| compiler | " << command_output("c++ --version | head -n 1") << " |\n"
      << "| build | Release (-O3), SOCI " << meta("soci") << " |\n"
      << "| PostgreSQL | " << meta("postgresql") << ", throwaway server on 127.0.0.1 (TCP) |\n"
      << "| Java | " << meta("java") << ", HikariCP " << meta("hikaricp") << ", pgjdbc "
      << meta("pgjdbc") << " |\n"
      << "| Python | SQLAlchemy " << meta("sqlalchemy") << ", psycopg2 " << meta("psycopg2")
      << " |\n\n";
}

}  // namespace poolscope::bench_report
