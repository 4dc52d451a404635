// herd over HTTPS with real processes on loopback: the worker protocol
// (a herd-worker with --ca-file leases and completes a task; local workers
// spawned by herdd trust its certificate), herdctl with --ca-file and
// HERD_CA_FILE, the warning for bearer tokens in clear text, and herdd's
// TLS flag errors. Certificates are made by the openssl CLI at run time.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/sha256.h"
#include "herdd_process.h"
#include "tests/testing/tiny_llama.h"
#include "tests/testing/tls_certs.h"

namespace herd::testing {
namespace {

using nlohmann::json;

// A process with stdout and stderr in a log file; SIGKILLed if still
// running at the end.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> args, std::string log) : log_(std::move(log)) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = freopen(log_.c_str(), "a", stderr);
      (void)f;
      dup2(2, 1);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~ChildProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Waits up to `limit` for the exit: its status, or -1 when still running.
  int Wait(std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  std::string Log() const {
    std::ifstream f(log_);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

class TlsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = OpensslUnavailable(); !why.empty()) GTEST_SKIP() << why;
    auto c = MakeSelfSigned(tmp_.path(), "herdd");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    tls_ = *c;
    herdd_.UseTls(tls_.cert);
  }
  std::vector<std::string> TlsFlags() const {
    return {"--tls-cert", tls_.cert, "--tls-key", tls_.key};
  }
  static std::vector<std::string> Plus(std::vector<std::string> a,
                                       const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  // A run in its collect stage on a tiny real model: 3 prompts → one
  // generate task, whose result becomes 3 annotation requests.
  std::string MakeRun(api::HttpClient& c) {
    Status base = SaveTinyChatModel(tmp_.path() + "/base", 5);
    EXPECT_TRUE(base.ok()) << base.ToString();
    json cfg = {
        {"name", "tls"},
        {"base_checkpoint", tmp_.path() + "/base"},
        {"annotation", {{"comparisons_per_round", 3}, {"min_answers", 3}, {"max_new_tokens", 6}}}};
    auto run = api::SendJson(c, "POST", "/v1/runs", cfg);
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    if (!run.ok()) return "";
    std::string id = (*run)["run"]["id"];
    auto up = c.Request("POST", "/v1/runs/" + id + "/prompts",
                        "{\"id\":\"p1\",\"prompt\":\"1+1\"}\n{\"id\":\"p2\",\"prompt\":\"2+2\"}\n"
                        "{\"id\":\"p3\",\"prompt\":\"3+3\"}\n");
    EXPECT_TRUE(up.ok() && up->status == 200) << (up.ok() ? up->body : up.status().ToString());
    auto st = c.Request("POST", "/v1/runs/" + id + ":start", "");
    EXPECT_TRUE(st.ok() && st->status == 200) << (st.ok() ? st->body : st.status().ToString());
    return id;
  }
  static size_t PendingRequests(api::HttpClient& c, const std::string& run) {
    auto reqs = api::GetJson(c, "/v1/runs/" + run + "/annotation-requests?state=pending");
    return reqs.ok() ? (*reqs)["annotation_requests"].size() : 0;
  }
  std::string WriteAuthFile() {
    std::string path = tmp_.path() + "/auth.jsonl";
    std::ofstream(path) << json{{"name", "root"},
                                {"role", "admin"},
                                {"token_sha256", Sha256Hex("tok-admin")}}
                               .dump()
                        << "\n";
    return path;
  }

  TempDir tmp_{"tls-it"};
  TlsFiles tls_;
  HerddProcess herdd_{tmp_.path() + "/data"};
};

TEST_F(TlsIntegrationTest, WorkerProtocolOverTls) {
  ASSERT_TRUE(herdd_.Start(TlsFlags())) << herdd_.Log();
  ASSERT_EQ(herdd_.url().rfind("https://127.0.0.1:", 0), 0u) << herdd_.url();
  auto c = herdd_.Client();
  std::string run = MakeRun(*c);
  ASSERT_FALSE(run.empty());

  // Without the certificate the worker is refused at the handshake, and
  // says why.
  ChildProcess blind({BinaryPath("herd-worker"), "--daemon", herdd_.url(), "--name", "blind"},
                     tmp_.path() + "/blind.log");
  // The worker registers, leases the generate task, heartbeats and
  // completes it, all over TLS, then exits (--max-tasks 1).
  ChildProcess worker(
      {BinaryPath("herd-worker"), "--daemon", herdd_.url(), "--ca-file", tls_.cert, "--name",
       "tls-worker", "--max-tasks", "1", "--lease-wait-ms", "1000", "--heartbeat-ms", "300"},
      tmp_.path() + "/worker.log");
  EXPECT_EQ(worker.Wait(std::chrono::seconds(120)), 0) << worker.Log() << herdd_.Log();
  EXPECT_NE(worker.Log().find("kind=generate succeeded"), std::string::npos) << worker.Log();
  EXPECT_EQ(PendingRequests(*c, run), 3u) << herdd_.Log();

  auto workers = api::GetJson(*c, "/v1/workers");
  ASSERT_TRUE(workers.ok()) << workers.status().ToString();
  std::vector<std::string> names;
  for (const auto& w : (*workers)["workers"]) names.push_back(w.value("name", ""));
  EXPECT_EQ(names, std::vector<std::string>{"tls-worker"});
  for (int i = 0; i < 200 && blind.Log().find("certificate verify failed") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(blind.Log().find("register failed: Unavailable: TLS handshake with 127.0.0.1:"),
            std::string::npos)
      << blind.Log();
  EXPECT_NE(blind.Log().find("certificate verify failed"), std::string::npos) << blind.Log();
  EXPECT_EQ(herdd_.Kill(SIGTERM), 0);
}

TEST_F(TlsIntegrationTest, LocalWorkersTrustHerddsCertificate) {
  ASSERT_TRUE(herdd_.Start(Plus(TlsFlags(), {"--local-workers", "1"}))) << herdd_.Log();
  auto c = herdd_.Client();
  std::string run = MakeRun(*c);
  ASSERT_FALSE(run.empty());
  size_t pending = 0;
  for (int i = 0; i < 600 && pending < 3; ++i) {
    pending = PendingRequests(*c, run);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::ifstream wl(herdd_.data_dir() + "/logs/worker-0.log");
  std::string worker_log((std::istreambuf_iterator<char>(wl)), {});
  EXPECT_EQ(pending, 3u) << herdd_.Log() << worker_log;
  EXPECT_EQ(herdd_.Kill(SIGTERM), 0);
}

TEST_F(TlsIntegrationTest, LocalWorkersNeedACertificateNamingTheirAddress) {
  auto other = MakeSelfSigned(tmp_.path(), "otherhost", "DNS:otherhost", "otherhost");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_FALSE(
      herdd_.Start({"--tls-cert", other->cert, "--tls-key", other->key, "--local-workers", "1"}));
  EXPECT_EQ(herdd_.exit_status(), 1);
  EXPECT_NE(herdd_.Log().find("local workers dial https://127.0.0.1:"), std::string::npos)
      << herdd_.Log();
  EXPECT_NE(herdd_.Log().find("does not name 127.0.0.1"), std::string::npos) << herdd_.Log();
}

TEST_F(TlsIntegrationTest, HerdctlOverTls) {
  ASSERT_TRUE(herdd_.Start(TlsFlags())) << herdd_.Log();
  const std::string ctl = BinaryPath("herdctl") + " --url " + herdd_.url();
  const std::string trusting = ctl + " --ca-file " + tls_.cert;
  std::string cfg = tmp_.path() + "/run.json";
  std::filesystem::create_directories(tmp_.path() + "/base");
  std::ofstream(tmp_.path() + "/base/config.json") << R"({"vocab_size": 264})";
  std::ofstream(cfg) << json{{"name", "ctl"}, {"base_checkpoint", tmp_.path() + "/base"}}.dump();
  auto [rc, id] = Shell(trusting + " runs create " + cfg);
  ASSERT_EQ(rc, 0) << id;
  while (!id.empty() && id.back() == '\n') id.pop_back();
  // A streamed upload and a streamed export.
  std::string prompts = tmp_.path() + "/prompts.jsonl";
  std::ofstream(prompts) << "{\"id\":\"a\",\"prompt\":\"x\"}\n{\"id\":\"b\",\"prompt\":\"y\"}\n";
  auto [rc2, up] = Shell(trusting + " prompts upload " + id + " " + prompts);
  EXPECT_EQ(rc2, 0) << up;
  EXPECT_NE(up.find("accepted 2"), std::string::npos) << up;
  auto [rc3, exported] = Shell(trusting + " export prompts " + id + " 2>/dev/null");
  EXPECT_EQ(rc3, 0) << exported;
  EXPECT_EQ(std::count(exported.begin(), exported.end(), '\n'), 2) << exported;
  // HERD_CA_FILE does what --ca-file does.
  auto [rc4, listed] = Shell("HERD_CA_FILE=" + tls_.cert + " " + ctl + " runs list");
  EXPECT_EQ(rc4, 0) << listed;
  EXPECT_NE(listed.find(id), std::string::npos) << listed;
  // Without it: no answer (exit 2), the reason, and what to do.
  auto [rc5, refused] = Shell(ctl + " runs list");
  EXPECT_EQ(rc5, 2) << refused;
  EXPECT_NE(refused.find("certificate verify failed"), std::string::npos) << refused;
  EXPECT_NE(refused.find("--ca-file"), std::string::npos) << refused;
  // Plain http to the TLS port: herdd answers 400 and says to use https.
  std::string plain_url = "http://" + herdd_.url().substr(std::string("https://").size());
  auto [rc6, plain] = Shell(BinaryPath("herdctl") + " --url " + plain_url + " runs list");
  EXPECT_EQ(rc6, 1) << plain;
  EXPECT_NE(plain.find("use https://"), std::string::npos) << plain;
  // A CA file that is not one.
  auto [rc7, bad] = Shell(ctl + " --ca-file " + tmp_.path() + "/none.pem runs list");
  EXPECT_EQ(rc7, 2) << bad;
  EXPECT_NE(bad.find("--ca-file: ca_file '"), std::string::npos) << bad;
}

TEST_F(TlsIntegrationTest, PlainHttpOffLoopbackWithAuthWarnsLoudly) {
  const std::string auth = WriteAuthFile();
  HerddProcess open(tmp_.path() + "/open");
  open.SetListen("0.0.0.0:0");
  ASSERT_TRUE(open.Start({"--auth-file", auth})) << open.Log();
  EXPECT_NE(open.Log().find("INSECURE"), std::string::npos) << open.Log();
  EXPECT_NE(open.Log().find("bearer tokens (and all API traffic) travel in clear text"),
            std::string::npos)
      << open.Log();
  EXPECT_NE(open.Log().find("--tls-cert FILE --tls-key FILE"), std::string::npos) << open.Log();
  EXPECT_EQ(open.Kill(SIGTERM), 0);

  // With TLS, or on loopback, there is nothing to warn about.
  herdd_.SetListen("0.0.0.0:0");
  ASSERT_TRUE(herdd_.Start(Plus(TlsFlags(), {"--auth-file", auth}))) << herdd_.Log();
  EXPECT_EQ(herdd_.Log().find("INSECURE"), std::string::npos) << herdd_.Log();
  auto r = herdd_.Client("tok-admin")->Request("GET", "/v1/runs");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200) << r->body;
  HerddProcess loopback(tmp_.path() + "/loopback");
  ASSERT_TRUE(loopback.Start({"--auth-file", auth})) << loopback.Log();
  EXPECT_EQ(loopback.Log().find("INSECURE"), std::string::npos) << loopback.Log();
}

TEST_F(TlsIntegrationTest, TlsFlagErrorsAreClear) {
  const std::string herdd =
      BinaryPath("herdd") + " --data-dir " + tmp_.path() + "/d --listen 127.0.0.1:0";
  auto [rc, out] = Shell(herdd + " --tls-cert " + tls_.cert);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--tls-cert requires --tls-key"), std::string::npos) << out;
  auto [rc2, out2] = Shell(herdd + " --tls-key " + tls_.key);
  EXPECT_NE(rc2, 0);
  EXPECT_NE(out2.find("--tls-key requires --tls-cert"), std::string::npos) << out2;
  auto [rc3, out3] = Shell(herdd + " --tls-cert " + tls_.cert + " --tls-key " + tls_.cert);
  EXPECT_EQ(rc3, 1) << out3;
  EXPECT_NE(out3.find("--tls-cert/--tls-key: TLS key '" + tls_.cert + "': not a PEM private key"),
            std::string::npos)
      << out3;
  auto [rc4, out4] = Shell(BinaryPath("herd-worker") + " --daemon https://127.0.0.1:1 --ca-file " +
                           tmp_.path() + "/none.pem");
  EXPECT_EQ(rc4, 1) << out4;
  EXPECT_NE(out4.find("ca_file '" + tmp_.path() + "/none.pem': cannot read"), std::string::npos)
      << out4;
}

}  // namespace
}  // namespace herd::testing
