//! CPython's `random.Random`, bit for bit: the MT19937 generator, seeded from a non-negative
//! integer of any size as `Random(int)` seeds it (`init_by_array` over the integer's 32-bit
//! little-endian words), with `getrandbits`, `_randbelow`, `shuffle` and `random`.
//!
//! This is what GLIP's `COCODataset` calls (`random.Random(seed).shuffle(ids)`), so the few-shot
//! sampler needs exactly this stream; the trainer shuffles and augments from it too. A utility
//! (`crate::util`), re-exported as `splits::rng` where the sampler is documented.
use std::fmt;
use std::str::FromStr;

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A seed as Python's `random.Random(int)` takes it: a non-negative integer of any size, kept
/// both as its canonical decimal text (for file names) and as the MT key (32-bit words, least
/// significant first; `[0]` for zero).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Seed {
    decimal: String,
    key: Vec<u32>,
}

impl Seed {
    /// The seed's decimal digits, without leading zeros (`"0"` for zero).
    pub fn decimal(&self) -> &str {
        &self.decimal
    }

    /// The `init_by_array` key: the integer's 32-bit words, least significant first.
    pub fn key(&self) -> &[u32] {
        &self.key
    }

    /// GLIP treats seed 0 as "do not shuffle".
    pub fn is_zero(&self) -> bool {
        self.key == [0]
    }

    /// The seed as a `u64`, when it fits.
    pub fn as_u64(&self) -> Option<u64> {
        match self.key.as_slice() {
            [lo] => Some(u64::from(*lo)),
            [lo, hi] => Some(u64::from(*lo) | (u64::from(*hi) << 32)),
            _ => None,
        }
    }
}

impl From<u64> for Seed {
    fn from(value: u64) -> Self {
        let mut key = vec![value as u32];
        if value >> 32 != 0 {
            key.push((value >> 32) as u32);
        }
        Seed {
            decimal: value.to_string(),
            key,
        }
    }
}

/// Why a seed's text was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid seed {text:?}: a seed is a non-negative decimal integer (any size), e.g. 3 or 300"
)]
pub struct SeedError {
    text: String,
}

impl FromStr for Seed {
    type Err = SeedError;

    /// Parses decimal digits (any number of them); signs, spaces and other characters are errors.
    fn from_str(text: &str) -> Result<Self, SeedError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SeedError { text: text.into() });
        }
        // words = words * 10 + digit, in base 2^32, least significant word first.
        let mut key: Vec<u32> = vec![0];
        for digit in text.bytes().map(|b| u64::from(b - b'0')) {
            let mut carry = digit;
            for word in key.iter_mut() {
                let v = u64::from(*word) * 10 + carry;
                *word = v as u32;
                carry = v >> 32;
            }
            if carry != 0 {
                key.push(carry as u32);
            }
        }
        let decimal = text.trim_start_matches('0');
        let decimal = if decimal.is_empty() { "0" } else { decimal };
        Ok(Seed {
            decimal: decimal.to_string(),
            key,
        })
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decimal)
    }
}

/// CPython's `random.Random` state: MT19937 with its position in the current block.
#[derive(Clone)]
pub struct PyRandom {
    state: Box<[u32; N]>,
    index: usize,
}

impl PyRandom {
    /// `random.Random(seed)`.
    pub fn new(seed: &Seed) -> Self {
        let mut rng = PyRandom {
            state: Box::new([0; N]),
            index: N,
        };
        rng.init_by_array(seed.key());
        rng
    }

    fn init_genrand(&mut self, s: u32) {
        let mt = &mut self.state;
        mt[0] = s;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        assert!(!key.is_empty(), "an MT key has at least one word");
        self.init_genrand(19_650_218);
        let mt = &mut self.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
    }

    fn twist(&mut self) {
        let mt = &mut self.state;
        let mag = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for k in 0..N {
            let y = (mt[k] & UPPER_MASK) | (mt[(k + 1) % N] & LOWER_MASK);
            mt[k] = mt[(k + M) % N] ^ (y >> 1) ^ mag(y);
        }
        self.index = 0;
    }

    /// The next 32-bit output (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `getrandbits(k)` as 32-bit words, least significant first (`ceil(k/32)` words; empty for
    /// `k == 0`). As in CPython, each word takes one output, and the top word keeps the high
    /// `k mod 32` bits of its output.
    pub fn getrandbits_words(&mut self, k: u32) -> Vec<u32> {
        let mut left = k;
        let mut words = Vec::with_capacity(k.div_ceil(32) as usize);
        while left > 0 {
            let r = self.next_u32();
            words.push(if left < 32 { r >> (32 - left) } else { r });
            left = left.saturating_sub(32);
        }
        words
    }

