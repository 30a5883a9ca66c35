/* Power cut at every single NVM write of scripted command sequences.
 *
 * For each script, each tear mode (NONE, HALF, GARBAGE) and each n = 0, 1, 2, ...: start from
 * the script's starting image, arm a cut after n device writes, send the script until a command
 * answers 6581 (the cut), reboot. The mount must succeed (the image is never corrupt) and the
 * observable state must be the one after command k-1 or after command k of an uncut run, k being
 * the command that met the cut. n grows until the script runs without meeting the cut, which
 * must happen exactly at the number of writes the uncut run made.
 *
 * The observable state is a "digest" taken with APDUs only, on a freshly mounted copy of the
 * image: GET DATA DF01, DF02, DF03, DF04, DF05, DF06, then for every file of the DF05 list a
 * SELECT by path (its FCP) and, for working EFs, READ BINARY of all of it (the status word is
 * recorded when access is refused).
 *
 * One documented exception: a command that tries a secret (VERIFY, CHANGE REFERENCE DATA,
 * RESET RETRY COUNTER with the PUK) spends the try durably *before* comparing and restores the
 * counter afterwards (pin.h), so a cut there may also leave the state before it with that
 * reference's counter one lower, or back at its maximum (compare done, rest of the command
 * not), and nothing else changed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card_fixture.h"
#include "nvm_sim.h"

#define APDU(fx, hex, sw) assert_int_equal(fx_apdu((fx), (hex)), (sw))

#define MAX_CMDS 40
#define MAX_RUN_WRITES 2000 /* guard against a script that never completes */

static const enum nvm_sim_tear tears[] = { NVM_SIM_TEAR_NONE, NVM_SIM_TEAR_HALF,
                                           NVM_SIM_TEAR_GARBAGE };
static const char *const tear_name[] = { "NONE", "HALF", "GARBAGE" };

/* ---- scripts ------------------------------------------------------------------------------ */

struct script {
    const char *name;
    size_t n;
    char *apdu[MAX_CMDS];
    uint16_t sw[MAX_CMDS];  /* expected answer in the uncut run */
    uint8_t ref[MAX_CMDS];  /* reference whose try the command spends first, or 0 */
};

static void add(struct script *s, uint16_t sw, uint8_t ref, const char *fmt, ...)
{
    assert_true(s->n < MAX_CMDS);
    char buf[2 * CARD_MAX_NC + 64];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_true(len > 0 && (size_t)len < sizeof buf);
    s->apdu[s->n] = malloc((size_t)len + 1);
    assert_non_null(s->apdu[s->n]);
    memcpy(s->apdu[s->n], buf, (size_t)len + 1);
    s->sw[s->n] = sw;
    s->ref[s->n] = ref;
    s->n++;
}

/* Hex of n pattern bytes (byte i = i * mul + add), into out (2n + 1 chars). */
static char *pattern_hex(char *out, size_t n, unsigned mul, unsigned add_)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02X", (unsigned)((i * mul + add_) & 0xFFu));
    return out;
}

static void script_free(struct script *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->apdu[i]);
    s->n = 0;
}

/* ---- digest ------------------------------------------------------------------------------- */

struct digest {
    uint8_t pin[12]; /* GET DATA DF04 */
    uint8_t *rest;   /* everything else, status words included */
    size_t len, cap;
};

static void dg_put(struct digest *d, const void *p, size_t n)
{
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 1024;
        while (cap < d->len + n)
            cap *= 2;
        d->rest = realloc(d->rest, cap);
        assert_non_null(d->rest);
        d->cap = cap;
    }
    memcpy(d->rest + d->len, p, n);
    d->len += n;
}

/* Appends SW, data length and data of the last response. */
static void dg_rsp(struct digest *d, const struct fx *fx)
{
    size_t n = fx_data_len(fx);
    uint8_t h[4] = { fx->rsp[n], fx->rsp[n + 1], (uint8_t)(n >> 8), (uint8_t)n };
    dg_put(d, h, sizeof h);
    dg_put(d, fx->rsp, n);
}

