#include "api/server/auth.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "common/sha256.h"
#include "tests/api/test_util.h"

namespace herd::api {
namespace {

TEST(Sha256, Fips180Vectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalUpdatesMatchSha256sum) {
  // Independent reference: coreutils sha256sum on the same bytes, for sizes
  // around the 55/56/64-byte padding boundaries.
  if (!testing::HaveExecutable("sha256sum")) GTEST_SKIP() << "sha256sum not installed";
  std::mt19937 rng(7);
  auto dir = testing::MakeTempDir("sha");
  for (size_t n : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 1000u, 70000u}) {
    std::string data(n, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    auto path = dir / "blob";
    {
      std::ofstream out(path, std::ios::binary);
      out.write(data.data(), static_cast<std::streamsize>(data.size()));
    }
    auto [rc, out] = testing::RunCommand("sha256sum " + path.string());
    ASSERT_EQ(rc, 0);
    Sha256 s;
    size_t off = 0;
    while (off < n) {  // random update sizes
      size_t k = std::min<size_t>(n - off, rng() % 97);
      s.Update(std::string_view(data).substr(off, k));
      off += k;
    }
    auto d = s.Finish();
    std::string hex;
    char b[3];
    for (uint8_t x : d) {
      std::snprintf(b, sizeof b, "%02x", x);
      hex += b;
    }
    EXPECT_EQ(hex, out.substr(0, 64)) << "n=" << n;
    EXPECT_EQ(hex, Sha256Hex(data));
  }
  std::filesystem::remove_all(dir);
}

std::string Entry(const std::string& name, const std::string& role, const std::string& token) {
  return R"({"name": ")" + name + R"(", "role": ")" + role + R"(", "token_sha256": ")" +
         Sha256Hex(token) + "\"}\n";
}

TEST(Authenticator, ParsesAndAuthenticatesByHash) {
  std::string text = "# herd tokens\n\n" + Entry("alice", "admin", "tok-alice") +
                     Entry("bob", "annotator", "tok-bob") + "   \n" +
                     Entry("w1", "worker", "tok-w1");
  auto a = Authenticator::Parse(text, "auth.jsonl");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->size(), 3u);
  auto p = a->Authenticate("tok-bob");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "bob");
  EXPECT_EQ(p->role, Role::kAnnotator);
  EXPECT_EQ(a->Authenticate("tok-w1")->role, Role::kWorker);
  EXPECT_FALSE(a->Authenticate("tok-bo").has_value());
  EXPECT_FALSE(a->Authenticate("").has_value());
  // The hash itself is not a token.
  EXPECT_FALSE(a->Authenticate(Sha256Hex("tok-bob")).has_value());
}

TEST(Authenticator, ErrorsNameFileLineAndField) {
  auto bad = [](const std::string& text) {
    auto a = Authenticator::Parse(text, "auth.jsonl");
    EXPECT_FALSE(a.ok());
    return a.ok() ? std::string() : a.status().message();
  };
  std::string ok_line = Entry("alice", "admin", "t");
  EXPECT_NE(bad(ok_line + "{\"name\": \"x\", \"role\": \"root\", \"token_sha256\": \"" +
                std::string(64, 'a') + "\"}")
                .find("auth.jsonl:2: role: 'root'"),
            std::string::npos);
  EXPECT_NE(bad(ok_line + ok_line).find("auth.jsonl:2: name 'alice' appears twice"),
            std::string::npos);
  EXPECT_NE(bad(R"({"name": "x", "role": "admin", "token_sha256": "abc"})")
                .find("auth.jsonl:1: field 'token_sha256'"),
            std::string::npos);
  EXPECT_NE(bad(R"({"name": "x", "role": "admin", "token_sha256": ")" + std::string(64, 'g') +
                "\"}")
                .find("64 hex digits"),
            std::string::npos);
  EXPECT_NE(bad(R"({"role": "admin"})").find("field 'name' missing"), std::string::npos);
  EXPECT_NE(bad("{not json").find("auth.jsonl:1: invalid JSON"), std::string::npos);
  EXPECT_NE(bad("# only comments\n").find("no tokens"), std::string::npos);
}

TEST(Authenticator, LoadFile) {
  auto dir = testing::MakeTempDir("auth");
  auto path = (dir / "auth.jsonl").string();
  {
    std::ofstream out(path);
    out << Entry("v", "viewer", "secret");
  }
  auto a = Authenticator::LoadFile(path);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->Authenticate("secret")->name, "v");
  auto missing = Authenticator::LoadFile((dir / "nope").string());
  EXPECT_EQ(missing.status().code(), Status::Code::kIoError);
  std::filesystem::remove_all(dir);
}

TEST(Auth, BearerToken) {
  EXPECT_EQ(*BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(*BearerToken("bearer  abc "), "abc");
  EXPECT_FALSE(BearerToken("Basic abc").has_value());
  EXPECT_FALSE(BearerToken("Bearer ").has_value());
  EXPECT_FALSE(BearerToken("Bearerabc").has_value());
}

TEST(Auth, ConstantTimeEquals) {
  std::array<uint8_t, 32> a{}, b{};
  EXPECT_TRUE(ConstantTimeEquals(a, b));
  b[31] = 1;
  EXPECT_FALSE(ConstantTimeEquals(a, b));
  b[31] = 0;
  b[0] = 0x80;
  EXPECT_FALSE(ConstantTimeEquals(a, b));
}

TEST(Auth, LoopbackAndListenPolicy) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"}) {
    EXPECT_TRUE(IsLoopbackHost(h)) << h;
    EXPECT_TRUE(CheckListenAllowed(h, false).ok()) << h;
  }
  for (const char* h : {"0.0.0.0", "10.0.0.1", "::", "128.0.0.1", "example.com", ""}) {
    EXPECT_FALSE(IsLoopbackHost(h)) << h;
    Status st = CheckListenAllowed(h, false);
    EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition) << h;
    EXPECT_NE(st.message().find("--auth-file"), std::string::npos);
    EXPECT_TRUE(CheckListenAllowed(h, true).ok()) << h;
  }
}

}  // namespace
}  // namespace herd::api
