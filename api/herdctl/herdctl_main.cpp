// herdctl: the command-line client of herdd's REST API (docs/api.md).
// Human output by default, --json for scripts; exit 0 on success, 1 when
// herdd refused the request, 2 for a bad command line or no answer.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "api/client/client.h"
#include "api/client/json_client.h"
#include "api/wire/http.h"
#include "api/wire/problem.h"
#include "common/version.h"

namespace {

using nlohmann::json;
using herd::api::HttpClient;

struct Ctx {
  std::unique_ptr<HttpClient> client;
  bool json_out = false;
};

int Fail(const std::string& what, int rc = 1) {
  std::fprintf(stderr, "herdctl: %s\n", what.c_str());
  return rc;
}

// The response as JSON, or prints the problem and returns nullopt.
std::optional<json> Check(const herd::Result<herd::api::Response>& r, int* rc) {
  if (!r.ok()) {
    std::fprintf(stderr, "herdctl: no answer from herdd: %s\n", r.status().message().c_str());
    if (r.status().message().find("certificate verify failed") != std::string::npos) {
      std::fprintf(stderr,
                   "herdctl: trust herdd's CA (or its self-signed certificate) with --ca-file FILE "
                   "or HERD_CA_FILE\n");
    }
    *rc = 2;
    return std::nullopt;
  }
  if (r->status >= 400) {
    auto p = herd::api::ParseProblem(r->body);
    std::fprintf(stderr, "herdctl: %d %s: %s\n", r->status, p.title.c_str(), p.detail.c_str());
    json body = json::parse(r->body, nullptr, false);
    if (body.is_object() && body.contains("errors")) {
      for (const auto& e : body["errors"]) {
        std::fprintf(stderr, "  line %lld: %s\n", e.value("line", 0LL), e.value("detail", "").c_str());
      }
    }
    *rc = 1;
    return std::nullopt;
  }
  *rc = 0;
  if (r->body.empty()) return json::object();
  json j = json::parse(r->body, nullptr, false);
  return j.is_discarded() ? json(r->body) : j;
}

std::string Bar(double ratio, int width = 24) {
  ratio = std::max(0.0, std::min(1.0, ratio));
  int n = static_cast<int>(ratio * width + 0.5);
  return "[" + std::string(n, '#') + std::string(width - n, '.') + "]";
}

void PrintRun(const json& r) {
  std::printf("%-10s %-16s %-10s round %-3d %s\n", r.value("id", "").c_str(), r.value("name", "").c_str(),
              r.value("state", "").c_str(), r.value("current_round", 0), r.value("current_stage", "").c_str());
  if (!r.value("error", "").empty()) std::printf("  error: %s\n", r.value("error", "").c_str());
}

// One line per stage of the current round, and the running tasks' heartbeats.
void PrintProgress(const json& run) {
  PrintRun(run);
  if (run.contains("round")) {
    for (const auto& s : run["round"]["stages"]) {
      double total = s.value("tasks_total", 0.0), done = s.value("tasks_done", 0.0);
      std::string st = s.value("state", "");
      double ratio = st == "succeeded" ? 1.0 : total > 0 ? done / total : 0.0;
      std::printf("  %-19s %-9s %s %3.0f/%-3.0f\n", s.value("stage", "").c_str(), st.c_str(), Bar(ratio).c_str(),
                  done, total);
    }
  }
  for (const auto& t : run.value("running_tasks", json::array())) {
    const json& p = t["progress"];
    std::printf("    %-16s %-8s", t.value("kind", "").c_str(), t.value("worker_id", "").c_str());
    if (p.contains("step")) std::printf(" step %lld/%lld", p.value("step", 0LL), p.value("total_steps", 0LL));
    if (p.contains("loss")) std::printf(" loss %.4f", p.value("loss", 0.0));
    if (p.contains("tokens_per_s")) std::printf(" %.0f tok/s", p.value("tokens_per_s", 0.0));
    std::printf("\n");
  }
  std::printf("  disk %.1f MiB\n", run.value("disk_bytes", 0.0) / (1 << 20));
}

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream f(path, std::ios::binary);
  *ok = static_cast<bool>(f);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"herdctl: control herd runs through herdd's REST API"};
  app.set_version_flag("--version", std::string("herdctl ") + herd::kVersion);
  std::string url = "http://127.0.0.1:8080";
  std::string token_file;
  std::string ca_file;
  bool json_out = false;
  app.add_option("--url", url, "herdd base URL, http:// or https:// (or HERD_URL)")
      ->envname("HERD_URL")
      ->capture_default_str();
  app.add_option("--token-file", token_file, "file holding a bearer token (or HERD_TOKEN_FILE)")
      ->envname("HERD_TOKEN_FILE");
  app.add_option("--ca-file", ca_file,
                 "https: PEM certificates to trust, herdd's CA or its self-signed certificate "
                 "(or HERD_CA_FILE). Default: the system's CAs")
      ->envname("HERD_CA_FILE");
  app.add_flag("--json", json_out, "machine-readable output");
  app.require_subcommand(1);

  std::string run, file, state = "pending", idem_key;
  int round = 0;
  bool atomic = false;
  double interval = 1.0;

  auto* runs = app.add_subcommand("runs", "create, list, inspect and steer runs")->require_subcommand(1);
  auto* create = runs->add_subcommand("create", "create a run from a config file");
  create->add_option("CONFIG", file, "run config JSON (configs/tiny.json, ...)")->required();
  auto* list = runs->add_subcommand("list", "list runs");
  auto* get = runs->add_subcommand("get", "show a run and its current round");
  get->add_option("RUN", run)->required();
  std::vector<std::pair<std::string, CLI::App*>> verbs;
  for (const char* v : {"start", "pause", "resume", "cancel"}) {
    auto* s = runs->add_subcommand(v, std::string(v) + " a run");
    s->add_option("RUN", run)->required();
    verbs.emplace_back(v, s);
  }
  auto* watch = runs->add_subcommand("watch", "live progress of a run until it ends");
  watch->add_option("RUN", run)->required();
  watch->add_option("--interval", interval, "seconds between refreshes")->capture_default_str();

  auto* ann = app.add_subcommand("annotations", "upload human preference annotations")->require_subcommand(1);
  auto* upload = ann->add_subcommand("upload", "upload a JSONL file (pairwise, ranked, HH-RLHF, UltraFeedback)");
  upload->add_option("RUN", run)->required();
  upload->add_option("FILE", file)->required()->check(CLI::ExistingFile);
  upload->add_flag("--atomic", atomic, "store nothing if any line is invalid");
  upload->add_option("--idempotency-key", idem_key, "retry-safe key. Default: none");

  auto* prompts = app.add_subcommand("prompts", "upload prompts")->require_subcommand(1);
  auto* pupload = prompts->add_subcommand("upload", "upload a JSONL file of {id?, prompt, split?}");
  pupload->add_option("RUN", run)->required();
  pupload->add_option("FILE", file)->required()->check(CLI::ExistingFile);
  pupload->add_flag("--atomic", atomic, "store nothing if any line is invalid");

  auto* reqs = app.add_subcommand("requests", "annotation requests")->require_subcommand(1);
  auto* rlist = reqs->add_subcommand("list", "list annotation requests");
  rlist->add_option("RUN", run)->required();
  rlist->add_option("--state", state, "pending | answered | expired | all")->capture_default_str();

  auto* samples = app.add_subcommand("samples", "samples")->require_subcommand(1);
  auto* sexport = samples->add_subcommand("export", "write a round's samples as JSONL to stdout");
  sexport->add_option("RUN", run)->required();
  sexport->add_option("--round", round, "round number")->required();

  std::string kind, out_file;
  auto* exp = app.add_subcommand("export", "write a run's records as JSONL (streamed; stdout by default)");
  exp->add_option("KIND", kind, "samples | pairs | annotations | prompts")
      ->required()
      ->check(CLI::IsMember({"samples", "pairs", "annotations", "prompts"}));
  exp->add_option("RUN", run)->required();
  exp->add_option("-o,--output", out_file, "write to FILE (complete or not at all) instead of stdout");
  exp->add_option("--round", round, "only this round (samples and pairs). Default: every round");

  std::string backup_dir;
  auto* backup = app.add_subcommand("backup", "backups of the database and artifacts")->require_subcommand(1);
  auto* bcreate = backup->add_subcommand("create", "back up into DIR on herdd's machine (new or empty)");
  bcreate->add_option("DIR", backup_dir, "absolute path; restore with herdd --restore-backup DIR")->required();

  CLI11_PARSE(app, argc, argv);

  herd::api::ClientOptions co;
  co.base_url = url;
  co.ca_file = ca_file;
  co.timeout = std::chrono::seconds(600);
  if (!token_file.empty()) {
    bool ok = false;
    co.token = ReadFile(token_file, &ok);
    if (!ok) return Fail("--token-file: cannot read '" + token_file + "'", 2);
    while (!co.token.empty() && (co.token.back() == '\n' || co.token.back() == '\r' || co.token.back() == ' ')) {
      co.token.pop_back();
    }
  }
  {
    std::string host, port;
    if (auto s = herd::api::ParseBaseUrl(url, &host, &port); !s.ok()) {
      return Fail("--url: " + s.message(), 2);
    }
  }
  auto client = HttpClient::Create(co);  // a valid URL: only the CA file can fail
  if (!client.ok()) return Fail("--ca-file: " + client.status().message(), 2);
  HttpClient& c = **client;
  int rc = 0;
  auto out = [&](const json& j) { std::printf("%s\n", j.dump(2).c_str()); };

  if (*create) {
    bool ok = false;
    std::string body = ReadFile(file, &ok);
    if (!ok) return Fail("cannot read " + file, 2);
    herd::api::Headers h;
    h.Set("Content-Type", "application/json");
    auto j = Check(c.Request("POST", "/v1/runs", body, h), &rc);
    if (!j) return rc;
    if (json_out) out(*j);
    else std::printf("%s\n", (*j)["run"]["id"].get<std::string>().c_str());
    return 0;
  }
  if (*list) {
    std::string token;
    json all = json::array();
    do {
      auto j = Check(c.Request("GET", "/v1/runs?page_size=100" + (token.empty() ? "" : "&page_token=" + token)), &rc);
      if (!j) return rc;
      for (const auto& r : (*j)["runs"]) all.push_back(r);
      token = j->value("next_page_token", "");
    } while (!token.empty());
    if (json_out) out(all);
    else for (const auto& r : all) PrintRun(r);
    return 0;
  }
  const std::string run_path = "/v1/runs/" + herd::api::PercentEncode(run);
  if (*get) {
    auto j = Check(c.Request("GET", run_path), &rc);
    if (!j) return rc;
    if (json_out) out(*j);
    else PrintProgress((*j)["run"]);
    return 0;
  }
  for (auto& [v, sub] : verbs) {
    if (!*sub) continue;
    auto j = Check(c.Request("POST", run_path + ":" + v, ""), &rc);
    if (!j) return rc;
    if (json_out) out(*j);
    else PrintRun((*j)["run"]);
    return 0;
  }
  if (*watch) {
    const bool tty = isatty(1) && !json_out;
    while (true) {
      auto j = Check(c.Request("GET", run_path), &rc);
      if (!j) return rc;
      const json& r = (*j)["run"];
      if (json_out) std::printf("%s\n", r.dump().c_str());
      else {
        if (tty) std::printf("\033[H\033[2J");
        PrintProgress(r);
      }
      std::fflush(stdout);
      std::string st = r.value("state", "");
      if (st == "succeeded") return 0;
      if (st == "failed" || st == "cancelled") return 1;
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(interval * 1000)));
    }
  }
  if (*upload || *pupload) {
    herd::api::Headers h;
    if (!idem_key.empty()) h.Set("Idempotency-Key", idem_key);
    const bool show = !json_out && isatty(2);
    auto progress = [&](uint64_t sent, uint64_t total) {
      if (show) std::fprintf(stderr, "\rupload %s %5.1f%%", Bar(total ? double(sent) / total : 1).c_str(),
                             total ? 100.0 * sent / total : 100.0);
    };
    std::string target = run_path + (*upload ? "/annotations" : "/prompts") + (atomic ? "?atomic=true" : "");
    auto r = c.UploadFile("POST", target, file, "application/x-ndjson", progress, h);
    if (show) std::fprintf(stderr, "\n");
    auto j = Check(r, &rc);
    if (!j) return rc;
    if (json_out) out(*j);
    else {
      std::printf("accepted %lld, duplicates %lld, rejected %lld\n", j->value("accepted", 0LL),
                  j->value("duplicates", 0LL), j->value("rejected", 0LL));
      for (const auto& e : j->value("errors", json::array())) {
        std::printf("  line %lld: %s\n", e.value("line", 0LL), e.value("detail", "").c_str());
      }
    }
    return j->value("rejected", 0LL) > 0 ? 1 : 0;
  }
  if (*rlist) {
    std::string q = state == "all" ? "" : "state=" + state + "&";
    std::string token;
    json all = json::array();
    do {
      auto j = Check(c.Request("GET", run_path + "/annotation-requests?" + q + "page_size=100" +
                                          (token.empty() ? "" : "&page_token=" + token)), &rc);
      if (!j) return rc;
      for (const auto& r : (*j)["annotation_requests"]) all.push_back(r);
      token = j->value("next_page_token", "");
    } while (!token.empty());
    if (json_out) out(all);
    else {
      for (const auto& r : all) {
        std::printf("%-10s round %d %-9s prompt %s\n", r.value("id", "").c_str(), r.value("round", 0),
                    r.value("state", "").c_str(), r.value("prompt_id", "").c_str());
      }
      std::printf("%zu request(s)\n", all.size());
    }
    return 0;
  }
  if (*sexport || *exp) {
    if (*sexport) kind = "samples";
    std::string target = run_path + "/export/" + kind + (round > 0 ? "?round=" + std::to_string(round) : "");
    // To a file: write FILE.partial and rename it at the end, so a FILE
    // that exists is a whole export.
    const std::string partial = out_file.empty() ? "" : out_file + ".partial";
    std::FILE* f = out_file.empty() ? stdout : std::fopen(partial.c_str(), "wb");
    if (!f) return Fail("-o: cannot write '" + partial + "'", 2);
    uint64_t lines = 0;
    auto r = c.Download(target, [&](std::string_view piece) {
      lines += static_cast<uint64_t>(std::count(piece.begin(), piece.end(), '\n'));
      if (std::fwrite(piece.data(), 1, piece.size(), f) != piece.size()) {
        return herd::Status::IoError("write " + (out_file.empty() ? std::string("stdout") : partial) + " failed");
      }
      return herd::Status::Ok();
    });
    const bool flushed = std::fflush(f) == 0;
    if (f != stdout) std::fclose(f);
    if (r.ok() && !flushed) r = herd::Status::IoError("flush of the export failed");
    if (r.ok() && r->status < 300) {
      if (!out_file.empty()) {
        if (std::rename(partial.c_str(), out_file.c_str()) != 0) return Fail("cannot rename " + partial, 2);
        std::fprintf(stderr, "%llu %s written to %s\n", static_cast<unsigned long long>(lines), kind.c_str(),
                     out_file.c_str());
      }
      return 0;
    }
    if (!out_file.empty()) std::remove(partial.c_str());
    if (!r.ok() && r.status().code() == herd::Status::Code::kIoError) return Fail(r.status().message(), 2);
    Check(r, &rc);
    return rc;
  }
  if (*bcreate) {
    herd::api::Headers h;
    h.Set("Content-Type", "application/json");
    auto j = Check(c.Request("POST", "/v1/backups", json{{"dir", backup_dir}}.dump(), h), &rc);
    if (!j) return rc;
    if (json_out) out(*j);
    else {
      const json& b = (*j)["backup"];
      std::printf("backup in %s (%lld artifact file(s), %.1f MiB)\n", b.value("dir", "").c_str(),
                  b.value("artifact_files", 0LL), b.value("artifact_bytes", 0.0) / (1 << 20));
    }
    return 0;
  }
  return 2;
}