static void dg_free(struct digest *d)
{
    free(d->rest);
    memset(d, 0, sizeof *d);
}

static uint16_t raw(struct fx *fx, const uint8_t *a, size_t n)
{
    return fx_raw(fx, a, n);
}

/* Path from the MF (without 3F00) of the file at record idx of the DF05 list. */
static size_t path_of(const uint8_t *list, size_t nrec, size_t idx, uint8_t *path)
{
    uint16_t chain[8];
    size_t depth = 0;
    size_t cur = idx;
    for (;;) {
        uint16_t fid = (uint16_t)(list[cur * 12] << 8 | list[cur * 12 + 1]);
        uint16_t parent = (uint16_t)(list[cur * 12 + 2] << 8 | list[cur * 12 + 3]);
        if (fid == 0x3F00)
            break;
        assert_true(depth < 8);
        chain[depth++] = fid;
        size_t p = nrec;
        for (size_t i = 0; i < nrec; i++)
            if ((list[i * 12] << 8 | list[i * 12 + 1]) == parent)
                p = i;
        assert_true(p < nrec);
        cur = p;
    }
    for (size_t i = 0; i < depth; i++) {
        path[2 * i] = (uint8_t)(chain[depth - 1 - i] >> 8);
        path[2 * i + 1] = (uint8_t)chain[depth - 1 - i];
    }
    return 2 * depth;
}

/* Mounts a copy of img in the probe card and takes the digest with APDUs. */
static void digest_image(struct fx *probe, const uint8_t *img, struct digest *d)
{
    memset(d, 0, sizeof *d);
    nvm_sim_restore(&probe->nvm, img);
    assert_int_equal(fx_reboot(probe), 0);
    static const char *const dos[] = { "00CA DF01 000000", "00CA DF02 000000", "00CA DF03 000000",
                                       "00CA DF06 000000" };
    for (size_t i = 0; i < sizeof dos / sizeof dos[0]; i++) {
        (void)fx_apdu(probe, dos[i]);
        dg_rsp(d, probe);
    }
    APDU(probe, "00CA DF04 000000", 0x9000);
    assert_int_equal(fx_data_len(probe), sizeof d->pin);
    memcpy(d->pin, probe->rsp, sizeof d->pin);

    APDU(probe, "00CA DF05 000000", 0x9000);
    dg_rsp(d, probe);
    size_t nbytes = fx_data_len(probe);
    assert_true(nbytes % 12 == 0);
    uint8_t *list = malloc(nbytes);
    assert_non_null(list);
    memcpy(list, probe->rsp, nbytes);
    size_t nrec = nbytes / 12;
    for (size_t r = 0; r < nrec; r++) {
        uint8_t a[4 + 1 + 16 + 1] = { 0x00, 0xA4, 0x08, 0x00 };
        size_t plen = path_of(list, nrec, r, a + 5);
        uint8_t fdb = list[r * 12 + 4];
        unsigned size = (unsigned)(list[r * 12 + 6] << 8 | list[r * 12 + 7]);
        if (plen == 0)
            continue; /* the MF: in the list already */
        a[4] = (uint8_t)plen;
        a[5 + plen] = 0x00;
        (void)raw(probe, a, 6 + plen);
        dg_rsp(d, probe);
        if (fdb != 0x01)
            continue;
        for (unsigned off = 0; off < size; off += 256) {
            uint8_t rb[5] = { 0x00, 0xB0, (uint8_t)(off >> 8), (uint8_t)off, 0x00 };
            uint16_t sw = raw(probe, rb, sizeof rb);
            dg_rsp(d, probe);
            if (sw != 0x9000)
                break;
        }
    }
    free(list);
}

