/* icdup: the duplication and data-protection CLI. A thin front end over host/ libraries.
 * Exit status: 0 success, 1 failure (transport, card refusal where it matters), 2 usage.
 *
 * This file: main, the command table and the main usage; the helpers are in ../cli.c. The
 * commands: cmd_raw.c (apdu, status), cmd_keys.c (init, keys), cmd_clone.c (clone),
 * cmd_files.c (encrypt, decrypt, recover). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "secrets.h"
#include "transport.h"

const char *const cli_prog = "icdup";

static void usage_main(FILE *f)
{
    fputs("usage: icdup [-v] COMMAND [options]\n"
          "\n"
          "Commands:\n"
          "  apdu    --card URI HEX...   send raw command APDUs, print each response\n"
          "  status  --card URI [--json] show a card's identity, life cycle, PINs, files, NVM,\n"
          "                              key group and key state\n"
          "  readers                     list PC/SC readers and NFC devices with their URIs\n"
          "  init    --card URI ...      personalize a blank card with the default profile\n"
          "  clone   --src URI --dst URI copy the source card's key into the destination\n"
          "  keys    SUB --card URI ...  key group and key commands one at a time: kcv, share,\n"
          "                              generate, pubkey, binding, export, import, lock;\n"
          "                              wrap (approval station: an external key, no card)\n"
          "  encrypt --to URI|KEY.pem IN OUT\n"
          "                              encrypt a file for cards' or partners' public keys\n"
          "  decrypt --card URI IN OUT   decrypt a file with the card (one PSO DECIPHER)\n"
          "  recover --backup URI --new URI FILE...\n"
          "                              re-protect files for a new card, opened by the backup\n"
          "\n"
          "Options:\n"
          "  -v, --verbose  trace every APDU and status word to stderr (secrets redacted)\n"
          "  -h, --help     this help; 'icdup COMMAND --help' for one command\n"
          "\n",
          f);
    cli_print_uri_help(f);
    fputs("\nExit status: 0 success, 1 failure, 2 usage error.\n", f);
}

/* ---- main ------------------------------------------------------------------------------- */

static const struct cli_command commands[] = {
    { "apdu", cli_cmd_apdu },
    { "status", cli_cmd_status },
    { "readers", cli_cmd_readers },
    { "init", cli_cmd_init },
    { "clone", cli_cmd_clone },
    { "keys", cli_cmd_keys },
    { "encrypt", cli_cmd_encrypt },
    { "decrypt", cli_cmd_decrypt },
    { "recover", cli_cmd_recover },
};

int main(int argc, char **argv)
{
    return cli_main(argc, argv, commands, sizeof commands / sizeof commands[0], usage_main);
}
