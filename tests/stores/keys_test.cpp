// Key codecs: field order = byte order, prefix successors, URL-safe base64,
// CRC-32C check values.
#include "stores/keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <tuple>

namespace herd::stores {
namespace {

TEST(KeysTest, ByteOrderMatchesFieldOrder) {
  std::mt19937_64 rng(1);
  using T = std::tuple<uint32_t, std::string, uint64_t>;
  std::vector<std::pair<T, std::string>> v;
  const std::string names[] = {"", "a", "ab", "b", "zz", std::string("\xff", 1), std::string("\0", 1)};
  for (int i = 0; i < 2000; ++i) {
    uint32_t a = uint32_t(rng() % 4 == 0 ? rng() : rng() % 300);
    const std::string& s = names[rng() % 7];
    uint64_t c = rng() % 3 == 0 ? rng() : rng() % 1000;
    v.push_back({{a, s, c}, KeyWriter().U32(a).Str(s).U64(c).Take()});
  }
  // Expected order: ints numerically; strings by (length, bytes).
  auto field_less = [](const T& x, const T& y) {
    if (std::get<0>(x) != std::get<0>(y)) return std::get<0>(x) < std::get<0>(y);
    const auto& sx = std::get<1>(x);
    const auto& sy = std::get<1>(y);
    if (sx.size() != sy.size()) return sx.size() < sy.size();
    if (sx != sy) return sx < sy;
    return std::get<2>(x) < std::get<2>(y);
  };
  auto by_fields = v;
  std::stable_sort(by_fields.begin(), by_fields.end(), [&](auto& x, auto& y) { return field_less(x.first, y.first); });
  auto by_bytes = v;
  std::stable_sort(by_bytes.begin(), by_bytes.end(), [](auto& x, auto& y) { return x.second < y.second; });
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(by_fields[i].second, by_bytes[i].second) << i;
}

TEST(KeysTest, ReaderRoundTripsAndRejectsShortKeys) {
  std::string k = KeyWriter().U8(3).U32(7).Str("hello").U64(1ull << 40).Take();
  KeyReader r(k);
  uint8_t a;
  uint32_t b;
  std::string s;
  uint64_t c;
  ASSERT_TRUE(r.U8(&a) && r.U32(&b) && r.Str(&s) && r.U64(&c));
  EXPECT_EQ(a, 3);
  EXPECT_EQ(b, 7u);
  EXPECT_EQ(s, "hello");
  EXPECT_EQ(c, 1ull << 40);
  EXPECT_TRUE(r.Done());
  for (size_t n = 0; n < k.size(); ++n) {
    KeyReader t(std::string_view(k).substr(0, n));
    bool ok = t.U8(&a) && t.U32(&b) && t.Str(&s) && t.U64(&c);
    EXPECT_FALSE(ok) << n;
  }
}

TEST(KeysTest, PrefixSuccessorBoundsExactlyThePrefix) {
  EXPECT_EQ(PrefixSuccessor("ab"), "ac");
  EXPECT_EQ(PrefixSuccessor(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixSuccessor(std::string("\xff\xff", 2)), "");
  std::string p = KeyWriter().Str("run-1").Take();
  std::string hi = PrefixSuccessor(p);
  EXPECT_LT(KeyWriter().Str("run-1").U32(0xffffffff).Take(), hi);
  EXPECT_GE(KeyWriter().Str("run-2").Take(), hi);
  EXPECT_GE(KeyWriter().Str("run-10").Take(), hi);
}

TEST(KeysTest, Base64UrlRoundTripAndStrictness) {
  EXPECT_EQ(Base64UrlEncode(std::string("\xfb\xff\xfe\x00", 4)), "-__-AA");  // Python: "-__-AA=="
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  std::mt19937 rng(3);
  for (int n = 0; n < 70; ++n) {
    std::string d(size_t(n), '\0');
    for (auto& c : d) c = char(rng());
    std::string e = Base64UrlEncode(d), back;
    ASSERT_TRUE(Base64UrlDecode(e, &back));
    EXPECT_EQ(back, d);
  }
  std::string out;
  EXPECT_FALSE(Base64UrlDecode("Zg==", &out));  // padding is not part of the URL-safe form
  EXPECT_FALSE(Base64UrlDecode("Z", &out));     // impossible length
  EXPECT_FALSE(Base64UrlDecode("Zh", &out));    // non-zero trailing bits: non-canonical
  EXPECT_FALSE(Base64UrlDecode("ab+/", &out));  // standard alphabet refused
}

TEST(KeysTest, Crc32cCheckValues) {
  // RFC 3720 B.4 / the usual "123456789" check value; others from a bitwise
  // Python reference.
  EXPECT_EQ(Crc32c("123456789", 9), 0xe3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  std::string inc(32, '\0');
  for (int i = 0; i < 32; ++i) inc[i] = char(i);
  EXPECT_EQ(Crc32c(inc.data(), inc.size()), 0x46dd794eu);
}

}  // namespace
}  // namespace herd::stores
