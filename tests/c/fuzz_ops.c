/*
 * fuzz_ops.c - a fuzz target for the timer core.
 *
 * Each input is a program: its bytes are read as a sequence of operations
 * (setup, start, start_range, restart, cancel, try_to_cancel, forward,
 * advance, shift_realtime, callback behaviour changes) on 16 timers of one
 * manual domain. Callbacks follow per-timer behaviours that the input sets:
 * return NORESTART, forward and RESTART, RESTART without forwarding (a
 * bounded number of times), cancel / try_to_cancel / restart / re-arm
 * themselves (also in the past), start / cancel another timer, forward
 * another timer, call advance from the callback, free themselves, stop the
 * expiry run, fork (the child checks the domain and that nothing blocks).
 * Every timer runs at most once per advance, and a forward from its own
 * callback puts the soft expiry after now (API.md section 4).
 *
 * After every operation, and inside every callback, every clock base of the
 * domain is checked: tq_check() (heap order, positions, keys, the run, count), every
 * node belongs to a timer of that base, nodes of equal expiry are in arming
 * order, the base's queue holds one reserved slot per timer set up on it,
 * and the number of queued nodes equals the number of timers that say they
 * are queued. Return codes are checked against the documented contract
 * (hrtimer.h). At the end of an input every timer is cancelled and freed
 * and the domain must free cleanly. A violation prints what failed and
 * aborts, so a fuzzer keeps the input.
 *
 * Built two ways:
 *   - with -DFUZZ_LIBFUZZER and clang -fsanitize=fuzzer: a libFuzzer target;
 *   - otherwise with a main() that feeds N pseudo-random inputs from a seed:
 *       fuzz_ops [N [SEED]]      (defaults: 20000 inputs, seed 1)
 *       fuzz_ops FILE...         (replay inputs, e.g. libFuzzer crash files)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hrt_internal.h"

#define NTIMERS 16
#define MAX_FORKS 300 /* fork behaviours per run of the driver (they are slow) */

enum behaviour {
	B_NORESTART,
	B_FORWARD_RESTART,   /* forward_now(interval), RESTART */
	B_RESTART_RAW,       /* RESTART without forward, `count` times */
	B_CANCEL_SELF,       /* cancel (must not wait), then RESTART (ignored) */
	B_TRY_SELF,          /* try_to_cancel must say -1, NORESTART */
	B_REARM_SELF,        /* start_range again from the callback, RESTART */
	B_REARM_CANCEL,      /* start, then cancel: must return 1, RESTART ignored */
	B_RESTART_SELF,      /* hrt_timer_restart from the callback, NORESTART */
	B_START_OTHER,       /* start timer `other`, NORESTART */
	B_CANCEL_OTHER,      /* cancel timer `other`, forward self, RESTART */
	B_FORWARD_OTHER,     /* forward timer `other`: -EBUSY iff queued */
	B_ADVANCE,           /* hrt_domain_advance from a callback: -EBUSY */
	B_REARM_PAST,        /* start again `delay` before now, RESTART */
	B_FREE_SELF,         /* hrt_timer_free from its own callback (deferred) */
	B_STOP_RUN,          /* hrt_timer_stop_expiry: the advance returns -EINTR */
	B_FORK,              /* fork; the child checks the domain, cancels all */
	B_COUNT
};

struct slot {
	struct hrt_timer *t;
	bool setup;
	int clock;           /* requested clock */
	int mode;
	uint8_t behaviour;
	uint8_t other;
	uint8_t count;       /* B_RESTART_RAW: restarts left */
	int64_t interval;    /* > 0 */
	int64_t delay;       /* for re-arm / start of other */
	int64_t slack;
	uint64_t runs;
	uint64_t seq;        /* arming order, for FIFO among equal expiries */
	uint64_t last_advance; /* the advance it last ran in */
};

