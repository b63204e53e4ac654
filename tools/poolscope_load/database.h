// The widget's tables: seeding them (safe when many poolscope-load processes
// start at once against one database) and reading the open transactions,
// without named prepared statements, so that both work through PgBouncer in
// transaction pooling mode.
//
// Free functions on a caller's session: they share nothing between calls.

#pragma once

#include <soci/soci.h>

#include <string>
#include <vector>

#include "poolscope/pool/url.h"

namespace poolscope::load {

inline constexpr int kAccounts = 5;
inline constexpr int kOpenTransactions = 20;
inline constexpr int kClosedTransactions = 5;
inline constexpr int kReadsPerAccount = 3;
inline constexpr int kReadsPerRender = kOpenTransactions * kReadsPerAccount;

struct Transaction {
  int id = 0;
  int account_id = 0;
  std::string symbol;
  int quantity = 0;
};

// Creates the scenario's tables if missing and puts the seed rows in them,
// replacing what differs: every process that seeds leaves the same rows, so
// concurrent seeders agree. One transaction; on PostgreSQL under an advisory
// lock (concurrent CREATE TABLE IF NOT EXISTS can fail), on SQLite under
// BEGIN IMMEDIATE (the write lock up front, waiting out the busy timeout).
// Throws soci::soci_error.
void seed(soci::session& sql, Backend backend);

// The widget's input: the open transactions, by id. One unnamed statement.
std::vector<Transaction> load_open_transactions(soci::session& sql);

// The seeded value of one account's setting.
std::string seed_setting_value(int account, const std::string& key);

}  // namespace poolscope::load
