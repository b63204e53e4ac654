#include "report.h"

#include <string>

namespace poolscope::load {
namespace {

std::string duration_text(double seconds) {
  char text[32];
  if (seconds < 1e-6) {
    std::snprintf(text, sizeof text, "%.0f ns", seconds * 1e9);
  } else if (seconds < 1e-3) {
    std::snprintf(text, sizeof text, "%.1f us", seconds * 1e6);
  } else if (seconds < 1) {
    std::snprintf(text, sizeof text, "%.2f ms", seconds * 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.2f s", seconds);
  }
  return text;
}

void row(std::FILE* out, const char* label, const std::string& value) {
  std::fprintf(out, "  %-22s %s\n", label, value.c_str());
}

std::string number(double v, int decimals) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  return text;
}

}  // namespace

void print_summary(std::FILE* out, const RunResult& r) {
  std::fprintf(out, "\npoolscope-load: %s scenario, mode %s, %s, %d threads, %.1f s\n",
               r.scenario.c_str(), r.mode.c_str(), r.backend.c_str(), r.threads, r.duration_s);
  row(out, "database", r.url);
  if (r.mode != "naive") {
    row(out, "pool", "size " + std::to_string(r.pool_size) + " + overflow " +
                         std::to_string(r.max_overflow));
  }
  row(out, "renders", std::to_string(r.renders) + "  (" + number(r.renders_per_s(), 1) + "/s)");
  row(out, r.mode == "naive" ? "connections/render" : "checkouts/render",
      number(r.per_render(r.checkouts), 2));
  row(out, "reuses/render", number(r.per_render(r.reuses), 2));
  row(out, "connections opened", std::to_string(r.connections_opened));
  row(out, "acquire p50 / p99", duration_text(r.acquire_p50_s) + " / " +
                                    duration_text(r.acquire_p99_s));
  row(out, "timeouts", std::to_string(r.timeouts));
  row(out, "errors", std::to_string(r.errors));
  if (!r.first_error.empty()) row(out, "first error", r.first_error);
  std::fflush(out);
}

nlohmann::json to_json(const RunResult& r) {
  return {
      {"scenario", r.scenario},
      {"mode", r.mode},
      {"backend", r.backend},
      {"url", r.url},
      {"threads", r.threads},
      {"pool_size", r.pool_size},
      {"max_overflow", r.max_overflow},
      {"duration_s", r.duration_s},
      {"renders", r.renders},
      {"renders_per_s", r.renders_per_s()},
      {"checkouts", r.checkouts},
      {"checkouts_per_render", r.per_render(r.checkouts)},
      {"reuses", r.reuses},
      {"reuses_per_render", r.per_render(r.reuses)},
      {"settings_reads_per_render", kReadsPerRender},
      {"connections_opened", r.connections_opened},
      {"acquire_p50_s", r.acquire_p50_s},
      {"acquire_p99_s", r.acquire_p99_s},
      {"timeouts", r.timeouts},
      {"errors", r.errors},
      {"first_error", r.first_error},
  };
}

}  // namespace poolscope::load
