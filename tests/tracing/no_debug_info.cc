#include "no_debug_info.h"

namespace poolscope::tracing::nodebug {

[[gnu::noinline]] StackTrace capture() {
  StackTrace trace = StackTrace::capture();
  asm volatile("" ::: "memory");  // keep the frame: no tail call
  return trace;
}

[[gnu::noinline]] Lease call(Pool& pool, Lease (*inner)(Pool&)) {
  Lease lease = inner(pool);
  asm volatile("" ::: "memory");
  return lease;
}

}  // namespace poolscope::tracing::nodebug
