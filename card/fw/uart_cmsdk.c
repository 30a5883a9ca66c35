/* Polled driver of the CMSDK APB UART (ARM Cortex-M System Design Kit), UART0 of the MPS2
 * boards at 0x40004000. Registers (32-bit): DATA 0x00 (write: transmit, read: received byte),
 * STATE 0x04 (bit 0 TX buffer full, bit 1 RX buffer full, bits 2/3 TX/RX overrun, write 1 to
 * clear), CTRL 0x08 (bit 0 TX enable, bit 1 RX enable, bits 2.. interrupt enables), INTSTATUS
 * 0x0C, BAUDDIV 0x10 (PCLK / baud, at least 16). One byte of buffer in each direction. */
#include "fw.h"

#define UART_DATA    0x00u
#define UART_STATE   0x04u
#define UART_CTRL    0x08u
#define UART_BAUDDIV 0x10u

#define STATE_TXFULL 0x1u
#define STATE_RXFULL 0x2u
#define STATE_TXOVR  0x4u
#define STATE_RXOVR  0x8u
#define CTRL_TXEN    0x1u
#define CTRL_RXEN    0x2u

static uintptr_t uart_base;
volatile uint32_t fw_uart_polls;

static inline volatile uint32_t *uart_reg(uint32_t off)
{
    return (volatile uint32_t *)(uart_base + off);
}

void fw_uart_init(uintptr_t base, uint32_t pclk_hz, uint32_t baud)
{
    uart_base = base;
    uint32_t div = baud != 0 ? pclk_hz / baud : 16u;
    if (div < 16u)
        div = 16u;
    *uart_reg(UART_CTRL) = 0;
    *uart_reg(UART_BAUDDIV) = div;
    *uart_reg(UART_STATE) = STATE_TXOVR | STATE_RXOVR; /* W1C */
    *uart_reg(UART_CTRL) = CTRL_TXEN | CTRL_RXEN;       /* polled: no interrupt enables */
}

uint8_t fw_uart_getc(void)
{
    while ((*uart_reg(UART_STATE) & STATE_RXFULL) == 0)
        fw_uart_polls++;
    return (uint8_t)*uart_reg(UART_DATA);
}

void fw_uart_putc(uint8_t c)
{
    while ((*uart_reg(UART_STATE) & STATE_TXFULL) != 0) {
    }
    *uart_reg(UART_DATA) = c;
}

void fw_uart_read(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = fw_uart_getc();
}

void fw_uart_write(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fw_uart_putc(buf[i]);
}
