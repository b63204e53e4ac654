// RedisUrl and RedisTierConfig: every URL form, every bad part named, and
// the password in no message.

#include "poolscope/cache/redis/redis_url.h"

#include <gtest/gtest.h>

#include "poolscope/cache/redis/redis_tier.h"
#include "poolscope/pool/errors.h"
#include "test_util.h"

namespace poolscope::cache {
namespace {

TEST(RedisUrlTest, ParsesTcpForms) {
  RedisUrl u = RedisUrl::parse("redis://cache.internal");
  EXPECT_EQ(u.host(), "cache.internal");
  EXPECT_EQ(u.port(), 6379);
  EXPECT_EQ(u.database(), 0);
  EXPECT_FALSE(u.has_password());
  EXPECT_FALSE(u.is_unix());

  u = RedisUrl::parse("redis://:s3cret@10.0.0.7:6380/2");
  EXPECT_EQ(u.host(), "10.0.0.7");
  EXPECT_EQ(u.port(), 6380);
  EXPECT_EQ(u.database(), 2);
  EXPECT_TRUE(u.has_password());
  EXPECT_EQ(u.user(), "");
  EXPECT_EQ(u.password(), "s3cret");
  EXPECT_EQ(u.redacted(), "redis://:***@10.0.0.7:6380/2");

  u = RedisUrl::parse("REDIS://app:p%40ss%2Fw@[::1]:7000/");
  EXPECT_EQ(u.host(), "::1");
  EXPECT_EQ(u.port(), 7000);
  EXPECT_EQ(u.database(), 0);
  EXPECT_EQ(u.user(), "app");
  EXPECT_EQ(u.password(), "p@ss/w");
  EXPECT_EQ(u.redacted(), "REDIS://app:***@[::1]:7000/");

  // An unencoded '@' or '/' in a password: the last '@' ends the user
  // info, and all of the password is hidden.
  u = RedisUrl::parse("redis://:a@b/c@host:1/3");
  EXPECT_EQ(u.password(), "a@b/c");
  EXPECT_EQ(u.host(), "host");
  EXPECT_EQ(u.database(), 3);
  EXPECT_EQ(u.redacted(), "redis://:***@host:1/3");
  try {
    RedisUrl::parse("redis://:a@b/c@host:x/3");
    ADD_FAILURE();
  } catch (const BadUrl& e) {
    EXPECT_STREQ(e.what(), "bad Redis URL 'redis://:***@host:x/3': bad port 'x' (1 to 65535)");
  }
}

TEST(RedisUrlTest, ParsesUnixSockets) {
  RedisUrl u = RedisUrl::parse("unix:///run/redis/redis.sock");
  EXPECT_TRUE(u.is_unix());
  EXPECT_EQ(u.socket_path(), "/run/redis/redis.sock");
  EXPECT_EQ(u.database(), 0);

  u = RedisUrl::parse("unix://app:pw@/tmp/r.sock?db=5");
  EXPECT_EQ(u.socket_path(), "/tmp/r.sock");
  EXPECT_EQ(u.user(), "app");
  EXPECT_EQ(u.password(), "pw");
  EXPECT_EQ(u.database(), 5);
  EXPECT_EQ(u.redacted(), "unix://app:***@/tmp/r.sock?db=5");
}

TEST(RedisUrlTest, BadPartsAreNamedAndThePasswordNeverShown) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "the URL is empty"},
      {"cache:6379", "no '://' after the scheme"},
      {"http://:hunter2@host", "unknown scheme 'http'"},
      {"rediss://:hunter2@host", "rediss:// (TLS) is not supported"},
      {"redis://:hunter2@", "no host"},
      {"redis://:hunter2@host:port", "bad port 'port' (1 to 65535)"},
      {"redis://:hunter2@host:0", "bad port '0'"},
      {"redis://:hunter2@host:70000", "bad port '70000'"},
      {"redis://:hunter2@host:", "bad port ''"},
      {"redis://:hunter2@host/x", "database 'x' is not a number"},
      {"redis://:hunter2@host/1/2", "database '1/2' is not a number"},
      {"redis://:hunter2@host/-1", "database '-1' is not a number"},
      {"redis://:hunter2@host?db=1", "unexpected query 'db=1'"},
      {"redis://:hunter2@bad_host!", "bad host 'bad_host!'"},
      {"redis://:hunter2@[::1", "misses its ']'"},
      {"redis://:hunter2@[::1]x", "stray characters 'x'"},
      {"redis://user@host", "user 'user' without a password"},
      {"redis://:@host", "the password is empty"},
      {"redis://:hunter2%zz@host", "the password has a malformed %-escape"},
      {"unix://:hunter2@relative.sock", "the socket path must be absolute"},
      {"unix://:hunter2@/tmp/", "the socket path names no file"},
      {"unix://:hunter2@/tmp/r.sock?password=x", "unknown query parameter 'password'"},
      {"unix://:hunter2@/tmp/r.sock?db=x", "database 'x' is not a number"},
      {"redis://:hunter2@host#frag", "a '#' fragment is not allowed"},
  };
  for (const auto& [url, expected] : cases) {
    try {
      RedisUrl::parse(url);
      ADD_FAILURE() << url << " was accepted";
    } catch (const BadUrl& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(expected), std::string::npos) << url << " -> " << message;
      EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
      EXPECT_TRUE(message.starts_with("bad Redis URL '")) << message;
    }
  }
}

