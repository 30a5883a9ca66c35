/* APDU tracing for -v, shared by icsim and every host transport so that redaction of secrets
 * (PINs, key shares) is decided in exactly one place. */
#ifndef TRACE_H
#define TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* True when the data field of this command APDU carries a secret that a trace must not show:
 * VERIFY (20), CHANGE REFERENCE DATA (24), RESET RETRY COUNTER (2C) in any interindustry
 * class, and the proprietary (CLA 8x/9x) instructions listed in trace.c. False for anything
 * shorter than CLA INS. */
bool trace_is_secret_command(const uint8_t *capdu, size_t len);

/* True when the response data to this command APDU is secret (PSO DECIPHER's shared secret). */
bool trace_is_secret_response(const uint8_t *capdu, size_t len);

/* Prints one line to f: dir, a space, then the bytes in hex. A command (dir starting with '>')
 * is printed as is; with redact_data its data field becomes "[N bytes redacted]" (header, Lc
 * and Le stay visible; when the APDU cannot be parsed everything after the header is
 * redacted). A response (any other dir) is printed as data then SW1 SW2 and the status word's
 * meaning, e.g. "< 90 00 (OK)"; with redact_data its data field is redacted.
 * Does nothing when f is NULL. */
void trace_apdu(FILE *f, const char *dir, const uint8_t *buf, size_t len, bool redact_data);

#endif
