// Store behaviour: ordered scans, pagination (AIP-158) across inserts,
// page-token tamper checks, counters, id allocation, schema versioning,
// run deletion, backups and the SFT lineage query.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "stores/keys.h"
#include "stores/store.h"
#include "tests/stores/test_util.h"

namespace herd::stores {
namespace {

using testing::TempDir;

// Id("p", i) trips GCC 12's -Wrestrict false positive (PR 105329).
std::string Id(const char* prefix, int i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

using testing::OpenAt;
using testing::FindPair;
using testing::FindSample;
using testing::FindTask;

Sample S(const std::string& run, uint32_t round, const std::string& prompt, uint32_t idx) {
  Sample s;
  s.run_id = run;
  s.round = round;
  s.prompt_id = prompt;
  s.idx = idx;
  s.tokens = {int32_t(idx), 7};
  s.text = prompt + "#" + std::to_string(idx);
  return s;
}

// One pair in its own synced batch.
Status PutPair(Store& st, const Pair& p) {
  return testing::Put1(st, [&](WriteTxn& t) { t.PutPair(p); });
}

Pair P(const std::string& run, uint32_t round, const std::string& id, const std::string& ann = "") {
  Pair p;
  p.run_id = run;
  p.round = round;
  p.id = id;
  p.prompt = {{"user", "q " + id}};
  p.chosen = "good " + id;
  p.rejected = "bad " + id;
  p.strength = "better";
  p.source = ann.empty() ? "synthetic" : "upload";
  p.annotation_id = ann;
  return p;
}

TEST(StoreTest, ScansComeOutInKeyOrderAndStayInsideTheirPrefix) {
  TempDir dir;
  auto st = OpenAt(dir.path());
  ASSERT_TRUE(st);
  WriteTxn t = st->NewTxn();
  // Insert out of order, across two runs whose ids share a prefix ("run-1"
  // is a byte prefix of "run-10": the length prefix keeps them apart).
  for (uint32_t round : {3u, 1u, 2u}) {
    for (uint32_t idx : {5u, 0u, 300u, 2u}) t.PutSample(S("run-1", round, "p", idx));
  }
  t.PutSample(S("run-10", 1, "p", 0));
  t.PutSample(S("run-1", 1, "a", 9));
  ASSERT_TRUE(st->Commit(t).ok());

  std::vector<std::tuple<uint32_t, std::string, uint32_t>> got;
  ASSERT_TRUE(st->ForEachSample("run-1", std::nullopt, [&](const Sample& s) {
    EXPECT_EQ(s.run_id, "run-1");
    got.emplace_back(s.round, s.prompt_id, s.idx);
    return true;
  }).ok());
  ASSERT_EQ(got.size(), 13u);
  // round ascending; within a round, prompt "a" before "p"; idx numeric.
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
  EXPECT_EQ(got.front(), std::make_tuple(1u, std::string("a"), 9u));
  EXPECT_EQ(std::get<2>(got[1]), 0u);
  EXPECT_EQ(std::get<2>(got[4]), 300u);  // 300 after 5 (big-endian, not text order)

  size_t round2 = 0;
  ASSERT_TRUE(st->ForEachSample("run-1", 2u, [&](const Sample& s) {
    EXPECT_EQ(s.round, 2u);
    ++round2;
    return true;
  }).ok());
  EXPECT_EQ(round2, 4u);
  // Early stop.
  size_t seen = 0;
  ASSERT_TRUE(st->ForEachSample("run-1", std::nullopt, [&](const Sample&) { return ++seen < 3; }).ok());
  EXPECT_EQ(seen, 3u);
}

TEST(StoreTest, PaginationVisitsEveryRecordOnceAcrossInserts) {
  TempDir dir;
  auto st = OpenAt(dir.path());
  ASSERT_TRUE(st);
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(PutPair(*st, P("run-1", 1, "id" + std::to_string(100 + 2 * i))).ok());
  std::vector<std::string> ids;
  PageRequest req;
  req.page_size = 7;
  int pages = 0;
  while (true) {
    auto page = st->ListPairs("run-1", std::nullopt, req);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_LE(page->items.size(), 7u);
    for (auto& p : page->items) ids.push_back(p.id);
    ++pages;
    if (pages == 2) {
      // Inserts behind the cursor (id099 sorts first) are not returned; inserts
      // ahead of it (odd ids between later even ones) are, exactly once.
      ASSERT_TRUE(PutPair(*st, P("run-1", 1, "id099")).ok());
      ASSERT_TRUE(PutPair(*st, P("run-1", 1, "id141")).ok());
      ASSERT_TRUE(PutPair(*st, P("run-1", 1, "id147")).ok());
    }
    if (page->next_page_token.empty()) break;
    req.page_token = page->next_page_token;
  }
  std::set<std::string> uniq(ids.begin(), ids.end());
  EXPECT_EQ(uniq.size(), ids.size()) << "a record was returned twice";
  EXPECT_EQ(ids.size(), 27u);
  EXPECT_FALSE(uniq.count("id099"));
  EXPECT_TRUE(uniq.count("id141"));
  EXPECT_TRUE(uniq.count("id147"));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
}

TEST(StoreTest, PageSizeDefaultsAndClamps) {
  TempDir dir;
  StoreOptions o;
  o.max_page_size = 10;
  o.default_page_size = 4;
  auto st = OpenAt(dir.path(), o);
  ASSERT_TRUE(st);
  for (int i = 0; i < 30; ++i) {
    Prompt p{"run-1", Id("p", i), {{"user", "x"}}, "train", "t", 0};
    ASSERT_TRUE(testing::Put1(*st, [&](WriteTxn& t) { t.PutPrompt(p); }).ok());
  }
  auto page = st->ListPrompts("run-1", {});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), 4u);
  PageRequest big;
  big.page_size = 1000000;
  page = st->ListPrompts("run-1", big);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), 10u);
  EXPECT_FALSE(page->next_page_token.empty());
  // Exactly-full last page: no token (no empty trailing page).
  PageRequest all;
  all.page_size = 10;
  all.page_token = page->next_page_token;
  page = st->ListPrompts("run-1", all);
  all.page_token = page->next_page_token;
  page = st->ListPrompts("run-1", all);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), 10u);
  EXPECT_TRUE(page->next_page_token.empty());
}