static struct hrt_domain *dom;
static struct slot slots[NTIMERS];
static const uint8_t *in_p, *in_end;
static unsigned budget;
static bool changed_in_callback;
static bool stopped_run;       /* a callback stopped the current advance */
static uint64_t advance_seq;
static unsigned n_forks;
static uint64_t arm_seq;

/* FUZZ_OPS_TRACE=1 in the environment: print each operation (replays). */
static int tracing = -1;

/* The core just queued (or re-queued) this timer: it goes last among equals. */
static void armed(struct slot *s)
{
	s->seq = ++arm_seq;
}

/* Return RESTART from s's callback; the core re-queues it now unless it is
 * queued already (re-armed) or was cancelled by the callback. */
static int restart(struct slot *s, bool cancelled)
{
	if (!cancelled && !hrt_timer_is_queued(s->t))
		armed(s);
	return HRT_RESTART;
}

/* figures for the summary line */
static uint64_t n_ops, n_callbacks, n_checks;

static const int clocks[4] = {
	HRT_CLOCK_MONOTONIC, HRT_CLOCK_REALTIME, HRT_CLOCK_BOOTTIME, HRT_CLOCK_TAI,
};

/* the input being run, saved by fail() for a replay */
static const uint8_t *cur_data;
static size_t cur_size;

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_ops: invariant violated: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
#ifndef FUZZ_LIBFUZZER
	FILE *f = fopen("fuzz_ops-failure.bin", "wb");

	if (f) {
		fwrite(cur_data, 1, cur_size, f);
		fclose(f);
		fprintf(stderr, "fuzz_ops: input saved to fuzz_ops-failure.bin "
			"(replay: fuzz_ops fuzz_ops-failure.bin)\n");
	}
#endif
	abort();
}

#define ENSURE(cond, ...)                                                    \
	do {                                                                 \
		if (!(cond))                                                 \
			fail(__VA_ARGS__);                                   \
	} while (0)

/* ---- input reading: running out of bytes reads zeros ---- */

static uint8_t u8(void)
{
	return in_p < in_end ? *in_p++ : 0;
}

static uint64_t u64(void)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | u8();
	return v;
}

/*
 * A time argument, mostly small so that timers collide and fire: one byte
 * selects a small value, a power of two, an extreme, or 8 raw bytes.
 */
static int64_t time_arg(bool allow_negative)
{
	uint8_t b = u8();
	int64_t v;

	if (b < 160)
		v = b % 40;
	else if (b < 200)
		v = (int64_t)1 << (b % 63);
	else if (b < 210)
		v = INT64_MAX - (b - 200);
	else if (b < 220)
		v = INT64_MIN + (b - 210);
	else
		v = (int64_t)u64();
	if (!allow_negative && v < 0)
		v = v == INT64_MIN ? INT64_MAX : -v;
	return v;
}

static int64_t interval_arg(void)
{
	int64_t v = time_arg(false);

	return v > 0 ? v : 1;
}

/* ---- checks ---- */

static struct hrt_timer *node_timer(struct tq_node *n)
{
	return (struct hrt_timer *)((char *)n - offsetof(struct hrt_timer, node));
}

/*
 * The nodes of a queue in its order (by tq_before), into `out`; returns
 * how many. At most NTIMERS (checked by the caller).
 */
static size_t sorted_nodes(const struct tq_head *q, struct tq_node **out)
{
	size_t n = tq_collect(q, out, NTIMERS);

	for (size_t k = 1; k < n && k < NTIMERS; k++) {
		struct tq_node *x = out[k];
		size_t j = k;

		for (; j && tq_before(x, out[j - 1]); j--)
			out[j] = out[j - 1];
		out[j] = x;
	}
	return n;
}

