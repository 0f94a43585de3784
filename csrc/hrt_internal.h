/*
 * hrt_internal.h - the core's private structures, shared by hrtimer.c
 * (timer operations) and expiry.c (the expiry threads).
 */
#ifndef HRT_INTERNAL_H
#define HRT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "hrtimer.h"
#include "timerqueue.h"

#define HRT_NCLOCKS 4

/*
 * The expiry contexts of a domain, each with its own lock, queues and
 * thread: SOFT timers; HARD C-callback timers; HARD hosted (Python)
 * timers, kept apart so a HARD C callback never waits for the host's lock.
 */
enum { HRT_CTX_SOFT = 0, HRT_CTX_HARD = 1, HRT_CTX_HARD_HOSTED = 2, HRT_NCTX = 3 };
#define HRT_KTIME_MAX INT64_MAX
/*
 * next_event's value that no expiry can equal: the next program of the
 * timerfd always writes it (after a clock set, or a thread (re)started).
 */
#define HRT_FORCE_REPROGRAM (HRT_KTIME_MAX - 1)

/* timer->state bits (written by setup only) */
#define HRT_ST_SETUP      0x01 /* hrt_timer_setup() done */

/* One clock of one context: its queue and the timer whose callback runs. */
struct hrt_clock_base {
	struct hrt_cpu_base *cpu_base;
	int clockid;
	int index;
	struct tq_head queue;
	struct hrt_timer *running;
	int64_t run_now; /* clock now when the current expiry run started */
};

/*
 * One expiry context: the HARD one or the SOFT one of a domain. One lock
 * covers its four clock bases (as Linux's cpu_base->lock does).
 */
struct hrt_cpu_base {
	struct hrt_domain *domain;
	pthread_mutex_t lock;
	pthread_cond_t cond;   /* a callback of this context returned */
	unsigned waiters;      /* threads waiting on cond */
	int index;             /* HRT_CTX_* */
	/*
	 * The expiry run (hrtimer.c), called by the expiry thread (expiry.c)
	 * when it wakes, with the lock held; returns the callbacks run. A
	 * pointer, as a clock-event device calls its event_handler, so the
	 * thread knows nothing of the timer code above it.
	 */
	int64_t (*run)(struct hrt_cpu_base *cpu_base);
	struct hrt_clock_base clock_base[HRT_NCLOCKS];
	int64_t next_event;    /* MONOTONIC ns programmed, INT64_MAX: none */
	bool in_expiry;        /* an expiry run is in progress: it reprograms */
	uint64_t pass_seq;     /* number of the current (or last) expiry run */
	/* the expiry thread (real domains only) */
	int tfd;               /* timerfd, CLOCK_MONOTONIC, absolute */
	int rtfd;              /* timerfd, CLOCK_REALTIME, cancel-on-set */
	int efd;               /* eventfd: wake / stop */
	int epfd;
	pthread_t thread;
	bool thread_running;
	bool stopping;
	struct hrt_stats stats;
};

struct hrt_domain {
	struct hrt_cpu_base ctx[HRT_NCTX];
	bool manual;
	_Atomic bool stopped;
	_Atomic int64_t manual_now; /* manual domains: the clocks' reading */
	_Atomic int64_t rt_shift;   /* test hook: REALTIME/TAI shift */
	/* manual: one reference held by the domain until hrt_domain_free,
	 * one per timer set up on it; the last put frees it */
	_Atomic long refs;
	_Atomic bool freed;         /* manual: hrt_domain_free was called */
	struct hrt_sleeper *sleepers; /* under the domains lock */
	struct hrt_domain *next;    /* list of all domains (fork handling) */
};

struct hrt_timer {
	struct tq_node node;        /* node.expires: hard expiry */
	int64_t soft_expires;
	/* published with release by setup (under the old base's lock), read
	 * with acquire by lock_timer(): a concurrent setup cannot tear it */
	struct hrt_clock_base *base;
	hrt_callback_t fn;
	void *data;
	void *owner;         /* the host's (hrt_timer_set_owner) */
	uint64_t pass;       /* the expiry run that last ran it (lock) */
	uint8_t mode;
	uint8_t flags;
	uint8_t state;
	uint8_t cancelled;   /* cancelled from its own callback: no restart (lock) */
	uint8_t free_deferred; /* freed from its own callback: freed when it returns */
};

extern const struct hrt_host *hrt_host_hooks;

/* hrt_host_block (hrtimer.h) for the core's own files, inline. */
static inline void host_block(void)
{
	if (hrt_host_hooks && hrt_host_hooks->block)
		hrt_host_hooks->block();
}


/* expiry.c */
int hrt_cpu_base_ensure_thread(struct hrt_cpu_base *cpu_base);
void hrt_cpu_base_program(struct hrt_cpu_base *cpu_base, int64_t mono);
void hrt_cpu_base_wake(struct hrt_cpu_base *cpu_base);
void hrt_cpu_base_stop_thread(struct hrt_cpu_base *cpu_base);
void hrt_cpu_base_forget_thread(struct hrt_cpu_base *cpu_base);

/* domain.c */
extern _Atomic unsigned hrt_fork_generation; /* bumped in every fork child */
int hrt_clock_index(int clock);      /* -1 for an unknown clock id */
int64_t hrt_clock_read(int clockid); /* clock_gettime in ns */
int64_t hrt_base_now(const struct hrt_clock_base *b);
int64_t hrt_base_offset(const struct hrt_clock_base *b); /* b's clock - MONOTONIC */
void hrt_domain_get(struct hrt_domain *d);  /* manual domains are counted */
void hrt_domain_put(struct hrt_domain *d);  /* the last put frees one */
void hrt_domains_set_fork_hook(void (*fn)(struct hrt_cpu_base *cpu_base, bool mine));

/*
 * The expiry runs this thread is inside, innermost first: a callback may
 * advance another manual domain, whose callback then acts on a timer of an
 * outer run. Each lives on the stack of hrt_run_expiry (hrtimer.c).
 */
struct hrt_pass {
	struct hrt_cpu_base *cpu_base;
	struct hrt_pass *outer;
	bool stop;           /* hrt_timer_stop_expiry: end after this callback */
};
extern __thread struct hrt_pass *hrt_cur_pass;

static inline struct hrt_pass *pass_of(const struct hrt_cpu_base *cpu_base)
{
	for (struct hrt_pass *p = hrt_cur_pass; p; p = p->outer)
		if (p->cpu_base == cpu_base)
			return p;
	return NULL;
}

/* This thread runs an expiry pass of cpu_base (race-free: per thread). */
static inline bool on_callback_thread(const struct hrt_cpu_base *cpu_base)
{
	return pass_of(cpu_base) != NULL;
}

/* Saturating int64 arithmetic (times never wrap). */
static inline int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static inline int64_t sat_sub(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

#endif /* HRT_INTERNAL_H */
