/*
 * hrtimer.c - timer operations: setup, start, cancel, forward, introspection,
 * the expiry run shared by real and manual domains (and a manual domain's
 * advance, which is one), the host hooks, and what a fork child does to the
 * timers. The domains themselves are in domain.c, below this file.
 *
 * Internals prefixed with __ expect the context lock held; public entry
 * points take it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hrt_internal.h"

const struct hrt_host *hrt_host_hooks;
static struct hrt_host host_copy;


/* Host data of hosted activations a fork child inherited without their
 * threads: released by hrt_fork_release_orphans(). Not linked through the
 * timers, which the child may re-arm or free first. */
struct orphan {
	void *data;
	struct orphan *next;
};
static struct orphan *_Atomic fork_orphans;

static inline struct hrt_timer *node_timer(struct tq_node *n)
{
	return (struct hrt_timer *)((char *)n - offsetof(struct hrt_timer, node));
}

static inline struct hrt_clock_base *timer_base(const struct hrt_timer *t)
{
	return __atomic_load_n(&t->base, __ATOMIC_ACQUIRE);
}

static inline bool timer_running(const struct hrt_timer *t)
{
	return t->base->running == t;
}

/*
 * Lock the context of t's base (Linux's lock_hrtimer_base): a concurrent
 * setup may move the timer, so the base is read again under the lock.
 */
static struct hrt_cpu_base *lock_timer(const struct hrt_timer *t)
{
	for (;;) {
		struct hrt_cpu_base *cpu_base = timer_base(t)->cpu_base;

		pthread_mutex_lock(&cpu_base->lock);
		if (timer_base(t)->cpu_base == cpu_base)
			return cpu_base;
		pthread_mutex_unlock(&cpu_base->lock);
	}
}

static inline bool timer_set_up(const struct hrt_timer *t)
{
	return t && (__atomic_load_n(&t->state, __ATOMIC_ACQUIRE) & HRT_ST_SETUP);
}

static int64_t hrt_run_expiry(struct hrt_cpu_base *cpu_base);

/* ---- fork: the child starts with no armed timers on real domains ---- */

/* In a fork child: the activation of hosted timer t ends without its
 * thread; its host data goes to the orphans. */
static void orphan(struct hrt_timer *t)
{
	struct orphan *o;

	if (!(t->flags & HRT_F_HOSTED) || !t->data)
		return;
	o = malloc(sizeof(*o));
	if (o) {	/* out of memory: the reference leaks, nothing worse */
		o->data = t->data;
		o->next = atomic_load(&fork_orphans); /* the child's one thread */
		atomic_store(&fork_orphans, o);
	}
	t->data = NULL;
}

/*
 * The child of a fork has one thread: the one that forked. Per context of
 * every domain (the domain's locks are new already, see domain.c): real
 * domains start afresh: no queued timers, no threads; a hosted activation
 * whose callback is running on the forking thread stays with that callback
 * (its expiry run ends it when the callback returns, see __run_timer);
 * every other hosted activation becomes an orphan. Manual domains keep
 * their queues; an expiry run of another thread (which never returns in the
 * child) is ended: its running timer stops running.
 */
static void fork_child_timers(struct hrt_cpu_base *cpu_base, bool mine)
{
	if (cpu_base->domain->manual) {
		if (mine || !cpu_base->in_expiry)
			return;
		cpu_base->in_expiry = false;
		for (int i = 0; i < HRT_NCLOCKS; i++) {
			struct hrt_clock_base *b = &cpu_base->clock_base[i];
			struct hrt_timer *t = b->running;

			b->running = NULL;
			if (t && !tq_node_queued(&t->node))
				orphan(t);
		}
		return;
	}
	for (int i = 0; i < HRT_NCLOCKS; i++) {
		struct hrt_clock_base *b = &cpu_base->clock_base[i];
		struct tq_node *n;

		while ((n = tq_getnext(&b->queue))) {
			struct hrt_timer *t = node_timer(n);

			tq_del(&b->queue, n);
			if (b->running != t)
				orphan(t);
		}
		if (b->running && !mine) {
			orphan(b->running);
			b->running = NULL;
		}
	}
	cpu_base->in_expiry = false;
	cpu_base->next_event = HRT_KTIME_MAX;
	hrt_cpu_base_forget_thread(cpu_base);
}