static void check_domain(const char *where)
{
	size_t queued_nodes = 0, queued_timers = 0;

	n_checks++;
	for (int h = 0; h < HRT_NCTX; h++) {
		for (int i = 0; i < HRT_NCLOCKS; i++) {
			struct hrt_clock_base *b = &dom->ctx[h].clock_base[i];
			struct tq_node *order[NTIMERS];
			size_t n, holders = 0;

			ENSURE(tq_check(&b->queue) == 0,
			       "%s: tq_check failed on ctx %d base %d", where, h, i);
			n = sorted_nodes(&b->queue, order);
			ENSURE(n == b->queue.count && n <= NTIMERS,
			       "%s: %zu nodes, count %zu in ctx %d base %d", where, n,
			       b->queue.count, h, i);
			ENSURE(n == 0 || tq_getnext(&b->queue) == order[0],
			       "%s: the earliest node is not first (ctx %d base %d)",
			       where, h, i);
			for (size_t k = 0; k < n; k++) {
				struct tq_node *x = order[k], *prev = k ? order[k - 1] : NULL;

				ENSURE(node_timer(x)->base == b,
				       "%s: a node in ctx %d base %d belongs to another base",
				       where, h, i);
				if (prev && prev->expires == x->expires)
					ENSURE(((struct slot *)node_timer(prev)->data)->seq <
					       ((struct slot *)node_timer(x)->data)->seq,
					       "%s: equal expiries out of arming order (ctx %d base %d)",
					       where, h, i);
			}
			/* one slot per timer set up here, and one for a timer
			 * freed by its own callback until that returns */
			for (int k = 0; k < NTIMERS; k++)
				holders += slots[k].setup && slots[k].t->base == b;
			if (b->running && b->running->free_deferred)
				holders++;
			ENSURE(b->queue.reserved == holders,
			       "%s: ctx %d base %d reserves %zu slots for %zu timers",
			       where, h, i, b->queue.reserved, holders);
			queued_nodes += n;
		}
	}
	for (int k = 0; k < NTIMERS; k++) {
		struct slot *s = &slots[k];
		int q = hrt_timer_is_queued(s->t);

		if (!s->setup) {
			ENSURE(q == 0, "%s: timer %d queued but never set up", where, k);
			continue;
		}
		queued_timers += q;
		ENSURE(hrt_timer_is_active(s->t) ==
			       (q || hrt_timer_callback_running(s->t)),
		       "%s: timer %d: active != queued || running", where, k);
		if (q)
			ENSURE(hrt_timer_get_softexpires(s->t) <=
				       hrt_timer_get_expires(s->t),
			       "%s: timer %d: soft expiry after hard expiry", where, k);
	}
	ENSURE(queued_nodes == queued_timers, "%s: %zu nodes queued, %zu timers say so",
	       where, queued_nodes, queued_timers);
}

/* ---- callbacks ---- */

static int start_checked(struct slot *s, int64_t expires, int64_t slack)
{
	int was_active = hrt_timer_is_active(s->t);
	int rc = hrt_timer_start_range(s->t, expires, slack);

	ENSURE(rc == !was_active, "start_range returned %d, was_active %d", rc, was_active);
	ENSURE(hrt_timer_is_queued(s->t) == 1, "not queued after start");
	armed(s);
	changed_in_callback = true;
	return rc;
}

static int64_t arm_value(struct slot *s, int64_t delay)
{
	/* REL: a delay; ABS: the timer's now plus the delay. */
	if (s->mode & HRT_MODE_REL)
		return delay;
	int64_t now = hrt_timer_now(s->t), v;

	if (__builtin_add_overflow(now, delay, &v))
		v = INT64_MAX;
	return v;
}

