/*
 * trust.c: bootstrap tokens and node certificates in the model (trust.h).
 *
 * Secrets are compared by their hashes in constant time (libsodium), and
 * a token that is wrong in any way gets one answer that says no more than
 * needed: a peer guessing tokens learns nothing from the message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "parse.h"
#include "rights.h"
#include "state-internal.h"
#include "store.h"
#include "trust.h"
#include "xalloc.h"

#define TOKEN_PREFIX "hpq1."
#define ID_BYTES 6
#define SECRET_BYTES 16

/* ---------------------------------------------------------------- helpers */

static void secret_hash(const char *secret, char hex[2 * crypto_hash_sha256_BYTES + 1])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)secret, strlen(secret));
	sodium_bin2hex(hex, 2 * crypto_hash_sha256_BYTES + 1, h, sizeof(h));
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0' || s[n] == '.';
}

/* Splits "hpq1.ID.SECRET" into its parts; false if it is not one. */
static bool token_split(const char *token, char id[2 * ID_BYTES + 1],
			char secret[2 * SECRET_BYTES + 1])
{
	const char *p = token;

	if (strncmp(p, TOKEN_PREFIX, strlen(TOKEN_PREFIX)))
		return false;
	p += strlen(TOKEN_PREFIX);
	if (strlen(p) != 2 * ID_BYTES + 1 + 2 * SECRET_BYTES || p[2 * ID_BYTES] != '.' ||
	    !all_hex(p, 2 * ID_BYTES) || !all_hex(p + 2 * ID_BYTES + 1, 2 * SECRET_BYTES))
		return false;
	memcpy(id, p, 2 * ID_BYTES);
	id[2 * ID_BYTES] = '\0';
	memcpy(secret, p + 2 * ID_BYTES + 1, 2 * SECRET_BYTES);
	secret[2 * SECRET_BYTES] = '\0';
	return true;
}

static void token_free(struct join_token *t)
{
	free(t->id);
	free(t->secret_hash);
	free(t->pool);
	free(t->created_by);
	free(t);
}

static void cert_free(struct node_cert *c)
{
	free(c->serial);
	free(c->node);
	free(c->pool);
	free(c);
}

static void token_save(struct state *st, const struct join_token *t)
{
	struct store_token_row row = {
		.id = t->id,
		.secret_hash = t->secret_hash,
		.pool = t->pool,
		.expires_ms = t->expires_ms,
		.uses_left = t->uses_left,
		.created_by = t->created_by,
		.created_ms = t->created_ms,
	};

	store_token_put(st->store, &row);
}

static void cert_save(struct state *st, const struct node_cert *c)
{
	struct store_cert_row row = {
		.serial = c->serial,
		.node = c->node,
		.pool = c->pool,
		.issued_ms = c->issued_ms,
		.not_after_ms = c->not_after_ms,
		.revoked_ms = c->revoked_ms,
	};

	store_cert_put(st->store, &row);
}

/* Forgets the join tokens that have expired, here and in the store. */
static void trust_prune_tokens(struct state *st, int64_t now)
{
	struct join_token **tv = xcalloc(st->tokens.len + 1, sizeof(*tv));
	size_t nt = 0;

	/* Collected first: deleting from a strmap moves its entries. */
	for (size_t i = 0; i < st->tokens.cap; i++) {
		struct join_token *t = st->tokens.keys[i] ? st->tokens.vals[i] : NULL;

		if (t && t->expires_ms <= now)
			tv[nt++] = t;
	}
	for (size_t i = 0; i < nt; i++) {
		strmap_del(&st->tokens, tv[i]->id);
		store_token_delete(st->store, tv[i]->id);
		token_free(tv[i]);
	}
	free(tv);
}

