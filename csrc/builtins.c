/*
 * builtins.c - the C callbacks, sleeper and raw timerfd loop of
 * hrt_builtins.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "hrt_builtins.h"

static int clock_ok(int clock)
{
	return clock == HRT_CLOCK_MONOTONIC || clock == HRT_CLOCK_REALTIME ||
	       clock == HRT_CLOCK_BOOTTIME || clock == HRT_CLOCK_TAI;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL };

	if (ts.tv_nsec < 0) {
		ts.tv_nsec += 1000000000LL;
		ts.tv_sec -= 1;
	}
	return ts;
}

static int64_t sat_diff(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int periodic(struct hrt_timer *t, int64_t interval, uint64_t *overruns)
{
	int64_t n;

	if (interval <= 0)
		return HRT_NORESTART;
	n = hrt_timer_forward_now(t, interval);
	if (n > 1 && overruns)
		__atomic_fetch_add(overruns, (uint64_t)(n - 1), __ATOMIC_RELAXED);
	return n >= 0 ? HRT_RESTART : HRT_NORESTART;
}

int hrt_cb_latency(struct hrt_timer *t, void *data)
{
	struct hrt_latency_rec *rec = data;
	int64_t late;
	size_t i;

	if (!rec)
		return HRT_NORESTART; /* no buffer to record into */
	late = sat_diff(hrt_timer_now(t), hrt_timer_get_expires(t));
	i = __atomic_load_n(&rec->count, __ATOMIC_RELAXED);

	if (i < rec->cap) {
		rec->samples[i] = late;
		__atomic_store_n(&rec->count, i + 1, __ATOMIC_RELEASE);
		i++;
	}
	if (i >= rec->cap) {
		int fd = __atomic_load_n(&rec->done_fd, __ATOMIC_ACQUIRE);
		uint64_t one = 1;
		ssize_t n = fd >= 0 ? write(fd, &one, sizeof(one)) : 0;

		(void)n; /* a failed post loses nothing the count does not show */
		return HRT_NORESTART;
	}
	return periodic(t, rec->interval, &rec->overruns);
}

int hrt_cb_count(struct hrt_timer *t, void *data)
{
	struct hrt_counter *c = data;
	uint64_t n;

	if (!c)
		return HRT_NORESTART;
	n = __atomic_add_fetch(&c->count, 1, __ATOMIC_RELEASE);

	if (c->limit && n >= c->limit)
		return HRT_NORESTART;
	return periodic(t, c->interval, NULL);
}

int hrt_cb_eventfd(struct hrt_timer *t, void *data)
{
	struct hrt_eventfd_post *p = data;
	uint64_t one = 1;
	int fd;

	if (!p)
		return HRT_NORESTART;
	fd = __atomic_load_n(&p->fd, __ATOMIC_ACQUIRE);
	if (fd < 0 || write(fd, &one, sizeof(one)) < 0)
		return HRT_NORESTART;
	return periodic(t, p->interval, NULL);
}

size_t hrt_latency_count(const struct hrt_latency_rec *rec)
{
	return __atomic_load_n(&rec->count, __ATOMIC_ACQUIRE);
}

uint64_t hrt_counter_value(const struct hrt_counter *c)
{
	return __atomic_load_n(&c->count, __ATOMIC_ACQUIRE);
}

/*
 * REALTIME and TAI: the kernel's hrtimer_sleeper. A timer of the default
 * domain posts an eventfd the caller polls, so the sleep follows what the
 * core's wall-clock bases follow (clock sets, the test hook's shift). The
 * timer is HARD, or SOFT when the caller is a HARD callback (its own expiry
 * thread could not fire it). -EINTR on a signal, -ESHUTDOWN once the domain
 * is stopped (hrt_domain_stop wakes a sleeper in progress: its timer will
 * not fire any more).
 */
