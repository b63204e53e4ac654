#include "subscriber.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <optional>

namespace poolscope::cache::detail {
namespace {

using std::chrono::milliseconds;

bool is_text(const redisReply* r, std::string_view text) {
  return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
         std::string_view(r->str, r->len) == text;
}

CallResult failure(CallStatus status, std::string error) {
  return {status, nullptr, std::move(error), true};
}

int poll_ms(SteadyClock::time_point until) {
  const auto left = std::chrono::ceil<milliseconds>(until - SteadyClock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

}  // namespace

Subscriber::Subscriber(const RedisUrl& url, std::string channel, Config config, Handlers handlers)
    : channel_(std::move(channel)),
      config_(config),
      handlers_(std::move(handlers)),
      wake_fd_(::eventfd(
          0, EFD_CLOEXEC | EFD_NONBLOCK)),  // -1: poll() ignores it, ticks still end waits
      connection_(url, config.connect_timeout),
      thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

Subscriber::~Subscriber() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Subscriber::run(std::stop_token stop) {
  std::stop_callback wake(stop, [this] {
    const std::uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
  });
  const milliseconds first_delay = std::min(milliseconds(100), config_.max_retry_delay);
  milliseconds delay = first_delay;
  bool reported = false;  // this outage was reported through lost()
  while (!stop.stop_requested()) {
    const CallResult attempt = subscribe();
    handlers_.attempted(attempt);
    if (attempt.ok()) {
      reported = false;
      delay = first_delay;
      handlers_.subscribed();
      const CallResult end = listen(stop);
      connection_.close();
      if (stop.stop_requested()) break;
      handlers_.attempted(end);
      handlers_.lost(end.error, true);
      reported = true;
    } else if (!reported) {
      handlers_.lost(attempt.error, false);
      reported = true;
    }
    if (!sleep(stop, delay)) break;
    delay = std::min(delay * 2, config_.max_retry_delay);
  }
}

bool Subscriber::sleep(const std::stop_token& stop, milliseconds d) {
  const auto until = SteadyClock::now() + d;
  while (!stop.stop_requested()) {
    handlers_.tick();
    const auto now = SteadyClock::now();
    if (now >= until) return true;
    pollfd fd{wake_fd_, POLLIN, 0};
    ::poll(&fd, 1, poll_ms(std::min(until, now + config_.tick_interval)));
  }
  return false;
}

CallResult Subscriber::subscribe() {
  CallResult r = connection_.connect(SteadyClock::now() + config_.connect_timeout, false);
  if (!r.ok()) return r;
  if (!connection_.set_timeout(config_.timeout)) {
    return failure(CallStatus::kIoError, "SUBSCRIBE: cannot set the socket timeout");
  }
  const char* argv[] = {"SUBSCRIBE", channel_.c_str()};
  const std::size_t lengths[] = {9, channel_.size()};
  void* raw = nullptr;
  int error = 0;
  {
    SigpipeGuard guard;
    errno = 0;
    raw = redisCommandArgv(connection_.context(), 2, argv, lengths);
    error = errno;
  }
  if (raw == nullptr) return connection_.io_failure("SUBSCRIBE", error);
  ReplyPtr reply(static_cast<redisReply*>(raw));
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
      is_text(reply->element[0], "subscribe")) {
    return {CallStatus::kOk, nullptr, {}, false};
  }
  std::string what = reply->type == REDIS_REPLY_ERROR
                         ? connection_.url().scrub(std::string(reply->str, reply->len))
                         : std::string("an unexpected reply");
  connection_.close();
  return failure(CallStatus::kErrorReply, "SUBSCRIBE: " + what);
}

std::string Subscriber::handle(void* raw, bool* pong) {
  const auto* r = static_cast<const redisReply*>(raw);
  if (r->type == REDIS_REPLY_ERROR) {
    return connection_.url().scrub(std::string(r->str, r->len));
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1) {
    const redisReply* kind = r->element[0];
    if (is_text(kind, "message") && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING) {
      handlers_.message(std::string_view(r->element[2]->str, r->element[2]->len));
    } else if (is_text(kind, "pong")) {
      *pong = true;
    }
  } else if (is_text(r, "PONG")) {
    *pong = true;
  }
  return {};
}

CallResult Subscriber::listen(const std::stop_token& stop) {
  redisContext* c = connection_.context();
  auto next_ping = SteadyClock::now() + config_.ping_interval;
  auto next_tick = SteadyClock::now();
  std::optional<SteadyClock::time_point> pong_due;
  while (!stop.stop_requested()) {
    for (;;) {  // every reply already read
      void* reply = nullptr;
      if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
        return failure(CallStatus::kIoError, "protocol error: " + std::string(c->errstr));
      if (reply == nullptr) break;
      bool pong = false;
      std::string error = handle(reply, &pong);
      freeReplyObject(reply);
      if (!error.empty()) return failure(CallStatus::kErrorReply, error);
      if (pong) {
        pong_due.reset();
        next_ping = SteadyClock::now() + config_.ping_interval;
      }
    }
    const auto now = SteadyClock::now();
    if (pong_due && now >= *pong_due) {
      return failure(CallStatus::kTimeout,
                     "no PONG within " + std::to_string(config_.timeout.count()) + " ms");
    }
    if (!pong_due && now >= next_ping) {
      int done = 0;
      SigpipeGuard guard;
      if (redisAppendCommand(c, "PING") != REDIS_OK)
        return failure(CallStatus::kIoError, "PING: " + std::string(c->errstr));
      while (done == 0) {
        errno = 0;
        if (redisBufferWrite(c, &done) != REDIS_OK) return connection_.io_failure("PING", errno);
      }
      pong_due = now + config_.timeout;
    }
    if (now >= next_tick) {
      handlers_.tick();
      next_tick = now + config_.tick_interval;
    }
    pollfd fds[2] = {{c->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, poll_ms(std::min(pong_due.value_or(next_ping), next_tick)));
    if (n < 0 && errno != EINTR) return failure(CallStatus::kIoError, "poll failed");
    if (n <= 0 || (fds[1].revents & POLLIN) != 0) continue;  // the loop checks for stop
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      errno = 0;
      SigpipeGuard guard;
      if (redisBufferRead(c) != REDIS_OK) return connection_.io_failure("read", errno);
    }
  }
  return {CallStatus::kSkipped, nullptr, "stopped", false};
}

}  // namespace poolscope::cache::detail
