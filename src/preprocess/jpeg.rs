//! A baseline JPEG decoder that reproduces libjpeg-turbo's output byte for byte (what Pillow
//! uses): the accurate integer IDCT (`jpeg_idct_islow`), "fancy" triangle-filter chroma
//! upsampling with its edge and rounding rules, and its fixed-point YCbCr → RGB tables.
//!
//! It handles sequential Huffman JPEGs (SOF0/SOF1, 8-bit) with 1 component (grayscale,
//! replicated to RGB as Pillow's `convert('RGB')` does) or 3 components (YCbCr, or RGB when an
//! Adobe marker says so), integral sampling factors, restart markers and non-interleaved
//! scans. Anything else (progressive, arithmetic coding, 12-bit, CMYK) is reported as
//! [`JpegError::Unsupported`] so the caller can fall back to another decoder.
use super::image::RgbImage;
use std::fmt;

#[derive(Debug)]
pub enum JpegError {
    /// A valid JPEG this decoder does not handle.
    Unsupported(String),
    /// Not a valid JPEG.
    Invalid(String),
}

impl fmt::Display for JpegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JpegError::Unsupported(m) => write!(f, "unsupported JPEG: {m}"),
            JpegError::Invalid(m) => write!(f, "invalid JPEG: {m}"),
        }
    }
}

impl std::error::Error for JpegError {}

type Result<T> = std::result::Result<T, JpegError>;

fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(JpegError::Invalid(msg.into()))
}

fn unsupported<T>(msg: impl Into<String>) -> Result<T> {
    Err(JpegError::Unsupported(msg.into()))
}

/// Zig-zag position → natural (row-major) position in an 8×8 block.
const NATURAL_ORDER: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// The largest image decoded (width × height), against damaged headers.
const MAX_PIXELS: usize = 100_000_000;

/// Bits looked up at once when decoding a Huffman symbol.
const LOOKAHEAD: u32 = 9;

