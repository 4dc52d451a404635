// Round trip of every record type through the store, and the value codec's
// handling of corrupt, truncated and unknown input.
#include <gtest/gtest.h>

#include <random>

#include "stores/store.h"
#include "stores/value_codec.h"
#include "tests/stores/test_util.h"

namespace herd::stores {
namespace {

using testing::TempDir;

using testing::OpenAt;

Run MakeRun() {
  stores::Run r;
  r.id = "run-7";
  r.name = "tiny demo";
  r.config_json = R"({"rounds":6,"k":10})";
  r.state = "running";
  r.current_round = 3;
  r.current_stage = "sft";
  r.error = "previous failure";
  r.created_ms = 1700000000000;
  r.updated_ms = 1700000000123;
  return r;
}
Round MakeRound() {
  Round r;
  r.run_id = "run-7";
  r.round = 2;
  r.state = "running";
  StageStatus a{"rm", "succeeded", 1, 2, 2, "ckpt-9", R"({"acc":0.71})", "", 10, 20};
  StageStatus b{"rejection_sampling", "running", 2, 16, 5, "", "", "lease lost", 30, 0};
  r.stages = {a, b};
  r.metrics_json = R"({"wall_s":12.5})";
  r.created_ms = 5;
  r.updated_ms = -6;  // negative times survive the zigzag encoding
  return r;
}
Task MakeTask() {
  Task t;
  t.id = "task-12";
  t.run_id = "run-7";
  t.round = 2;
  t.stage = "rejection_sampling";
  t.kind = "rejection_sample";
  t.spec_json = R"({"shard":3})";
  t.requirements_json = R"({"device":"cuda"})";
  t.priority = -4;
  t.queue_seq = 99;
  t.state = TaskState::kLeased;
  t.attempt = 2;
  t.max_attempts = 5;
  t.not_before_ms = 123;
  t.lease_id = "lease-3";
  t.worker_id = "worker-1";
  t.lease_expires_ms = 456;
  t.progress_json = R"({"step":4})";
  t.result_json = "";
  t.error = "oom";
  t.created_ms = 1;
  t.updated_ms = 2;
  return t;
}
Worker MakeWorker() {
  return Worker{"worker-1", "node-a", "cuda:0", 80ull << 30, "0.1.0", R"({"bf16":true})", "busy",
                "lease-3", 11, 22};
}
Prompt MakePrompt() {
  return Prompt{"run-7", "p-ü-1", {{"system", "be brief"}, {"user", "hi\nthere"}}, "train", "upload.jsonl", 33};
}
Sample MakeSample() {
  Sample s;
  s.run_id = "run-7";
  s.round = 2;
  s.prompt_id = "p-ü-1";
  s.idx = 7;
  s.tokens = {0, 1, -1, 128000, 2147483647, -2147483647 - 1};
  s.text = "hello";
  s.logprob = -12.375;
  s.rm_score = 0.25;
  s.policy_checkpoint_id = "ckpt-4";
  s.rm_checkpoint_id = "ckpt-5";
  s.temperature = 0.7f;
  s.seed = 0xdeadbeefcafeull;
  s.selected = true;
  s.task_id = "task-12";
  s.created_ms = 44;
  return s;
}
Annotation MakeAnnotation() {
  Annotation a;
  a.run_id = "run-7";
  a.id = "ann-1";
  a.raw = R"({"id":"ann-1","prompt":"x","chosen":"a","rejected":"b"})";
  a.format = "pairwise";
  a.prompt = {{"user", "x"}};
  a.responses = {"a", "b", ""};
  a.strength = "better";
  a.edited = "a, but better";
  a.annotator = "alice";
  a.request_id = "req-2";
  a.round = 1;
  a.source_file = "batch1.jsonl";
  a.source_line = 17;
  a.received_ms = 55;
  return a;
}
AnnotationRequest MakeRequest() {
  return AnnotationRequest{"run-7", "req-2", 1, "p-ü-1", {{"user", "x"}}, "resp a", "resp b", "ckpt-1",
                           "ckpt-2", "pending", "", 66, 0};
}
Pair MakePair() {
  Pair p;
  p.run_id = "run-7";
  p.round = 1;
  p.id = "pair-1";
  p.prompt = {{"user", "x"}};
  p.chosen = "a";
  p.rejected = "b";
  p.strength = "significantly_better";
  p.edited = std::string("");  // present but empty is distinct from absent
  p.source = "upload";
  p.annotation_id = "ann-1";
  p.annotator = "alice";
  p.created_ms = 77;
  return p;
}
Checkpoint MakeCheckpoint() {
  Checkpoint c;
  c.id = "ckpt-9";
  c.run_id = "run-7";
  c.path = "runs/run-7/checkpoints/ckpt-9";
  c.sha256 = std::string(64, 'a');
  c.config_hash = std::string(64, 'b');
  c.stage = "rm";
  c.round = 2;
  c.variant = "";
  c.parents = {"ckpt-7", "ckpt-8"};
  c.datasets = {"pairs:r1", "pairs:r2"};
  c.hyperparameters_json = R"({"lr":1e-5})";
  c.averaging_weights = {0.5, 0.25, 0.25};
  c.metrics_json = R"({"acc":0.7})";
  c.size_bytes = 1ull << 33;
  c.created_ms = 88;
  return c;
}

TEST(RecordsTest, EveryRecordTypeRoundTripsThroughTheStore) {
  TempDir dir;
  auto store = OpenAt(dir.path());
  ASSERT_TRUE(store);
  const stores::Run run = MakeRun();
  const Round round = MakeRound();
  const Task task = MakeTask();
  const Worker worker = MakeWorker();
  const Prompt prompt = MakePrompt();
  const Sample sample = MakeSample();
  const Annotation ann = MakeAnnotation();
  const AnnotationRequest req = MakeRequest();
  const Pair pair = MakePair();
  const Checkpoint ckpt = MakeCheckpoint();
  const IdempotencyRecord idem{"key-1", std::string(64, 'c'), 201, "application/json", R"({"ok":true})", 99};
  const DatasetMember member{"run-7", 2, "sft", 2, "p-ü-1", 7};

  WriteTxn t = store->NewTxn();
  t.PutRun(run);
  t.PutRound(round);
  t.PutTask(task);
  t.PutWorker(worker);
  t.PutPrompt(prompt);
  t.PutSample(sample);
  t.PutAnnotation(ann);
  t.PutAnnotationRequest(req);
  t.PutPair(pair);
  t.PutCheckpoint(ckpt);
  t.PutIdempotency(idem);
  t.PutDatasetMember(member);
  Event ev{"run-7", 0, 1234, "stage.succeeded", "rm done", R"({"stage":"rm"})"};
  const uint64_t seq = t.AppendEvent(ev);
  ASSERT_GT(seq, 0u);
  ASSERT_TRUE(store->Commit(t).ok());

  // Reopen so the values come from disk, not the memtable's last writer.
  store.reset();
  store = OpenAt(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->GetRun("run-7"), run);
  EXPECT_EQ(*store->GetRound("run-7", 2), round);
  EXPECT_EQ(testing::FindTask(*store, "task-12"), task);
  EXPECT_EQ(*store->GetWorker("worker-1"), worker);
  EXPECT_EQ(*store->GetPrompt("run-7", "p-ü-1"), prompt);
  EXPECT_EQ(testing::FindSample(*store, "run-7", 2, "p-ü-1", 7), sample);
  EXPECT_EQ(*store->GetAnnotation("run-7", "ann-1"), ann);
  EXPECT_EQ(*store->GetAnnotationRequest("run-7", "req-2"), req);
  EXPECT_EQ(testing::FindPair(*store, "run-7", 1, "pair-1"), pair);
  EXPECT_EQ(*store->GetCheckpoint("ckpt-9"), ckpt);
  EXPECT_EQ(*store->GetIdempotency("key-1"), idem);
  ev.seq = seq;
  auto events = store->ListEvents("run-7", {});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->items.size(), 1u);
  EXPECT_EQ(events->items[0], ev);
  // The member is read back through the lineage join it exists for.
  std::vector<Sample> members;
  ASSERT_TRUE(store->ForEachSftSample("run-7", 2, [&](const Sample& m) {
    members.push_back(m);
    return true;
  }).ok());
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0], sample);
}

