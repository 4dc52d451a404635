#pragma once
// Incremental JSONL framing: feed bytes in chunks of any size, get whole
// lines (without '\n' or a trailing '\r') with their 1-based line numbers.
// A line longer than max_line_bytes is reported once as oversize and its
// bytes are skipped, never buffered, so memory stays O(max_line_bytes)
// whatever the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace herd::ingest {

struct Line {
  std::string_view text;  // valid only during the callback; empty when oversize
  uint64_t number = 0;    // 1-based
  bool oversize = false;
};

class LineSplitter {
 public:
  // Default: 1 MiB per line.
  explicit LineSplitter(size_t max_line_bytes = 1u << 20) : max_(max_line_bytes) {}

  // on_line(const Line&) is called for every line completed by `chunk`.
  template <typename F>
  void Feed(std::string_view chunk, F&& on_line);
  // Flushes a last line that has no '\n'.
  template <typename F>
  void Finish(F&& on_line);

  uint64_t lines() const { return line_no_; }
  uint64_t bytes() const { return bytes_; }

 private:
  template <typename F>
  void Emit(std::string_view text, F& on_line);
  size_t max_;
  std::string partial_;   // the current line's bytes so far (≤ max_)
  bool skipping_ = false;  // current line is oversize: drop until '\n'
  uint64_t line_no_ = 0;
  uint64_t bytes_ = 0;
};

template <typename F>
void LineSplitter::Emit(std::string_view text, F& on_line) {
  ++line_no_;
  Line l;
  l.number = line_no_;
  if (skipping_) {
    l.oversize = true;
  } else {
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    l.text = text;
  }
  on_line(static_cast<const Line&>(l));
}

template <typename F>
void LineSplitter::Feed(std::string_view chunk, F&& on_line) {
  bytes_ += chunk.size();
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    std::string_view piece = chunk.substr(0, nl);
    if (!skipping_ && partial_.size() + piece.size() > max_) {
      skipping_ = true;
      partial_.clear();
    }
    if (nl == std::string_view::npos) {
      if (!skipping_) partial_.append(piece);
      return;
    }
    if (skipping_) {
      Emit({}, on_line);
    } else if (partial_.empty()) {
      Emit(piece, on_line);  // the common case: the whole line is in this chunk
    } else {
      partial_.append(piece);
      Emit(partial_, on_line);
    }
    partial_.clear();
    skipping_ = false;
    chunk.remove_prefix(nl + 1);
  }
}

template <typename F>
void LineSplitter::Finish(F&& on_line) {
  if (skipping_ || !partial_.empty()) Emit(partial_, on_line);
  partial_.clear();
  skipping_ = false;
}

}  // namespace herd::ingest