/// A canonical Huffman table.
#[derive(Clone)]
struct Huffman {
    /// For each `LOOKAHEAD`-bit prefix: (code length, symbol), length 0 when longer.
    fast: Vec<(u8, u8)>,
    /// Largest code of each length 1..=16 (-1 when none), and where its symbols start.
    max_code: [i32; 18],
    val_offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], symbols: Vec<u8>) -> Result<Self> {
        let mut max_code = [-1i32; 18];
        let mut val_offset = [0i32; 17];
        let mut fast = vec![(0u8, 0u8); 1 << LOOKAHEAD];
        let mut code = 0i32;
        let mut k = 0usize;
        for len in 1..=16usize {
            let n = counts[len - 1] as usize;
            val_offset[len] = k as i32 - code;
            for _ in 0..n {
                if len as u32 <= LOOKAHEAD {
                    let shift = LOOKAHEAD - len as u32;
                    let base = (code as usize) << shift;
                    for e in &mut fast[base..base + (1 << shift)] {
                        *e = (len as u8, symbols[k]);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                max_code[len] = code - 1;
            }
            if code > 1 << len {
                return invalid("bad Huffman table");
            }
            code <<= 1;
        }
        max_code[17] = i32::MAX;
        Ok(Huffman {
            fast,
            max_code,
            val_offset,
            symbols,
        })
    }
}

/// Reads the entropy-coded bits of a scan, unstuffing `FF 00`; at a marker (or the end of the
/// data) it supplies zero bits, as libjpeg does.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    bits: u32,
    at_marker: bool,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader {
            data,
            pos,
            acc: 0,
            bits: 0,
            at_marker: false,
        }
    }

    #[inline]
    fn fill(&mut self) {
        while self.bits <= 56 {
            let mut byte = 0u8;
            if !self.at_marker {
                match self.data.get(self.pos) {
                    Some(&0xFF) => match self.data.get(self.pos + 1) {
                        Some(0) => {
                            byte = 0xFF;
                            self.pos += 2;
                        }
                        _ => self.at_marker = true,
                    },
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                    None => self.at_marker = true,
                }
            }
            self.acc |= (byte as u64) << (56 - self.bits);
            self.bits += 8;
        }
    }

    #[inline]
    fn peek(&mut self, n: u32) -> u32 {
        if self.bits < n {
            self.fill();
        }
        (self.acc >> (64 - n)) as u32
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.bits -= n;
    }

    #[inline]
    fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let v = self.peek(n);
        self.consume(n);
        v
    }

    fn decode(&mut self, h: &Huffman) -> Result<u8> {
        let (len, sym) = h.fast[self.peek(LOOKAHEAD) as usize];
        if len > 0 {
            self.consume(len as u32);
            return Ok(sym);
        }
        let word = self.peek(16) as i32;
        for len in LOOKAHEAD as usize + 1..=16 {
            let code = word >> (16 - len);
            if code <= h.max_code[len] {
                self.consume(len as u32);
                let idx = (code + h.val_offset[len]) as usize;
                return h
                    .symbols
                    .get(idx)
                    .copied()
                    .ok_or_else(|| JpegError::Invalid("bad Huffman code".into()));
            }
        }
        invalid("bad Huffman code")
    }

    /// JPEG's `receive` + `extend`: an `s`-bit magnitude category value.
    #[inline]
    fn receive_extend(&mut self, s: u32) -> i32 {
        if s == 0 {
            return 0;
        }
        let v = self.bits(s) as i32;
        if v < 1 << (s - 1) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// Drops the buffered bits, moves to the next marker and steps over it if it is an RSTn.
    fn restart(&mut self) {
        self.acc = 0;
        self.bits = 0;
        self.at_marker = false;
        while self.pos + 1 < self.data.len()
            && !(self.data[self.pos] == 0xFF && self.data[self.pos + 1] != 0)
        {
            self.pos += 1;
        }
        if let Some(m) = self.data.get(self.pos + 1) {
            if self.data[self.pos] == 0xFF && (0xD0..=0xD7).contains(m) {
                self.pos += 2;
            }
        }
    }
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
    /// Size of the coefficient grid, in blocks (padded to whole MCUs).
    blocks_w: usize,
    blocks_h: usize,
    coefs: Vec<i16>,
    dc_table: usize,
    ac_table: usize,
}

struct Frame {
    width: usize,
    height: usize,
    components: Vec<Component>,
    h_max: usize,
    v_max: usize,
}

