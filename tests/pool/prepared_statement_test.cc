// Lease::prepared(): statements prepared once per connection and reused by
// every later lease of it, bounded, dropped with the connection, off behind
// a transaction pooler, and recovered when the server forgets them.

#include "poolscope/pool/prepared_statement.h"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "poolscope/pool/errors.h"
#include "poolscope/pool/pool.h"
#include "test_db.h"

namespace poolscope {
namespace {

using testing::TestBackend;
using testing::TestDatabase;

constexpr const char* kRead = "SELECT v FROM kv WHERE k = :k";

class PreparedStatementTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>(GetParam());
    auto sql = db_->open_session();
    *sql << "CREATE TABLE kv (k INTEGER PRIMARY KEY, v VARCHAR(20))";
    for (int k = 0; k < 10; ++k) {
      // A named value: SOCI runs the statement when the full expression
      // ends, after a temporary bound here would be gone.
      const std::string v = "v" + std::to_string(k);
      *sql << "INSERT INTO kv (k, v) VALUES (:k, :v)", soci::use(k), soci::use(v);
    }
  }
  PoolConfig config() const { return db_->config(1); }
  bool postgres() const { return GetParam() == TestBackend::kPostgreSQL; }

  static std::string read(Lease& lease, int k) {
    std::string v;
    if (!lease.prepared(kRead).execute(soci::use(k), soci::into(v))) return "(none)";
    return v;
  }
  // Statements the server holds for this session (PostgreSQL).
  static int server_statements(Lease& lease) {
    int n = 0;
    *lease << "SELECT count(*) FROM pg_prepared_statements", soci::into(n);
    return n;
  }

  std::unique_ptr<TestDatabase> db_;
};

TEST_P(PreparedStatementTest, AStatementIsPreparedOnceAndReusedByLaterLeases) {
  Pool pool(config());
  for (int round = 0; round < 5; ++round) {
    Lease lease = pool.acquire();
    EXPECT_EQ(read(lease, round), "v" + std::to_string(round));
    EXPECT_EQ(read(lease, 42), "(none)");
  }
  const PoolStats stats = pool.stats();
  EXPECT_EQ(stats.statements_prepared, 1u);
  EXPECT_EQ(stats.statement_cache_hits, 9u);
  if (postgres()) {
    Lease lease = pool.acquire();
    EXPECT_EQ(server_statements(lease), 1);
  }
}

TEST_P(PreparedStatementTest, FetchReadsTheFollowingRows) {
  Pool pool(config());
  Lease lease = pool.acquire();
  std::string v;
  int low = 7;
  PreparedStatement& st = lease.prepared("SELECT v FROM kv WHERE k >= :k ORDER BY k");
  ASSERT_TRUE(st.execute(soci::use(low), soci::into(v)));
  std::string all = v;
  while (st.fetch()) all += "," + v;
  EXPECT_EQ(all, "v7,v8,v9");
}

// The statement stays bound to copies: each execute() must still read the
// values of its own call and write the row to its own targets, wherever
// the caller keeps them.
TEST_P(PreparedStatementTest, EachExecuteReadsItsOwnValuesAndWritesItsOwnTargets) {
  Pool pool(config());
  Lease lease = pool.acquire();
  PreparedStatement& st = lease.prepared(kRead);
  auto heap_key = std::make_unique<int>(3);
  std::optional<std::string> held_value;
  held_value.emplace("untouched");
  std::string first;
  ASSERT_TRUE(st.execute(soci::use(*heap_key), soci::into(first)));
  *heap_key = 5;  // the same variable, changed after the last execute
  std::string second;
  ASSERT_TRUE(st.execute(soci::use(*heap_key), soci::into(second)));
  const int k = 8;
  ASSERT_TRUE(st.execute(soci::use(k), soci::into(*held_value)));
  EXPECT_EQ(first, "v3");
  EXPECT_EQ(second, "v5");
  EXPECT_EQ(*held_value, "v8");
  // By name, too (a statement of its own: SOCI takes one way of binding
  // per statement).
  PreparedStatement& by_name = lease.prepared("SELECT v FROM kv WHERE k = :key");
  for (int i = 0; i < 10; ++i) {
    std::string v;
    ASSERT_TRUE(by_name.execute(soci::use(i, "key"), soci::into(v)));
    EXPECT_EQ(v, "v" + std::to_string(i));
  }
  EXPECT_EQ(pool.stats().statements_prepared, 2u);
}

