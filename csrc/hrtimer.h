/*
 * hrtimer.h - high-resolution timers in user space, with Linux hrtimer
 * semantics: clock bases, start with slack, cancel / try_to_cancel, forward
 * with overrun count, introspection, and expiry threads that sleep on a
 * timerfd through epoll.
 *
 * Results, one rule: a status function returns 0 (or a documented
 * non-negative value) on success and -errno on failure; a getter of a time
 * (now, expiries, remaining) returns the time and never an errno, since any
 * int64 is a time: for a timer that is not set up (or NULL) or a clock id
 * that is not one of HRT_CLOCK_*, it returns 0. Nothing prints, nothing
 * aborts.
 *
 * Time is int64_t nanoseconds on the timer's clock.
 *
 * Threads: every function is thread-safe and may be called from a
 * callback, with these answers there: hrt_domain_stop of the callback's
 * domain returns -EDEADLK, hrt_domain_advance of a domain whose expiry run
 * the thread is inside returns -EBUSY, hrt_timer_cancel / hrt_timer_free of
 * the callback's own timer never wait (the free happens when it returns);
 * of another timer they wait for that timer's running callback, as anywhere.
 * Callbacks never run under a lock.
 *
 * The part between the cffi markers is also the cdef of the Python binding
 * (build_ffi.py reads it): plain declarations only there.
 */
#ifndef HRT_HRTIMER_H
#define HRT_HRTIMER_H

#include <stdint.h>
#include <stddef.h>

/* cffi:begin */

/* Clock ids: equal to Linux clockid_t. */
enum hrt_clock {
	HRT_CLOCK_REALTIME = 0,
	HRT_CLOCK_MONOTONIC = 1,
	HRT_CLOCK_BOOTTIME = 7,
	HRT_CLOCK_TAI = 11
};

/* Mode bits: equal to Linux enum hrtimer_mode. */
enum hrt_mode {
	HRT_MODE_ABS = 0,
	HRT_MODE_REL = 1,
	HRT_MODE_PINNED = 2,
	HRT_MODE_SOFT = 4,
	HRT_MODE_HARD = 8
};

/* What a callback returns. */
enum hrt_restart {
	HRT_NORESTART = 0,
	HRT_RESTART = 1
};

/* Timer flags given to hrt_timer_setup(). */
enum hrt_flags {
	/*
	 * The callback belongs to the host (the Python binding): the core runs
	 * such callbacks between host->batch_enter / batch_exit, and holds a
	 * host reference on `data` while the timer is active (host->acquire on
	 * activation, host->release when it ends).
	 */
	HRT_F_HOSTED = 1
};

struct hrt_timer;
struct hrt_domain;

/*
 * A callback. Runs on the expiry thread of its context (HARD) or on the
 * dispatch thread (SOFT), never under a lock. Returns enum hrt_restart.
 * A timer whose soft expiry is still due after its callback (RESTART
 * without forward, re-armed in the past) runs again at the next expiry
 * run, never twice in one: each run calls a timer at most once.
 */
typedef int (*hrt_callback_t)(struct hrt_timer *timer, void *data);

/*
 * Hooks of the host that embeds the core (at most one, see hrt_set_host).
 * acquire/release bracket each activation of an HRT_F_HOSTED timer (from
 * "not active" to "active" and back): acquire returns before the timer is
 * queued, so release of an activation always follows its acquire; a start
 * that finds the timer activated by another thread meanwhile pairs its
 * acquire with a release. release is the core's last touch of the timer
 * for that activation. Neither is called under a lock.
 * batch_enter/batch_exit bracket a run of consecutive hosted callbacks, so
 * a host lock (the GIL) can be taken once per batch.
 * block (may be NULL) is called, without a lock, before the calling thread
 * waits for another thread (a running callback, a thread's exit) or for
 * time (a sleep): a host whose lock stays held across its calls into the
 * core (the GIL) lets it go there, so the awaited thread can take it.
 */
struct hrt_host {
	void (*acquire)(void *data);
	void (*release)(void *data);
	void (*batch_enter)(void);
	void (*batch_exit)(void);
	void (*block)(void);
};

/* Expiry statistics of a domain's HARD or SOFT contexts. */
struct hrt_stats {
	uint64_t wakeups;        /* expiry runs (timerfd wake-ups or advances) */
	uint64_t timers_run;     /* callbacks called */
	uint64_t spurious;       /* wake-ups that found nothing due */
	uint64_t reprograms;     /* timerfd_settime calls */
	uint64_t clock_sets;     /* wall-clock jumps seen */
};

/* Install the host hooks. Call before any hosted timer exists. 0 or -EBUSY. */
int hrt_set_host(const struct hrt_host *host);

/* The process-wide domain whose expiry threads start on first use. */
struct hrt_domain *hrt_default_domain(void);

/*
 * A manual domain: no threads; its clocks stand still until
 * hrt_domain_advance(). All four clocks read start_ns + advanced time.
 * 0 or -ENOMEM / -EINVAL.
 */
