/*
 * test_offset.c - REALTIME/TAI/BOOTTIME timers are converted to MONOTONIC
 * deadlines by an offset read from two clocks; a stall between the two
 * reads must never make a timer late (issue 15.4). The stall is injected:
 * this program is linked with -Wl,--wrap=clock_gettime (see the Makefile),
 * and the wrapper sleeps 20 ms after one chosen clock read of this thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "hrtimer.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define STALL (20 * MS)

int __real_clock_gettime(clockid_t clk, struct timespec *ts);

/* The next read of this clock on this thread stalls once (-1: none). */
static __thread int stall_clock = -1;

int __wrap_clock_gettime(clockid_t clk, struct timespec *ts);
int __wrap_clock_gettime(clockid_t clk, struct timespec *ts)
{
	int rc = __real_clock_gettime(clk, ts);

	if ((int)clk == stall_clock) {
		struct timespec d = { 0, STALL };

		stall_clock = -1;
		while (nanosleep(&d, &d) < 0 && errno == EINTR)
			;
	}
	return rc;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / SEC, .tv_nsec = ns % SEC };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct late {
	_Atomic int fired;
	int64_t late;	/* callback's now - hard expiry, on the timer's clock */
};

static int late_cb(struct hrt_timer *t, void *data)
{
	struct late *l = data;

	l->late = hrt_timer_now(t) - hrt_timer_get_expires(t);
	atomic_store(&l->fired, 1);
	return HRT_NORESTART;
}

/* Arm an ABS timer 30 ms ahead on `clock` with the stall injected after
 * the read of `stall_on` inside the start; return how late it fired. */
static int64_t late_with_stall(int clock, int stall_on)
{
	struct late l = { 0 };
	struct hrt_timer *t = hrt_timer_alloc();
	int64_t expires, end;

	if (!CHECK(t != NULL))
		return -1;
	CHECK_EQ(hrt_timer_setup(t, NULL, clock, HRT_MODE_ABS | HRT_MODE_HARD, late_cb, &l, 0), 0);
	expires = hrt_now(clock) + 30 * MS;
	stall_clock = stall_on;
	CHECK_EQ(hrt_timer_start_range(t, expires, 0), 1);
	stall_clock = -1;
	end = check_mono_ns() + 2 * SEC;
	while (!atomic_load(&l.fired) && check_mono_ns() < end)
		sleep_ns(MS / 10);
	CHECK(atomic_load(&l.fired));
	hrt_timer_free(t);
	return l.late;
}

static int warm_cb(struct hrt_timer *t, void *data)
{
	(void)t;
	atomic_store((_Atomic int *)data, 1);
	return HRT_NORESTART;
}

static void test_stall_between_offset_reads(void)
{
	static const int clocks[] = { HRT_CLOCK_REALTIME, HRT_CLOCK_TAI, HRT_CLOCK_BOOTTIME };
	_Atomic int warm = 0;
	struct hrt_timer *w = hrt_timer_alloc();
	char *p = check_note;

	/* The expiry thread runs first, so only the start programs it. */
	REQUIRE(w);
	CHECK_EQ(hrt_timer_setup(w, NULL, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD,
				 warm_cb, (void *)&warm, 0), 0);
	CHECK_EQ(hrt_timer_start_range(w, MS, 0), 1);
	while (!atomic_load(&warm))
		sleep_ns(MS);
	hrt_timer_free(w);
	sleep_ns(5 * MS);

	for (size_t c = 0; c < ARRAY_SIZE(clocks); c++) {
		/* a stall after the timer clock's read, or after MONOTONIC's */
		int64_t a = late_with_stall(clocks[c], clocks[c]);
		int64_t b = late_with_stall(clocks[c], CLOCK_MONOTONIC);

		p += snprintf(p, sizeof(check_note) - (size_t)(p - check_note),
			      "%s[clock %d late %.2f / %.2f ms]", c ? " " : "", clocks[c],
			      (double)a / MS, (double)b / MS);
		/* 20 ms late before; the bound leaves room for a loaded machine */
		CHECK(a >= 0 && a < 10 * MS);
		CHECK(b >= 0 && b < 10 * MS);
	}
}

int main(void)
{
	static const struct check_test tests[] = {
		{ "stall_between_offset_reads (15.4)", test_stall_between_offset_reads },
	};

	alarm(60);
	return check_main(tests, ARRAY_SIZE(tests));
}
