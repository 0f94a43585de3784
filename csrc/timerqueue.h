/*
 * timerqueue.h - a queue of timer nodes ordered by expiry, in two parts:
 *
 *  - the run: a list of nodes in queue order, to which a node is appended
 *    when it goes after the run's last node (or the run is empty): what
 *    timeouts (later and later expiries), many timers of one expiry and
 *    periodic timers do. Add, delete and taking the first are O(1).
 *  - the heap: every other node, in an implicit 4-ary min-heap (an array of
 *    {expiry, node} entries; each node keeps its position): add and delete
 *    at a random expiry are O(log n), and sifting reads the keys from the
 *    array, not from the nodes (1M nodes stay in cache far better than a
 *    tree's).
 *
 * The earliest node is the earlier of the run's first and the heap's top:
 * O(1).
 *
 * Locking: callers serialize; no locking here.
 *
 * Ordering: by `expires` ascending; nodes with equal expiry keep add order
 * (each add takes the next sequence number, and ties go by it).
 *
 * Memory: the array holds one slot per reservation (tq_reserve), so tq_add
 * never allocates and never fails: a user reserves a slot for each node
 * that may be queued (hrtimer.c: one per timer set up on the base) before
 * the node is ever added, and gives it back when the node is gone.
 */
#ifndef HRT_TIMERQUEUE_H
#define HRT_TIMERQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tq_node {
	int64_t expires;   /* sort key: hard expiry in ns on the owner's clock */
	uint64_t seq;      /* add order: breaks ties on expires (FIFO) */
	struct tq_node *prev, *next; /* neighbours in the run */
	uint32_t slot;     /* 0: not queued; TQ_SLOT_RUN: in the run;
			    * otherwise 1 + position in the heap */
};

#define TQ_SLOT_RUN UINT32_MAX

/* A heap entry: the key is copied so sifting reads no node. */
struct tq_entry {
	int64_t expires;
	struct tq_node *node;
};

struct tq_head {
	struct tq_entry *heap;  /* heap[0] is its earliest; NULL until reserved */
	size_t hcount;          /* nodes in the heap */
	struct tq_node *run_first, *run_last;
	size_t count;           /* nodes queued (heap and run) */
	size_t reserved;        /* slots promised by tq_reserve (>= count) */
	size_t cap;             /* slots allocated (>= reserved) */
	uint64_t seq;           /* sequence number of the next add */
	void *mem;              /* the allocation `heap` points into */
};

/* The most nodes one queue can reserve (positions fit a uint32_t). */
#define TQ_MAX_NODES ((size_t)UINT32_MAX - 2)

/* Make an empty queue (no allocation). */
void tq_init(struct tq_head *head);

/* Free the queue's array; the queue must be empty. It is empty after. */
void tq_destroy(struct tq_head *head);

/*
 * Reserve one slot: afterwards tq_add can take one more node. May grow the
 * array. 0 or -ENOMEM (nothing changed).
 */
int tq_reserve(struct tq_head *head);

/*
 * Give a reserved slot back (its node is not queued and will not be added
 * again without a new reservation). May shrink the array; never fails.
 */
void tq_unreserve(struct tq_head *head);

/* Make a node unqueued. */
void tq_node_init(struct tq_node *node);

/*
 * Link `node` (not queued) into `head`, ordered by node->expires, after any
 * queued node of equal expiry. A slot must be free (count < reserved).
 * Returns true if the node became the earliest node.
 */
bool tq_add(struct tq_head *head, struct tq_node *node);

/*
 * Unlink `node` (queued in `head`) and mark it unqueued; an unqueued node
 * is left alone. Returns true if the queue is non-empty afterwards.
 */
bool tq_del(struct tq_head *head, struct tq_node *node);

static inline bool tq_node_queued(const struct tq_node *node)
{
	return node->slot != 0;
}

/* True if queued `a` comes before queued `b` in the queue's order. */
static inline bool tq_before(const struct tq_node *a, const struct tq_node *b)
{
	return a->expires < b->expires ||
	       (a->expires == b->expires && a->seq < b->seq);
}

/* The earliest node, or NULL. O(1). */
static inline struct tq_node *tq_getnext(const struct tq_head *head)
{
	struct tq_node *r = head->run_first, *h;

	if (!head->hcount)
		return r;
	h = head->heap[0].node;
	return r && tq_before(r, h) ? r : h;
}

/*
 * Every queued node, in no particular order, into out[0 .. max - 1];
 * returns how many there are (for checks and tests). O(n).
 */
size_t tq_collect(const struct tq_head *head, struct tq_node **out, size_t max);

/*
 * The earliest node for which skip(node, arg) is false, or NULL: a walk of
 * the run and a search of the heap that visit only nodes skip() rejects
 * (and the heap's children of those), so it costs O(1) when the earliest
 * nodes of both are not skipped.
 */
struct tq_node *tq_first_unskipped(const struct tq_head *head,
				   bool (*skip)(const struct tq_node *, const void *),
				   const void *arg);

/*
 * Check every invariant: heap order by (expires, seq), each entry's key
 * equal to its node's expires, each heap node's slot equal to its
 * position; the run in queue order with consistent links and run slots;
 * sequence numbers below the next one; count = heap + run nodes <=
 * reserved <= cap, an array when cap > 0. Returns 0 if all hold, -EINVAL
 * otherwise. O(n).
 */
int tq_check(const struct tq_head *head);

#endif /* HRT_TIMERQUEUE_H */
