#include "card_info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ins.h"
#include "sw.h"

int card_info_read(struct transport *t, struct card_info *ci, char *err, size_t errlen)
{
    static const struct {
        uint16_t tag;
        const char *label;
    } items[CARD_INFO_ITEMS] = {
        { DO_CARD_SERIAL, "serial" },  { DO_CARD_TYPE, "card type" },
        { DO_CARD_LCS, "life cycle" }, { DO_PIN_STATUS, "PIN status" },
        { DO_FILE_LIST, "file list" }, { DO_NVM_INFO, "NVM info" },
        { DO_KEY_GROUP, "key group" }, { DO_KEY_STATE, "key state" },
    };
    memset(ci, 0, sizeof *ci);
    uint8_t *resp = malloc(TRANSPORT_RAPDU_MAX);
    if (resp == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char terr[512];
    int rc = 0;
    if (transport_reset(t, ci->atr, sizeof ci->atr, &ci->atr_len, terr, sizeof terr) != 0) {
        snprintf(err, errlen, "reset: %s", terr);
        rc = -1;
        goto out;
    }

    static const uint8_t select_mf[] = { 0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00 };
    size_t rlen = 0;
    if (transport_exchange(t, select_mf, sizeof select_mf, resp, TRANSPORT_RAPDU_MAX, &rlen,
                           terr, sizeof terr) != 0) {
        snprintf(err, errlen, "SELECT MF: %s", terr);
        rc = -1;
        goto out;
    }
    ci->select_sw = transport_sw(resp, rlen);
    if (ci->select_sw != SW_OK)
        ci->refusals++;

    for (size_t i = 0; i < CARD_INFO_ITEMS; i++) {
        struct card_info_item *it = &ci->it[i];
        it->tag = items[i].tag;
        it->label = items[i].label;
        const uint8_t get_data[5] = { 0x00, INS_GET_DATA, (uint8_t)(it->tag >> 8),
                                      (uint8_t)it->tag, 0x00 };
        if (transport_exchange(t, get_data, sizeof get_data, resp, TRANSPORT_RAPDU_MAX, &rlen,
                               terr, sizeof terr) != 0) {
            snprintf(err, errlen, "GET DATA %04X (%s): %s", it->tag, it->label, terr);
            rc = -1;
            goto out;
        }
        it->sw = transport_sw(resp, rlen);
        it->len = rlen - 2;
        it->data = malloc(it->len + 1);
        if (it->data == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            goto out;
        }
        memcpy(it->data, resp, it->len);
        /* Unset card type, and no key profile (DF10/DF11), are states, not failures. */
        bool optional = it->tag == DO_CARD_TYPE || it->tag == DO_KEY_GROUP ||
                        it->tag == DO_KEY_STATE;
        if (it->sw != SW_OK && !(optional && it->sw == SW_REF_DATA_NOT_FOUND))
            ci->refusals++;
    }
out:
    free(resp);
    if (rc != 0)
        card_info_free(ci);
    return rc;
}

void card_info_free(struct card_info *ci)
{
    if (ci == NULL)
        return;
    for (size_t i = 0; i < CARD_INFO_ITEMS; i++) {
        free(ci->it[i].data);
        ci->it[i].data = NULL;
        ci->it[i].len = 0;
    }
}

const char *card_info_lcs_name(uint8_t lcs)
{
    if (lcs == 0x00)
        return "no information";
    if (lcs == LCS_CREATION)
        return "creation";
    if (lcs == LCS_INIT)
        return "initialisation";
    if ((lcs & 0xFCu) == 0x0Cu)
        return "terminated";
    if ((lcs & 0xFDu) == 0x05u)
        return "operational";
    if ((lcs & 0xFDu) == 0x04u)
        return "deactivated";
    return "proprietary";
}

const char *card_info_ac_name(uint8_t ac, char *buf, size_t cap)
{
    switch (ac) {
    case AC_ALWAYS:
        return "always";
    case AC_PIN:
        return "PIN";
    case AC_ADMIN:
        return "admin";
    case AC_NEVER:
        return "never";
    default:
        snprintf(buf, cap, "0x%02X", ac);
        return buf;
    }
}

void card_info_pin_decode(const uint8_t rec[CARD_INFO_PIN_REC_LEN], struct card_info_pin *p)
{
    p->ref = rec[0];
    p->set = rec[1] != 0;
    p->tries_left = rec[2];
    p->max_tries = rec[3];
    p->blocked = p->set && p->tries_left == 0;
}

void card_info_file_decode(const uint8_t rec[CARD_INFO_FILE_REC_LEN], struct card_info_file *f)
{
    f->fid = (uint16_t)((rec[0] << 8) | rec[1]);
    f->parent = (uint16_t)((rec[2] << 8) | rec[3]);
    f->fdb = rec[4];
    f->lcs = rec[5];
    f->size = (uint16_t)((rec[6] << 8) | rec[7]);
    f->ac_read = rec[8];
    f->ac_update = rec[9];
    f->ac_delete = rec[10];
    f->sfi = rec[11];
}

const char *card_info_file_type(const struct card_info_file *f)
{
    switch (f->fdb) {
    case FDB_DF:
        return f->fid == FID_MF ? "MF" : "DF";
    case FDB_WORKING_EF:
        return "working EF";
    case FDB_INTERNAL_EF:
        return "internal EF";
    default:
        return "file";
    }
}

long card_info_file_parent(const uint8_t *recs, size_t n, size_t i)
{
    struct card_info_file f;
    card_info_file_decode(recs + i * CARD_INFO_FILE_REC_LEN, &f);
    if (f.fid == FID_MF)
        return -1;
    for (size_t j = 0; j < n; j++) {
        struct card_info_file p;
        card_info_file_decode(recs + j * CARD_INFO_FILE_REC_LEN, &p);
        if (j != i && p.fdb == FDB_DF && p.fid == f.parent)
            return (long)j;
    }
    return -1;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int card_info_nvm_decode(const uint8_t *data, size_t len, struct card_info_nvm *nvm)
{
    if (data == NULL || len != 12)
        return -1;
    nvm->total = be32(data);
    nvm->used = be32(data + 4);
    nvm->free = be32(data + 8);
    return 0;
}
