// How a call site is named (poolscope/base/site.h): enough of the file's path
// to tell two files of one name apart, a root to strip, and the same name in
// the log, the site table and metric labels.

#include <gtest/gtest.h>

#include <cstdlib>

#include "capturing_sink.h"
#include "handlers.h"
#include "poolscope/base/site.h"
#include "poolscope/tracing/tracer.h"
#include "test_db.h"

namespace poolscope::tracing {
namespace {

using poolscope::testing::CapturingSink;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

// Each test starts and ends with no root set (ctest runs each in its own
// process; this keeps them apart when run together too).
class SiteNameTest : public ::testing::Test {
 protected:
  void SetUp() override { reset(); }
  void TearDown() override { reset(); }
  static void reset() {
    ::unsetenv("POOLSCOPE_SITE_ROOT");
    poolscope::detail::SiteRoot& s = poolscope::detail::site_root_state();
    std::lock_guard lock(s.mu);
    s.set = false;
    s.root.clear();
  }
};

TEST_F(SiteNameTest, TwoFilesOfOneNameInDifferentFoldersGetDifferentNames) {
  EXPECT_EQ(format_site(handlers::api::get()), "api/handler.cc:get():12");
  EXPECT_EQ(format_site(handlers::admin::get()), "admin/handler.cc:get():12");
  // And two rows in the site table, where basenames merged them into one.
  TestDatabase db(TestBackend::kSqlite);
  Pool pool(db.config(1));
  auto [logger, sink] = CapturingSink::logger("site-names");
  Tracer tracer(pool, {.logger = logger});
  handlers::api::get(pool);
  handlers::admin::get(pool);
  handlers::admin::get(pool);
  const std::vector<SiteStats> sites = tracer.sites();
  ASSERT_EQ(sites.size(), 3u);
  EXPECT_EQ(sites[0].name, "admin/handler.cc:get():12");
  EXPECT_EQ(sites[0].acquires, 2u);
  EXPECT_EQ(sites[0].file, "/srv/app/src/admin/handler.cc");
  EXPECT_EQ(sites[1].name, "api/handler.cc:get():12");
  EXPECT_EQ(sites[1].acquires, 1u);
  EXPECT_EQ(sink->matching("[Called from: api/handler.cc:get():12]").size(), 1u)
      << ::testing::PrintToString(sink->lines());
}

TEST_F(SiteNameTest, UnderTheRootAFileIsNamedByItsWholePathBelowIt) {
  set_site_root("/srv/app");
  EXPECT_EQ(site_root(), "/srv/app");
  EXPECT_EQ(format_site(handlers::api::get()), "src/api/handler.cc:get():12");
  set_site_root("/srv/app/");  // a trailing slash is the same root
  EXPECT_EQ(format_site(handlers::admin::get()), "src/admin/handler.cc:get():12");
  // A file outside the root, or a root that is only a prefix of a folder's
  // name, keeps the last two components.
  set_site_root("/srv/ap");
  EXPECT_EQ(format_site(handlers::api::get()), "api/handler.cc:get():12");
  set_site_root("/elsewhere");
  EXPECT_EQ(site_file_name("/srv/app/src/api/handler.cc"), "api/handler.cc");
  set_site_root("");
  EXPECT_EQ(site_file_name("/srv/app/src/api/handler.cc"), "api/handler.cc");
}

TEST_F(SiteNameTest, TheRootCanComeFromTheEnvironment) {
  ASSERT_EQ(::setenv("POOLSCOPE_SITE_ROOT", "/srv/app", 1), 0);
  EXPECT_EQ(format_site(handlers::api::get()), "src/api/handler.cc:get():12");
  set_site_root("/srv/app/src");  // set in code: the environment no longer counts
  EXPECT_EQ(format_site(handlers::api::get()), "api/handler.cc:get():12");
}

TEST_F(SiteNameTest, LastPathComponentsOfAnyFileName) {
  EXPECT_EQ(site_file_name("handler.cc"), "handler.cc");
  EXPECT_EQ(site_file_name("api/handler.cc"), "api/handler.cc");
  EXPECT_EQ(site_file_name("./handler.cc"), "handler.cc");
  EXPECT_EQ(site_file_name("../src/handler.cc"), "src/handler.cc");
  EXPECT_EQ(site_file_name("../handler.cc"), "handler.cc");
  EXPECT_EQ(site_file_name("/handler.cc"), "handler.cc");
  EXPECT_EQ(site_file_name("C:\\src\\api\\handler.cc"), "api\\handler.cc");
  EXPECT_EQ(site_file_name(""), "");
  EXPECT_EQ(short_file_name("/src/app/settings.cc"), "settings.cc");
}

TEST_F(SiteNameTest, ASiteNameIsOneLineWhateverItsFileName) {
  EXPECT_EQ(log_text("a\nb\tc\x01"), "a\\nb\\tc\\x01");
  // format_site escapes both the file and the function.
  EXPECT_EQ(site_file_name("gen/evil\nname.cc"), "gen/evil\nname.cc") << "unescaped";
}

}  // namespace
}  // namespace poolscope::tracing
