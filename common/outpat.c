/*
 * outpat.c: checking output file patterns (outpat.h). Slurm also has
 * padding widths (%4a) and escapes for things hpq does not track (%n,
 * %s, %b); a pattern using them is refused rather than written out
 * literally, so that a script never logs to a file its author did not
 * mean.
 */
#include <string.h>

#include "error.h"
#include "outpat.h"

int hpq_outpat_check(const char *pat, char *err, size_t errlen)
{
	size_t n = strlen(pat);

	if (n > HPQ_OUTPAT_MAX)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"output pattern is %zu bytes long, more than %d", n,
				HPQ_OUTPAT_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)pat[i];

		if (c < 0x20 || c == 0x7f)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"output pattern '%s' holds a control character", pat);
		if (c != '%')
			continue;
		c = (unsigned char)pat[++i];
		if (c == '\0')
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"output pattern '%s' ends with a lone '%%'; write %%%% "
					"for a '%%'", pat);
		if (strchr("jAaxuNt%", c))
			continue;
		if (c >= '0' && c <= '9')
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"output pattern '%s': padding widths like '%%%c...' are "
					"not supported; use %%j %%A %%a %%x %%u %%N %%t or %%%%",
					pat, c);
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"output pattern '%s': unknown escape '%%%c'; use %%j (task id), "
				"%%A (array id), %%a (array index), %%x (name), %%u (user), "
				"%%N (node), %%t (node rank) or %%%% (a '%%')",
				pat, c >= 0x20 && c < 0x7f ? c : '?');
	}
	return 0;
}
