// Where a BadUrl says a problem lies: a position before any password, none
// at or past one (wherever libpq could read one).

#include <gtest/gtest.h>

#include <string>

#include "poolscope/pool/errors.h"
#include "poolscope/pool/url.h"

namespace poolscope {
namespace {

// A position past the start of a password would tell its length, or which
// part of the text one of libpq's readings takes for it (a fuzzer finding:
// "host" inside what the URI reading calls the password moved the error).
TEST(BadUrlPositionTest, NoPositionAtOrPastAPassword) {
  auto message = [](const std::string& url) {
    try {
      (void)ConnectionUrl::parse(url);
    } catch (const BadUrl& e) {
      return std::string(e.what());
    }
    return std::string("parsed");
  };
  for (const std::string secret : {"Zq9", "Zq9Secret", "Zq9SecretThatIsLonger"}) {
    const std::string url = "postgresql://app:" + secret + "@db/app#frag";
    EXPECT_EQ(message(url),
              "bad connection URL 'postgresql://***': a '#' in or after the password; "
              "fragments are not supported; percent-encode it (%23)")
        << url;
  }
  // Before any password, the position is there.
  EXPECT_NE(message("postgresql://app@db/app#frag").find("a '#' at position 24"), std::string::npos)
      << message("postgresql://app@db/app#frag");
  // The fuzzer's input: the same text whichever reading's password holds the keyword.
  const std::string found =
      "postgresql://password=Zq3\xa5\xa5\xa5\xa5=\xa5\xa5\x8cSecreuddd:buset\thost=dad'ddddd@="
      "adddd:bucvtfu\tiptu=dad'dddddset\thost=db\tuser=ads@b'";
  std::string changed = found;
  changed.replace(changed.find("buset\thost=dad'ddddd"), 20, "cvtfu\tiptu=ebe'eeeee");
  EXPECT_EQ(message(found), message(changed));
  EXPECT_EQ(message(found).find("position"), std::string::npos) << message(found);
}

}  // namespace
}  // namespace poolscope
