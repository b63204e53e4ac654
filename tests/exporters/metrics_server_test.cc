#include "poolscope/exporters/metrics_server.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "http_client.h"
#include "poolscope/pool/errors.h"
#include "raw_http.h"
#include "test_db.h"
#include "test_util.h"

namespace poolscope::exporters {
namespace {

using namespace std::chrono_literals;
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
    EXPECT_NE(std::string(e.what()).find("Address already in use"), std::string::npos)
        << "civetweb's reason: " << e.what();
  }
  EXPECT_EQ(http_request(first.port(), "GET", "/metrics").status, 200)
      << "the first one still serves";
}

TEST_F(MetricsServerTest, ServersOnOnePortOfTwoAddressesEachAnswerAsThemselves) {
  // Requests reach their server through its own handlers, not a table of
  // ports: two servers may share a port on different addresses.
  MetricsServer first(metrics_, {.listen = "127.0.0.1:0"});
  const int port = first.port();
  MetricsServer second(
      metrics_,
      {.listen = "127.0.0.2:" + std::to_string(port), .admin = true, .admin_token = kToken});
  EXPECT_EQ(second.port(), port);
  const std::vector<std::string> auth = {std::string("Authorization: Bearer ") + kToken};
  EXPECT_EQ(http_request(port, "GET", "/admin/caches", auth).status, 404) << "the first: no admin";
  EXPECT_EQ(poolscope::testing::raw_request("127.0.0.2", port, "GET", "/admin/caches", auth).status,
            200)
      << "the second: admin";
  EXPECT_EQ(http_request(port, "GET", "/stats.json").status, 200);
}

// The message of the std::invalid_argument that config throws ("" if none).
std::string config_error(const std::shared_ptr<MetricsCollector>& metrics,
                         MetricsServerConfig config) {
  try {
    MetricsServer server(metrics, std::move(config));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST_F(MetricsServerTest, BadConfigurationNamesTheField) {
  EXPECT_EQ(config_error(metrics_, {.listen = "localhost"}),
            "MetricsServerConfig.listen must be one host:port, e.g. 127.0.0.1:9464 (got "
            "'localhost')");
  EXPECT_NE(config_error(metrics_, {.listen = "127.0.0.1:0,127.0.0.1:0"})
                .find("MetricsServerConfig.listen must be one host:port"),
            std::string::npos);
  EXPECT_NE(config_error(metrics_, {.listen = "127.0.0.1:99999"}), "");
  EXPECT_NE(config_error(metrics_, {.listen = "127.0.0.1:"}), "");
  EXPECT_EQ(
      config_error(metrics_, {.listen = "127.0.0.1:0", .admin = true, .admin_token = "short"}),
      "MetricsServerConfig.admin_token must be at least 16 characters when admin is on (got 5)");
  EXPECT_EQ(config_error(metrics_, {.listen = "127.0.0.1:0", .threads = 0}),
            "MetricsServerConfig.threads must be at least 1 (got 0)");
  EXPECT_EQ(config_error(metrics_, {.listen = "127.0.0.1:0", .threads = 100000}),
            "MetricsServerConfig.threads must be at most 1024 (got 100000)");
  EXPECT_EQ(config_error(metrics_, {.listen = "127.0.0.1:0", .threads = 1024}), "");
  EXPECT_EQ(config_error(metrics_, {.listen = "127.0.0.1:0", .request_timeout = 5ms}),
            "MetricsServerConfig.request_timeout must be 10 ms to 60 s (got 5 ms)");
  EXPECT_EQ(config_error(metrics_, {.listen = "127.0.0.1:0", .request_timeout = 61s}),
            "MetricsServerConfig.request_timeout must be 10 ms to 60 s (got 61000 ms)");
  EXPECT_EQ(config_error(nullptr, {.listen = "127.0.0.1:0"}),
            "MetricsServer: the collector is null");
}

TEST_F(MetricsServerTest, AnAddressThatCannotBeListenedOnSaysWhy) {
  try {
    MetricsServer server(metrics_, {.listen = "192.0.2.1:0"});  // TEST-NET: not ours
    FAIL() << "listening on an address of no interface";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot serve metrics on 192.0.2.1:0: the address cannot be listened on ("),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("cannot bind"), std::string::npos) << "civetweb's reason: " << what;
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

TEST_F(MetricsServerTest, LongPatternsAreAcceptedUpToTheRequestSizeLimit) {
  MetricsServer server(metrics_, admin_config());
  const std::vector<std::string> auth = {std::string("Authorization: Bearer ") + kToken};
  for (const std::size_t length : {1023u, 1024u, 4096u, 12000u, 60000u}) {
    configs_.put("pair:ETH", 1);
    // "pair:" and then stars: a glob of `length` bytes that matches pair:ETH.
    const std::string pattern = "pair:" + std::string(length - 5, '*');
    const auto response = http_request(server.port(), "POST",
                                       "/admin/caches/configs/invalidate?pattern=" + pattern, auth);
    ASSERT_EQ(response.status, 200) << length << " bytes: " << response.body;
    const nlohmann::json body = nlohmann::json::parse(response.body);
    EXPECT_EQ(body["pattern"].get<std::string>().size(), length);
    EXPECT_GE(body["invalidated"], 1) << length;
  }
  // Past civetweb's limit on a request's line and headers (64 KiB here),
  // civetweb refuses the request itself, before any handler sees it.
  const auto huge =
      http_request(server.port(), "POST",
                   "/admin/caches/configs/invalidate?pattern=" + std::string(70000, 'x'), auth);
  EXPECT_EQ(huge.status, 400) << huge.body;
  EXPECT_EQ(huge.body.find("pattern"), std::string::npos) << "not a complaint about the pattern";
}

TEST_F(MetricsServerTest, TheServedExpositionPassesPromtoolAndEveryValueIsANumber) {
  MetricsServer server(metrics_, {.listen = "127.0.0.1:0"});
  { Lease lease = pool_->acquire(); }
  configs_.get(std::string("pair:ETH"));
  const auto response = http_request(server.port(), "GET", "/metrics");
  ASSERT_EQ(response.status, 200);
  // No series but poolscope's: prometheus-cpp's exposer_* (whose empty
  // summaries printed Nan) are not served.
  std::istringstream in(response.body);
  std::size_t samples = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    ++samples;
    EXPECT_TRUE(line.starts_with("poolscope_")) << line;
    const std::string value = line.substr(line.rfind(' ') + 1);
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    EXPECT_TRUE(*end == '\0' && std::isfinite(v) && v >= 0) << "not a finite value: " << line;
  }
  EXPECT_GT(samples, 50u);
  const auto file =
      std::filesystem::temp_directory_path() / ("poolscope-served-" + std::to_string(::getpid()));
  std::ofstream(file) << response.body;
  const auto [status, output] =
      poolscope::testing::run_command("promtool check metrics < " + file.string());
  std::filesystem::remove(file);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << "promtool's lint found problems";
}

TEST_F(MetricsServerTest, OtherMethodsAndPathsAreRefusedPlainly) {
  MetricsServer server(metrics_, {.listen = "127.0.0.1:0"});
  EXPECT_EQ(http_request(server.port(), "POST", "/metrics").status, 405);
  EXPECT_EQ(http_request(server.port(), "DELETE", "/stats.json").status, 405);
  EXPECT_EQ(http_request(server.port(), "GET", "/metrics/more").status, 404);
  EXPECT_EQ(http_request(server.port(), "HEAD", "/metrics").status, 200);
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
