// The built-in codecs: what they write reads back the same, and what they
// did not write is refused (a miss), never misread.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "poolscope/cache/redis/codec.h"

namespace poolscope::cache {
namespace {

TEST(RedisCodecTest, BuiltinsRoundTrip) {
  const RedisCodec<std::string> strings = builtin_codec<std::string>();
  const std::string binary("a\0b\nc", 5);
  EXPECT_EQ(strings.decode(strings.encode(binary)), binary);
  EXPECT_EQ(strings.decode(""), "");

  const RedisCodec<std::int64_t> ints = builtin_codec<std::int64_t>();
  for (std::int64_t v :
       {std::int64_t{0}, std::int64_t{-7}, std::numeric_limits<std::int64_t>::min(),
        std::numeric_limits<std::int64_t>::max()}) {
    EXPECT_EQ(ints.decode(ints.encode(v)), v);
  }
  const RedisCodec<unsigned> unsigneds = builtin_codec<unsigned>();
  EXPECT_EQ(unsigneds.decode(unsigneds.encode(4'000'000'000u)), 4'000'000'000u);

  const RedisCodec<double> doubles = builtin_codec<double>();
  for (double v : {0.1, -0.0, 1e300, 5e-324, 3.141592653589793}) {
    const std::optional<double> back = doubles.decode(doubles.encode(v));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, v);
    EXPECT_EQ(std::signbit(*back), std::signbit(v));
  }
  EXPECT_EQ(doubles.encode(0.1), "0.1");  // shortest text, readable in redis-cli
}

TEST(RedisCodecTest, RefusesWhatItDidNotWrite) {
  const RedisCodec<int> ints = builtin_codec<int>();
  for (std::string_view bad : {"", "12x", " 1", "1 ", "0x10", "99999999999", "1.5"}) {
    EXPECT_EQ(ints.decode(bad), std::nullopt) << bad;
  }
  const RedisCodec<double> doubles = builtin_codec<double>();
  for (std::string_view bad : {"", "1.5.2", "abc", "1e"}) {
    EXPECT_EQ(doubles.decode(bad), std::nullopt) << bad;
  }
  const RedisKeyCodec<long long> keys = builtin_key_codec<long long>();
  EXPECT_EQ(keys.encode(-42), "-42");
  EXPECT_EQ(keys.decode("-42"), -42);
  EXPECT_EQ(keys.decode("42a"), std::nullopt);
}

TEST(RedisCodecTest, SettingsRoundTripAndRefuseAnythingElse) {
  auto table = std::make_shared<const SettingsTable>(
      SettingsTable{"account_settings", "account_id", "setting_key", "setting_value"});
  const Settings settings(table, 7,
                          {{"api_key", "k:1"}, {"empty", ""}, {"odd", std::string("a\0\n5:", 5)}});
  const std::string bytes = encode_settings(settings);
  std::shared_ptr<const Settings> back = decode_settings(table, 7, bytes);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->entity(), 7);
  EXPECT_EQ(back->values(), settings.values());
  EXPECT_EQ(&back->table(), table.get());
  EXPECT_EQ(encode_settings(*back), bytes) << "the same settings encode the same";

  EXPECT_NE(decode_settings(table, 7, "0\n"), nullptr);
  for (const std::string& bad :
       {std::string(), std::string("x"), bytes.substr(0, bytes.size() - 1), bytes + "x",
        std::string("2\n1:a1:b1:a1:c"), std::string("99999999\n"), std::string("1\n5:ab1:c"),
        std::string("1\n-1:a1:b"), std::string("ps1;0;1\n1:a1:b")}) {
    EXPECT_EQ(decode_settings(table, 7, bad), nullptr) << bad;
  }
}

}  // namespace
}  // namespace poolscope::cache
