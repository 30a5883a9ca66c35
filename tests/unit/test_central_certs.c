/* The central's certificates and CRL (host/central/certs.c, crl.c), checked with mbedtls'
 * own parser and verifier: a CA, server and branch certificates with the right constraints,
 * key usages and names; random distinct serials; keys of mode 0600; nothing overwritten; a CRL
 * that mbedtls_x509_crl_parse accepts, whose signature mbedtls trusts, and that makes
 * mbedtls_x509_crt_verify reject exactly the revoked certificates; refusals that leave the CRL
 * as it was; two revocations at once both kept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/oid.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "certs.h"
#include "crl.h"
#include "readfile.h"

struct ctx {
    char dir[64];
    char path[16][160];
    unsigned npath;
};

static const char *p_(struct ctx *c, const char *name)
{
    assert_true(c->npath < 16);
    char tmp[sizeof c->path[0]];
    snprintf(tmp, sizeof tmp, "%s/%s", c->dir, name);
    char *p = c->path[c->npath++];
    memcpy(p, tmp, sizeof tmp);
    return p;
}
#define P(name) p_(c, name)

static void make(const struct central_cert_req *r)
{
    char err[512] = "";
    int rc = central_cert_make(r, NULL, err, sizeof err);
    if (rc != 0)
        fail_msg("central_cert_make: %s", err);
}

static void make_ca(struct ctx *c, const char *crt, const char *key, const char *name)
{
    struct central_cert_req r = { .kind = CENTRAL_CERT_CA, .name = name, .out_cert = crt,
                                  .out_key = key };
    (void)c;
    make(&r);
}

static void make_leaf(enum central_cert_kind kind, const char *ca_crt, const char *ca_key,
                      const char *name, const char *crt, const char *key)
{
    struct central_cert_req r = { .kind = kind, .name = name, .hosts = "127.0.0.1,localhost",
                                  .ca_cert = ca_crt, .ca_key = ca_key, .out_cert = crt,
                                  .out_key = key };
    make(&r);
}

static void load_crt(const char *path, mbedtls_x509_crt *crt)
{
    mbedtls_x509_crt_init(crt);
    assert_int_equal(mbedtls_x509_crt_parse_file(crt, path), 0);
}

static void load_crl(const char *path, mbedtls_x509_crl *crl)
{
    mbedtls_x509_crl_init(crl);
    assert_int_equal(mbedtls_x509_crl_parse_file(crl, path), 0);
}

static uint32_t verify(mbedtls_x509_crt *crt, mbedtls_x509_crt *ca, mbedtls_x509_crl *crl,
                       const char *cn)
{
    uint32_t flags = 0;
    mbedtls_x509_crt_verify(crt, ca, crl, cn, &flags, NULL, NULL);
    return flags;
}

static void crl_revoke(const char *ca_crt, const char *ca_key, const char *cert, const char *crl,
                   int want)
{
    struct central_crl_req r = { .ca_cert = ca_crt, .ca_key = ca_key, .crl = crl,
                                 .revoke = cert };
    char err[512] = "";
    int rc = central_crl_update(&r, NULL, err, sizeof err);
    if (rc != want)
        fail_msg("central_crl_update: %d, expected %d: %s", rc, want, err);
}

static char *slurp(const char *path)
{
    uint8_t *b;
    size_t n;
    char err[256];
    if (readfile_load(path, "file", 1 << 20, false, &b, &n, err, sizeof err) != 0)
        return NULL;
    char *s = strdup((char *)b);
    readfile_free(b, n);
    return s;
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    snprintf(c->dir, sizeof c->dir, "/tmp/icdup-certs-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
    if (system(cmd) != 0)
        return -1;
    free(c);
    return 0;
}

/* ---- certificates ---------------------------------------------------------------------- */