int hrt_fork_release_orphans(void)
{
	struct orphan *o;
	int n = 0;

	o = atomic_exchange(&fork_orphans, NULL);
	while (o) {
		struct orphan *next = o->next;

		if (hrt_host_hooks)
			hrt_host_hooks->release(o->data);
		free(o);
		o = next;
		n++;
	}
	return n;
}

int hrt_set_host(const struct hrt_host *host)
{
	if (!host || !host->acquire || !host->release || !host->batch_enter ||
	    !host->batch_exit)
		return -EINVAL;
	if (hrt_host_hooks)
		return -EBUSY;
	host_copy = *host;
	hrt_host_hooks = &host_copy;
	return 0;
}

void hrt_host_block(void)
{
	host_block();
}

/* ---- timers ---- */

struct hrt_timer *hrt_timer_alloc(void)
{
	struct hrt_timer *t = calloc(1, sizeof(*t));

	if (t)
		tq_node_init(&t->node);
	return t;
}

size_t hrt_timer_size(void)
{
	return sizeof(struct hrt_timer);
}

void hrt_timer_free(struct hrt_timer *t)
{
	if (!t)
		return;
	if (timer_set_up(t)) {
		struct hrt_cpu_base *cpu_base = lock_timer(t);

		if (timer_running(t) && on_callback_thread(cpu_base)) {
			/* Its own callback: the expiry run frees it on return. */
			if (tq_node_queued(&t->node))
				tq_del(&t->base->queue, &t->node);
			t->cancelled = 1;
			t->free_deferred = 1;
			pthread_mutex_unlock(&cpu_base->lock);
			return;
		}
		pthread_mutex_unlock(&cpu_base->lock);
		hrt_timer_cancel(t);
		cpu_base = lock_timer(t);
		tq_unreserve(&t->base->queue);
		pthread_mutex_unlock(&cpu_base->lock);
		hrt_domain_put(cpu_base->domain);
	}
	free(t);
}