TEST(RecordsTest, DefaultsAndAbsentOptionalsRoundTrip) {
  Sample s;
  s.run_id = "r";
  s.prompt_id = "p";
  std::string v;
  Encode(s, &v);
  Sample back;
  ASSERT_TRUE(Decode(v, &back).ok());
  EXPECT_EQ(back, s);
  EXPECT_FALSE(back.rm_score.has_value());
  Pair p;
  p.id = "x";
  Encode(p, &v);
  Pair pb;
  ASSERT_TRUE(Decode(v, &pb).ok());
  EXPECT_FALSE(pb.edited.has_value());
  Task t;  // max_attempts default 3 is written explicitly
  t.id = "t";
  Encode(t, &v);
  Task tb;
  ASSERT_TRUE(Decode(v, &tb).ok());
  EXPECT_EQ(tb, t);
}

TEST(RecordsTest, TokensArePackedFourBytesEach) {
  Sample s = MakeSample();
  std::string with, without;
  Encode(s, &with);
  s.tokens.clear();
  Encode(s, &without);
  // 6 ids → 24 payload bytes + 1 tag byte + 1 length byte.
  EXPECT_EQ(with.size() - without.size(), 6u * 4 + 2);
}

TEST(RecordsTest, UnknownFieldsAreSkipped) {
  // A newer writer added field 99 (bytes) and 100 (varint) to a run.
  std::string v;
  BeginValue(&v);
  FieldWriter w(&v);
  w.Bytes(1, "run-1");
  w.Bytes(99, "future");
  w.Varint(100, 5);
  w.Bytes(4, "paused");
  SealValue(&v);
  stores::Run r;
  ASSERT_TRUE(Decode(v, &r).ok());
  EXPECT_EQ(r.id, "run-1");
  EXPECT_EQ(r.state, "paused");
}

