/* Opening encrypted data files (filecrypt.h) with a card: the card does the key agreement
 * (exactly one PSO DECIPHER per file, user PIN verified), the host derives the KWK, unwraps the
 * content key and decrypts the chunks. */
#ifndef FILECARD_H
#define FILECARD_H

#include <stdint.h>

#include "card_ops.h"
#include "filecrypt.h"
#include "secrets.h"

/* Finds the entry of h for card_pub (the card's public key, read once with
 * cardop_read_pubkey), checks its ephemeral point, sends one PSO DECIPHER of it and unwraps
 * the CEK. Returns FILECRYPT_OK with cek written;
 *   FILECRYPT_E_NOT_RECIPIENT  the card's key is not a recipient (no APDU sent)
 *   FILECRYPT_E_FORMAT         the entry's ephemeral point is invalid (no APDU sent)
 *   FILECRYPT_E_CARD           the card refused (c->err in the message: PIN not verified ...)
 *   FILECRYPT_E_KEY            the CEK does not unwrap (header or entry modified). */
int filecard_open(struct cardop *c, const uint8_t card_pub[65], const struct filecrypt_header *h,
                  uint8_t cek[32], char *err, size_t errlen);

/* Decrypts in_path to out_path with the card ("-": standard input / output). With pin (may be
 * NULL: already verified), the user PIN is verified once the header shows the card is a
 * recipient, so a wrong card costs no PIN try and gets no APDU but nothing. A file target is
 * written to a temporary file in its directory ("OUT.tmp-XXXXXX", mode 0600), synced
 * and renamed over out_path only when every chunk authenticated; on any failure it is removed,
 * so no partial plaintext remains. With "-" as output, the plaintext of the chunks before a bad
 * chunk has already been written to standard output when the error is reported.
 * *plain_len (may be NULL) gets the plaintext length. */
int filecard_decrypt_path(struct cardop *c, const uint8_t card_pub[65],
                          const struct secret_pin *pin, const char *in_path,
                          const char *out_path, uint64_t *plain_len, char *err, size_t errlen);

#endif