int hrt_timer_setup(struct hrt_timer *t, struct hrt_domain *d, int clock,
		    int mode, hrt_callback_t fn, void *data, int flags)
{
	int i = hrt_clock_index(clock);
	struct hrt_cpu_base *cpu_base;

	if (!t || !fn || i < 0)
		return -EINVAL;
	hrt_domains_set_fork_hook(fork_child_timers);
	if (mode & ~(HRT_MODE_REL | HRT_MODE_PINNED | HRT_MODE_SOFT | HRT_MODE_HARD))
		return -EINVAL;
	if ((mode & HRT_MODE_SOFT) && (mode & HRT_MODE_HARD))
		return -EINVAL;
	if (mode & HRT_MODE_PINNED)
		return -EOPNOTSUPP;
	if (flags & ~HRT_F_HOSTED)
		return -EINVAL;
	if ((flags & HRT_F_HOSTED) && !hrt_host_hooks)
		return -EINVAL;
	if (!d)
		d = hrt_default_domain();
	if (d->manual && atomic_load(&d->freed))
		return -EINVAL;
	/* A relative REALTIME timer must not follow wall-clock jumps. */
	if (clock == HRT_CLOCK_REALTIME && (mode & HRT_MODE_REL))
		i = hrt_clock_index(HRT_CLOCK_MONOTONIC);
	if (!(mode & HRT_MODE_HARD))
		cpu_base = &d->ctx[HRT_CTX_SOFT];
	else if (flags & HRT_F_HOSTED)
		cpu_base = &d->ctx[HRT_CTX_HARD_HOSTED];
	else
		cpu_base = &d->ctx[HRT_CTX_HARD];

	/* A timer set up on a base holds a slot of its queue: starts and
	 * restarts never allocate (see timerqueue.h). Taken first, without
	 * holding two contexts' locks; given back if the setup fails. */
	struct tq_head *q = &cpu_base->clock_base[i].queue;
	int err;

	pthread_mutex_lock(&cpu_base->lock);
	err = tq_reserve(q);
	pthread_mutex_unlock(&cpu_base->lock);
	if (err)
		return err;

	/* Re-setup: checked and rewritten under the old base's lock, so a
	 * concurrent start either sees it active or retries on the new base. */
	struct hrt_cpu_base *old = NULL;
	struct hrt_domain *old_domain = NULL;

	if (timer_set_up(t)) {
		old = lock_timer(t);
		if (tq_node_queued(&t->node) || timer_running(t)) {
			pthread_mutex_unlock(&old->lock);
			pthread_mutex_lock(&cpu_base->lock);
			tq_unreserve(q);
			pthread_mutex_unlock(&cpu_base->lock);
			return -EBUSY;
		}
		tq_unreserve(&t->base->queue);
		old_domain = old->domain;
	}
	hrt_domain_get(d);
	tq_node_init(&t->node);
	t->fn = fn;
	t->data = data;
	t->mode = (uint8_t)mode;
	t->flags = (uint8_t)flags;
	t->soft_expires = 0;
	t->node.expires = 0;
	t->cancelled = 0;
	t->free_deferred = 0;
	t->pass = 0;
	__atomic_store_n(&t->base, &cpu_base->clock_base[i], __ATOMIC_RELEASE);
	if (old)
		pthread_mutex_unlock(&old->lock);
	else
		__atomic_store_n(&t->state, HRT_ST_SETUP, __ATOMIC_RELEASE);
	if (old_domain)
		hrt_domain_put(old_domain);
	return 0;
}

/* Program the context for a newly first timer if it moves the event earlier. */
static void __maybe_reprogram(struct hrt_cpu_base *cpu_base, struct hrt_timer *t)
{
	int64_t mono;

	if (cpu_base->in_expiry)
		return; /* the run reprograms when it ends */
	mono = sat_sub(t->node.expires, hrt_base_offset(t->base));
	if (mono < cpu_base->next_event)
		hrt_cpu_base_program(cpu_base, mono);
}

static int __start(struct hrt_timer *t, int64_t soft, int64_t hard,
		   bool set_data, void *data)
{
	struct hrt_clock_base *b = t->base;
	struct hrt_cpu_base *cpu_base = b->cpu_base;
	bool was_active;

	if (atomic_load(&cpu_base->domain->stopped))
		return -ESHUTDOWN;
	if (!cpu_base->domain->manual) {
		int err;

		cpu_base->run = hrt_run_expiry; /* what the thread calls */
		err = hrt_cpu_base_ensure_thread(cpu_base);

		if (err)
			return err;
	}
	was_active = tq_node_queued(&t->node) || timer_running(t);
	if (!was_active && set_data)
		t->data = data;
	/* A hosted activation must come with its data (see start_range_data). */
	if (!was_active && (t->flags & HRT_F_HOSTED) && !t->data)
		return -EINVAL;
	if (tq_node_queued(&t->node))
		tq_del(&b->queue, &t->node);
	t->soft_expires = soft;
	t->node.expires = hard;
	t->cancelled = 0;
	if (tq_add(&b->queue, &t->node))
		__maybe_reprogram(cpu_base, t);
	return was_active ? 0 : 1;
}

static int __start_common(struct hrt_timer *t, bool rearm, int64_t expires,
			  int64_t slack, bool set_data, void *data)
{
	if (rearm)
		return __start(t, t->soft_expires, t->node.expires, set_data, data);
	if (t->mode & HRT_MODE_REL)
		expires = sat_add(hrt_base_now(t->base), expires);
	return __start(t, expires, sat_add(expires, slack), set_data, data);
}

