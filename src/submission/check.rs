//! `odinw submission check`: validates an EvalAI submission file in one streaming pass and
//! names every problem precisely (task, seed, result index, field, value):
//! - keys: known task keys, no duplicates, every task of the suite with `--suite`;
//! - shape: results lists (zero-/full-shot) or seed objects (few-shot), not mixed, matching
//!   `--track`; few-shot tasks have exactly the required seeds;
//! - each result: `image_id` and `category_id` are ids of the task's test annotations, `bbox`
//!   is four finite numbers with non-negative width and height, `score` is finite
//!   (`NaN`/`Infinity` as Python writes them are named as such).
use super::keys::KeyMap;
use super::lenient::BareWordsQuoted;
use crate::registry::{self, Suite, Task};
use crate::run::Track;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The seeds of the challenge's few-shot track.
pub const CHALLENGE_SEEDS: [&str; 3] = ["3", "30", "300"];

pub struct CheckOptions {
    /// Dataset root holding the test annotations; `None` checks structure and values only.
    pub root: Option<PathBuf>,
    /// The split whose annotations the ids must come from.
    pub split: String,
    /// Require every task of this suite.
    pub suite: Option<Suite>,
    /// Require this track's shape.
    pub track: Option<Track>,
    /// Seeds each few-shot task must have, exactly.
    pub seeds: Vec<String>,
    pub keys: KeyMap,
    /// Problems shown per (kind, task, seed); the rest are counted.
    pub max_examples: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            root: None,
            split: "test".into(),
            suite: None,
            track: None,
            seeds: CHALLENGE_SEEDS.iter().map(|s| s.to_string()).collect(),
            keys: KeyMap::registry(),
            max_examples: 10,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    /// A stable code: `invalid_json`, `unknown_task`, `duplicate_task`, `missing_task`,
    /// `wrong_shape`, `mixed_tracks`, `missing_seed`, `unknown_seed`, `duplicate_seed`, `annotations_unavailable`,
    /// `not_an_object`, `missing_field`, `bad_image_id`, `unknown_image_id`,
    /// `bad_category_id`, `unknown_category_id`, `bad_bbox`, `non_finite_bbox`,
    /// `negative_size`, `bad_score`, `non_finite_score`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Position of the result in its list, from 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut at = Vec::new();
        if let Some(t) = &self.task {
            at.push(format!("task '{t}'"));
        }
        if let Some(s) = &self.seed {
            at.push(format!("seed '{s}'"));
        }
        if let Some(i) = self.index {
            at.push(format!("result #{i}"));
        }
        if at.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", at.join(" "), self.message)
        }
    }
}

/// What a task holds in the submission.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TaskContent {
    /// Zero-/full-shot: number of results.
    Results { results: u64 },
    /// Few-shot: seed → number of results.
    Seeds { seeds: BTreeMap<String, u64> },
    /// Neither a list nor an object.
    Invalid { invalid: String },
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub file: String,
    pub valid: bool,
    /// `zero-shot/full-shot` (results lists) or `few-shot` (seed objects), when consistent.
    pub track: Option<String>,
    /// Submission key → content, in file order.
    pub tasks: Vec<(String, TaskContent)>,
    /// The problems, at most `max_examples` per kind, task and seed.
    pub problems: Vec<Problem>,
    /// Problems of each kind, shown or not.
    pub problem_counts: BTreeMap<&'static str, u64>,
    pub problems_not_shown: u64,
}

/// Ids of one task's annotation file.
struct Ids {
    file: PathBuf,
    images: HashSet<u64>,
    categories: BTreeSet<u64>,
}

struct Checker<'a> {
    opts: &'a CheckOptions,
    problems: Vec<Problem>,
    shown: BTreeMap<(&'static str, Option<String>, Option<String>), usize>,
    counts: BTreeMap<&'static str, u64>,
    not_shown: u64,
    tasks: Vec<(String, TaskContent)>,
    /// Where the parser is, for syntax errors.
    at: (Option<String>, Option<String>),
    at_index: Option<u64>,
}

