// INVARIANT(condition): what the code itself guarantees at this point, written where a
// reader needs it and checked where assertions are on (the debug and ASan builds; release
// builds compile it out, as assert does). Only for the program's own state: never for
// bytes from a disk, a network or a configuration, which are handled, not asserted
// (a damaged file is a typed outcome, not a crash).
#pragma once

#include <cstdio>
#include <cstdlib>

#ifdef NDEBUG
#define INVARIANT(condition) static_cast<void>(sizeof(!(condition)))
#else
#define INVARIANT(condition)                                                                     \
  ((condition)                                                                                   \
       ? static_cast<void>(0)                                                                    \
       : (std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #condition), \
          std::abort()))
#endif