/*
 * A hosted activation takes its host reference before the timer is queued
 * (the callback may run, and the activation end, at once): the reference
 * is taken without the lock (the host may block, e.g. for the GIL) on the
 * data this start would activate with, and handed back if the start did
 * not activate the timer after all.
 */
static int start_common(struct hrt_timer *t, bool rearm, int64_t expires,
			int64_t slack, bool set_data, void *data)
{
	struct hrt_cpu_base *cpu_base;
	int ret;

	if (!timer_set_up(t))
		return -EINVAL;
	if (slack < 0)
		return -EINVAL;
	cpu_base = lock_timer(t);
	if (!(t->flags & HRT_F_HOSTED) || tq_node_queued(&t->node) || timer_running(t)) {
		ret = __start_common(t, rearm, expires, slack, set_data, data);
		pthread_mutex_unlock(&cpu_base->lock);
		return ret;
	}
	/* Hosted and inactive: this start should activate it. */
	if (!set_data)
		data = t->data;
	pthread_mutex_unlock(&cpu_base->lock);
	if (!data)
		return -EINVAL; /* a hosted activation must come with its data */
	hrt_host_hooks->acquire(data);
	cpu_base = lock_timer(t);
	ret = __start_common(t, rearm, expires, slack, true, data);
	pthread_mutex_unlock(&cpu_base->lock);
	if (ret != 1)
		hrt_host_hooks->release(data);
	return ret;
}

int hrt_timer_start_range(struct hrt_timer *t, int64_t expires, int64_t slack)
{
	return start_common(t, false, expires, slack, false, NULL);
}

int hrt_timer_start_range_data(struct hrt_timer *t, int64_t expires,
			       int64_t slack, void *data)
{
	return start_common(t, false, expires, slack, true, data);
}

int hrt_timer_restart(struct hrt_timer *t)
{
	return start_common(t, true, 0, 0, false, NULL);
}

/*
 * An activation of a hosted timer ends: its data goes back to the caller,
 * who releases it after dropping the lock. Returns the data to release.
 */
static void *__end_activation(struct hrt_timer *t, bool ended)
{
	void *data = t->data;

	if (ended && (t->flags & HRT_F_HOSTED))
		t->data = NULL;
	return data;
}

/* Remove a queued timer. Stale timerfd programming is left: it wakes early. */
static void __remove(struct hrt_timer *t)
{
	tq_del(&t->base->queue, &t->node);
}

int hrt_timer_try_to_cancel(struct hrt_timer *t)
{
	struct hrt_cpu_base *cpu_base;
	bool hosted;
	void *data;
	int ret = 0;

	if (!timer_set_up(t))
		return 0;
	cpu_base = lock_timer(t);
	if (timer_running(t)) {
		ret = -1;
	} else if (tq_node_queued(&t->node)) {
		__remove(t);
		ret = 1;
	}
	data = __end_activation(t, ret == 1);
	hosted = t->flags & HRT_F_HOSTED;
	pthread_mutex_unlock(&cpu_base->lock);
	if (ret == 1 && hosted)
		hrt_host_hooks->release(data);
	return ret;
}

int hrt_timer_cancel(struct hrt_timer *t)
{
	struct hrt_cpu_base *cpu_base;
	bool ended = false, hosted, blocked = false;
	void *data;
	int ret = 0;

	if (!timer_set_up(t))
		return 0;
	cpu_base = lock_timer(t);
	for (;;) {
		if (timer_running(t)) {
			if (on_callback_thread(cpu_base)) {
				/* Own callback: never wait for ourselves. */
				if (tq_node_queued(&t->node)) {
					__remove(t);
					ret = 1;
				}
				t->cancelled = 1;
				break;
			}
			if (!blocked) {
				/* The host lets its lock go first (the callback
				 * may need it), never under ours. */
				pthread_mutex_unlock(&cpu_base->lock);
				host_block();
				blocked = true;
				cpu_base = lock_timer(t);
				continue;
			}
			cpu_base->waiters++;
			pthread_cond_wait(&cpu_base->cond, &cpu_base->lock);
			cpu_base->waiters--;
			continue;
		}
		if (tq_node_queued(&t->node)) {
			__remove(t);
			ret = 1;
			ended = true;
		}
		break;
	}
	data = __end_activation(t, ended);
	hosted = t->flags & HRT_F_HOSTED;
	pthread_mutex_unlock(&cpu_base->lock);
	if (ended && hosted)
		hrt_host_hooks->release(data);
	return ret;
}

