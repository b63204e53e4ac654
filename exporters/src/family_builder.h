// FamilyBuilder: Prometheus families assembled in the order first used,
// for families_of() and the Redis tier's families. One per scrape, on the
// scraping thread.

#pragma once

#include <prometheus/metric_family.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "snapshot.h"

namespace poolscope::exporters::detail {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Families in the order first used. Not thread-safe: one per scrape.
class FamilyBuilder {
 public:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    auto [it, added] = index_.emplace(name, families_.size());
    if (added) families_.push_back(MetricFamily{name, help, type, {}});
    return families_[it->second];
  }
  void gauge(const std::string& name, const std::string& help, Labels labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = value;
    family(name, help, MetricType::Gauge).metric.push_back(std::move(m));
  }
  void counter(const std::string& name, const std::string& help, Labels labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = value;
    family(name, help, MetricType::Counter).metric.push_back(std::move(m));
  }
  void histogram(const std::string& name, const std::string& help, Labels labels,
                 const Snapshot::Histogram& h) {
    ClientMetric m;
    m.label = std::move(labels);
    m.histogram.sample_count = h.counts.count;
    m.histogram.sample_sum = h.counts.sum_seconds;
    for (std::size_t i = 0; i < h.bounds->size(); ++i) {
      m.histogram.bucket.push_back({h.counts.cumulative[i], (*h.bounds)[i]});
    }
    m.histogram.bucket.push_back({h.counts.count, std::numeric_limits<double>::infinity()});
    family(name, help, MetricType::Histogram).metric.push_back(std::move(m));
  }
  std::vector<MetricFamily> take() { return std::move(families_); }

 private:
  std::vector<MetricFamily> families_;
  std::map<std::string, std::size_t> index_;
};

inline Labels with(Labels labels, std::string name, std::string value) {
  labels.push_back({std::move(name), std::move(value)});
  return labels;
}

}  // namespace poolscope::exporters::detail