static int fuzz_cb(struct hrt_timer *t, void *data)
{
	struct slot *s = data;
	struct slot *o = &slots[s->other % NTIMERS];
	int64_t now = hrt_timer_cb_now(t);
	int rc;

	n_callbacks++;
	s->runs++;
	if (tracing > 0)
		fprintf(stderr, "  callback timer %d behaviour %d now %lld soft %lld hard %lld\n",
			(int)(s - slots), s->behaviour % B_COUNT, (long long)now,
			(long long)hrt_timer_get_softexpires(t), (long long)hrt_timer_get_expires(t));
	ENSURE(s->t == t, "callback data does not match its timer");
	ENSURE(hrt_timer_callback_running(t) == 1, "callback runs but not marked running");
	ENSURE(hrt_timer_is_queued(t) == 0, "running timer still queued at entry");
	ENSURE(hrt_timer_is_active(t) == 1, "running timer not active");
	ENSURE(hrt_timer_get_softexpires(t) <= now,
	       "ran before its soft expiry (%lld > %lld)",
	       (long long)hrt_timer_get_softexpires(t), (long long)now);
	check_domain("callback entry");
	ENSURE(s->last_advance != advance_seq, "timer %d ran twice in one advance",
	       (int)(s - slots));
	s->last_advance = advance_seq;
	ENSURE(++budget <= NTIMERS, "more callbacks in one advance than timers");

	switch (s->behaviour % B_COUNT) {
	case B_NORESTART:
		return HRT_NORESTART;
	case B_FORWARD_RESTART: {
		int64_t n = hrt_timer_forward_now(t, s->interval);
		int64_t soft = hrt_timer_get_softexpires(t);

		/* it ran, so it expired: forward moves on by at least one
		 * interval, out of the slack window too */
		ENSURE(n >= 1, "forward from own callback: %lld", (long long)n);
		ENSURE(soft > now || soft == INT64_MAX,
		       "soft expiry %lld not after now %lld after forward",
		       (long long)soft, (long long)now);
		return restart(s, false);
	}
	case B_RESTART_RAW:
		if (s->count == 0)
			return HRT_NORESTART;
		s->count--;
		return restart(s, false);
	case B_CANCEL_SELF:
		rc = hrt_timer_cancel(t);
		ENSURE(rc == 0, "cancel of own unqueued timer returned %d", rc);
		ENSURE(hrt_timer_try_to_cancel(t) == -1, "try_to_cancel self != -1");
		return HRT_RESTART; /* must be ignored: cancelled */
	case B_TRY_SELF:
		rc = hrt_timer_try_to_cancel(t);
		ENSURE(rc == -1, "try_to_cancel from own callback returned %d", rc);
		return HRT_NORESTART;
	case B_REARM_SELF:
		start_checked(s, arm_value(s, s->delay + 1), s->slack);
		return HRT_RESTART; /* the re-arm wins */
	case B_REARM_CANCEL:
		start_checked(s, arm_value(s, s->delay), s->slack);
		rc = hrt_timer_cancel(t);
		ENSURE(rc == 1, "cancel of own re-armed timer returned %d", rc);
		ENSURE(hrt_timer_is_queued(t) == 0, "queued after own cancel");
		return HRT_RESTART; /* must be ignored */
	case B_RESTART_SELF:
		rc = hrt_timer_restart(t);
		ENSURE(rc == 0, "restart from own callback returned %d", rc);
		armed(s);
		changed_in_callback = true;
		/* soft <= now: it runs again at the next advance, not in this one */
		if (s->count == 0)
			s->behaviour = B_NORESTART;
		else
			s->count--;
		return HRT_NORESTART;
	case B_START_OTHER:
		if (o->setup)
			start_checked(o, arm_value(o, s->delay), s->slack);
		return HRT_NORESTART;
	case B_CANCEL_OTHER:
		if (o->setup) {
			int q = hrt_timer_is_queued(o->t);

			rc = hrt_timer_cancel(o->t);
			ENSURE(rc == q, "cancel other: %d, queued %d", rc, q);
			/* a due timer behind it may now lead a base already run */
			changed_in_callback = true;
		}
		if (o == s)
			return HRT_RESTART; /* cancelled itself: ignored */
		return hrt_timer_forward_now(t, s->interval) >= 0 &&
		       hrt_timer_get_softexpires(t) > now ? restart(s, false) : HRT_NORESTART;
	case B_FORWARD_OTHER:
		if (o->setup) {
			int q = hrt_timer_is_queued(o->t);
			int64_t n = hrt_timer_forward(o->t, now, s->interval);

			if (q)
				ENSURE(n == -EBUSY, "forward of a queued timer: %lld", (long long)n);
			else
				ENSURE(n >= 0, "forward of a stopped timer: %lld", (long long)n);
		}
		return HRT_NORESTART;
	case B_ADVANCE: {
		int64_t n = hrt_domain_advance(dom, 1);

		ENSURE(n == -EBUSY, "advance from a callback returned %lld", (long long)n);
		return HRT_NORESTART;
	}
	case B_REARM_PAST: {
		int64_t e = s->mode & HRT_MODE_REL ? 0 : now - s->delay;

		start_checked(s, e, s->slack);
		return HRT_RESTART;
	}
	case B_FREE_SELF:
		hrt_timer_free(t);
		/* the slot gets a fresh timer, not set up */
		s->t = hrt_timer_alloc();
		ENSURE(s->t != NULL, "out of memory");
		s->setup = false;
		changed_in_callback = true;
		return HRT_RESTART; /* ignored: freed */
	case B_STOP_RUN:
		rc = hrt_timer_stop_expiry(t);
		ENSURE(rc == 0, "stop_expiry from own callback = %d", rc);
		stopped_run = true;
		return HRT_NORESTART;
	case B_FORK: {
		pid_t pid;
		int status;

		if (n_forks >= MAX_FORKS)
			return HRT_NORESTART;
		n_forks++;
		fflush(NULL);
		pid = fork();
		ENSURE(pid >= 0, "fork failed");
		if (pid == 0) {
			/* The child: the manual domain's state came along, and
			 * nothing blocks: cancel every timer, this one too. */
			alarm(10);
			check_domain("fork child");
			for (int k = 0; k < NTIMERS; k++)
				if (slots[k].setup)
					hrt_timer_cancel(slots[k].t);
			ENSURE(hrt_timer_callback_running(t) == 1, "child: own timer not running");
			_exit(0);
		}
		ENSURE(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		       WEXITSTATUS(status) == 0, "fork child failed (status %d)", status);
		return HRT_NORESTART;
	}
	}
	return HRT_NORESTART;
}

