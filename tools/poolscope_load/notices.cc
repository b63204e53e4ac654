#include "notices.h"

#include <libpq-fe.h>
#include <soci/postgresql/soci-postgresql.h>
#include <spdlog/logger.h>

#include <string_view>

#include "poolscope/base/log_text.h"

namespace poolscope::load {
namespace {

spdlog::level::level_enum level_of(std::string_view severity) {
  if (severity == "WARNING") return spdlog::level::warn;
  if (severity == "NOTICE" || severity == "INFO" || severity == "LOG" ||
      severity.starts_with("DEBUG")) {
    return spdlog::level::info;
  }
  return spdlog::level::err;
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  return text;
}

void log_notice(spdlog::logger& logger, std::string_view source, std::string_view severity,
                std::string_view message) {
  try {
    logger.log(level_of(severity), "Database notice ({}): {}: {}", log_text(source),
               log_text(severity), log_text(trimmed(message)));
  } catch (...) {
    // A log line is never worth an exception out of a callback.
  }
}

}  // namespace

NoticeLog::NoticeLog(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}

void NoticeLog::on_notice(const NoticeEvent& event) {
  const std::string source =
      "pool=" + std::string(event.pool) + ", connection " + std::to_string(event.connection_id);
  log_notice(*logger_, source, event.severity, event.message);
}

NoticeRoute::NoticeRoute(soci::session& sql, std::shared_ptr<spdlog::logger> logger,
                         const ConnectionUrl& url, std::string source)
    : logger_(std::move(logger)), url_(url), source_(std::move(source)) {
  if (sql.get_backend_name() != "postgresql") return;
  // soci::session::get_backend() is the backend the session was opened
  // with; for "postgresql" that is SOCI's postgresql_session_backend.
  PGconn* conn = static_cast<soci::postgresql_session_backend*>(sql.get_backend())->conn_;
  if (conn == nullptr) return;
  conn_ = conn;
  previous_ = PQsetNoticeReceiver(conn, &NoticeRoute::receive, this);
}

NoticeRoute::~NoticeRoute() {
  // libpq's default receiver ignores its argument.
  if (conn_ != nullptr && previous_ != nullptr) PQsetNoticeReceiver(conn_, previous_, nullptr);
}

void NoticeRoute::receive(void* arg, const PGresult* res) noexcept {
  const auto* self = static_cast<const NoticeRoute*>(arg);
  const char* severity = PQresultErrorField(res, PG_DIAG_SEVERITY);
  const char* message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  try {
    log_notice(*self->logger_, self->source_, severity != nullptr ? severity : "NOTICE",
               self->url_.scrub(message != nullptr ? message : ""));
  } catch (...) {
    // As above: nothing leaves libpq's callback.
  }
}

}  // namespace poolscope::load
