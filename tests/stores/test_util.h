#pragma once
// Shared helpers for the store tests: a fresh temporary data dir per test,
// a store opened on it, one-record writes, lookups through the public scans,
// and raw RocksDB access for planting corrupt values.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <memory>
#include <optional>
#include <string>

#include "stores/store.h"
#include "tests/testing/temp_dir.h"

namespace herd::stores::testing {

using herd::testing::TempDir;

// Opens a store on dir (with o's other options); a failure is a test failure.
inline std::unique_ptr<Store> OpenAt(const std::string& dir, StoreOptions o = {}) {
  o.data_dir = dir;
  auto s = Store::Open(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

// One record in its own synced batch: Put1(st, [&](WriteTxn& t) { t.PutRun(r); }).
template <typename Fill>
Status Put1(Store& st, Fill fill) {
  WriteTxn t = st.NewTxn();
  fill(t);
  return st.Commit(t);
}

// A record found by scanning what the store lists; nullopt when absent.
inline std::optional<Sample> FindSample(Store& st, const std::string& run, uint32_t round,
                                        const std::string& prompt, uint32_t idx) {
  std::optional<Sample> out;
  EXPECT_TRUE(st.ForEachSample(run, round, [&](const Sample& s) {
    if (s.prompt_id == prompt && s.idx == idx) out = s;
    return !out;
  }).ok());
  return out;
}
inline std::optional<Pair> FindPair(Store& st, const std::string& run, uint32_t round, const std::string& id) {
  std::optional<Pair> out;
  EXPECT_TRUE(st.ForEachPair(run, round, [&](const Pair& p) {
    if (p.id == id) out = p;
    return !out;
  }).ok());
  return out;
}
inline std::optional<Task> FindTask(Store& st, const std::string& id) {
  std::optional<Task> out;
  EXPECT_TRUE(st.ForEachTask([&](const Task& t) {
    if (t.id == id) out = t;
    return !out;
  }).ok());
  return out;
}

// Writes a value under a key of family f bypassing the codec (synced).
inline Status RawPut(Store& st, Family f, const std::string& key, const std::string& value) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  auto s = st.raw_db()->Put(wo, st.handle(f), key, value);
  return s.ok() ? Status::Ok() : Status::IoError(s.ToString());
}
inline Result<std::string> RawGet(Store& st, Family f, const std::string& key) {
  std::string v;
  auto s = st.raw_db()->Get(rocksdb::ReadOptions(), st.handle(f), key, &v);
  if (s.IsNotFound()) return Status::NotFound(key);
  if (!s.ok()) return Status::IoError(s.ToString());
  return v;
}

}  // namespace herd::stores::testing