static void test_profiles(void **state)
{
    struct ctx *c = *state;
    const char *ca = P("ca.crt"), *cak = P("ca.key"), *srv = P("srv.crt"), *srvk = P("srv.key");
    const char *br = P("north.crt"), *brk = P("north.key");
    make_ca(c, ca, cak, "test CA");
    make_leaf(CENTRAL_CERT_SERVER, ca, cak, "central", srv, srvk);
    make_leaf(CENTRAL_CERT_BRANCH, ca, cak, "north", br, brk);
    struct stat st;
    assert_int_equal(stat(cak, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(brk, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    mbedtls_x509_crt cac, srvc, brc;
    load_crt(ca, &cac);
    load_crt(srv, &srvc);
    load_crt(br, &brc);
    assert_int_equal(cac.ca_istrue, 1);
    assert_int_equal(mbedtls_x509_crt_check_key_usage(&cac, MBEDTLS_X509_KU_KEY_CERT_SIGN), 0);
    assert_int_equal(mbedtls_x509_crt_check_key_usage(&cac, MBEDTLS_X509_KU_CRL_SIGN), 0);
    assert_int_equal(srvc.ca_istrue, 0);
    assert_int_equal(brc.ca_istrue, 0);
    assert_int_equal(verify(&cac, &cac, NULL, NULL), 0);
    assert_int_equal(verify(&brc, &cac, NULL, NULL), 0);
    /* the server's names: SAN dNSName localhost (mbedtls 2.28 matches dNSName only) */
    assert_int_equal(verify(&srvc, &cac, NULL, "localhost"), 0);
    assert_true(verify(&srvc, &cac, NULL, "example.org") & MBEDTLS_X509_BADCERT_CN_MISMATCH);
    /* purposes: a branch certificate is no server certificate and the other way round */
    static const char server_auth[] = MBEDTLS_OID_SERVER_AUTH;
    static const char client_auth[] = MBEDTLS_OID_CLIENT_AUTH;
    assert_int_equal(mbedtls_x509_crt_check_extended_key_usage(
                         &srvc, server_auth, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)), 0);
    assert_int_not_equal(mbedtls_x509_crt_check_extended_key_usage(
                             &srvc, client_auth, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)), 0);
    assert_int_equal(mbedtls_x509_crt_check_extended_key_usage(
                         &brc, client_auth, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)), 0);
    assert_int_not_equal(mbedtls_x509_crt_check_extended_key_usage(
                             &brc, server_auth, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)), 0);
    char dn[128];
    assert_true(mbedtls_x509_dn_gets(dn, sizeof dn, &brc.subject) > 0);
    assert_string_equal(dn, "CN=north");
    assert_true(mbedtls_x509_dn_gets(dn, sizeof dn, &brc.issuer) > 0);
    assert_string_equal(dn, "CN=test CA");
    /* a branch certificate cannot sign: verifying against it as a CA fails */
    assert_int_not_equal(verify(&srvc, &brc, NULL, NULL), 0);
    mbedtls_x509_crt_free(&cac);
    mbedtls_x509_crt_free(&srvc);
    mbedtls_x509_crt_free(&brc);
}

static void test_serials_distinct(void **state)
{
    struct ctx *c = *state;
    const char *ca = P("ca.crt"), *cak = P("ca.key");
    make_ca(c, ca, cak, "test CA");
    enum { N = 12 };
    char serials[N][CENTRAL_SERIAL_HEX_MAX + 1];
    for (int i = 0; i < N; i++) {
        char crt[160], key[160], name[16];
        snprintf(crt, sizeof crt, "%s/b%d.crt", c->dir, i);
        snprintf(key, sizeof key, "%s/b%d.key", c->dir, i);
        snprintf(name, sizeof name, "b%d", i);
        struct central_cert_req r = { .kind = CENTRAL_CERT_BRANCH, .name = name,
                                      .ca_cert = ca, .ca_key = cak, .out_cert = crt,
                                      .out_key = key };
        struct central_cert_info info;
        char err[256];
        assert_int_equal(central_cert_make(&r, &info, err, sizeof err), 0);
        assert_int_equal(strlen(info.serial), 32);
        snprintf(serials[i], sizeof serials[i], "%s", info.serial);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(serials[i], serials[j]);
    }
}