/// Decodes a JPEG file's bytes to RGB.
pub fn decode(data: &[u8]) -> Result<RgbImage> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return invalid("no SOI marker");
    }
    let mut pos = 2;
    let mut quant = [[0u16; 64]; 4];
    let mut dc_tables: [Option<Huffman>; 4] = Default::default();
    let mut ac_tables: [Option<Huffman>; 4] = Default::default();
    let mut frame: Option<Frame> = None;
    let mut restart_interval = 0usize;
    let (mut jfif, mut adobe_transform) = (false, None::<u8>);
    loop {
        // Find the next marker, skipping fill bytes.
        while pos < data.len() && data[pos] != 0xFF {
            pos += 1;
        }
        while pos < data.len() && data[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = data.get(pos) else {
            break; // no EOI: decode what we have, as libjpeg does with a warning
        };
        pos += 1;
        if marker == 0xD9 {
            break;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 || marker == 0x00 {
            continue;
        }
        let len = match data.get(pos..pos + 2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]) as usize,
            None => return invalid("truncated marker segment"),
        };
        if len < 2 || pos + len > data.len() {
            return invalid(format!("marker {marker:#04X} runs past the end"));
        }
        let seg = &data[pos + 2..pos + len];
        match marker {
            0xDB => read_dqt(seg, &mut quant)?,
            0xC4 => read_dht(seg, &mut dc_tables, &mut ac_tables)?,
            0xDD => {
                if seg.len() < 2 {
                    return invalid("short DRI");
                }
                restart_interval = u16::from_be_bytes([seg[0], seg[1]]) as usize;
            }
            0xE0 => jfif |= seg.starts_with(b"JFIF\0"),
            0xEE if seg.len() >= 12 && seg.starts_with(b"Adobe") => {
                adobe_transform = Some(seg[11]);
            }
            0xC0 | 0xC1 => frame = Some(read_sof(seg)?),
            0xC2 => return unsupported("progressive"),
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return unsupported(format!("SOF marker {marker:#04X}"))
            }
            0xDA => {
                let Some(f) = frame.as_mut() else {
                    return invalid("scan before frame header");
                };
                pos = decode_scan(
                    data,
                    pos + len,
                    seg,
                    f,
                    &dc_tables,
                    &ac_tables,
                    restart_interval,
                )?;
                continue;
            }
            _ => {}
        }
        pos += len;
    }
    let frame = frame.ok_or_else(|| JpegError::Invalid("no frame header".into()))?;
    let rgb_ids = frame.components.iter().map(|c| c.id).eq([b'R', b'G', b'B']);
    let is_rgb = match adobe_transform {
        Some(t) => t == 0,
        None => !jfif && rgb_ids,
    };
    to_rgb(&frame, &quant, is_rgb)
}

fn read_dqt(mut seg: &[u8], quant: &mut [[u16; 64]; 4]) -> Result<()> {
    while !seg.is_empty() {
        let (precision, id) = (seg[0] >> 4, (seg[0] & 15) as usize);
        if id > 3 {
            return invalid("bad DQT table id");
        }
        let n = if precision == 0 { 64 } else { 128 };
        if seg.len() < 1 + n {
            return invalid("short DQT");
        }
        for k in 0..64 {
            quant[id][NATURAL_ORDER[k]] = if precision == 0 {
                seg[1 + k] as u16
            } else {
                u16::from_be_bytes([seg[1 + 2 * k], seg[2 + 2 * k]])
            };
        }
        seg = &seg[1 + n..];
    }
    Ok(())
}

fn read_dht(
    mut seg: &[u8],
    dc: &mut [Option<Huffman>; 4],
    ac: &mut [Option<Huffman>; 4],
) -> Result<()> {
    while !seg.is_empty() {
        if seg.len() < 17 {
            return invalid("short DHT");
        }
        let (class, id) = (seg[0] >> 4, (seg[0] & 15) as usize);
        if id > 3 || class > 1 {
            return invalid("bad DHT table id");
        }
        let counts: [u8; 16] = seg[1..17].try_into().unwrap();
        let n: usize = counts.iter().map(|&c| c as usize).sum();
        if seg.len() < 17 + n || n > 256 {
            return invalid("short DHT");
        }
        let table = Huffman::new(&counts, seg[17..17 + n].to_vec())?;
        if class == 0 {
            dc[id] = Some(table);
        } else {
            ac[id] = Some(table);
        }
        seg = &seg[17 + n..];
    }
    Ok(())
}

