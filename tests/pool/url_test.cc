// ConnectionUrl and redact_url(): every form of URL, and where a password may
// hide in each. libpq's PQconninfoParse is the oracle for what the password
// is; it must appear, whole or as any piece of four or more characters, in
// none of redacted(), BadUrl::what(), scrub() or redact_url(). Also built
// without PostgreSQL support (POOLSCOPE_URL_TEST_WITHOUT_POSTGRESQL).

#include "poolscope/pool/url.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "poolscope/pool/errors.h"

#if !POOLSCOPE_URL_TEST_WITHOUT_POSTGRESQL
#include <libpq-fe.h>
#endif

namespace poolscope {
namespace {

using Defaults = std::vector<std::pair<std::string, std::string>>;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string bad_url_message(const std::string& url) {
  try {
    ConnectionUrl::parse(url);
  } catch (const BadUrl& e) {
    return e.what();
  }
  return "(parsed)";
}

TEST(ConnectionUrlTest, ParsesSociSqliteForm) {
  const ConnectionUrl url = ConnectionUrl::parse("sqlite3://db=app.db timeout=5");
  EXPECT_EQ(url.backend(), Backend::kSqlite);
  EXPECT_EQ(url.soci_backend(), "sqlite3");
  EXPECT_EQ(url.connect_string(), "db=app.db timeout=5");
  EXPECT_EQ(url.sqlite_path(), "app.db");
  EXPECT_EQ(url.redacted(), "sqlite3://db=app.db timeout=5");
  EXPECT_TRUE(url.has_parameter("timeout"));
  EXPECT_TRUE(url.has_parameter("dbname"));  // SOCI reads db and dbname alike
  EXPECT_FALSE(ConnectionUrl::parse("sqlite:///tmp/a.db").has_parameter("timeout"));
  EXPECT_EQ(url.scrub("no secret"), "no secret");
}

TEST(ConnectionUrlTest, ParsesSqliteUris) {
  EXPECT_EQ(ConnectionUrl::parse("sqlite:///abs/path/app.db").connect_string(),
            "db=/abs/path/app.db");
  const ConnectionUrl relative = ConnectionUrl::parse("sqlite://relative/app.db?timeout=7");
  EXPECT_EQ(relative.sqlite_path(), "relative/app.db");
  EXPECT_EQ(relative.connect_string(), "db=relative/app.db timeout=7");
  EXPECT_EQ(relative.redacted(), "sqlite://relative/app.db?timeout=7");
  EXPECT_TRUE(ConnectionUrl::parse("sqlite://:memory:").sqlite_in_memory());
  EXPECT_TRUE(ConnectionUrl::parse("sqlite:///:memory:").sqlite_in_memory());
  EXPECT_TRUE(ConnectionUrl::parse("sqlite3://db=:memory:").sqlite_in_memory());
  EXPECT_FALSE(ConnectionUrl::parse("sqlite://memory.db").sqlite_in_memory());
}

TEST(ConnectionUrlTest, RebuildsTheSqliteConnectStringForSoci) {
  const ConnectionUrl spaces = ConnectionUrl::parse("sqlite:///tmp/my%20data/app.db");
  EXPECT_EQ(spaces.sqlite_path(), "/tmp/my data/app.db");
  EXPECT_EQ(spaces.connect_string(), "db=\"/tmp/my data/app.db\"");
  EXPECT_EQ(spaces.redacted(), "sqlite:///tmp/my%20data/app.db");
  // SOCI splits on single spaces only, and turns readonly on whatever its value.
  const ConnectionUrl tabs =
      ConnectionUrl::parse("sqlite3://db=\"/tmp/a b.db\"\tsynchronous=OFF  readonly=false");
  EXPECT_EQ(tabs.sqlite_path(), "/tmp/a b.db");
  EXPECT_EQ(tabs.connect_string(), "db=\"/tmp/a b.db\" synchronous=off");
  EXPECT_TRUE(tabs.has_parameter("readonly"));
}

TEST(ConnectionUrlTest, AppendsSqliteDefaultsThatCannotMergeIntoAValue) {
  const ConnectionUrl url = ConnectionUrl::parse("sqlite3://db=\"/tmp/x y/q.db\" vfs=unix");
  EXPECT_EQ(url.connect_string_with(Defaults{{"timeout", "9"}}),
            "db=\"/tmp/x y/q.db\" vfs=unix timeout=9");
  EXPECT_EQ(ConnectionUrl::parse("sqlite3://db=/tmp/\"q.db")
                .connect_string_with(Defaults{{"timeout", "9"}}),
            "db=/tmp/\"q.db timeout=9");
  EXPECT_EQ(ConnectionUrl::parse("sqlite:///tmp/a.db?timeout=2")
                .connect_string_with(Defaults{{"timeout", "9"}}),
            "db=/tmp/a.db timeout=2");
  EXPECT_THROW(url.connect_string_with(Defaults{{"nosuch", "1"}}), std::invalid_argument);
  EXPECT_THROW(
      ConnectionUrl::parse("sqlite:///tmp/a.db").connect_string_with(Defaults{{"vfs", "a \"b"}}),
      std::invalid_argument);
}

TEST(RedactUrlTest, MasksUserInfoOfAnyScheme) {
  EXPECT_EQ(redact_url("redis://user:Zq9Secret@cache:6379/0"), "redis://user:***@cache:6379/0");
  EXPECT_EQ(redact_url("redis://:Zq9Secret@cache:6379"), "redis://:***@cache:6379");
  EXPECT_EQ(redact_url("amqp://u:Zq9/Se@cret@mq/vhost"), "amqp://u:***@mq/vhost");
  EXPECT_EQ(redact_url("redis://cache:6379/0"), "redis://cache:6379/0");
  EXPECT_EQ(redact_url("cannot reach redis://u:Zq9Secret@cache:6379 (refused)"),
            "cannot reach redis://u:***@cache:6379 (refused)");
}

TEST(RedactUrlTest, MasksSecretValuesInAnyCaseAndEncoding) {
  EXPECT_EQ(redact_url("mongodb://h/?authSource=x&PassWord=Zq9Secret&w=1"),
            "mongodb://h/?authSource=x&PassWord=***&w=1");
  EXPECT_EQ(redact_url("x://h/?pass%77ord=Zq9Secret&w=1"), "x://h/?pass%77ord=***&w=1");
  EXPECT_EQ(redact_url("host=h api_token = 'Zq9 Se\\'cret' x=1"), "host=h api_token = *** x=1");
  EXPECT_EQ(redact_url("host=h secret=\"Zq9 Secret"), "host=h secret=***");
}

#if !POOLSCOPE_URL_TEST_WITHOUT_POSTGRESQL

// Every secret libpq reads from conninfo (password, sslpassword).
std::vector<std::string> libpq_secrets(const std::string& conninfo) {
  std::vector<std::string> out;
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  PQfreemem(error);
  for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
    if (o->val != nullptr && o->val[0] != '\0' && o->dispchar[0] == '*') out.push_back(o->val);
  }
  PQconninfoFree(options);
  return out;
}

// Fails when text holds secret or any piece of it of 4+ characters.
void expect_hidden(const std::string& text, const std::string& secret, const std::string& what) {
  for (std::size_t length = std::min<std::size_t>(4, secret.size()); length <= secret.size();
       ++length) {
    for (std::size_t at = 0; at + length <= secret.size(); ++at) {
      const std::string piece = secret.substr(at, length);
      EXPECT_EQ(text.find(piece), std::string::npos)
          << what << " shows '" << piece << "' of the password: " << text;
    }
  }
}

struct PasswordCase {
  const char* name;
  std::string url;
  std::string oracle;  // what libpq reads the intended password from
  bool parses;
  std::string expected;  // parses: redacted(); else: a part of BadUrl::what()
};

void PrintTo(const PasswordCase& c, std::ostream* os) { *os << c.name; }

class PasswordFormTest : public ::testing::TestWithParam<PasswordCase> {};

TEST_P(PasswordFormTest, ShowsThePasswordNowhere) {
  const PasswordCase& c = GetParam();
  const std::string oracle = c.oracle.empty() ? c.url : c.oracle;
  const std::vector<std::string> secrets = libpq_secrets(oracle);
  ASSERT_FALSE(secrets.empty()) << "libpq reads no password in " << oracle;
  std::vector<std::string> texts = {redact_url(c.url)};
  try {
    const ConnectionUrl url = ConnectionUrl::parse(c.url);
    EXPECT_TRUE(c.parses) << "parsed, redacted to " << url.redacted();
    EXPECT_EQ(url.redacted(), c.parses ? c.expected : url.redacted());
    texts.push_back(url.redacted());
    for (const std::string& secret : secrets) {
      texts.push_back(url.scrub("FATAL: password authentication failed (" + secret + ")"));
    }
    EXPECT_EQ(libpq_secrets(url.connect_string()), secrets) << "libpq reads another password";
  } catch (const BadUrl& e) {
    EXPECT_FALSE(c.parses) << e.what();
    EXPECT_PRED2(contains, e.what(), c.expected);
    texts.push_back(e.what());
  }
  for (const std::string& secret : secrets) {
    for (const std::string& text : texts) expect_hidden(text, secret, c.name);
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryForm, PasswordFormTest,
    ::testing::Values(
        // URIs.
        PasswordCase{"AzureUserInTheQuery",
                     "postgresql://db:5432/app?user=app@myserver&password=Zq9Secret", "", true,
                     "postgresql://app%40myserver:***@db:5432/app"},
        PasswordCase{"UserInfo", "postgresql://app:Zq9Secret@db:5432/app?sslmode=disable", "", true,
                     "postgresql://app:***@db:5432/app?sslmode=disable"},
        PasswordCase{"EqualsInThePassword", "postgresql://app:pa=Zq9Secret@db/app", "", true,
                     "postgresql://app:***@db/app"},
        PasswordCase{"EqualsInTheUserName", "postgresql://user=x:Zq9Secret@db/app", "", true,
                     "postgresql://user%3Dx:***@db/app"},
        PasswordCase{"PercentEncoded", "postgresql://app:Zq9%53ecret%21@db/app", "", true,
                     "postgresql://app:***@db/app"},
        PasswordCase{"QuestionMarkInThePassword", "postgresql://app:Zq9Secret?x@db/app", "", true,
                     "postgresql://app:***@db/app"},
        PasswordCase{"EncodedAmpersandInTheQuery",
                     "postgresql://app@db/app?password=Zq9%26Secret&sslmode=disable", "", true,
                     "postgresql://app:***@db/app?sslmode=disable"},
        PasswordCase{"EncodedKeyInTheQuery", "postgresql://app@db/app?pass%77ord=Zq9Secret", "",
                     true, "postgresql://app:***@db/app"},
        PasswordCase{
            "MultiHost",
            "postgresql://app:Zq9Secret@h1:5432,h2:5433/db?target_session_attrs=read-write", "",
            true, "postgresql://app:***@h1:5432,h2:5433/db?target_session_attrs=read-write"},
        PasswordCase{"Ipv6", "postgres://app:Zq9Secret@[::1]:5433/db", "", true,
                     "postgres://app:***@[::1]:5433/db"},
        PasswordCase{"RawAtThenSlash", "postgresql://app:Zq9@Secret/x@db/app",
                     "password=Zq9@Secret/x", false, "an '@' after the user info in or after"},
        PasswordCase{"RawAtThenQuestionMark", "postgresql://app:Zq9@Secret?x@db/app",
                     "password=Zq9@Secret?x", false, "a query parameter without '='"},
        PasswordCase{"RawAtThenHash", "postgresql://app:Zq9@Secret#x@db/app",
                     "password=Zq9@Secret#x", false, "a '#' in or after the password"},
        PasswordCase{"SpaceInAUri", "postgresql://app:Zq9 Secret@db/app", "password='Zq9 Secret'",
                     false, "a space or control character in a URI in or after the password"},
        PasswordCase{"MalformedEscape", "postgresql://app:Zq9Secret%zz@db/app",
                     "password=Zq9Secret%zz", false, "malformed %-escape in the password"},
        PasswordCase{"UpperCaseQueryKey", "postgresql://app@db/app?Password=Zq9Secret",
                     "password=Zq9Secret", false, "did you mean 'password'? (keywords are lower"},
        PasswordCase{"TypoInTheQuery", "postgresql://app:Zq9Secret@db/app?sslmod=disable",
                     "postgresql://app:Zq9Secret@db/app", false,
                     "unknown query parameter at position 35; did you mean 'sslmode'?"},
        PasswordCase{"NamedPort", "postgresql://app:Zq9Secret@db:port/app", "", false,
                     "the port is not a number from 1 to 65535"},
        PasswordCase{"PortTooLarge", "postgresql://app:Zq9Secret@db:99999/app", "", false,
                     "the port is not a number"},
        PasswordCase{"OneSlash", "postgresql:/app:Zq9Secret@db:5432/app",
                     "postgresql://app:Zq9Secret@db:5432/app", false,
                     "'postgresql:/***': expected '://' after the scheme 'postgresql' at "
                     "position 11"},
        PasswordCase{"NoColon", "postgres//app:Zq9Secret@db:5432/app",
                     "postgres://app:Zq9Secret@db:5432/app", false, "(the ':' is missing)"},
        PasswordCase{"LeadingSpace", " postgresql://app:Zq9Secret@db/app",
                     "postgresql://app:Zq9Secret@db/app", false, "'***': whitespace at position 1"},
        PasswordCase{"UnknownScheme", "mysql://app:Zq9Secret@db/app",
                     "postgresql://app:Zq9Secret@db/app", false, "'mysql://***': unknown scheme"},
        PasswordCase{"MistypedScheme", "postgresq://app:Zq9Secret@db/app",
                     "postgresql://app:Zq9Secret@db/app", false, "unknown scheme 'postgresq'"},
        PasswordCase{
            "RawNul",
            std::string("postgresql://app:Zq9Secret@db/app") + '\0' + "?sslmode=verify-full",
            "postgresql://app:Zq9Secret@db/app", false, "a NUL byte in or after the password"},
        // SOCI's form: libpq keyword=value text.
        PasswordCase{"Quoted", "postgresql://host=db password='Zq9 Secret' user=app",
                     "password='Zq9 Secret'", true, "postgresql://host=db user=app password=***"},
        PasswordCase{"EscapedSpace", "postgresql://host=db password=Zq9\\ Secret",
                     "password=Zq9\\ Secret", true, "postgresql://host=db password=***"},
        PasswordCase{"EscapedQuote", "postgresql://host=db password='Zq9\\'Secret' user=app",
                     "password='Zq9\\'Secret'", true, "postgresql://host=db user=app password=***"},
        PasswordCase{"DoubleQuotesAreNotQuotes", "postgresql://host=db password=\"Zq9 Secret\"",
                     "password='Zq9 Secret'", false, "no '=' after a keyword at position 36"},
        PasswordCase{"TrailingBackslash", "postgresql://host=db password=Zq9Secret\\",
                     "password=Zq9Secret", true, "postgresql://host=db password=***"},
        PasswordCase{"AnyWhitespace", "postgresql://host=db\tpassword=Zq9Secret\ndbname=app",
                     "password=Zq9Secret", true, "postgresql://host=db dbname=app password=***"},
        PasswordCase{"SpacesAroundEquals", "postgresql://host=db password = Zq9Secret",
                     "password=Zq9Secret", true, "postgresql://host=db password=***"},
        PasswordCase{"AzureUser", "postgresql://host=db user=app@myserver password=Zq9Secret",
                     "password=Zq9Secret", true,
                     "postgresql://host=db user=app@myserver password=***"},
        PasswordCase{"SslPassword", "postgresql://host=db sslpassword=Zq9Secret",
                     "sslpassword=Zq9Secret", true, "postgresql://host=db sslpassword=***"},
        PasswordCase{"EmptyValueTakesTheNextPair", "postgresql://host=db password= Zq9Secret=1",
                     "password= Zq9Secret=1", true, "postgresql://host=db password=***"},
        PasswordCase{"UpperCaseKey", "postgresql://host=db Password=Zq9Secret",
                     "password=Zq9Secret", false,
                     "unknown keyword at position 22; did you mean 'password'? (keywords are"},
        PasswordCase{"TypoInAKey", "postgresql://host=db passwrd=Zq9Secret", "password=Zq9Secret",
                     false, "did you mean 'password'?"},
        PasswordCase{"NoValue", "postgresql://host=h pw:Zq9Secret@db",
                     "postgresql://pw:Zq9Secret@db", false,
                     "no '=' after a keyword at position 21"},
        PasswordCase{"UnclosedQuote", "postgresql://host=db password='Zq9Secret",
                     "password='Zq9Secret'", false, "quoted value has no closing quote"},
        PasswordCase{"UnknownKeywordAfterThePassword",
                     "postgresql://host=db password=Zq9Secret bogus=1", "password=Zq9Secret", false,
                     "unknown keyword at position 41"}),
    [](const ::testing::TestParamInfo<PasswordCase>& param) { return param.param.name; });

TEST(ConnectionUrlTest, ScrubLeavesNoPasswordWhereAMaskMeetsTheText) {
  // "***" would turn "*x*x*" into "*x*" again; "a Zq9SecretZq9Secret b": one mask.
  EXPECT_EQ(ConnectionUrl::parse("postgresql://u:*x*@h/d").scrub("got *x*x* here"), "got ### here");
  EXPECT_EQ(ConnectionUrl::parse("postgresql://u:Zq9Secret@h/d").scrub("a Zq9SecretZq9Secret b"),
            "a *** b");
}

TEST(ConnectionUrlTest, ReadsBothPostgresFormsThroughLibpq) {
  const ConnectionUrl soci = ConnectionUrl::parse("postgresql://host=h\tconnect_timeout=3");
  EXPECT_EQ(soci.backend(), Backend::kPostgreSQL);
  EXPECT_EQ(soci.soci_backend(), "postgresql");
  EXPECT_EQ(soci.connect_string(), "connect_timeout='3' host='h'");
  EXPECT_TRUE(soci.has_parameter("connect_timeout"));
  EXPECT_FALSE(soci.has_parameter("timeout"));
  const ConnectionUrl uri = ConnectionUrl::parse("postgres://a%40b:it%27s@h/my%20db?ssl=true");
  EXPECT_EQ(uri.connect_string(),
            "user='a@b' password='it\\'s' dbname='my db' host='h' sslmode='require'");
  EXPECT_EQ(uri.redacted(), "postgres://a%40b:***@h/my%20db?sslmode=require");
  EXPECT_TRUE(uri.has_parameter("sslmode"));
}

TEST(ConnectionUrlTest, AppendedKeywordsCannotMergeIntoAUserValue) {
  // libpq reads "Zq9Secret\ connect_timeout=2" as one password: appended
  // text must never follow a user's raw value.
  const Defaults defaults = {{"connect_timeout", "2"},
                             {"fallback_application_name", "poolscope:it's \\ me"}};
  for (const std::string url :
       {"postgresql://host=db password=Zq9Secret\\", "postgresql://host=db password='Zq9 Sec\\\\'",
        "postgresql://h/d?password=Zq9%5C&application_name=a%27b%20c%5C"}) {
    const std::string s = ConnectionUrl::parse(url).connect_string_with(defaults);
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(s.c_str(), &error);
    ASSERT_NE(options, nullptr) << error;
    std::vector<std::pair<std::string, std::string>> read;
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (o->val != nullptr) read.emplace_back(o->keyword, o->val);
    }
    PQconninfoFree(options);
    EXPECT_NE(std::find(read.begin(), read.end(), defaults[0]), read.end()) << url;
    EXPECT_NE(std::find(read.begin(), read.end(), defaults[1]), read.end()) << url;
  }
  const ConnectionUrl own = ConnectionUrl::parse("postgresql://h/d?connect_timeout=7");
  EXPECT_EQ(own.connect_string_with(defaults),
            "connect_timeout='7' dbname='d' host='h' "
            "fallback_application_name='poolscope:it\\'s \\\\ me'");
  EXPECT_THROW(own.connect_string_with(Defaults{{"timeout", "1"}}), std::invalid_argument);
}

TEST(ConnectionUrlTest, ChecksWhatLibpqChecksOnlyWhenConnecting) {
  EXPECT_PRED2(contains, bad_url_message("postgresql://h1,h2,h3/d?port=1,2"), "2 ports for 3");
  EXPECT_PRED2(contains, bad_url_message("postgresql://h/d?sslmode=verify"), "'sslmode' is not");
  EXPECT_PRED2(contains, bad_url_message("postgresql://h1:5432,h2:0/d"), "port 2 of 2 is not");
  EXPECT_NO_THROW(ConnectionUrl::parse("postgresql://h1,h2/d?port=5433"));
  EXPECT_NO_THROW(ConnectionUrl::parse("postgresql://host=a,b port=1,2 target_session_attrs=any"));
}

TEST(ConnectionUrlTest, HidesWhatTheOtherReadingCallsAPassword) {
  // Pairs, but as a URI: user "user=x", password "Zq9Secret", host "h sslmode...".
  const ConnectionUrl url = ConnectionUrl::parse("postgresql://user=x:Zq9Secret@h sslmode=require");
  EXPECT_EQ(url.redacted(), "postgresql://user=*** sslmode=require");
  EXPECT_EQ(url.scrub("no role \"x:Zq9Secret@h\""), "no role \"***\"");
  // A URI with password "Sec", or the pair password=Zq9:Sec@ret: refused.
  EXPECT_PRED2(contains, bad_url_message("postgresql://password=Zq9:Sec@ret"),
               "reads both as a URI and as keyword=value pairs");
}

TEST(RedactUrlTest, MasksWhereLibpqWouldReadAPassword) {
  EXPECT_EQ(redact_url("postgresql://db:5432/app?user=app@myserver&password=Zq9Secret"),
            "postgresql://app%40myserver:***@db:5432/app");  // parses: the redacted form
  // Refused (a raw space, a bad sslmode), yet libpq would read a password.
  EXPECT_EQ(redact_url("postgresql://u:Zq9 Secret@h/d"), "postgresql://u:***@h/d");
  EXPECT_EQ(redact_url("postgresql://h/d?sslmode=bogus&user=u&password=Zq9%20Se&cret"),
            "postgresql://h/d?sslmode=bogus&user=u&password=***&cret");
  EXPECT_EQ(redact_url("postgresql:/app:Zq9Secret@db:5432/app"), "postgresql:/app:***@db:5432/app");
  EXPECT_EQ(redact_url("postgresql://host=db password='Zq9 Secret' bogus=1"),
            "postgresql://host=db password=*** bogus=1");
}

#else  // POOLSCOPE_URL_TEST_WITHOUT_POSTGRESQL

TEST(ConnectionUrlWithoutPostgreSQLTest, RefusesPostgresUrlsClearly) {
  for (const char* url : {"postgresql://app:Zq9Secret@db/app", "postgres://host=db password=x"}) {
    EXPECT_PRED2(contains, bad_url_message(url), "://***': this poolscope was built without");
  }
  EXPECT_EQ(redact_url("postgresql://app:Zq9Secret@db/app"), "postgresql://app:***@db/app");
}

#endif  // POOLSCOPE_URL_TEST_WITHOUT_POSTGRESQL

struct BadUrlCase {
  const char* url;
  const char* reason;  // a part of the message
};
void PrintTo(const BadUrlCase& c, std::ostream* os) { *os << c.url; }

class BadUrlTest : public ::testing::TestWithParam<BadUrlCase> {};

TEST_P(BadUrlTest, SaysWhatIsWrongAndShowsOnlyTheScheme) {
  const BadUrlCase& c = GetParam();
  const std::string message = bad_url_message(c.url);
  EXPECT_NE(message.find(c.reason), std::string::npos) << message;
  const std::string url = c.url;  // only the scheme shows
  const std::size_t scheme = url.find("://");
  if (scheme != std::string::npos && scheme + 3 < url.size()) {
    EXPECT_TRUE(message.starts_with("bad connection URL '" + url.substr(0, scheme) + "://***': "))
        << message;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, BadUrlTest,
    ::testing::Values(BadUrlCase{"", "the URL is empty"}, BadUrlCase{"app.db", "'***': no scheme"},
                      BadUrlCase{"sqlite://", "no database file"},
                      BadUrlCase{"sqlite:///", "no database file"},
                      BadUrlCase{"sqlite3://timeout=5", "no database file"},
                      BadUrlCase{"sqlite3://db=\"/tmp/my file.db", "no closing '\"'"},
                      BadUrlCase{"sqlite3://db=x.db tmeout=1",
                                 "unknown SQLite parameter (did you mean 'timeout'?)"},
                      BadUrlCase{"sqlite:///tmp/x.db?bogus=1", "unknown SQLite parameter"},
                      BadUrlCase{"sqlite:///tmp/x.db?timeout=soon", "'timeout' is not a whole"},
                      BadUrlCase{"sqlite3://db=x.db synchronous=1;drop", "'synchronous' is not"},
                      BadUrlCase{"sqlite3://db=\"a \"b\" c\"", "text right after a closing"},
                      BadUrlCase{"sqlite:///tmp/a b.db", "space or control character"}));

}  // namespace
}  // namespace poolscope
