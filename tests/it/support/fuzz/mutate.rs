//! Seeded mutation of seed inputs, as a fuzzer's mutator does: each mutant is a seed with one
//! to eight edits stacked: bit flips, random or "interesting" bytes and integers, ranges
//! deleted, inserted, repeated or moved, truncation, a splice with another seed, and tokens of
//! the format's dictionary (markers, chunk names, JSON tokens) written or inserted. The same
//! seed number gives the same mutants.
use crate::support::rng::XorShift;

/// Values that hit edge cases of lengths, sizes and counts (as libFuzzer's table).
const INTERESTING: [u64; 16] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    u64::MAX,
    16,
];

pub struct Mutator {
    rng: XorShift,
    dict: &'static [&'static [u8]],
    /// Mutants are cut to this many bytes.
    max_len: usize,
}

impl Mutator {
    pub fn new(seed: u64, dict: &'static [&'static [u8]], max_len: usize) -> Self {
        Mutator {
            rng: XorShift::new(seed),
            dict,
            max_len,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.rng.next() % n as u64) as usize
        }
    }

    /// A mutant of one of `seeds` (chosen at random).
    pub fn mutant(&mut self, seeds: &[Vec<u8>]) -> Vec<u8> {
        let mut out = seeds[self.below(seeds.len())].clone();
        // 1, 2, 4 or 8 edits, fewer more often.
        let edits = 1 << self.below(4).min(self.below(4));
        for _ in 0..edits {
            self.edit(&mut out, seeds);
        }
        out.truncate(self.max_len);
        out
    }

    fn edit(&mut self, b: &mut Vec<u8>, seeds: &[Vec<u8>]) {
        let len = b.len();
        let at = self.below(len);
        match self.below(13) {
            0 if len > 0 => b[at] ^= 1 << self.below(8),
            1 if len > 0 => b[at] = self.rng.next() as u8,
            2 if len > 0 => {
                // An interesting integer, 1, 2, 4 or 8 bytes, either endianness.
                let v = INTERESTING[self.below(INTERESTING.len())];
                let width = 1 << self.below(4);
                let bytes = if self.below(2) == 0 {
                    v.to_be_bytes()[8 - width..].to_vec()
                } else {
                    v.to_le_bytes()[..width].to_vec()
                };
                for (i, x) in bytes.into_iter().enumerate() {
                    if let Some(slot) = b.get_mut(at + i) {
                        *slot = x;
                    }
                }
            }
            3 if len > 0 => {
                let n = 1 + self.below((len - at).min(64));
                b.drain(at..at + n);
            }
            4 => {
                let n = 1 + self.below(16);
                let fill = self.rng.bytes(n);
                b.splice(at..at, fill);
            }
            5 if len > 0 => {
                // Repeat a range up to 16 times (e.g. a marker segment or a JSON element).
                let n = 1 + self.below((len - at).min(256));
                let piece = b[at..at + n].to_vec();
                let times = 1 + self.below(16);
                let mut rep = Vec::with_capacity(n * times);
                for _ in 0..times {
                    rep.extend_from_slice(&piece);
                }
                b.splice(at..at, rep);
            }
            6 if len > 0 => {
                // Copy a range over another place.
                let n = 1 + self.below((len - at).min(64));
                let piece = b[at..at + n].to_vec();
                let to = self.below(len);
                for (i, x) in piece.into_iter().enumerate() {
                    if let Some(slot) = b.get_mut(to + i) {
                        *slot = x;
                    }
                }
            }
            7 if len > 0 => b.truncate(at),
            8 => {
                // Splice: this input up to `at`, another seed from a random point on.
                let other = &seeds[self.below(seeds.len())];
                let from = self.below(other.len());
                b.truncate(at);
                b.extend_from_slice(&other[from..]);
            }
            9 | 10 if !self.dict.is_empty() => {
                let token = self.dict[self.below(self.dict.len())];
                if self.below(2) == 0 {
                    b.splice(at..at, token.iter().copied());
                } else {
                    let end = (at + token.len()).min(len);
                    b.splice(at..end, token.iter().copied());
                }
            }
            11 if len > 0 => {
                // A digit run replaced by an interesting decimal (JSON numbers, ids, sizes).
                let Some(start) = (at..len).find(|&i| b[i].is_ascii_digit()) else {
                    return;
                };
                let end = (start..len)
                    .find(|&i| !b[i].is_ascii_digit())
                    .unwrap_or(len);
                let v = INTERESTING[self.below(INTERESTING.len())];
                let text = match self.below(4) {
                    0 => format!("-{v}"),
                    1 => format!("{v}.5e{}", self.below(700)),
                    _ => v.to_string(),
                };
                b.splice(start..end, text.into_bytes());
            }
            _ if len > 0 => b[at] = b[at].wrapping_add(1 + self.below(3) as u8),
            _ => b.push(self.rng.next() as u8),
        }
    }
}

/// Tokens of image formats: JPEG markers, PNG chunk types and signatures.
pub const IMAGE_DICT: &[&[u8]] = &[
    b"\xff\xd8",
    b"\xff\xd9",
    b"\xff\xc0",
    b"\xff\xc1",
    b"\xff\xc2",
    b"\xff\xc4",
    b"\xff\xda",
    b"\xff\xdb",
    b"\xff\xdd",
    b"\xff\xe0",
    b"\xff\xe1",
    b"\xff\xfe",
    b"\xff\x00",
    b"\xff\xd0",
    b"\x89PNG\r\n\x1a\n",
    b"IHDR",
    b"IDAT",
    b"IEND",
    b"PLTE",
    b"tRNS",
    b"gAMA",
    b"Exif\x00\x00",
];

/// JSON tokens, including ones Python's json refuses and numbers at the edge of a double.
pub const JSON_DICT: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\",
    b"null",
    b"true",
    b"false",
    b"NaN",
    b"Infinity",
    b"-0",
    b"1e309",
    b"1e-400",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"0.1",
    b"\\u0000",
    b"\\ud800",
    b"\\udc00\\ud800",
    b"\xff",
    b"\xc3\x28",
    b"\xef\xbb\xbf",
    b"\"id\"",
    b"\"image_id\"",
    b"\"category_id\"",
    b"\"bbox\"",
    b"\"score\"",
    b"\"area\"",
    b"\"iscrowd\"",
    b"\"images\"",
    b"\"annotations\"",
    b"\"categories\"",
    b"\"file_name\"",
    b"\"3\"",
    b"\"30\"",
    b"\"300\"",
    b"[0, 0, 0, 0]",
    b"[1e308, 1e308, 1e308, 1e308]",
    b"[-1, -1, -5, -5]",
];

/// Zip signatures and fields that extraction checks.
pub const ZIP_DICT: &[&[u8]] = &[
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"PK\x06\x06",
    b"PK\x06\x07",
    b"PK\x07\x08",
    b"../",
    b"/",
    b"\\",
    b"C:",
    b"\x00",
    b"__MACOSX/",
    b"\xa1\x81",
    b"\xff\xa1",
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
];