fn read_sof(seg: &[u8]) -> Result<Frame> {
    if seg.len() < 6 {
        return invalid("short SOF");
    }
    if seg[0] != 8 {
        return unsupported(format!("{}-bit samples", seg[0]));
    }
    let height = u16::from_be_bytes([seg[1], seg[2]]) as usize;
    let width = u16::from_be_bytes([seg[3], seg[4]]) as usize;
    let n = seg[5] as usize;
    if width == 0 || height == 0 {
        return unsupported("image height or width of 0 (DNL)");
    }
    if width * height > MAX_PIXELS {
        return invalid(format!(
            "{width}x{height} is larger than {MAX_PIXELS} pixels"
        ));
    }
    if n != 1 && n != 3 {
        return unsupported(format!("{n} components"));
    }
    if seg.len() < 6 + 3 * n {
        return invalid("short SOF");
    }
    let mut components = Vec::with_capacity(n);
    for i in 0..n {
        let c = &seg[6 + 3 * i..9 + 3 * i];
        let (h, v) = ((c[1] >> 4) as usize, (c[1] & 15) as usize);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return invalid("bad component sampling or table");
        }
        components.push(Component {
            id: c[0],
            h,
            v,
            quant: c[2] as usize,
            blocks_w: 0,
            blocks_h: 0,
            coefs: Vec::new(),
            dc_table: 0,
            ac_table: 0,
        });
    }
    if n == 1 {
        // A single-component frame has one block per MCU whatever its factors say.
        components[0].h = 1;
        components[0].v = 1;
    }
    let h_max = components.iter().map(|c| c.h).max().unwrap();
    let v_max = components.iter().map(|c| c.v).max().unwrap();
    for c in &components {
        if h_max % c.h != 0 || v_max % c.v != 0 {
            return unsupported("non-integral sampling factors");
        }
    }
    let mcus_x = width.div_ceil(8 * h_max);
    let mcus_y = height.div_ceil(8 * v_max);
    for c in &mut components {
        c.blocks_w = mcus_x * c.h;
        c.blocks_h = mcus_y * c.v;
        c.coefs = vec![0; c.blocks_w * c.blocks_h * 64];
    }
    Ok(Frame {
        width,
        height,
        components,
        h_max,
        v_max,
    })
}

/// Decodes one scan whose header is `seg` and whose data starts at `start`; returns where the
/// next marker is.
fn decode_scan(
    data: &[u8],
    start: usize,
    seg: &[u8],
    frame: &mut Frame,
    dc_tables: &[Option<Huffman>; 4],
    ac_tables: &[Option<Huffman>; 4],
    restart_interval: usize,
) -> Result<usize> {
    let ns = *seg
        .first()
        .ok_or_else(|| JpegError::Invalid("short SOS".into()))? as usize;
    if ns == 0 || ns > 4 || seg.len() < 1 + 2 * ns + 3 {
        return invalid("bad SOS");
    }
    let mut members = Vec::with_capacity(ns);
    for i in 0..ns {
        let (id, tables) = (seg[1 + 2 * i], seg[2 + 2 * i]);
        let ci = frame
            .components
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| JpegError::Invalid(format!("scan names unknown component {id}")))?;
        let c = &mut frame.components[ci];
        c.dc_table = (tables >> 4) as usize & 3;
        c.ac_table = (tables & 15) as usize & 3;
        if dc_tables[c.dc_table].is_none() || ac_tables[c.ac_table].is_none() {
            return invalid("scan uses an undefined Huffman table");
        }
        members.push(ci);
    }
    let (ss, se) = (seg[1 + 2 * ns], seg[2 + 2 * ns]);
    if ss != 0 || se != 63 || seg[3 + 2 * ns] != 0 {
        return unsupported("spectral selection or successive approximation");
    }
    let mut reader = BitReader::new(data, start);
    let mut pred = vec![0i32; frame.components.len()];
    // Units (MCUs) of the scan and, per unit, the blocks it holds.
    let units: Vec<Vec<(usize, usize, usize)>>;
    let (units_x, units_y);
    if ns == 1 {
        let ci = members[0];
        let c = &frame.components[ci];
        let w = (frame.width * c.h).div_ceil(frame.h_max);
        let h = (frame.height * c.v).div_ceil(frame.v_max);
        units_x = w.div_ceil(8);
        units_y = h.div_ceil(8);
        units = vec![vec![(ci, 0, 0)]];
    } else {
        units_x = frame.width.div_ceil(8 * frame.h_max);
        units_y = frame.height.div_ceil(8 * frame.v_max);
        let mut blocks = Vec::new();
        for &ci in &members {
            let c = &frame.components[ci];
            for v in 0..c.v {
                for h in 0..c.h {
                    blocks.push((ci, v, h));
                }
            }
        }
        units = vec![blocks];
    }
    let mut count = 0usize;
    for uy in 0..units_y {
        for ux in 0..units_x {
            if restart_interval > 0 && count > 0 && count % restart_interval == 0 {
                reader.restart();
                pred.iter_mut().for_each(|p| *p = 0);
            }
            count += 1;
            for &(ci, v, h) in &units[0] {
                let c = &mut frame.components[ci];
                let (by, bx) = if ns == 1 {
                    (uy, ux)
                } else {
                    (uy * c.v + v, ux * c.h + h)
                };
                let idx = (by * c.blocks_w + bx) * 64;
                let block = &mut c.coefs[idx..idx + 64];
                let dc = dc_tables[c.dc_table].as_ref().unwrap();
                let ac = ac_tables[c.ac_table].as_ref().unwrap();
                decode_block(&mut reader, dc, ac, &mut pred[ci], block)?;
            }
        }
    }
    // Next marker: where the reader stopped, or the next one after its position.
    let mut pos = reader.pos;
    while pos + 1 < data.len() {
        if data[pos] == 0xFF && data[pos + 1] != 0 && !(0xD0..=0xD7).contains(&data[pos + 1]) {
            break;
        }
        pos += 1;
    }
    Ok(pos)
}