impl Checker<'_> {
    fn report(
        &mut self,
        kind: &'static str,
        task: Option<&str>,
        seed: Option<&str>,
        index: Option<u64>,
        message: String,
    ) {
        *self.counts.entry(kind).or_default() += 1;
        let n = self
            .shown
            .entry((kind, task.map(str::to_string), seed.map(str::to_string)))
            .or_default();
        if *n >= self.opts.max_examples {
            self.not_shown += 1;
            return;
        }
        *n += 1;
        self.problems.push(Problem {
            kind,
            task: task.map(str::to_string),
            seed: seed.map(str::to_string),
            index,
            message,
        });
    }

    /// The ids of `task`'s annotations of the checked split, or a problem saying why not.
    fn load_ids(&mut self, key: &str, task: &Task) -> Option<Ids> {
        let root = self.opts.root.as_ref()?;
        let split = &self.opts.split;
        let Some(file) = task.ann_file(root, split) else {
            self.report(
                "annotations_unavailable",
                Some(key),
                None,
                None,
                format!("the task has no '{split}' split; ids cannot be checked"),
            );
            return None;
        };
        match read_ids(&file) {
            Ok((images, categories)) => Some(Ids {
                file,
                images,
                categories,
            }),
            Err(e) => {
                self.report(
                    "annotations_unavailable",
                    Some(key),
                    None,
                    None,
                    format!("cannot check ids: {e:#}"),
                );
                None
            }
        }
    }

    fn check_result(
        &mut self,
        key: &str,
        seed: Option<&str>,
        i: u64,
        v: &Value,
        ids: Option<&Ids>,
    ) {
        let Value::Object(obj) = v else {
            self.report(
                "not_an_object",
                Some(key),
                seed,
                Some(i),
                format!(
                    "is {}, expected an object {{image_id, category_id, bbox, score}}",
                    kind_of(v)
                ),
            );
            return;
        };
        let problem =
            |c: &mut Self, kind, msg: String| c.report(kind, Some(key), seed, Some(i), msg);
        for field in ["image_id", "category_id", "bbox", "score"] {
            if !obj.contains_key(field) {
                problem(self, "missing_field", format!("has no '{field}'"));
            }
        }
        let file = ids
            .map(|d| d.file.display().to_string())
            .unwrap_or_default();
        if let Some(v) = obj.get("image_id") {
            match v.as_u64() {
                None => problem(
                    self,
                    "bad_image_id",
                    format!("image_id {v} is not a non-negative integer"),
                ),
                Some(id) if ids.is_some_and(|d| !d.images.contains(&id)) => problem(
                    self,
                    "unknown_image_id",
                    format!("image_id {id} is not an image of {file}"),
                ),
                _ => {}
            }
        }
        if let Some(v) = obj.get("category_id") {
            match v.as_u64() {
                None => problem(
                    self,
                    "bad_category_id",
                    format!("category_id {v} is not a non-negative integer"),
                ),
                Some(id) if ids.is_some_and(|d| !d.categories.contains(&id)) => {
                    let valid = ids.map(|d| id_list(&d.categories)).unwrap_or_default();
                    problem(
                        self,
                        "unknown_category_id",
                        format!("category_id {id} is not a category of {file} (valid: {valid})"),
                    )
                }
                _ => {}
            }
        }
        if let Some(v) = obj.get("bbox") {
            match v.as_array() {
                Some(b) if b.len() == 4 => {
                    let names = ["x", "y", "width", "height"];
                    let mut nums = [0.0; 4];
                    let mut ok = true;
                    for (k, (x, name)) in b.iter().zip(names).enumerate() {
                        match number(x) {
                            Ok(n) => nums[k] = n,
                            Err(what) => {
                                ok = false;
                                let kind = if matches!(x, Value::String(_) | Value::Null) {
                                    "non_finite_bbox"
                                } else {
                                    "bad_bbox"
                                };
                                problem(self, kind, format!("bbox[{k}] ({name}) is {what}"));
                            }
                        }
                    }
                    if ok {
                        for (k, name) in [(2, "width"), (3, "height")] {
                            if nums[k] < 0.0 {
                                problem(
                                    self,
                                    "negative_size",
                                    format!("bbox {name} is negative ({}) in {v}", nums[k]),
                                );
                            }
                        }
                    }
                }
                Some(b) => problem(
                    self,
                    "bad_bbox",
                    format!(
                        "bbox has {} numbers, expected 4 [x, y, width, height]",
                        b.len()
                    ),
                ),
                None => problem(
                    self,
                    "bad_bbox",
                    format!(
                        "bbox is {}, expected a list [x, y, width, height]",
                        kind_of(v)
                    ),
                ),
            }
        }
        if let Some(v) = obj.get("score") {
            if let Err(what) = number(v) {
                let kind = if matches!(v, Value::String(_) | Value::Null) {
                    "non_finite_score"
                } else {
                    "bad_score"
                };
                problem(self, kind, format!("score is {what}"));
            }
        }
    }
}