static void test_refusals(void **state)
{
    struct ctx *c = *state;
    const char *ca = P("ca.crt"), *cak = P("ca.key"), *br = P("b.crt"), *brk = P("b.key");
    make_ca(c, ca, cak, "test CA");
    make_leaf(CENTRAL_CERT_BRANCH, ca, cak, "b", br, brk);
    char *before = slurp(brk);
    assert_non_null(before);
    char err[512];
    /* an existing key or certificate is never overwritten, and nothing else is written */
    const char *fresh = P("fresh.crt");
    struct central_cert_req r = { .kind = CENTRAL_CERT_BRANCH, .name = "b", .ca_cert = ca,
                                  .ca_key = cak, .out_cert = fresh, .out_key = brk };
    assert_int_equal(central_cert_make(&r, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "exists already"));
    assert_int_equal(access(fresh, F_OK), -1);
    char *after = slurp(brk);
    assert_string_equal(before, after);
    free(after);
    /* names: [A-Za-z0-9._-], 1..64 */
    static const char *const bad[] = { "", "a b", "a/b", "ä", "a,CN=x",
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(central_name_valid(bad[i]));
        r.name = bad[i];
        r.out_key = P("k.key");
        assert_int_equal(central_cert_make(&r, NULL, err, sizeof err), -1);
        assert_int_equal(access(r.out_key, F_OK), -1);
        c->npath--;
    }
    assert_true(central_name_valid("Branch-01.north_2"));
    /* hosts */
    assert_int_equal(central_hosts_check("127.0.0.1,::1,localhost,a.example.org", err,
                                         sizeof err), 0);
    assert_int_equal(central_hosts_check("", err, sizeof err), -1);
    assert_int_equal(central_hosts_check("a,,b", err, sizeof err), -1);
    assert_int_equal(central_hosts_check("-a.org", err, sizeof err), -1);
    assert_int_equal(central_hosts_check("a_b.org", err, sizeof err), -1);
    assert_int_equal(central_hosts_check("a,b,c,d,e,f,g,h,i", err, sizeof err), -1);
    /* a loose CA key: refused, its contents never in the message */
    assert_int_equal(chmod(cak, 0644), 0);
    r.name = "c";
    r.out_key = P("c.key");
    assert_int_equal(central_cert_make(&r, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "chmod 600"));
    assert_null(strstr(err, "PRIVATE"));
    assert_int_equal(chmod(cak, 0600), 0);
    free(before);
}

/* ---- CRL ------------------------------------------------------------------------------- */