fn decode_block(
    r: &mut BitReader,
    dc: &Huffman,
    ac: &Huffman,
    pred: &mut i32,
    block: &mut [i16],
) -> Result<()> {
    let t = r.decode(dc)? as u32;
    if t > 16 {
        return invalid("bad DC magnitude");
    }
    *pred = pred.wrapping_add(r.receive_extend(t));
    block[0] = *pred as i16;
    let mut k = 1;
    while k < 64 {
        let rs = r.decode(ac)?;
        let (run, size) = ((rs >> 4) as usize, (rs & 15) as u32);
        if size == 0 {
            if run == 15 {
                k += 16;
                continue;
            }
            break;
        }
        k += run;
        if k > 63 {
            return invalid("AC coefficient index past 63");
        }
        block[NATURAL_ORDER[k]] = r.receive_extend(size) as i16;
        k += 1;
    }
    Ok(())
}

// libjpeg's accurate integer IDCT constants: FIX(x) = round(x · 2^13).
const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;
const FIX_0_298631336: i64 = 2446;
const FIX_0_390180644: i64 = 3196;
const FIX_0_541196100: i64 = 4433;
const FIX_0_765366865: i64 = 6270;
const FIX_0_899976223: i64 = 7373;
const FIX_1_175875602: i64 = 9633;
const FIX_1_501321110: i64 = 12299;
const FIX_1_847759065: i64 = 15137;
const FIX_1_961570560: i64 = 16069;
const FIX_2_053119869: i64 = 16819;
const FIX_2_562915447: i64 = 20995;
const FIX_3_072711026: i64 = 25172;

