#pragma once
// A strict reader of Prometheus text format 0.0.4 for tests: what a scraper
// sees (names, unescaped labels and help, values), independent of series
// order and label order. A malformed line is a test failure, so tests that
// use it still catch broken exposition.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace herd::api::testing {

using Labels = std::map<std::string, std::string>;

struct ExpoSample {
  std::string name;  // with _bucket/_sum/_count for histograms
  Labels labels;
  std::string value;  // as written
};

struct Exposition {
  std::map<std::string, std::string> help;  // unescaped
  std::map<std::string, std::string> type;
  std::vector<ExpoSample> samples;

  // The value of the one series name{labels}; nullopt when absent.
  std::optional<double> Value(const std::string& name, const Labels& labels = {}) const {
    std::optional<double> v;
    for (const auto& s : samples) {
      if (s.name != name || s.labels != labels) continue;
      EXPECT_FALSE(v.has_value()) << "duplicate series " << name;
      v = std::strtod(s.value.c_str(), nullptr);
    }
    return v;
  }
  size_t CountSeries(const std::string& name) const {
    size_t n = 0;
    for (const auto& s : samples) n += s.name == name;
    return n;
  }
};

// \\ → \, \n → newline; in label values also \" → ". False on a bad escape.
inline bool Unescape(const std::string& in, bool label_value, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\') {
      out->push_back(in[i]);
      continue;
    }
    if (++i == in.size()) return false;
    char c = in[i];
    if (c == '\\') {
      out->push_back('\\');
    } else if (c == 'n') {
      out->push_back('\n');
    } else if (c == '"' && label_value) {
      out->push_back('"');
    } else {
      return false;
    }
  }
  return true;
}

inline bool IsNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

inline Exposition ParseExposition(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const bool help = line[2] == 'H';
      size_t sp = line.find(' ', 7);
      std::string name = line.substr(7, sp == std::string::npos ? std::string::npos : sp - 7);
      std::string rest = sp == std::string::npos ? "" : line.substr(sp + 1);
      if (help) {
        EXPECT_TRUE(Unescape(rest, false, &e.help[name])) << "line " << n << ": " << line;
      } else {
        EXPECT_TRUE(rest == "counter" || rest == "gauge" || rest == "histogram")
            << "line " << n << ": " << line;
        e.type[name] = rest;
      }
      continue;
    }
    if (line[0] == '#') continue;  // other comments
    ExpoSample s;
    size_t i = 0;
    while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
    s.name = line.substr(0, i);
    bool ok = !s.name.empty();
    if (ok && i < line.size() && line[i] == '{') {
      ++i;
      while (ok && i < line.size() && line[i] != '}') {
        size_t eq = line.find("=\"", i);
        ok = eq != std::string::npos;
        if (!ok) break;
        std::string key = line.substr(i, eq - i);
        size_t j = eq + 2;
        std::string raw;
        while (j < line.size() && line[j] != '"') {
          if (line[j] == '\\' && j + 1 < line.size()) raw.push_back(line[j++]);
          raw.push_back(line[j++]);
        }
        ok = j < line.size() && Unescape(raw, true, &s.labels[key]);
        i = j + 1;
        if (ok && i < line.size() && line[i] == ',') ++i;
      }
      ok = ok && i < line.size() && line[i] == '}';
      ++i;
    }
    ok = ok && i < line.size() && line[i] == ' ';
    if (ok) s.value = line.substr(i + 1);
    // No timestamps, and the value must parse as a float in full.
    char* end = nullptr;
    if (ok) std::strtod(s.value.c_str(), &end);
    ok = ok && !s.value.empty() && end != nullptr && *end == '\0';
    EXPECT_TRUE(ok) << "line " << n << " is not a sample: " << line;
    if (ok) e.samples.push_back(std::move(s));
  }
  return e;
}

}  // namespace herd::api::testing
