/*
 * hrt_builtins.h - C callbacks that ship with the core (they run on the
 * expiry thread, no GIL), the precise sleeper, and the raw timerfd loop that
 * measures the machine's limit. Same conventions as hrtimer.h.
 */
#ifndef HRT_BUILTINS_H
#define HRT_BUILTINS_H

#include "hrtimer.h"

/* cffi:begin */

/* The builtin callbacks do nothing (and do not restart) when data is NULL. */

/*
 * Latency recorder: each expiry stores (now - hard expiry) in samples[]
 * until `cap` samples are stored. With interval > 0 it is periodic: it
 * forwards by interval (overruns beyond one counted) and restarts until
 * full. Fields other than samples/cap/interval are written by the callback.
 */
struct hrt_latency_rec {
	int64_t *samples;
	size_t cap;
	int64_t interval;
	size_t count;
	uint64_t overruns;
	int done_fd;        /* eventfd written once when full, or -1 (may be
			     * set to -1 while the timer is armed) */
};
int hrt_cb_latency(struct hrt_timer *timer, void *data);

/* Counter: counts expiries; periodic like the recorder when interval > 0. */
struct hrt_counter {
	uint64_t count;
	int64_t interval;
	uint64_t limit;     /* stop restarting after `limit` runs (0: never) */
};
int hrt_cb_count(struct hrt_timer *timer, void *data);

/*
 * eventfd poster: adds 1 to an eventfd per expiry (a loop can wait on it);
 * periodic when interval > 0. An fd < 0 (set before closing the eventfd)
 * posts nothing and stops the timer.
 */
struct hrt_eventfd_post {
	int fd;
	int64_t interval;
};
int hrt_cb_eventfd(struct hrt_timer *timer, void *data);

/* Atomic reads of the fields the callbacks write. */
size_t hrt_latency_count(const struct hrt_latency_rec *rec);
uint64_t hrt_counter_value(const struct hrt_counter *c);

/*
 * Sleep until `deadline` (absolute ns on `clock`). MONOTONIC and BOOTTIME:
 * clock_nanosleep(TIMER_ABSTIME) with this thread's timer slack set to 1 ns
 * for the sleep. REALTIME and TAI: a timer of the default domain (HARD;
 * SOFT when called from a HARD callback) wakes the caller (the kernel's
 * hrtimer_sleeper), so the sleep follows wall-clock jumps and the
 * hrt_domain_shift_realtime() hook as timers do. A deadline
 * already past returns at once. Returns ns past the deadline (>= 0) when
 * done, -EINTR when a signal interrupted it (call again with the same
 * deadline to resume), -EINVAL for an unknown clock.
 */
int64_t hrt_sleep_until(int clock, int64_t deadline);

/*
 * The machine's limit: a plain timerfd (absolute, periodic by interval)
 * read in a loop by the calling thread with 1 ns slack; stores each
 * wake-up's lateness in out[0..loops). Returns 0 or -errno (-EINTR if a
 * signal interrupted it; out[] then holds what was measured).
 */
int hrt_raw_timerfd_loop(int clock, int64_t interval, size_t loops,
			 int64_t *out);

/* An eventfd (non-blocking, close-on-exec), or -errno. Read it with
 * hrt_eventfd_read: the counter value, 0 if none, or -errno. */
int hrt_eventfd_new(void);
int64_t hrt_eventfd_read(int fd);
int hrt_fd_close(int fd);

/* cffi:end */

#endif /* HRT_BUILTINS_H */
