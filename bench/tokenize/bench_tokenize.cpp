// bench_tokenize: single-core encode throughput of the HF tokenizer
// (workers/model/hf_tokenizer.h) against HF `tokenizers` on the same input.
//
// Corpus: the parity cases of the tokenizer's fixture (English, code,
// Cyrillic, CJK, Arabic, emoji, digits, white space, special-token text) in
// shuffled order, interleaved with synthetic paragraphs of random Latin and
// Cyrillic syllable words and numbers (a long tail of distinct words, so the
// word cache does not see only repeats), up to --mb MB. Paragraphs are
// joined by "\n\n"; "pieces" mode encodes them one by one (split on "\n\n"),
// "one string" mode encodes the whole corpus in one call. Added-token text
// is parsed (parse_special), as HF's encode does.
//
// With a Python that has `tokenizers` (--python PATH or $HERD_BENCH_PYTHON;
// never required), the same run measures HF on one thread
// (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false): encode(one string),
// encode_batch(pieces) and, where it exists, encode_batch_fast(pieces); it
// prints both, the ratio, and whether the token counts agree.
//
// Usage: bench_tokenize [--tokenizer PATH] [--cases PATH] [--mb N] [--reps R]
//                       [--python PATH]
//   defaults: SmolLM2's fixture tokenizer.json and cases.json, 4 MB, best of 3.
// Prints figures; never fails on time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "workers/model/hf_tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double BestSeconds(int reps, F f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string SyntheticParagraph(std::mt19937& rng) {
  static const char* latin[] = {"ka",  "ro", "mi",  "ten", "sul", "bra", "qu", "is",  "on", "ve",
                                "lat", "or", "pre", "ex",  "dun", "gal", "fi", "nor", "zy", "th"};
  static const char* cyrillic[] = {"ка", "ро", "ми", "тен", "суль", "бра", "ис", "он", "ве", "лат"};
  std::string p;
  const int words = 40 + static_cast<int>(rng() % 80);
  for (int w = 0; w < words; ++w) {
    if (w > 0) p += (rng() % 12 == 0) ? ", " : " ";
    const uint32_t kind = rng() % 10;
    if (kind == 0) {
      p += std::to_string(rng() % 100000);
      continue;
    }
    const int syllables = 1 + static_cast<int>(rng() % 4);
    for (int s = 0; s < syllables; ++s) {
      p += kind == 1 ? cyrillic[rng() % 10] : latin[rng() % 20];
    }
    if (kind == 2 && !p.empty()) p[p.size() - 1] = static_cast<char>(std::toupper(p.back()));
  }
  p += '.';
  return p;
}

std::vector<std::string> SplitPieces(const std::string& text) {
  std::vector<std::string> pieces;
  size_t start = 0;
  while (true) {
    const size_t k = text.find("\n\n", start);
    pieces.push_back(text.substr(start, k == std::string::npos ? std::string::npos : k - start));
    if (k == std::string::npos) break;
    start = k + 2;
  }
  return pieces;
}

// HF tokenizers on one thread; prints "name seconds bytes tokens" lines.
constexpr const char* kPython = R"PY(
import sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
text = open(sys.argv[2], encoding="utf-8", newline="").read()  # no \r\n translation
reps = int(sys.argv[3])
pieces = text.split("\n\n")
nbytes = len(text.encode("utf-8"))
pbytes = sum(len(p.encode("utf-8")) for p in pieces)
def best(f):
    b, out = 1e30, None
    for _ in range(reps):
        t0 = time.perf_counter(); out = f(); b = min(b, time.perf_counter() - t0)
    return b, out
s, e = best(lambda: tok.encode(text, add_special_tokens=False))
print("one_string", s, nbytes, len(e.ids))
s, es = best(lambda: tok.encode_batch(pieces, add_special_tokens=False))
print("encode_batch", s, pbytes, sum(len(x.ids) for x in es))
if hasattr(tok, "encode_batch_fast"):
    s, es = best(lambda: tok.encode_batch_fast(pieces, add_special_tokens=False))
    print("encode_batch_fast", s, pbytes, sum(len(x.ids) for x in es))
