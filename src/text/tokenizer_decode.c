/*
 * tokenizer_decode.c — token ids back to bytes: one token
 * (tok_token_bytes), a whole text (tok_decode, which takes away the space
 * the spm encoder put in front), and a stream that only ever hands out
 * whole, valid UTF-8 (tok_stream), for printing tokens as they are made.
 *
 * What each token stands for was worked out once at load (tokenizer.c,
 * render_piece), so all of this is copying.
 */
#include <limits.h>
#include <string.h>

#include "tokenizer_internal.h"

/* The bytes of id as tok_token_bytes defines them (pointer + length). */
static const char *piece_bytes(const tokenizer *t, int32_t id, bool special, size_t *len) {
    *len = 0;
    if (!tok_in_range(t, id)) return "";
    if (!special && (t->attrs[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) return "";
    *len = t->pieces[id].len;
    return t->bytes + t->pieces[id].off;
}

int tok_token_bytes(const tokenizer *t, int32_t id, bool special, char *buf, int cap) {
    size_t n;
    const char *s = piece_bytes(t, id, special, &n);
    if (cap > 0) memcpy(buf, s, RL_MIN(n, (size_t)cap));
    return (int)n;
}

size_t tok_max_token_bytes(const tokenizer *t) { return t->max_piece_len; }

/* ---------------------------------------------------------------- decoding */

int tok_decode(const tokenizer *t, const int32_t *ids, int n, bool special, char *buf, int cap) {
    size_t total = 0;
    bool strip_space = t->add_space_prefix;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *s = piece_bytes(t, ids[i], special, &len);
        if (len == 0) continue;
        if (strip_space && s[0] == ' ') s++, len--;
        strip_space = false;
        if (cap > 0 && total < (size_t)cap) memcpy(buf + total, s, RL_MIN(len, (size_t)cap - total));
        total += len;
        if (total > INT_MAX) return INT_MAX; /* cannot be represented; caller's cap is smaller anyway */
    }
    return (int)total;
}

/* ---------------------------------------------------------------- streaming */

/* Declared in tokenizer_internal.h: the byte-level BPE encoder uses it too. */
int tok_utf8_check(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    int need;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F; /* <= U+10FFFF */
    } else {
        return -1;
    }
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= n) return 0;
        uint8_t min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
        if (s[i] < min || s[i] > max) return -i;
    }
    return need;
}

size_t tok_stream_bound(const tokenizer *t) { return 3 * ((size_t)t->max_piece_len + 3); }

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

int tok_stream_push(const tokenizer *t, tok_stream *s, int32_t id, char *out, size_t cap) {
    size_t len;
    const char *piece = piece_bytes(t, id, true, &len);
    if (len == 0) return 0;
    /* Work on pending + piece without copying the piece: index through
     * both. The stream's state changes only at the end, so running out of
     * room can give up with nothing consumed. */
    int n_in = s->n_pending + (int)len, n_out = 0, i = 0;
    uint8_t window[4];
    while (i < n_in) {
        int w = 0;
        for (; w < 4 && i + w < n_in; w++)
            window[w] = (uint8_t)(i + w < s->n_pending ? s->pending[i + w] : piece[i + w - s->n_pending]);
        int r = tok_utf8_check(window, (size_t)w);
        if (r == 0) { /* unfinished: hold it for the next token */
            memcpy(s->pending, window, (size_t)w);
            s->n_pending = w;
            return n_out;
        }
        if ((size_t)n_out + (size_t)(r > 0 ? r : 3) > cap) return -1;
        if (r > 0) memcpy(out + n_out, window, (size_t)r), n_out += r, i += r;
        else memcpy(out + n_out, REPLACEMENT, 3), n_out += 3, i += -r;
    }
    s->n_pending = 0;
    return n_out;
}

int tok_stream_flush(tok_stream *s, char *out, size_t cap) {
    if (cap < 3) return -1;
    if (s->n_pending == 0) return 0;
    s->n_pending = 0;
    memcpy(out, REPLACEMENT, 3);
    return 3;
}
