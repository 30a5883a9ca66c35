/* serial:/dev/ttyX[,baud=N] — the card firmware on a real board (or QEMU's -serial pty) over a
 * serial line, with the same length-prefixed framing as icsim and the qemu: transport
 * (vpcd_frame.c; docs/firmware.md). The tty is opened raw (cfmakeraw: no echo, no line
 * editing, no CR/LF translation), 8N1, no flow control, CLOCAL (modem lines ignored), 115200
 * baud unless baud= says otherwise; input left over from before the open (a boot banner) is
 * discarded. Waits are poll() with a timeout; every error names the device. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "transport.h"
#include "vpcd_frame.h"

#define SERIAL_TIMEOUT_MS 30000     /* a command (key generation on a slow MCU included) */
#define SERIAL_OPEN_TIMEOUT_MS 5000 /* power on and ATR: the firmware should answer at once */
#define SERIAL_DEFAULT_BAUD 115200L

struct transport_serial {
    struct transport base; /* first: the generic layer sees only this */
    struct vpcd_link link; /* its name is "serial device PATH" */
};

static const struct {
    long baud;
    speed_t speed;
} serial_speeds[] = {
    { 9600, B9600 },     { 19200, B19200 },   { 38400, B38400 },   { 57600, B57600 },
    { 115200, B115200 }, { 230400, B230400 }, { 460800, B460800 }, { 921600, B921600 },
};

static int serial_speed(long baud, speed_t *out)
{
    for (size_t i = 0; i < sizeof serial_speeds / sizeof serial_speeds[0]; i++) {
        if (serial_speeds[i].baud == baud) {
            *out = serial_speeds[i].speed;
            return 0;
        }
    }
    return -1;
}

static void transport_serial_close(struct transport *t)
{
    struct transport_serial *ts = (struct transport_serial *)t;
    if (ts->link.fd >= 0)
        close(ts->link.fd);
    free(ts);
}

/* Puts the tty in raw 8N1 mode at speed, without flow control, and drops pending input. */
static int serial_setup(int fd, speed_t speed)
{
    struct termios tio;
    if (tcgetattr(fd, &tio) != 0)
        return -1;
    cfmakeraw(&tio);
    tio.c_cflag &= ~(tcflag_t)(CSTOPB | PARENB | CSIZE);
    tio.c_cflag |= CS8 | CLOCAL | CREAD;
#ifdef CRTSCTS
    tio.c_cflag &= ~(tcflag_t)CRTSCTS;
#endif
    tio.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (cfsetispeed(&tio, speed) != 0 || cfsetospeed(&tio, speed) != 0)
        return -1;
    if (tcsetattr(fd, TCSANOW, &tio) != 0)
        return -1;
    (void)tcflush(fd, TCIOFLUSH);
    return 0;
}

static int transport_serial_open(const char *rest, struct transport **out, char *err,
                                 size_t errlen)
{
    if (rest == NULL || rest[0] == '\0' || rest[0] == ',') {
        snprintf(err, errlen, "reader URI serial:%.200s is not of the form "
                 "serial:/dev/ttyX[,baud=N]", rest != NULL ? rest : "");
        return TRANSPORT_E_URI;
    }
    const char *comma = strchr(rest, ',');
    size_t plen = comma != NULL ? (size_t)(comma - rest) : strlen(rest);
    long baud = SERIAL_DEFAULT_BAUD;
    speed_t speed = B115200;
    if (comma != NULL) {
        char *end = NULL;
        errno = 0;
        if (strncmp(comma + 1, "baud=", 5) == 0)
            baud = strtol(comma + 6, &end, 10);
        if (end == NULL || end == comma + 6 || *end != '\0' || errno != 0) {
            snprintf(err, errlen, "reader URI serial:%.200s: unknown option \"%.40s\" (only "
                     "baud=N)", rest, comma + 1);
            return TRANSPORT_E_URI;
        }
        if (serial_speed(baud, &speed) != 0) {
            snprintf(err, errlen, "reader URI serial:%.200s: baud rate %ld not supported "
                     "(9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)", rest, baud);
            return TRANSPORT_E_URI;
        }
    }
    struct transport_serial *ts = calloc(1, sizeof *ts);
    if (ts == NULL) {
        snprintf(err, errlen, "out of memory");
        return TRANSPORT_E_OPEN;
    }
    char path[4096];
    if (plen >= sizeof path) {
        snprintf(err, errlen, "serial device path too long");
        free(ts);
        return TRANSPORT_E_URI;
    }
    memcpy(path, rest, plen);
    path[plen] = '\0';
    snprintf(ts->link.name, sizeof ts->link.name, "serial device %s", path);
    ts->link.socket = false;
    ts->link.timeout_ms = SERIAL_OPEN_TIMEOUT_MS;

    /* O_NONBLOCK: the open must not wait for a carrier; cleared once CLOCAL is set. */
    ts->link.fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (ts->link.fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open serial device %s: %s%s", path, strerror(e),
                 e == EACCES ? " (is your user in the dialout group?)" : "");
        free(ts);
        return TRANSPORT_E_OPEN;
    }
    if (!isatty(ts->link.fd)) {
        snprintf(err, errlen, "%s is not a serial device (a tty)", path);
        transport_serial_close(&ts->base);
        return TRANSPORT_E_OPEN;
    }
    int flags = fcntl(ts->link.fd, F_GETFL);
    if (serial_setup(ts->link.fd, speed) != 0 || flags < 0 ||
        fcntl(ts->link.fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        snprintf(err, errlen, "cannot set up serial device %s (raw, %ld 8N1): %s", path, baud,
                 strerror(errno));
        transport_serial_close(&ts->base);
        return TRANSPORT_E_OPEN;
    }
    int rc = vpcd_power_on(&ts->link, err, errlen);
    if (rc == TRANSPORT_E_TIMEOUT) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (is the icdup card firmware running on it, at %ld "
                 "baud?)", baud);
    }
    if (rc != 0) {
        transport_serial_close(&ts->base);
        return rc == TRANSPORT_E_TIMEOUT ? TRANSPORT_E_OPEN : rc;
    }
    ts->link.timeout_ms = SERIAL_TIMEOUT_MS;
    *out = &ts->base;
    return 0;
}

static int transport_serial_transmit(struct transport *t, const uint8_t *capdu, size_t len,
                                     uint8_t *rapdu, size_t cap, size_t *rlen, char *err,
                                     size_t errlen)
{
    return vpcd_transmit(&((struct transport_serial *)t)->link, capdu, len, rapdu, cap, rlen,
                         err, errlen);
}

static int transport_serial_reset(struct transport *t, uint8_t *atr, size_t cap,
                                  size_t *atr_len, char *err, size_t errlen)
{
    return vpcd_reset(&((struct transport_serial *)t)->link, atr, cap, atr_len, err, errlen);
}

static int transport_serial_vendor(struct transport *t, uint8_t code, uint8_t *out, size_t cap,
                                 size_t *len, char *err, size_t errlen)
{
    return vpcd_vendor(&((struct transport_serial *)t)->link, code, out, cap, len, err, errlen);
}

const struct transport_ops transport_serial_ops = {
    .scheme = "serial",
    .synopsis = "serial:TTY[,baud=N]",
    .description = "the card firmware on a board's serial line (115200 8N1 by default)",
    .open = transport_serial_open,
    .transmit = transport_serial_transmit,
    .reset = transport_serial_reset,
    .close = transport_serial_close,
    .vendor = transport_serial_vendor,
};