    /// `getrandbits(k)` for `k <= 64`.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(k <= 64, "getrandbits({k}) does not fit a u64");
        self.getrandbits_words(k)
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, w)| acc | (u64::from(*w) << (32 * i)))
    }

    /// `_randbelow(n)`: a uniform integer in `[0, n)` by rejection over `getrandbits(bit_length(n))`.
    /// Returns 0 for `n == 0` without drawing (CPython ≤ 3.9 did; later versions never call it so).
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `shuffle(x)`: Fisher–Yates from the end, `j = _randbelow(i + 1)`.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            x.swap(i, j);
        }
    }

    /// `random()`: a float in `[0, 1)` with 53 random bits.
    pub fn random(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) * (1.0 / 9_007_199_254_740_992.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(s: &str) -> Seed {
        s.parse().unwrap()
    }

    #[test]
    fn first_outputs_match_the_protocol_vectors() {
        let cases: [(u64, [u32; 5]); 3] = [
            (
                3,
                [1022050301, 2545373330, 2337446730, 560161641, 1588945316],
            ),
            (
                30,
                [2315337690, 3470664770, 1242089248, 2624239376, 129007523],
            ),
            (
                300,
                [2567083842, 1530895727, 1480517558, 4155335167, 6420524],
            ),
        ];
        for (s, expected) in cases {
            let mut rng = PyRandom::new(&Seed::from(s));
            let got: Vec<u32> = (0..5).map(|_| rng.getrandbits(32) as u32).collect();
            assert_eq!(got, expected, "seed {s}");
        }
    }

    #[test]
    fn shuffles_match_the_protocol_vectors() {
        let ten: [(u64, [u32; 10]); 3] = [
            (3, [1, 5, 6, 0, 9, 4, 7, 2, 8, 3]),
            (30, [3, 6, 7, 2, 1, 5, 9, 0, 4, 8]),
            (300, [1, 6, 4, 7, 2, 3, 0, 8, 5, 9]),
        ];
        for (s, expected) in ten {
            let mut x: Vec<u32> = (0..10).collect();
            PyRandom::new(&Seed::from(s)).shuffle(&mut x);
            assert_eq!(x, expected, "seed {s}");
        }
        let twenty: [(u64, [u32; 20]); 3] = [
            (
                3,
                [
                    9, 4, 7, 6, 16, 17, 3, 13, 1, 2, 14, 11, 20, 10, 15, 12, 5, 18, 19, 8,
                ],
            ),
            (
                30,
                [
                    12, 6, 4, 13, 16, 19, 5, 15, 8, 2, 3, 11, 14, 17, 20, 9, 7, 1, 10, 18,
                ],
            ),
            (
                300,
                [
                    13, 17, 5, 8, 15, 14, 4, 2, 11, 3, 18, 10, 7, 9, 6, 16, 1, 19, 12, 20,
                ],
            ),
        ];
        for (s, expected) in twenty {
            let mut x: Vec<u32> = (1..=20).collect();
            PyRandom::new(&Seed::from(s)).shuffle(&mut x);
            assert_eq!(x, expected, "seed {s}");
        }
    }

    #[test]
    fn seeds_parse_into_little_endian_words() {
        assert_eq!(seed("0").key(), &[0]);
        assert_eq!(seed("000").decimal(), "0");
        assert!(seed("0").is_zero());
        assert_eq!(seed("0300").decimal(), "300");
        assert_eq!(seed("4294967295").key(), &[u32::MAX]);
        assert_eq!(seed("4294967296").key(), &[0, 1]);
        assert_eq!(seed("4294967301").key(), &[5, 1]);
        assert_eq!(seed("18446744073709551615").key(), &[u32::MAX, u32::MAX]);
        assert_eq!(seed("18446744073709551616").key(), &[0, 0, 1]);
        assert_eq!(seed("18446744073709551616").as_u64(), None);
        assert_eq!(Seed::from(4294967301), seed("4294967301"));
        assert_eq!(Seed::from(0), seed("0"));
        for bad in ["", "-1", "+3", " 3", "3.0", "1e3", "x"] {
            assert!(bad.parse::<Seed>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn getrandbits_keeps_the_high_bits_of_each_output() {
        let s = Seed::from(30);
        let mut a = PyRandom::new(&s);
        let mut b = PyRandom::new(&s);
        assert_eq!(a.getrandbits(5), u64::from(b.next_u32() >> 27));
        let lo = u64::from(b.next_u32());
        let hi = u64::from(b.next_u32() >> 31);
        assert_eq!(a.getrandbits(33), lo | (hi << 32));
        assert!(a.getrandbits_words(0).is_empty());
    }
}