int hrt_domain_new_manual(struct hrt_domain **out, int64_t start_ns);

/*
 * Free a manual domain. -EBUSY if a timer of it is still active. Timers set
 * up on it that are not freed yet keep it alive (one reference count: the
 * domain's own and one per timer): the last hrt_timer_free() completes the
 * free, from whichever thread. No new timer can be set up on it once this
 * returned 0; a second call is -EINVAL while the domain still exists.
 */
int hrt_domain_free(struct hrt_domain *d);

/*
 * Manual domains: move the clock forward by delta_ns (>= 0; one atomic
 * step, saturating at INT64_MAX) and run every due timer in the calling
 * thread, hard context first, each timer at most once per context (a timer
 * still due after its callback runs at the next advance). Returns the
 * number of callbacks run, or -EINVAL (not manual, negative delta), -EBUSY
 * (called from one of its callbacks, at any nesting depth), -EINTR (a
 * callback called hrt_timer_stop_expiry: the rest stays queued).
 */
int64_t hrt_domain_advance(struct hrt_domain *d, int64_t delta_ns);

/*
 * Manual domains: in *out, the earliest hard expiry later than `after` among
 * its queued timers, as a reading of its MONOTONIC clock (a REALTIME/TAI
 * timer's expiry less the realtime shift), or INT64_MAX when there is none:
 * the time a real base would wake up next (every timer whose soft expiry
 * has passed by then runs in the same pass). INT64_MIN as `after` counts
 * every queued timer. 0, or -EINVAL (not manual, NULL out).
 */
int hrt_domain_next_expiry(struct hrt_domain *d, int64_t after, int64_t *out);

/* Now on `clock` as the domain sees it (0 for an unknown clock). */
int64_t hrt_domain_now(struct hrt_domain *d, int clock);

/*
 * Stop the domain's threads (joins them; waits for a running callback)
 * and refuse hosted callbacks from then on: due hosted timers are left
 * queued. Hosted contexts stop before the C one (a hosted callback may
 * wait for a C timer); a REALTIME/TAI hrt_sleep_until in progress is woken
 * and ends on the kernel clock. Idempotent and thread-safe (a concurrent
 * call waits for the first). Called from a callback of the domain: -EDEADLK.
 */
int hrt_domain_stop(struct hrt_domain *d);

/* Statistics of the HARD contexts (hard = 1: C and hosted summed) or the
 * SOFT one (0). 0 or -EINVAL. */
int hrt_domain_stats(struct hrt_domain *d, int hard, struct hrt_stats *out);

/*
 * Test hook: shift the REALTIME and TAI clocks of the domain by delta_ns, as
 * a wall-clock set would, and re-evaluate absolute timers on them.
 */
int hrt_domain_shift_realtime(struct hrt_domain *d, int64_t delta_ns);

/*
 * In a child after fork(): call host->release for every hosted timer that
 * was active in the parent (the child starts with none armed), except one
 * whose callback is running on the forking thread: its expiry run ends that
 * activation when the callback returns (no RESTART in the child). Returns
 * how many. The Python binding calls it from its after-fork hook.
 */
int hrt_fork_release_orphans(void);

/* Now on `clock` (CLOCK_* id above), with the default domain's shift. */
int64_t hrt_now(int clock);

/* Allocate a timer (inactive, not set up). NULL if out of memory. */
struct hrt_timer *hrt_timer_alloc(void);

/*
 * Free a timer: cancels it and waits for a running callback first. Called
 * from the timer's own callback it cancels without waiting and the free
 * happens when the callback returns (the timer must not be used after).
 */
void hrt_timer_free(struct hrt_timer *t);

/* sizeof(struct hrt_timer), for memory accounting. */
size_t hrt_timer_size(void);

/*
 * Set up an inactive timer (again: safe against concurrent operations on
 * it, which see it active or on its new base): domain (NULL = default), clock, mode bits
 * (REL/ABS default for start, SOFT or HARD context), callback and data.
 * -EINVAL: unknown clock, unknown or contradictory mode bits, NULL fn;
 * -EOPNOTSUPP: HRT_MODE_PINNED (no per-CPU bases here);
 * -EBUSY: the timer is active; -ENOMEM: no memory for the timer's slot in
 * its clock base's queue (taken here, so starting it never allocates).
 * A relative REALTIME timer is placed on MONOTONIC, as Linux does.
 */
int hrt_timer_setup(struct hrt_timer *t, struct hrt_domain *d, int clock,
		    int mode, hrt_callback_t fn, void *data, int flags);

/*
 * (Re)arm: soft expiry = expires (+ now if the timer's mode is REL),
 * hard expiry = soft + slack, both saturating at INT64_MAX. Removes the
 * timer first if queued. Reprograms the expiry thread only when the timer
 * becomes its earliest. Returns 1 if this start activated an inactive
 * timer, 0 if it was already active; -EINVAL (slack < 0, not set up),
 * -ESHUTDOWN (domain stopped).
 */
