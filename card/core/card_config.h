/* Build-time configuration of the card core. Every value has a default; a port may override
 * any of them with -D. Bad combinations stop the build here rather than misbehave at run time. */
#ifndef CARD_CONFIG_H
#define CARD_CONFIG_H

/* Largest command data field (Nc) the card accepts; longer extended APDUs get 6700. */
#ifndef CARD_MAX_NC
#define CARD_MAX_NC 1024
#endif

/* Largest response data field the card produces in one APDU. An answer longer than Ne is
 * continued with 61xx/GET RESPONSE; READ BINARY returns at most this many bytes per command
 * (the terminal reads on at the next offset). */
#ifndef CARD_MAX_NE
#define CARD_MAX_NE 1024
#endif

/* Bytes of NVM the simulator creates by default. Ports pass their real size in hal_nvm.size. */
#ifndef CARD_NVM_DEFAULT_SIZE
#define CARD_NVM_DEFAULT_SIZE 65536u
#endif

/* Journal capacity: the largest transaction (sum of record headers and data) in bytes. */
#ifndef CARD_NVM_JOURNAL_SIZE
#define CARD_NVM_JOURNAL_SIZE 1536u
#endif

/* File system: number of file-table slots (MF included) and DF nesting depth. */
#ifndef CARD_FS_MAX_FILES
#define CARD_FS_MAX_FILES 48
#endif
#ifndef CARD_FS_MAX_DEPTH
#define CARD_FS_MAX_DEPTH 4
#endif

/* PINs: retry limits and length bounds. */
#ifndef CARD_PIN_MAX_LEN
#define CARD_PIN_MAX_LEN 16
#endif
#ifndef CARD_PIN_MIN_LEN
#define CARD_PIN_MIN_LEN 4
#endif
#ifndef CARD_PIN_TRIES
#define CARD_PIN_TRIES 3
#endif
#ifndef CARD_PUK_TRIES
#define CARD_PUK_TRIES 5
#endif
#ifndef CARD_ADMIN_TRIES
#define CARD_ADMIN_TRIES 3
#endif

#if CARD_MAX_NC < 256 || CARD_MAX_NE < 256
#error "CARD_MAX_NC and CARD_MAX_NE must hold at least a short APDU (256 bytes)"
#endif
#if CARD_MAX_NC > 65535 || CARD_MAX_NE > 65536
#error "CARD_MAX_NC/NE exceed extended length"
#endif
#if CARD_NVM_JOURNAL_SIZE < CARD_MAX_NC + 64
#error "the journal must hold an UPDATE BINARY of CARD_MAX_NC bytes plus record overhead"
#endif
#if CARD_FS_MAX_FILES < 2 || CARD_FS_MAX_FILES > 254
#error "CARD_FS_MAX_FILES must be in 2..254 (slot indexes are one byte, 0xFF means none)"
#endif
#if CARD_PIN_MIN_LEN < 1 || CARD_PIN_MIN_LEN > CARD_PIN_MAX_LEN || CARD_PIN_MAX_LEN > 64
#error "PIN length bounds are inconsistent"
#endif
#if CARD_PIN_TRIES < 1 || CARD_PIN_TRIES > 15 || CARD_PUK_TRIES > 15 || CARD_ADMIN_TRIES > 15
#error "retry counters must fit the 63Cx nibble (1..15)"
#endif

#endif
