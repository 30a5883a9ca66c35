/* Constant-time helpers for secrets: comparisons that do not branch on the data, and wipes the
 * compiler cannot drop. */
#ifndef CT_H
#define CT_H

#include <stddef.h>
#include <stdint.h>

/* Returns 1 when the n bytes at a and b are equal, 0 otherwise; time depends on n only. */
static inline int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return (int)(1u & (((unsigned)diff - 1u) >> 8));
}

/* Overwrites n bytes with zeros through a volatile pointer. */
static inline void ct_wipe(void *p, size_t n)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--)
        *v++ = 0;
}

#endif
