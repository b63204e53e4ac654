#include "poolscope/base/site.h"

#include <gtest/gtest.h>

namespace poolscope {
namespace {

TEST(SiteTest, ShortFunctionNameKeepsTheBareName) {
  EXPECT_EQ(short_function_name("void app::Settings::Load(int) const"), "Load()");
  EXPECT_EQ(short_function_name("app::Account::Account(int)"), "Account()");
  EXPECT_EQ(short_function_name("int main()"), "main()");
  EXPECT_EQ(short_function_name("std::vector<int> app::rows(const std::map<int, int>&)"), "rows()");
  EXPECT_EQ(short_function_name("void f<std::pair<int, int> >(T) [with T = int]"),
            "f<std::pair<int, int> >()");
  EXPECT_EQ(short_function_name("bool app::Key::operator()(int) const"), "operator()()");
  EXPECT_EQ(short_function_name("void {anonymous}::render(Widget&)"), "render()");
  EXPECT_EQ(short_function_name(""), "?()");
}

TEST(SiteTest, FormatSiteReadsLikeTheIncidentLogs) {
  const std::source_location here = std::source_location::current();
  EXPECT_EQ(format_site(here), "pool/site_test.cc:TestBody():" + std::to_string(here.line()));
  EXPECT_EQ(short_file_name("/src/app/settings.cc"), "settings.cc");
}

}  // namespace
}  // namespace poolscope