/* Forgets the certificates that have expired, here and in the store. */
static void trust_prune_certs(struct state *st, int64_t now)
{
	struct node_cert **cv = xcalloc(st->certs.len + 1, sizeof(*cv));
	size_t nc = 0;

	for (size_t i = 0; i < st->certs.cap; i++) {
		struct node_cert *c = st->certs.keys[i] ? st->certs.vals[i] : NULL;

		if (c && c->not_after_ms <= now)
			cv[nc++] = c;
	}
	for (size_t i = 0; i < nc; i++) {
		strmap_del(&st->certs, cv[i]->serial);
		store_cert_delete(st->store, cv[i]->serial);
		cert_free(cv[i]);
	}
	free(cv);
}

void state_security(struct state *st, const char *name, const struct task *t, const char *node,
		    const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("security: %s: %s", name, msg);
	rights_event_at(st, "security", name, t, node, msg, hpq_mono_ms());
}

/* ---------------------------------------------------------------- tokens */

int state_token_create(struct state *st, const char *pool, uint64_t ttl_s, uint32_t uses,
		       const struct actor *who, char token[TRUST_TOKEN_MAX],
		       const struct join_token **ret, struct state_err *e)
{
	unsigned char id[ID_BYTES], secret[SECRET_BYTES];
	char idhex[2 * ID_BYTES + 1], sechex[2 * SECRET_BYTES + 1];
	char hash[2 * crypto_hash_sha256_BYTES + 1];
	int64_t now = hpq_now_ms();
	struct join_token *t;

	if (*pool && !strmap_get(&st->pool_names, pool))
		return state_errf(e, HPQ_ENOTFOUND, "no pool '%.64s' (hpq status lists the pools)",
				  pool);
	if (!ttl_s)
		ttl_s = TRUST_TOKEN_DEFAULT_TTL_S;
	if (ttl_s > TRUST_TOKEN_MAX_TTL_S)
		return state_errf(e, HPQ_EINVAL, "a token lives at most %d days",
				  TRUST_TOKEN_MAX_TTL_S / 86400);
	if (!uses)
		uses = 1;
	if (uses > TRUST_TOKEN_MAX_USES)
		return state_errf(e, HPQ_EINVAL, "a token is good for at most %d joins",
				  TRUST_TOKEN_MAX_USES);
	trust_prune_tokens(st, now);
	trust_prune_certs(st, now);
	do {
		randombytes_buf(id, sizeof(id));
		sodium_bin2hex(idhex, sizeof(idhex), id, sizeof(id));
	} while (strmap_get(&st->tokens, idhex));
	randombytes_buf(secret, sizeof(secret));
	sodium_bin2hex(sechex, sizeof(sechex), secret, sizeof(secret));
	secret_hash(sechex, hash);
	snprintf(token, TRUST_TOKEN_MAX, TOKEN_PREFIX "%s.%s", idhex, sechex);
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(sechex, sizeof(sechex));

	t = xcalloc(1, sizeof(*t));
	t->id = xstrdup(idhex);
	t->secret_hash = xstrdup(hash);
	t->pool = xstrdup(pool);
	t->expires_ms = now + (int64_t)ttl_s * 1000;
	t->uses_left = uses;
	t->created_by = xstrdup(who->user);
	t->created_ms = now;
	strmap_put(&st->tokens, t->id, t);
	token_save(st, t);
	state_event(st, "node", NULL, NULL, who->user, "join token %s made: %u join%s%s%s, %llu s",
		    t->id, uses, uses == 1 ? "" : "s", *pool ? " into pool " : "", pool,
		    (unsigned long long)ttl_s);
	*ret = t;
	return 0;
}

int state_token_check(struct state *st, const char *token, const char *node, const char *peer,
		      const struct join_token **ret, struct state_err *e)
{
	char id[2 * ID_BYTES + 1], secret[2 * SECRET_BYTES + 1];
	char hash[2 * crypto_hash_sha256_BYTES + 1];
	int64_t now = hpq_now_ms();
	struct join_token *t;
	const char *why;

	if (!token_split(token, id, secret)) {
		why = "a malformed join token";
		t = NULL;
	} else {
		t = strmap_get(&st->tokens, id);
		secret_hash(secret, hash);
		sodium_memzero(secret, sizeof(secret));
		if (!t || sodium_memcmp(hash, t->secret_hash, sizeof(hash) - 1) != 0)
			why = "a join token hpqd does not know (wrong, deleted or expired)";
		else if (t->expires_ms <= now)
			why = "an expired join token";
		else if (!t->uses_left)
			why = "a join token that was used up";
		else
			why = NULL;
	}
	if (why) {
		state_security(st, node, NULL, node, "join as %s from %s refused: %s%s%s", node,
			       peer, why, t ? " " : "", t ? t->id : "");
		return state_errf(e, HPQ_EAUTH, "join refused: %s; ask an administrator for a new "
				  "one (hpq node token create)", why);
	}
	*ret = t;
	return 0;
}

