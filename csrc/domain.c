/*
 * domain.c - domains: the default (real) domain and manual ones, their
 * contexts and clock bases, references, clock reads, statistics, the
 * REALTIME shift, sleepers, stop, and the domain side of fork. Below the
 * timer operations (hrtimer.c): nothing here calls them; what a fork child
 * must do to the timers is a hook hrtimer.c installs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hrt_internal.h"

static const int clock_ids[HRT_NCLOCKS] = {
	HRT_CLOCK_MONOTONIC, HRT_CLOCK_REALTIME, HRT_CLOCK_BOOTTIME, HRT_CLOCK_TAI,
};

static struct hrt_domain default_domain;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t domains_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hrt_domain *domains;       /* all domains, for fork */
_Atomic unsigned hrt_fork_generation;
__thread struct hrt_pass *hrt_cur_pass;

/* What a fork child does to the timers of a context (hrtimer.c's). */
static void (*_Atomic fork_hook)(struct hrt_cpu_base *cpu_base, bool mine);

void hrt_domains_set_fork_hook(void (*fn)(struct hrt_cpu_base *, bool))
{
	atomic_store(&fork_hook, fn);
}

int hrt_clock_index(int clock)
{
	for (int i = 0; i < HRT_NCLOCKS; i++)
		if (clock_ids[i] == clock)
			return i;
	return -1;
}

