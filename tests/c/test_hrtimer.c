/*
 * test_hrtimer.c - tests of the timer core (csrc/hrtimer.c, csrc/expiry.c)
 * against Linux hrtimer semantics.
 *
 * Deterministic tests run on a manual domain (hrt_domain_new_manual +
 * hrt_domain_advance: callbacks run in this thread). Tests named real_*
 * use hrt_default_domain() and its expiry threads.
 *
 * Build (as `make ctest` does):
 *   gcc -std=gnu11 -Wall -Wextra -Werror -g -O1 -pthread -Icsrc \
 *       -fsanitize=address,undefined -fno-sanitize-recover=all \
 *       tests/c/test_hrtimer.c csrc/[a-z]*.c -o build/c/test_hrtimer.asan
 * and again with -fsanitize=thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hrtimer.h"
#include "hrt_internal.h" /* white box: tq_check() of the clock bases */

#define T0 1000000000LL	/* start of every manual domain: 1 s */
#define MS 1000000LL
#define SEC 1000000000LL

/* ---- helpers ---- */

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / SEC, .tv_nsec = ns % SEC };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Poll (0.25 ms steps) until *flag >= want or timeout; true if reached. */
static bool wait_for(_Atomic int *flag, int want, int64_t timeout_ns)
{
	int64_t end = check_mono_ns() + timeout_ns;

	while (atomic_load(flag) < want) {
		if (check_mono_ns() > end)
			return false;
		sleep_ns(MS / 4);
	}
	return true;
}

static struct hrt_domain *manual_domain(void)
{
	struct hrt_domain *d = NULL;

	if (!CHECK_EQ(hrt_domain_new_manual(&d, T0), 0))
		return NULL;
	return d;
}

/* Every queue of the domain passes tq_check (single-threaded use only). */
static bool queues_ok(struct hrt_domain *d)
{
	for (int h = 0; h < HRT_NCTX; h++)
		for (int i = 0; i < HRT_NCLOCKS; i++)
			if (tq_check(&d->ctx[h].clock_base[i].queue) != 0)
				return false;
	return true;
}

/* Number of timers queued in the domain (single-threaded use only). */
static size_t queued_count(struct hrt_domain *d)
{
	size_t n = 0;

	for (int h = 0; h < HRT_NCTX; h++)
		for (int i = 0; i < HRT_NCLOCKS; i++)
			n += d->ctx[h].clock_base[i].queue.count;
	return n;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static struct hrt_timer *new_timer(struct hrt_domain *d, int clock, int mode,
				   hrt_callback_t fn, void *data)
{
	struct hrt_timer *t = hrt_timer_alloc();

	if (!CHECK(t != NULL))
		return NULL;
	if (!CHECK_EQ(hrt_timer_setup(t, d, clock, mode, fn, data, 0), 0)) {
		hrt_timer_free(t);
		return NULL;
	}
	return t;
}

/*
 * A recording timer for manual domains: each firing appends its id to the
 * firing log and notes the callback's now.
 */
struct rec {
	struct hrt_timer *t;
	int id;
	uint64_t seq;		/* order of its (last) start */
	_Atomic int fires;
	int64_t cb_now;		/* hrt_timer_cb_now() at the last firing */
	int64_t soft_at_fire;	/* soft expiry seen by the last firing */
	int ret;		/* what the callback returns */
};

#define LOG_MAX 4096
static int fire_log[LOG_MAX];
static int fire_log_n;

static void log_reset(void)
{
	fire_log_n = 0;
}

static int rec_cb(struct hrt_timer *t, void *data)
{
	struct rec *r = data;

	CHECK(t == r->t);
	if (fire_log_n < LOG_MAX)
		fire_log[fire_log_n++] = r->id;
	atomic_fetch_add(&r->fires, 1);
	r->cb_now = hrt_timer_cb_now(t);
	r->soft_at_fire = hrt_timer_get_softexpires(t);
	/* never early: the timer fires once now >= its soft expiry */
	CHECK(r->cb_now >= r->soft_at_fire);
	return r->ret;
}

static void rec_init(struct rec *r, struct hrt_domain *d, int id, int clock,
		     int mode)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->ret = HRT_NORESTART;
	r->t = new_timer(d, clock, mode, rec_cb, r);
}

/* ---- setup and argument errors ---- */

static int noop_cb(struct hrt_timer *t, void *data)
{
	(void)t;
	(void)data;
	return HRT_NORESTART;
}

static void test_setup_errors(void)
{
	struct hrt_domain *d = manual_domain();
	struct hrt_timer *t = hrt_timer_alloc();
	struct hrt_stats st;

	REQUIRE(d && t);
	/* not set up yet */
	CHECK_EQ(hrt_timer_start_range(t, 100, 0), -EINVAL);
	CHECK_EQ(hrt_timer_restart(t), -EINVAL);
	CHECK_EQ(hrt_timer_try_to_cancel(t), 0);
	CHECK_EQ(hrt_timer_cancel(t), 0);
	CHECK_EQ(hrt_timer_forward(t, 100, 10), -EINVAL);
	CHECK_EQ(hrt_timer_is_active(t), 0);

	/* unknown clocks */
	CHECK_EQ(hrt_timer_setup(t, d, 2, HRT_MODE_ABS, noop_cb, NULL, 0), -EINVAL);
	CHECK_EQ(hrt_timer_setup(t, d, 3, HRT_MODE_ABS, noop_cb, NULL, 0), -EINVAL);
	CHECK_EQ(hrt_timer_setup(t, d, -1, HRT_MODE_ABS, noop_cb, NULL, 0), -EINVAL);
	CHECK_EQ(hrt_timer_setup(t, d, 99, HRT_MODE_ABS, noop_cb, NULL, 0), -EINVAL);
	/* contradictory / unknown mode bits */
	CHECK_EQ(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC,
				 HRT_MODE_SOFT | HRT_MODE_HARD, noop_cb, NULL, 0),
		 -EINVAL);
	CHECK_EQ(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC,
				 HRT_MODE_REL | HRT_MODE_SOFT | HRT_MODE_HARD,
				 noop_cb, NULL, 0), -EINVAL);
	CHECK_EQ(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC, 16, noop_cb, NULL, 0),
		 -EINVAL);
	/* no per-CPU bases */
	CHECK_EQ(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC, HRT_MODE_PINNED,
				 noop_cb, NULL, 0), -EOPNOTSUPP);
	CHECK_EQ(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC,
				 HRT_MODE_REL | HRT_MODE_PINNED | HRT_MODE_HARD,
				 noop_cb, NULL, 0), -EOPNOTSUPP);
	/* no callback, unknown flags, hosted without a host */
	CHECK_EQ(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS, NULL,
				 NULL, 0), -EINVAL);
	CHECK_EQ(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS,
				 noop_cb, NULL, 2), -EINVAL);
	CHECK_EQ(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS,
				 noop_cb, NULL, HRT_F_HOSTED), -EINVAL);
	/* the failed setups left it unusable */
	CHECK_EQ(hrt_timer_start_range(t, 100, 0), -EINVAL);

	/* a good setup; negative slack */
	REQUIRE_EQ(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS,
				   noop_cb, NULL, 0), 0);
	CHECK_EQ(hrt_timer_clock(t), HRT_CLOCK_MONOTONIC);
	CHECK_EQ(hrt_timer_mode(t), HRT_MODE_ABS);
	CHECK_EQ(hrt_timer_start_range(t, T0 + 100, -1), -EINVAL);
	CHECK_EQ(hrt_timer_is_active(t), 0);
	CHECK_EQ(hrt_timer_forward(t, T0, 0), -EINVAL);
	CHECK_EQ(hrt_timer_forward(t, T0, -5), -EINVAL);
	CHECK_EQ(hrt_timer_forward_now(t, INT64_MIN), -EINVAL);

	/* setup of an active timer */
	CHECK_EQ(hrt_timer_start_range(t, T0 + 100, 0), 1);
	CHECK_EQ(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS,
				 noop_cb, NULL, 0), -EBUSY);
	CHECK_EQ(hrt_timer_setup(t, d, HRT_CLOCK_TAI, HRT_MODE_SOFT, noop_cb,
				 NULL, 0), -EBUSY);
	CHECK_EQ(hrt_timer_is_queued(t), 1);
	CHECK_EQ(hrt_timer_get_expires(t), T0 + 100); /* unchanged */
	CHECK_EQ(hrt_timer_cancel(t), 1);

	/* clocks: a relative REALTIME timer lands on MONOTONIC */
	struct {
		int clock, mode, want;
	} cl[] = {
		{ HRT_CLOCK_REALTIME, HRT_MODE_REL, HRT_CLOCK_MONOTONIC },
		{ HRT_CLOCK_REALTIME, HRT_MODE_REL | HRT_MODE_HARD,
		  HRT_CLOCK_MONOTONIC },
		{ HRT_CLOCK_REALTIME, HRT_MODE_REL | HRT_MODE_SOFT,
		  HRT_CLOCK_MONOTONIC },
		{ HRT_CLOCK_REALTIME, HRT_MODE_ABS, HRT_CLOCK_REALTIME },
		{ HRT_CLOCK_REALTIME, HRT_MODE_HARD, HRT_CLOCK_REALTIME },
		{ HRT_CLOCK_MONOTONIC, HRT_MODE_REL, HRT_CLOCK_MONOTONIC },
		{ HRT_CLOCK_BOOTTIME, HRT_MODE_REL, HRT_CLOCK_BOOTTIME },
		{ HRT_CLOCK_TAI, HRT_MODE_REL, HRT_CLOCK_TAI },
		{ HRT_CLOCK_TAI, HRT_MODE_ABS | HRT_MODE_SOFT, HRT_CLOCK_TAI },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cl); i++) {
		CHECK_EQ(hrt_timer_setup(t, d, cl[i].clock, cl[i].mode, noop_cb,
					 NULL, 0), 0);
		CHECK_EQ(hrt_timer_clock(t), cl[i].want);
		CHECK_EQ(hrt_timer_mode(t), cl[i].mode);
	}

	/* domain-level argument errors */
	struct hrt_domain *bad = NULL;

	CHECK_EQ(hrt_domain_new_manual(&bad, -1), -EINVAL);
	CHECK_EQ(hrt_domain_new_manual(NULL, 0), -EINVAL);
	CHECK_EQ(hrt_domain_now(d, 2), 0);	/* a time getter: 0, never an errno */
	CHECK_EQ(hrt_domain_now(d, 99), 0);
	CHECK_EQ(hrt_domain_stats(d, 2, &st), -EINVAL);
	CHECK_EQ(hrt_domain_stats(d, 1, NULL), -EINVAL);
	CHECK_EQ(hrt_domain_stats(d, 0, &st), 0);
	CHECK_EQ(hrt_domain_advance(d, -1), -EINVAL);
	CHECK_EQ(hrt_domain_advance(hrt_default_domain(), 1), -EINVAL);
	CHECK_EQ(hrt_domain_advance(NULL, 1), -EINVAL);
	CHECK_EQ(hrt_domain_free(hrt_default_domain()), -EINVAL);
	CHECK_EQ(hrt_domain_free(NULL), -EINVAL);
	CHECK_EQ(hrt_now(2), 0);
	CHECK(hrt_timer_size() >= sizeof(struct tq_node));

	hrt_timer_free(t);
	hrt_timer_free(NULL);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- start: return values, ABS / REL, clocks of a manual domain ---- */

