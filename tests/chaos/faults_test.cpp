// Faults on real processes (issue: trust it like a database): a worker cut
// off for longer than its lease, a data dir whose disk fills up, a
// checkpoint file corrupted on disk.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/mount.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "api/client/client.h"
#include "api/client/json_client.h"
#include "tests/chaos/crash_loop.h"
#include "tests/chaos/processes.h"
#include "tests/integration/herdd_process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tiny_llama.h"

namespace herd::chaos {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::unique_ptr<api::HttpClient> Client(const std::string& url) {
  api::ClientOptions co;
  co.base_url = url;
  co.timeout = std::chrono::milliseconds(20000);
  auto c = api::HttpClient::Create(co);
  return c.ok() ? std::move(c).value() : nullptr;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Creates a run of the crash loop's config on a fresh tiny base model,
// with its prompts; starts it when `start`.
std::string CreateRun(api::HttpClient& c, const std::string& base, int rounds, int train_steps, bool start) {
  EXPECT_TRUE(testing::SaveTinyChatModel(base, 5).ok());
  CrashLoopOptions o;
  o.rounds = rounds;
  o.train_steps = train_steps;
  auto run = api::SendJson(c, "POST", "/v1/runs", ChaosRunConfig(o, base));
  EXPECT_TRUE(run.ok()) << run.status().ToString();
  if (!run.ok()) return "";
  std::string id = (*run)["run"]["id"];
  auto up = c.Request("POST", "/v1/runs/" + id + "/prompts", ChaosPromptsJsonl());
  EXPECT_TRUE(up.ok() && up->status == 200);
  if (start) {
    auto st = c.Request("POST", "/v1/runs/" + id + ":start");
    EXPECT_TRUE(st.ok() && st->status == 200);
  }
  return id;
}

// Answers requests until the run ends or `until` says stop; the run state.
std::string Drive(const std::string& url, const std::string& run, int timeout_s,
                  const std::function<bool(api::HttpClient&)>& until = {}) {
  auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  std::string state;
  while (Clock::now() < deadline) {
    auto c = Client(url);
    testing::AnswerPendingRequests(*c, run, "faults");
    if (until && until(*c)) return "stopped";
    auto r = api::GetJson(*c, "/v1/runs/" + run);
    if (r.ok()) {
      state = (*r)["run"]["state"];
      if (state == "succeeded" || state == "failed" || state == "cancelled") return state;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "timeout (last state " + state + ")";
}

// A worker stopped (SIGSTOP) past its lease, as if cut off by a partition:
// herdd gives its task to another worker; when the stopped one wakes up,
// its heartbeats and late result are refused (410) and nothing is stored
// twice.
TEST(Faults, PartitionedWorkerLosesItsLeaseAndItsLateResultIsRefused) {
  testing::TempDir tmp("partition");
  Processes p(HERD_BINARY_DIR, tmp.path());
  p.herdd_args = {"--lease-ttl-ms", "1500"};
  ASSERT_TRUE(p.StartHerdd().ok()) << ReadFile(tmp.path() + "/herdd.log");
  ASSERT_TRUE(p.StartWorker(0).ok());
  auto c = Client(p.url());
  // Long training tasks, so that the worker is stopped mid-task.
  std::string run = CreateRun(*c, tmp.path() + "/base", 1, 1500, true);
  ASSERT_FALSE(run.empty());

  // Wait until worker 0 runs a reward-model task, then stop it.
  std::string task_id, w0;
  ASSERT_EQ(Drive(p.url(), run, 120, [&](api::HttpClient& cl) {
    auto leased = api::GetJson(cl, "/v1/tasks?state=leased&run=" + run);
    if (!leased.ok()) return false;
    for (const auto& t : (*leased)["tasks"]) {
      if (t["stage"] == "rm") {
        task_id = t["id"];
        w0 = t["worker_id"];
        return true;
      }
    }
    return false;
  }), "stopped");
  p.SignalWorker(0, SIGSTOP);
  ASSERT_TRUE(p.StartWorker(1).ok());

  // The task is leased again, to worker 1, once worker 0's lease expired.
  auto attempt_of = [&](api::HttpClient& cl, std::string* worker, std::string* state) {
    auto tasks = api::GetJson(cl, "/v1/tasks?run=" + run);
    if (!tasks.ok()) return 0;
    for (const auto& t : (*tasks)["tasks"]) {
      if (t["id"] == task_id) {
        *worker = t["worker_id"];
        *state = t["state"];
        return t["attempt"].get<int>();
      }
    }
    return 0;
  };
  std::string worker, state;
  ASSERT_EQ(Drive(p.url(), run, 60, [&](api::HttpClient& cl) {
    return attempt_of(cl, &worker, &state) >= 2 && !worker.empty() && worker != w0;
  }), "stopped");

  // Worker 0 wakes up: it must not get its stale work in.
  p.SignalWorker(0, SIGCONT);
  ASSERT_EQ(Drive(p.url(), run, 240), "succeeded") << ReadFile(tmp.path() + "/herdd.log");
  const std::string log0 = ReadFile(tmp.path() + "/worker0.log");
  EXPECT_TRUE(log0.find("lease lost") != std::string::npos ||
              log0.find("lease no longer current") != std::string::npos)
      << "worker 0 log:\n" << log0;
  EXPECT_GE(attempt_of(*c, &worker, &state), 2);
  EXPECT_EQ(state, "succeeded");
  EXPECT_NE(worker, w0);
  // The rm stage's tasks (two variants, their average), each succeeded
  // once: the late result did not add a task or a checkpoint.
  auto tasks = api::GetJson(*c, "/v1/tasks?run=" + run);
  ASSERT_TRUE(tasks.ok());
  int rm_tasks = 0;
  for (const auto& t : (*tasks)["tasks"]) {
    if (t["stage"] != "rm") continue;
    ++rm_tasks;
    EXPECT_EQ(t["state"], "succeeded");
  }
  EXPECT_EQ(rm_tasks, 3);
  int checkpoints = 0;
  auto cks = api::GetJson(*c, "/v1/runs/" + run + "/checkpoints?page_size=100");
  ASSERT_TRUE(cks.ok());
  for (const auto& ck : (*cks)["checkpoints"]) checkpoints += ck["stage"] == "rm";
  EXPECT_EQ(checkpoints, 1) << cks->dump();  // the variants are kept only as inputs of the average
  EXPECT_TRUE(p.Reap().empty());
}

// The data dir on a small tmpfs that fills up: writes answer 503
// problem+json naming the full disk, reads keep working, nothing stored is
// damaged, and herdd takes writes again by itself once space returns.
TEST(Faults, FullDiskRefusesWritesKeepsReadsAndRecovers) {
  testing::TempDir tmp("fulldisk");
  Processes p(HERD_BINARY_DIR, tmp.path());
  const std::string data = p.data_dir();
  if (mount("herd-test", data.c_str(), "tmpfs", 0, "size=48m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs at " << data << " (" << std::strerror(errno)
                 << "): this test needs root with CAP_SYS_ADMIN";
  }
  struct Unmount {
    std::string dir;
    ~Unmount() { umount2(dir.c_str(), MNT_DETACH); }
  } unmount{data};
  p.herdd_args = {"--min-free-disk-mb", "8"};
  ASSERT_TRUE(p.StartHerdd().ok()) << ReadFile(tmp.path() + "/herdd.log");
  auto c = Client(p.url());
  std::string run = CreateRun(*c, tmp.path() + "/base", 1, 4, false);
  ASSERT_FALSE(run.empty());
  auto batch = [](int b) {
    std::string body;
    for (int i = 0; i < 20; ++i) {
      body += json{{"id", "b" + std::to_string(b) + "-" + std::to_string(i)},
                   {"prompt", "What is " + std::to_string(i) + "+1?"},
                   {"chosen", std::to_string(i + 1)},
                   {"rejected", std::to_string(i + 2)}}.dump() + "\n";
    }
    return body;
  };
  auto upload = [&](int b) { return c->Request("POST", "/v1/runs/" + run + "/annotations?atomic=true", batch(b)); };
  auto r = upload(0);
  ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());

  // Fill the disk.
  {
    std::ofstream fill(data + "/filler", std::ios::binary);
    std::string mb(1 << 20, 'x');
    while (fill.write(mb.data(), mb.size()) && fill.flush()) {
    }
  }
  auto export_ids = [&] {
    std::multiset<std::string> ids;
    auto ex = c->Request("GET", "/v1/runs/" + run + "/export/annotations");
    EXPECT_TRUE(ex.ok() && ex->status == 200);
    if (!ex.ok()) return ids;
    std::istringstream lines(ex->body);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) ids.insert(json::parse(line).value("id", ""));
    }
    return ids;
  };

  // Writes are refused with 503 problem+json; herdd stays up.
  for (int attempt = 0; attempt < 3; ++attempt) {
    r = upload(1);
    ASSERT_TRUE(r.ok()) << r.status().ToString() << "\nherdd log:\n" << ReadFile(tmp.path() + "/herdd.log");
    EXPECT_EQ(r->status, 503) << r->body;
    EXPECT_NE(r->content_type.find("application/problem+json"), std::string::npos);
    EXPECT_NE(r->body.find("space"), std::string::npos) << r->body;
  }
  auto created = c->Request("POST", "/v1/runs", R"({"name":"x","base_checkpoint":")" + tmp.path() + "/base\"}");
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->status, 503) << created->body;
  // Reads work, and what was stored before is whole.
  auto got = api::GetJson(*c, "/v1/runs/" + run);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(export_ids().size(), 20u);
  auto health = c->Request("GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_TRUE(p.Reap().empty()) << ReadFile(tmp.path() + "/herdd.log");

  // Space returns: herdd takes writes again by itself.
  fs::remove(data + "/filler");
  auto deadline = Clock::now() + std::chrono::seconds(30);
  int status = 0;
  while (Clock::now() < deadline) {
    r = upload(1);
    status = r.ok() ? r->status : 0;
    if (status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(status, 200) << (r.ok() ? r->body : r.status().ToString()) << ReadFile(tmp.path() + "/herdd.log");
  auto ids = export_ids();
  EXPECT_EQ(ids.size(), 40u);
  for (const auto& id : ids) EXPECT_EQ(ids.count(id), 1u) << id;

  // And all of it survives a restart.
  p.KillHerdd();
  ASSERT_TRUE(p.StartHerdd().ok()) << ReadFile(tmp.path() + "/herdd.log");
  c = Client(p.url());
  EXPECT_EQ(export_ids().size(), 40u);
}


// A checkpoint file changed on disk after it was written: the task that
// loads it fails naming the file (checksums.sha256 no longer matches), herdd
// marks the checkpoint corrupt, and the stage starts again from the last
// good checkpoint; the run finishes.
TEST(Faults, CorruptCheckpointFailsTheTaskNamingTheFileAndTheStageRetriesFromTheLastGood) {
  testing::TempDir tmp("corrupt");
  Processes p(HERD_BINARY_DIR, tmp.path());
  ASSERT_TRUE(p.StartHerdd().ok()) << ReadFile(tmp.path() + "/herdd.log");
  ASSERT_TRUE(p.StartWorker(0).ok());
  ASSERT_TRUE(p.StartWorker(1).ok());
  auto c = Client(p.url());
  std::string run = CreateRun(*c, tmp.path() + "/base", 2, 300, true);
  ASSERT_FALSE(run.empty());

  // While round 2 trains DPO, corrupt round 1's policy (its DPO model),
  // which round 2's eval loads as the previous policy.
  ASSERT_EQ(Drive(p.url(), run, 180, [&](api::HttpClient& cl) {
    auto r = api::GetJson(cl, "/v1/runs/" + run);
    return r.ok() && (*r)["run"]["current_round"] == 2 && (*r)["run"]["current_stage"] == "dpo";
  }), "stopped");
  auto cks = api::GetJson(*c, "/v1/runs/" + run + "/checkpoints?page_size=100");
  ASSERT_TRUE(cks.ok());
  std::string id, rel;
  for (const auto& ck : (*cks)["checkpoints"]) {
    if (ck["stage"] == "dpo" && ck["round"] == 1) {
      id = ck["id"];
      rel = ck["path"];
    }
  }
  ASSERT_FALSE(id.empty()) << cks->dump();
  const std::string file = p.data_dir() + "/artifacts/" + rel + "/model.safetensors";
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.is_open()) << file;
    f.seekp(static_cast<std::streamoff>(fs::file_size(file) / 2));
    f.write("corrupted by the test", 21);
  }

  ASSERT_EQ(Drive(p.url(), run, 240), "succeeded") << ReadFile(tmp.path() + "/herdd.log");
  // The failed task names the file.
  auto tasks = api::GetJson(*c, "/v1/tasks?run=" + run + "&state=failed");
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ((*tasks)["tasks"].size(), 1u) << tasks->dump();
  const json& t = (*tasks)["tasks"][0];
  EXPECT_EQ(t["stage"], "eval");
  EXPECT_NE(t["error"].get<std::string>().find("corrupt checkpoint"), std::string::npos) << t["error"];
  EXPECT_NE(t["error"].get<std::string>().find(rel + ": model.safetensors: sha256"), std::string::npos)
      << t["error"];
  // The checkpoint is marked, the event says what happened, and eval ran
  // a second time.
  cks = api::GetJson(*c, "/v1/runs/" + run + "/checkpoints?page_size=100");
  ASSERT_TRUE(cks.ok());
  for (const auto& ck : (*cks)["checkpoints"]) {
    const std::string why = ck.value("corrupt", "");
    if (ck["id"] == id) {
      EXPECT_NE(why.find("model.safetensors"), std::string::npos) << ck.dump();
    } else {
      EXPECT_EQ(why, "") << ck.dump();
    }
  }
  int corrupt_events = 0;
  auto events = api::GetJson(*c, "/v1/runs/" + run + "/events?page_size=1000");
  ASSERT_TRUE(events.ok());
  for (const auto& e : (*events)["events"]) {
    if (e["kind"] != "checkpoint.corrupt") continue;
    ++corrupt_events;
    EXPECT_NE(e["message"].get<std::string>().find("checkpoint " + id), std::string::npos) << e.dump();
    EXPECT_NE(e["message"].get<std::string>().find("model.safetensors"), std::string::npos) << e.dump();
  }
  EXPECT_EQ(corrupt_events, 1);
  auto round = api::GetJson(*c, "/v1/runs/" + run + "/rounds/2");
  ASSERT_TRUE(round.ok());
  for (const auto& st : (*round)["round"]["stages"]) {
    if (st["stage"] == "eval") {
      EXPECT_EQ(st["attempt"].get<int>(), 1) << st.dump();  // started again once
      EXPECT_EQ(st["state"], "succeeded");
    }
  }
  EXPECT_TRUE(p.Reap().empty());
}

}  // namespace
}  // namespace herd::chaos
