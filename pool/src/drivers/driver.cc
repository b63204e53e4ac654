// driver_for(): the drivers this build has (POOLSCOPE_WITH_POSTGRESQL,
// POOLSCOPE_WITH_SQLITE).

#include "../driver.h"

#include "poolscope/pool/errors.h"

namespace poolscope::detail {

#if POOLSCOPE_WITH_POSTGRESQL
const Driver& postgresql_driver();
#endif
#if POOLSCOPE_WITH_SQLITE
const Driver& sqlite_driver();
#endif

const Driver& driver_for(Backend backend) {
  switch (backend) {
    case Backend::kPostgreSQL:
#if POOLSCOPE_WITH_POSTGRESQL
      return postgresql_driver();
#else
      throw BadUrl(
          "poolscope was built without PostgreSQL support (POOLSCOPE_WITH_POSTGRESQL=OFF)");
#endif
    case Backend::kSqlite:
#if POOLSCOPE_WITH_SQLITE
      return sqlite_driver();
#else
      throw BadUrl("poolscope was built without SQLite support (POOLSCOPE_WITH_SQLITE=OFF)");
#endif
  }
  throw BadUrl("unknown backend");
}

}  // namespace poolscope::detail
