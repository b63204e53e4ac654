// StatementCache and PreparedStatement: per-connection prepared statements.

#include "statement_cache.h"

#include <utility>

#include "driver.h"
#include "poolscope/pool/errors.h"

namespace poolscope {
namespace detail {

PreparedStatement& StatementCache::get(Connection& connection, std::string_view sql) {
  if (auto it = entries_.find(sql); it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return *it->second.statement;
  }
  const bool one_time = capacity_ == 0;
  if (entries_.size() >= (one_time ? kOneTimeEntries : capacity_) && !lru_.empty()) {
    // The least recently used goes (a prepared one is deallocated on the server).
    entries_.erase(entries_.find(lru_.back()));
    lru_.pop_back();
  }
  auto [it, added] = entries_.try_emplace(std::string(sql));
  it->second.statement.reset(new PreparedStatement(connection, it->first, one_time));
  lru_.push_front(it->first);
  it->second.lru = lru_.begin();
  return *it->second.statement;
}

}  // namespace detail

namespace {

// "prepared statement "st_3" does not exist" (SQLSTATE 26000): the server
// session no longer has it.
bool statement_lost(std::string_view message) {
  return message.find("prepared statement") != std::string_view::npos &&
         message.find("does not exist") != std::string_view::npos;
}

// ... "already exists" (42P05): another client's statement of that name is
// in this server session, which only a transaction pooler makes happen.
bool statement_clash(std::string_view message) {
  return message.find("prepared statement") != std::string_view::npos &&
         message.find("already exists") != std::string_view::npos;
}

}  // namespace

PreparedStatement::PreparedStatement(detail::Connection& connection, std::string sql, bool one_time)
    : connection_(connection), sql_(std::move(sql)), one_time_(one_time) {}

soci::statement& PreparedStatement::prepared() {
  detail::StatementCounters* counters = connection_.statements().counters();
  if (statement_) {
    if (counters != nullptr) counters->hits.fetch_add(1, std::memory_order_relaxed);
    return *statement_;
  }
  statement_.emplace(connection_.session());
  statement_->alloc();
  statement_->prepare(sql_, soci::details::st_repeatable_query);
  if (counters != nullptr) counters->prepared.fetch_add(1, std::memory_order_relaxed);
  return *statement_;
}

void PreparedStatement::unbind() {
  if (statement_) statement_->bind_clean_up();
  binding_.reset();
}

soci::statement& PreparedStatement::begin() {
  if (one_time_) {
    statement_.emplace(connection_.session());
    statement_->alloc();
    statement_->prepare(sql_, soci::details::st_one_time_query);
    return *statement_;
  }
  const bool again = statement_.has_value();
  soci::statement& st = prepared();
  if (again) unbind();  // the last execute()'s elements are gone
  return st;
}

bool PreparedStatement::finish() {
  statement_->define_and_bind();
  return statement_->execute(true);
}

bool PreparedStatement::fetch() {
  if (!statement_->fetch()) return false;
  if (binding_ != nullptr) binding_->copy_out();
  return true;
}

bool PreparedStatement::recover(const soci::soci_error& e, int attempt) {
  const std::string_view message = e.what();
  if (statement_lost(message) && attempt == 0 && !connection_.in_transaction()) {
    unbind();
    statement_.reset();  // prepared afresh by the retry
    if (detail::StatementCounters* counters = connection_.statements().counters()) {
      counters->lost.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
  }
  if (statement_lost(message) || statement_clash(message)) {
    unbind();
    statement_.reset();
    throw Error(std::string(message) +
                " (the server session does not hold this connection's prepared statements: a "
                "transaction-pooling proxy such as PgBouncer with pool_mode = transaction sits in "
                "front; set PoolConfig.transaction_pooler = true)");
  }
  return false;
}

}  // namespace poolscope