TEST(RecordsTest, CorruptValuesAreDataLossNotCrashes) {
  std::string v;
  Encode(MakeSample(), &v);
  Sample s;
  // Every single-bit flip is caught by the crc32c trailer.
  for (size_t i = 0; i < v.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string c = v;
      c[i] = char(c[i] ^ (1 << bit));
      Status st = Decode(c, &s);
      ASSERT_TRUE(st.IsDataLoss()) << "byte " << i << " bit " << bit;
    }
  }
  // Every truncation too.
  for (size_t n = 0; n < v.size(); ++n) {
    ASSERT_TRUE(Decode(std::string_view(v).substr(0, n), &s).IsDataLoss()) << n;
  }
  // A structurally broken body with a valid crc: a length past the end.
  std::string bad;
  BeginValue(&bad);
  bad += "\x0a\x7f";  // field 1 bytes, length 127, no payload
  SealValue(&bad);
  Status st = Decode(bad, &s);
  EXPECT_TRUE(st.IsDataLoss());
  EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.message();
  // A wire-type mismatch (run id as varint) is reported, not misread.
  std::string mism;
  BeginValue(&mism);
  FieldWriter(&mism).Varint(1, 5);
  SealValue(&mism);
  stores::Run r;
  EXPECT_TRUE(Decode(mism, &r).IsDataLoss());
  // A future value version.
  std::string fut;
  fut.push_back(char(kValueVersion + 1));
  SealValue(&fut);
  st = Decode(fut, &r);
  EXPECT_TRUE(st.IsDataLoss());
  EXPECT_NE(st.message().find("version"), std::string::npos);
}

TEST(RecordsTest, CorruptStoredValueNamesFamilyAndKey) {
  TempDir dir;
  auto store = OpenAt(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(testing::Put1(*store, [](WriteTxn& t) {
    t.PutSample(MakeSample());
    Sample s = MakeSample();
    s.idx = 8;
    t.PutSample(s);
  }).ok());
  // Overwrite idx 7 with garbage through the raw interface.
  std::string key;
  {
    // Key layout: Str(run) U32(round) Str(prompt) U32(idx).
    Sample s = MakeSample();
    std::string k;
    auto str = [&](const std::string& x) {
      uint32_t n = uint32_t(x.size());
      k.push_back(char(n >> 24)); k.push_back(char(n >> 16)); k.push_back(char(n >> 8)); k.push_back(char(n));
      k += x;
    };
    auto u32 = [&](uint32_t n) {
      k.push_back(char(n >> 24)); k.push_back(char(n >> 16)); k.push_back(char(n >> 8)); k.push_back(char(n));
    };
    str(s.run_id); u32(s.round); str(s.prompt_id); u32(s.idx);
    key = k;
  }
  ASSERT_TRUE(testing::RawPut(*store, Family::kSamples, key, "garbage!").ok());
  // Scans and listings stop with an error naming family and key instead of
  // skipping or crashing.
  Status scan = store->ForEachSample("run-7", std::nullopt, [](const Sample&) { return true; });
  EXPECT_TRUE(scan.IsDataLoss()) << scan.ToString();
  EXPECT_NE(scan.message().find("samples"), std::string::npos) << scan.message();
  EXPECT_NE(scan.message().find("run-7"), std::string::npos) << scan.message();
  auto page = store->ListSamples("run-7", 2, {});
  EXPECT_TRUE(page.status().IsDataLoss());
}

}  // namespace
}  // namespace herd::stores

namespace herd::stores {
namespace {

template <typename T>
void DecodeRandom(const std::string& v) {
  T rec;
  Status s = Decode(v, &rec);
  EXPECT_TRUE(s.ok() || s.IsDataLoss()) << s.ToString();
}

TEST(RecordsTest, RandomBodiesWithValidChecksumsNeverCrashTheDecoders) {
  // Past the crc, the field parser must bounds-check everything itself.
  std::mt19937 rng(42);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string v;
    BeginValue(&v);
    size_t n = rng() % 64;
    for (size_t i = 0; i < n; ++i) v.push_back(char(rng()));
    SealValue(&v);
    DecodeRandom<stores::Run>(v);
    DecodeRandom<Round>(v);
    DecodeRandom<Task>(v);
    DecodeRandom<Worker>(v);
    DecodeRandom<Prompt>(v);
    DecodeRandom<Sample>(v);
    DecodeRandom<Annotation>(v);
    DecodeRandom<AnnotationRequest>(v);
    DecodeRandom<Pair>(v);
    DecodeRandom<Checkpoint>(v);
    DecodeRandom<Event>(v);
    DecodeRandom<IdempotencyRecord>(v);
    DecodeRandom<DatasetMember>(v);
  }
  // Mutations of real values (crc re-sealed) as well.
  std::string base;
  Encode(MakeRound(), &base);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string v = base.substr(0, base.size() - 4);
    v[1 + rng() % (v.size() - 1)] = char(rng());
    if (rng() % 2) v.resize(1 + rng() % (v.size() - 1));
    SealValue(&v);
    DecodeRandom<Round>(v);
  }
}

}  // namespace
}  // namespace herd::stores
