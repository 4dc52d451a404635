#pragma once
// herd's metrics on prometheus-cpp 1.0.1 (core library only): the metric
// types and the storage are prometheus-cpp's, and /metrics is
// prometheus::TextSerializer over Collect(). This wrapper adds what herd
// relies on and prometheus-cpp leaves to the caller:
//
// - a family's label names are fixed at registration and WithLabels takes
//   the values in that order, so every series of a family has the same
//   labels (prometheus::Family::Add accepts any label set);
// - a histogram family's bucket bounds are fixed at registration
//   (prometheus-cpp takes them per series);
// - registration checks: names, reserved labels ("le" on histograms, "__"
//   prefixes), strictly increasing finite bounds, and one type, label set
//   and bounds per name;
// - HELP text is escaped (prometheus-cpp 1.0.1 writes it verbatim, and a
//   newline in it would break the exposition);
// - collect hooks, which set gauges computed at scrape time.
//
// Hot path: look the metric up once (WithLabels takes the family's mutex and
// a hash lookup) and keep the reference; references stay valid for the
// registry's lifetime.
//
// Naming rules (docs/api.md, "Metrics"): herd_ prefix, snake_case, base
// units (seconds, bytes), counters end in _total; no ids in labels.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace herd::metrics {

using Counter = prometheus::Counter;      // Increment(d): d < 0 is ignored
using Gauge = prometheus::Gauge;          // Set, Increment, Decrement
using Histogram = prometheus::Histogram;  // Observe; le is inclusive

// Default buckets for request latencies in seconds: 0.5 ms .. 10 s.
std::vector<double> DefaultLatencyBuckets();

template <typename M>
class Family {
 public:
  // Values in the order of label_names(). A wrong number of values is a
  // programming error: it returns a metric that is never exported (and
  // asserts in debug builds) rather than crashing the daemon.
  M& WithLabels(const std::vector<std::string>& values);
  M& WithLabels(std::initializer_list<std::string_view> values);

  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  friend class Registry;
  Family(prometheus::Family<M>& family, std::string name, std::string help,
         std::vector<std::string> label_names, std::vector<double> bounds);

  prometheus::Family<M>& family_;
  std::string name_;
  std::string help_;  // escaped for the text format
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  std::unique_ptr<M> discard_;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Throws std::invalid_argument on an invalid metric or label name, a
  // reserved label, bad bucket bounds, or a name registered before with
  // another type, labels or bounds (registration is startup code).
  // Registering the same name, type and labels again returns the family
  // (the first help text stays). A counter or histogram without labels gets
  // its one series at registration (exported at 0 from the start); gauges
  // and labelled series appear on first WithLabels, and until then the
  // family is exported with HELP and TYPE only.
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> bounds);

  // Runs before every Collect, e.g. to copy RocksDB properties into gauges.
  // Collects are serialised, so a hook never runs concurrently with itself.
  void AddCollectHook(std::function<void()> hook);

  // Runs the hooks, then collects every family, with those that have no
  // series yet (prometheus-cpp leaves them out) as HELP and TYPE only.
  std::vector<prometheus::MetricFamily> Collect() const;
  // Collect() as text format 0.0.4 (prometheus::TextSerializer).
  std::string Serialize() const;

  // The underlying registry, e.g. for another exposer or serializer. Its
  // Collect neither runs the hooks nor lists families without series.
  const std::shared_ptr<prometheus::Registry>& prometheus_registry() const { return registry_; }

 private:
  template <typename M>
  Family<M>& Add(std::map<std::string, std::unique_ptr<Family<M>>>& families, const std::string& name,
                 const std::string& help, std::vector<std::string> label_names,
                 std::vector<double> bounds);

  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex mu_;  // the maps and hooks_
  std::map<std::string, std::unique_ptr<Family<Counter>>> counters_;
  std::map<std::string, std::unique_ptr<Family<Gauge>>> gauges_;
  std::map<std::string, std::unique_ptr<Family<Histogram>>> histograms_;
  std::vector<std::function<void()>> hooks_;
  mutable std::mutex collect_mu_;  // one Collect at a time
};

// What /metrics has always served; prometheus-cpp's core has no constant.
inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace herd::metrics
