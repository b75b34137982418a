// Clang's thread-safety analysis (-Wthread-safety, on in the clang builds): the lock a
// member needs is written where the compiler checks it, not only in a comment. Under
// GCC the macros expand to nothing. Use with base/mutex.h (std::mutex has no annotations
// in libstdc++).
#pragma once

#if defined(__clang__)
#define GAPLESS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define GAPLESS_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) GAPLESS_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY GAPLESS_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) GAPLESS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) GAPLESS_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) GAPLESS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) GAPLESS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) GAPLESS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) GAPLESS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) GAPLESS_THREAD_ANNOTATION(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS GAPLESS_THREAD_ANNOTATION(no_thread_safety_analysis)