static bool digest_equal(const struct digest *a, const struct digest *b)
{
    return memcmp(a->pin, b->pin, sizeof a->pin) == 0 && a->len == b->len &&
           (a->len == 0 || memcmp(a->rest, b->rest, a->len) == 0);
}

/* The documented intermediate states of a command that spends a try of ref first. */
static bool is_try_intermediate(const struct digest *d, const struct digest *before, uint8_t ref)
{
    if (ref == 0 || d->len != before->len || memcmp(d->rest, before->rest, d->len) != 0)
        return false;
    for (size_t i = 0; i < sizeof d->pin; i += 4) {
        if (before->pin[i] != ref)
            continue;
        uint8_t spent[12], full[12];
        memcpy(spent, before->pin, sizeof spent);
        memcpy(full, before->pin, sizeof full);
        spent[i + 2] = (uint8_t)(spent[i + 2] - 1u);
        full[i + 2] = full[i + 3];
        return (before->pin[i + 2] > 0 && memcmp(d->pin, spent, sizeof spent) == 0) ||
               memcmp(d->pin, full, sizeof full) == 0;
    }
    return false;
}

/* ---- the sweep ---------------------------------------------------------------------------- */

struct run_stats {
    unsigned long runs;
    unsigned long writes; /* device writes of the uncut script */
};