/* ---- operations ---- */

enum op {
	OP_SETUP, OP_START, OP_START_RANGE, OP_RESTART, OP_CANCEL, OP_TRY,
	OP_FORWARD, OP_FORWARD_NOW, OP_ADVANCE, OP_ADVANCE_NEXT, OP_SHIFT,
	OP_BEHAVIOUR, OP_COUNT
};

static void op_setup(struct slot *s)
{
	uint8_t b = u8();
	int clock = (b & 0x10) ? (int)(b & 0x0f) : clocks[b & 3];
	int mode = u8() & 0x0f;
	int was_active = s->setup && hrt_timer_is_active(s->t);
	int rc = hrt_timer_setup(s->t, dom, clock, mode, fuzz_cb, s, 0);
	bool known = clock == HRT_CLOCK_MONOTONIC || clock == HRT_CLOCK_REALTIME ||
		     clock == HRT_CLOCK_BOOTTIME || clock == HRT_CLOCK_TAI;
	int want;

	if (!known || ((mode & HRT_MODE_SOFT) && (mode & HRT_MODE_HARD)))
		want = -EINVAL;
	else if (mode & HRT_MODE_PINNED)
		want = -EOPNOTSUPP;
	else if (was_active)
		want = -EBUSY;
	else
		want = 0;
	ENSURE(rc == want, "setup(clock %d, mode %d) = %d, want %d", clock, mode, rc, want);
	if (rc == 0) {
		int base_clock = hrt_timer_clock(s->t);

		s->setup = true;
		s->clock = clock;
		s->mode = mode;
		ENSURE(base_clock == ((clock == HRT_CLOCK_REALTIME && (mode & HRT_MODE_REL))
					      ? HRT_CLOCK_MONOTONIC : clock),
		       "setup put clock %d (mode %d) on clock %d", clock, mode, base_clock);
		ENSURE(!hrt_timer_is_active(s->t), "active right after setup");
	}
}

