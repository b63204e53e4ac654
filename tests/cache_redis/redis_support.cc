#include "redis_support.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <stdexcept>
#include <thread>

#include "test_util.h"

namespace poolscope::testing {
namespace {

RedisServer read_server(const std::map<std::string, std::string>& env) {
  RedisServer s;
  s.host = env.at("host");
  s.port = std::stoi(env.at("port"));
  s.password = env.at("password");
  s.user = env.at("user");
  s.user_password = env.at("user_password");
  s.socket = env.at("socket");
  s.dir = env.at("dir");
  return s;
}

std::map<std::string, std::string> read_env(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("no Redis env file " + path.string());
  std::map<std::string, std::string> values;
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return values;
}

}  // namespace

std::string RedisServer::url(int db) const {
  return "redis://:" + password + "@" + host + ":" + std::to_string(port) + "/" +
         std::to_string(db);
}

std::string RedisServer::user_url(int db) const {
  return "redis://" + user + ":" + user_password + "@" + host + ":" + std::to_string(port) + "/" +
         std::to_string(db);
}

std::string RedisServer::unix_url(int db) const {
  return "unix://:" + password + "@" + socket + "?db=" + std::to_string(db);
}

const RedisServer& fixture_redis() {
  static const RedisServer server = [] {
    std::map<std::string, std::string> env = read_env_file("POOLSCOPE_REDIS_ENV", "redis");
    if (!env["pg_env"].empty()) ::setenv("POOLSCOPE_PG_ENV", env["pg_env"].c_str(), 0);
    return read_server(env);
  }();
  return server;
}

std::string unique_prefix() {
  static std::atomic<int> counter{0};
  static const unsigned seed = std::random_device{}();
  return "t" + std::to_string(::getpid()) + "-" + std::to_string(seed % 100000) + "-" +
         std::to_string(counter.fetch_add(1));
}

OwnRedis::OwnRedis() {
  char path[] = "/tmp/poolscope-redis.XXXXXX";
  if (::mkdtemp(path) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = path;
  const auto [status, out] = run_command("bash '" POOLSCOPE_REDIS_SCRIPT "' start '" +
                                         dir_.string() + "' '" POOLSCOPE_FREE_PORT "'");
  if (status != 0) throw std::runtime_error("could not start a Redis of our own: " + out);
  server_ = read_server(read_env(dir_ / "redis.env"));
}

OwnRedis::~OwnRedis() {
  try {
    if (stopped_) signal(SIGCONT);
    run_command("bash '" POOLSCOPE_REDIS_SCRIPT "' stop '" + dir_.string() + "'");
    std::filesystem::remove_all(dir_);
  } catch (...) {
  }
}

pid_t OwnRedis::pid() const {
  std::ifstream in(dir_ / "redis.pid");
  pid_t pid = -1;
  in >> pid;
  return pid;
}

void OwnRedis::signal(int sig) {
  const pid_t p = pid();
  if (p <= 0 || ::kill(p, sig) != 0) throw std::runtime_error("cannot signal redis-server");
  stopped_ = sig == SIGSTOP ? true : sig == SIGCONT ? false : stopped_;
  if (sig == SIGKILL) {
    // Gone once the port refuses (it is not our child: poll for it).
    eventually([p] { return ::kill(p, 0) != 0; }, std::chrono::seconds(5));
  }
}

void OwnRedis::restart() {
  const auto [status, out] =
      run_command("bash '" POOLSCOPE_REDIS_SCRIPT "' restart '" + dir_.string() + "'");
  if (status != 0) throw std::runtime_error("could not restart Redis: " + out);
}

Child::Child(const std::vector<std::string>& argv) {
  int to_child[2];
  int from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  char path[] = "/tmp/poolscope-helper-stderr.XXXXXX";
  const int err = ::mkstemp(path);
  if (err < 0) throw std::runtime_error("mkstemp failed");
  err_path_ = path;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(to_child[0], 0);
    ::dup2(from_child[1], 1);
    ::dup2(err, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(err);
  ::close(to_child[0]);
  ::close(from_child[1]);
  in_ = to_child[1];
  out_ = from_child[0];
}

Child::~Child() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (in_ >= 0) ::close(in_);
  if (out_ >= 0) ::close(out_);
  std::error_code ignored;
  std::filesystem::remove(err_path_, ignored);
}

void Child::send(const std::string& line) {
  last_command_ = line;
  const std::string text = line + "\n";
  if (::write(in_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw std::runtime_error("cannot write to the helper: " + line);
  }
}

std::string Child::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw std::runtime_error("the helper did not answer '" + last_command_ +
                               "' in time; stderr: " + stderr_text());
    }
    pollfd fd{out_, POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::read(out_, chunk, sizeof chunk);
    if (n <= 0) {
      throw std::runtime_error("the helper closed its output after '" + last_command_ +
                               "'; stderr: " + stderr_text());
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

std::string Child::ask(const std::string& line, std::chrono::milliseconds timeout) {
  send(line);
  return read_line(timeout);
}

void Child::kill(int sig) { ::kill(pid_, sig); }

int Child::wait() {
  int status = 0;
  ::waitpid(pid_, &status, 0);
  reaped_ = true;
  return status;
}

std::string Child::stderr_text() const {
  std::ifstream in(err_path_);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> helper_argv(const std::string& url, const std::string& prefix,
                                     const std::string& db_url,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {POOLSCOPE_REDIS_HELPER, "--redis", url, "--prefix", prefix};
  if (!db_url.empty()) {
    argv.push_back("--db");
    argv.push_back(db_url);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

RawRedis::RawRedis(const RedisServer& server, int db) {
  c_ = redisConnect(server.host.c_str(), server.port);
  if (c_ == nullptr || c_->err != 0) throw std::runtime_error("RawRedis: cannot connect");
  if (command({"AUTH", server.password}) != "OK") throw std::runtime_error("RawRedis: AUTH failed");
  if (db != 0 && command({"SELECT", std::to_string(db)}) != "OK") {
    throw std::runtime_error("RawRedis: SELECT failed");
  }
}

RawRedis::~RawRedis() {
  if (c_ != nullptr) redisFree(c_);
}

namespace {

std::string text_of(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return std::to_string(r->integer);
    case REDIS_REPLY_NIL:
      return "nil";
    default:
      return "array";
  }
}

std::pair<std::vector<const char*>, std::vector<std::size_t>> args_of(
    const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lengths.push_back(a.size());
  }
  return {args, lengths};
}

}  // namespace

std::string RawRedis::command(const std::vector<std::string>& argv) {
  auto [args, lengths] = args_of(argv);
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c_, static_cast<int>(args.size()), args.data(), lengths.data()));
  if (r == nullptr) throw std::runtime_error("RawRedis: connection failed");
  std::string out = text_of(r);
  freeReplyObject(r);
  return out;
}

void RawRedis::pipeline(const std::vector<std::vector<std::string>>& commands) {
  for (const auto& argv : commands) {
    auto [args, lengths] = args_of(argv);
    redisAppendCommandArgv(c_, static_cast<int>(args.size()), args.data(), lengths.data());
  }
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(c_, &reply) != REDIS_OK)
      throw std::runtime_error("RawRedis: pipeline failed");
    freeReplyObject(reply);
  }
}

std::vector<std::string> RawRedis::keys(const std::string& match) {
  std::vector<std::string> out;
  std::string cursor = "0";
  do {
    const std::vector<std::string> argv = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
    auto [args, lengths] = args_of(argv);
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c_, static_cast<int>(args.size()), args.data(), lengths.data()));
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY) throw std::runtime_error("RawRedis: SCAN");
    cursor = text_of(r->element[0]);
    for (std::size_t i = 0; i < r->element[1]->elements; ++i) {
      out.push_back(text_of(r->element[1]->element[i]));
    }
    freeReplyObject(r);
  } while (cursor != "0");
  return out;
}

void wait_subscribed(const cache::RedisTier& tier, std::chrono::milliseconds limit) {
  if (!eventually([&] { return tier.stats().subscriber_connected; }, limit)) {
    throw std::runtime_error("the tier's subscriber did not connect");
  }
}

}  // namespace poolscope::testing
