#include "connection.h"

#include <hiredis/hiredis.h>
#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace poolscope::cache::detail {
namespace {

timeval to_timeval(std::chrono::nanoseconds d) {
  const auto us = std::max<std::int64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(d).count(), 1000);
  return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

// Error replies that mean the server cannot serve us now, rather than that
// one command was wrong: the breaker counts these.
bool is_server_failure_reply(std::string_view text) {
  for (std::string_view prefix : {"LOADING", "BUSY", "MASTERDOWN", "READONLY", "NOAUTH",
                                  "WRONGPASS", "NOPERM", "CLUSTERDOWN", "TRYAGAIN", "OOM"}) {
    if (text.starts_with(prefix)) return true;
  }
  return false;
}

std::string reply_text(const redisReply* r) { return std::string(r->str, r->len); }

}  // namespace

void ReplyDeleter::operator()(redisReply* r) const noexcept { freeReplyObject(r); }

SigpipeGuard::SigpipeGuard() noexcept {
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask_);
  sigset_t pending;
  sigemptyset(&pending);
  was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

SigpipeGuard::~SigpipeGuard() {
  if (!was_pending_) {
    sigset_t pending;
    sigemptyset(&pending);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      sigset_t pipe_only;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

Connection::Connection(const RedisUrl& url, std::chrono::milliseconds connect_timeout)
    : url_(url), connect_timeout_(connect_timeout) {}

Connection::~Connection() { close(); }

void Connection::close() noexcept {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
  timeout_ = std::chrono::nanoseconds(0);
}

bool Connection::set_timeout(std::chrono::nanoseconds timeout) {
  if (context_ == nullptr) return false;
  if (timeout == timeout_) return true;
  if (redisSetTimeout(context_, to_timeval(timeout)) != REDIS_OK) {
    close();
    return false;
  }
  timeout_ = timeout;
  return true;
}

CallResult Connection::io_failure(std::string_view what, int error) {
  CallResult r;
  r.server_failure = true;
  const bool timed_out =
      error == EAGAIN || error == EWOULDBLOCK || error == ETIMEDOUT || error == EINPROGRESS ||
      (context_ != nullptr && std::strstr(context_->errstr, "timed out") != nullptr);
  r.status = timed_out ? CallStatus::kTimeout : CallStatus::kIoError;
  std::string detail = context_ != nullptr ? std::string(context_->errstr) : "no context";
  if (timed_out) detail = "timed out";
  r.error = url_.scrub(std::string(what) + ": " + detail);
  close();
  return r;
}

CallResult Connection::connect(SteadyClock::time_point deadline, bool select_db) {
  close();
  const auto left = deadline - SteadyClock::now();
  if (left <= std::chrono::nanoseconds(0)) {
    return {CallStatus::kTimeout, nullptr, "connect: no time left", true};
  }
  const timeval tv = to_timeval(std::min<std::chrono::nanoseconds>(left, connect_timeout_));
  int error = 0;
  {
    SigpipeGuard guard;
    errno = 0;
    context_ = url_.is_unix() ? redisConnectUnixWithTimeout(url_.socket_path().c_str(), tv)
                              : redisConnectWithTimeout(url_.host().c_str(), url_.port(), tv);
    error = errno;
  }
  if (context_ == nullptr) throw std::bad_alloc();
  if (context_->err != 0) return io_failure("connect", error);
  timeout_ = std::chrono::nanoseconds(-1);  // hiredis set the connect timeout: unknown to us
  if (url_.has_password()) {
    std::vector<std::string_view> auth = {"AUTH"};
    if (!url_.user().empty()) auth.push_back(url_.user());
    auth.push_back(url_.password());
    CallResult r = command(auth, deadline);
    if (!r.ok()) {
      if (r.status == CallStatus::kErrorReply) {
        r.status = CallStatus::kIoError;
        r.server_failure = true;
        r.error = "authentication failed: " + r.error;
      }
      close();
      return r;
    }
  }
  if (select_db && url_.database() != 0) {
    const std::string db = std::to_string(url_.database());
    const std::string_view select[] = {"SELECT", db};
    CallResult r = command(select, deadline);
    if (!r.ok()) {
      if (r.status == CallStatus::kErrorReply) {
        r.status = CallStatus::kIoError;
        r.server_failure = true;
        r.error = "SELECT " + db + " failed: " + r.error;
      }
      close();
      return r;
    }
  }
  return {CallStatus::kOk, nullptr, {}, false};
}

CallResult Connection::call(std::span<const std::string_view> argv,
                            SteadyClock::time_point deadline) {
  if (context_ == nullptr) {
    CallResult r = connect(deadline);
    if (!r.ok()) return r;
  }
  return command(argv, deadline);
}

CallResult Connection::command(std::span<const std::string_view> argv,
                               SteadyClock::time_point deadline) {
  const auto left = deadline - SteadyClock::now();
  if (left <= std::chrono::nanoseconds(0)) {  // nothing sent: the connection stays usable
    return {CallStatus::kTimeout, nullptr, command_name(argv) + ": no time left", true};
  }
  // Round the socket timeout to whole milliseconds so that consecutive calls
  // rarely need another setsockopt().
  const auto timeout = std::chrono::ceil<std::chrono::milliseconds>(left);
  if (!set_timeout(timeout)) return io_failure(command_name(argv), errno);
  std::vector<const char*> args(argv.size());
  std::vector<std::size_t> lengths(argv.size());
  for (std::size_t i = 0; i < argv.size(); ++i) {
    args[i] = argv[i].data();
    lengths[i] = argv[i].size();
  }
  void* raw = nullptr;
  int error = 0;
  {
    SigpipeGuard guard;
    errno = 0;
    raw = redisCommandArgv(context_, static_cast<int>(argv.size()), args.data(), lengths.data());
    error = errno;
  }
  if (raw == nullptr) return io_failure(command_name(argv), error);
  ReplyPtr reply(static_cast<redisReply*>(raw));
  if (reply->type == REDIS_REPLY_ERROR) {
    CallResult r;
    r.status = CallStatus::kErrorReply;
    r.error = url_.scrub(command_name(argv) + ": " + reply_text(reply.get()));
    r.server_failure = is_server_failure_reply(reply_text(reply.get()));
    r.reply = std::move(reply);
    return r;
  }
  return {CallStatus::kOk, std::move(reply), {}, false};
}

std::string command_name(std::span<const std::string_view> argv) {
  return argv.empty() ? std::string("(empty command)") : std::string(argv[0]);
}

}  // namespace poolscope::cache::detail
