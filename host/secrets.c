#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

void secrets_init(struct secrets *s)
{
    memset(s, 0, sizeof *s);
}

void secrets_wipe(struct secrets *s)
{
    if (s != NULL)
        mbedtls_platform_zeroize(s, sizeof *s);
}

const char *secrets_share_list(uint8_t bitmap, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    unsigned total = 0, done = 0;
    for (unsigned i = 0; i < 8; i++)
        total += (bitmap >> i) & 1u;
    size_t used = 0;
    for (unsigned i = 0; i < 8; i++) {
        if (!((bitmap >> i) & 1u))
            continue;
        const char *sep = done == 0 ? "" : done + 1 == total ? " and " : ", ";
        int n = snprintf(buf + used, cap - used, "%s%u", sep, i + 1);
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
        done++;
    }
    return buf;
}

const char *secrets_share_phrase(uint8_t bitmap, char *buf, size_t cap)
{
    char list[40];
    bool many = (bitmap & (bitmap - 1u)) != 0;
    snprintf(buf, cap, "share%s %s", many ? "s" : "", secrets_share_list(bitmap, list, sizeof list));
    return buf;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Trims blanks off both ends of [*p, *p + *len). */
static void trim(const char **p, size_t *len)
{
    while (*len > 0 && is_blank((*p)[0])) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && is_blank((*p)[*len - 1]))
        (*len)--;
}

int secrets_parse_share(const char *text, size_t len, uint8_t out[SECRETS_SHARE_LEN])
{
    if (text == NULL)
        return -1;
    const char *p = text;
    trim(&p, &len);
    if (len != 2 * SECRETS_SHARE_LEN)
        return -1;
    uint8_t tmp[SECRETS_SHARE_LEN];
    uint8_t any = 0;
    int rc = 0;
    for (size_t i = 0; i < SECRETS_SHARE_LEN; i++) {
        int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            rc = -1;
            break;
        }
        tmp[i] = (uint8_t)(hi << 4 | lo);
        any |= tmp[i];
    }
    if (rc == 0 && any == 0)
        rc = -1;
    if (rc == 0)
        memcpy(out, tmp, sizeof tmp);
    mbedtls_platform_zeroize(tmp, sizeof tmp);
    return rc;
}

/* A PIN value: 4..16 printable ASCII characters. */
static bool pin_ok(const char *v, size_t len)
{
    if (len < SECRETS_PIN_MIN || len > SECRETS_PIN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7E)
            return false;
    return true;
}

static bool key_is(const char *k, size_t klen, const char *name)
{
    size_t n = strlen(name);
    if (klen != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = k[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != name[i])
            return false;
    }
    return true;
}

