/*
 * config-check.h: the agent's settings against the system, for
 * `hpq-agent --check` and for detaching: the paths made absolute before
 * the agent leaves the directory it was started in, the values checked
 * the way the agent will use them, and the settings printed with where
 * each value came from.
 */
#ifndef HPQ_AGENT_CONFIG_CHECK_H
#define HPQ_AGENT_CONFIG_CHECK_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "res.h"

/*
 * Makes the paths of cfg absolute (work-dir, health-dir, health-inject)
 * against the current directory. Returns 0, or a negative code with err
 * naming the setting whose path cannot be resolved.
 */
int config_make_absolute(struct agent_config *cfg, char *err, size_t errlen);

/*
 * Checks what config_set cannot: the server's and the address's host
 * names resolve, the work directory can be written in (or made) by this
 * user, the health directory is a directory it can read. Writes one line
 * per problem to f ("hpq-agent: work-dir '/x': ...") and returns how many
 * there were.
 */
unsigned config_check(const struct agent_config *cfg, FILE *f);

/*
 * Prints the settings to out as agent.conf lines, each followed by where
 * its value came from: "; option" when options (n setting names, as
 * config_set takes them) holds it, "; file" when the file config_path
 * (NULL: none) sets it, "; detected" for the node name and for resources
 * found on the node (capacity: what capacity_detect found), else
 * "; default". Settings without a value are printed commented out.
 */
void config_print(const struct agent_config *cfg, struct hpq_res capacity,
		  const char *config_path, const char *const *options, size_t n, FILE *out);

#endif
