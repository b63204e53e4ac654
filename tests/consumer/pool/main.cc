// Uses poolscope the way the README shows: acquire a lease, run SOCI on it.
#include <poolscope/pool/pool.h>
#include <soci/soci.h>

#include <cstdio>

int main() {
  poolscope::Pool pool({.url = "sqlite://:memory:", .pool_size = 1, .max_overflow = 0});
  int answer = 0;
  {
    poolscope::Lease sql = pool.acquire();
    *sql << "SELECT 6 * 7", soci::into(answer);
  }
  std::printf("answer=%d acquires=%llu\n", answer,
              static_cast<unsigned long long>(pool.stats().acquires));
  return answer == 42 && pool.stats().acquires == 1 ? 0 : 1;
}
