/*
 * bench_core.c - C benchmark of the timer core, after libuv's
 * benchmark-million-timers: with 1,000,000 timers pending at random
 * far-future expiries, how fast are start and cancel?
 *
 * For a manual domain (no expiry threads: no thread noise) and for the real
 * default domain, each phase on its own line:
 *   core start+cancel @0 pending (<domain>)  N start + cancel pairs of one
 *                                            timer with nothing else queued
 *   core arm 1M (<domain>)                   start of 1M inactive timers
 *   core start+cancel @1M pending (<domain>) N start + cancel pairs of one
 *                                            more timer, random expiry among
 *                                            the pending ones (cache-bound)
 *   core start+cancel @1M pending, timeout (<domain>)
 *                                            the same with the expiry after
 *                                            every pending one, as a new
 *                                            network timeout would be
 *   core cancel 1M (<domain>)                cancel of the 1M pending timers
 *   core expire 1M (manual)                  re-arm them all, then one
 *                                            hrt_domain_advance runs them
 *   core expire 1M, one expiry (manual)      the same with every timer at
 *                                            one expiry (FIFO among them)
 * in millions of operations (pairs for start+cancel) per second.
 *
 * Build (no sanitizers):
 *   gcc -std=gnu11 -O2 -pthread -Icsrc benchmarks/bench_core.c csrc/[a-z]*.c \
 *       -o build/bench_core
 * Run: build/bench_core [count]   (count of timers and of pairs, default 1e6)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hrtimer.h"

#define SEC 1000000000LL

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t xorshift(void)
{
	uint64_t x = rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng = x;
	return x;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static long fired;

static int count_cb(struct hrt_timer *t, void *data)
{
	(void)t;
	(void)data;
	fired++;
	return HRT_NORESTART;
}

static int noop_cb(struct hrt_timer *t, void *data)
{
	(void)t;
	(void)data;
	return HRT_NORESTART;
}

static int errors;

static void expect(long got, long want, const char *what)
{
	if (got != want && errors++ < 5)
		fprintf(stderr, "bench_core: %s returned %ld, want %ld\n", what,
			got, want);
}

static char count_label[32];	/* "1M" for 1,000,000 */

/* "core <pre><count><post> (<domain>): X M/s" */
static void report(const char *pre, const char *post, const char *dom,
		   long ops, int64_t ns)
{
	printf("core %s%s%s (%s): %.1f M/s\n", pre, count_label, post, dom,
	       ns > 0 ? (double)ops * 1e3 / (double)ns : 0.0);
	fflush(stdout);
}

static int run(const char *name, struct hrt_domain *d, long n)
{
	struct hrt_timer **ts = malloc((size_t)n * sizeof(*ts));
	int64_t *exp = malloc((size_t)n * sizeof(*exp));
	int64_t *pair_exp = malloc((size_t)n * sizeof(*pair_exp));
	struct hrt_timer *x = hrt_timer_alloc();
	bool manual = d != hrt_default_domain();
	int64_t now, t0;

	if (!ts || !exp || !pair_exp || !x) {
		fprintf(stderr, "bench_core: out of memory\n");
		return 1;
	}
	/* far future: 1 to 2 hours from now, random (drawn before timing) */
	now = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);
	for (long i = 0; i < n; i++) {
		exp[i] = now + 3600 * SEC + (int64_t)(xorshift() % (3600 * SEC));
		pair_exp[i] = now + 3600 * SEC +
			      (int64_t)(xorshift() % (3600 * SEC));
	}
	for (long i = 0; i < n; i++) {
		ts[i] = hrt_timer_alloc();
		if (!ts[i]) {
			fprintf(stderr, "bench_core: out of memory\n");
			return 1;
		}
		expect(hrt_timer_setup(ts[i], d, HRT_CLOCK_MONOTONIC,
				       HRT_MODE_ABS | HRT_MODE_HARD, count_cb,
				       NULL, 0), 0, "setup");
	}
	expect(hrt_timer_setup(x, d, HRT_CLOCK_MONOTONIC,
			       HRT_MODE_ABS | HRT_MODE_HARD, noop_cb, NULL, 0),
	       0, "setup");

	t0 = mono_ns();
	for (long i = 0; i < n; i++) {
		expect(hrt_timer_start_range(x, pair_exp[i], 0), 1, "start");
		expect(hrt_timer_cancel(x), 1, "cancel");
	}
	printf("core start+cancel @0 pending (%s): %.1f M/s\n", name,
	       (double)n * 1e3 / (double)(mono_ns() - t0));

	t0 = mono_ns();
	for (long i = 0; i < n; i++)
		expect(hrt_timer_start_range(ts[i], exp[i], 0), 1, "start");
	report("arm ", "", name, n, mono_ns() - t0);

	t0 = mono_ns();
	for (long i = 0; i < n; i++) {
		expect(hrt_timer_start_range(x, pair_exp[i], 0), 1, "start");
		expect(hrt_timer_cancel(x), 1, "cancel");
	}
	report("start+cancel @", " pending", name, n, mono_ns() - t0);

	t0 = mono_ns();
	for (long i = 0; i < n; i++) {
		expect(hrt_timer_start_range(x, pair_exp[i] + 3600 * SEC, 0), 1, "start");
		expect(hrt_timer_cancel(x), 1, "cancel");
	}
	report("start+cancel @", " pending, timeout", name, n, mono_ns() - t0);

	t0 = mono_ns();
	for (long i = 0; i < n; i++)
		expect(hrt_timer_cancel(ts[i]), 1, "cancel");
	report("cancel ", "", name, n, mono_ns() - t0);

	if (manual) {
		/* fire them all: one advance past the last expiry */
		for (long i = 0; i < n; i++)
			expect(hrt_timer_start_range(ts[i], exp[i], 0), 1, "start");
		fired = 0;
		t0 = mono_ns();
		expect((long)hrt_domain_advance(d, 7200 * SEC), n, "advance");
		report("expire ", "", name, n, mono_ns() - t0);
		expect(fired, n, "callbacks run");

		now = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);
		for (long i = 0; i < n; i++)
			expect(hrt_timer_start_range(ts[i], now + SEC, 0), 1, "start");
		fired = 0;
		t0 = mono_ns();
		expect((long)hrt_domain_advance(d, SEC), n, "advance");
		report("expire ", ", one expiry", name, n, mono_ns() - t0);
		expect(fired, n, "callbacks run");
	}

	for (long i = 0; i < n; i++)
		hrt_timer_free(ts[i]);
	hrt_timer_free(x);
	free(ts);
	free(exp);
	free(pair_exp);
	return 0;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
	struct hrt_domain *d;
	int rc;

	if (n <= 0) {
		fprintf(stderr, "usage: %s [count]\n", argv[0]);
		return 2;
	}
	if (n % 1000000 == 0)
		snprintf(count_label, sizeof(count_label), "%ldM", n / 1000000);
	else if (n % 1000 == 0)
		snprintf(count_label, sizeof(count_label), "%ldk", n / 1000);
	else
		snprintf(count_label, sizeof(count_label), "%ld", n);
	rc = hrt_domain_new_manual(&d, SEC);
	if (rc) {
		fprintf(stderr, "bench_core: hrt_domain_new_manual: %d\n", rc);
		return 1;
	}
	rc = run("manual", d, n);
	if (!rc)
		rc = hrt_domain_free(d) ? 1 : 0;
	if (!rc)
		rc = run("real", hrt_default_domain(), n);
	if (errors) {
		fprintf(stderr, "bench_core: %d unexpected results\n", errors);
		rc = 1;
	}
	return rc;
}