int secrets_parse(const char *text, size_t len, const char *source, struct secrets *s,
                  char *err, size_t errlen)
{
    secrets_init(s);
    if (source == NULL)
        source = "secrets";
    size_t pos = 0;
    unsigned long lineno = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl != NULL ? (size_t)(nl - line) : len - pos;
        pos += llen + (nl != NULL ? 1 : 0);
        lineno++;
        trim(&line, &llen);
        if (llen == 0 || line[0] == '#')
            continue;
        const char *eq = memchr(line, '=', llen);
        if (eq == NULL) {
            snprintf(err, errlen, "%s, line %lu: expected KEY = VALUE", source, lineno);
            goto fail;
        }
        const char *key = line;
        size_t klen = (size_t)(eq - line);
        const char *val = eq + 1;
        size_t vlen = llen - klen - 1;
        trim(&key, &klen);
        trim(&val, &vlen);
        struct secret_pin *pin = NULL;
        const char *pin_name = NULL;
        if (key_is(key, klen, "pin")) {
            pin = &s->pin;
            pin_name = "pin";
        } else if (key_is(key, klen, "puk")) {
            pin = &s->puk;
            pin_name = "puk";
        } else if (key_is(key, klen, "admin")) {
            pin = &s->admin;
            pin_name = "admin";
        }
        if (pin != NULL) {
            if (pin->len != 0) {
                snprintf(err, errlen, "%s, line %lu: %s given twice", source, lineno, pin_name);
                goto fail;
            }
            if (!pin_ok(val, vlen)) {
                snprintf(err, errlen, "%s, line %lu: %s must be 4 to 16 printable ASCII "
                         "characters", source, lineno, pin_name);
                goto fail;
            }
            memcpy(pin->v, val, vlen);
            pin->len = vlen;
            continue;
        }
        if (klen == 7 && key_is(key, 6, "share.") && key[6] >= '1' && key[6] <= '8') {
            unsigned idx = (unsigned)(key[6] - '0');
            uint8_t bit = (uint8_t)(1u << (idx - 1));
            if (s->shares & bit) {
                snprintf(err, errlen, "%s, line %lu: share.%u given twice", source, lineno, idx);
                goto fail;
            }
            if (secrets_parse_share(val, vlen, s->share[idx - 1]) != 0) {
                snprintf(err, errlen, "%s, line %lu: share.%u must be 64 hex digits (32 bytes, "
                         "not all zero)", source, lineno, idx);
                goto fail;
            }
            s->shares |= bit;
            continue;
        }
        /* The key is not secret (the value is never echoed); keep it short and printable. */
        char shown[40];
        size_t sl = klen < sizeof shown - 1 ? klen : sizeof shown - 1;
        for (size_t i = 0; i < sl; i++)
            shown[i] = (key[i] >= 0x20 && key[i] <= 0x7E) ? key[i] : '?';
        shown[sl] = '\0';
        snprintf(err, errlen, "%s, line %lu: unknown key \"%s\" (known: pin, puk, admin, "
                 "share.1 .. share.8)", source, lineno, shown);
        goto fail;
    }
    return 0;
fail:
    secrets_wipe(s);
    return -1;
}

/* Reads everything from fd into a heap buffer (at most SECRETS_MAX_TEXT bytes). */
static int read_all(int fd, const char *source, char **out, size_t *out_len, char *err,
                    size_t errlen)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= SECRETS_MAX_TEXT) {
                snprintf(err, errlen, "%s is longer than %u bytes: not a secrets file", source,
                         SECRETS_MAX_TEXT);
                goto fail;
            }
            size_t ncap = cap * 2;
            char *nb = malloc(ncap);
            if (nb == NULL) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            memcpy(nb, buf, len);
            mbedtls_platform_zeroize(buf, cap);
            free(buf);
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read %s: %s", source, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *out = buf;
    *out_len = len;
    return 0;
fail:
    mbedtls_platform_zeroize(buf, cap);
    free(buf);
    return -1;
}

int secrets_load(const char *path, struct secrets *s, char *err, size_t errlen)
{
    secrets_init(s);
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "no secrets file given");
        return -1;
    }
    bool from_stdin = strcmp(path, "-") == 0;
    char source[320];
    if (from_stdin)
        snprintf(source, sizeof source, "standard input");
    else
        snprintf(source, sizeof source, "secrets file %.280s", path);
    int fd = STDIN_FILENO;
    if (!from_stdin) {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", source, strerror(errno));
            return -1;
        }
        struct stat st;
        if (fstat(fd, &st) != 0) {
            snprintf(err, errlen, "cannot stat %s: %s", source, strerror(errno));
            close(fd);
            return -1;
        }
        if (!S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "%s is not a regular file", source);
            close(fd);
            return -1;
        }
        if ((st.st_mode & 077) != 0) {
            snprintf(err, errlen, "%s is accessible by group or others (mode %04o): refusing "
                     "to use it; run chmod 600 on it", source, (unsigned)(st.st_mode & 07777));
            close(fd);
            return -1;
        }
    }
    char *text = NULL;
    size_t len = 0;
    int rc = read_all(fd, source, &text, &len, err, errlen);
    if (!from_stdin)
        close(fd);
    if (rc != 0)
        return -1;
    rc = secrets_parse(text, len, source, s, err, errlen);
    mbedtls_platform_zeroize(text, len);
    free(text);
    return rc;
}

bool secrets_have_terminal(void)
{
    return isatty(STDIN_FILENO) == 1;
}