static void test_start_abs_rel(void)
{
	struct hrt_domain *d = manual_domain();
	struct rec rel, abs_, past;

	REQUIRE(d);
	for (int c = 0; c < 4; c++) {
		static const int clocks[] = { HRT_CLOCK_REALTIME,
			HRT_CLOCK_MONOTONIC, HRT_CLOCK_BOOTTIME, HRT_CLOCK_TAI };

		CHECK_EQ(hrt_domain_now(d, clocks[c]), T0);
	}
	rec_init(&rel, d, 1, HRT_CLOCK_MONOTONIC, HRT_MODE_REL);
	rec_init(&abs_, d, 2, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS);
	rec_init(&past, d, 3, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS | HRT_MODE_SOFT);
	REQUIRE(rel.t && abs_.t && past.t);
	CHECK_EQ(hrt_timer_now(rel.t), T0);

	/* REL adds the domain's now; start activates (1), re-start does not */
	CHECK_EQ(hrt_timer_start_range(rel.t, 500, 0), 1);
	CHECK_EQ(hrt_timer_get_softexpires(rel.t), T0 + 500);
	CHECK_EQ(hrt_timer_get_expires(rel.t), T0 + 500);
	CHECK_EQ(hrt_timer_start_range(rel.t, 700, 0), 0);
	CHECK_EQ(hrt_timer_get_expires(rel.t), T0 + 700);
	CHECK_EQ(hrt_timer_get_remaining(rel.t), 700);
	CHECK_EQ(hrt_timer_is_active(rel.t), 1);
	CHECK_EQ(hrt_timer_is_queued(rel.t), 1);
	CHECK_EQ(hrt_timer_callback_running(rel.t), 0);

	/* ABS is taken as is */
	CHECK_EQ(hrt_timer_start_range(abs_.t, T0 + 300, 0), 1);
	CHECK_EQ(hrt_timer_get_softexpires(abs_.t), T0 + 300);
	CHECK_EQ(hrt_timer_get_expires(abs_.t), T0 + 300);
	CHECK(queues_ok(d));
	CHECK_EQ(queued_count(d), 2);

	CHECK_EQ(hrt_domain_advance(d, 299), 0);
	CHECK_EQ(hrt_domain_advance(d, 1), 1);
	CHECK_EQ(atomic_load(&abs_.fires), 1);
	CHECK_EQ(abs_.cb_now, T0 + 300);
	CHECK_EQ(hrt_timer_is_active(abs_.t), 0);
	CHECK_EQ(hrt_timer_get_remaining(rel.t), 400);
	CHECK_EQ(hrt_domain_advance(d, 399), 0);
	CHECK_EQ(hrt_domain_advance(d, 1), 1);
	CHECK_EQ(atomic_load(&rel.fires), 1);
	CHECK_EQ(rel.cb_now, T0 + 700);
	CHECK_EQ(hrt_timer_is_active(rel.t), 0);
	CHECK_EQ(hrt_timer_get_remaining(rel.t), 0);

	/* after firing, start activates again; REL is from the new now */
	CHECK_EQ(hrt_timer_start_range(rel.t, 10, 0), 1);
	CHECK_EQ(hrt_timer_get_expires(rel.t), T0 + 710);

	/* an ABS expiry in the past fires at the next run */
	CHECK_EQ(hrt_timer_start_range(past.t, T0, 0), 1);
	CHECK_EQ(hrt_timer_get_remaining(past.t), -700);
	CHECK_EQ(hrt_domain_advance(d, 0), 1);
	CHECK_EQ(atomic_load(&past.fires), 1);
	CHECK_EQ(hrt_domain_advance(d, 10), 1);
	CHECK_EQ(atomic_load(&rel.fires), 2);

	/* hrt_timer_restart re-arms at the stored expiry (absolute) */
	CHECK_EQ(hrt_timer_restart(rel.t), 1);
	CHECK_EQ(hrt_timer_get_expires(rel.t), T0 + 710);
	CHECK_EQ(hrt_timer_restart(rel.t), 0);
	CHECK_EQ(queued_count(d), 1);
	CHECK_EQ(hrt_domain_advance(d, 0), 1);
	CHECK_EQ(atomic_load(&rel.fires), 3);
	CHECK_EQ(queued_count(d), 0);

	hrt_timer_free(rel.t);
	hrt_timer_free(abs_.t);
	hrt_timer_free(past.t);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- slack: soft and hard expiry ---- */

static void test_slack(void)
{
	struct hrt_domain *d = manual_domain();
	struct rec a, b, c;

	REQUIRE(d);
	rec_init(&a, d, 1, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS);
	rec_init(&b, d, 2, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS);
	rec_init(&c, d, 3, HRT_CLOCK_MONOTONIC, HRT_MODE_REL);
	REQUIRE(a.t && b.t && c.t);

	CHECK_EQ(hrt_timer_start_range(a.t, T0 + 1000, 300), 1);
	CHECK_EQ(hrt_timer_get_softexpires(a.t), T0 + 1000);
	CHECK_EQ(hrt_timer_get_expires(a.t), T0 + 1300);
	CHECK_EQ(hrt_timer_get_remaining(a.t), 1300); /* hard - now */
	CHECK_EQ(hrt_timer_start_range(c.t, 100, 50), 1);
	CHECK_EQ(hrt_timer_get_softexpires(c.t), T0 + 100);
	CHECK_EQ(hrt_timer_get_expires(c.t), T0 + 150);
	CHECK_EQ(hrt_timer_cancel(c.t), 1);

	/* fires as soon as now >= soft expiry, not at the hard one */
	CHECK_EQ(hrt_domain_advance(d, 999), 0);
	CHECK_EQ(hrt_domain_advance(d, 1), 1);
	CHECK_EQ(atomic_load(&a.fires), 1);
	CHECK_EQ(a.cb_now, T0 + 1000);

	/*
	 * Coalescing: a (soft +100, hard +200) sorts after b (soft = hard =
	 * +150); when b is due, a is due too and runs in the same pass.
	 */
	int64_t now = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);

	log_reset();
	CHECK_EQ(hrt_timer_start_range(a.t, now + 100, 100), 1);
	CHECK_EQ(hrt_timer_start_range(b.t, now + 150, 0), 1);
	CHECK_EQ(hrt_domain_advance(d, 149), 0);
	CHECK_EQ(hrt_domain_advance(d, 1), 2);
	CHECK_EQ(fire_log_n, 2);
	CHECK_EQ(fire_log[0], 2);
	CHECK_EQ(fire_log[1], 1);
	CHECK_EQ(a.soft_at_fire, now + 100);
	CHECK_EQ(hrt_timer_get_expires(a.t), now + 200);

	/* slack 0 on both sides of an equal soft expiry */
	now = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);
	CHECK_EQ(hrt_timer_start_range(a.t, now + 10, 0), 1);
	CHECK_EQ(hrt_timer_get_expires(a.t), hrt_timer_get_softexpires(a.t));

	hrt_timer_free(a.t);
	hrt_timer_free(b.t);
	hrt_timer_free(c.t);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- the next expiry of a manual domain ---- */