/// A finite number, or what the value is instead (`NaN`, `Infinity`, `null`, `a string`, ...).
fn number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("{n}, not a finite number")),
        Value::String(s) if matches!(s.as_str(), "NaN" | "-NaN" | "Infinity" | "-Infinity") => {
            Err(s.clone())
        }
        Value::Null => Err("null (not a number; JSON encoders write NaN as null)".into()),
        other => Err(format!("{}, not a number", kind_of(other))),
    }
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(a) => format!("a list of {}", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// `1, 2, 3` for a few ids, `1..=K (K ids)` for a contiguous range, else the first ones.
fn id_list(ids: &BTreeSet<u64>) -> String {
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return "none".into();
    };
    if ids.len() <= 12 {
        return ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
    }
    if last - first + 1 == ids.len() as u64 {
        return format!("{first}..={last}");
    }
    format!("{} ids from {first} to {last}", ids.len())
}

fn read_ids(path: &Path) -> anyhow::Result<(HashSet<u64>, BTreeSet<u64>)> {
    use anyhow::Context;
    #[derive(serde::Deserialize)]
    struct Id {
        id: u64,
    }
    #[derive(serde::Deserialize)]
    struct Ids {
        images: Vec<Id>,
        categories: Vec<Id>,
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let ids: Ids = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a valid COCO file", path.display()))?;
    Ok((
        ids.images.into_iter().map(|i| i.id).collect(),
        ids.categories.into_iter().map(|c| c.id).collect(),
    ))
}

/// Checks the submission file at `path`.
pub fn check_file(path: &Path, opts: &CheckOptions) -> anyhow::Result<CheckReport> {
    use anyhow::Context;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = BareWordsQuoted::new(BufReader::with_capacity(1 << 16, file));
    let mut checker = Checker {
        opts,
        problems: Vec::new(),
        shown: BTreeMap::new(),
        counts: BTreeMap::new(),
        not_shown: 0,
        tasks: Vec::new(),
        at: (None, None),
        at_index: None,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = de
        .deserialize_any(TopVisitor(&mut checker))
        .and_then(|()| de.end());
    if let Err(e) = parsed {
        let (task, seed) = checker.at.clone();
        let index = checker.at_index;
        let message = if e.is_io() {
            return Err(e).with_context(|| format!("reading {}", path.display()));
        } else {
            format!("invalid JSON: {e}")
        };
        checker.report(
            "invalid_json",
            task.as_deref(),
            seed.as_deref(),
            index,
            message,
        );
    }
    finish(checker, path)
}

fn finish(mut c: Checker, path: &Path) -> anyhow::Result<CheckReport> {
    let lists: Vec<String> = c
        .tasks
        .iter()
        .filter(|(_, t)| matches!(t, TaskContent::Results { .. }))
        .map(|(k, _)| k.clone())
        .collect();
    let seeded: Vec<String> = c
        .tasks
        .iter()
        .filter(|(_, t)| matches!(t, TaskContent::Seeds { .. }))
        .map(|(k, _)| k.clone())
        .collect();
    let track = match (lists.is_empty(), seeded.is_empty()) {
        (false, true) => Some("zero-shot/full-shot".to_string()),
        (true, false) => Some("few-shot".to_string()),
        (false, false) => {
            c.report(
                "mixed_tracks",
                None,
                None,
                None,
                format!(
                    "tasks {} are results lists (zero-/full-shot) but {} are seed objects (few-shot)",
                    lists.join(", "),
                    seeded.join(", ")
                ),
            );
            None
        }
        (true, true) => None,
    };
    if let Some(want) = c.opts.track {
        let (wrong, shape) = match want {
            Track::FewShot => (
                &lists,
                "a results list, expected seed objects {\"3\": [...], ...} for few-shot",
            ),
            _ => (
                &seeded,
                "a seed object, expected a results list for zero-/full-shot",
            ),
        };
        for k in wrong.clone() {
            c.report("wrong_shape", Some(&k), None, None, format!("is {shape}"));
        }
    }
    if let Some(suite) = c.opts.suite {
        let present: BTreeSet<String> = c.tasks.iter().map(|(k, _)| k.clone()).collect();
        for t in registry::tasks(suite) {
            let key = c.opts.keys.key(&t.name);
            if !present.contains(&key) {
                c.report(
                    "missing_task",
                    Some(&key),
                    None,
                    None,
                    format!("is missing (required by --suite {})", suite.name()),
                );
            }
        }
    }
    let total: u64 = c.counts.values().sum();
    Ok(CheckReport {
        file: path.display().to_string(),
        valid: total == 0,
        track,
        tasks: c.tasks,
        problems: c.problems,
        problem_counts: c.counts,
        problems_not_shown: c.not_shown,
    })
}

struct TopVisitor<'c, 'o>(&'c mut Checker<'o>);

impl<'de> Visitor<'de> for TopVisitor<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object {task: results}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let c = self.0;
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            c.at = (Some(key.clone()), None);
            c.at_index = None;
            if !seen.insert(key.clone()) {
                c.report(
                    "duplicate_task",
                    Some(&key),
                    None,
                    None,
                    "appears twice in the file".into(),
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let Some(task) = c.opts.keys.task(&key) else {
                let hint = match c.opts.keys.suggest(&key) {
                    Some(k) => format!("; did you mean '{k}'?"),
                    None => " (valid keys: `odinw list`)".to_string(),
                };
                c.report(
                    "unknown_task",
                    Some(&key),
                    None,
                    None,
                    format!("is not a task key{hint}"),
                );
                map.next_value::<IgnoredAny>()?;
                c.tasks.push((
                    key,
                    TaskContent::Invalid {
                        invalid: "unknown task key".into(),
                    },
                ));
                continue;
            };
            let ids = c.load_ids(&key, task);
            let content = map.next_value_seed(TaskSeed {
                c: &mut *c,
                key: &key,
                ids: ids.as_ref(),
            })?;
            c.at = (None, None);
            c.tasks.push((key, content));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.0.report(
            "wrong_shape",
            None,
            None,
            None,
            "the file is a list; a submission is an object {\"<task>\": [results] or {\"<seed>\": [results]}}".into(),
        );
        Ok(())
    }
}

/// One task's value: a results list (zero-/full-shot) or a seed object (few-shot).
struct TaskSeed<'a, 'o> {
    c: &'a mut Checker<'o>,
    key: &'a str,
    ids: Option<&'a Ids>,
}

impl<'de> DeserializeSeed<'de> for TaskSeed<'_, '_> {
    type Value = TaskContent;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TaskContent, D::Error> {
        d.deserialize_any(self)
    }
}

/// Records that a task's (or seed's) value has the wrong type.
macro_rules! wrong_type {
    ($($method:ident($t:ty)),*) => {$(
        fn $method<E: serde::de::Error>(self, v: $t) -> Result<Self::Value, E> {
            Ok(self.wrong(&Value::from(v)))
        }
    )*};
}

impl TaskSeed<'_, '_> {
    fn wrong(self, v: &Value) -> TaskContent {
        self.c.report(
            "wrong_shape",
            Some(self.key),
            None,
            None,
            format!(
                "is {}, expected a results list or a seed object {{\"3\": [...], ...}}",
                kind_of(v)
            ),
        );
        TaskContent::Invalid {
            invalid: kind_of(v),
        }
    }
}

impl<'de> Visitor<'de> for TaskSeed<'_, '_> {
    type Value = TaskContent;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a results list or a seed object")
    }
    wrong_type!(
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_f64(f64),
        visit_str(&str)
    );
    fn visit_unit<E: serde::de::Error>(self) -> Result<TaskContent, E> {
        Ok(self.wrong(&Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TaskContent, A::Error> {
        let results = check_results(self.c, self.key, None, self.ids, seq)?;
        Ok(TaskContent::Results { results })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TaskContent, A::Error> {
        let (c, key) = (self.c, self.key);
        let required = c.opts.seeds.clone();
        let mut seeds = BTreeMap::new();
        while let Some(seed) = map.next_key::<String>()? {
            c.at = (Some(key.to_string()), Some(seed.clone()));
            c.at_index = None;
            if seeds.contains_key(&seed) {
                c.report(
                    "duplicate_seed",
                    Some(key),
                    Some(&seed),
                    None,
                    "appears twice".into(),
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if !required.contains(&seed) {
                c.report(
                    "unknown_seed",
                    Some(key),
                    Some(&seed),
                    None,
                    format!("is not a required seed ({})", required.join(", ")),
                );
            }
            let n = map.next_value_seed(SeedList {
                c: &mut *c,
                key,
                seed: &seed,
                ids: self.ids,
            })?;
            seeds.insert(seed, n);
        }
        for s in &required {
            if !seeds.contains_key(s) {
                c.report(
                    "missing_seed",
                    Some(key),
                    Some(s),
                    None,
                    format!(
                        "is missing (few-shot tasks need seeds {})",
                        required.join(", ")
                    ),
                );
            }
        }
        Ok(TaskContent::Seeds { seeds })
    }
}

/// The results list of one seed.
struct SeedList<'a, 'o> {
    c: &'a mut Checker<'o>,
    key: &'a str,
    seed: &'a str,
    ids: Option<&'a Ids>,
}

impl<'de> DeserializeSeed<'de> for SeedList<'_, '_> {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl SeedList<'_, '_> {
    fn wrong(self, v: &Value) -> u64 {
        self.c.report(
            "wrong_shape",
            Some(self.key),
            Some(self.seed),
            None,
            format!("is {}, expected a results list", kind_of(v)),
        );
        0
    }
}

impl<'de> Visitor<'de> for SeedList<'_, '_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a results list")
    }
    wrong_type!(
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_f64(f64),
        visit_str(&str)
    );
    fn visit_unit<E: serde::de::Error>(self) -> Result<u64, E> {
        Ok(self.wrong(&Value::Null))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(self.wrong(&Value::Object(Default::default())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<u64, A::Error> {
        check_results(self.c, self.key, Some(self.seed), self.ids, seq)
    }
}

/// Checks each result of a list as it is read; returns how many there were.
fn check_results<'de, A: SeqAccess<'de>>(
    c: &mut Checker,
    key: &str,
    seed: Option<&str>,
    ids: Option<&Ids>,
    mut seq: A,
) -> Result<u64, A::Error> {
    let mut i = 0;
    loop {
        c.at_index = Some(i);
        let Some(v) = seq.next_element::<Value>()? else {
            break;
        };
        c.check_result(key, seed, i, &v, ids);
        i += 1;
    }
    c.at_index = None;
    Ok(i)
}
