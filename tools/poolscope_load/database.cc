#include "database.h"

#include <exception>

namespace poolscope::load {
namespace {

const char* const kSymbols[] = {"AAPL", "MSFT", "NVDA", "AMZN", "GOOG"};
const char* const kSettingKeys[] = {"api_key", "api_secret", "paper_account", "base_url"};

// Any constant will do, as long as only poolscope-load's seed takes it:
// "pslo" in ASCII.
constexpr long long kSeedLockKey = 0x70736c6f;

void create_tables(soci::session& sql) {
  sql << "CREATE TABLE IF NOT EXISTS account_settings ("
         " account_id INTEGER NOT NULL,"
         " setting_key VARCHAR(64) NOT NULL,"
         " setting_value VARCHAR(256) NOT NULL,"
         " PRIMARY KEY (account_id, setting_key))";
  sql << "CREATE TABLE IF NOT EXISTS transactions ("
         " id INTEGER PRIMARY KEY,"
         " account_id INTEGER NOT NULL,"
         " symbol VARCHAR(16) NOT NULL,"
         " quantity INTEGER NOT NULL,"
         " status VARCHAR(8) NOT NULL)";
}

// PostgreSQL says "relation ... already exists, skipping" for every
// CREATE TABLE IF NOT EXISTS of a table that exists: ask first (under the
// seed lock, so the answer holds), and stay quiet on every run but the first.
bool tables_exist_postgresql(soci::session& sql) {
  int found = 0;
  sql << "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
         " AND tablename IN ('account_settings', 'transactions')",
      soci::into(found);
  return found == 2;
}

// Upserts: the same statements on both backends (SQLite 3.24+, PostgreSQL 9.5+).
void write_seed_rows(soci::session& sql) {
  for (int account = 1; account <= kAccounts; ++account) {
    for (const std::string key : kSettingKeys) {
      const std::string value = seed_setting_value(account, key);
      sql << "INSERT INTO account_settings (account_id, setting_key, setting_value)"
             " VALUES (:a, :k, :v) ON CONFLICT (account_id, setting_key)"
             " DO UPDATE SET setting_value = excluded.setting_value",
          soci::use(account), soci::use(key), soci::use(value);
    }
  }
  for (int id = 1; id <= kOpenTransactions + kClosedTransactions; ++id) {
    const int account = (id - 1) % kAccounts + 1;
    const std::string symbol = kSymbols[(id - 1) % 5];
    const int quantity = 10 * id;
    const std::string status = id <= kOpenTransactions ? "OPEN" : "CLOSED";
    sql << "INSERT INTO transactions (id, account_id, symbol, quantity, status)"
           " VALUES (:i, :a, :s, :q, :st) ON CONFLICT (id) DO UPDATE SET"
           " account_id = excluded.account_id, symbol = excluded.symbol,"
           " quantity = excluded.quantity, status = excluded.status",
        soci::use(id), soci::use(account), soci::use(symbol), soci::use(quantity),
        soci::use(status);
  }
  // Rows a different seed left behind would change what a render reads.
  const int last_id = kOpenTransactions + kClosedTransactions;
  sql << "DELETE FROM transactions WHERE id < 1 OR id > :n", soci::use(last_id);
  sql << "DELETE FROM account_settings WHERE account_id < 1 OR account_id > :n"
         " OR setting_key NOT IN ('api_key', 'api_secret', 'paper_account', 'base_url')",
      soci::use(kAccounts);
}

void seed_postgresql(soci::session& sql) {
  soci::transaction tx(sql);
  // Held until the commit: seeders take turns, and the tables exist (or
  // not) for the whole of each turn.
  sql << "SELECT pg_advisory_xact_lock(" + std::to_string(kSeedLockKey) + ")";
  if (!tables_exist_postgresql(sql)) create_tables(sql);
  write_seed_rows(sql);
  tx.commit();
}

void seed_sqlite(soci::session& sql) {
  // Readers and a writer at once without "database is locked". Outside the
  // transaction: SQLite cannot change the journal mode inside one.
  std::string mode;
  sql << "PRAGMA journal_mode=WAL", soci::into(mode);
  // IMMEDIATE takes the write lock now, waiting out the busy timeout, so two
  // seeders queue instead of one failing to upgrade a read lock.
  sql << "BEGIN IMMEDIATE";
  try {
    create_tables(sql);
    write_seed_rows(sql);
    sql << "COMMIT";
  } catch (...) {
    try {
      sql << "ROLLBACK";
    } catch (const std::exception&) {
      // The first error is the one to report.
    }
    throw;
  }
}

}  // namespace

std::string seed_setting_value(int account, const std::string& key) {
  if (key == "paper_account") return account % 2 == 0 ? "true" : "false";
  if (key == "api_secret") return "secret-" + std::to_string(account) + "-v0";
  return key + "-" + std::to_string(account) + "-0123456789abcdef";
}

void seed(soci::session& sql, Backend backend) {
  if (backend == Backend::kPostgreSQL) {
    seed_postgresql(sql);
  } else {
    seed_sqlite(sql);
  }
}

std::vector<Transaction> load_open_transactions(soci::session& sql) {
  // A one-time query into vectors: SOCI sends it unnamed (a prepared
  // statement would be named "st_<n>", which a transaction-pooling PgBouncer
  // may route to another server session). The vectors' size caps the rows.
  constexpr std::size_t kMaxRows = 1000;
  std::vector<int> ids(kMaxRows), accounts(kMaxRows), quantities(kMaxRows);
  std::vector<std::string> symbols(kMaxRows);
  sql << "SELECT id, account_id, symbol, quantity FROM transactions WHERE status = 'OPEN'"
         " ORDER BY id",
      soci::into(ids), soci::into(accounts), soci::into(symbols), soci::into(quantities);
  std::vector<Transaction> rows;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    rows.push_back({ids[i], accounts[i], symbols[i], quantities[i]});
  }
  return rows;
}

}  // namespace poolscope::load