static void test_next_expiry(void)
{
	struct hrt_domain *d = manual_domain();
	struct rec a, b, c;
	int64_t next = 0;

	REQUIRE(d);
	CHECK_EQ(hrt_domain_next_expiry(d, INT64_MIN, NULL), -EINVAL);
	CHECK_EQ(hrt_domain_next_expiry(NULL, INT64_MIN, &next), -EINVAL);
	CHECK_EQ(hrt_domain_next_expiry(hrt_default_domain(), INT64_MIN, &next), -EINVAL);
	CHECK_EQ(hrt_domain_next_expiry(d, INT64_MIN, &next), 0);
	CHECK_EQ(next, INT64_MAX); /* nothing queued */

	rec_init(&a, d, 1, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS);
	rec_init(&b, d, 2, HRT_CLOCK_REALTIME, HRT_MODE_ABS);
	rec_init(&c, d, 3, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD);
	REQUIRE(a.t && b.t && c.t);

	/* the hard expiry (soft + slack) counts, across contexts and clocks */
	CHECK_EQ(hrt_timer_start_range(a.t, T0 + 1000, 300), 1);
	CHECK_EQ(hrt_domain_next_expiry(d, INT64_MIN, &next), 0);
	CHECK_EQ(next, T0 + 1300);
	CHECK_EQ(hrt_timer_start_range(c.t, 1200, 0), 1); /* HARD context */
	CHECK_EQ(hrt_domain_next_expiry(d, INT64_MIN, &next), 0);
	CHECK_EQ(next, T0 + 1200);
	/* REALTIME reads MONOTONIC + shift: its expiry comes back unshifted */
	CHECK_EQ(hrt_domain_shift_realtime(d, 5000), 0);
	CHECK_EQ(hrt_timer_start_range(b.t, T0 + 5000 + 700, 0), 1);
	CHECK_EQ(hrt_domain_next_expiry(d, INT64_MIN, &next), 0);
	CHECK_EQ(next, T0 + 700);

	/*
	 * Stepping to each next expiry: b at +700; then c at +1200, and with it
	 * a, whose soft expiry (+1000) has passed by then, as a real base's
	 * wake-up for c would run it.
	 */
	log_reset();
	for (int i = 0; i < 2; i++) {
		int64_t now = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);

		CHECK_EQ(hrt_domain_next_expiry(d, INT64_MIN, &next), 0);
		CHECK_EQ(hrt_domain_advance(d, next - now), i + 1);
	}
	CHECK_EQ(fire_log_n, 3);
	CHECK_EQ(fire_log[0], 2);
	CHECK_EQ(fire_log[1], 3);
	CHECK_EQ(fire_log[2], 1);
	CHECK_EQ(b.cb_now, T0 + 5000 + 700);
	CHECK_EQ(a.cb_now, T0 + 1200);
	CHECK_EQ(hrt_domain_next_expiry(d, INT64_MIN, &next), 0);
	CHECK_EQ(next, INT64_MAX);

	/* `after` skips what is due at or before it, per clock base */
	CHECK_EQ(hrt_timer_start_range(a.t, T0 + 1200, 0), 1);   /* due now */
	CHECK_EQ(hrt_timer_start_range(c.t, 300, 0), 1);         /* +1500 */
	CHECK_EQ(hrt_timer_start_range(b.t, T0 + 5000 + 1400, 0), 1);
	CHECK_EQ(hrt_domain_next_expiry(d, INT64_MIN, &next), 0);
	CHECK_EQ(next, T0 + 1200);
	CHECK_EQ(hrt_domain_next_expiry(d, T0 + 1200, &next), 0);
	CHECK_EQ(next, T0 + 1400);
	CHECK_EQ(hrt_domain_next_expiry(d, T0 + 1400, &next), 0);
	CHECK_EQ(next, T0 + 1500);
	CHECK_EQ(hrt_domain_next_expiry(d, T0 + 1500, &next), 0);
	CHECK_EQ(next, INT64_MAX);
	hrt_timer_cancel(a.t);
	hrt_timer_cancel(b.t);
	hrt_timer_cancel(c.t);

	hrt_timer_free(a.t);
	hrt_timer_free(b.t);
	hrt_timer_free(c.t);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- saturation at INT64_MAX ---- */

static void test_saturation(void)
{
	struct hrt_domain *d = manual_domain();
	struct rec a, r;

	REQUIRE(d);
	rec_init(&a, d, 1, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS);
	rec_init(&r, d, 2, HRT_CLOCK_MONOTONIC, HRT_MODE_REL);
	REQUIRE(a.t && r.t);

	CHECK_EQ(hrt_timer_start_range(a.t, INT64_MAX - 5, 100), 1);
	CHECK_EQ(hrt_timer_get_softexpires(a.t), INT64_MAX - 5);
	CHECK_EQ(hrt_timer_get_expires(a.t), INT64_MAX);
	CHECK_EQ(hrt_timer_get_remaining(a.t), INT64_MAX - T0);
	CHECK_EQ(hrt_timer_start_range(a.t, 0, INT64_MAX), 0);
	CHECK_EQ(hrt_timer_get_softexpires(a.t), 0);
	CHECK_EQ(hrt_timer_get_expires(a.t), INT64_MAX);
	CHECK_EQ(hrt_timer_start_range(a.t, INT64_MAX, INT64_MAX), 0);
	CHECK_EQ(hrt_timer_get_softexpires(a.t), INT64_MAX);
	CHECK_EQ(hrt_timer_get_expires(a.t), INT64_MAX);

	CHECK_EQ(hrt_timer_start_range(r.t, INT64_MAX, 0), 1);
	CHECK_EQ(hrt_timer_get_softexpires(r.t), INT64_MAX);
	CHECK_EQ(hrt_timer_get_expires(r.t), INT64_MAX);
	CHECK_EQ(hrt_timer_start_range(r.t, INT64_MAX - T0 - 10, 1000), 0);
	CHECK_EQ(hrt_timer_get_softexpires(r.t), INT64_MAX - 10);
	CHECK_EQ(hrt_timer_get_expires(r.t), INT64_MAX);
	CHECK(queues_ok(d));

	/*
	 * Infinite slack still fires at the soft expiry, once it is the
	 * first by hard expiry: behind r (equal hard expiry, queued first,
	 * soft not due) it waits, as in the kernel.
	 */
	CHECK_EQ(hrt_timer_start_range(a.t, T0 + 5, INT64_MAX), 0);
	CHECK_EQ(hrt_timer_get_expires(a.t), INT64_MAX);
	CHECK_EQ(hrt_domain_advance(d, 5), 0);
	CHECK_EQ(hrt_timer_cancel(r.t), 1);
	CHECK_EQ(hrt_domain_advance(d, 0), 1);
	CHECK_EQ(atomic_load(&a.fires), 1);
	CHECK_EQ(hrt_timer_start_range(r.t, INT64_MAX - T0 - 10, 1000), 1);

	/* the clock saturates too; everything at INT64_MAX is then due */
	CHECK_EQ(hrt_timer_start_range(a.t, INT64_MAX, 0), 1);
	CHECK_EQ(hrt_domain_advance(d, INT64_MAX), 2);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_MONOTONIC), INT64_MAX);
	CHECK_EQ(hrt_domain_advance(d, 1), 0);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_MONOTONIC), INT64_MAX);
	CHECK_EQ(atomic_load(&a.fires), 2);
	CHECK_EQ(atomic_load(&r.fires), 1);
	CHECK_EQ(hrt_timer_start_range(r.t, 1, 1), 1);
	CHECK_EQ(hrt_timer_get_expires(r.t), INT64_MAX);
	CHECK_EQ(hrt_timer_cancel(r.t), 1);

	hrt_timer_free(a.t);
	hrt_timer_free(r.t);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- queue order and stability ---- */

#define NORDER 300

