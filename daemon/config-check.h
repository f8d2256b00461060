/*
 * config-check.h: hpqd's settings against the system, for `hpqd --check`
 * and for becoming a daemon: the paths made absolute before hpqd leaves
 * the directory it was started in, the values checked the way hpqd will
 * use them, and the settings printed with where each value came from.
 */
#ifndef HPQD_CONFIG_CHECK_H
#define HPQD_CONFIG_CHECK_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

/*
 * Makes the paths of c absolute (state_dir, socket) against the current
 * directory. Returns 0, or a negative code with err naming the setting
 * whose path cannot be resolved or, made absolute, no longer fits.
 */
int config_make_absolute(struct config *c, char *err, size_t errlen);

/*
 * The rule of fencing ([agents] fence_after, hpqd(8)): fence_after is at
 * least two heartbeats, and a node is declared lost (its tasks requeued)
 * no sooner than its supervisors have surely killed them:
 * unreachable_after x heartbeat >= 2 x fence_after + CONFIG_FENCE_MARGIN_MS.
 * Returns 0, or HPQ_EINVAL with err saying which setting to change.
 * hpqd refuses to start with settings that break it, and --check says so.
 */
int config_fence_check(const struct config *c, char *err, size_t errlen);

/*
 * Checks what config_set cannot: the listen and metrics addresses are an
 * IP address and a port, and not the same port; the state directory and
 * the socket's directory can be written in (or made) by this user; the
 * repair command is an executable file; the rule of fencing above holds;
 * the [autoscale.POOL] sections are whole (config_autoscale_check) and
 * their commands executable files.
 * Writes one line per problem to f
 * ("hpqd: state_dir '/x': ...") and returns how many there were.
 */
unsigned config_check(const struct config *c, FILE *f);

/*
 * Copies text, settings in the configuration file's syntax ("[section]"
 * and "key = value" lines), to out with each setting followed by where
 * its value came from: "; option" when options (n "section.key" names)
 * holds it, else "; file" when the file config_path (NULL: none) sets it,
 * else "; default". The comments keep the text a valid configuration.
 */
void config_print_sources(FILE *out, const char *text, const char *config_path,
			  const char *const *options, size_t n);

#endif
