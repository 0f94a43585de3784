/*
 * check.h - tiny test harness shared by the C tests in tests/c/.
 *
 * Each test is a void function; checks inside it count failures (also from
 * other threads: the counter is atomic). check_main() runs the tests in
 * order, prints one line per test ("ok   name (N ms)" or "FAIL name ...",
 * followed by check_note if the test wrote one)
 * and then exactly "N passed, N failed"; its result is the exit status.
 *
 *   CHECK(cond)          count a failure, go on
 *   CHECK_EQ(got, want)  the same for two integers, printing both values
 *   REQUIRE(cond)        CHECK, and return from the test if it failed
 *   REQUIRE_EQ(got, want)
 */
#ifndef HRT_TEST_CHECK_H
#define HRT_TEST_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* failed checks within the current test (any thread) */
static _Atomic int check_failures;

/* optional note a test may fill (main thread only): ends its result line */
static char check_note[200];

/* Count a failure; true if the caller should print its details. */
static inline bool check_fail(int line)
{
	int n = atomic_fetch_add(&check_failures, 1);

	if (n < 8)
		printf("  check failed (line %d): ", line);
	return n < 8;
}

static inline bool check_true(bool ok, const char *what, int line)
{
	if (!ok && check_fail(line))
		printf("%s\n", what);
	return ok;
}

static inline bool check_eq(long long got, long long want, const char *g,
			    const char *w, int line)
{
	if (got != want && check_fail(line))
		printf("%s == %s: got %lld, want %lld\n", g, w, got, want);
	return got == want;
}

#define CHECK(cond) check_true(!!(cond), #cond, __LINE__)
#define CHECK_EQ(got, want)                                                  \
	check_eq((long long)(got), (long long)(want), #got, #want, __LINE__)

#define REQUIRE(cond)                                                        \
	do {                                                                 \
		if (!CHECK(cond))                                            \
			return;                                              \
	} while (0)

#define REQUIRE_EQ(got, want)                                                \
	do {                                                                 \
		if (!CHECK_EQ(got, want))                                    \
			return;                                              \
	} while (0)

struct check_test {
	const char *name;
	void (*fn)(void);
};

static inline int64_t check_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Run every test; print the summary line; return the exit status. */
static inline int check_main(const struct check_test *tests, size_t n)
{
	int passed = 0, failed = 0;

	/* keep output if a sanitizer kills us mid-run */
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n; i++) {
		int64_t t0 = check_mono_ns();
		int f;

		atomic_store(&check_failures, 0);
		check_note[0] = '\0';
		tests[i].fn();
		f = atomic_load(&check_failures);
		if (f) {
			printf("FAIL %s (%d checks failed)%s%s\n", tests[i].name,
			       f, check_note[0] ? " " : "", check_note);
			failed++;
		} else {
			printf("ok   %s (%lld ms)%s%s\n", tests[i].name,
			       (long long)((check_mono_ns() - t0) / 1000000),
			       check_note[0] ? " " : "", check_note);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif /* HRT_TEST_CHECK_H */
