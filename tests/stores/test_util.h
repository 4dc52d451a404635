#pragma once
// Shared helpers for the store tests: a fresh temporary data dir per test,
// and a store opened on it.
#include <gtest/gtest.h>

#include <memory>
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

}  // namespace herd::stores::testing
