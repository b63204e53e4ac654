// A scrape endpoint that slow clients cannot stop: while 2, 10, 50 or 100
// connections are held open saying nothing (or trickling a request that never
// ends), and reopened as soon as the server drops them, /metrics must answer
// every scrape within 1 s (100 is past the threads: scrapes then queue for
// about one request timeout). The server runs its defaults (64 threads, a 500 ms
// request timeout); with civetweb's old ones (2 threads, 30 s) two silent
// connections stopped it for 30 s.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ostream>
#include <thread>
#include <vector>

#include "poolscope/exporters/metrics_server.h"
#include "raw_http.h"
#include "test_db.h"

// ThreadSanitizer: civetweb 1.15 formats the Date header of its own error
// replies (408 for a client that timed out) with gmtime(), whose static
// result two workers timing out together share; ThreadSanitizer reports
// that race, inside civetweb, when many slow clients are cut off at once.
// Nothing of poolscope calls gmtime().
extern "C" const char* __tsan_default_suppressions() { return "race:gmtime\n"; }

namespace poolscope::exporters {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::raw_request;
using poolscope::testing::tcp_connect;

struct SlowClients {
  int connections;
  bool trickle;  // send a byte of an endless header every 100 ms; else nothing
};

void PrintTo(const SlowClients& c, std::ostream* os) {
  *os << c.connections << (c.trickle ? " trickling" : " silent");
}

std::string name_of(const ::testing::TestParamInfo<SlowClients>& info) {
  return (info.param.trickle ? "Trickling" : "Silent") + std::to_string(info.param.connections);
}

// Holds `connections` connections to port open, reopening each as soon as
// the server closes it, until destroyed.
class Attacker {
 public:
  Attacker(int port, SlowClients how) : port_(port), how_(how) {
    for (int i = 0; i < how.connections; ++i) fds_.push_back(tcp_connect("127.0.0.1", port));
    thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
  }
  ~Attacker() {
    thread_.request_stop();
    thread_.join();
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  bool all_connected() const {
    return std::all_of(fds_.begin(), fds_.end(), [](int fd) { return fd >= 0; });
  }
  std::uint64_t reopened() const { return reopened_.load(); }

 private:
  void run(std::stop_token stop) {
    auto next_byte = std::chrono::steady_clock::now();
    while (!stop.stop_requested()) {
      const bool send_byte = how_.trickle && std::chrono::steady_clock::now() >= next_byte;
      if (send_byte) next_byte += 100ms;
      for (int& fd : fds_) {
        if (fd >= 0) {
          pollfd p{fd, POLLIN, 0};
          char buffer[512];
          // Readable means closed (or answered, which closes too).
          if (::poll(&p, 1, 0) > 0 && ::recv(fd, buffer, sizeof buffer, 0) <= 0) {
            ::close(fd);
            fd = -1;
          }
        }
        if (fd < 0) {
          fd = tcp_connect("127.0.0.1", port_);
          reopened_.fetch_add(1);
          if (how_.trickle && fd >= 0) {
            static constexpr char kStart[] = "GET /metrics HTTP/1.1\r\nX-Slow: ";
            ::send(fd, kStart, sizeof kStart - 1, MSG_NOSIGNAL);
          }
        } else if (send_byte) {
          ::send(fd, "a", 1, MSG_NOSIGNAL);
        }
      }
      std::this_thread::sleep_for(5ms);
    }
  }

  const int port_;
  const SlowClients how_;
  std::vector<int> fds_;
  std::atomic<std::uint64_t> reopened_{0};
  std::jthread thread_;
};

class MetricsServerSlowClientTest : public ::testing::TestWithParam<SlowClients> {
 protected:
  poolscope::testing::TestDatabase db_{poolscope::testing::TestBackend::kSqlite};
};

TEST_P(MetricsServerSlowClientTest, MetricsAnswersWithinOneSecondThroughout) {
  PoolConfig c = db_.config(2);
  c.name = "scraped";
  Pool pool(c);
  auto metrics = std::make_shared<MetricsCollector>();
  metrics->add_pool(pool);
  MetricsServer server(metrics, {.listen = "127.0.0.1:0"});  // default threads and timeout
  Attacker attacker(server.port(), GetParam());
  ASSERT_TRUE(attacker.all_connected());
  std::this_thread::sleep_for(100ms);  // accepted: they hold threads, or wait for one

  std::vector<double> seconds;
  std::vector<std::string> failures;
  const auto end = std::chrono::steady_clock::now() + 3s;  // six request timeouts
  while (std::chrono::steady_clock::now() < end) {
    const auto r = raw_request("127.0.0.1", server.port(), "GET", "/metrics", {}, 5s);
    seconds.push_back(std::chrono::duration<double>(r.elapsed).count());
    if (r.status != 200 || r.body.find("poolscope_connections_max") == std::string::npos)
      failures.push_back(std::to_string(r.status) + " " + r.error);
    std::this_thread::sleep_for(50ms);
  }
  std::sort(seconds.begin(), seconds.end());
  std::printf("%d %s connections: %zu scrapes, median %.3f s, max %.3f s, %llu reopened\n",
              GetParam().connections, GetParam().trickle ? "trickling" : "silent", seconds.size(),
              seconds[seconds.size() / 2], seconds.back(),
              static_cast<unsigned long long>(attacker.reopened()));
  EXPECT_EQ(failures, std::vector<std::string>{});
  EXPECT_LT(seconds.back(), 1.0) << "the slowest scrape";
  EXPECT_GE(seconds.size(), 3u);
  EXPECT_GT(attacker.reopened(), 0u) << "the server cuts slow clients off";
}

INSTANTIATE_TEST_SUITE_P(SlowClients, MetricsServerSlowClientTest,
                         ::testing::Values(SlowClients{2, false}, SlowClients{10, false},
                                           SlowClients{50, false}, SlowClients{50, true},
                                           SlowClients{100, false}),
                         name_of);

}  // namespace
}  // namespace poolscope::exporters
