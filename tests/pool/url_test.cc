#include "poolscope/pool/url.h"

#include <gtest/gtest.h>

#include <string>

#include "poolscope/pool/errors.h"

namespace poolscope {
namespace {

TEST(ConnectionUrlTest, ParsesSociSqliteForm) {
  const ConnectionUrl url = ConnectionUrl::parse("sqlite3://db=app.db timeout=5");
  EXPECT_EQ(url.backend(), Backend::kSqlite);
  EXPECT_EQ(url.soci_backend(), "sqlite3");
  EXPECT_EQ(url.connect_string(), "db=app.db timeout=5");
  EXPECT_EQ(url.sqlite_path(), "app.db");
  EXPECT_EQ(url.redacted(), "sqlite3://db=app.db timeout=5");
}

TEST(ConnectionUrlTest, ParsesSociPostgresForm) {
  const ConnectionUrl url = ConnectionUrl::parse("postgresql://host=h dbname=d");
  EXPECT_EQ(url.backend(), Backend::kPostgreSQL);
  EXPECT_EQ(url.soci_backend(), "postgresql");
  EXPECT_EQ(url.connect_string(), "host=h dbname=d");
}

TEST(ConnectionUrlTest, RedactsPasswordInSociForm) {
  const ConnectionUrl url =
      ConnectionUrl::parse("postgresql://host=h password='s3cr et' dbname=d user=u");
  EXPECT_EQ(url.redacted(), "postgresql://host=h password=*** dbname=d user=u");
  EXPECT_NE(url.connect_string().find("s3cr et"), std::string::npos);
}

TEST(ConnectionUrlTest, ParsesAbsoluteSqliteUri) {
  const ConnectionUrl url = ConnectionUrl::parse("sqlite:///abs/path/app.db");
  EXPECT_EQ(url.sqlite_path(), "/abs/path/app.db");
  EXPECT_EQ(url.connect_string(), "db=/abs/path/app.db");
}

TEST(ConnectionUrlTest, ParsesRelativeSqliteUri) {
  const ConnectionUrl url = ConnectionUrl::parse("sqlite://relative/app.db?timeout=7");
  EXPECT_EQ(url.sqlite_path(), "relative/app.db");
  EXPECT_EQ(url.connect_string(), "db=relative/app.db timeout=7");
}

TEST(ConnectionUrlTest, ParsesInMemorySqlite) {
  EXPECT_TRUE(ConnectionUrl::parse("sqlite://:memory:").sqlite_in_memory());
  EXPECT_TRUE(ConnectionUrl::parse("sqlite:///:memory:").sqlite_in_memory());
  EXPECT_TRUE(ConnectionUrl::parse("sqlite3://db=:memory:").sqlite_in_memory());
  EXPECT_FALSE(ConnectionUrl::parse("sqlite://memory.db").sqlite_in_memory());
}

TEST(ConnectionUrlTest, QuotesSqlitePathsWithSpaces) {
  const ConnectionUrl url = ConnectionUrl::parse("sqlite:///tmp/my%20data/app.db");
  EXPECT_EQ(url.sqlite_path(), "/tmp/my data/app.db");
  EXPECT_EQ(url.connect_string(), "db=\"/tmp/my data/app.db\"");
}

TEST(ConnectionUrlTest, ParsesPostgresUri) {
  const ConnectionUrl url =
      ConnectionUrl::parse("postgresql://user:s3cret@db.example:5432/app?sslmode=disable");
  EXPECT_EQ(url.backend(), Backend::kPostgreSQL);
  EXPECT_EQ(url.connect_string(),
            "host='db.example' port='5432' dbname='app' user='user' password='s3cret' "
            "sslmode='disable'");
  EXPECT_EQ(url.redacted(), "postgresql://user:***@db.example:5432/app?sslmode=disable");
}

TEST(ConnectionUrlTest, AcceptsPostgresSchemeAlias) {
  const ConnectionUrl url = ConnectionUrl::parse("postgres://u@h/d");
  EXPECT_EQ(url.backend(), Backend::kPostgreSQL);
  EXPECT_EQ(url.connect_string(), "host='h' dbname='d' user='u'");
}

TEST(ConnectionUrlTest, DecodesPercentEscapesAndQuotesForLibpq) {
  const ConnectionUrl url = ConnectionUrl::parse("postgresql://a%40b:it%27s%2Fsecret@h/my%20db");
  EXPECT_EQ(url.connect_string(), "host='h' dbname='my db' user='a@b' password='it\\'s/secret'");
  EXPECT_EQ(url.redacted(), "postgresql://a%40b:***@h/my%20db");
}

TEST(ConnectionUrlTest, ParsesIpv6Host) {
  const ConnectionUrl url = ConnectionUrl::parse("postgresql://u@[::1]:5433/d");
  EXPECT_EQ(url.connect_string(), "host='::1' port='5433' dbname='d' user='u'");
}

TEST(ConnectionUrlTest, RedactsPasswordGivenAsQueryParameter) {
  const ConnectionUrl url =
      ConnectionUrl::parse("postgresql://u@h/d?password=s3cret&sslmode=require");
  EXPECT_EQ(url.redacted(), "postgresql://u@h/d?password=***&sslmode=require");
  EXPECT_EQ(url.scrub("failed with s3cret"), "failed with ***");
}

TEST(ConnectionUrlTest, RedactsPasswordAfterAnyWhitespaceInSociForm) {
  const ConnectionUrl url =
      ConnectionUrl::parse("postgresql://host=db\tpassword=hunter2\ndbname=d");
  EXPECT_EQ(url.redacted(), "postgresql://host=db\tpassword=***\ndbname=d");
  EXPECT_NE(url.connect_string().find("hunter2"), std::string::npos);
  EXPECT_EQ(url.scrub("auth failed for hunter2"), "auth failed for ***");
}

TEST(ConnectionUrlTest, RedactsPasswordKeysInAnyCase) {
  EXPECT_EQ(ConnectionUrl::parse("sqlite3://db=a.db PassWord=hunter2").redacted(),
            "sqlite3://db=a.db PassWord=***");
  EXPECT_EQ(redact_url("postgresql://u@h/d?PASSWORD=hunter2"), "postgresql://u@h/d?PASSWORD=***");
}

TEST(ConnectionUrlTest, RedactsAPercentEncodedPasswordKeyInTheQuery) {
  const ConnectionUrl url = ConnectionUrl::parse("postgresql://u@h/d?pass%77ord=hunter2");
  EXPECT_EQ(url.redacted(), "postgresql://u@h/d?pass%77ord=***");
  EXPECT_NE(url.connect_string().find("password='hunter2'"), std::string::npos);
}

TEST(ConnectionUrlTest, KnowsWhichParametersTheUrlSets) {
  const ConnectionUrl soci = ConnectionUrl::parse("postgresql://host=h\tconnect_timeout=3");
  EXPECT_TRUE(soci.has_parameter("connect_timeout"));
  EXPECT_TRUE(soci.has_parameter("host"));
  EXPECT_FALSE(soci.has_parameter("timeout"));
  const ConnectionUrl uri = ConnectionUrl::parse("postgresql://u@h/d?application_name=x");
  EXPECT_TRUE(uri.has_parameter("application_name"));
  EXPECT_TRUE(uri.has_parameter("user"));
  EXPECT_FALSE(uri.has_parameter("fallback_application_name"));
  EXPECT_TRUE(ConnectionUrl::parse("sqlite:///tmp/a.db?timeout=1").has_parameter("timeout"));
}

struct BadUrlCase {
  const char* url;
  const char* reason;  // a part of the message
};

class BadUrlTest : public ::testing::TestWithParam<BadUrlCase> {};

TEST_P(BadUrlTest, ThrowsBadUrlNamingTheProblemWithoutThePassword) {
  const BadUrlCase& c = GetParam();
  try {
    ConnectionUrl::parse(c.url);
    FAIL() << "parsed " << c.url;
  } catch (const BadUrl& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(c.reason), std::string::npos) << message;
    EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, BadUrlTest,
    ::testing::Values(
        BadUrlCase{"", "empty"}, BadUrlCase{"app.db", "no '://'"},
        BadUrlCase{"mysql://u:s3cret@h/d", "unknown scheme 'mysql'"},
        BadUrlCase{"postgresql://u:s3cret@h:port/d", "port 'port' is not a number"},
        BadUrlCase{"postgresql://u:s3cret@h:99999/d", "port '99999'"},
        BadUrlCase{"postgresql://u:s3cret@h:/d", "port ''"},
        BadUrlCase{"postgresql://u:s3cret@h/d?nosuch=1",
                   "'nosuch' is not a PostgreSQL connection parameter"},
        BadUrlCase{"postgresql://u:s3cret@h/d?sslmode", "not of the form key=value"},
        BadUrlCase{"postgresql://u:s3c/ret@h/d", "percent-encode"},
        BadUrlCase{"postgresql://u:s3cret@h/d#x", "'#'"},
        BadUrlCase{"postgresql://u:s3cret@h/d b", "whitespace"},
        BadUrlCase{"postgresql://u:s3cret@h/a/b", "contains '/'"},
        BadUrlCase{"postgresql://u:s3cret@[::1/d", "no closing ']'"},
        BadUrlCase{"postgresql://u:s3cret%zz@h/d", "malformed %-escape"},
        BadUrlCase{"postgresql://host=h password='s3cret", "no closing quote"},
        BadUrlCase{"postgresql://host=h password=s3cret bogus=1", "'bogus' is not a PostgreSQL"},
        BadUrlCase{"postgresql://host=h password=s3cret dbname", "'dbname' has no value"},
        BadUrlCase{"postgresql://host=h Password=s3cret", "'Password' is not a PostgreSQL"},
        BadUrlCase{"postgresql://host=h\tpassword=s3cret bogus=1", "'bogus' is not a PostgreSQL"},
        BadUrlCase{"postgresql://host=h bogus password=s3cret", "'bogus' has no value"},
        BadUrlCase{"postgresql://host=h password=\"s3cret", "no closing quote"},
        BadUrlCase{"postgresql://u@h/d?Password=s3cret", "'Password' is not a PostgreSQL"},
        BadUrlCase{"postgresql://u@h/d?pass%77ord=s3cret&bogus=1", "'bogus' is not a PostgreSQL"},
        BadUrlCase{"sqlite://", "no database file"}, BadUrlCase{"sqlite:///", "no database file"},
        BadUrlCase{"sqlite3://timeout=5", "no database file"},
        BadUrlCase{"sqlite:///tmp/x.db?bogus=1", "unknown SQLite parameter 'bogus'"},
        BadUrlCase{"sqlite:///tmp/x.db?timeout=soon", "timeout 'soon'"}));

TEST(RedactUrlTest, HidesPasswordsEvenInUrlsThatDoNotParse) {
  EXPECT_EQ(redact_url("postgresql://u:s3cret@h:port/d"), "postgresql://u:***@h:port/d");
  EXPECT_EQ(redact_url("postgresql://u:s3c/r?et@h/d"), "postgresql://u:***@h/d");
  EXPECT_EQ(redact_url("postgresql://host=h password=\"s3 cret\" x"),
            "postgresql://host=h password=*** x");
  EXPECT_EQ(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
  EXPECT_EQ(redact_url("postgresql://h:5432/d?application_name=x"),
            "postgresql://h:5432/d?application_name=x");
  EXPECT_EQ(redact_url("postgresql://host=h\tPASSWORD='s3 cret' x"),
            "postgresql://host=h\tPASSWORD=*** x");
  EXPECT_EQ(redact_url("postgresql://host=h oops password=s3cret"),
            "postgresql://host=h oops password=***");
  EXPECT_EQ(redact_url("postgresql://u:s3c?ret@h/d?password=s3cret"),
            "postgresql://u:***@h/d?password=***");
}

}  // namespace
}  // namespace poolscope