void state_token_use(struct state *st, const struct join_token *ct)
{
	struct join_token *t = strmap_get(&st->tokens, ct->id);

	t->uses_left--;
	token_save(st, t);
}

int state_token_delete(struct state *st, const char *id, const struct actor *who,
		       struct state_err *e)
{
	struct join_token *t = strmap_get(&st->tokens, id);

	if (!t)
		return state_errf(e, HPQ_ENOTFOUND, "no join token '%.32s' (hpq node token list)",
				  id);
	strmap_del(&st->tokens, t->id);
	store_token_delete(st->store, t->id);
	state_event(st, "node", NULL, NULL, who->user, "join token %s deleted", t->id);
	token_free(t);
	return 0;
}

static int by_created(const void *a, const void *b)
{
	const struct join_token *x = *(const struct join_token *const *)a;
	const struct join_token *y = *(const struct join_token *const *)b;

	return x->created_ms < y->created_ms ? -1 : x->created_ms > y->created_ms;
}

const struct join_token **state_tokens(struct state *st, size_t *n)
{
	const struct join_token **v = xcalloc(st->tokens.len + 1, sizeof(*v));
	int64_t now = hpq_now_ms();

	*n = 0;
	for (size_t i = 0; i < st->tokens.cap; i++) {
		const struct join_token *t = st->tokens.keys[i] ? st->tokens.vals[i] : NULL;

		if (t && t->expires_ms > now)
			v[(*n)++] = t;
	}
	qsort(v, *n, sizeof(*v), by_created);
	return v;
}

/* ---------------------------------------------------------------- certificates */

void state_cert_issued(struct state *st, const char *serial, const char *node, const char *pool,
		       int64_t not_after_ms, const char *how)
{
	struct node_cert *c;
	char when[HPQ_UTC_LEN];

	/* Not the tokens: req_join holds the one it checked until it has
	 * answered, and it may have expired while the certificate was signed. */
	trust_prune_certs(st, hpq_now_ms());
	c = xcalloc(1, sizeof(*c));
	c->serial = xstrdup(serial);
	c->node = xstrdup(node);
	c->pool = xstrdup(pool);
	c->issued_ms = hpq_now_ms();
	c->not_after_ms = not_after_ms;
	strmap_put(&st->certs, c->serial, c);
	cert_save(st, c);
	hpq_utc_text(not_after_ms, when, sizeof(when));
	state_event(st, "node", NULL, node, node, "%s: certificate %s%s%s, valid until %s", how,
		    serial, *pool ? " for pool " : "", pool, when);
}

int state_cert_check(const struct state *st, const char *serial, const char *node,
		     struct state_err *e)
{
	const struct node_cert *c = strmap_get(&st->certs, serial);

	if (!c)
		return state_errf(e, HPQ_EAUTH, "this hpqd has no record of certificate %s: join "
				  "again with a new token", serial);
	if (strcmp(c->node, node))
		return state_errf(e, HPQ_EAUTH, "certificate %s was issued to node %s, not %s",
				  serial, c->node, node);
	if (c->revoked_ms)
		return state_errf(e, HPQ_EAUTH, "certificate %s of node %s was revoked: join again "
				  "with a new token", serial, node);
	return 0;
}

