/*
 * timerqueue.h - an intrusive red-black tree of timer nodes ordered by expiry,
 * with the leftmost (earliest) node cached so the next expiry is O(1).
 *
 * Locking: callers serialize; no locking here.
 *
 * Ordering: by `expires` ascending; nodes with equal expiry keep insertion
 * order (a new node goes to the right of every equal node).
 */
#ifndef HRT_TIMERQUEUE_H
#define HRT_TIMERQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tq_node {
	struct tq_node *parent;
	struct tq_node *left;
	struct tq_node *right;
	int64_t expires;   /* sort key: hard expiry in ns on the owner's clock */
	uint8_t color;     /* TQ_RED or TQ_BLACK */
	uint8_t queued;    /* 1 while linked into a queue */
};

struct tq_head {
	struct tq_node *root;
	struct tq_node *leftmost;  /* earliest node, NULL when empty */
	size_t count;
};

enum { TQ_RED = 0, TQ_BLACK = 1 };

/* Make an empty queue. */
void tq_init(struct tq_head *head);

/* Make a node unlinked (queued == 0). */
void tq_node_init(struct tq_node *node);

/*
 * Link `node` (not queued) into `head`, ordered by node->expires.
 * Returns true if the node became the leftmost (earliest) node.
 */
bool tq_add(struct tq_head *head, struct tq_node *node);

/*
 * Unlink `node` (queued in `head`) and mark it unqueued.
 * Returns true if the queue is still non-empty afterwards.
 */
bool tq_del(struct tq_head *head, struct tq_node *node);

/* The earliest node, or NULL. O(1). */
static inline struct tq_node *tq_getnext(const struct tq_head *head)
{
	return head->leftmost;
}

/* In-order successor of `node`, or NULL. */
struct tq_node *tq_next(const struct tq_node *node);

static inline bool tq_node_queued(const struct tq_node *node)
{
	return node->queued != 0;
}

/*
 * Check every invariant: parent links, binary-search order, no red node with
 * a red child, equal black height on every path, black root, cached leftmost
 * equal to the real minimum, count equal to the number of nodes, every node
 * marked queued. Returns 0 if all hold, -EINVAL otherwise. O(n).
 */
int tq_check(const struct tq_head *head);

#endif /* HRT_TIMERQUEUE_H */
