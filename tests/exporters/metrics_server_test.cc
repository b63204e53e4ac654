#include "poolscope/exporters/metrics_server.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "http_client.h"
#include "poolscope/pool/errors.h"
#include "test_db.h"

namespace poolscope::exporters {
namespace {

using poolscope::testing::http_request;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

constexpr const char* kToken = "s3cret-admin-token-0123";

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PoolConfig c = db_.config(2);
    c.name = "served";
    pool_ = std::make_unique<Pool>(c);
    metrics_ = std::make_shared<MetricsCollector>();
    metrics_->add_pool(*pool_);
    metrics_->add_cache(configs_);
    for (const char* key : {"pair:ETH", "pair:BTC", "risk:ETH"}) configs_.put(key, 1);
  }

  MetricsServerConfig admin_config() {
    return {.listen = "127.0.0.1:0", .admin = true, .admin_token = kToken};
  }

  TestDatabase db_{TestBackend::kSqlite};
  std::unique_ptr<Pool> pool_;
  cache::TtlCache<std::string, int> configs_{{.name = "configs"}};
  std::shared_ptr<MetricsCollector> metrics_;
};

TEST_F(MetricsServerTest, ServesMetricsAndJsonOverHttp) {
  MetricsServer server(metrics_, {.listen = "127.0.0.1:0"});
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(server.url(), "http://127.0.0.1:" + std::to_string(server.port()));
  { Lease lease = pool_->acquire(); }
  const auto metrics = http_request(server.port(), "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.error;
  EXPECT_NE(metrics.body.find("poolscope_connections_acquire_seconds_count{pool=\"served\"} 1"),
            std::string::npos);
  const auto stats = http_request(server.port(), "GET", "/stats.json");
  ASSERT_EQ(stats.status, 200);
  EXPECT_EQ(nlohmann::json::parse(stats.body)["pools"][0]["acquires"], 1);
  EXPECT_EQ(http_request(server.port(), "GET", "/nothing").status, 404);
}

TEST_F(MetricsServerTest, APortInUseIsAClearError) {
  MetricsServer first(metrics_, {.listen = "127.0.0.1:0"});
  const std::string listen = "127.0.0.1:" + std::to_string(first.port());
  try {
    MetricsServer second(metrics_, {.listen = listen});
    FAIL() << "two servers on " << listen;
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("cannot serve metrics on " + listen + ": the address is in use"),
        std::string::npos)
        << e.what();
  }
  EXPECT_EQ(http_request(first.port(), "GET", "/metrics").status, 200)
      << "the first one still serves";
}

TEST_F(MetricsServerTest, ASecondServerOnTheSamePortIsRefusedEvenOnAnotherAddress) {
  std::optional<MetricsServer> first;
  first.emplace(metrics_, MetricsServerConfig{.listen = "127.0.0.1:0"});
  const int port = first->port();
  const std::string listen = "127.0.0.2:" + std::to_string(port);
  try {
    MetricsServer second(metrics_, {.listen = listen, .admin = true, .admin_token = kToken});
    FAIL() << "a second server on port " << port;
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("cannot serve metrics on " + listen + ": the address is in use"),
        std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("another MetricsServer in this process serves port " +
                                         std::to_string(port)),
              std::string::npos)
        << e.what();
  }
  // The first answers as itself: no admin endpoints, whatever the other asked for.
  EXPECT_EQ(
      http_request(port, "GET", "/admin/caches", {std::string("Authorization: Bearer ") + kToken})
          .status,
      404);
  EXPECT_EQ(http_request(port, "GET", "/stats.json").status, 200);
  // Once the first is gone, its port may be served again.
  first.reset();
  first.emplace(metrics_, MetricsServerConfig{.listen = listen});
  EXPECT_EQ(first->port(), port);
  EXPECT_EQ(http_request(port, "GET", "/metrics").status, 0) << "127.0.0.1 is not listened on now";
}

