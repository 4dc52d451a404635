#include "api/metrics/registry.h"

#include <prometheus/check_names.h>
#include <prometheus/text_serializer.h>

#include <cassert>
#include <cmath>
#include <set>
#include <stdexcept>
#include <type_traits>

namespace herd::metrics {

namespace {

// Text format 0.0.4: HELP escapes backslash and newline (quotes stay).
std::string EscapeHelp(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

template <typename M>
prometheus::detail::Builder<M> Build() {
  if constexpr (std::is_same_v<M, Counter>) {
    return prometheus::BuildCounter();
  } else if constexpr (std::is_same_v<M, Gauge>) {
    return prometheus::BuildGauge();
  } else {
    return prometheus::BuildHistogram();
  }
}

}  // namespace

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

template <typename M>
Family<M>::Family(prometheus::Family<M>& family, std::string name, std::string help,
                  std::vector<std::string> label_names, std::vector<double> bounds)
    : family_(family),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {
  if constexpr (std::is_same_v<M, Histogram>) {
    discard_ = std::make_unique<Histogram>(bounds_);
  } else {
    discard_ = std::make_unique<M>();
  }
}

template <typename M>
M& Family<M>::WithLabels(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    assert(false && "metric label count mismatch");
    return *discard_;
  }
  prometheus::Labels labels;
  for (size_t i = 0; i < values.size(); ++i) labels.emplace(label_names_[i], values[i]);
  if constexpr (std::is_same_v<M, Histogram>) {
    return family_.Add(labels, bounds_);
  } else {
    return family_.Add(labels);
  }
}

template <typename M>
M& Family<M>::WithLabels(std::initializer_list<std::string_view> values) {
  std::vector<std::string> v;
  v.reserve(values.size());
  for (auto s : values) v.emplace_back(s);
  return WithLabels(v);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry::Registry() : registry_(std::make_shared<prometheus::Registry>()) {}
Registry::~Registry() = default;

template <typename M>
Family<M>& Registry::Add(std::map<std::string, std::unique_ptr<Family<M>>>& families,
                         const std::string& name, const std::string& help,
                         std::vector<std::string> label_names, std::vector<double> bounds) {
  constexpr bool kHistogram = std::is_same_v<M, Histogram>;
  if (!prometheus::CheckMetricName(name)) {
    throw std::invalid_argument("metric name '" + name + "' is invalid");
  }
  for (const auto& l : label_names) {
    // CheckLabelName also rejects the reserved "__" prefix.
    if (!prometheus::CheckLabelName(l)) {
      throw std::invalid_argument("metric " + name + ": label name '" + l + "' is invalid");
    }
    if (kHistogram && l == "le") {
      throw std::invalid_argument("metric " + name + ": label 'le' is reserved for histograms");
    }
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      throw std::invalid_argument("metric " + name +
                                  ": bucket bounds must be finite and strictly increasing");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  const bool other_type = (!std::is_same_v<M, Counter> && counters_.count(name)) ||
                          (!std::is_same_v<M, Gauge> && gauges_.count(name)) ||
                          (!std::is_same_v<M, Histogram> && histograms_.count(name));
  if (other_type) {
    throw std::invalid_argument("metric " + name + " was registered before with another type");
  }
  if (auto it = families.find(name); it != families.end()) {
    Family<M>& f = *it->second;
    if (f.label_names_ != label_names || f.bounds_ != bounds) {
      throw std::invalid_argument("metric " + name +
                                  " was registered before with other labels or buckets");
    }
    return f;
  }
  std::string escaped = EscapeHelp(help);
  prometheus::Family<M>& pf = Build<M>().Name(name).Help(escaped).Register(*registry_);
  auto f = std::unique_ptr<Family<M>>(
      new Family<M>(pf, name, std::move(escaped), std::move(label_names), std::move(bounds)));
  // A gauge is left out: 0 could be a lie (herd_reward_accuracy before any
  // reward model).
  if (!std::is_same_v<M, Gauge> && f->label_names_.empty()) f->WithLabels(std::vector<std::string>{});
  return *families.emplace(name, std::move(f)).first->second;
}

Family<Counter>& Registry::AddCounter(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names) {
  return Add(counters_, name, help, std::move(label_names), {});
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names) {
  return Add(gauges_, name, help, std::move(label_names), {});
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds) {
  return Add(histograms_, name, help, std::move(label_names), std::move(bounds));
}

void Registry::AddCollectHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.push_back(std::move(hook));
}

std::vector<prometheus::MetricFamily> Registry::Collect() const {
  std::lock_guard<std::mutex> collect(collect_mu_);
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hooks = hooks_;
  }
  for (auto& h : hooks) h();
  std::vector<prometheus::MetricFamily> out = registry_->Collect();
  // prometheus-cpp leaves out families without series; herd lists them with
  // HELP and TYPE only, so a scrape shows every registered name.
  std::set<std::string> collected;
  for (const auto& f : out) collected.insert(f.name);
  std::lock_guard<std::mutex> lock(mu_);
  auto add_empty = [&](const auto& families, prometheus::MetricType type) {
    for (const auto& [name, f] : families) {
      if (!collected.count(name)) out.push_back({name, f->help_, type, {}});
    }
  };
  add_empty(counters_, prometheus::MetricType::Counter);
  add_empty(gauges_, prometheus::MetricType::Gauge);
  add_empty(histograms_, prometheus::MetricType::Histogram);
  return out;
}

std::string Registry::Serialize() const { return prometheus::TextSerializer().Serialize(Collect()); }

}  // namespace herd::metrics
