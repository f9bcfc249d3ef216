//! pycocotools' default bbox parameters, computed the way numpy computes them: the IoU and
//! recall thresholds are `np.linspace` values (`iouThrs[8]` is 0.8999999999999999, and ten
//! recall thresholds differ from `i/100`), area ranges are inclusive at both ends.

/// `np.linspace(start, stop, num)`: `i * step + start` with `step = (stop - start) / (num - 1)`,
/// and the last element set to `stop` exactly.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// The evaluation parameters (`COCOeval.params` for iouType "bbox").
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// `np.linspace(.5, .95, int(np.round((.95 - .5) / .05)) + 1)`
    pub iou_thrs: Vec<f64>,
    /// `np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1)`
    pub rec_thrs: Vec<f64>,
    /// `[lo, hi]`, both inclusive: all, small, medium, large.
    pub area_ranges: [[f64; 2]; 4],
    pub area_labels: [&'static str; 4],
    /// Per image and per category.
    pub max_dets: [usize; 3],
}

impl Default for Params {
    fn default() -> Self {
        let t = ((0.95f64 - 0.5) / 0.05).round_ties_even() as usize + 1;
        let r = ((1.00f64 - 0.0) / 0.01).round_ties_even() as usize + 1;
        let big = 1e5f64 * 1e5;
        Params {
            iou_thrs: linspace(0.5, 0.95, t),
            rec_thrs: linspace(0.0, 1.00, r),
            area_ranges: [[0.0, big], [0.0, 1024.0], [1024.0, 9216.0], [9216.0, big]],
            area_labels: ["all", "small", "medium", "large"],
            max_dets: [1, 10, 100],
        }
    }
}

impl Params {
    /// The index of an IoU threshold equal (exactly, as `np.where(iouThr == p.iouThrs)`) to
    /// `v`.
    pub fn iou_index(&self, v: f64) -> Option<usize> {
        self.iou_thrs.iter().position(|&t| t == v)
    }

    pub fn area_index(&self, label: &str) -> Option<usize> {
        self.area_labels.iter().position(|&l| l == label)
    }

    pub fn max_det_index(&self, m: usize) -> Option<usize> {
        self.max_dets.iter().position(|&x| x == m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_numpy_linspace() {
        let p = Params::default();
        let iou: Vec<String> = p.iou_thrs.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(
            iou,
            [
                "0.5",
                "0.55",
                "0.6",
                "0.65",
                "0.7",
                "0.75",
                "0.8",
                "0.85",
                "0.8999999999999999",
                "0.95"
            ]
        );
        assert_eq!(p.rec_thrs.len(), 101);
        assert_eq!(p.rec_thrs[35], 0.35000000000000003);
        assert_eq!(p.rec_thrs[70], 0.7000000000000001);
        assert_eq!(p.rec_thrs[100], 1.0);
        // The ten recall thresholds that differ from i/100 (spec §2.3).
        let differ: Vec<usize> = (0..101)
            .filter(|&i| p.rec_thrs[i] != i as f64 / 100.0)
            .collect();
        assert_eq!(differ, [35, 41, 47, 57, 69, 70, 82, 83, 94, 95]);
        assert_eq!(p.iou_index(0.5), Some(0));
        assert_eq!(p.iou_index(0.75), Some(5));
        assert_eq!(p.area_ranges[0][1], 1e10);
    }
}