int secrets_read_hidden(const char *prompt, uint8_t *out, size_t cap, size_t *len, char *err,
                        size_t errlen)
{
    *len = 0;
    if (!secrets_have_terminal()) {
        snprintf(err, errlen, "standard input is not a terminal, so there is nobody to prompt: "
                 "give the secrets in a file (or '-' for standard input)");
        return -1;
    }
    struct termios old, quiet;
    bool restore = false;
    if (tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0)
            restore = true;
    }
    fputs(prompt, stderr);
    fflush(stderr);
    int rc = 0;
    size_t n = 0;
    bool too_long = false;
    for (;;) {
        char ch;
        ssize_t r = read(STDIN_FILENO, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (n == 0) {
                snprintf(err, errlen, "end of input at the prompt");
                rc = -1;
            }
            break;
        }
        if (ch == '\n')
            break;
        if (ch == '\r')
            continue;
        if (n < cap)
            out[n++] = (uint8_t)ch;
        else
            too_long = true;
        ch = 0;
    }
    if (restore)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
    if (rc == 0 && too_long) {
        snprintf(err, errlen, "the answer is longer than %zu characters", cap);
        rc = -1;
    }
    if (rc != 0) {
        mbedtls_platform_zeroize(out, cap);
        n = 0;
    }
    *len = n;
    return rc;
}

int secrets_prompt_pin(const char *what, bool confirm, struct secret_pin *p, char *err,
                       size_t errlen)
{
    char prompt[160];
    struct secret_pin again;
    memset(p, 0, sizeof *p);
    memset(&again, 0, sizeof again);
    for (int attempt = 0; attempt < 3; attempt++) {
        snprintf(prompt, sizeof prompt, "Enter the %s: ", what);
        if (secrets_read_hidden(prompt, p->v, sizeof p->v, &p->len, err, errlen) != 0)
            goto fail;
        if (!pin_ok((const char *)p->v, p->len)) {
            fprintf(stderr, "icdup: a PIN has 4 to 16 printable ASCII characters; try again\n");
            mbedtls_platform_zeroize(p, sizeof *p);
            continue;
        }
        if (!confirm)
            return 0;
        snprintf(prompt, sizeof prompt, "Repeat the %s: ", what);
        if (secrets_read_hidden(prompt, again.v, sizeof again.v, &again.len, err, errlen) != 0)
            goto fail;
        bool same = again.len == p->len && memcmp(again.v, p->v, p->len) == 0;
        mbedtls_platform_zeroize(&again, sizeof again);
        if (same)
            return 0;
        fprintf(stderr, "icdup: the two entries differ; try again\n");
        mbedtls_platform_zeroize(p, sizeof *p);
    }
    snprintf(err, errlen, "no valid %s entered after 3 attempts", what);
fail:
    mbedtls_platform_zeroize(p, sizeof *p);
    mbedtls_platform_zeroize(&again, sizeof again);
    return -1;
}

int secrets_prompt_shares(uint8_t needed, struct secrets *s, char *err, size_t errlen)
{
    for (unsigned i = 1; i <= SECRETS_MAX_SHARES; i++) {
        if (!((needed >> (i - 1)) & 1u))
            continue;
        uint8_t line[2 * SECRETS_SHARE_LEN + 16];
        size_t n = 0;
        bool ok = false;
        for (int attempt = 0; attempt < 3 && !ok; attempt++) {
            char prompt[96];
            snprintf(prompt, sizeof prompt, "Officer %u, enter share %u (64 hex digits): ", i, i);
            if (secrets_read_hidden(prompt, line, sizeof line, &n, err, errlen) != 0) {
                mbedtls_platform_zeroize(line, sizeof line);
                return -1;
            }
            ok = secrets_parse_share((const char *)line, n, s->share[i - 1]) == 0;
            mbedtls_platform_zeroize(line, sizeof line);
            if (!ok)
                fprintf(stderr, "icdup: a share is 64 hex digits, not all zero; try again\n");
        }
        if (!ok) {
            snprintf(err, errlen, "no valid share %u entered after 3 attempts", i);
            return -1;
        }
        s->shares |= (uint8_t)(1u << (i - 1));
    }
    return 0;
}
