/*
 * timerqueue.c - red-black tree of timer nodes with a cached leftmost node.
 *
 * Textbook (CLRS) red-black insertion and deletion with parent pointers and
 * NULL leaves; a NULL leaf counts as black.
 */
#include <errno.h>

#include "timerqueue.h"

static inline bool is_red(const struct tq_node *n)
{
	return n && n->color == TQ_RED;
}

static inline bool is_black(const struct tq_node *n)
{
	return !is_red(n);
}

void tq_init(struct tq_head *head)
{
	head->root = NULL;
	head->leftmost = NULL;
	head->count = 0;
}

void tq_node_init(struct tq_node *node)
{
	node->parent = NULL;
	node->left = NULL;
	node->right = NULL;
	node->color = TQ_RED;
	node->queued = 0;
}

/* Put `repl` where `old` hangs from its parent (or the root). */
static void replace_child(struct tq_head *head, struct tq_node *old,
			  struct tq_node *repl)
{
	struct tq_node *p = old->parent;

	if (!p)
		head->root = repl;
	else if (p->left == old)
		p->left = repl;
	else
		p->right = repl;
	if (repl)
		repl->parent = p;
}

static void rotate_left(struct tq_head *head, struct tq_node *x)
{
	struct tq_node *y = x->right;

	x->right = y->left;
	if (y->left)
		y->left->parent = x;
	replace_child(head, x, y);
	y->left = x;
	x->parent = y;
}

static void rotate_right(struct tq_head *head, struct tq_node *x)
{
	struct tq_node *y = x->left;

	x->left = y->right;
	if (y->right)
		y->right->parent = x;
	replace_child(head, x, y);
	y->right = x;
	x->parent = y;
}

static void insert_fixup(struct tq_head *head, struct tq_node *z)
{
	struct tq_node *p, *g, *u;

	while ((p = z->parent) && p->color == TQ_RED) {
		g = p->parent;	/* exists: a red node is never the root */
		if (p == g->left) {
			u = g->right;
			if (is_red(u)) {
				p->color = TQ_BLACK;
				u->color = TQ_BLACK;
				g->color = TQ_RED;
				z = g;
				continue;
			}
			if (z == p->right) {
				rotate_left(head, p);
				z = p;
				p = z->parent;
			}
			p->color = TQ_BLACK;
			g->color = TQ_RED;
			rotate_right(head, g);
		} else {
			u = g->left;
			if (is_red(u)) {
				p->color = TQ_BLACK;
				u->color = TQ_BLACK;
				g->color = TQ_RED;
				z = g;
				continue;
			}
			if (z == p->left) {
				rotate_right(head, p);
				z = p;
				p = z->parent;
			}
			p->color = TQ_BLACK;
			g->color = TQ_RED;
			rotate_left(head, g);
		}
	}
	head->root->color = TQ_BLACK;
}

bool tq_add(struct tq_head *head, struct tq_node *node)
{
	struct tq_node **link = &head->root;
	struct tq_node *parent = NULL;
	bool leftmost = true;

	while (*link) {
		parent = *link;
		if (node->expires < parent->expires) {
			link = &parent->left;
		} else {
			/* equal keys go right: FIFO among equal expiries */
			link = &parent->right;
			leftmost = false;
		}
	}

	node->parent = parent;
	node->left = NULL;
	node->right = NULL;
	node->color = TQ_RED;
	node->queued = 1;
	*link = node;
	head->count++;
	if (leftmost)
		head->leftmost = node;

	insert_fixup(head, node);
	return leftmost;
}

/*
 * Restore the red-black properties after removing a black node. `x` carries
 * the extra black and may be NULL, so its parent is passed as `xp`.
 */
static void delete_fixup(struct tq_head *head, struct tq_node *x,
			 struct tq_node *xp)
{
	struct tq_node *w;