static void test_queue_order(void)
{
	struct hrt_domain *d = manual_domain();
	static struct rec rs[NORDER];
	int64_t exp[NORDER];
	uint64_t seq = 0;

	REQUIRE(d);
	for (int pass = 0; pass < 2; pass++) {
		int64_t base = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);
		int64_t step = pass == 0 ? 10000 : 7;

		for (int i = 0; i < NORDER; i++) {
			if (pass == 0)
				rec_init(&rs[i], d, i, HRT_CLOCK_MONOTONIC,
					 HRT_MODE_ABS | HRT_MODE_HARD);
			REQUIRE(rs[i].t);
			/* 40 distinct expiries: many equal ones */
			exp[i] = base + 1000 + (int64_t)(xorshift(&rng) % 40) * 10;
			CHECK_EQ(hrt_timer_start_range(rs[i].t, exp[i], 0), 1);
			rs[i].seq = seq++;
		}
		/* re-starting a queued timer moves it behind its equals */
		for (int i = 0; i < NORDER; i += 7) {
			CHECK_EQ(hrt_timer_start_range(rs[i].t, exp[i], 0), 0);
			rs[i].seq = seq++;
		}
		/* ... and re-starting at a new time moves it there */
		for (int i = 3; i < NORDER; i += 11) {
			exp[i] = base + 1000 + (int64_t)(xorshift(&rng) % 40) * 10;
			CHECK_EQ(hrt_timer_start_range(rs[i].t, exp[i], 0), 0);
			rs[i].seq = seq++;
		}
		REQUIRE(queues_ok(d));
		REQUIRE_EQ(queued_count(d), NORDER);

		log_reset();
		int64_t ran = 0;

		/* pass 0: one big advance; pass 1: small steps */
		while (ran < NORDER &&
		       hrt_domain_now(d, HRT_CLOCK_MONOTONIC) < base + 2000) {
			int64_t n = hrt_domain_advance(d, step);

			REQUIRE(n >= 0);
			ran += n;
		}
		REQUIRE_EQ(ran, NORDER);
		REQUIRE_EQ(fire_log_n, NORDER);
		for (int k = 1; k < NORDER; k++) {
			struct rec *p = &rs[fire_log[k - 1]];
			struct rec *q = &rs[fire_log[k]];
			int64_t ep = exp[p->id], eq = exp[q->id];

			if (!CHECK(ep < eq || (ep == eq && p->seq < q->seq)))
				break;
		}
		for (int i = 0; i < NORDER; i++) {
			CHECK_EQ(atomic_load(&rs[i].fires), pass + 1);
			CHECK(rs[i].cb_now >= exp[i]);
			CHECK(rs[i].cb_now - exp[i] < step);
		}
		CHECK_EQ(queued_count(d), 0);
	}
	for (int i = 0; i < NORDER; i++)
		hrt_timer_free(rs[i].t);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* re-start of a queued timer moves it: it fires once, at the new time */
static void test_restart_moves(void)
{
	struct hrt_domain *d = manual_domain();
	struct rec a;

	REQUIRE(d);
	rec_init(&a, d, 1, HRT_CLOCK_MONOTONIC, HRT_MODE_REL);
	REQUIRE(a.t);
	CHECK_EQ(hrt_timer_start_range(a.t, 100, 0), 1);
	CHECK_EQ(hrt_timer_start_range(a.t, 50, 0), 0);	/* earlier */
	CHECK_EQ(queued_count(d), 1);
	CHECK_EQ(hrt_domain_advance(d, 49), 0);
	CHECK_EQ(hrt_domain_advance(d, 1), 1);
	CHECK_EQ(hrt_domain_advance(d, 100), 0);
	CHECK_EQ(atomic_load(&a.fires), 1);

	CHECK_EQ(hrt_timer_start_range(a.t, 100, 0), 1);
	CHECK_EQ(hrt_timer_start_range(a.t, 500, 0), 0);	/* later */
	CHECK_EQ(queued_count(d), 1);
	CHECK_EQ(hrt_domain_advance(d, 100), 0);
	CHECK_EQ(hrt_domain_advance(d, 399), 0);
	CHECK_EQ(hrt_domain_advance(d, 1), 1);
	CHECK_EQ(hrt_domain_advance(d, 1000), 0);
	CHECK_EQ(atomic_load(&a.fires), 2);
	CHECK_EQ(a.cb_now, T0 + 650);

	hrt_timer_free(a.t);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- try_to_cancel and cancel from the timer's own callback ---- */

enum self_op {
	SELF_TRY,		/* try_to_cancel -> -1, NORESTART */
	SELF_CANCEL_RESTART,	/* cancel -> 0, then RESTART: not re-queued */
	SELF_START_CANCEL,	/* start -> 0, cancel -> 1, RESTART: gone */
	SELF_CANCEL_START,	/* cancel -> 0, start -> 0, RESTART: queued once */
	SELF_ADVANCE,		/* hrt_domain_advance from a callback -> -EBUSY */
};

struct self {
	struct hrt_timer *t;
	struct hrt_domain *d;
	enum self_op op;
	int r[4];
	_Atomic int fires;
};

static int self_cb(struct hrt_timer *t, void *data)
{
	struct self *s = data;
	int64_t now = hrt_timer_cb_now(t);

	atomic_fetch_add(&s->fires, 1);
	s->r[2] = hrt_timer_callback_running(t);
	s->r[3] = hrt_timer_is_active(t) * 10 + hrt_timer_is_queued(t);
	switch (s->op) {
	case SELF_TRY:
		s->r[0] = hrt_timer_try_to_cancel(t);
		return HRT_NORESTART;
	case SELF_CANCEL_RESTART:
		s->r[0] = hrt_timer_cancel(t);
		/* legal: not queued, own callback; a bad re-queue would then
		 * land in the future instead of looping in this advance */
		s->r[1] = (int)hrt_timer_forward_now(t, 100);
		return HRT_RESTART;
	case SELF_START_CANCEL:
		s->r[0] = hrt_timer_start_range(t, now + 100, 0);
		s->r[1] = hrt_timer_cancel(t);
		return HRT_RESTART;
	case SELF_CANCEL_START:
		s->r[0] = hrt_timer_cancel(t);
		s->r[1] = hrt_timer_start_range(t, now + 100, 0);
		return HRT_RESTART;
	case SELF_ADVANCE:
		s->r[0] = (int)hrt_domain_advance(s->d, 1);
		return HRT_NORESTART;
	}
	return HRT_NORESTART;
}

static void test_try_to_cancel(void)
{
	struct hrt_domain *d = manual_domain();
	struct self s = { .d = d, .op = SELF_TRY };

	REQUIRE(d);
	s.t = new_timer(d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS, self_cb, &s);
	REQUIRE(s.t);
	CHECK_EQ(hrt_timer_try_to_cancel(s.t), 0);	/* inactive */
	CHECK_EQ(hrt_timer_start_range(s.t, T0 + 10, 0), 1);
	CHECK_EQ(hrt_timer_try_to_cancel(s.t), 1);	/* queued */
	CHECK_EQ(hrt_timer_is_active(s.t), 0);
	CHECK_EQ(hrt_timer_try_to_cancel(s.t), 0);
	CHECK_EQ(hrt_domain_advance(d, 100), 0);	/* really gone */
	CHECK_EQ(atomic_load(&s.fires), 0);

	/* from its own callback: -1, nothing done */
	CHECK_EQ(hrt_timer_start_range(s.t, T0 + 200, 0), 1);
	CHECK_EQ(hrt_domain_advance(d, 100), 1);
	CHECK_EQ(atomic_load(&s.fires), 1);
	CHECK_EQ(s.r[0], -1);
	CHECK_EQ(s.r[2], 1);	/* callback_running inside */
	CHECK_EQ(s.r[3], 10);	/* active, not queued */
	CHECK_EQ(hrt_timer_is_active(s.t), 0);
	CHECK_EQ(hrt_timer_callback_running(s.t), 0);

	/* advance from a callback of the domain */
	s.op = SELF_ADVANCE;
	CHECK_EQ(hrt_timer_start_range(s.t, T0 + 300, 0), 1);
	CHECK_EQ(hrt_domain_advance(d, 100), 1);
	CHECK_EQ(s.r[0], -EBUSY);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_MONOTONIC), T0 + 300);

	hrt_timer_free(s.t);
	CHECK_EQ(hrt_domain_free(d), 0);
}

