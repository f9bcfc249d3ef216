//! Which `k` elements `torch.topk(x, k, largest=False)` selects on the CPU when values tie.
//!
//! ATSS takes the 9 anchors nearest to each ground-truth centre per level, and on an anchor grid
//! equal distances are common (mirror-image anchors), so the set chosen at the boundary decides
//! which anchors become candidates. PyTorch's CPU kernel (`topk_impl_loop`) fills a vector of
//! `(value, index)` pairs and, comparing values only (NaN largest), runs libstdc++'s
//! `std::partial_sort` when `k · 64 <= n` and `std::nth_element` otherwise; the selected set is
//! then the first `k` slots. Neither algorithm is stable, so the set among ties is whatever those
//! exact algorithms leave there. This module replays them step for step (heap select, and
//! introselect with median-of-three pivots and a final insertion sort).
//!
//! CUDA's `topk` (GLIP trains on GPUs) resolves ties differently; on the CPU, this matches
//! PyTorch (checked against torch in `tests/it/train_targets.rs`).

type Elem = (f32, u32);

/// torch's comparator for `largest=False`: `x` before `y`.
#[inline]
fn less(x: &Elem, y: &Elem) -> bool {
    (!x.0.is_nan() && y.0.is_nan()) || x.0 < y.0
}

/// libstdc++ `__adjust_heap` on `a` (a max-heap under `less`).
fn adjust_heap(a: &mut [Elem], mut hole: usize, len: usize, value: Elem) {
    let top = hole;
    let mut second = hole;
    while len >= 2 && second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if less(&a[second], &a[second - 1]) {
            second -= 1;
        }
        a[hole] = a[second];
        hole = second;
    }
    if len % 2 == 0 && len >= 2 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        a[hole] = a[second - 1];
        hole = second - 1;
    }
    // __push_heap
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(&a[parent], &value) {
            break;
        }
        a[hole] = a[parent];
        hole = parent;
    }
    a[hole] = value;
}

/// libstdc++ `__make_heap`.
fn make_heap(a: &mut [Elem]) {
    let len = a.len();
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let v = a[parent];
        adjust_heap(a, parent, len, v);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

/// libstdc++ `__heap_select(first, first + middle, last)`.
fn heap_select(a: &mut [Elem], middle: usize) {
    make_heap(&mut a[..middle]);
    for i in middle..a.len() {
        if less(&a[i], &a[0]) {
            // __pop_heap(first, middle, i)
            let v = a[i];
            a[i] = a[0];
            adjust_heap(&mut a[..middle], 0, middle, v);
        }
    }
}

/// libstdc++ `__insertion_sort` (stable for equal values).
fn insertion_sort(a: &mut [Elem]) {
    for i in 1..a.len() {
        let v = a[i];
        let mut j = i;
        while j > 0 && less(&v, &a[j - 1]) {
            a[j] = a[j - 1];
            j -= 1;
        }
        a[j] = v;
    }
}

/// libstdc++ `__move_median_to_first(result, a, b, c)`.
fn move_median_to_first(v: &mut [Elem], result: usize, a: usize, b: usize, c: usize) {
    let m = if less(&v[a], &v[b]) {
        if less(&v[b], &v[c]) {
            b
        } else if less(&v[a], &v[c]) {
            c
        } else {
            a
        }
    } else if less(&v[a], &v[c]) {
        a
    } else if less(&v[b], &v[c]) {
        c
    } else {
        b
    };
    v.swap(result, m);
}

/// libstdc++ `__unguarded_partition_pivot` on `v[first..last]`; returns the cut.
fn partition_pivot(v: &mut [Elem], first: usize, last: usize) -> usize {
    let mid = first + (last - first) / 2;
    move_median_to_first(v, first, first + 1, mid, last - 1);
    let (mut lo, mut hi) = (first + 1, last);
    loop {
        while less(&v[lo], &v[first]) {
            lo += 1;
        }
        hi -= 1;
        while less(&v[first], &v[hi]) {
            hi -= 1;
        }
        if lo >= hi {
            return lo;
        }
        v.swap(lo, hi);
        lo += 1;
    }
}

/// libstdc++ `std::nth_element(begin, begin + nth, end)` (`__introselect`).
fn nth_element(v: &mut [Elem], nth: usize) {
    let (mut first, mut last) = (0, v.len());
    if nth >= last {
        return;
    }
    let mut depth = 2 * (usize::BITS - 1 - last.leading_zeros()) as usize;
    while last - first > 3 {
        if depth == 0 {
            heap_select(&mut v[first..last], nth - first + 1);
            v.swap(first, nth);
            return;
        }
        depth -= 1;
        let cut = partition_pivot(v, first, last);
        if cut <= nth {
            first = cut;
        } else {
            last = cut;
        }
    }
    insertion_sort(&mut v[first..last]);
}

/// The indices `torch.topk(values, k, largest=False)` returns on the CPU, as a set in
/// ascending index order (`k` is capped at `values.len()`).
pub fn smallest_k(values: &[f32], k: usize) -> Vec<usize> {
    let n = values.len();
    let k = k.min(n);
    if k == 0 {
        return Vec::new();
    }
    let mut q: Vec<Elem> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i as u32))
        .collect();
    if k * 64 <= n {
        heap_select(&mut q, k);
    } else {
        nth_element(&mut q, k - 1);
    }
    let mut idx: Vec<usize> = q[..k].iter().map(|e| e.1 as usize).collect();
    idx.sort_unstable();
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_ties_it_is_the_k_smallest() {
        let v: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32).collect();
        for k in [1, 9, 15, 16, 100, 999, 1000, 2000] {
            let got = smallest_k(&v, k);
            let mut want: Vec<usize> = (0..v.len()).collect();
            want.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
            want.truncate(k.min(v.len()));
            want.sort_unstable();
            assert_eq!(got, want, "k={k}");
        }
        assert!(smallest_k(&[], 9).is_empty());
        assert_eq!(smallest_k(&[3.0, f32::NAN, 1.0], 2), vec![0, 2]);
    }

    #[test]
    fn ties_at_the_boundary_follow_libstdcxx() {
        // Recorded from torch 2.x on the CPU: `torch.zeros(n).topk(9, largest=False)`.
        // n = 20 takes the nth_element path (n < 64 k), n = 1000 the partial_sort path.
        assert_eq!(
            smallest_k(&[0.0; 20], 9),
            [10, 11, 12, 13, 14, 15, 17, 18, 19]
        );
        assert_eq!(smallest_k(&[0.0; 1000], 9), (0..9).collect::<Vec<_>>());
    }
}
