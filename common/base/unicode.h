/* UTF-8 and the byte-level alphabet: the small pieces of Unicode handling
 * the tokenizer needs, written to match what Hugging Face `tokenizers` (Rust)
 * does byte for byte.
 *
 * - utf8_* : decoding, validation, and Rust's String::from_utf8_lossy rule
 *   (one U+FFFD per "maximal subpart" of an ill-formed sequence), which the
 *   byte-level decoder uses.
 * - byte_level_* : the GPT-2 "bytes_to_unicode" table that byte-level BPE
 *   vocabularies are written in (byte 0x20 ' ' is shown as U+0120 'Ġ', ...).
 * - unicode_is_whitespace : Rust's char::is_whitespace (the White_Space
 *   property), used for added tokens with lstrip/rstrip. */
#ifndef HD_UNICODE_H
#define HD_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 sequence starting at s[0] (1..4), or 0 if
 * the bytes there are not one (bad lead byte, bad continuation, overlong,
 * surrogate, > U+10FFFF, or cut off by n).  *cp receives the code point. */
int utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Index of the first byte that is not part of well-formed UTF-8, or n when
 * all of s is valid. */
size_t utf8_first_invalid(const uint8_t *s, size_t n);

/* Writes cp as UTF-8 into out (room for 4 bytes); returns the length. */
int utf8_encode(uint32_t cp, uint8_t out[4]);

/* Appends to out (which must have room for 3 * n bytes) the lossy decoding
 * of s: valid sequences are copied, every maximal ill-formed subpart becomes
 * one U+FFFD, as Rust's String::from_utf8_lossy does.  Returns bytes written. */
size_t utf8_lossy_copy(const uint8_t *s, size_t n, uint8_t *out);

/* Length of the character that starts at s[0] if the bytes there are valid
 * UTF-8, else 1: a safe way to step through possibly invalid text. */
int utf8_char_len(const uint8_t *s, size_t n);

/* GPT-2 byte-level alphabet: byte -> code point and back.  A code point
 * outside the alphabet gives -1. */
uint32_t byte_level_char(uint8_t byte);
int byte_level_byte(uint32_t cp);

/* Rust char::is_whitespace. */
int unicode_is_whitespace(uint32_t cp);

#endif