TEST_F(MetricsServerTest, BadConfigurationNamesTheField) {
  EXPECT_THROW(MetricsServer(metrics_, {.listen = "localhost"}), std::invalid_argument);
  try {
    MetricsServer server(metrics_, {.listen = "127.0.0.1:0,127.0.0.1:0"});
    FAIL() << "a list of addresses";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("MetricsServerConfig.listen must be one host:port"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(MetricsServer(metrics_, {.listen = "127.0.0.1:99999"}), std::invalid_argument);
  try {
    MetricsServer server(metrics_,
                         {.listen = "127.0.0.1:0", .admin = true, .admin_token = "short"});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("MetricsServerConfig.admin_token"), std::string::npos);
  }
}

TEST_F(MetricsServerTest, AdminEndpointsAreOffByDefault) {
  MetricsServer server(metrics_, {.listen = "127.0.0.1:0"});
  EXPECT_EQ(http_request(server.port(), "POST", "/admin/caches/configs/clear",
                         {std::string("Authorization: Bearer ") + kToken})
                .status,
            404);
  EXPECT_EQ(configs_.stats().entries, 3u);
}

TEST_F(MetricsServerTest, AdminRefusesARequestWithoutTheTokenOrWithAWrongOne) {
  MetricsServer server(metrics_, admin_config());
  EXPECT_EQ(http_request(server.port(), "POST", "/admin/caches/configs/clear").status, 401);
  EXPECT_EQ(http_request(server.port(), "POST", "/admin/caches/configs/clear",
                         {"Authorization: Basic abc"})
                .status,
            401);
  EXPECT_EQ(http_request(server.port(), "POST", "/admin/caches/configs/clear",
                         {"Authorization: Bearer s3cret-admin-token-0124"})
                .status,
            403);
  EXPECT_EQ(http_request(server.port(), "GET", "/admin/caches", {"Authorization: Bearer "}).status,
            403);
  EXPECT_EQ(configs_.stats().entries, 3u) << "nothing was cleared";
}

TEST_F(MetricsServerTest, AdminWithTheTokenInvalidatesAndClears) {
  MetricsServer server(metrics_, admin_config());
  const std::vector<std::string> auth = {std::string("Authorization: Bearer ") + kToken};
  const auto list = http_request(server.port(), "GET", "/admin/caches", auth);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(nlohmann::json::parse(list.body)["caches"], nlohmann::json::array({"configs"}));
  const auto invalidated = http_request(
      server.port(), "POST",
      "/admin/caches/configs/invalidate?pattern=" + poolscope::testing::url_encode("pair:*"), auth);
  ASSERT_EQ(invalidated.status, 200) << invalidated.body;
  EXPECT_EQ(nlohmann::json::parse(invalidated.body)["invalidated"], 2);
  EXPECT_EQ(configs_.stats().entries, 1u);
  EXPECT_EQ(http_request(server.port(), "GET", "/admin/caches/configs/clear", auth).status, 405);
  EXPECT_EQ(http_request(server.port(), "POST", "/admin/caches/configs/clear", auth).status, 200);
  EXPECT_EQ(configs_.stats().entries, 0u);
  EXPECT_EQ(http_request(server.port(), "POST", "/admin/caches/unknown/clear", auth).status, 404);
  EXPECT_EQ(http_request(server.port(), "POST", "/admin/caches/configs/invalidate", auth).status,
            400);
}

TEST_F(MetricsServerTest, ACacheNameThatIsNotUtf8IsAnsweredNotThrown) {
  MetricsServer server(metrics_, admin_config());
  const std::vector<std::string> auth = {std::string("Authorization: Bearer ") + kToken};
  const auto response = http_request(server.port(), "POST", "/admin/caches/%FF%FE/clear", auth);
  EXPECT_EQ(response.status, 404) << response.error;
  EXPECT_TRUE(nlohmann::json::accept(response.body)) << response.body;
  EXPECT_EQ(http_request(server.port(), "GET", "/metrics").status, 200)
      << "and the server still serves";
}

TEST_F(MetricsServerTest, AFailingComponentIsA500OrLeftOutNeverACrash) {
  metrics_->add_cache(
      CacheHandle{.name = "fragile",
                  .stats = []() -> cache::CacheStats { throw std::runtime_error("stats down"); },
                  .clear = [] { throw std::runtime_error("clear failed"); }});
  MetricsServer server(metrics_, admin_config());
  const std::vector<std::string> auth = {std::string("Authorization: Bearer ") + kToken};
  EXPECT_EQ(http_request(server.port(), "POST", "/admin/caches/fragile/clear", auth).status, 500);
  const auto metrics = http_request(server.port(), "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("poolscope_connections_max{pool=\"served\"}"), std::string::npos);
  EXPECT_EQ(metrics.body.find("cache=\"fragile\""), std::string::npos);
  const auto stats = http_request(server.port(), "GET", "/stats.json");
  ASSERT_EQ(stats.status, 200);
  EXPECT_EQ(nlohmann::json::parse(stats.body)["errors"],
            nlohmann::json::array({"cache fragile: stats down"}));
}

}  // namespace
}  // namespace poolscope::exporters