static inline int64_t sat128(__int128 v)
{
	if (v > INT64_MAX)
		return INT64_MAX;
	if (v < INT64_MIN)
		return INT64_MIN;
	return (int64_t)v;
}

/*
 * Linux's hrtimer_forward in exact arithmetic, counted from the soft
 * expiry: the fewest whole intervals that put the soft expiry after `now`
 * (delta / interval + 1, which is what the kernel's two steps compute),
 * added to both expiries; the count and the expiries saturate at the int64
 * limits. A timer run inside its slack window has expired, so it moves on
 * (with slack 0 this is exactly the kernel's rule).
 */
static int64_t __forward(struct hrt_timer *t, int64_t now, int64_t interval)
{
	__int128 delta, orun, incr;

	if (tq_node_queued(&t->node))
		return -EBUSY;
	if (timer_running(t) && !on_callback_thread(t->base->cpu_base))
		return -EBUSY;
	delta = (__int128)now - t->soft_expires;
	if (delta < 0)
		return 0;
	orun = delta / interval + 1;
	incr = orun * interval;
	t->node.expires = sat128(t->node.expires + incr);
	t->soft_expires = sat128(t->soft_expires + incr);
	return sat128(orun);
}

static int64_t forward_common(struct hrt_timer *t, bool use_now, int64_t now,
			      int64_t interval)
{
	struct hrt_cpu_base *cpu_base;
	int64_t ret;

	if (!timer_set_up(t) || interval <= 0)
		return -EINVAL;
	cpu_base = lock_timer(t);
	if (use_now)
		now = hrt_base_now(t->base);
	ret = __forward(t, now, interval);
	pthread_mutex_unlock(&cpu_base->lock);
	return ret;
}

int64_t hrt_timer_forward(struct hrt_timer *t, int64_t now, int64_t interval)
{
	return forward_common(t, false, now, interval);
}

int64_t hrt_timer_forward_now(struct hrt_timer *t, int64_t interval)
{
	return forward_common(t, true, 0, interval);
}

static int64_t read_locked(const struct hrt_timer *t, const int64_t *field)
{
	struct hrt_cpu_base *cpu_base;
	int64_t v;

	if (!timer_set_up(t))
		return 0;
	cpu_base = lock_timer(t);
	v = *field;
	pthread_mutex_unlock(&cpu_base->lock);
	return v;
}

int64_t hrt_timer_get_expires(const struct hrt_timer *t)
{
	return read_locked(t, &t->node.expires);
}

int64_t hrt_timer_get_softexpires(const struct hrt_timer *t)
{
	return read_locked(t, &t->soft_expires);
}

int64_t hrt_timer_now(struct hrt_timer *t)
{
	if (!timer_set_up(t))
		return 0;
	return hrt_base_now(timer_base(t));
}

int64_t hrt_timer_get_remaining(struct hrt_timer *t)
{
	if (!timer_set_up(t))
		return 0;
	return sat_sub(hrt_timer_get_expires(t), hrt_base_now(timer_base(t)));
}

int64_t hrt_timer_cb_now(struct hrt_timer *t)
{
	struct hrt_cpu_base *cpu_base;
	int64_t now;

	if (!timer_set_up(t))
		return 0;
	cpu_base = timer_base(t)->cpu_base;
	/* On its own callback's thread, running and run_now are ours: no lock. */
	if (on_callback_thread(cpu_base) && t->base->running == t)
		return t->base->run_now;
	cpu_base = lock_timer(t);
	now = timer_running(t) ? t->base->run_now : hrt_base_now(t->base);
	pthread_mutex_unlock(&cpu_base->lock);
	return now;
}

