//! `odinw::splits::rng` against CPython's `random.Random` (tests/oracles/rng.py): the raw
//! MT19937 stream, `getrandbits` of many widths, `random()`, `_randbelow` and `shuffle`, for
//! seeds from 0 to thousands of digits (which exercise every branch of `init_by_array`).
use crate::support;

use odinw::splits::rng::{PyRandom, Seed};
use serde_json::Value;

const BITS: [u32; 11] = [0, 1, 5, 31, 32, 33, 63, 64, 65, 100, 1000];
const BELOW: [u64; 13] = [
    1,
    2,
    3,
    7,
    10,
    1000,
    1 << 31,
    (1 << 32) - 1,
    1 << 32,
    (1 << 32) + 1,
    (1 << 40) + 3,
    1 << 63,
    u64::MAX,
];
const LENGTHS: [usize; 6] = [0, 1, 2, 10, 1000, 70000];

fn seeds() -> Vec<String> {
    let mut s: Vec<String> = [
        "0",
        "1",
        "3",
        "30",
        "300",
        "12345",
        "4294967295",
        "4294967296",
        "4294967301",
        "18446744073709551615",
        "18446744073709551616",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // 100 digits (11 key words) and 7000 digits (more key words than MT19937 has state words).
    s.push("31415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679".into());
    s.push("1234567890".repeat(700));
    s
}

/// Python's `hex()` of an integer given as 32-bit words, least significant first.
fn py_hex(words: &[u32]) -> String {
    let top = words.iter().rposition(|w| *w != 0);
    match top {
        None => "0x0".into(),
        Some(t) => {
            let mut s = format!("0x{:x}", words[t]);
            for w in words[..t].iter().rev() {
                s.push_str(&format!("{w:08x}"));
            }
            s
        }
    }
}

#[test]
fn streams_and_shuffles_match_cpython() {
    let Some(python) = support::python_with(&["random"]) else {
        return;
    };
    let lengths = LENGTHS.map(|n| n.to_string()).join(",");
    for text in seeds() {
        let label = &text[..text.len().min(24)];
        let expected: Value = serde_json::from_str(&support::run_oracle(
            &python,
            "rng.py",
            &[&text, "--lengths", &lengths],
        ))
        .unwrap();
        let seed: Seed = text.parse().unwrap();

        let mut r = PyRandom::new(&seed);
        let u32s: Vec<u64> = (0..1500).map(|_| u64::from(r.next_u32())).collect();
        let want: Vec<u64> = serde_json::from_value(expected["u32"].clone()).unwrap();
        assert_eq!(u32s, want, "getrandbits(32) stream, seed {label}");

        let mut r = PyRandom::new(&seed);
        for k in BITS {
            let got = py_hex(&r.getrandbits_words(k));
            assert_eq!(
                got,
                expected["bits"][k.to_string()],
                "getrandbits({k}), seed {label}"
            );
        }

        let mut r = PyRandom::new(&seed);
        for (i, want) in expected["random53"].as_array().unwrap().iter().enumerate() {
            let got = (r.random() * 9_007_199_254_740_992.0) as u64;
            assert_eq!(got, want.as_u64().unwrap(), "random() #{i}, seed {label}");
        }

        let mut r = PyRandom::new(&seed);
        for n in BELOW {
            assert_eq!(
                r.randbelow(n),
                expected["randbelow"][n.to_string()].as_u64().unwrap(),
                "_randbelow({n}), seed {label}"
            );
        }

        for n in LENGTHS {
            let mut x: Vec<u64> = (0..n as u64).collect();
            PyRandom::new(&seed).shuffle(&mut x);
            let want: Vec<u64> =
                serde_json::from_value(expected["shuffle"][n.to_string()].clone()).unwrap();
            assert_eq!(x, want, "shuffle(range({n})), seed {label}");
        }
    }
}

#[test]
fn seed_text_round_trips_through_python_int() {
    // The decimal text odinw puts in file names is Python's str(int(text)).
    for (text, canonical) in [("007", "7"), ("0", "0"), ("000", "0")] {
        assert_eq!(text.parse::<Seed>().unwrap().decimal(), canonical);
    }
}