static void test_crl_revokes(void **state)
{
    struct ctx *c = *state;
    const char *ca = P("ca.crt"), *cak = P("ca.key"), *a = P("a.crt"), *ak = P("a.key");
    const char *b = P("b.crt"), *bk = P("b.key"), *crl = P("crl.pem");
    make_ca(c, ca, cak, "test CA");
    make_leaf(CENTRAL_CERT_BRANCH, ca, cak, "a", a, ak);
    make_leaf(CENTRAL_CERT_BRANCH, ca, cak, "b", b, bk);
    crl_revoke(ca, cak, a, crl, 0);

    mbedtls_x509_crt cac, ac, bc;
    mbedtls_x509_crl l;
    load_crt(ca, &cac);
    load_crt(a, &ac);
    load_crt(b, &bc);
    load_crl(crl, &l);
    assert_int_equal(l.version, 2);
    assert_true(mbedtls_x509_crt_is_revoked(&ac, &l));
    assert_false(mbedtls_x509_crt_is_revoked(&bc, &l));
    /* mbedtls checks the CRL's signature and dates here: b passes, so they are good */
    assert_int_equal(verify(&bc, &cac, &l, NULL), 0);
    assert_int_equal(verify(&ac, &cac, &l, NULL), MBEDTLS_X509_BADCERT_REVOKED);
    char err[256];
    assert_int_equal(central_crl_check(&l, &cac, err, sizeof err), 0);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    assert_int_equal(l.this_update.year, tm.tm_year + 1900);
    assert_true(l.next_update.year == tm.tm_year + 1901 || l.next_update.year == tm.tm_year + 1902);
    mbedtls_x509_crl_free(&l);

    /* the second revocation keeps the first */
    crl_revoke(ca, cak, b, crl, 0);
    load_crl(crl, &l);
    assert_int_equal(verify(&ac, &cac, &l, NULL), MBEDTLS_X509_BADCERT_REVOKED);
    assert_int_equal(verify(&bc, &cac, &l, NULL), MBEDTLS_X509_BADCERT_REVOKED);
    mbedtls_x509_crl_free(&l);

    /* a CRL signed by another CA is not trusted for this one */
    const char *ca2 = P("ca2.crt"), *ca2k = P("ca2.key"), *x = P("x.crt"), *xk = P("x.key");
    const char *crl2 = P("crl2.pem");
    make_ca(c, ca2, ca2k, "test CA");    /* even with the same name */
    make_leaf(CENTRAL_CERT_BRANCH, ca2, ca2k, "x", x, xk);
    crl_revoke(ca2, ca2k, x, crl2, 0);
    load_crl(crl2, &l);
    assert_int_equal(central_crl_check(&l, &cac, err, sizeof err), -1);
    assert_true(verify(&bc, &cac, &l, NULL) & MBEDTLS_X509_BADCRL_NOT_TRUSTED);
    mbedtls_x509_crl_free(&l);
    /* ... and this CA refuses to extend it, or to revoke another CA's certificate */
    char *before = slurp(crl), *before2 = slurp(crl2);
    crl_revoke(ca, cak, b, crl2, -1);
    crl_revoke(ca, cak, x, crl, -1);
    char *after = slurp(crl), *after2 = slurp(crl2);
    assert_string_equal(before, after);
    assert_string_equal(before2, after2);
    free(before);
    free(after);
    free(before2);
    free(after2);
    mbedtls_x509_crt_free(&cac);
    mbedtls_x509_crt_free(&ac);
    mbedtls_x509_crt_free(&bc);
}

struct revoker {
    const char *ca, *cak, *cert, *crl;
    int rc;
};

static void *revoke_thread(void *arg)
{
    struct revoker *r = arg;
    struct central_crl_req q = { .ca_cert = r->ca, .ca_key = r->cak, .crl = r->crl,
                                 .revoke = r->cert };
    char err[256];
    r->rc = central_crl_update(&q, NULL, err, sizeof err);
    return NULL;
}

static void test_crl_concurrent(void **state)
{
    struct ctx *c = *state;
    const char *ca = P("ca.crt"), *cak = P("ca.key"), *crl = P("crl.pem");
    make_ca(c, ca, cak, "test CA");
    enum { N = 4 };
    char crt[N][160], key[N][160];
    struct revoker r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        snprintf(crt[i], sizeof crt[i], "%s/%s.crt", c->dir, name);
        snprintf(key[i], sizeof key[i], "%s/%s.key", c->dir, name);
        make_leaf(CENTRAL_CERT_BRANCH, ca, cak, name, crt[i], key[i]);
        r[i] = (struct revoker){ ca, cak, crt[i], crl, -2 };
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, revoke_thread, &r[i]), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].rc, 0);
    }
    mbedtls_x509_crl l;
    load_crl(crl, &l);
    for (int i = 0; i < N; i++) {
        mbedtls_x509_crt x;
        load_crt(crt[i], &x);
        assert_true(mbedtls_x509_crt_is_revoked(&x, &l));
        mbedtls_x509_crt_free(&x);
    }
    mbedtls_x509_crl_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serials_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_revokes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