static void test_cancel_own_callback(void)
{
	struct hrt_domain *d = manual_domain();
	struct self s = { .d = d };

	REQUIRE(d);
	for (int ctx = 0; ctx < 2; ctx++) {
		int mode = HRT_MODE_ABS | (ctx ? HRT_MODE_HARD : HRT_MODE_SOFT);

		s.t = new_timer(d, HRT_CLOCK_MONOTONIC, mode, self_cb, &s);
		REQUIRE(s.t);
		atomic_store(&s.fires, 0);

		/* cancel, then RESTART: the cancel wins, nothing re-queued */
		s.op = SELF_CANCEL_RESTART;
		int64_t now = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);

		CHECK_EQ(hrt_timer_start_range(s.t, now + 10, 0), 1);
		CHECK_EQ(hrt_domain_advance(d, 10), 1);
		CHECK_EQ(s.r[0], 0);
		CHECK_EQ(s.r[1], 1);
		CHECK_EQ(hrt_timer_is_active(s.t), 0);
		CHECK_EQ(queued_count(d), 0);
		CHECK_EQ(hrt_domain_advance(d, 1000), 0);

		/* re-arm then cancel inside: cancel returns 1, no restart */
		s.op = SELF_START_CANCEL;
		now = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);
		CHECK_EQ(hrt_timer_start_range(s.t, now + 10, 0), 1);
		CHECK_EQ(hrt_domain_advance(d, 10), 1);
		CHECK_EQ(s.r[0], 0);	/* running counts as active */
		CHECK_EQ(s.r[1], 1);
		CHECK_EQ(hrt_timer_is_active(s.t), 0);
		CHECK_EQ(queued_count(d), 0);
		CHECK_EQ(hrt_domain_advance(d, 1000), 0);

		/* cancel then re-arm inside: the re-arm stands, queued once */
		s.op = SELF_CANCEL_START;
		now = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);
		CHECK_EQ(hrt_timer_start_range(s.t, now + 10, 0), 1);
		CHECK_EQ(hrt_domain_advance(d, 10), 1);
		CHECK_EQ(s.r[0], 0);
		CHECK_EQ(s.r[1], 0);
		CHECK_EQ(hrt_timer_is_queued(s.t), 1);
		CHECK_EQ(queued_count(d), 1);
		CHECK(queues_ok(d));
		CHECK_EQ(hrt_timer_get_expires(s.t), now + 110);
		s.op = SELF_TRY;
		CHECK_EQ(hrt_domain_advance(d, 99), 0);
		CHECK_EQ(hrt_domain_advance(d, 1), 1);
		CHECK_EQ(hrt_timer_is_active(s.t), 0);
		CHECK_EQ(atomic_load(&s.fires), 4);
		hrt_timer_free(s.t);
	}
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- forward ---- */

struct fwd_row {
	int64_t expires, now, interval;
	int64_t ret, new_expires;
};

/* hrtimer_forward's answers (kernel/time/hrtimer.c), saturating at the top */
static const struct fwd_row fwd_rows[] = {
	/* now < expires: nothing */
	{ 1000, 999, 100, 0, 1000 },
	{ 1000, 0, 100, 0, 1000 },
	/* now == expires: one interval */
	{ 1000, 1000, 100, 1, 1100 },
	{ 1000, 1000, 1, 1, 1001 },
	/* within the first interval */
	{ 1000, 1001, 100, 1, 1100 },
	{ 1000, 1099, 100, 1, 1100 },
	/* exact multiples land one interval further */
	{ 1000, 1100, 100, 2, 1200 },
	{ 1000, 2000, 100, 11, 2100 },	/* now = expires + 10 * interval */
	{ 1000, 1999, 100, 10, 2000 },
	{ 1000, 2001, 100, 11, 2100 },
	{ 1000, 2099, 100, 11, 2100 },
	{ 0, 1, 1, 2, 2 },
	{ 0, 1000000, 1, 1000001, 1000001 },
	{ 5, 5 + 3 * 7, 7, 4, 5 + 4 * 7 },
	/* interval larger than the delta */
	{ 1000, 1050, 1000000, 1, 1001000 },
	{ 1000, 1000, INT64_MAX - 1000, 1, INT64_MAX },
	/* huge values: expiry saturates at INT64_MAX */
	{ INT64_MAX - 100, INT64_MAX - 50, 100, 1, INT64_MAX },
	{ INT64_MAX - 100, INT64_MAX - 50, 30, 2, INT64_MAX - 40 },
	{ INT64_MAX - 100, INT64_MAX, 30, 4, INT64_MAX },
	{ INT64_MAX, INT64_MAX, 1, 1, INT64_MAX },
	{ INT64_MAX, INT64_MAX, INT64_MAX, 1, INT64_MAX },
	{ 0, INT64_MAX, INT64_MAX, 2, INT64_MAX },
	{ 0, INT64_MAX, 2, (INT64_MAX / 2) + 1, INT64_MAX },
	{ 1, INT64_MAX, 1, INT64_MAX, INT64_MAX },
	/* the overrun count itself saturates */
	{ 0, INT64_MAX, 1, INT64_MAX, INT64_MAX },
};