TEST_P(PreparedStatementTest, NoRowLeavesTheTargetsAndANullSetsOnlyTheIndicator) {
  {
    auto sql = db_->open_session();
    *sql << "INSERT INTO kv (k, v) VALUES (100, NULL)";
  }
  Pool pool(config());
  Lease lease = pool.acquire();
  PreparedStatement& st = lease.prepared(kRead);
  std::string v = "before";
  soci::indicator ind = soci::i_truncated;  // not a value SOCI sets for a string
  int k = 1;
  ASSERT_TRUE(st.execute(soci::use(k), soci::into(v, ind)));
  EXPECT_EQ(v, "v1");
  EXPECT_EQ(ind, soci::i_ok);
  v = "before";
  ind = soci::i_truncated;
  k = 42;
  EXPECT_FALSE(st.execute(soci::use(k), soci::into(v, ind)));
  EXPECT_EQ(v, "before") << "no row: the target keeps its value";
  EXPECT_EQ(ind, soci::i_truncated) << "no row: the indicator keeps its value";
  k = 100;
  ASSERT_TRUE(st.execute(soci::use(k), soci::into(v, ind)));
  EXPECT_EQ(ind, soci::i_null);
  EXPECT_EQ(v, "before") << "a NULL leaves the value, not the previous row's";
  std::string no_indicator;
  EXPECT_THROW(st.execute(soci::use(k), soci::into(no_indicator)), soci::soci_error)
      << "a NULL without an indicator";
  k = 2;
  ASSERT_TRUE(st.execute(soci::use(k), soci::into(no_indicator)))
      << "the statement is usable after the error";
  EXPECT_EQ(no_indicator, "v2");
  // A NULL parameter through an indicator matches nothing.
  soci::indicator null_key = soci::i_null;
  EXPECT_FALSE(st.execute(soci::use(k, null_key), soci::into(v, ind)));
}

TEST_P(PreparedStatementTest, AStatementTakesElementsOfOtherTypesAndVectors) {
  Pool pool(config());
  Lease lease = pool.acquire();
  PreparedStatement& st = lease.prepared("SELECT k FROM kv WHERE k >= :k ORDER BY k");
  int low = 7;
  int as_int = 0;
  ASSERT_TRUE(st.execute(soci::use(low), soci::into(as_int)));
  EXPECT_EQ(as_int, 7);
  const long long low_ll = 8;
  long long as_ll = 0;
  ASSERT_TRUE(st.execute(soci::use(low_ll), soci::into(as_ll)));
  EXPECT_EQ(as_ll, 8);
  double as_double = 0;
  ASSERT_TRUE(st.execute(soci::use(low), soci::into(as_double)));
  EXPECT_EQ(as_double, 7.0);
  EXPECT_EQ(pool.stats().statements_prepared, 1u);
  // A vector is bound on every execute, as SOCI binds it (on a statement of
  // its own: SOCI's PostgreSQL backend takes one row count per statement).
  PreparedStatement& bulk = lease.prepared("SELECT k FROM kv WHERE k >= :low ORDER BY k");
  for (int round = 0; round < 2; ++round) {
    std::vector<int> all(20);
    ASSERT_TRUE(bulk.execute(soci::use(low), soci::into(all)));
    EXPECT_EQ(all, (std::vector<int>{7, 8, 9}));
    ++low;
    all.assign(20, 0);
    ASSERT_TRUE(bulk.execute(soci::use(low), soci::into(all)));
    EXPECT_EQ(all, (std::vector<int>{8, 9}));
    --low;
  }
}

TEST_P(PreparedStatementTest, AFailedExecuteLeavesTheStatementUsable) {
  Pool pool(config());
  Lease lease = pool.acquire();
  PreparedStatement& insert = lease.prepared("INSERT INTO kv (k, v) VALUES (:k, :v)");
  const std::string v = "new";
  int k = 3;  // taken
  EXPECT_THROW(insert.execute(soci::use(k), soci::use(v)), soci::soci_error);
  for (k = 20; k < 23; ++k) insert.execute(soci::use(k), soci::use(v));
  int rows = 0;
  *lease << "SELECT count(*) FROM kv WHERE v = 'new'", soci::into(rows);
  EXPECT_EQ(rows, 3);
}

