// What the Redis tier's suites share: the fixture's server (and the
// PostgreSQL one it requires), servers of a test's own that it may kill or
// stop, a helper process driven line by line over pipes, and a plain
// hiredis connection for looking at Redis from outside the tier.

#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "poolscope/cache/redis/redis_tier.h"

struct redisContext;
struct redisReply;

namespace poolscope::testing {

// A running redis-server, as its env file describes it.
struct RedisServer {
  std::string host;
  int port = 0;
  std::string password;       // the default user's
  std::string user;           // an ACL user...
  std::string user_password;  // ...and its password
  std::string socket;
  std::string dir;

  // redis://:password@host:port/db
  std::string url(int db = 0) const;
  // redis://user:user_password@host:port/db
  std::string user_url(int db = 0) const;
  // unix://:password@/dir/redis.sock?db=N
  std::string unix_url(int db = 0) const;
};

// The CTest fixture's server (shared by every test: use unique prefixes).
// Also points $POOLSCOPE_PG_ENV at the PostgreSQL fixture it requires.
const RedisServer& fixture_redis();

// A prefix no other test (or run) uses.
std::string unique_prefix();

// A redis-server of the test's own (tests/fixtures/redis.sh in a temporary
// directory), for tests that kill, stop or restart it. Stopped (and
// continued first, if stopped) by the destructor.
class OwnRedis {
 public:
  OwnRedis();
  ~OwnRedis();
  OwnRedis(const OwnRedis&) = delete;
  OwnRedis& operator=(const OwnRedis&) = delete;

  const RedisServer& server() const { return server_; }
  pid_t pid() const;
  void signal(int sig);  // SIGKILL, SIGSTOP, SIGCONT
  void restart();        // same port and passwords; throws if it cannot

 private:
  std::filesystem::path dir_;
  RedisServer server_;
  bool stopped_ = false;
};

// A child process (the helper program) spoken to in lines: commands on its
// stdin, one reply line each on its stdout. Killed by the destructor.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void send(const std::string& line);
  // The next line, or throws std::runtime_error after timeout (naming the command).
  std::string read_line(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // send() then read_line().
  std::string ask(const std::string& line,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void kill(int sig);
  // Waits for the exit; the raw wait status.
  int wait();
  pid_t pid() const { return pid_; }
  // Everything the child wrote on stderr so far (it goes to a file).
  std::string stderr_text() const;

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string buffer_;
  std::string last_command_;
  std::filesystem::path err_path_;
  bool reaped_ = false;
};

// The helper program's command line for a tier on url with prefix, and
// the PostgreSQL database db_url ("" for none).
std::vector<std::string> helper_argv(const std::string& url, const std::string& prefix,
                                     const std::string& db_url = "",
                                     const std::vector<std::string>& extra = {});

// A plain hiredis connection, authenticated, for looking at Redis directly.
class RawRedis {
 public:
  explicit RawRedis(const RedisServer& server, int db = 0);
  ~RawRedis();
  RawRedis(const RawRedis&) = delete;
  RawRedis& operator=(const RawRedis&) = delete;

  // The reply as text: a string, an integer, "nil", "OK", or "ERR ...".
  std::string command(const std::vector<std::string>& argv);
  // Sends every command in one pipeline, then reads every reply.
  void pipeline(const std::vector<std::vector<std::string>>& commands);
  // Keys matching a Redis MATCH pattern (SCAN).
  std::vector<std::string> keys(const std::string& match);

 private:
  redisContext* c_ = nullptr;
};

// Waits until the tier's subscriber is connected (or throws after limit).
void wait_subscribed(const cache::RedisTier& tier,
                     std::chrono::milliseconds limit = std::chrono::seconds(10));

}  // namespace poolscope::testing