static void test_forward_table(void)
{
	struct hrt_domain *d = manual_domain();
	struct hrt_timer *t;

	REQUIRE(d);
	t = new_timer(d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS, noop_cb, NULL);
	REQUIRE(t);
	for (size_t i = 0; i < ARRAY_SIZE(fwd_rows); i++) {
		const struct fwd_row *w = &fwd_rows[i];
		int64_t r;

		/* set the expiry: start, then take it off the queue */
		CHECK_EQ(hrt_timer_start_range(t, w->expires, 0), 1);
		CHECK_EQ(hrt_timer_try_to_cancel(t), 1);
		r = hrt_timer_forward(t, w->now, w->interval);
		if (!CHECK_EQ(r, w->ret) ||
		    !CHECK_EQ(hrt_timer_get_expires(t), w->new_expires) ||
		    !CHECK_EQ(hrt_timer_get_softexpires(t), w->new_expires))
			printf("  row %zu: expires %lld now %lld interval %lld\n",
			       i, (long long)w->expires, (long long)w->now,
			       (long long)w->interval);
		/* interval <= 0 */
		CHECK_EQ(hrt_timer_forward(t, w->now, 0), -EINVAL);
		CHECK_EQ(hrt_timer_forward(t, w->now, -w->interval), -EINVAL);
		CHECK_EQ(hrt_timer_get_expires(t), w->new_expires);
	}

	/* soft and hard move by the same amount (slack 7), counted from the
	 * soft expiry (API.md section 4: inside the slack window it expired) */
	CHECK_EQ(hrt_timer_start_range(t, 1000, 7), 1);
	CHECK_EQ(hrt_timer_try_to_cancel(t), 1);
	CHECK_EQ(hrt_timer_forward(t, 2000, 100), 11); /* from soft 1000 */
	CHECK_EQ(hrt_timer_get_expires(t), 2107);
	CHECK_EQ(hrt_timer_get_softexpires(t), 2100);
	CHECK_EQ(hrt_timer_forward(t, 1500, 100), 0);
	CHECK_EQ(hrt_timer_get_expires(t), 2107);
	CHECK_EQ(hrt_timer_forward(t, 2099, 100), 0);
	/* inside the slack window [2100, 2107): one interval */
	CHECK_EQ(hrt_timer_forward(t, 2103, 100), 1);
	CHECK_EQ(hrt_timer_get_expires(t), 2207);
	CHECK_EQ(hrt_timer_get_softexpires(t), 2200);
	/* slack >= interval: still one interval from the soft expiry */
	CHECK_EQ(hrt_timer_start_range(t, 1000, 500), 1);
	CHECK_EQ(hrt_timer_try_to_cancel(t), 1);
	CHECK_EQ(hrt_timer_forward(t, 1000, 100), 1);
	CHECK_EQ(hrt_timer_get_softexpires(t), 1100);
	CHECK_EQ(hrt_timer_get_expires(t), 1600);

	/* forward_now uses the domain's now */
	CHECK_EQ(hrt_timer_start_range(t, T0 - 250, 0), 1);
	CHECK_EQ(hrt_timer_try_to_cancel(t), 1);
	CHECK_EQ(hrt_timer_forward_now(t, 100), 3);
	CHECK_EQ(hrt_timer_get_expires(t), T0 + 50);
	CHECK_EQ(hrt_timer_forward_now(t, 100), 0);

	/* forward leaves an inactive timer inactive; restart arms it there */
	CHECK_EQ(hrt_timer_is_active(t), 0);
	CHECK_EQ(hrt_timer_restart(t), 1);
	CHECK_EQ(hrt_timer_get_expires(t), T0 + 50);

	/* a queued timer: -EBUSY, untouched */
	CHECK_EQ(hrt_timer_forward(t, T0 + 1000, 100), -EBUSY);
	CHECK_EQ(hrt_timer_forward_now(t, 100), -EBUSY);
	CHECK_EQ(hrt_timer_get_expires(t), T0 + 50);
	CHECK_EQ(hrt_timer_cancel(t), 1);

	hrt_timer_free(t);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* forward from inside the callback; periodic RESTART */
struct periodic {
	struct hrt_timer *t;
	int64_t interval;
	bool use_forward_now;
	int64_t last_ovr;
	int64_t ovr_sum;
	int64_t last_cb_now;
	_Atomic int fires;
};

static int periodic_cb(struct hrt_timer *t, void *data)
{
	struct periodic *p = data;

	atomic_fetch_add(&p->fires, 1);
	p->last_cb_now = hrt_timer_cb_now(t);
	if (p->use_forward_now)
		p->last_ovr = hrt_timer_forward_now(t, p->interval);
	else
		p->last_ovr = hrt_timer_forward(t, p->last_cb_now, p->interval);
	p->ovr_sum += p->last_ovr;
	return p->last_ovr > 0 ? HRT_RESTART : HRT_NORESTART;
}

static void test_periodic_restart(void)
{
	struct hrt_domain *d = manual_domain();

	REQUIRE(d);
	for (int v = 0; v < 4; v++) {
		struct periodic p = { .interval = 100, .use_forward_now = v & 1 };
		int mode = HRT_MODE_ABS | ((v & 2) ? HRT_MODE_SOFT : HRT_MODE_HARD);
		int64_t base = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);

		p.t = new_timer(d, HRT_CLOCK_MONOTONIC, mode, periodic_cb, &p);
		REQUIRE(p.t);
		CHECK_EQ(hrt_timer_start_range(p.t, base + 100, 0), 1);
		/* ten periods, one firing each */
		for (int k = 1; k <= 10; k++) {
			CHECK_EQ(hrt_domain_advance(d, 99), 0);
			CHECK_EQ(hrt_domain_advance(d, 1), 1);
			CHECK_EQ(atomic_load(&p.fires), k);
			CHECK_EQ(p.last_ovr, 1);
			CHECK_EQ(p.last_cb_now, base + 100 * k);
			CHECK_EQ(hrt_timer_get_expires(p.t), base + 100 * (k + 1));
			CHECK_EQ(hrt_timer_is_queued(p.t), 1);
		}
		CHECK_EQ(queued_count(d), 1);
		/* a long gap: one firing, overruns counted */
		CHECK_EQ(hrt_domain_advance(d, 1000), 1);	/* now base+2000 */
		CHECK_EQ(p.last_ovr, 10);
		CHECK_EQ(hrt_timer_get_expires(p.t), base + 2100);
		/* a gap of 250 from the expiry */
		CHECK_EQ(hrt_domain_advance(d, 350), 1);
		CHECK_EQ(p.last_ovr, 3);
		CHECK_EQ(hrt_timer_get_expires(p.t), base + 2400);
		CHECK_EQ(atomic_load(&p.fires), 12);
		CHECK_EQ(p.ovr_sum, 23);
		CHECK_EQ(hrt_timer_cancel(p.t), 1);
		CHECK_EQ(hrt_domain_advance(d, 1000), 0);
		hrt_timer_free(p.t);
	}
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* a callback that re-arms itself with start and returns RESTART */
struct rearm {
	struct hrt_timer *t;
	int start_ret;
	_Atomic int fires;
};

static int rearm_cb(struct hrt_timer *t, void *data)
{
	struct rearm *r = data;

	atomic_fetch_add(&r->fires, 1);
	if (hrt_timer_mode(t) & HRT_MODE_REL)
		r->start_ret = hrt_timer_start_range(t, 100, 0);
	else
		r->start_ret = hrt_timer_start_range(t, hrt_timer_cb_now(t) + 100,
						     0);
	return HRT_RESTART;
}

static void test_rearm_restart(void)
{
	struct hrt_domain *d = manual_domain();

	REQUIRE(d);
	for (int v = 0; v < 2; v++) {
		struct rearm r = { 0 };
		int64_t base = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);
		int mode = v ? HRT_MODE_ABS | HRT_MODE_HARD : HRT_MODE_REL;

		r.t = new_timer(d, HRT_CLOCK_MONOTONIC, mode, rearm_cb, &r);
		REQUIRE(r.t);
		CHECK_EQ(hrt_timer_start_range(r.t, v ? base + 100 : 100, 0), 1);
		for (int k = 1; k <= 5; k++) {
			CHECK_EQ(hrt_domain_advance(d, 100), 1);
			CHECK_EQ(atomic_load(&r.fires), k);
			CHECK_EQ(r.start_ret, 0);	/* active: running */
			CHECK_EQ(queued_count(d), 1);	/* queued once */
			CHECK(queues_ok(d));
			CHECK_EQ(hrt_timer_get_expires(r.t), base + 100 * (k + 1));
		}
		/* a big step fires it once: the re-arm is from the run's now */
		CHECK_EQ(hrt_domain_advance(d, 1000), 1);
		CHECK_EQ(hrt_timer_get_expires(r.t), base + 1600);
		CHECK_EQ(queued_count(d), 1);
		CHECK_EQ(hrt_timer_cancel(r.t), 1);
		CHECK_EQ(queued_count(d), 0);
		hrt_timer_free(r.t);
	}
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- REALTIME shift on a manual domain ---- */

static void test_realtime_shift(void)
{
	struct hrt_domain *d = manual_domain();
	struct rec rt, mono, relrt, tai, boot;
	struct hrt_stats s0, s1;

	REQUIRE(d);
	rec_init(&rt, d, 1, HRT_CLOCK_REALTIME, HRT_MODE_ABS);
	rec_init(&mono, d, 2, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS);
	rec_init(&relrt, d, 3, HRT_CLOCK_REALTIME, HRT_MODE_REL);
	rec_init(&tai, d, 4, HRT_CLOCK_TAI, HRT_MODE_ABS | HRT_MODE_HARD);
	rec_init(&boot, d, 5, HRT_CLOCK_BOOTTIME, HRT_MODE_ABS);
	REQUIRE(rt.t && mono.t && relrt.t && tai.t && boot.t);
	CHECK_EQ(hrt_timer_clock(relrt.t), HRT_CLOCK_MONOTONIC);

	CHECK_EQ(hrt_timer_start_range(rt.t, T0 + 1000, 0), 1);
	CHECK_EQ(hrt_timer_start_range(mono.t, T0 + 1000, 0), 1);
	CHECK_EQ(hrt_timer_start_range(relrt.t, 1000, 0), 1);
	CHECK_EQ(hrt_timer_start_range(tai.t, T0 + 1000, 0), 1);
	CHECK_EQ(hrt_timer_start_range(boot.t, T0 + 1000, 0), 1);
	CHECK_EQ(hrt_domain_stats(d, 0, &s0), 0);

	/* the wall clock jumps 5 us forward */
	CHECK_EQ(hrt_domain_shift_realtime(d, 5000), 0);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_REALTIME), T0 + 5000);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_TAI), T0 + 5000);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_MONOTONIC), T0);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_BOOTTIME), T0);
	CHECK_EQ(hrt_timer_get_remaining(rt.t), -4000);
	CHECK_EQ(hrt_timer_get_remaining(mono.t), 1000);
	CHECK_EQ(hrt_domain_stats(d, 0, &s1), 0);
	CHECK_EQ(s1.clock_sets, s0.clock_sets + 1);

	/* absolute REALTIME and TAI timers are due now, the others not */
	CHECK_EQ(hrt_domain_advance(d, 0), 2);
	CHECK_EQ(atomic_load(&rt.fires), 1);
	CHECK_EQ(atomic_load(&tai.fires), 1);
	CHECK_EQ(rt.cb_now, T0 + 5000);
	CHECK_EQ(atomic_load(&mono.fires), 0);
	CHECK_EQ(atomic_load(&relrt.fires), 0);
	CHECK_EQ(atomic_load(&boot.fires), 0);
	CHECK_EQ(hrt_domain_advance(d, 999), 0);
	CHECK_EQ(hrt_domain_advance(d, 1), 3);
	CHECK_EQ(atomic_load(&mono.fires), 1);
	CHECK_EQ(atomic_load(&relrt.fires), 1);
	CHECK_EQ(atomic_load(&boot.fires), 1);
	CHECK_EQ(relrt.cb_now, T0 + 1000);

	/* a backward jump delays an absolute REALTIME timer */
	int64_t wall = hrt_domain_now(d, HRT_CLOCK_REALTIME);	/* T0+6000 */

	CHECK_EQ(hrt_timer_start_range(rt.t, wall + 1000, 0), 1);
	CHECK_EQ(hrt_timer_start_range(relrt.t, 1000, 0), 1);
	CHECK_EQ(hrt_domain_shift_realtime(d, -3000), 0);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_REALTIME), wall - 3000);
	CHECK_EQ(hrt_domain_advance(d, 1000), 1);	/* only relrt */
	CHECK_EQ(atomic_load(&relrt.fires), 2);
	CHECK_EQ(atomic_load(&rt.fires), 1);
	CHECK_EQ(hrt_domain_advance(d, 2999), 0);
	CHECK_EQ(hrt_domain_advance(d, 1), 1);
	CHECK_EQ(atomic_load(&rt.fires), 2);
	CHECK_EQ(rt.cb_now, wall + 1000);

	hrt_timer_free(rt.t);
	hrt_timer_free(mono.t);
	hrt_timer_free(relrt.t);
	hrt_timer_free(tai.t);
	hrt_timer_free(boot.t);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- freeing a manual domain ---- */

struct freer {
	struct hrt_domain *d;
	int ret;
};

static int free_domain_cb(struct hrt_timer *t, void *data)
{
	struct freer *f = data;

	(void)t;
	f->ret = hrt_domain_free(f->d);	/* its timer is running */
	return HRT_NORESTART;
}