int64_t hrt_clock_read(int clockid)
{
	struct timespec ts;

	clock_gettime(clockid, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t hrt_base_now(const struct hrt_clock_base *b)
{
	const struct hrt_domain *d = b->cpu_base->domain;
	int64_t now;

	if (d->manual)
		now = atomic_load(&d->manual_now);
	else
		now = hrt_clock_read(b->clockid);
	if (b->clockid == HRT_CLOCK_REALTIME || b->clockid == HRT_CLOCK_TAI)
		now = sat_add(now, atomic_load(&d->rt_shift));
	return now;
}

/* A stall between two clock reads longer than this is read again. */
#define OFFSET_READ_MAX_NS 20000

/*
 * Offset that converts a time on b's clock to MONOTONIC. MONOTONIC is read
 * first: a stall between the reads makes the offset larger and so the
 * deadline earlier, which the expiry run's re-check absorbs (never later).
 * A large stall is detected by a second MONOTONIC read and the pair taken
 * again, so early wake-ups stay rare.
 */
int64_t hrt_base_offset(const struct hrt_clock_base *b)
{
	int64_t m0, now, m1;

	if (b->clockid == HRT_CLOCK_MONOTONIC || b->cpu_base->domain->manual) {
		if (b->clockid == HRT_CLOCK_REALTIME || b->clockid == HRT_CLOCK_TAI)
			return atomic_load(&b->cpu_base->domain->rt_shift);
		return 0;
	}
	for (int tries = 0;; tries++) {
		m0 = hrt_clock_read(CLOCK_MONOTONIC);
		now = hrt_base_now(b);
		m1 = hrt_clock_read(CLOCK_MONOTONIC);
		if (m1 - m0 <= OFFSET_READ_MAX_NS || tries == 2)
			return sat_sub(now, m0);
	}
}

_Static_assert((int)HRT_CTX_THREAD_SOFT == (int)HRT_CTX_SOFT &&
	       (int)HRT_CTX_THREAD_HARD == (int)HRT_CTX_HARD &&
	       (int)HRT_CTX_THREAD_HARD_HOSTED == (int)HRT_CTX_HARD_HOSTED,
	       "hrt_ctx_thread() answers with the context index");

int hrt_ctx_thread(void)
{
	const struct hrt_cpu_base *cpu_base = hrt_cur_pass ? hrt_cur_pass->cpu_base : NULL;

	if (!cpu_base || cpu_base->domain->manual)
		return HRT_CTX_THREAD_NONE;
	return cpu_base->index;
}

static void domain_init(struct hrt_domain *d, bool manual, int64_t start)
{
	memset(d, 0, sizeof(*d));
	d->manual = manual;
	atomic_store(&d->manual_now, start);
	atomic_store(&d->rt_shift, 0);
	atomic_store(&d->refs, 1);
	atomic_store(&d->stopped, false);
	atomic_store(&d->freed, false);
	for (int h = 0; h < HRT_NCTX; h++) {
		struct hrt_cpu_base *cpu_base = &d->ctx[h];

		cpu_base->domain = d;
		cpu_base->index = h;
		pthread_mutex_init(&cpu_base->lock, NULL);
		pthread_cond_init(&cpu_base->cond, NULL);
		cpu_base->next_event = HRT_KTIME_MAX;
		cpu_base->tfd = cpu_base->rtfd = cpu_base->efd = cpu_base->epfd = -1;
		for (int i = 0; i < HRT_NCLOCKS; i++) {
			struct hrt_clock_base *b = &cpu_base->clock_base[i];

			b->cpu_base = cpu_base;
			b->clockid = clock_ids[i];
			b->index = i;
			tq_init(&b->queue);
		}
	}
	pthread_mutex_lock(&domains_lock);
	d->next = domains;
	domains = d;
	pthread_mutex_unlock(&domains_lock);
}

/* ---- fork: the child starts with no armed timers on real domains ---- */

static void fork_prepare(void)
{
	pthread_mutex_lock(&domains_lock);
	for (struct hrt_domain *d = domains; d; d = d->next)
		for (int h = 0; h < HRT_NCTX; h++)
			pthread_mutex_lock(&d->ctx[h].lock);
}

static void fork_parent(void)
{
	for (struct hrt_domain *d = domains; d; d = d->next)
		for (int h = 0; h < HRT_NCTX; h++)
			pthread_mutex_unlock(&d->ctx[h].lock);
	pthread_mutex_unlock(&domains_lock);
}

/*
 * The child of a fork has one thread: the one that forked. Every domain's
 * locks and condition variables are new, its sleepers were other threads;
 * then the fork hook deals with the timers of each context.
 */
static void fork_child(void)
{
	void (*hook)(struct hrt_cpu_base *, bool) = atomic_load(&fork_hook);

	atomic_fetch_add(&hrt_fork_generation, 1);
	for (struct hrt_domain *d = domains; d; d = d->next) {
		d->sleepers = NULL;
		for (int h = 0; h < HRT_NCTX; h++) {
			struct hrt_cpu_base *cpu_base = &d->ctx[h];
			bool mine = on_callback_thread(cpu_base);

			pthread_mutex_init(&cpu_base->lock, NULL);
			pthread_cond_init(&cpu_base->cond, NULL);
			cpu_base->waiters = 0;
			if (hook)
				hook(cpu_base, mine);
		}
	}
	pthread_mutex_init(&domains_lock, NULL);
}

static void default_init(void)
{
	domain_init(&default_domain, false, 0);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

struct hrt_domain *hrt_default_domain(void)
{
	pthread_once(&default_once, default_init);
	return &default_domain;
}

int hrt_domain_new_manual(struct hrt_domain **out, int64_t start_ns)
{
	struct hrt_domain *d;

	if (!out || start_ns < 0)
		return -EINVAL;
	hrt_default_domain(); /* registers the fork handlers */
	d = malloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	domain_init(d, true, start_ns);
	*out = d;
	return 0;
}

void hrt_domain_get(struct hrt_domain *d)
{
	if (d->manual)
		atomic_fetch_add(&d->refs, 1);
}

static void domain_release(struct hrt_domain *d)
{
	pthread_mutex_lock(&domains_lock);
	for (struct hrt_domain **p = &domains; *p; p = &(*p)->next) {
		if (*p == d) {
			*p = d->next;
			break;
		}
	}
	pthread_mutex_unlock(&domains_lock);
	for (int h = 0; h < HRT_NCTX; h++) {
		pthread_mutex_destroy(&d->ctx[h].lock);
		pthread_cond_destroy(&d->ctx[h].cond);
		for (int i = 0; i < HRT_NCLOCKS; i++)
			tq_destroy(&d->ctx[h].clock_base[i].queue);
	}
	free(d);
}

/* Drop a reference to a manual domain: the last one frees it. */
void hrt_domain_put(struct hrt_domain *d)
{
	if (d->manual && atomic_fetch_sub(&d->refs, 1) == 1)
		domain_release(d);
}

int hrt_domain_free(struct hrt_domain *d)
{
	if (!d || !d->manual)
		return -EINVAL;
	for (int h = 0; h < HRT_NCTX; h++) {
		struct hrt_cpu_base *cpu_base = &d->ctx[h];

		pthread_mutex_lock(&cpu_base->lock);
		for (int i = 0; i < HRT_NCLOCKS; i++) {
			if (cpu_base->clock_base[i].queue.count || cpu_base->clock_base[i].running) {
				pthread_mutex_unlock(&cpu_base->lock);
				return -EBUSY;
			}
		}
		pthread_mutex_unlock(&cpu_base->lock);
	}
	/* Inactive timers may still point here: the last of them frees it. */
	if (atomic_exchange(&d->freed, true))
		return -EINVAL;
	hrt_domain_put(d);
	return 0;
}

int64_t hrt_domain_now(struct hrt_domain *d, int clock)
{
	int i = hrt_clock_index(clock);

	if (i < 0)
		return 0; /* a time getter never answers an errno */
	if (!d)
		d = hrt_default_domain();
	return hrt_base_now(&d->ctx[0].clock_base[i]);
}

int64_t hrt_now(int clock)
{
	return hrt_domain_now(NULL, clock);
}

int hrt_domain_stats(struct hrt_domain *d, int hard, struct hrt_stats *out)
{
	struct hrt_cpu_base *cpu_base;

	if (!out || (hard != 0 && hard != 1))
		return -EINVAL;
	if (!d)
		d = hrt_default_domain();
	memset(out, 0, sizeof(*out));
	for (int h = 0; h < HRT_NCTX; h++) {
		if ((h != HRT_CTX_SOFT) != hard)
			continue;
		cpu_base = &d->ctx[h];
		pthread_mutex_lock(&cpu_base->lock);
		out->wakeups += cpu_base->stats.wakeups;
		out->timers_run += cpu_base->stats.timers_run;
		out->spurious += cpu_base->stats.spurious;
		out->reprograms += cpu_base->stats.reprograms;
		out->clock_sets += cpu_base->stats.clock_sets;
		pthread_mutex_unlock(&cpu_base->lock);
	}
	return 0;
}

int hrt_domain_shift_realtime(struct hrt_domain *d, int64_t delta_ns)
{
	int64_t old;

	if (!d)
		d = hrt_default_domain();
	old = atomic_load(&d->rt_shift);
	while (!atomic_compare_exchange_weak(&d->rt_shift, &old, sat_add(old, delta_ns)))
		;
	for (int h = 0; h < HRT_NCTX; h++) {
		struct hrt_cpu_base *cpu_base = &d->ctx[h];

		pthread_mutex_lock(&cpu_base->lock);
		cpu_base->stats.clock_sets++;
		if (!d->manual)
			hrt_cpu_base_wake(cpu_base);
		pthread_mutex_unlock(&cpu_base->lock);
	}
	return 0;
}

void hrt_sleeper_add(struct hrt_domain *d, struct hrt_sleeper *s)
{
	pthread_mutex_lock(&domains_lock);
	s->next = d->sleepers;
	d->sleepers = s;
	pthread_mutex_unlock(&domains_lock);
}

void hrt_sleeper_del(struct hrt_domain *d, struct hrt_sleeper *s)
{
	pthread_mutex_lock(&domains_lock);
	for (struct hrt_sleeper **p = &d->sleepers; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&domains_lock);
}

/*
 * Contexts are stopped hosted ones first: a hosted (Python) callback may be
 * waiting for a C timer (a REALTIME sleep_until), never the other way round.
 * Sleepers are woken first: their timers will not fire any more.
 */
static const int stop_order[HRT_NCTX] = {
	HRT_CTX_HARD_HOSTED, HRT_CTX_SOFT, HRT_CTX_HARD,
};

int hrt_domain_stop(struct hrt_domain *d)
{
	if (!d)
		d = hrt_default_domain();
	for (int h = 0; h < HRT_NCTX; h++)
		if (on_callback_thread(&d->ctx[h]))
			return -EDEADLK;
	atomic_store(&d->stopped, true);
	pthread_mutex_lock(&domains_lock);
	for (struct hrt_sleeper *s = d->sleepers; s; s = s->next) {
		uint64_t one = 1;
		ssize_t n = write(s->fd, &one, sizeof(one));

		(void)n; /* an eventfd write only fails at its maximum count */
	}
	pthread_mutex_unlock(&domains_lock);
	for (int k = 0; k < HRT_NCTX; k++)
		hrt_cpu_base_stop_thread(&d->ctx[stop_order[k]]);
	return 0;
}