static void op_start(struct slot *s, bool range)
{
	int64_t e = (s->mode & HRT_MODE_REL) ? time_arg(false) : arm_value(s, time_arg(true));
	int64_t slack = range ? time_arg(true) : 0;
	int was_active = hrt_timer_is_active(s->t);
	int rc = hrt_timer_start_range(s->t, e, slack);

	if (!s->setup || slack < 0) {
		ENSURE(rc == -EINVAL, "start(not set up or slack %lld) = %d", (long long)slack, rc);
		return;
	}
	ENSURE(rc == !was_active, "start = %d, was_active %d", rc, was_active);
	armed(s);
	ENSURE(hrt_timer_get_softexpires(s->t) <= hrt_timer_get_expires(s->t),
	       "soft > hard after start");
}

static void op_restart(struct slot *s)
{
	int64_t soft = hrt_timer_get_softexpires(s->t), hard = hrt_timer_get_expires(s->t);
	int was_active = hrt_timer_is_active(s->t);
	int rc = hrt_timer_restart(s->t);

	if (!s->setup) {
		ENSURE(rc == -EINVAL, "restart of a timer never set up = %d", rc);
		return;
	}
	ENSURE(rc == !was_active, "restart = %d, was_active %d", rc, was_active);
	armed(s);
	ENSURE(hrt_timer_get_softexpires(s->t) == soft && hrt_timer_get_expires(s->t) == hard,
	       "restart moved the expiry");
}

static void op_cancel(struct slot *s, bool try)
{
	int q = hrt_timer_is_queued(s->t);
	int rc = try ? hrt_timer_try_to_cancel(s->t) : hrt_timer_cancel(s->t);

	ENSURE(rc == q, "%s = %d, was queued %d", try ? "try_to_cancel" : "cancel", rc, q);
	ENSURE(!hrt_timer_is_active(s->t), "active after cancel");
}

static void op_forward(struct slot *s, bool use_now)
{
	int64_t interval = u8() & 1 ? interval_arg() : -time_arg(false);
	int64_t now = use_now ? hrt_timer_now(s->t) : time_arg(true);
	int64_t before = hrt_timer_get_softexpires(s->t);
	int q = hrt_timer_is_queued(s->t);
	int64_t n = use_now ? hrt_timer_forward_now(s->t, interval)
			    : hrt_timer_forward(s->t, now, interval);

	if (!s->setup || interval <= 0) {
		ENSURE(n == -EINVAL, "forward(interval %lld) = %lld", (long long)interval,
		       (long long)n);
		return;
	}
	if (q) {
		ENSURE(n == -EBUSY, "forward of a queued timer = %lld", (long long)n);
		return;
	}
	ENSURE(n >= 0, "forward = %lld", (long long)n);
	/* counted from the soft expiry (API.md section 4) */
	if (now < before)
		ENSURE(n == 0 && hrt_timer_get_softexpires(s->t) == before,
		       "forward before the soft expiry changed it");
	else
		ENSURE(n >= 1 && (hrt_timer_get_softexpires(s->t) > now ||
				  hrt_timer_get_softexpires(s->t) == INT64_MAX),
		       "forward(now %lld, interval %lld) from soft %lld = %lld, soft now %lld",
		       (long long)now, (long long)interval, (long long)before,
		       (long long)n, (long long)hrt_timer_get_softexpires(s->t));
}