	while (x != head->root && is_black(x)) {
		if (x == xp->left) {
			w = xp->right;	/* non-NULL: x's side is short one black */
			if (w->color == TQ_RED) {
				w->color = TQ_BLACK;
				xp->color = TQ_RED;
				rotate_left(head, xp);
				w = xp->right;
			}
			if (is_black(w->left) && is_black(w->right)) {
				w->color = TQ_RED;
				x = xp;
				xp = x->parent;
				continue;
			}
			if (is_black(w->right)) {
				w->left->color = TQ_BLACK;
				w->color = TQ_RED;
				rotate_right(head, w);
				w = xp->right;
			}
			w->color = xp->color;
			xp->color = TQ_BLACK;
			w->right->color = TQ_BLACK;
			rotate_left(head, xp);
			x = head->root;
		} else {
			w = xp->left;
			if (w->color == TQ_RED) {
				w->color = TQ_BLACK;
				xp->color = TQ_RED;
				rotate_right(head, xp);
				w = xp->left;
			}
			if (is_black(w->left) && is_black(w->right)) {
				w->color = TQ_RED;
				x = xp;
				xp = x->parent;
				continue;
			}
			if (is_black(w->left)) {
				w->right->color = TQ_BLACK;
				w->color = TQ_RED;
				rotate_left(head, w);
				w = xp->left;
			}
			w->color = xp->color;
			xp->color = TQ_BLACK;
			w->left->color = TQ_BLACK;
			rotate_right(head, xp);
			x = head->root;
		}
	}
	if (x)
		x->color = TQ_BLACK;
}

bool tq_del(struct tq_head *head, struct tq_node *node)
{
	struct tq_node *y, *x, *xp;
	uint8_t removed_color = node->color;

	if (!node->queued)
		return head->count != 0;

	if (head->leftmost == node)
		head->leftmost = tq_next(node);

	if (!node->left) {
		x = node->right;
		xp = node->parent;
		replace_child(head, node, x);
	} else if (!node->right) {
		x = node->left;
		xp = node->parent;
		replace_child(head, node, x);
	} else {
		/* two children: splice in the successor y (which has no left) */
		y = node->right;
		while (y->left)
			y = y->left;
		removed_color = y->color;
		x = y->right;
		if (y->parent == node) {
			xp = y;
		} else {
			xp = y->parent;
			replace_child(head, y, x);
			y->right = node->right;
			y->right->parent = y;
		}
		replace_child(head, node, y);
		y->left = node->left;
		y->left->parent = y;
		y->color = node->color;
	}

	if (removed_color == TQ_BLACK)
		delete_fixup(head, x, xp);

	head->count--;
	tq_node_init(node);
	return head->count != 0;
}

struct tq_node *tq_next(const struct tq_node *node)
{
	const struct tq_node *p;

	if (node->right) {
		node = node->right;
		while (node->left)
			node = node->left;
		return (struct tq_node *)node;
	}
	while ((p = node->parent) && node == p->right)
		node = p;
	return (struct tq_node *)p;
}

struct check_state {
	const struct tq_node *prev;	/* previous node in order */
	const struct tq_node *first;	/* first node in order */
	size_t seen;
	size_t limit;			/* stop runaway walks on cyclic trees */
};

/* Returns the black height of the subtree at `n`, or -1 on any violation. */
static int check_subtree(const struct tq_node *n, struct check_state *st)
{
	int lh, rh;

	if (!n)
		return 1;
	if (++st->seen > st->limit)
		return -1;
	if (n->color != TQ_RED && n->color != TQ_BLACK)
		return -1;
	if (n->queued != 1)
		return -1;
	if (n->left && n->left == n->right)
		return -1;
	if (n->left && n->left->parent != n)
		return -1;
	if (n->right && n->right->parent != n)
		return -1;
	if (n->color == TQ_RED && (is_red(n->left) || is_red(n->right)))
		return -1;

	lh = check_subtree(n->left, st);
	if (lh < 0)
		return -1;

	if (st->prev && st->prev->expires > n->expires)
		return -1;
	if (!st->first)
		st->first = n;
	st->prev = n;

	rh = check_subtree(n->right, st);
	if (rh < 0 || lh != rh)
		return -1;
	return lh + (n->color == TQ_BLACK);
}

int tq_check(const struct tq_head *head)
{
	struct check_state st = { .limit = head->count };
	const struct tq_node *root = head->root;

	if (!root) {
		if (head->leftmost || head->count)
			return -EINVAL;
		return 0;
	}
	if (root->parent || root->color != TQ_BLACK)
		return -EINVAL;
	if (check_subtree(root, &st) < 0)
		return -EINVAL;
	if (st.seen != head->count || st.first != head->leftmost)
		return -EINVAL;
	return 0;
}
