/*
 * pyhost.h - the Python host of the core (pyhost.c): the hooks that keep a
 * Python timer's target alive while it is active, run due Python timers in
 * batches under the GIL, and have a busy interpreter hand the GIL over to
 * an expiry thread at its next bytecode boundary.
 *
 * Built only into the Python extension (build_ffi.py); the declarations
 * between the markers are its cffi cdef.
 */
#ifndef HRT_PYHOST_H
#define HRT_PYHOST_H

#include "hrtimer.h"

/* cffi:begin */
/* The callback every Python timer is set up with. */
int hrt_py_run(struct hrt_timer *timer, void *data);

/* Install the host hooks (once). 0 or -errno. */
int hrt_py_install(void);

/*
 * The interpreter is ending (the main thread has finished): no GIL handover
 * from now on, and none in progress when this returns. Call it without the
 * GIL (as the binding's calls are).
 */
void hrt_py_stop_handover(void);

/* Interpreter exit: stop the handover, never touch Python objects again. */
void hrt_py_close(void);

/*
 * How an expiry thread gets the GIL from a busy interpreter:
 * HRT_HANDOVER_NONE (waits for the switch interval like any thread),
 * HRT_HANDOVER_INTERVAL (CPython 3.10, 3.11: the switch interval is
 * lowered while it waits), HRT_HANDOVER_PENDING (3.12+: a pending call
 * makes the thread running bytecode yield the GIL).
 */
enum hrt_handover {
	HRT_HANDOVER_NONE = 0,
	HRT_HANDOVER_INTERVAL = 1,
	HRT_HANDOVER_PENDING = 2
};
int hrt_py_handover(void);

/*
 * hrt_sleep_until for Python: the GIL comes back through the handover, so a
 * precise sleep stays precise while another thread runs bytecode.
 */
int64_t hrt_py_sleep_until(int clock, int64_t deadline);

/* What the handover did since the start. */
struct hrt_py_handover_stats {
	uint64_t requests;       /* an expiry thread asked for the GIL early */
	uint64_t yields;         /* a thread running bytecode let it go */
	uint64_t yield_timeouts; /* ... and waited 1 ms in vain (asked again) */
};
int hrt_py_handover_stats(struct hrt_py_handover_stats *out);

/* Switch the handover off (0) or back on (1), for measurements. */
void hrt_py_set_handover(int on);
/* cffi:end */

#ifdef Py_PYTHON_H
/*
 * PyEval_RestoreThread for the binding's C calls (see build_ffi.py): inside
 * a batch on an expiry thread it asks for the GIL early.
 */
void hrt_py_restore_thread(PyThreadState *ts);
#endif

#endif /* HRT_PYHOST_H */