static void test_domain_free_busy(void)
{
	for (int ctx = 0; ctx < 2; ctx++) {
		struct hrt_domain *d = manual_domain();
		struct freer f = { .d = d, .ret = 1 };
		struct hrt_timer *t;
		int mode = HRT_MODE_REL | (ctx ? HRT_MODE_HARD : HRT_MODE_SOFT);

		REQUIRE(d);
		t = new_timer(d, HRT_CLOCK_BOOTTIME, mode, free_domain_cb, &f);
		REQUIRE(t);
		CHECK_EQ(hrt_timer_start_range(t, 100, 0), 1);
		CHECK_EQ(hrt_domain_free(d), -EBUSY);
		CHECK_EQ(hrt_domain_advance(d, 100), 1);
		CHECK_EQ(f.ret, -EBUSY);	/* from the running callback */
		CHECK_EQ(hrt_timer_start_range(t, 100, 0), 1);
		CHECK_EQ(hrt_domain_free(d), -EBUSY);
		CHECK_EQ(hrt_timer_cancel(t), 1);
		/* the timer goes first: it points into its domain */
		hrt_timer_free(t);
		CHECK_EQ(hrt_domain_free(d), 0);
	}
}

/* ---- real domain: a callback that blocks or sleeps ---- */

struct blocker {
	struct hrt_timer *t;
	sem_t go;		/* the callback waits for it (use_sem) */
	bool use_sem;
	int64_t sleep;		/* else it sleeps this long */
	bool periodic;		/* forward_now(1 ms) and RESTART */
	bool self_cancel;	/* cancel itself first */
	_Atomic int started;	/* firings begun */
	_Atomic int done;	/* firings ended */
	_Atomic int self_ret;
};

static int blocker_cb(struct hrt_timer *t, void *data)
{
	struct blocker *b = data;

	atomic_fetch_add(&b->started, 1);
	if (b->self_cancel)
		atomic_store(&b->self_ret, hrt_timer_cancel(t));
	if (b->use_sem) {
		while (sem_wait(&b->go) < 0 && errno == EINTR)
			;
	} else {
		sleep_ns(b->sleep);
	}
	atomic_fetch_add(&b->done, 1);
	if (b->periodic && hrt_timer_forward_now(t, MS) > 0)
		return HRT_RESTART;
	return HRT_NORESTART;
}

static const int ctx_modes[2] = { HRT_MODE_SOFT, HRT_MODE_HARD };

/* try_to_cancel / forward / start from another thread while it runs */
static void test_real_try_to_cancel_running(void)
{
	for (int c = 0; c < 2; c++) {
		struct blocker b = { .use_sem = true };
		struct hrt_timer *t;

		REQUIRE_EQ(sem_init(&b.go, 0, 0), 0);
		t = new_timer(NULL, HRT_CLOCK_MONOTONIC,
			      HRT_MODE_REL | ctx_modes[c], blocker_cb, &b);
		REQUIRE(t);
		b.t = t;
		CHECK_EQ(hrt_timer_start_range(t, MS, 0), 1);
		if (CHECK(wait_for(&b.started, 1, 5 * SEC))) {
			CHECK_EQ(hrt_timer_try_to_cancel(t), -1);
			CHECK_EQ(hrt_timer_callback_running(t), 1);
			CHECK_EQ(hrt_timer_is_active(t), 1);
			CHECK_EQ(hrt_timer_is_queued(t), 0);
			CHECK_EQ(hrt_timer_forward(t, hrt_now(HRT_CLOCK_MONOTONIC),
						   1000), -EBUSY);
			CHECK_EQ(hrt_timer_forward_now(t, 1000), -EBUSY);
			/* re-arm while it runs: already active */
			CHECK_EQ(hrt_timer_start_range(t, 10 * SEC, 0), 0);
			CHECK_EQ(hrt_timer_is_queued(t), 1);
			CHECK_EQ(hrt_timer_try_to_cancel(t), -1);
			CHECK_EQ(hrt_timer_forward_now(t, 1000), -EBUSY);
			CHECK_EQ(atomic_load(&b.done), 0);
		}
		sem_post(&b.go);
		/* waits for the callback, then dequeues the re-arm */
		CHECK_EQ(hrt_timer_cancel(t), 1);
		CHECK_EQ(atomic_load(&b.done), 1);
		CHECK_EQ(hrt_timer_is_active(t), 0);
		CHECK_EQ(hrt_timer_try_to_cancel(t), 0);
		CHECK_EQ(atomic_load(&b.started), 1);
		hrt_timer_free(t);
		sem_destroy(&b.go);
	}
}

/* cancel from another thread returns only after the callback returned */
static void test_real_cancel_waits(void)
{
	int64_t min_wait = INT64_MAX;
	int overlapped = 0;

	for (int v = 0; v < 4; v++) {
		struct blocker b = { .sleep = 50 * MS, .periodic = v & 1 };
		struct hrt_timer *t;
		int64_t t0, waited;
		int r, pre, started;

		t = new_timer(NULL, HRT_CLOCK_MONOTONIC,
			      HRT_MODE_REL | ctx_modes[v >> 1], blocker_cb, &b);
		REQUIRE(t);
		CHECK_EQ(hrt_timer_start_range(t, MS, 0), 1);
		CHECK(wait_for(&b.started, 1, 5 * SEC));
		t0 = check_mono_ns();
		pre = atomic_load(&b.done);	/* 0 unless we were descheduled */
		r = hrt_timer_cancel(t);
		waited = check_mono_ns() - t0;
		/* right after return: every firing begun has ended */
		started = atomic_load(&b.started);
		CHECK_EQ(atomic_load(&b.done), started);
		/* a periodic one was re-queued by its RESTART: cancel takes it */
		CHECK_EQ(r, b.periodic ? 1 : 0);
		CHECK_EQ(hrt_timer_is_active(t), 0);
		if (pre == 0) {
			overlapped++;
			if (waited < min_wait)
				min_wait = waited;
		}
		sleep_ns(5 * MS);
		CHECK_EQ(atomic_load(&b.started), started);	/* never again */
		hrt_timer_free(t);
	}
	snprintf(check_note, sizeof(check_note),
		 "[%d/4 cancels overlapped the callback, waited >= %.1f ms]",
		 overlapped, overlapped ? (double)min_wait / MS : 0.0);
}

/* cancel from its own callback on an expiry thread: no deadlock, no restart */
static void test_real_cancel_own_callback(void)
{
	for (int c = 0; c < 2; c++) {
		struct blocker b = { .sleep = 0, .periodic = true,
				     .self_cancel = true, .self_ret = 7 };
		struct hrt_timer *t;

		t = new_timer(NULL, HRT_CLOCK_MONOTONIC,
			      HRT_MODE_REL | ctx_modes[c], blocker_cb, &b);
		REQUIRE(t);
		CHECK_EQ(hrt_timer_start_range(t, MS, 0), 1);
		CHECK(wait_for(&b.done, 1, 5 * SEC));
		sleep_ns(10 * MS);
		CHECK_EQ(atomic_load(&b.self_ret), 0);
		CHECK_EQ(atomic_load(&b.started), 1);
		CHECK_EQ(hrt_timer_is_active(t), 0);
		CHECK_EQ(hrt_timer_cancel(t), 0);
		hrt_timer_free(t);
	}
}

/* ---- real domain end to end: 1000 timers within 20 ms ---- */

#define NREAL 1000

struct lat {
	_Atomic int fired;
	_Atomic int64_t late;	/* hrt_now at callback - soft expiry */
};

static _Atomic int real_count;

