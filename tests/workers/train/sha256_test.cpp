#include "workers/train/sha256.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace herd::train {
namespace {

TEST(Sha256Stream, KnownVectors) {
  // FIPS 180-2 appendix B test vectors.
  auto hex = [](const std::string& s) {
    Sha256Stream h;
    h.Update(s.data(), s.size());
    return h.FinishHex();
  };
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256Stream h;  // a million 'a', fed in uneven chunks
  const std::string chunk(999, 'a');
  size_t left = 1000000;
  while (left > 0) {
    const size_t n = std::min(left, chunk.size());
    h.Update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.FinishHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace herd::train
