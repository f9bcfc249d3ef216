//! A reader that lets the checker name non-finite numbers: Python's `json.dump` writes `NaN`,
//! `Infinity` and `-Infinity`, which are not JSON. Outside strings, such bare words are passed
//! on quoted (`"NaN"`), so the parser keeps going and the checker can say "score is NaN".
//! Valid JSON passes through byte for byte.
use std::io::{self, Read};

pub struct BareWordsQuoted<R> {
    inner: R,
    input: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    out: Vec<u8>,
    out_pos: usize,
    in_string: bool,
    escaped: bool,
    in_word: bool,
    pending_minus: bool,
    eof: bool,
}

impl<R: Read> BareWordsQuoted<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            input: vec![0; 1 << 16],
            in_pos: 0,
            in_len: 0,
            out: Vec::with_capacity(1 << 16),
            out_pos: 0,
            in_string: false,
            escaped: false,
            in_word: false,
            pending_minus: false,
            eof: false,
        }
    }

    fn step(&mut self, b: u8) {
        if self.in_string {
            self.out.push(b);
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return;
        }
        if self.in_word {
            if b.is_ascii_alphabetic() {
                self.out.push(b);
                return;
            }
            self.out.push(b'"');
            self.in_word = false;
        }
        if self.pending_minus {
            self.pending_minus = false;
            if b == b'I' || b == b'N' {
                self.out.extend_from_slice(&[b'"', b'-', b]);
                self.in_word = true;
                return;
            }
            self.out.push(b'-');
        }
        match b {
            b'"' => {
                self.in_string = true;
                self.out.push(b);
            }
            b'-' => self.pending_minus = true,
            // JSON's literals are lowercase (true, false, null): N and I start no valid token.
            b'N' | b'I' => {
                self.out.extend_from_slice(&[b'"', b]);
                self.in_word = true;
            }
            _ => self.out.push(b),
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        while self.out.is_empty() && !self.eof {
            if self.in_pos == self.in_len {
                self.in_len = self.inner.read(&mut self.input)?;
                self.in_pos = 0;
                if self.in_len == 0 {
                    self.eof = true;
                    if self.pending_minus {
                        self.out.push(b'-');
                    }
                    if self.in_word {
                        self.out.push(b'"');
                    }
                    break;
                }
            }
            while self.in_pos < self.in_len {
                let b = self.input[self.in_pos];
                self.in_pos += 1;
                self.step(b);
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for BareWordsQuoted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_pos == self.out.len() {
            self.fill()?;
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> String {
        let mut out = String::new();
        BareWordsQuoted::new(s.as_bytes())
            .read_to_string(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn bare_non_finite_words_are_quoted_outside_strings_only() {
        assert_eq!(
            run(r#"{"s": NaN, "b": [-Infinity, Infinity, -1.5e-3], "t": "NaN \"x\" -I"}"#),
            r#"{"s": "NaN", "b": ["-Infinity", "Infinity", -1.5e-3], "t": "NaN \"x\" -I"}"#
        );
        assert_eq!(run("NaN"), "\"NaN\"");
        assert_eq!(run("[1,-"), "[1,-");
        let valid = r#"{"a": [true, false, null, -0.0, "\\"]}"#;
        assert_eq!(run(valid), valid);
    }
}