TEST(StoreTest, TamperedOrForeignPageTokensAreRefused) {
  TempDir dir;
  auto st = OpenAt(dir.path());
  ASSERT_TRUE(st);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(PutPair(*st, P("run-1", 1, "a" + std::to_string(i))).ok());
    ASSERT_TRUE(PutPair(*st, P("run-2", 1, "a" + std::to_string(i))).ok());
  }
  PageRequest req;
  req.page_size = 2;
  auto page = st->ListPairs("run-1", std::nullopt, req);
  ASSERT_TRUE(page.ok());
  const std::string token = page->next_page_token;
  ASSERT_FALSE(token.empty());
  for (char c : token) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << "not URL-safe: " << c;
  }
  // Flip each character in turn: every edit is refused.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < token.size(); ++i) {
    std::string bad = token;
    bad[i] = alphabet[(alphabet.find(bad[i]) + 1) % alphabet.size()];
    req.page_token = bad;
    auto r = st->ListPairs("run-1", std::nullopt, req);
    EXPECT_TRUE(r.status().IsInvalidArgument()) << "position " << i;
  }
  for (std::string bad : {std::string("garbage!"), std::string(""), token.substr(0, token.size() - 1), token + "A"}) {
    if (bad.empty()) continue;
    req.page_token = bad;
    EXPECT_TRUE(st->ListPairs("run-1", std::nullopt, req).status().IsInvalidArgument()) << bad;
  }
  // A valid token used on another listing (another run, another round
  // filter, another collection) is refused too.
  req.page_token = token;
  EXPECT_TRUE(st->ListPairs("run-2", std::nullopt, req).status().IsInvalidArgument());
  EXPECT_TRUE(st->ListPairs("run-1", 1u, req).status().IsInvalidArgument());
  EXPECT_TRUE(st->ListSamples("run-1", std::nullopt, req).status().IsInvalidArgument());
  EXPECT_TRUE(st->ListPairs("run-1", std::nullopt, req).ok());
  // Tokens are bound to the instance: another database refuses them.
  TempDir other;
  auto st2 = OpenAt(other.path());
  ASSERT_TRUE(st2);
  EXPECT_TRUE(st2->ListPairs("run-1", std::nullopt, req).status().IsInvalidArgument());
}