static int lat_cb(struct hrt_timer *t, void *data)
{
	struct lat *l = data;
	int64_t now = hrt_now(HRT_CLOCK_MONOTONIC);

	atomic_store(&l->late, now - hrt_timer_get_softexpires(t));
	atomic_fetch_add(&l->fired, 1);
	atomic_fetch_add(&real_count, 1);
	return HRT_NORESTART;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void test_real_many_timers(void)
{
	static struct hrt_timer *ts[NREAL];
	static struct lat ls[NREAL];
	static int64_t late[NREAL];
	struct hrt_stats s0[2], s1[2];
	int64_t base;
	bool all;

	atomic_store(&real_count, 0);
	for (int i = 0; i < NREAL; i++) {
		atomic_store(&ls[i].fired, 0);
		atomic_store(&ls[i].late, -1);
		ts[i] = new_timer(NULL, HRT_CLOCK_MONOTONIC,
				  HRT_MODE_ABS | ctx_modes[i & 1], lat_cb, &ls[i]);
		REQUIRE(ts[i]);
	}
	for (int h = 0; h < 2; h++)
		CHECK_EQ(hrt_domain_stats(NULL, h, &s0[h]), 0);
	base = hrt_now(HRT_CLOCK_MONOTONIC) + MS;
	for (int i = 0; i < NREAL; i++)
		CHECK_EQ(hrt_timer_start_range(ts[i], base +
			 (int64_t)(xorshift(&rng) % (uint64_t)(20 * MS)), 0), 1);
	all = wait_for(&real_count, NREAL, 5 * SEC);
	CHECK(all);
	/* cancel waits for any callback still returning: stats are final */
	for (int i = 0; i < NREAL; i++)
		CHECK_EQ(hrt_timer_cancel(ts[i]), 0);
	for (int h = 0; h < 2; h++)
		CHECK_EQ(hrt_domain_stats(NULL, h, &s1[h]), 0);
	CHECK_EQ(atomic_load(&real_count), NREAL);
	for (int i = 0; i < NREAL; i++) {
		CHECK_EQ(atomic_load(&ls[i].fired), 1);
		late[i] = atomic_load(&ls[i].late);
		CHECK(late[i] >= 0);		/* never early */
		CHECK(late[i] < 2 * SEC);	/* generous bound */
	}
	for (int h = 0; h < 2; h++) {
		CHECK(s1[h].wakeups > s0[h].wakeups);
		CHECK_EQ(s1[h].timers_run - s0[h].timers_run, NREAL / 2);
	}
	qsort(late, NREAL, sizeof(late[0]), cmp_i64);
	snprintf(check_note, sizeof(check_note),
		 "[lateness p50 %.3f ms, p99 %.3f ms, max %.3f ms; "
		 "wakeups hard %llu soft %llu]",
		 (double)late[NREAL / 2] / MS, (double)late[NREAL * 99 / 100] / MS,
		 (double)late[NREAL - 1] / MS,
		 (unsigned long long)(s1[1].wakeups - s0[1].wakeups),
		 (unsigned long long)(s1[0].wakeups - s0[0].wakeups));
	for (int i = 0; i < NREAL; i++)
		hrt_timer_free(ts[i]);
}

/* ---- threaded stress on the real domain ---- */

#define NSTRESS 64
#define NSHARED 32
#define NTHREADS 4
#define NOWN ((NSTRESS - NSHARED) / NTHREADS)

struct st_timer {
	struct hrt_timer *t;
	int64_t period;		/* 0: one-shot, else forward + RESTART */
	_Atomic int in_cb;
	_Atomic int fires;
};

static struct st_timer stt[NSTRESS];
static _Atomic int st_overlap;		/* a callback ran concurrently with itself */
static _Atomic int st_bad_ret;		/* an API call returned something illegal */
static _Atomic int st_own_running;	/* in_cb seen after cancel of an owned timer */
static _Atomic int st_cancel_running;	/* owned: cancel began in its callback */
static _Atomic long st_ops;
static int64_t st_end;

static int st_cb(struct hrt_timer *t, void *data)
{
	struct st_timer *s = data;
	int ret = HRT_NORESTART;

	if (atomic_exchange(&s->in_cb, 1) != 0)
		atomic_fetch_add(&st_overlap, 1);
	atomic_fetch_add(&s->fires, 1);
	if ((atomic_load(&s->fires) & 7) == 0)
		sched_yield();	/* widen the window for the others */
	if (s->period && hrt_timer_forward_now(t, s->period) > 0)
		ret = HRT_RESTART;
	atomic_store(&s->in_cb, 0);
	return ret;
}

static void st_bad(bool bad)
{
	if (bad)
		atomic_fetch_add(&st_bad_ret, 1);
}

static void *st_thread(void *arg)
{
	int id = (int)(intptr_t)arg;
	uint64_t seed = 0x1234567ULL * (uint64_t)(id + 1) + 0xabcdefULL;
	long ops = 0;

	while (check_mono_ns() < st_end) {
		for (int k = 0; k < 16; k++, ops++) {
			uint64_t r = xorshift(&seed);
			bool own = r & 1;
			int idx = own ? NSHARED + id * NOWN + (int)((r >> 1) % NOWN)
				      : (int)((r >> 1) % NSHARED);
			struct st_timer *s = &stt[idx];
			int64_t v;
			int ret;

			switch ((r >> 8) % 8) {
			case 0:
			case 1:
			case 2:
				ret = hrt_timer_start_range(s->t,
					(int64_t)((r >> 16) % (MS / 4)),
					(int64_t)((r >> 40) % 100000));
				st_bad(ret != 0 && ret != 1);
				break;
			case 3:
				ret = hrt_timer_try_to_cancel(s->t);
				st_bad(ret < -1 || ret > 1);
				/* 0 or 1: it is not running at this moment */
				if (own && ret >= 0 && atomic_load(&s->in_cb))
					atomic_fetch_add(&st_own_running, 1);
				break;
			case 4:
			case 5:
				if (own && atomic_load(&s->in_cb))
					atomic_fetch_add(&st_cancel_running, 1);
				ret = hrt_timer_cancel(s->t);
				st_bad(ret != 0 && ret != 1);
				/* nobody else arms an owned timer: it is dead */
				if (own && (atomic_load(&s->in_cb) ||
					    hrt_timer_is_active(s->t)))
					atomic_fetch_add(&st_own_running, 1);
				break;
			case 6:
				v = hrt_timer_forward(s->t,
					hrt_now(HRT_CLOCK_MONOTONIC),
					1 + (int64_t)((r >> 16) % MS));
				st_bad(v < 0 && v != -EBUSY);
				if (own && v >= 0 && hrt_timer_is_queued(s->t))
					atomic_fetch_add(&st_own_running, 1);
				break;
			default:
				if ((r >> 16) & 1) {
					v = hrt_timer_forward_now(s->t, 500000);
					st_bad(v < 0 && v != -EBUSY);
				} else {
					ret = hrt_timer_restart(s->t);
					st_bad(ret != 0 && ret != 1);
				}
				break;
			}
		}
		/* let timers fire between bursts */
		sleep_ns((int64_t)(xorshift(&seed) % 100000));
	}
	atomic_fetch_add(&st_ops, ops);
	return NULL;
}

static void test_real_stress(void)
{
	pthread_t th[NTHREADS];
	long fires = 0;

	atomic_store(&st_overlap, 0);
	atomic_store(&st_bad_ret, 0);
	atomic_store(&st_own_running, 0);
	atomic_store(&st_cancel_running, 0);
	atomic_store(&st_ops, 0);
	for (int i = 0; i < NSTRESS; i++) {
		struct st_timer *s = &stt[i];

		s->period = (i % 3 == 0) ? MS + (i % 4) * (MS / 2) : 0;
		atomic_store(&s->in_cb, 0);
		atomic_store(&s->fires, 0);
		s->t = new_timer(NULL, HRT_CLOCK_MONOTONIC,
				 HRT_MODE_REL | ctx_modes[i & 1], st_cb, s);
		REQUIRE(s->t);
	}
	st_end = check_mono_ns() + SEC;
	for (int i = 0; i < NTHREADS; i++)
		REQUIRE_EQ(pthread_create(&th[i], NULL, st_thread,
					  (void *)(intptr_t)i), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NSTRESS; i++) {
		struct st_timer *s = &stt[i];

		CHECK(hrt_timer_cancel(s->t) >= 0);
		CHECK_EQ(atomic_load(&s->in_cb), 0);
		CHECK_EQ(hrt_timer_is_active(s->t), 0);
		fires += atomic_load(&s->fires);
	}
	CHECK_EQ(atomic_load(&st_overlap), 0);
	CHECK_EQ(atomic_load(&st_bad_ret), 0);
	CHECK_EQ(atomic_load(&st_own_running), 0);
	CHECK(atomic_load(&st_ops) > 0);
	CHECK(fires > 0);
	snprintf(check_note, sizeof(check_note),
		 "[%ld ops, %ld callbacks, %d cancels of a running owned timer]",
		 (long)atomic_load(&st_ops), fires,
		 atomic_load(&st_cancel_running));
	for (int i = 0; i < NSTRESS; i++)
		hrt_timer_free(stt[i].t);
}

/* ---- main ---- */

int main(void)
{
	static const struct check_test tests[] = {
		{ "setup_errors", test_setup_errors },
		{ "next_expiry", test_next_expiry },
		{ "start_abs_rel", test_start_abs_rel },
		{ "slack", test_slack },
		{ "saturation", test_saturation },
		{ "queue_order_stability", test_queue_order },
		{ "restart_moves_queued", test_restart_moves },
		{ "try_to_cancel", test_try_to_cancel },
		{ "cancel_own_callback", test_cancel_own_callback },
		{ "forward_table", test_forward_table },
		{ "periodic_restart", test_periodic_restart },
		{ "rearm_restart", test_rearm_restart },
		{ "realtime_shift", test_realtime_shift },
		{ "domain_free_busy", test_domain_free_busy },
		{ "real_try_to_cancel_running", test_real_try_to_cancel_running },
		{ "real_cancel_waits", test_real_cancel_waits },
		{ "real_cancel_own_callback", test_real_cancel_own_callback },
		{ "real_1000_timers", test_real_many_timers },
		{ "real_stress_threads", test_real_stress },
	};

	alarm(60);	/* watchdog: a hang (deadlock, endless RESTART) fails */
	return check_main(tests, ARRAY_SIZE(tests));
}
