/* PINs and key-group shares for the host tools: from a secrets file, from standard input, or
 * typed at a no-echo terminal prompt. Nothing here ever prints a secret value.
 *
 * Secrets file: one "KEY = VALUE" per line; blank lines and lines starting with '#' are skipped.
 *   pin      user PIN, 4..16 printable ASCII characters
 *   puk      PUK, same form
 *   admin    admin PIN, same form
 *   share.1 .. share.8   a share of the key group, 64 hex digits (32 bytes, not all zero)
 * Every key is optional and may appear once. A file (not standard input) must not be
 * accessible by group or others (mode & 077 == 0), else it is refused. */
#ifndef SECRETS_H
#define SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECRETS_PIN_MIN 4u
#define SECRETS_PIN_MAX 16u
#define SECRETS_MAX_SHARES 8u
#define SECRETS_SHARE_LEN 32u
#define SECRETS_MAX_TEXT 65536u /* longest secrets file accepted */

struct secret_pin {
    uint8_t v[SECRETS_PIN_MAX];
    size_t len; /* 0: absent */
};

struct secrets {
    struct secret_pin pin, puk, admin;
    uint8_t share[SECRETS_MAX_SHARES][SECRETS_SHARE_LEN];
    uint8_t shares; /* bit i-1 set: share i is present */
};

/* Empties s (all absent). */
void secrets_init(struct secrets *s);

/* Overwrites every byte of s with zeros (all absent). NULL is ignored. */
void secrets_wipe(struct secrets *s);

/* Parses secrets-file text (len bytes, need not be NUL-terminated) into s, which is emptied
 * first. source names the input in messages ("secrets file x", "standard input").
 * Returns 0, or -1 with a message naming the line (never its value) in err; s is then wiped. */
int secrets_parse(const char *text, size_t len, const char *source, struct secrets *s,
                  char *err, size_t errlen);

/* Reads a secrets file, or standard input when path is "-". A file must be a regular file with
 * no group/other permission bits. Returns 0, or -1 with a message in err (s wiped). */
int secrets_load(const char *path, struct secrets *s, char *err, size_t errlen);

/* Decodes exactly 64 hex digits (surrounding blanks allowed) into a share. Returns 0, or -1
 * (wrong length, non-hex character, all zero); out is untouched on failure. */
int secrets_parse_share(const char *text, size_t len, uint8_t out[SECRETS_SHARE_LEN]);

/* True when standard input is a terminal a prompt can read from. */
bool secrets_have_terminal(void);

/* Prints prompt to stderr and reads one line from the terminal on standard input with echo
 * off, into out (cap bytes, no newline, not NUL-terminated), *len set. Returns 0, or -1 with a
 * message in err: standard input is not a terminal, end of input, or a line longer than cap. */
int secrets_read_hidden(const char *prompt, uint8_t *out, size_t cap, size_t *len, char *err,
                        size_t errlen);

/* Prompts for a PIN (what names it: "user PIN of the source card"); with confirm it is asked
 * twice and must match. Returns 0 with p set, or -1 with a message in err. */
int secrets_prompt_pin(const char *what, bool confirm, struct secret_pin *p, char *err,
                       size_t errlen);

/* Prompts officer i for share i for each bit of needed (bit i-1), "Officer i, enter share i
 * (64 hex digits): ", retrying a mistyped share up to three times. Returns 0 with the shares
 * added to s, or -1 with a message in err. */
int secrets_prompt_shares(uint8_t needed, struct secrets *s, char *err, size_t errlen);

/* "1, 2 and 5" for a share bitmap, into buf (empty when none). Returns buf. */
const char *secrets_share_list(uint8_t bitmap, char *buf, size_t cap);

/* "share 3" or "shares 1, 2 and 5" for a share bitmap (non-empty), into buf. Returns buf. */
const char *secrets_share_phrase(uint8_t bitmap, char *buf, size_t cap);

#endif