TEST(StoreTest, CountersMergeAndSurviveReopen) {
  TempDir dir;
  {
    auto st = OpenAt(dir.path());
    ASSERT_TRUE(st);
    EXPECT_EQ(*st->GetCounter("samples/run-1"), 0u);
    for (int i = 0; i < 10; ++i) {
      WriteTxn t = st->NewTxn();
      t.AddCounter("samples/run-1", 7);
      t.AddCounter("other", 1);
      ASSERT_TRUE(st->Commit(t).ok());
    }
    WriteTxn t = st->NewTxn();
    t.AddCounter("samples/run-1", -20);
    ASSERT_TRUE(st->Commit(t).ok());
    EXPECT_EQ(*st->GetCounter("samples/run-1"), 50u);
  }
  auto st = OpenAt(dir.path());
  ASSERT_TRUE(st);
  EXPECT_EQ(*st->GetCounter("samples/run-1"), 50u);
  EXPECT_EQ(*st->GetCounter("other"), 10u);
}

TEST(StoreTest, IdsAreUniqueMonotonicAndSkipPastReservedBlocksAfterReopen) {
  TempDir dir;
  StoreOptions o;
  o.id_block = 16;
  uint64_t last = 0;
  std::set<std::string> seen;
  for (int open = 0; open < 3; ++open) {
    auto st = OpenAt(dir.path(), o);
    ASSERT_TRUE(st);
    for (int i = 0; i < 20; ++i) {
      auto id = st->NewId("run");
      ASSERT_TRUE(id.ok());
      EXPECT_TRUE(seen.insert(*id).second) << *id;
      uint64_t n = std::stoull(id->substr(4));
      EXPECT_GT(n, last);
      last = n;
    }
  }
  auto st = OpenAt(dir.path(), o);
  EXPECT_TRUE(st->NewId("Run").status().IsInvalidArgument());
  EXPECT_TRUE(st->NewId("run/..").status().IsInvalidArgument());
  EXPECT_TRUE(st->NewId("").status().IsInvalidArgument());
}

TEST(StoreTest, EventsAppendInOrderPerRun) {
  TempDir dir;
  auto st = OpenAt(dir.path());
  ASSERT_TRUE(st);
  for (int i = 0; i < 5; ++i) {
    WriteTxn t = st->NewTxn();
    t.AppendEvent(Event{"run-1", 0, 0, "tick", std::to_string(i), ""});
    t.AppendEvent(Event{"run-2", 0, 0, "tock", std::to_string(i), ""});
    ASSERT_TRUE(st->Commit(t).ok());
  }
  auto page = st->ListEvents("run-1", {});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(page->items[i].message, std::to_string(i));
    EXPECT_GT(page->items[i].time_ms, 0);
    if (i) {
      EXPECT_GT(page->items[i].seq, page->items[i - 1].seq);
    }
  }
}

TEST(StoreTest, InvalidKeysFailTheWholeBatch) {
  TempDir dir;
  auto st = OpenAt(dir.path());
  ASSERT_TRUE(st);
  WriteTxn t = st->NewTxn();
  t.PutPair(P("run-1", 1, "ok"));
  t.PutPair(P("run-1", 1, ""));  // empty id
  Status s = st->Commit(t);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("pair.id"), std::string::npos) << s.message();
  EXPECT_FALSE(FindPair(*st, "run-1", 1, "ok")) << "batch was partly applied";
  WriteTxn t2 = st->NewTxn();
  t2.PutPrompt(Prompt{"run-1", std::string(5000, 'x'), {}, "", "", 0});
  EXPECT_TRUE(st->Commit(t2).IsInvalidArgument());
}

TEST(StoreTest, NewerSchemaIsRefusedWithAClearError) {
  TempDir dir;
  {
    auto st = OpenAt(dir.path());
    ASSERT_TRUE(st);
    EXPECT_EQ(st->schema_version(), kSchemaVersion);
    std::string v;
    PutU32BE(&v, kSchemaVersion + 1);
    ASSERT_TRUE(testing::RawPut(*st, Family::kMeta, "schema_version", v).ok());
  }
  StoreOptions o;
  o.data_dir = dir.path();
  auto st = Store::Open(o);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(st.status().message().find("schema version " + std::to_string(kSchemaVersion + 1)), std::string::npos)
      << st.status().message();
  EXPECT_NE(st.status().message().find("newer"), std::string::npos);
}

