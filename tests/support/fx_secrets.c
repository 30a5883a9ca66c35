/* See fx_secrets.h. */
#include "fx_secrets.h"

#include <string.h>

void fx_secrets(struct secrets *s, unsigned n, uint8_t seed)
{
    secrets_init(s);
    static const char *const pins[3] = { "123456", "12345678", "87654321" };
    struct secret_pin *p[3] = { &s->pin, &s->puk, &s->admin };
    for (int i = 0; i < 3; i++) {
        p[i]->len = strlen(pins[i]);
        memcpy(p[i]->v, pins[i], p[i]->len);
    }
    for (unsigned i = 0; i < n && i < SECRETS_MAX_SHARES; i++)
        for (unsigned j = 0; j < SECRETS_SHARE_LEN; j++)
            s->share[i][j] = (uint8_t)(seed * (i + 1) + 7 * j + 1);
}
