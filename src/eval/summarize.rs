//! The 12 summary numbers (`COCOeval.summarize`), per-category AP (as GLIP's `bbox.csv`), and
//! the familiar text. Every mean is numpy's `np.mean` of the values > -1 of a C-order slice
//! (`s[s>-1]`, a 1-D contiguous copy): numpy's pairwise summation divided by the count. How the
//! pairwise sums are cut depends on the numpy pycocotools runs on ([`NumpySum`]): numpy 2.3 and
//! later sum the whole copy pairwise; numpy 2.2 and earlier (GLIP's numpy 1.x included) sum it
//! in buffers of 8192 elements, pairwise within each, the buffers added in order. The two differ
//! in the last bits once more than 8192 values are averaged (AP over 9 or more categories).
use super::params::Params;

/// numpy's `pairwise_sum` for doubles (blocks of 8 accumulators up to 128 elements, halves
/// above that).
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let mut i = 8;
        while i < n - n % 8 {
            for (j, acc) in r.iter_mut().enumerate() {
                *acc += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// numpy's default reduction buffer (`np.getbufsize()`), in elements.
pub const NUMPY_BUFSIZE: usize = 8192;

/// Which numpy's `np.mean` the summary numbers reproduce, bit for bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NumpySum {
    /// numpy >= 2.3 (what `pip install pycocotools` brings today): the reduction hands the
    /// whole contiguous array to one pairwise sum (numpy 2.3 honours "growinner" for buffered
    /// reductions that need no buffering).
    #[default]
    #[value(name = "2.3")]
    Whole,
    /// numpy <= 2.2 (and the numpy 1.x of GLIP's published numbers): the reduction runs in
    /// buffers of 8192 elements, each summed pairwise, added in order to the initial 0.
    #[value(name = "2.2")]
    Buffered,
}

impl NumpySum {
    /// The numpy versions this summation is that of.
    pub fn label(self) -> &'static str {
        match self {
            NumpySum::Whole => "numpy>=2.3",
            NumpySum::Buffered => "numpy<=2.2",
        }
    }

    /// `np.add.reduce(v)` for a 1-D contiguous float64 array, as this numpy computes it.
    pub fn sum(self, v: &[f64]) -> f64 {
        match self {
            NumpySum::Whole => 0.0 + pairwise_sum(v),
            NumpySum::Buffered => {
                let mut sum = 0.0;
                for chunk in v.chunks(NUMPY_BUFSIZE) {
                    sum += pairwise_sum(chunk);
                }
                sum
            }
        }
    }
}

/// `np.mean(v)` for a 1-D contiguous float64 array, bit for bit, under `numpy`.
pub fn numpy_mean(v: &[f64], numpy: NumpySum) -> f64 {
    numpy.sum(v) / v.len() as f64
}

/// The mean of the values > -1, or -1 when there are none (`_summarize`).
pub fn mean_defined(values: impl Iterator<Item = f64>, numpy: NumpySum) -> f64 {
    let kept: Vec<f64> = values.filter(|&v| v > -1.0).collect();
    if kept.is_empty() {
        -1.0
    } else {
        numpy_mean(&kept, numpy)
    }
}

/// Shapes of the accumulated arrays.
#[derive(Clone, Copy)]
pub struct Dims {
    pub t: usize,
    pub r: usize,
    pub k: usize,
    pub a: usize,
    pub m: usize,
}

/// One summary number: average precision (`ap`) or recall over the thresholds `iou` (all if
/// `None`), one area range and one maxDets value, over all categories (or only `only_k`).
#[allow(clippy::too_many_arguments)]
pub fn summarize_one(
    precision: &[f64],
    recall: &[f64],
    d: Dims,
    params: &Params,
    ap: bool,
    iou: Option<f64>,
    area: &str,
    max_dets: usize,
    only_k: Option<usize>,
    numpy: NumpySum,
) -> f64 {
    let ts: Vec<usize> = match iou {
        None => (0..d.t).collect(),
        Some(v) => params.iou_index(v).into_iter().collect(),
    };
    let (Some(a), Some(m)) = (params.area_index(area), params.max_det_index(max_dets)) else {
        return -1.0;
    };
    let ks: Vec<usize> = match only_k {
        Some(k) => vec![k],
        None => (0..d.k).collect(),
    };
    if ap {
        mean_defined(
            ts.iter().flat_map(|&t| {
                let ks = &ks;
                (0..d.r).flat_map(move |r| {
                    ks.iter()
                        .map(move |&k| precision[(((t * d.r + r) * d.k + k) * d.a + a) * d.m + m])
                })
            }),
            numpy,
        )
    } else {
        mean_defined(
            ts.iter().flat_map(|&t| {
                ks.iter()
                    .map(move |&k| recall[((t * d.k + k) * d.a + a) * d.m + m])
            }),
            numpy,
        )
    }
}