TEST(StoreTest, SchemaVersionAndSecretsPersistAndAnOldDatabaseIsMigrated) {
  TempDir dir;
  std::string instance;
  {
    auto st = OpenAt(dir.path());
    ASSERT_TRUE(st);
    instance = st->instance_id();
    EXPECT_EQ(instance.size(), 32u);
  }
  {
    auto st = OpenAt(dir.path());
    ASSERT_TRUE(st);
    EXPECT_EQ(st->instance_id(), instance);  // not re-created on reopen
    // Simulate a v0 database: no schema version, no instance secret.
    ASSERT_TRUE(st->raw_db() != nullptr);
  }
  // Build a v0 database by hand: the families exist, meta is empty.
  TempDir v0;
  {
    auto st = OpenAt(v0.path());
    ASSERT_TRUE(st);
    std::string zero;
    PutU32BE(&zero, 0);
    ASSERT_TRUE(testing::RawPut(*st, Family::kMeta, "schema_version", zero).ok());
    stores::Run r;
    r.id = "run-1";
    ASSERT_TRUE(testing::Put1(*st, [&](WriteTxn& t) { t.PutRun(r); }).ok());
  }
  auto st = OpenAt(v0.path());
  ASSERT_TRUE(st);
  EXPECT_EQ(st->schema_version(), kSchemaVersion);
  EXPECT_TRUE(st->GetRun("run-1").ok()) << "migration lost data";
  auto v = testing::RawGet(*st, Family::kMeta, "schema_version");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(GetU32BE(v->data()), kSchemaVersion);
}

TEST(StoreTest, DeleteRunDataRemovesEveryRecordOfThatRunOnly) {
  TempDir dir;
  auto st = OpenAt(dir.path());
  ASSERT_TRUE(st);
  for (const std::string run : {"run-1", "run-2"}) {
    WriteTxn t = st->NewTxn();
    stores::Run r;
    r.id = run;
    t.PutRun(r);
    t.PutRound(Round{run, 1, "running", {}, "", 0, 0});
    t.PutPrompt(Prompt{run, "p", {}, "train", "", 0});
    t.PutSample(S(run, 1, "p", 0));
    t.PutPair(P(run, 1, "x"));
    Annotation a;
    a.run_id = run;
    a.id = "a";
    t.PutAnnotation(a);
    t.PutAnnotationRequest(AnnotationRequest{run, "q", 1, "p", {}, "", "", "", "", "pending", "", 0, 0});
    Task task;
    task.id = "task-" + run;
    task.run_id = run;
    t.PutTask(task);
    Checkpoint c;
    c.id = "ckpt-" + run;
    c.run_id = run;
    t.PutCheckpoint(c);
    t.AppendEvent(Event{run, 0, 0, "x", "", ""});
    t.PutDatasetMember(DatasetMember{run, 1, "sft", 1, "p", 0});
    ASSERT_TRUE(st->Commit(t).ok());
  }
  ASSERT_TRUE(st->DeleteRunData("run-1").ok());
  EXPECT_TRUE(st->GetRun("run-1").status().IsNotFound());
  EXPECT_TRUE(st->GetRound("run-1", 1).status().IsNotFound());
  EXPECT_TRUE(st->GetPrompt("run-1", "p").status().IsNotFound());
  EXPECT_FALSE(FindSample(*st, "run-1", 1, "p", 0));
  EXPECT_FALSE(FindPair(*st, "run-1", 1, "x"));
  EXPECT_TRUE(st->GetAnnotation("run-1", "a").status().IsNotFound());
  EXPECT_TRUE(st->GetAnnotationRequest("run-1", "q").status().IsNotFound());
  EXPECT_FALSE(FindTask(*st, "task-run-1"));
  EXPECT_TRUE(st->GetCheckpoint("ckpt-run-1").status().IsNotFound());
  EXPECT_TRUE(st->ListEvents("run-1", {})->items.empty());
  // run-2 intact.
  EXPECT_TRUE(st->GetRun("run-2").ok());
  EXPECT_TRUE(FindSample(*st, "run-2", 1, "p", 0));
  EXPECT_TRUE(FindTask(*st, "task-run-2"));
  EXPECT_TRUE(st->GetCheckpoint("ckpt-run-2").ok());
  EXPECT_EQ(st->ListEvents("run-2", {})->items.size(), 1u);
}