/* What hrt_timer_is_active / _is_queued / _callback_running ask. */
enum timer_query { Q_ACTIVE, Q_QUEUED, Q_RUNNING };

static int query(struct hrt_timer *t, enum timer_query what)
{
	struct hrt_cpu_base *cpu_base;
	int ret;

	if (!timer_set_up(t))
		return 0;
	cpu_base = lock_timer(t);
	switch (what) {
	case Q_ACTIVE:
		ret = tq_node_queued(&t->node) || timer_running(t);
		break;
	case Q_QUEUED:
		ret = tq_node_queued(&t->node);
		break;
	default:
		ret = timer_running(t);
		break;
	}
	pthread_mutex_unlock(&cpu_base->lock);
	return ret;
}

int hrt_timer_is_active(struct hrt_timer *t)
{
	return query(t, Q_ACTIVE);
}

int hrt_timer_is_queued(struct hrt_timer *t)
{
	return query(t, Q_QUEUED);
}

int hrt_timer_callback_running(struct hrt_timer *t)
{
	return query(t, Q_RUNNING);
}

int hrt_timer_clock(const struct hrt_timer *t)
{
	if (!timer_set_up(t))
		return -EINVAL;
	return timer_base(t)->clockid;
}

int hrt_timer_mode(const struct hrt_timer *t)
{
	if (!timer_set_up(t))
		return -EINVAL;
	return t->mode;
}

void hrt_timer_set_owner(struct hrt_timer *t, void *owner)
{
	t->owner = owner;
}

void *hrt_timer_owner(const struct hrt_timer *t)
{
	return t->owner;
}

/* ---- expiry ---- */

/*
 * Run one due timer: dequeue, mark running, call it without the lock,
 * re-queue on RESTART unless re-armed or cancelled meanwhile; a hosted
 * timer whose activation ended gets its host reference released last; a
 * timer freed by its own callback is freed here. Lock held on entry and
 * exit (dropped inside). Returns false if the callback forked and this is
 * the child's copy of a real domain's expiry run: the child's core started
 * afresh without this run, which must end at once.
 */
static bool __run_timer(struct hrt_cpu_base *cpu_base, struct hrt_clock_base *b,
			struct hrt_timer *t)
{
	hrt_callback_t fn = t->fn;
	void *data = t->data;
	bool hosted = t->flags & HRT_F_HOSTED;
	unsigned gen = atomic_load(&hrt_fork_generation);
	bool child;
	int restart;

	tq_del(&b->queue, &t->node);
	t->cancelled = 0;
	b->running = t;
	pthread_mutex_unlock(&cpu_base->lock);

	restart = fn(t, data);

	pthread_mutex_lock(&cpu_base->lock);
	child = atomic_load(&hrt_fork_generation) != gen && !cpu_base->domain->manual;
	cpu_base->stats.timers_run++;
	if (restart == HRT_RESTART && !tq_node_queued(&t->node) &&
	    !t->cancelled && !child)
		tq_add(&b->queue, &t->node);
	b->running = NULL;
	if (cpu_base->waiters)
		pthread_cond_broadcast(&cpu_base->cond);
	if (t->free_deferred && tq_node_queued(&t->node))
		tq_del(&b->queue, &t->node); /* re-armed after its free */
	if (t->free_deferred || (hosted && !tq_node_queued(&t->node))) {
		/* The activation ended: the host's reference goes last. */
		bool free_it = t->free_deferred;
		struct hrt_domain *d = cpu_base->domain;

		__end_activation(t, true);
		if (free_it)
			tq_unreserve(&b->queue);
		pthread_mutex_unlock(&cpu_base->lock);
		if (hosted)
			hrt_host_hooks->release(data);
		if (free_it) {
			/* hrt_domain_advance holds a reference to a manual d,
			 * real domains are never freed: not the last put. */
			hrt_domain_put(d);
			free(t);
		}
		pthread_mutex_lock(&cpu_base->lock);
	}
	return !child;
}