static void do_advance(int64_t delta)
{
	int64_t ran;

	budget = 0;
	changed_in_callback = false;
	stopped_run = false;
	advance_seq++;
	ran = hrt_domain_advance(dom, delta);
	if (delta < 0) {
		ENSURE(ran == -EINVAL, "advance(%lld) = %lld", (long long)delta, (long long)ran);
		return;
	}
	if (stopped_run) {
		ENSURE(ran == -EINTR, "advance stopped by a callback = %lld", (long long)ran);
		return;
	}
	ENSURE(ran >= 0, "advance = %lld", (long long)ran);
	if (changed_in_callback)
		return;
	/* No callback armed or cancelled a timer: nothing due is left behind
	 * but timers that ran in this advance (due again: the next one). */
	for (int h = 0; h < HRT_NCTX; h++) {
		for (int i = 0; i < HRT_NCLOCKS; i++) {
			struct hrt_clock_base *b = &dom->ctx[h].clock_base[i];
			struct tq_node *order[NTIMERS], *n = NULL;
			size_t count = sorted_nodes(&b->queue, order);

			for (size_t k = 0; k < count && !n; k++)
				if (((struct slot *)node_timer(order[k])->data)->last_advance !=
				    advance_seq)
					n = order[k];
			if (n)
				ENSURE(node_timer(n)->soft_expires > hrt_base_now(b),
				       "a due timer was left queued (ctx %d base %d): timer %d "
				       "soft %lld hard %lld, now %lld", h, i,
				       (int)((struct slot *)node_timer(n)->data - slots),
				       (long long)node_timer(n)->soft_expires,
				       (long long)n->expires, (long long)hrt_base_now(b));
		}
	}
}

static void op_advance_next(void)
{
	int64_t best = INT64_MAX;

	for (int h = 0; h < HRT_NCTX; h++) {
		for (int i = 0; i < HRT_NCLOCKS; i++) {
			struct hrt_clock_base *b = &dom->ctx[h].clock_base[i];
			struct tq_node *n = tq_getnext(&b->queue);
			int64_t gap;

			if (!n)
				continue;
			if (__builtin_sub_overflow(node_timer(n)->soft_expires,
						   hrt_base_now(b), &gap))
				gap = INT64_MAX;
			if (gap < best)
				best = gap;
		}
	}
	do_advance(best < 0 ? 0 : best == INT64_MAX ? 0 : best + (u8() & 1));
}

static void op_behaviour(struct slot *s)
{
	s->behaviour = u8() % B_COUNT;
	s->other = u8() % NTIMERS;
	s->count = u8() % 4;
	s->interval = interval_arg();
	s->delay = time_arg(false) % 64;
	s->slack = u8() % 8;
}

static const char *const op_names[] = {
	"setup", "start", "start_range", "restart", "cancel", "try_to_cancel",
	"forward", "forward_now", "advance", "advance_next", "shift", "behaviour",
};