int hrt_timer_start_range(struct hrt_timer *t, int64_t expires, int64_t slack);

/*
 * hrt_timer_start_range for hosted timers: if this start activates the
 * timer, `data` becomes its callback data for the new activation (and is
 * what host->acquire and host->release receive); otherwise it is ignored.
 */
int hrt_timer_start_range_data(struct hrt_timer *t, int64_t expires,
			       int64_t slack, void *data);

/* Re-arm at the stored soft/hard expiry (absolute). As start_range. */
int hrt_timer_restart(struct hrt_timer *t);

/*
 * 1: was queued and is now removed; 0: was not active;
 * -1: its callback is running now (nothing done).
 */
int hrt_timer_try_to_cancel(struct hrt_timer *t);

/*
 * Cancel and wait until the callback is not running. Returns 1 if it was
 * queued, 0 if not. Called from the timer's own callback it does not wait:
 * it dequeues a re-arm and stops a RESTART from re-queueing.
 */
int hrt_timer_cancel(struct hrt_timer *t);

/*
 * Move both expiries forward by whole intervals until the soft expiry is
 * after `now` (a timer run inside its slack window has expired; with
 * slack 0 this is Linux's rule). Returns the number of intervals added
 * (0 if now < soft expiry).
 * -EINVAL: interval <= 0; -EBUSY: queued, or running outside its own
 * callback (Linux warns there).
 */
int64_t hrt_timer_forward(struct hrt_timer *t, int64_t now, int64_t interval);

/* hrt_timer_forward with the timer's clock now. */
int64_t hrt_timer_forward_now(struct hrt_timer *t, int64_t interval);

/*
 * From t's own callback inside hrt_domain_advance (manual domains): end
 * that expiry run when the callback returns; the other due timers stay
 * queued and hrt_domain_advance returns -EINTR. -EINVAL otherwise. A host
 * uses it to let an exception such as KeyboardInterrupt out of advance.
 */
int hrt_timer_stop_expiry(struct hrt_timer *t);

/* Hard and soft expiry (absolute, on the timer's clock). */
int64_t hrt_timer_get_expires(const struct hrt_timer *t);
int64_t hrt_timer_get_softexpires(const struct hrt_timer *t);

/* Hard expiry minus now (negative if overdue). */
int64_t hrt_timer_get_remaining(struct hrt_timer *t);

/* Now on the timer's clock (its domain's view). */
int64_t hrt_timer_now(struct hrt_timer *t);

/* Inside a callback: the time its expiry run started. Else now. */
int64_t hrt_timer_cb_now(struct hrt_timer *t);

/* Queued or running. */
int hrt_timer_is_active(struct hrt_timer *t);
int hrt_timer_is_queued(struct hrt_timer *t);
int hrt_timer_callback_running(struct hrt_timer *t);

/* The clock the timer runs on, and its mode bits; -EINVAL if not set up
 * (or NULL). */
int hrt_timer_clock(const struct hrt_timer *t);
int hrt_timer_mode(const struct hrt_timer *t);

/* cffi:end */

/*
 * Which expiry thread the caller is: HRT_CTX_THREAD_NONE for any thread
 * that is not a real domain's expiry thread (a manual domain's advance
 * runs callbacks on the caller's thread), else the context it serves.
 * For hosts that treat HARD and SOFT callbacks differently.
 */
enum hrt_ctx_thread {
	HRT_CTX_THREAD_NONE = -1,
	HRT_CTX_THREAD_SOFT = 0,
	HRT_CTX_THREAD_HARD = 1,
	HRT_CTX_THREAD_HARD_HOSTED = 2
};
int hrt_ctx_thread(void);

/*
 * The host's own pointer of a timer (e.g. the object that owns it), kept
 * from hrt_timer_set_owner to the next; the core never uses it.
 */
void hrt_timer_set_owner(struct hrt_timer *t, void *owner);
void *hrt_timer_owner(const struct hrt_timer *t);

/*
 * For code built on the core (the builtins' sleeper): before a wait for
 * another thread or for time, without a lock, let the host's lock go (the
 * host's block hook, see struct hrt_host; nothing without a host).
 */
void hrt_host_block(void);

/*
 * A sleeper on a domain's timer (hrt_sleep_until on REALTIME/TAI),
 * registered while it polls its eventfd: hrt_domain_stop writes to the
 * eventfd of each, since their timers will not fire any more.
 */
struct hrt_sleeper {
	int fd;                     /* the eventfd it polls */
	struct hrt_sleeper *next;   /* the domain's */
};
void hrt_sleeper_add(struct hrt_domain *d, struct hrt_sleeper *s);
void hrt_sleeper_del(struct hrt_domain *d, struct hrt_sleeper *s);

#endif /* HRT_HRTIMER_H */
