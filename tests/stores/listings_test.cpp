// Every listing paginates to the full collection; filters; concurrent id
// allocation; read-only stores refuse writes; size metrics.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <thread>

#include "stores/store.h"
#include "tests/stores/test_util.h"

namespace herd::stores {
namespace {

using testing::OpenAt;

// Pages through a listing with page size 3 and returns the items.
template <typename T, typename F>
std::vector<T> All(F list) {
  std::vector<T> out;
  PageRequest req;
  req.page_size = 3;
  for (int guard = 0; guard < 1000; ++guard) {
    Result<Page<T>> page = list(req);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    out.insert(out.end(), page->items.begin(), page->items.end());
    if (page->next_page_token.empty()) break;
    req.page_token = page->next_page_token;
  }
  return out;
}

TEST(ListingsTest, EveryListingPaginatesToTheWholeCollection) {
  testing::TempDir dir;
  auto st = OpenAt(dir.path());
  ASSERT_TRUE(st);
  WriteTxn t = st->NewTxn();
  for (int i = 0; i < 10; ++i) {
    std::string n = std::to_string(i);
    stores::Run r;
    r.id = "run-" + n;
    t.PutRun(r);
    t.PutRound(Round{"run-1", uint32_t(i), "pending", {}, "", 0, 0});
    Task task;
    task.id = "task-" + n;
    task.run_id = i % 2 ? "run-1" : "run-2";
    t.PutTask(task);
    Worker w;
    w.id = "worker-" + n;
    t.PutWorker(w);
    Checkpoint c;
    c.id = "ckpt-" + n;
    c.run_id = i % 2 ? "run-1" : "run-2";
    t.PutCheckpoint(c);
    t.PutAnnotationRequest(
        AnnotationRequest{"run-1", "req-" + n, 1, "p", {}, "a", "b", "", "", i < 4 ? "answered" : "pending", "", 0, 0});
    Annotation a;
    a.run_id = "run-1";
    a.id = "a" + n;
    t.PutAnnotation(a);
  }
  ASSERT_TRUE(st->Commit(t).ok());
  EXPECT_EQ(All<stores::Run>([&](const PageRequest& r) { return st->ListRuns(r); }).size(), 10u);
  auto rounds = All<Round>([&](const PageRequest& r) { return st->ListRounds("run-1", r); });
  ASSERT_EQ(rounds.size(), 10u);
  for (uint32_t i = 0; i < 10; ++i) EXPECT_EQ(rounds[i].round, i);
  EXPECT_EQ(All<Annotation>([&](const PageRequest& r) { return st->ListAnnotations("run-1", r); }).size(), 10u);
  auto ck = All<Checkpoint>([&](const PageRequest& r) { return st->ListCheckpoints("run-1", r); });
  EXPECT_EQ(ck.size(), 5u);
  for (auto& c : ck) EXPECT_EQ(c.run_id, "run-1");
  EXPECT_EQ(All<Checkpoint>([&](const PageRequest& r) { return st->ListCheckpoints("", r); }).size(), 10u);
  auto pending =
      All<AnnotationRequest>([&](const PageRequest& r) { return st->ListAnnotationRequests("run-1", "pending", r); });
  EXPECT_EQ(pending.size(), 6u);
  for (auto& p : pending) EXPECT_EQ(p.state, "pending");
  EXPECT_EQ(All<AnnotationRequest>([&](const PageRequest& r) { return st->ListAnnotationRequests("run-1", "", r); })
                .size(),
            10u);
  size_t n = 0;
  ASSERT_TRUE(st->ForEachCheckpoint("run-2", [&](const Checkpoint& c) {
    EXPECT_EQ(c.run_id, "run-2");
    return ++n, true;
  }).ok());
  EXPECT_EQ(n, 5u);
  auto none = st->ListRounds("run-404", {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->items.empty());
  EXPECT_TRUE(none->next_page_token.empty());
}

TEST(ListingsTest, FilteredListingsBoundTheWorkPerPage) {
  testing::TempDir dir;
  StoreOptions o;
  o.data_dir = dir.path();
  o.max_scan_per_page = 5;
  auto st = Store::Open(o);
  ASSERT_TRUE(st.ok());
  WriteTxn t = (*st)->NewTxn();
  // 40 requests, only #37 pending: a page may scan at most 5 of them.
  for (int i = 0; i < 40; ++i) {
    t.PutAnnotationRequest(AnnotationRequest{"run-1", "req-" + std::to_string(100 + i), 1, "p", {}, "a", "b", "", "",
                                             i == 37 ? "pending" : "answered", "", 0, 0});
  }
  ASSERT_TRUE((*st)->Commit(t).ok());
  PageRequest req;
  req.page_size = 10;
  int pages = 0;
  std::vector<std::string> found;
  while (true) {
    auto page = (*st)->ListAnnotationRequests("run-1", "pending", req);
    ASSERT_TRUE(page.ok());
    ++pages;
    for (auto& r : page->items) found.push_back(r.id);
    if (page->next_page_token.empty()) break;
    req.page_token = page->next_page_token;
  }
  EXPECT_EQ(found, std::vector<std::string>{"req-137"});
  EXPECT_EQ(pages, 8);  // 40 records / 5 per page; the 8th page ends exactly at the end
}

TEST(ListingsTest, ConcurrentIdAllocationIsUnique) {
  testing::TempDir dir;
  StoreOptions o;
  o.data_dir = dir.path();
  o.id_block = 8;  // many block reservations while threads race
  auto st = Store::Open(o);
  ASSERT_TRUE(st.ok());
  std::vector<std::vector<uint64_t>> got(4);
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t) {
    th.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto id = (*st)->NewId("x");  // "x-<n>": n from the store-wide sequence
        if (id.ok()) got[t].push_back(std::stoull(id->substr(2)));
      }
    });
  }
  for (auto& x : th) x.join();
  std::set<uint64_t> all;
  for (auto& g : got) {
    EXPECT_EQ(g.size(), 200u);
    EXPECT_TRUE(std::is_sorted(g.begin(), g.end()));  // monotonic per thread
    all.insert(g.begin(), g.end());
  }
  EXPECT_EQ(all.size(), 800u);
}

