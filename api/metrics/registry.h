#pragma once
// In-house Prometheus metrics, shaped like prometheus-cpp: a Registry holds
// Families (one metric name, help, type and label names), a Family holds one
// metric per label-value set. Exposition is the text format 0.0.4.
//
// Hot path: look the metric up once (WithLabels takes a mutex and a map
// lookup) and keep the reference; Inc/Set/Observe are lock-free atomics.
// References stay valid for the registry's lifetime.
//
// Naming rules (docs/api.md, "Metrics"): herd_ prefix, snake_case, base
// units (seconds, bytes), counters end in _total; no ids in labels.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace herd::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

class Counter {
 public:
  // d must be >= 0 (a counter only goes up); negative values are ignored.
  void Inc(double d = 1.0) {
    if (d >= 0) v_.fetch_add(d, std::memory_order_relaxed);
  }
  double Value() const { return v_.load(std::memory_order_relaxed); }
  static constexpr MetricType kType = MetricType::kCounter;

 private:
  std::atomic<double> v_{0.0};
};

class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Inc(double d = 1.0) { v_.fetch_add(d, std::memory_order_relaxed); }
  void Dec(double d = 1.0) { v_.fetch_sub(d, std::memory_order_relaxed); }
  double Value() const { return v_.load(std::memory_order_relaxed); }
  static constexpr MetricType kType = MetricType::kGauge;

 private:
  std::atomic<double> v_{0.0};
};

class Histogram {
 public:
  // bounds: strictly increasing finite upper bounds; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  static constexpr MetricType kType = MetricType::kHistogram;

  struct Snapshot {
    std::vector<double> bounds;       // without +Inf
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries, last = count
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Collect() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<double> sum_{0.0};
};

// Default buckets for request latencies in seconds: 0.5 ms .. 10 s.
std::vector<double> DefaultLatencyBuckets();
// `count` bounds start, start*factor, ... (prometheus ExponentialBuckets).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  virtual MetricType type() const = 0;
  // Appends this family's HELP, TYPE and samples in text format 0.0.4.
  virtual void Serialize(std::string& out) const = 0;

 protected:
  FamilyBase(std::string name, std::string help, std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}
  std::string name_, help_;
  std::vector<std::string> label_names_;
};

template <typename M>
class Family final : public FamilyBase {
 public:
  // Values in the order of label_names(). A wrong number of values is a
  // programming error: it returns a metric that is never exported (and
  // asserts in debug builds) rather than crashing the daemon.
  M& WithLabels(const std::vector<std::string>& values);
  M& WithLabels(std::initializer_list<std::string_view> values);
  MetricType type() const override { return M::kType; }
  void Serialize(std::string& out) const override;

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds);
  std::unique_ptr<M> Make() const;
  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> metrics_;
  std::unique_ptr<M> discard_;
};

class Registry {
 public:
  // Throws std::invalid_argument on an invalid metric or label name, a
  // reserved label ("le" on histograms, "__" prefix), or a name registered
  // before with another type or labels (registration is startup code).
  // Registering the same name, type and labels again returns the family.
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> bounds);

  // Runs before every Serialize, e.g. to copy RocksDB properties into gauges.
  void AddCollectHook(std::function<void()> hook);

  // Families sorted by name; series sorted by label values.
  std::string Serialize() const;

 private:
  template <typename M>
  Family<M>& Add(const std::string& name, const std::string& help,
                 std::vector<std::string> label_names, std::vector<double> bounds);
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_;
  std::vector<std::function<void()>> hooks_;
};

inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

// Text format helpers, exposed for tests.
std::string EscapeHelp(std::string_view s);        // \ → \\, newline → \n
std::string EscapeLabelValue(std::string_view s);  // \ → \\, " → \", newline → \n
std::string FormatValue(double v);                 // shortest round-trip; +Inf, -Inf, NaN
bool IsValidMetricName(std::string_view s);        // [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidLabelName(std::string_view s);         // [a-zA-Z_][a-zA-Z0-9_]*, no "__" prefix

}  // namespace herd::metrics