TEST(StoreTest, BackupIsConsistentAndRestorable) {
  TempDir dir;
  TempDir restore_into;
  const std::string backup = dir.path() + "/backup-1";
  {
    auto st = OpenAt(dir.path());
    ASSERT_TRUE(st);
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(PutPair(*st, P("run-1", 1, Id("p", i))).ok());
    ASSERT_TRUE(st->CreateBackup(backup).ok());
    // Writes after the backup are not in it.
    ASSERT_TRUE(PutPair(*st, P("run-1", 1, "late")).ok());
    EXPECT_TRUE(st->CreateBackup(backup).code() == Status::Code::kAlreadyExists);
  }
  // Open the backup directly, read-only.
  {
    StoreOptions o;
    o.db_path = backup;
    o.read_only = true;
    o.create_if_missing = false;
    auto b = Store::Open(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_TRUE(FindPair(**b, "run-1", 1, "p49"));
    EXPECT_FALSE(FindPair(**b, "run-1", 1, "late"));
  }
  // Restore into a fresh data dir, then over an existing one.
  ASSERT_TRUE(Store::RestoreBackup(backup, restore_into.path()).ok());
  {
    auto st = OpenAt(restore_into.path());
    ASSERT_TRUE(st);
    size_t n = 0;
    ASSERT_TRUE(st->ForEachPair("run-1", std::nullopt, [&](const Pair&) { return ++n, true; }).ok());
    EXPECT_EQ(n, 50u);
    ASSERT_TRUE(PutPair(*st, P("run-1", 1, "after-restore")).ok());
  }
  EXPECT_EQ(Store::RestoreBackup(backup, restore_into.path()).code(), Status::Code::kAlreadyExists);
  ASSERT_TRUE(Store::RestoreBackup(backup, restore_into.path(), /*overwrite=*/true).ok());
  auto st = OpenAt(restore_into.path());
  ASSERT_TRUE(st);
  EXPECT_FALSE(FindPair(*st, "run-1", 1, "after-restore"));
  EXPECT_TRUE(Store::RestoreBackup(dir.path() + "/nope", restore_into.path(), true).IsNotFound());
}

TEST(StoreTest, LineageAnswersWhichSamplesFedARound) {
  TempDir dir;
  auto st = OpenAt(dir.path());
  ASSERT_TRUE(st);
  WriteTxn t = st->NewTxn();
  // Round 1 sampled 3 prompts × 4; best of each selected. Round 2's SFT set
  // accumulates round 1's selections plus its own (here: one from round 2).
  for (const std::string p : {"pa", "pb", "pc"}) {
    for (uint32_t i = 0; i < 4; ++i) {
      Sample s = S("run-1", 1, p, i);
      s.selected = (i == 2);
      t.PutSample(s);
    }
  }
  t.PutSample(S("run-1", 2, "pa", 0));
  for (const std::string p : {"pa", "pb", "pc"}) t.PutDatasetMember(DatasetMember{"run-1", 2, "sft", 1, p, 2});
  t.PutDatasetMember(DatasetMember{"run-1", 2, "sft", 2, "pa", 0});
  ASSERT_TRUE(st->Commit(t).ok());

  std::vector<std::string> sft;
  ASSERT_TRUE(st->ForEachSftSample("run-1", 2, [&](const Sample& s) {
    sft.push_back(std::to_string(s.round) + "/" + s.prompt_id + "/" + std::to_string(s.idx));
    return true;
  }).ok());
  EXPECT_EQ(sft, (std::vector<std::string>{"1/pa/2", "1/pb/2", "1/pc/2", "2/pa/0"}));
  // Round 1 has no materialised sets.
  size_t n = 0;
  ASSERT_TRUE(st->ForEachSftSample("run-1", 1, [&](const Sample&) { return ++n, true; }).ok());
  EXPECT_EQ(n, 0u);
  // A member pointing at a missing sample is reported, not skipped.
  WriteTxn t5 = st->NewTxn();
  t5.PutDatasetMember(DatasetMember{"run-1", 3, "sft", 1, "gone", 0});
  ASSERT_TRUE(st->Commit(t5).ok());
  Status s = st->ForEachSftSample("run-1", 3, [](const Sample&) { return true; });
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
}

}  // namespace
}  // namespace herd::stores