static int64_t sleep_on_timer(int clock, int64_t deadline)
{
	struct hrt_eventfd_post post = { .fd = -1, .interval = 0 };
	struct hrt_domain *d = hrt_default_domain();
	/* HARD, unless this is the HARD C thread (its own timer could not fire) */
	int ctx = hrt_ctx_thread() == HRT_CTX_THREAD_HARD ? HRT_MODE_SOFT : HRT_MODE_HARD;
	struct hrt_sleeper sleeper;
	struct pollfd pfd;
	struct hrt_timer *t;
	int64_t ret, late;

	post.fd = hrt_eventfd_new();
	if (post.fd < 0)
		return post.fd;
	t = hrt_timer_alloc();
	if (!t) {
		close(post.fd);
		return -ENOMEM;
	}
	sleeper.fd = post.fd;
	hrt_sleeper_add(d, &sleeper);
	ret = hrt_timer_setup(t, d, clock, HRT_MODE_ABS | ctx, hrt_cb_eventfd,
			      &post, 0);
	while (ret >= 0) {
		late = sat_diff(hrt_now(clock), deadline);
		if (late >= 0) {
			ret = late;
			break;
		}
		/* First pass, or the clock went back after the expiry. */
		ret = hrt_timer_start_range(t, deadline, 0);
		if (ret < 0)
			break;
		pfd.fd = post.fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, -1) < 0) {
			ret = -errno;
			break;
		}
		hrt_eventfd_read(post.fd);
	}
	hrt_timer_free(t); /* cancels, waits for a running callback */
	hrt_sleeper_del(d, &sleeper);
	close(post.fd);
	return ret;
}

int64_t hrt_sleep_until(int clock, int64_t deadline)
{
	struct timespec ts, now;
	int old, err;

	if (!clock_ok(clock))
		return -EINVAL;
	hrt_host_block();
	if (clock == HRT_CLOCK_REALTIME || clock == HRT_CLOCK_TAI) {
		int64_t r = sleep_on_timer(clock, deadline);

		if (r != -ESHUTDOWN)
			return r;
		/* Interpreter exit stopped the core: sleep on the kernel clock,
		 * less the test hook's shift as it stands now. */
		clock_gettime(clock, &now);
		deadline = sat_diff(deadline, sat_diff(hrt_now(clock), ts_ns(&now)));
	}
	ts = ns_ts(deadline < 0 ? 0 : deadline);
	old = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	err = clock_nanosleep(clock, TIMER_ABSTIME, &ts, NULL);
	clock_gettime(clock, &now);
	if (old > 0)
		prctl(PR_SET_TIMERSLACK, (unsigned long)old, 0, 0, 0);
	if (err)
		return -err;
	return sat_diff(ts_ns(&now), deadline);
}

int hrt_raw_timerfd_loop(int clock, int64_t interval, size_t loops, int64_t *out)
{
	struct itimerspec its = { 0 };
	struct timespec now;
	int fd, old, ret = 0;
	int64_t next;

	if (!clock_ok(clock) || clock == HRT_CLOCK_TAI || interval <= 0 || !out)
		return -EINVAL;
	hrt_host_block();
	fd = timerfd_create(clock, TFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	old = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	clock_gettime(clock, &now);
	next = ts_ns(&now) + interval;
	its.it_value = ns_ts(next);
	its.it_interval = ns_ts(interval);
	if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		ret = -errno;
		goto out;
	}
	for (size_t i = 0; i < loops; i++) {
		uint64_t expirations;

		if (read(fd, &expirations, sizeof(expirations)) < 0) {
			ret = -errno;
			break;
		}
		clock_gettime(clock, &now);
		next += (int64_t)(expirations - 1) * interval;
		out[i] = ts_ns(&now) - next;
		next += interval;
	}
out:
	if (old > 0)
		prctl(PR_SET_TIMERSLACK, (unsigned long)old, 0, 0, 0);
	close(fd);
	return ret;
}

int hrt_eventfd_new(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int64_t hrt_eventfd_read(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return errno == EAGAIN ? 0 : -errno;
	return (int64_t)v;
}

int hrt_fd_close(int fd)
{
	return close(fd) < 0 ? -errno : 0;
}