if len(sys.argv) > 4:
    import json
    with open(sys.argv[4], "w") as f:
        json.dump([x.ids for x in tok.encode_batch(pieces, add_special_tokens=False)], f)
import tokenizers
print("version", tokenizers.__version__, 0, 0)
)PY";

}  // namespace

int main(int argc, char** argv) {
  using namespace herd::model;
  const std::string fixture =
      std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/smollm2_tokenizer/";
  std::string tokenizer_path = fixture + "tokenizer.json", cases_path = fixture + "cases.json";
  double mb = 4.0;
  int reps = 3;
  std::string python = std::getenv("HERD_BENCH_PYTHON") ? std::getenv("HERD_BENCH_PYTHON") : "";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--tokenizer") {
      tokenizer_path = next();
    } else if (a == "--cases") {
      cases_path = next();
    } else if (a == "--mb") {
      mb = std::atof(next().c_str());
    } else if (a == "--reps") {
      reps = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--python") {
      python = next();
    } else {
      std::fprintf(stderr,
                   "usage: bench_tokenize [--tokenizer PATH] [--cases PATH] [--mb N] [--reps R] "
                   "[--python PATH]\n");
      return 2;
    }
  }

  auto loaded = Tokenizer::FromFile(tokenizer_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().ToString().c_str());
    return 1;
  }
  const auto& tok = *loaded;
  std::vector<std::string> cases;
  const nlohmann::json cases_json = nlohmann::json::parse(ReadFile(cases_path), nullptr, false);
  if (cases_json.is_object() && cases_json.contains("cases")) {
    for (const auto& c : cases_json["cases"]) {
      if (!c["text"].get<std::string>().empty()) cases.push_back(c["text"]);
    }
  }
  if (cases.empty()) {
    std::fprintf(stderr, "%s: no cases\n", cases_path.c_str());
    return 1;
  }

  // The corpus, deterministic for a given --mb.
  std::mt19937 rng(12345);
  std::string corpus;
  const size_t target = static_cast<size_t>(mb * 1e6);
  while (corpus.size() < target) {
    std::shuffle(cases.begin(), cases.end(), rng);
    for (const auto& c : cases) {
      if (!corpus.empty()) corpus += "\n\n";
      corpus += (rng() % 2 == 0) ? c : SyntheticParagraph(rng);
      if (corpus.size() >= target) break;
    }
  }
  const std::vector<std::string> pieces = SplitPieces(corpus);
  size_t piece_bytes = 0;
  for (const auto& p : pieces) piece_bytes += p.size();

  const EncodeOptions opts{.parse_special = true};
  std::vector<int32_t> ids;
  ids.reserve(corpus.size());
  // Warm-up: the per-thread word cache fills as it would in a long run.
  tok->EncodeAppend(corpus, &ids, opts);
  const double one_s = BestSeconds(reps, [&] {
    ids.clear();
    tok->EncodeAppend(corpus, &ids, opts);
  });
  const size_t one_tokens = ids.size();
  size_t piece_tokens = 0;
  const double pieces_s = BestSeconds(reps, [&] {
    ids.clear();
    for (const auto& p : pieces) tok->EncodeAppend(p, &ids, opts);
    piece_tokens = ids.size();
  });
  const double herd_one = corpus.size() / one_s / 1e6, herd_pieces = piece_bytes / pieces_s / 1e6;
  std::printf("tokenizer %s\ncorpus %.2f MB, %zu pieces, best of %d, one core\n",
              tokenizer_path.c_str(), corpus.size() / 1e6, pieces.size(), reps);
  std::printf("herd  one string        %7.2f MB/s  %zu tokens (%.2f bytes/token)\n", herd_one,
              one_tokens, static_cast<double>(corpus.size()) / one_tokens);
  std::printf("herd  pieces            %7.2f MB/s  %zu tokens\n", herd_pieces, piece_tokens);

  if (python.empty()) {
    std::printf("HF tokenizers: skipped (pass --python PATH or set HERD_BENCH_PYTHON)\n");
    return 0;
  }
  char corpus_path[] = "/tmp/bench_tokenize_XXXXXX";
  char script_path[] = "/tmp/bench_tokenize_py_XXXXXX";
  char ids_path[] = "/tmp/bench_tokenize_ids_XXXXXX";
  const int cfd = mkstemp(corpus_path), sfd = mkstemp(script_path), ifd = mkstemp(ids_path);
  if (ifd >= 0) close(ifd);
  if (cfd < 0 || sfd < 0 || ifd < 0) {
    std::printf("HF tokenizers: skipped (cannot write a temporary file)\n");
    return 0;
  }
  FILE* cf = fdopen(cfd, "wb");
  std::fwrite(corpus.data(), 1, corpus.size(), cf);
  std::fclose(cf);
  FILE* sf = fdopen(sfd, "wb");
  std::fputs(kPython, sf);
  std::fclose(sf);
  const std::string cmd = "RAYON_NUM_THREADS=1 RAYON_RS_NUM_CPUS=1 TOKENIZERS_PARALLELISM=false '" +
                          python + "' " + script_path + " '" + tokenizer_path + "' " + corpus_path +
                          " " + std::to_string(reps) + " " + ids_path;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  if (p != nullptr) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
  }
  std::remove(corpus_path);
  std::remove(script_path);
  // Parity at scale: HF's ids for every piece against herd's.
  const auto hf_ids = nlohmann::json::parse(ReadFile(ids_path), nullptr, false);
  std::remove(ids_path);
  if (hf_ids.is_array() && hf_ids.size() == pieces.size()) {
    size_t differ = 0;
    for (size_t i = 0; i < pieces.size(); ++i) {
      const auto mine = tok->Encode(pieces[i], opts);
      if (mine == hf_ids[i].get<std::vector<int32_t>>()) continue;
      if (differ++ == 0) {
        std::printf("first piece that differs from HF (#%zu): %s\n", i,
                    nlohmann::json(pieces[i].substr(0, 300)).dump().c_str());
      }
    }
    std::printf("parity: %zu of %zu pieces differ from HF\n", differ, pieces.size());
  } else {
    std::printf("parity: not checked (HF wrote %zu id lists for %zu pieces)\n",
                hf_ids.is_array() ? hf_ids.size() : 0, pieces.size());
  }
  std::istringstream lines(out);
  std::string name, version = "?";
  double seconds = 0, best_hf = 0;
  size_t bytes = 0, tokens = 0;
  bool any = false;
  while (lines >> name >> seconds >> bytes >> tokens) {
    if (name == "version") continue;
    any = true;
    const double mbps = bytes / seconds / 1e6;
    best_hf = std::max(best_hf, mbps);
    const size_t want = name == "one_string" ? one_tokens : piece_tokens;
    std::printf("HF    %-18s%7.2f MB/s  %zu tokens%s\n", name.c_str(), mbps, tokens,
                tokens == want ? " (same count as herd)" : " (DIFFERENT count from herd)");
  }
  if (auto v = out.find("version "); v != std::string::npos) {
    version = out.substr(v + 8, out.find(' ', v + 8) - v - 8);
  }
  if (!any) {
    std::printf("HF tokenizers: failed to run %s:\n%s\n", python.c_str(), out.c_str());
    return 0;
  }
  std::printf("tokenizers %s; herd / best HF: one string %.2fx, pieces %.2fx\n", version.c_str(),
              herd_one / best_hf, herd_pieces / best_hf);
  return 0;
}