const struct node_cert *state_node_cert(const struct state *st, const char *node)
{
	const struct node_cert *best = NULL;
	int64_t now = hpq_now_ms();

	for (size_t i = 0; i < st->certs.cap; i++) {
		const struct node_cert *c = st->certs.keys[i] ? st->certs.vals[i] : NULL;

		if (c && !c->revoked_ms && c->not_after_ms > now && !strcmp(c->node, node) &&
		    (!best || c->not_after_ms > best->not_after_ms))
			best = c;
	}
	return best;
}

int state_cert_renewable(const struct state *st, const char *node, struct state_err *e)
{
	const struct node_cert *newest = NULL;
	int64_t now = hpq_now_ms();
	size_t valid = 0;
	char when[HPQ_UTC_LEN];

	for (size_t i = 0; i < st->certs.cap; i++) {
		const struct node_cert *c = st->certs.keys[i] ? st->certs.vals[i] : NULL;

		if (!c || c->revoked_ms || c->not_after_ms <= now || strcmp(c->node, node))
			continue;
		valid++;
		if (!newest || c->not_after_ms > newest->not_after_ms)
			newest = c;
	}
	/* A connection outlives its certificate (the agent renews on it),
	 * but a node none of whose certificates is valid any more joins
	 * again: a stale connection does not make it a fresh one. */
	if (!valid)
		return state_errf(e, HPQ_EAUTH, "node %s holds no valid certificate any more: "
				  "it joins again with a token (hpq node token create)", node);
	if (valid < TRUST_NODE_CERTS_MAX)
		return 0;
	hpq_utc_text(newest->not_after_ms, when, sizeof(when));
	return state_errf(e, HPQ_EBUSY, "node %s holds %zu valid certificates already (the "
			  "newest, %s, valid until %s): no renewal until one of them expires",
			  node, valid, newest->serial, when);
}

int state_node_revoke(struct state *st, const char *node, const struct actor *who, size_t *n,
		      struct state_err *e)
{
	int64_t now = hpq_now_ms();

	*n = 0;
	for (size_t i = 0; i < st->certs.cap; i++) {
		struct node_cert *c = st->certs.keys[i] ? st->certs.vals[i] : NULL;

		if (!c || c->revoked_ms || strcmp(c->node, node))
			continue;
		c->revoked_ms = now;
		cert_save(st, c);
		(*n)++;
	}
	if (!*n && !state_node_find(st, node))
		return state_errf(e, HPQ_ENOTFOUND, "no node '%.64s' and no certificate for it",
				  node);
	state_event(st, "node", NULL, node, who->user, "certificates revoked (%zu valid): the "
		    "node may come back only by joining with a new token", *n);
	return 0;
}

/* ---------------------------------------------------------------- load, release */

void load_token(void *arg, const struct store_token_row *row)
{
	struct state *st = arg;
	struct join_token *t = xcalloc(1, sizeof(*t));

	t->id = xstrdup(row->id);
	t->secret_hash = xstrdup(row->secret_hash);
	t->pool = xstrdup(row->pool);
	t->expires_ms = row->expires_ms;
	t->uses_left = row->uses_left;
	t->created_by = xstrdup(row->created_by);
	t->created_ms = row->created_ms;
	strmap_put(&st->tokens, t->id, t);
}

void load_cert(void *arg, const struct store_cert_row *row)
{
	struct state *st = arg;
	struct node_cert *c = xcalloc(1, sizeof(*c));

	c->serial = xstrdup(row->serial);
	c->node = xstrdup(row->node);
	c->pool = xstrdup(row->pool);
	c->issued_ms = row->issued_ms;
	c->not_after_ms = row->not_after_ms;
	c->revoked_ms = row->revoked_ms;
	strmap_put(&st->certs, c->serial, c);
}

void trust_release(struct state *st)
{
	for (size_t i = 0; i < st->tokens.cap; i++)
		if (st->tokens.keys[i])
			token_free(st->tokens.vals[i]);
	for (size_t i = 0; i < st->certs.cap; i++)
		if (st->certs.keys[i])
			cert_free(st->certs.vals[i]);
	strmap_release(&st->tokens);
	strmap_release(&st->certs);
}
