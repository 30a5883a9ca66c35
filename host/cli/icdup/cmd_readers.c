/* icdup readers: the PC/SC readers pcscd knows (card present, ATR) and the NFC devices libnfc
 * finds, each with the reader URI that names it. */
#include <stdio.h>
#include <string.h>

#include <nfc/nfc.h>

#include "cli.h"
#include "hex.h"
#include "transport.h"

#define NFC_DEVICES_MAX 16

static void usage_readers(FILE *f)
{
    fputs("usage: icdup readers\n"
          "\n"
          "Lists the PC/SC readers pcscd knows, with card presence and ATR, and the NFC\n"
          "devices libnfc finds, each with the reader URI to give as --card.\n"
          "\n"
          "Exit status: 0 success (also when there is no reader), 2 usage error.\n",
          f);
}

struct list_state {
    unsigned index;
};

static void print_pcsc(void *ctx, const char *reader, bool present, const uint8_t *atr,
                       size_t atr_len)
{
    struct list_state *st = ctx;
    printf("  pcsc:%u  %s\n", st->index++, reader);
    if (present) {
        printf("          card present, ATR ");
        hex_fprint(stdout, atr, atr_len);
        printf("\n");
    } else {
        printf("          no card\n");
    }
}

int cli_cmd_readers(int argc, char **argv)
{
    bool help = false;
    const struct cli_opt opts[] = { { NULL, false, NULL, NULL } };
    char *pos[16];
    int npos = 0;
    if (argc > 16)
        return cli_usage_error("readers", "takes no argument");
    int rc = cli_parse_opts("readers", argc, argv, opts, &help, &npos, pos);
    if (rc != 0)
        return rc;
    if (help) {
        usage_readers(stdout);
        return 0;
    }
    if (npos > 0)
        return cli_usage_error("readers", "takes no argument");

    char err[512];
    struct list_state st = { 0 };
    printf("PC/SC readers (pcsc:INDEX, or pcsc:NAME):\n");
    if (transport_pcsc_list(print_pcsc, &st, err, sizeof err) != 0)
        printf("  none: %s\n", err);
    else if (st.index == 0)
        printf("  none\n");

    printf("NFC devices (nfc:CONNSTRING):\n");
    nfc_context *ctx = NULL;
    nfc_init(&ctx);
    size_t n = 0;
    nfc_connstring found[NFC_DEVICES_MAX];
    if (ctx != NULL)
        n = nfc_list_devices(ctx, found, NFC_DEVICES_MAX);
    for (size_t i = 0; i < n; i++)
        printf("  nfc:%s\n", found[i]);
    if (n == 0)
        printf("  none found (serial PN532 boards are not scanned: name them, e.g. "
               "nfc:pn532_uart:/dev/ttyUSB0)\n");
    if (ctx != NULL)
        nfc_exit(ctx);
    return cli_flush_stdout(0);
}
