// One hiredis connection (a redisContext) with deadlines: connect, AUTH and
// SELECT, then commands, each bounded by what is left of the caller's
// deadline. hiredis's blocking API applies SO_RCVTIMEO / SO_SNDTIMEO to the
// socket; a read that times out leaves the context unusable, so any failure
// closes it and the next call connects afresh.
//
// Writes to a socket the server closed raise SIGPIPE, which would kill the
// process; every call blocks SIGPIPE on its thread and discards one it
// raised (libpq's way), so the application's signal handling is untouched.
//
// Not thread-safe: one thread at a time (ConnectionSet hands connections out).

#pragma once

#include <signal.h>

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "poolscope/cache/redis/redis_url.h"

struct redisContext;
struct redisReply;

namespace poolscope::cache::detail {

using SteadyClock = std::chrono::steady_clock;

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept;
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// How a call ended.
enum class CallStatus {
  kOk,          // a reply that is not an error
  kErrorReply,  // the server answered with an error (WRONGTYPE, NOSCRIPT, ...)
  kIoError,     // refused, reset, closed, authentication failed
  kTimeout,     // the deadline passed (connect, command, or waiting for a connection)
  kSkipped,     // not made: the breaker is open, or the tier is closed
};

struct CallResult {
  CallStatus status = CallStatus::kSkipped;
  ReplyPtr reply;  // for kOk and kErrorReply
  // What went wrong, for a log line; the password scrubbed out.
  std::string error;
  // The failure says Redis cannot serve now (down, hung, loading, refusing
  // us): the breaker counts it. An ordinary error reply does not.
  bool server_failure = false;

  bool ok() const noexcept { return status == CallStatus::kOk; }
};

// Blocks SIGPIPE on this thread for the guard's lifetime, and discards a
// SIGPIPE raised meanwhile (unless one was pending before).
class SigpipeGuard {
 public:
  SigpipeGuard() noexcept;
  ~SigpipeGuard();
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_mask_;
  bool was_pending_ = false;
};

class Connection {
 public:
  Connection(const RedisUrl& url, std::chrono::milliseconds connect_timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends argv and waits for its reply until deadline; connects first
  // (AUTH, SELECT) when not connected. Never throws but for std::bad_alloc.
  CallResult call(std::span<const std::string_view> argv, SteadyClock::time_point deadline);

  // Connects now (closing any connection held) without SELECT when
  // select_db is false (pub/sub ignores databases).
  CallResult connect(SteadyClock::time_point deadline, bool select_db = true);

  bool connected() const noexcept { return context_ != nullptr; }
  void close() noexcept;

  // For the subscriber, which drives the context itself. Null when closed.
  redisContext* context() noexcept { return context_; }
  // Sets the socket timeouts; false (and closed) on failure.
  bool set_timeout(std::chrono::nanoseconds timeout);
  // The failure of the last hiredis call on the context (errno was error
  // right after it), classified; closes the context.
  CallResult io_failure(std::string_view what, int error);

  const RedisUrl& url() const noexcept { return url_; }

 private:
  CallResult command(std::span<const std::string_view> argv, SteadyClock::time_point deadline);

  const RedisUrl& url_;
  const std::chrono::milliseconds connect_timeout_;
  redisContext* context_ = nullptr;
  std::chrono::nanoseconds timeout_{0};  // what the socket has now
};

// "GET" "key" ... as text for a log line: the command name only (values and
// keys may be large or private).
std::string command_name(std::span<const std::string_view> argv);

}  // namespace poolscope::cache::detail