static void run_op(void)
{
	uint8_t b = u8();
	struct slot *s = &slots[(b >> 4) % NTIMERS];

	n_ops++;
	if (tracing < 0)
		tracing = getenv("FUZZ_OPS_TRACE") != NULL;
	if (tracing)
		fprintf(stderr, "op %s timer %d (setup %d clock %d mode %d behaviour %d)\n",
			op_names[b % OP_COUNT], (int)(s - slots), s->setup, s->clock,
			s->mode, s->behaviour % B_COUNT);
	switch (b % OP_COUNT) {
	case OP_SETUP:
		op_setup(s);
		break;
	case OP_START:
		op_start(s, false);
		break;
	case OP_START_RANGE:
		op_start(s, true);
		break;
	case OP_RESTART:
		op_restart(s);
		break;
	case OP_CANCEL:
		op_cancel(s, false);
		break;
	case OP_TRY:
		op_cancel(s, true);
		break;
	case OP_FORWARD:
		op_forward(s, false);
		break;
	case OP_FORWARD_NOW:
		op_forward(s, true);
		break;
	case OP_ADVANCE: {
		uint8_t k = u8();

		do_advance(k == 0xff ? -1 : time_arg(false));
		break;
	}
	case OP_ADVANCE_NEXT:
		op_advance_next();
		break;
	case OP_SHIFT:
		hrt_domain_shift_realtime(dom, (int64_t)(int8_t)u8());
		break;
	case OP_BEHAVIOUR:
		op_behaviour(s);
		break;
	}
	check_domain("after operation");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc;

	cur_data = data;
	cur_size = size;
	in_p = data;
	in_end = data + size;
	/* clocks from 0 to 3 * 2^40, or 100 ns short of saturating */
	uint8_t start = u8() % 5;

	rc = hrt_domain_new_manual(&dom, start == 4 ? INT64_MAX - 100 : (int64_t)start << 40);
	ENSURE(rc == 0, "hrt_domain_new_manual = %d", rc);
	for (int k = 0; k < NTIMERS; k++) {
		struct slot *s = &slots[k];

		memset(s, 0, sizeof(*s));
		s->t = hrt_timer_alloc();
		ENSURE(s->t != NULL, "out of memory");
		s->interval = 1;
		/* half the timers start set up, so short inputs reach the queue */
		if (k % 2 == 0) {
			s->mode = (k & 4) ? HRT_MODE_ABS : HRT_MODE_REL;
			s->mode |= (k & 8) ? HRT_MODE_HARD : 0;
			s->clock = clocks[(k / 2) % 4];
			rc = hrt_timer_setup(s->t, dom, s->clock, s->mode, fuzz_cb, s, 0);
			ENSURE(rc == 0, "initial setup = %d", rc);
			s->setup = true;
		}
	}
	while (in_p < in_end)
		run_op();
	for (int k = 0; k < NTIMERS; k++) {
		rc = hrt_timer_cancel(slots[k].t);
		ENSURE(rc == 0 || rc == 1, "final cancel = %d", rc);
	}
	check_domain("end");
	for (int k = 0; k < NTIMERS; k++) {
		hrt_timer_free(slots[k].t);
		slots[k].t = NULL;
	}
	rc = hrt_domain_free(dom);
	ENSURE(rc == 0, "hrt_domain_free = %d", rc);
	dom = NULL;
	return 0;
}

#ifndef FUZZ_LIBFUZZER

static uint64_t rng;
static unsigned long long cur_input, cur_seed;

/* A hang (a corrupt queue loops) fails the run instead of stalling it. */
static void on_alarm(int sig)
{
	char msg[160];
	int n = snprintf(msg, sizeof(msg),
			 "fuzz_ops: input %llu of seed %llu still running after 30 s: hang\n",
			 cur_input, cur_seed);

	(void)sig;
	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	abort();
}

static uint64_t next_rand(void)
{
	/* splitmix64 */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int replay(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		static uint8_t buf[1 << 20];
		size_t n;

		if (!f) {
			perror(argv[i]);
			return 2;
		}
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
		printf("fuzz_ops: %s: ok (%zu bytes)\n", argv[i], n);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[1024];
	unsigned long long inputs = 20000, seed = 1, bytes = 0;
	char *end;

	if (argc > 1) {
		inputs = strtoull(argv[1], &end, 0);
		if (*end)
			return replay(argc, argv);
	}
	if (argc > 2)
		seed = strtoull(argv[2], NULL, 0);
	rng = seed;
	cur_seed = seed;
	signal(SIGALRM, on_alarm);
	for (unsigned long long i = 0; i < inputs; i++) {
		size_t n = 1 + next_rand() % sizeof(buf);

		cur_input = i;
		alarm(30);

		/* mostly short programs, some long ones */
		if (next_rand() % 4)
			n = 1 + n % 96;
		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)next_rand();
		bytes += n;
		LLVMFuzzerTestOneInput(buf, n);
	}
	alarm(0);
	printf("fuzz_ops: %llu inputs (seed %llu, %llu bytes), %llu operations, "
	       "%llu callbacks, %llu queue checks: no violation\n",
	       inputs, seed, bytes, (unsigned long long)n_ops,
	       (unsigned long long)n_callbacks, (unsigned long long)n_checks);
	printf("1 passed, 0 failed\n");
	return 0;
}
#endif
