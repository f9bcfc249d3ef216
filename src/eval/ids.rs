//! Image and category ids as COCO files write them (integers or strings), ordered the way
//! Python sorts them, and a lookup from id to dense index that is a plain table for the usual
//! compact integer ids.
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// An id from a COCO file. Integers sort numerically and strings lexicographically (so `"10"`
/// comes before `"9"`), as Python sorts them; the two kinds are never mixed in one id space.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    Int(i64),
    Str(Box<str>),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Int(v) => write!(f, "{v}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<i64> for Id {
    fn from(v: i64) -> Self {
        Id::Int(v)
    }
}

impl From<u64> for Id {
    fn from(v: u64) -> Self {
        Id::Int(v as i64)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::Str(s.into())
    }
}

/// A multiplicative hasher for integer keys (the std hasher is several times slower here).
#[derive(Default)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_i64(&mut self, v: i64) {
        self.0 = (v as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(26);
    }
    fn write_u64(&mut self, v: u64) {
        self.write_i64(v as i64);
    }
}

pub type IntMap<V> = HashMap<i64, V, BuildHasherDefault<IntHasher>>;

const ABSENT: u32 = u32::MAX;

/// Maps ids to their position in a sorted id list.
pub enum IdIndex {
    /// Integer ids in `min..min+table.len()`; `ABSENT` marks gaps.
    Dense {
        min: i64,
        table: Vec<u32>,
    },
    Ints(IntMap<u32>),
    Strs(HashMap<Box<str>, u32>),
}

impl IdIndex {
    /// The index of sorted, distinct `ids` (all of one kind).
    pub fn new(ids: &[Id]) -> Self {
        if let Some(Id::Str(_)) = ids.first() {
            let map = ids
                .iter()
                .enumerate()
                .filter_map(|(i, id)| match id {
                    Id::Str(s) => Some((s.clone(), i as u32)),
                    Id::Int(_) => None,
                })
                .collect();
            return IdIndex::Strs(map);
        }
        let ints: Vec<i64> = ids
            .iter()
            .filter_map(|id| match id {
                Id::Int(v) => Some(*v),
                Id::Str(_) => None,
            })
            .collect();
        let (min, max) = match (ints.first(), ints.last()) {
            (Some(&a), Some(&b)) => (a, b),
            _ => return IdIndex::Ints(IntMap::default()),
        };
        let span = (max as i128 - min as i128) as u128;
        if span <= 4 * ints.len() as u128 + 4096 {
            let mut table = vec![ABSENT; span as usize + 1];
            for (i, v) in ints.iter().enumerate() {
                table[(v - min) as usize] = i as u32;
            }
            IdIndex::Dense { min, table }
        } else {
            IdIndex::Ints(
                ints.iter()
                    .enumerate()
                    .map(|(i, &v)| (v, i as u32))
                    .collect(),
            )
        }
    }

    #[inline]
    pub fn get_int(&self, v: i64) -> Option<u32> {
        match self {
            IdIndex::Dense { min, table } => {
                let off = (v as i128) - (*min as i128);
                if off < 0 || off >= table.len() as i128 {
                    return None;
                }
                let i = table[off as usize];
                (i != ABSENT).then_some(i)
            }
            IdIndex::Ints(m) => m.get(&v).copied(),
            IdIndex::Strs(_) => None,
        }
    }

    #[inline]
    pub fn get_str(&self, s: &str) -> Option<u32> {
        match self {
            IdIndex::Strs(m) => m.get(s).copied(),
            _ => None,
        }
    }

    pub fn get(&self, id: &Id) -> Option<u32> {
        match id {
            Id::Int(v) => self.get_int(*v),
            Id::Str(s) => self.get_str(s),
        }
    }
}

/// Sorts and de-duplicates ids as `np.unique(sorted(ids))` does; mixed integer and string ids
/// cannot be ordered (Python raises `TypeError`), so they are an error naming `what`.
pub fn sorted_unique(mut ids: Vec<Id>, what: &str) -> Result<Vec<Id>, String> {
    let ints = ids.iter().filter(|i| matches!(i, Id::Int(_))).count();
    if ints != 0 && ints != ids.len() {
        return Err(format!(
            "{what} mix integers and strings, which pycocotools cannot sort (TypeError)"
        ));
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_sort_like_python() {
        let ids = sorted_unique(vec!["9".into(), "10".into(), "9".into()], "ids").unwrap();
        assert_eq!(ids, vec![Id::from("10"), Id::from("9")]);
        assert!(sorted_unique(vec![Id::Int(1), "1".into()], "ids").is_err());
    }

    #[test]
    fn dense_and_sparse_lookups_agree() {
        let dense: Vec<Id> = [3i64, 5, 9, 10].map(Id::Int).to_vec();
        let sparse: Vec<Id> = [-7i64, 3, 1 << 40, i64::MAX].map(Id::Int).to_vec();
        let d = IdIndex::new(&dense);
        assert!(matches!(d, IdIndex::Dense { .. }));
        assert_eq!(d.get_int(9), Some(2));
        assert_eq!(d.get_int(4), None);
        assert_eq!(d.get_int(i64::MIN), None);
        let s = IdIndex::new(&sparse);
        assert!(matches!(s, IdIndex::Ints(_)));
        assert_eq!(s.get_int(1 << 40), Some(2));
        assert_eq!(s.get_int(4), None);
        assert_eq!(s.get(&Id::from("3")), None);
    }
}