/* Earliest hard expiry of the context, as MONOTONIC ns. */
static int64_t __next_event(struct hrt_cpu_base *cpu_base)
{
	int64_t next = HRT_KTIME_MAX;

	for (int i = 0; i < HRT_NCLOCKS; i++) {
		struct hrt_clock_base *b = &cpu_base->clock_base[i];
		struct tq_node *n = tq_getnext(&b->queue);
		int64_t mono;

		if (!n)
			continue;
		/* Hosted timers left queued after stop do not count. */
		if (atomic_load(&cpu_base->domain->stopped) &&
		    (node_timer(n)->flags & HRT_F_HOSTED))
			continue;
		mono = sat_sub(n->expires, hrt_base_offset(b));
		if (mono < next)
			next = mono;
	}
	return next;
}

struct due_skip {
	const struct hrt_clock_base *b;
	uint64_t pass;
};

static bool ran_or_running(const struct tq_node *n, const void *arg)
{
	const struct due_skip *s = arg;
	const struct hrt_timer *t = node_timer((struct tq_node *)n);

	return t->pass == s->pass || s->b->running == t;
}

/*
 * The next timer of base b this run may call: the earliest one that has not
 * run in this run yet (a timer re-queued in the past by its own callback
 * waits for the next run; so does one whose callback runs on another
 * thread, which only a fork child can see).
 */
static struct tq_node *__next_due(struct hrt_clock_base *b, uint64_t pass)
{
	struct due_skip s = { b, pass };

	return tq_first_unskipped(&b->queue, ran_or_running, &s);
}

/*
 * One expiry run: for each clock base, run every timer whose soft expiry
 * has passed, in order, each at most once; then program the earliest hard
 * expiry. Retries when the next event is already due, at most three times
 * (then the timerfd fires at once and the thread comes back). Lock held.
 * Returns the number of callbacks run; *stopped tells whether a callback
 * ended the run early (hrt_timer_stop_expiry).
 */
static int64_t run_expiry(struct hrt_cpu_base *cpu_base, bool *stopped)
{
	struct hrt_pass pass = { .cpu_base = cpu_base, .outer = hrt_cur_pass };
	bool batch = false, child = false;
	int64_t ran = 0, next = HRT_KTIME_MAX;
	uint64_t id;

	cpu_base->in_expiry = true;
	hrt_cur_pass = &pass;
	id = ++cpu_base->pass_seq;
	cpu_base->stats.wakeups++;
	for (int tries = 0;; tries++) {
		for (int i = 0; i < HRT_NCLOCKS && !pass.stop; i++) {
			struct hrt_clock_base *b = &cpu_base->clock_base[i];
			struct tq_node *n;

			b->run_now = hrt_base_now(b);
			while ((n = __next_due(b, id))) {
				struct hrt_timer *t = node_timer(n);
				bool hosted = t->flags & HRT_F_HOSTED;

				if (t->soft_expires > b->run_now)
					break;
				if (hosted && atomic_load(&cpu_base->domain->stopped))
					break;
				if (hosted != batch) {
					/* Enter or leave the host batch, then look again. */
					pthread_mutex_unlock(&cpu_base->lock);
					if (hosted)
						hrt_host_hooks->batch_enter();
					else
						hrt_host_hooks->batch_exit();
					pthread_mutex_lock(&cpu_base->lock);
					batch = hosted;
					continue;
				}
				t->pass = id;
				ran++;
				if (!__run_timer(cpu_base, b, t)) {
					child = true;
					goto out;
				}
				if (pass.stop)
					break;
			}
		}
		next = __next_event(cpu_base);
		if (pass.stop || tries >= 2 || cpu_base->domain->manual ||
		    next > hrt_clock_read(CLOCK_MONOTONIC))
			break;
	}
out:
	if (batch) {
		pthread_mutex_unlock(&cpu_base->lock);
		hrt_host_hooks->batch_exit();
		pthread_mutex_lock(&cpu_base->lock);
	}
	hrt_cur_pass = pass.outer;
	*stopped = pass.stop;
	if (child)
		return ran; /* the child's core is not this run's to touch */
	if (batch)
		next = __next_event(cpu_base);
	if (!ran)
		cpu_base->stats.spurious++;
	cpu_base->in_expiry = false;
	hrt_cpu_base_program(cpu_base, next);
	return ran;
}