#[inline]
fn descale(x: i64, n: u32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

/// One 1-D pass of the islow IDCT on `s[0..8]` (already dequantised), before descaling:
/// returns the 8 outputs' numerators in order. 64-bit, as libjpeg's `JLONG` on 64-bit Linux.
#[inline]
fn idct_1d(s: [i64; 8]) -> [i64; 8] {
    // Even part.
    let z1 = (s[2] + s[6]) * FIX_0_541196100;
    let tmp2 = z1 - s[6] * FIX_1_847759065;
    let tmp3 = z1 + s[2] * FIX_0_765366865;
    let tmp0 = (s[0] + s[4]) << CONST_BITS;
    let tmp1 = (s[0] - s[4]) << CONST_BITS;
    let (tmp10, tmp13, tmp11, tmp12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
    // Odd part.
    let (t0, t1, t2, t3) = (s[7], s[5], s[3], s[1]);
    let z1 = t0 + t3;
    let z2 = t1 + t2;
    let z3 = t0 + t2;
    let z4 = t1 + t3;
    let z5 = (z3 + z4) * FIX_1_175875602;
    let t0 = t0 * FIX_0_298631336;
    let t1 = t1 * FIX_2_053119869;
    let t2 = t2 * FIX_3_072711026;
    let t3 = t3 * FIX_1_501321110;
    let z1 = -z1 * FIX_0_899976223;
    let z2 = -z2 * FIX_2_562915447;
    let z3 = -z3 * FIX_1_961570560 + z5;
    let z4 = -z4 * FIX_0_390180644 + z5;
    let t0 = t0 + z1 + z3;
    let t1 = t1 + z2 + z4;
    let t2 = t2 + z2 + z3;
    let t3 = t3 + z1 + z4;
    [
        tmp10 + t3,
        tmp11 + t2,
        tmp12 + t1,
        tmp13 + t0,
        tmp13 - t0,
        tmp12 - t1,
        tmp11 - t2,
        tmp10 - t3,
    ]
}

/// libjpeg's post-IDCT range limit: `x + 128` clamped to 0..=255 for sane `x`, with its
/// wrap-around of the index to 10 bits for wild values.
#[inline]
fn idct_range_limit(x: i64) -> u8 {
    RANGE_LIMIT[(x & 1023) as usize]
}

/// The table behind [`idct_range_limit`], indexed by the low 10 bits.
static RANGE_LIMIT: [u8; 1024] = {
    let mut t = [0u8; 1024];
    let mut i = 0;
    while i < 1024 {
        t[i] = match i {
            0..=127 => (i + 128) as u8,
            128..=511 => 255,
            512..=895 => 0,
            _ => (i - 896) as u8,
        };
        i += 1;
    }
    t
};

/// Inverse DCT of one dequantised block into 8 rows of `out` (row stride `stride`).
fn idct_block(coefs: &[i16], q: &[u16; 64], out: &mut [u8], stride: usize) {
    let mut ws = [0i32; 64];
    for col in 0..8 {
        let s: [i64; 8] =
            std::array::from_fn(|r| coefs[r * 8 + col] as i64 * q[r * 8 + col] as i64);
        if s[1..].iter().all(|&v| v == 0) {
            for r in 0..8 {
                ws[r * 8 + col] = (s[0] << PASS1_BITS) as i32;
            }
            continue;
        }
        let o = idct_1d(s);
        for r in 0..8 {
            ws[r * 8 + col] = descale(o[r], CONST_BITS - PASS1_BITS) as i32;
        }
    }
    for row in 0..8 {
        let s: [i64; 8] = std::array::from_fn(|c| ws[row * 8 + c] as i64);
        let dst = &mut out[row * stride..row * stride + 8];
        if s[1..].iter().all(|&v| v == 0) {
            dst.fill(idct_range_limit(descale(s[0], PASS1_BITS + 3)));
            continue;
        }
        let o = idct_1d(s);
        for (d, v) in dst.iter_mut().zip(o) {
            *d = idct_range_limit(descale(v, CONST_BITS + PASS1_BITS + 3));
        }
    }
}

/// One component's samples: `width × height` real samples in a plane of row stride `stride`.
struct Plane {
    data: Vec<u8>,
    stride: usize,
    width: usize,
    height: usize,
}

impl Plane {
    #[inline]
    fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.stride..y * self.stride + self.width]
    }
}

fn component_plane(frame: &Frame, c: &Component, q: &[u16; 64]) -> Plane {
    let stride = c.blocks_w * 8;
    let mut data = vec![0u8; stride * c.blocks_h * 8];
    for by in 0..c.blocks_h {
        for bx in 0..c.blocks_w {
            let idx = (by * c.blocks_w + bx) * 64;
            let out = &mut data[by * 8 * stride + bx * 8..];
            idct_block(&c.coefs[idx..idx + 64], q, out, stride);
        }
    }
    Plane {
        data,
        stride,
        width: (frame.width * c.h).div_ceil(frame.h_max),
        height: (frame.height * c.v).div_ceil(frame.v_max),
    }
}