/// The 12 numbers of `summarize()` for bbox, in its order.
pub fn stats(precision: &[f64], recall: &[f64], d: Dims, p: &Params, numpy: NumpySum) -> [f64; 12] {
    let md = p.max_dets[2];
    let s =
        |ap, iou, area, m| summarize_one(precision, recall, d, p, ap, iou, area, m, None, numpy);
    [
        s(true, None, "all", 100),
        s(true, Some(0.5), "all", md),
        s(true, Some(0.75), "all", md),
        s(true, None, "small", md),
        s(true, None, "medium", md),
        s(true, None, "large", md),
        s(false, None, "all", p.max_dets[0]),
        s(false, None, "all", p.max_dets[1]),
        s(false, None, "all", md),
        s(false, None, "small", md),
        s(false, None, "medium", md),
        s(false, None, "large", md),
    ]
}

/// Names of the 12 stats, in order.
pub const STAT_NAMES: [&str; 12] = [
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
];

/// pycocotools' printed summary (12 lines).
pub fn summary_text(stats: &[f64; 12], p: &Params) -> String {
    let md = p.max_dets[2];
    let rows: [(bool, Option<f64>, &str, usize); 12] = [
        (true, None, "all", 100),
        (true, Some(0.5), "all", md),
        (true, Some(0.75), "all", md),
        (true, None, "small", md),
        (true, None, "medium", md),
        (true, None, "large", md),
        (false, None, "all", p.max_dets[0]),
        (false, None, "all", p.max_dets[1]),
        (false, None, "all", md),
        (false, None, "small", md),
        (false, None, "medium", md),
        (false, None, "large", md),
    ];
    let mut out = String::new();
    for ((ap, iou, area, m), v) in rows.iter().zip(stats) {
        let (title, kind) = if *ap {
            ("Average Precision", "(AP)")
        } else {
            ("Average Recall", "(AR)")
        };
        let iou_str = match iou {
            None => format!(
                "{:.2}:{:.2}",
                p.iou_thrs[0],
                p.iou_thrs[p.iou_thrs.len() - 1]
            ),
            Some(t) => format!("{t:.2}"),
        };
        out.push_str(&format!(
            " {title:<18} {kind} @[ IoU={iou_str:<9} | area={area:>6} | maxDets={m:>3} ] = {v:.3}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_known_sums() {
        // Integers: every summation order is exact, so the routine must give n(n+1)/2.
        for n in 1..300usize {
            let v: Vec<f64> = (1..=n).map(|i| i as f64).collect();
            assert_eq!(pairwise_sum(&v), (n * (n + 1) / 2) as f64, "n={n}");
        }
        // Order matters for these: 8 accumulators, then the tail added one by one.
        let mut v = vec![1.0; 9];
        v[0] = 1e16;
        // r0 = 1e16, r1..r7 = 1; ((1e16+1)+(1+1)) + ((1+1)+(1+1)) = 1e16+2+4, then +1.
        assert_eq!(pairwise_sum(&v), ((1e16 + 1.0) + 2.0) + 4.0 + 1.0);
        // The sequential sum gives a different answer (1e16 + 1 + 1 ... rounds each time).
        assert_ne!(pairwise_sum(&v), v.iter().fold(0.0, |s, x| s + x));
    }

    #[test]
    fn numpy_versions_agree_up_to_one_buffer_and_not_beyond() {
        // A deterministic spread of values in [0, 1) (a 64-bit LCG), as precision values are.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let v: Vec<f64> = (0..3 * NUMPY_BUFSIZE + 17)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (x >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        for n in [1, 7, 8, 128, 129, 1010, NUMPY_BUFSIZE] {
            let (w, b) = (
                NumpySum::Whole.sum(&v[..n]),
                NumpySum::Buffered.sum(&v[..n]),
            );
            assert_eq!(w.to_bits(), b.to_bits(), "n={n}");
            assert_eq!(w.to_bits(), pairwise_sum(&v[..n]).to_bits(), "n={n}");
        }
        // Past one buffer numpy <= 2.2 adds per-buffer sums in order; the last bits differ.
        let differ = (1..=40)
            .map(|i| &v[..NUMPY_BUFSIZE + i * 397])
            .filter(|s| NumpySum::Whole.sum(s) != NumpySum::Buffered.sum(s))
            .count();
        assert!(differ > 0);
        let b = NumpySum::Buffered.sum(&v);
        let by_hand = ((pairwise_sum(&v[..8192]) + pairwise_sum(&v[8192..16384]))
            + pairwise_sum(&v[16384..24576]))
            + pairwise_sum(&v[24576..]);
        assert_eq!(b.to_bits(), by_hand.to_bits());
    }

    #[test]
    fn summary_lines_look_like_pycocotools() {
        let p = Params::default();
        let mut s = [-1.0; 12];
        s[0] = 0.1891353618702286;
        let text = summary_text(&s, &p);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.189"
        );
        assert_eq!(
            lines[1],
            " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = -1.000"
        );
        assert_eq!(
            lines[6],
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = -1.000"
        );
    }
}