TEST(ListingsTest, ReadOnlyStoreRefusesWritesAndMetricsReportData) {
  testing::TempDir dir;
  {
    auto st = OpenAt(dir.path());
    ASSERT_TRUE(st);
    WriteTxn t = st->NewTxn();
    std::mt19937 rng(5);
    for (int i = 0; i < 2000; ++i) {
      Pair p;
      p.run_id = "run-1";
      p.id = "p" + std::to_string(i);
      p.chosen.resize(500);
      for (auto& c : p.chosen) c = char('a' + rng() % 26);  // not compressible by LZ4
      t.PutPair(p);
    }
    ASSERT_TRUE(st->Commit(t).ok());
    EXPECT_EQ(st->LiveDataBytes(), 0u);  // still in the memtable
  }
  {
    // Reopening replays the WAL into SST files.
    auto st = OpenAt(dir.path());
    ASSERT_TRUE(st);
    // 2000 × 500 random letters ≈ 1 MB; LZ4 cannot shrink them below ~half.
    EXPECT_GT(st->LiveDataBytes(), 500000u);
  }
  StoreOptions o;
  o.data_dir = dir.path();
  o.read_only = true;
  auto ro = Store::Open(o);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_TRUE(testing::FindPair(**ro, "run-1", 0, "p1"));
  EXPECT_EQ(testing::Put1(**ro, [](WriteTxn& t) { t.PutPair(Pair{}); }).code(),
            Status::Code::kInvalidArgument);  // empty ids checked first
  Pair p;
  p.run_id = "run-1";
  p.id = "new";
  EXPECT_EQ(testing::Put1(**ro, [&](WriteTxn& t) { t.PutPair(p); }).code(), Status::Code::kFailedPrecondition);
  // Missing database without create_if_missing.
  StoreOptions none;
  none.data_dir = dir.path() + "/nothing";
  none.create_if_missing = false;
  EXPECT_TRUE(Store::Open(none).status().IsNotFound());
}

}  // namespace
}  // namespace herd::stores