TEST_P(PreparedStatementTest, TheCacheIsBoundedPerConnection) {
  PoolConfig cfg = config();
  cfg.statement_cache_size = 2;
  Pool pool(cfg);
  Lease lease = pool.acquire();
  for (int i = 0; i < 3; ++i) {
    const std::string sql =
        "SELECT v FROM kv WHERE k = :k AND " + std::to_string(i) + " = " + std::to_string(i);
    std::string v;
    int k = i;
    ASSERT_TRUE(lease.prepared(sql).execute(soci::use(k), soci::into(v)));
  }
  EXPECT_EQ(pool.stats().statements_prepared, 3u);
  if (postgres()) {
    EXPECT_EQ(server_statements(lease), 2) << "the least recently used one is deallocated";
  }
}

TEST_P(PreparedStatementTest, StatementsGoWithTheirConnection) {
  Pool pool(config());
  {
    Lease lease = pool.acquire();
    EXPECT_EQ(read(lease, 1), "v1");
    lease.invalidate();  // closed when it comes back
  }
  Lease fresh = pool.acquire();
  EXPECT_EQ(read(fresh, 2), "v2");
  EXPECT_EQ(pool.stats().statements_prepared, 2u) << "a new connection prepares it again";
}

TEST_P(PreparedStatementTest, BehindATransactionPoolerNothingIsPreparedOnTheServer) {
  PoolConfig cfg = config();
  cfg.transaction_pooler = true;
  Pool pool(cfg);
  Lease lease = pool.acquire();
  for (int k = 0; k < 3; ++k) EXPECT_EQ(read(lease, k), "v" + std::to_string(k));
  EXPECT_EQ(pool.stats().statements_prepared, 0u);
  if (postgres()) {
    EXPECT_EQ(server_statements(lease), 0);
  }
}

class PreparedStatementPostgreSQLTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sql = db_.open_session();
    *sql << "CREATE TABLE kv (k INTEGER PRIMARY KEY, v VARCHAR(20))";
    *sql << "INSERT INTO kv (k, v) VALUES (1, 'v1')";
  }
  TestDatabase db_{TestBackend::kPostgreSQL};
};

TEST_F(PreparedStatementPostgreSQLTest,
       AStatementTheServerForgotIsPreparedAgainOutsideATransaction) {
  Pool pool(db_.config(1));
  Lease lease = pool.acquire();
  std::string v;
  int k = 1;
  ASSERT_TRUE(lease.prepared(kRead).execute(soci::use(k), soci::into(v)));
  *lease << "DEALLOCATE ALL";  // as DISCARD ALL or a proxy switching sessions would
  v.clear();
  ASSERT_TRUE(lease.prepared(kRead).execute(soci::use(k), soci::into(v)));
  EXPECT_EQ(v, "v1");
  EXPECT_EQ(pool.stats().statements_prepared, 2u);
}

TEST_F(PreparedStatementPostgreSQLTest, InsideATransactionALostStatementNamesTheSetting) {
  Pool pool(db_.config(1));
  Lease lease = pool.acquire();
  std::string v;
  int k = 1;
  ASSERT_TRUE(lease.prepared(kRead).execute(soci::use(k), soci::into(v)));
  *lease << "DEALLOCATE ALL";
  lease->begin();
  try {
    lease.prepared(kRead).execute(soci::use(k), soci::into(v));
    FAIL() << "a lost statement inside a transaction went unnoticed";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
    EXPECT_NE(message.find("PoolConfig.transaction_pooler = true"), std::string::npos) << message;
  }
  lease->rollback();
  // The connection is not poisoned: the next execute prepares it again.
  v.clear();
  ASSERT_TRUE(lease.prepared(kRead).execute(soci::use(k), soci::into(v)));
  EXPECT_EQ(v, "v1");
}

INSTANTIATE_TEST_SUITE_P(Backends, PreparedStatementTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const ::testing::TestParamInfo<TestBackend>& p) {
                           return testing::backend_name(p.param);
                         });

}  // namespace
}  // namespace poolscope
