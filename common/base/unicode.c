/* UTF-8 decoding, validation, lossy conversion and the GPT-2 byte-level
 * alphabet.  See unicode.h for why each exists. */
#include "base/unicode.h"

/* The ranges of the second byte that are allowed after each lead byte
 * (Unicode Table 3-7, "Well-Formed UTF-8 Byte Sequences"): E0 and F0 exclude
 * overlong forms, ED excludes surrogates, F4 stops at U+10FFFF. */
static int utf8_second_byte_ok(uint8_t lead, uint8_t b)
{
    switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return b >= 0x80 && b <= 0xBF;
    }
}

static int utf8_width(uint8_t lead)
{
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

/* How many bytes from s[0] form a valid prefix of a sequence (the "maximal
 * subpart"), at least 1, and whether the whole sequence is complete. */
static int utf8_valid_prefix(const uint8_t *s, size_t n, int *complete)
{
    int width = utf8_width(s[0]);
    *complete = 0;
    if (width == 0) return 1;
    if (width == 1) {
        *complete = 1;
        return 1;
    }
    if (n < 2 || !utf8_second_byte_ok(s[0], s[1])) return 1;
    for (int i = 2; i < width; i++)
        if ((size_t)i >= n || (s[i] & 0xC0) != 0x80) return i;
    *complete = 1;
    return width;
}

int utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    int complete;
    int len = utf8_valid_prefix(s, n, &complete);
    if (!complete) return 0;
    uint32_t c;
    switch (len) {
    case 1: c = s[0]; break;
    case 2: c = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F); break;
    case 3: c = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F); break;
    default:
        c = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
            ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
    *cp = c;
    return len;
}

size_t utf8_first_invalid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int len = utf8_decode(s + i, n - i, &cp);
        if (len == 0) return i;
        i += (size_t)len;
    }
    return n;
}

int utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

size_t utf8_lossy_copy(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        int complete;
        int len = utf8_valid_prefix(s + i, n - i, &complete);
        if (complete) {
            for (int k = 0; k < len; k++) out[o++] = s[i + k];
        } else {
            out[o++] = 0xEF; /* U+FFFD */
            out[o++] = 0xBF;
            out[o++] = 0xBD;
        }
        i += (size_t)len;
    }
    return o;
}

int utf8_char_len(const uint8_t *s, size_t n)
{
    if (s[0] < 0x80) return 1;
    uint32_t cp;
    int len = utf8_decode(s, n, &cp);
    return len > 0 ? len : 1;
}

/* GPT-2's bytes_to_unicode(): the printable bytes '!'..'~', 0xA1..0xAC and
 * 0xAE..0xFF stand for themselves; the other 68 bytes are given the code
 * points 256, 257, ... in increasing byte order, so that every byte has a
 * visible, non-space character. */
static int byte_is_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

/* The 68 others, in order: 0x00..0x20 (33), 0x7F..0xA0 (34), 0xAD. */
uint32_t byte_level_char(uint8_t byte)
{
    if (byte_is_printable(byte)) return byte;
    if (byte <= 0x20) return 256 + byte;
    if (byte <= 0xA0) return 256 + 33 + (byte - 0x7F);
    return 256 + 67; /* 0xAD */
}

int byte_level_byte(uint32_t cp)
{
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t k = cp - 256;
    if (k < 33) return (int)k;
    if (k < 67) return (int)(0x7F + (k - 33));
    return 0xAD;
}

int unicode_is_whitespace(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}