static void sweep(struct fx *fx, const struct script *s, struct run_stats *st)
{
    struct fx *probe = calloc(1, sizeof *probe);
    assert_non_null(probe);
    assert_int_equal(fx_open(probe), 0);
    uint8_t *start = malloc(CARD_NVM_DEFAULT_SIZE);
    uint8_t *img = malloc(CARD_NVM_DEFAULT_SIZE);
    assert_non_null(start);
    assert_non_null(img);
    nvm_sim_snapshot(&fx->nvm, start);

    /* reference run: digest before the script and after every command */
    struct digest ref[MAX_CMDS + 1];
    digest_image(probe, start, &ref[0]);
    nvm_sim_restore(&fx->nvm, start);
    assert_int_equal(fx_reboot(fx), 0);
    unsigned long w0 = fx->nvm.writes;
    for (size_t k = 0; k < s->n; k++) {
        uint16_t sw = fx_apdu(fx, s->apdu[k]);
        if (sw != s->sw[k])
            fail_msg("%s: uncut command %zu (%s): SW %04X, expected %04X", s->name, k,
                     s->apdu[k], sw, s->sw[k]);
        nvm_sim_snapshot(&fx->nvm, img);
        digest_image(probe, img, &ref[k + 1]);
    }
    unsigned long total = fx->nvm.writes - w0;
    assert_true(total > 0 && total < MAX_RUN_WRITES);
    st->writes += total;

    for (size_t m = 0; m < sizeof tears / sizeof tears[0]; m++) {
        for (unsigned long n = 0;; n++) {
            assert_true(n <= total);
            nvm_sim_restore(&fx->nvm, start);
            assert_int_equal(fx_reboot(fx), 0);
            nvm_sim_cut_after(&fx->nvm, (long)n, tears[m]);
            st->runs++;
            size_t k = 0;
            for (; k < s->n; k++) {
                uint16_t sw = fx_apdu(fx, s->apdu[k]);
                if (fx->nvm.dead) {
                    if (sw != 0x6581)
                        fail_msg("%s/%s n=%lu: command %zu (%s) met the cut but answered "
                                 "%04X", s->name, tear_name[m], n, k, s->apdu[k], sw);
                    break;
                }
                if (sw != s->sw[k])
                    fail_msg("%s/%s n=%lu: command %zu (%s): SW %04X, expected %04X",
                             s->name, tear_name[m], n, k, s->apdu[k], sw, s->sw[k]);
            }
            if (k == s->n) {
                /* ran through: the cut lies beyond the script's last write */
                nvm_sim_cut_after(&fx->nvm, -1, NVM_SIM_TEAR_NONE);
                if (n != total)
                    fail_msg("%s/%s: completed at n=%lu, the uncut run made %lu writes",
                             s->name, tear_name[m], n, total);
                break;
            }
            int rc = fx_reboot(fx);
            if (rc != 0)
                fail_msg("%s/%s n=%lu (command %zu): mount after the cut returned %d",
                         s->name, tear_name[m], n, k, rc);
            nvm_sim_snapshot(&fx->nvm, img);
            struct digest d;
            digest_image(probe, img, &d);
            bool ok = digest_equal(&d, &ref[k]) || digest_equal(&d, &ref[k + 1]) ||
                      is_try_intermediate(&d, &ref[k], s->ref[k]);
            dg_free(&d);
            if (!ok)
                fail_msg("%s/%s n=%lu: state after the cut in command %zu (%s) is neither "
                         "the state before nor after it", s->name, tear_name[m], n, k,
                         s->apdu[k]);
        }
    }
    for (size_t k = 0; k <= s->n; k++)
        dg_free(&ref[k]);
    free(img);
    free(start);
    fx_close(probe);
    free(probe);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static void run(struct fx *fx, struct script *s)
{
    struct run_stats st = { 0, 0 };
    sweep(fx, s, &st);
    /* every n from 0 to the script's write count, in each tear mode */
    assert_int_equal(st.runs, 3 * (st.writes + 1));
    script_free(s);
}

/* ---- (a) personalization from a blank card -------------------------------------------------- */

static void test_tear_personalization(void **state)
{
    struct script s = { .name = "personalization" };
    add(&s, 0x9000, 0, "00DA DF02 04 54455354");
    add(&s, 0x9000, 0, "0024 0181 06 313233343536");
    add(&s, 0x9000, 0, "0024 0182 08 3132333435363738");
    add(&s, 0x9000, 0, "0024 0183 08 3837363534333231");
    add(&s, 0x9000, 0, "00E0 0000 18 6216 820138 83025000 8408A000000647494344 8603000202");
    add(&s, 0x9000, 0, "00E0 0000 15 6213 820101 83025001 80020040 8603000102 880108");
    add(&s, 0x9000, 0, "00A4 000C 02 5000");
    add(&s, 0x9000, 0, "00E0 0000 12 6210 820109 83025002 80020020 8603FF0202");
    add(&s, 0x9000, 0, "00D6 0000 10 000102030405060708090A0B0C0D0E0F");
    add(&s, 0x9000, 0, "00A4 080C 04 50005001");
    add(&s, 0x9000, 0, "00D6 0000 08 1122334455667788");
    add(&s, 0x9000, 0, "00A4 000C 02 3F00");
    add(&s, 0x9000, 0, "0044 0000");
    run(*state, &s);
}

/* ---- (b) UPDATE BINARY of 32 and of 300 bytes over existing data ---------------------------- */

static void test_tear_update_binary(void **state)
{
    struct fx *fx = *state;
    /* EF 5003 of 512 bytes (all ACs always) in DF 5000, full of data; EF 5001 full too */
    static char hex[2 * 512 + 1];
    char cmd[2 * 512 + 64];
    APDU(fx, "0020 0083 08 3837363534333231", 0x9000);
    APDU(fx, "00A4 000C 02 5000", 0x9000);
    APDU(fx, "00E0 0000 12 6210 820101 83025003 80020200 8603000000", 0x9000);
    snprintf(cmd, sizeof cmd, "00D6 0000 000200 %s", pattern_hex(hex, 512, 13, 5));
    APDU(fx, cmd, 0x9000);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
    APDU(fx, "00A4 080C 04 50005001", 0x9000);
    snprintf(cmd, sizeof cmd, "00D6 0000 40 %s", pattern_hex(hex, 64, 3, 1));
    APDU(fx, cmd, 0x9000);

    struct script s = { .name = "update binary" };
    add(&s, 0x9000, 0x81, "0020 0081 06 313233343536");
    add(&s, 0x9000, 0, "00A4 080C 04 50005001");
    add(&s, 0x9000, 0, "00D6 0008 20 %s", pattern_hex(hex, 32, 7, 0x80));
    add(&s, 0x9000, 0, "00A4 020C 02 5003");
    add(&s, 0x9000, 0, "00D6 0064 00012C %s", pattern_hex(hex, 300, 11, 0x40));
    add(&s, 0x9000, 0, "00D6 8130 10 %s", pattern_hex(hex, 16, 1, 0xF0)); /* by SFI */
    run(fx, &s);
}

/* ---- (c) CREATE, UPDATE and DELETE of a DF with two EFs ------------------------------------- */

static void test_tear_create_delete_df(void **state)
{
    static char hex[2 * 300 + 1];
    struct script s = { .name = "create/delete DF" };
    add(&s, 0x9000, 0x83, "0020 0083 08 3837363534333231");
    add(&s, 0x9000, 0, "00A4 000C 02 3F00");
    add(&s, 0x9000, 0, "00E0 0000 0F 620D 820138 83026000 8404 D2760001");
    add(&s, 0x9000, 0, "00E0 0000 12 6210 820101 83026001 800200C8 8603000000");
    add(&s, 0x9000, 0, "00D6 0000 C8 %s", pattern_hex(hex, 200, 5, 3));
    add(&s, 0x9000, 0, "00A4 000C 02 6000");
    add(&s, 0x9000, 0, "00E0 0000 15 6213 820101 83026002 8002012C 8603000000 880110");
    add(&s, 0x9000, 0, "00D6 0000 00012C %s", pattern_hex(hex, 300, 9, 7));
    add(&s, 0x9000, 0, "00E0 0000 12 6210 820109 83026003 80020020 8603000000");
    add(&s, 0x9000, 0, "00D6 0000 20 %s", pattern_hex(hex, 32, 17, 1));
    add(&s, 0x9000, 0, "00A4 000C 02 3F00");
    add(&s, 0x9000, 0, "00E4 0000 02 6000");
    /* and the same FIDs again, in the freed space */
    add(&s, 0x9000, 0, "00E0 0000 09 6207 820138 83026000");
    add(&s, 0x9000, 0, "00E0 0000 12 6210 820101 83026001 80020100 8603000000");
    add(&s, 0x9000, 0, "00D6 0010 10 %s", pattern_hex(hex, 16, 1, 0));
    run(*state, &s);
}

/* ---- (d) CHANGE REFERENCE DATA and RESET RETRY COUNTER -------------------------------------- */

static void test_tear_pin_management(void **state)
{
    struct script s = { .name = "PIN management" };
    add(&s, 0x9000, 0x81, "0024 0081 0C 313233343536 363534333231");
    add(&s, 0x63C2, 0x81, "0020 0081 06 313233343536");
    add(&s, 0x63C1, 0x81, "0020 0081 06 313233343536");
    add(&s, 0x63C0, 0x81, "0020 0081 06 313233343536");
    add(&s, 0x9000, 0x82, "002C 0181 08 3132333435363738");
    add(&s, 0x63C2, 0x81, "0020 0081 06 000000000000");
    add(&s, 0x63C4, 0x82, "002C 0081 0E 3132333435363739 393939393939");
    add(&s, 0x9000, 0x82, "002C 0081 0E 3132333435363738 393939393939");
    add(&s, 0x9000, 0x81, "0020 0081 06 393939393939");
    add(&s, 0x63C2, 0x83, "0020 0083 08 0000000000000000");
    add(&s, 0x9000, 0x83, "0020 0083 08 3837363534333231");
    add(&s, 0x63C2, 0x81, "0020 0081 06 000000000000");
    add(&s, 0x63C1, 0x81, "0020 0081 06 000000000000");
    add(&s, 0x9000, 0, "002C 0381");
    add(&s, 0x9000, 0, "002C 0281 04 34343434");
    add(&s, 0x9000, 0x83, "0024 0083 10 3837363534333231 3132313231323132");
    add(&s, 0x9000, 0x82, "0024 0082 10 3132333435363738 3838383838383838");
    add(&s, 0x6A80, 0x81, "0024 0081 06 34343434 3535");
    run(*state, &s);
}

/* ---- (e) PUT DATA card type, TERMINATE ------------------------------------------------------ */

static void test_tear_put_data_terminate(void **state)
{
    struct script s = { .name = "put data/terminate" };
    add(&s, 0x9000, 0x83, "0020 0083 08 3837363534333231");
    add(&s, 0x9000, 0, "00DA DF02 07 4E455754595045");
    add(&s, 0x9000, 0, "00DA DF02 20 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    add(&s, 0x9000, 0, "00FE 0000");
    add(&s, 0x9000, 0, "00CA DF03 01");
    run(*state, &s);
}

/* ---- (f) file life cycle -------------------------------------------------------------------- */

static void test_tear_file_lifecycle(void **state)
{
    struct script s = { .name = "file life cycle" };
    add(&s, 0x9000, 0x83, "0020 0083 08 3837363534333231");
    add(&s, 0x9000, 0, "00A4 080C 04 50005001");
    add(&s, 0x9000, 0, "0004 0000");
    add(&s, 0x9000, 0, "00A4 000C 02 3F00");
    add(&s, 0x9000, 0, "0004 0000 02 5000");
    add(&s, 0x9000, 0, "0044 0000 02 5000");
    add(&s, 0x9000, 0, "00A4 000C 02 5000");
    add(&s, 0x9000, 0, "0044 0000 02 5001");
    add(&s, 0x9000, 0, "00E4 0000 02 5002");
    run(*state, &s);
}

/* The digest itself sees what it must: a changed byte of an EF, a counter, a file. */
static void test_digest_sensitivity(void **state)
{
    struct fx *fx = *state;
    struct fx *probe = calloc(1, sizeof *probe);
    assert_non_null(probe);
    assert_int_equal(fx_open(probe), 0);
    uint8_t *img = malloc(CARD_NVM_DEFAULT_SIZE);
    assert_non_null(img);
    struct digest a, b;
    nvm_sim_snapshot(&fx->nvm, img);
    digest_image(probe, img, &a);
    digest_image(probe, img, &b);
    assert_true(digest_equal(&a, &b)); /* repeatable */
    dg_free(&b);
    APDU(fx, "0020 0081 06 313233343536", 0x9000);
    APDU(fx, "00A4 080C 04 50005001", 0x9000);
    APDU(fx, "00D6 003F 01 01", 0x9000);
    nvm_sim_snapshot(&fx->nvm, img);
    digest_image(probe, img, &b);
    assert_false(digest_equal(&a, &b));
    dg_free(&b);
    APDU(fx, "00D6 003F 01 00", 0x9000);
    nvm_sim_snapshot(&fx->nvm, img);
    digest_image(probe, img, &b);
    assert_true(digest_equal(&a, &b));
    dg_free(&b);
    APDU(fx, "0020 0081 06 000000000000", 0x63C2);
    nvm_sim_snapshot(&fx->nvm, img);
    digest_image(probe, img, &b);
    assert_false(digest_equal(&a, &b));
    assert_true(is_try_intermediate(&b, &a, 0x81));
    assert_false(is_try_intermediate(&b, &a, 0x83));
    dg_free(&b);
    dg_free(&a);
    free(img);
    fx_close(probe);
    free(probe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_digest_sensitivity, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tear_personalization, fx_setup_blank, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tear_update_binary, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tear_create_delete_df, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tear_pin_management, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tear_put_data_terminate, fx_setup_perso, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tear_file_lifecycle, fx_setup_perso, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