/// How a component reaches full resolution.
struct Upsampler<'p> {
    plane: &'p Plane,
    hx: usize,
    vx: usize,
    /// Column sums `3·near + far` for h2v2 (reused between rows).
    sums: Vec<u32>,
    /// A row of twice the component's width for h2v1 and h2v2.
    wide: Vec<u8>,
}

impl<'p> Upsampler<'p> {
    fn new(plane: &'p Plane, hx: usize, vx: usize) -> Self {
        Upsampler {
            plane,
            hx,
            vx,
            sums: vec![0; plane.width],
            wide: vec![0; 2 * plane.width],
        }
    }

    /// Output row `y` (`out.len()` samples, at most the upsampled width), the way
    /// libjpeg-turbo's `jdsample.c` computes it with fancy upsampling on: triangle filters for
    /// 2× factors (h2v1 and h2v2 only when the component is wider than 2 samples), box
    /// replication otherwise; rows and columns past the component's real size are never read,
    /// the edge sample standing in for its missing neighbour.
    fn row(&mut self, y: usize, out: &mut [u8]) {
        let p = self.plane;
        let fancy_h2 = p.width > 2;
        // The nearer and farther source rows of a vertically doubled output row.
        let near_far = |y: usize| {
            let near = p.row(y / 2);
            if y % 2 == 0 {
                (near, p.row((y / 2).saturating_sub(1)), 1)
            } else {
                (near, p.row((y / 2 + 1).min(p.height - 1)), 2)
            }
        };
        match (self.hx, self.vx) {
            (1, 1) => out.copy_from_slice(&p.row(y)[..out.len()]),
            (2, 1) if fancy_h2 => {
                h2v1_fancy(p.row(y), &mut self.wide);
                out.copy_from_slice(&self.wide[..out.len()]);
            }
            (1, 2) => {
                let (near, far, bias) = near_far(y);
                for ((o, &n), &f) in out.iter_mut().zip(near).zip(far) {
                    *o = ((n as u32 * 3 + f as u32 + bias) >> 2) as u8;
                }
            }
            (2, 2) if fancy_h2 => {
                let (near, far, _) = near_far(y);
                for ((s, &n), &f) in self.sums.iter_mut().zip(near).zip(far) {
                    *s = n as u32 * 3 + f as u32;
                }
                h2v2_fancy_row(&self.sums, &mut self.wide);
                out.copy_from_slice(&self.wide[..out.len()]);
            }
            (hx, vx) => {
                let src = p.row(y / vx);
                for (x, o) in out.iter_mut().enumerate() {
                    *o = src[x / hx];
                }
            }
        }
    }
}

/// Horizontal 2× triangle upsampling of one row (`full` holds `2·len`), rounding alternately
/// down and up.
fn h2v1_fancy(src: &[u8], full: &mut [u8]) {
    let n = src.len();
    full[0] = src[0];
    full[1] = ((src[0] as u32 * 3 + src[1] as u32 + 2) >> 2) as u8;
    for i in 1..n - 1 {
        let v = src[i] as u32 * 3;
        full[2 * i] = ((v + src[i - 1] as u32 + 1) >> 2) as u8;
        full[2 * i + 1] = ((v + src[i + 1] as u32 + 2) >> 2) as u8;
    }
    full[2 * n - 2] = ((src[n - 1] as u32 * 3 + src[n - 2] as u32 + 1) >> 2) as u8;
    full[2 * n - 1] = src[n - 1];
}