static int64_t hrt_run_expiry(struct hrt_cpu_base *cpu_base)
{
	bool stopped;

	return run_expiry(cpu_base, &stopped);
}

int hrt_timer_stop_expiry(struct hrt_timer *t)
{
	struct hrt_pass *p;

	if (!timer_set_up(t))
		return -EINVAL;
	p = pass_of(timer_base(t)->cpu_base);
	/* Only this thread writes `running` of a base it runs: no lock. */
	if (!p || !p->cpu_base->domain->manual || t->base->running != t)
		return -EINVAL;
	p->stop = true;
	return 0;
}

/* tq_first_unskipped's test: a node at or before the time *arg. */
static bool not_after(const struct tq_node *n, const void *arg)
{
	return n->expires <= *(const int64_t *)arg;
}

int hrt_domain_next_expiry(struct hrt_domain *d, int64_t after, int64_t *out)
{
	int64_t next = HRT_KTIME_MAX;

	if (!d || !d->manual || !out)
		return -EINVAL;
	for (int h = 0; h < HRT_NCTX; h++) {
		struct hrt_cpu_base *cpu_base = &d->ctx[h];

		pthread_mutex_lock(&cpu_base->lock);
		for (int i = 0; i < HRT_NCLOCKS; i++) {
			struct hrt_clock_base *b = &cpu_base->clock_base[i];
			int64_t offset = hrt_base_offset(b);
			int64_t limit = sat_add(after, offset); /* `after` on b's clock */
			struct tq_node *n = tq_first_unskipped(&b->queue, not_after, &limit);

			if (n) {
				int64_t mono = sat_sub(n->expires, offset);

				if (mono > after && mono < next)
					next = mono;
			}
		}
		pthread_mutex_unlock(&cpu_base->lock);
	}
	*out = next;
	return 0;
}

/* The manual clock moves by one atomic step, saturating. */
static void manual_add(struct hrt_domain *d, int64_t delta)
{
	int64_t old = atomic_load(&d->manual_now);

	while (!atomic_compare_exchange_weak(&d->manual_now, &old, sat_add(old, delta)))
		;
}

int64_t hrt_domain_advance(struct hrt_domain *d, int64_t delta_ns)
{
	static const int order[HRT_NCTX] = {
		HRT_CTX_HARD, HRT_CTX_HARD_HOSTED, HRT_CTX_SOFT,
	};
	int64_t ran = 0;

	if (!d || !d->manual || delta_ns < 0)
		return -EINVAL;
	for (int h = 0; h < HRT_NCTX; h++)
		if (on_callback_thread(&d->ctx[h]))
			return -EBUSY;
	manual_add(d, delta_ns);
	hrt_domain_get(d); /* a callback may free d meanwhile */
	for (int k = 0; k < HRT_NCTX; k++) {
		struct hrt_cpu_base *cpu_base = &d->ctx[order[k]];
		bool stopped = false;

		pthread_mutex_lock(&cpu_base->lock);
		if (cpu_base->in_expiry) {
			/* Another thread advances this domain right now. */
			pthread_mutex_unlock(&cpu_base->lock);
			continue;
		}
		ran += run_expiry(cpu_base, &stopped);
		pthread_mutex_unlock(&cpu_base->lock);
		if (stopped) {
			ran = -EINTR;
			break;
		}
	}
	hrt_domain_put(d);
	return ran;
}