TEST(RedisUrlTest, ScrubHidesThePasswordInServerText) {
  const RedisUrl u = RedisUrl::parse("redis://:hunter2@host");
  EXPECT_EQ(u.scrub("ERR hunter2 is wrong, hunter2"), "ERR *** is wrong, ***");
}

TEST(RedisTierConfigTest, InvalidFieldsAreNamed) {
  using poolscope::testing::validation_error;
  const auto error = [](auto breaks) {
    return validation_error<RedisTierConfig>([&](RedisTierConfig& c) {
      c.url = "redis://host";
      breaks(c);
    });
  };
  EXPECT_EQ(error([](RedisTierConfig&) {}), "accepted");
  EXPECT_EQ(error([](RedisTierConfig& c) { c.url.clear(); }),
            "RedisTierConfig.url must be a redis:// or unix:// URL (got '')");
  EXPECT_EQ(error([](RedisTierConfig& c) { c.prefix = "a:b"; }),
            "RedisTierConfig.prefix must be 1 to 64 of A-Z a-z 0-9 _ . - (got 'a:b')");
  EXPECT_EQ(error([](RedisTierConfig& c) { c.connections = 0; }),
            "RedisTierConfig.connections must be at least 1 (got 0)");
  EXPECT_EQ(error([](RedisTierConfig& c) { c.connections = 65; }),
            "RedisTierConfig.connections must be at most 64 (got 65)");
  EXPECT_EQ(error([](RedisTierConfig& c) { c.timeout = std::chrono::milliseconds(0); }),
            "RedisTierConfig.timeout must be positive (got 0 ms)");
  EXPECT_EQ(error([](RedisTierConfig& c) { c.lock_ttl = std::chrono::milliseconds(-1); }),
            "RedisTierConfig.lock_ttl must be positive (got -1 ms)");
  EXPECT_EQ(error([](RedisTierConfig& c) { c.max_backoff = std::chrono::milliseconds(10); }),
            "RedisTierConfig.max_backoff must be at least backoff (1000 ms) (got 10 ms)");
  EXPECT_EQ(error([](RedisTierConfig& c) { c.failure_threshold = 0; }),
            "RedisTierConfig.failure_threshold must be at least 1 (got 0)");
}

TEST(RedisTierConfigTest, ABadUrlThrowsBadUrlFromTheConstructor) {
  try {
    RedisTier tier({.url = "redis://:hunter2@host:99999"});
    FAIL();
  } catch (const BadUrl& e) {
    EXPECT_STREQ(e.what(),
                 "bad Redis URL 'redis://:***@host:99999': bad port '99999' (1 to 65535)");
  }
}

}  // namespace
}  // namespace poolscope::cache
