/*
 * timerqueue.h - a queue of timer nodes ordered by expiry: an implicit
 * 4-ary min-heap (an array of {expiry, node} entries; each node keeps its
 * position), so the earliest node is O(1), add and delete are O(log n),
 * and add, delete and sifting read the keys from the array, not from the
 * nodes (a 1M-node queue stays in cache far better than a tree).
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
	uint32_t slot;     /* 1 + position in the heap while queued, 0 if not */
};

/* A heap entry: the key is copied so sifting reads no node. */
struct tq_entry {
	int64_t expires;
	struct tq_node *node;
};

struct tq_head {
	struct tq_entry *heap;  /* heap[0] is the earliest; NULL until reserved */
	size_t count;           /* nodes queued */
	size_t reserved;        /* slots promised by tq_reserve (>= count) */
	size_t cap;             /* slots allocated (>= reserved) */
	uint64_t seq;           /* sequence number of the next add */
	void *mem;              /* the allocation `heap` points into */
};

/* The most nodes one queue can reserve (positions fit a uint32_t). */
#define TQ_MAX_NODES ((size_t)UINT32_MAX - 1)

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

/* The earliest node, or NULL. O(1). */
static inline struct tq_node *tq_getnext(const struct tq_head *head)
{
	return head->count ? head->heap[0].node : NULL;
}

/* The i-th node of the heap (i < count), in no particular order. */
static inline struct tq_node *tq_at(const struct tq_head *head, size_t i)
{
	return head->heap[i].node;
}

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

/*
 * The earliest node for which skip(node, arg) is false, or NULL: a search
 * of the heap that visits only nodes skip() rejects and their children, so
 * it costs O(1) when the earliest node is not skipped.
 */
struct tq_node *tq_first_unskipped(const struct tq_head *head,
				   bool (*skip)(const struct tq_node *, const void *),
				   const void *arg);

/*
 * Check every invariant: heap order by (expires, seq), each entry's key
 * equal to its node's expires, each node's slot equal to its position,
 * sequence numbers below the next one, count <= reserved <= cap, an array
 * when cap > 0. Returns 0 if all hold, -EINVAL otherwise. O(n).
 */
int tq_check(const struct tq_head *head);

#endif /* HRT_TIMERQUEUE_H */