/// Horizontal half of h2v2 fancy upsampling on column sums `3·near + far` (`full` holds
/// `2·len`).
fn h2v2_fancy_row(sums: &[u32], full: &mut [u8]) {
    let n = sums.len();
    full[0] = ((sums[0] * 4 + 8) >> 4) as u8;
    full[1] = ((sums[0] * 3 + sums[1] + 7) >> 4) as u8;
    for (pair, win) in full[2..2 * n - 2].chunks_exact_mut(2).zip(sums.windows(3)) {
        let mid = win[1] * 3;
        pair[0] = ((mid + win[0] + 8) >> 4) as u8;
        pair[1] = ((mid + win[2] + 7) >> 4) as u8;
    }
    full[2 * n - 2] = ((sums[n - 1] * 3 + sums[n - 2] + 8) >> 4) as u8;
    full[2 * n - 1] = ((sums[n - 1] * 4 + 7) >> 4) as u8;
}

/// libjpeg's YCbCr → RGB tables (16-bit fixed point).
struct YccTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

fn ycc_tables() -> YccTables {
    const SCALEBITS: u32 = 16;
    const ONE_HALF: i64 = 1 << (SCALEBITS - 1);
    let fix = |x: f64| (x * (1u64 << SCALEBITS) as f64 + 0.5) as i64;
    let mut t = YccTables {
        cr_r: [0; 256],
        cb_b: [0; 256],
        cr_g: [0; 256],
        cb_g: [0; 256],
    };
    for i in 0..256usize {
        let x = i as i64 - 128;
        t.cr_r[i] = ((fix(1.40200) * x + ONE_HALF) >> SCALEBITS) as i32;
        t.cb_b[i] = ((fix(1.77200) * x + ONE_HALF) >> SCALEBITS) as i32;
        t.cr_g[i] = (-fix(0.71414) * x) as i32;
        t.cb_g[i] = (-fix(0.34414) * x + ONE_HALF) as i32;
    }
    t
}

fn to_rgb(frame: &Frame, quant: &[[u16; 64]; 4], is_rgb: bool) -> Result<RgbImage> {
    let (w, h) = (frame.width, frame.height);
    let planes: Vec<Plane> = frame
        .components
        .iter()
        .map(|c| component_plane(frame, c, &quant[c.quant]))
        .collect();
    let mut upsamplers: Vec<Upsampler> = frame
        .components
        .iter()
        .zip(&planes)
        .map(|(c, p)| Upsampler::new(p, frame.h_max / c.h, frame.v_max / c.v))
        .collect();
    let mut rows = vec![vec![0u8; w]; planes.len()];
    let mut data = vec![0u8; w * h * 3];
    let t = ycc_tables();
    let clamp = |v: i32| v.clamp(0, 255) as u8;
    for (y, out) in data.chunks_exact_mut(w * 3).enumerate() {
        for (u, row) in upsamplers.iter_mut().zip(rows.iter_mut()) {
            u.row(y, row);
        }
        if rows.len() == 1 {
            for (px, &v) in out.chunks_exact_mut(3).zip(&rows[0]) {
                px.fill(v);
            }
        } else if is_rgb {
            for (x, px) in out.chunks_exact_mut(3).enumerate() {
                px.copy_from_slice(&[rows[0][x], rows[1][x], rows[2][x]]);
            }
        } else {
            let (ys, cbs, crs) = (&rows[0], &rows[1], &rows[2]);
            for (((px, &y), &cb), &cr) in out.chunks_exact_mut(3).zip(ys).zip(cbs).zip(crs) {
                let (y, cb, cr) = (y as i32, cb as usize, cr as usize);
                px[0] = clamp(y + t.cr_r[cr]);
                px[1] = clamp(y + ((t.cb_g[cb] + t.cr_g[cr]) >> 16));
                px[2] = clamp(y + t.cb_b[cb]);
            }
        }
    }
    Ok(RgbImage {
        width: w as u32,
        height: h as u32,
        data,
    })
}
