//! One switch between a pipeline's two ways of running its graphs, shared by every family:
//! through host memory, or through ONNX Runtime's I/O binding ([`super::IoBinding`]: on by
//! default for CUDA and TensorRT), where one graph's outputs stay in the device's memory for the
//! next graph ([`run_kept`]), only the outputs a pipeline reads are computed and copied back
//! ([`run_to_host`]), and the tensors a task feeds every batch unchanged (a prompt's text
//! features, OWLv2's query embeddings) are copied to the device once per batch size
//! ([`BatchConstants`]). Both ways run the same kernels on CPU, so their predictions are equal
//! byte for byte there.
use super::batch_axis;
use super::session::{DeviceTensor, Graph, Input, Tensor};
use anyhow::{anyhow, bail, Result};
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// A graph output: in host memory, or left in the device's memory (I/O binding).
pub enum Kept {
    Host(Tensor),
    Device(DeviceTensor),
}

impl Kept {
    /// This output as the next graph's input, without a copy.
    pub fn input(&self) -> Input<'_> {
        match self {
            Kept::Host(t) => Input::Host(t),
            Kept::Device(t) => Input::Device(t),
        }
    }
}

/// Runs `graph` with every output kept: with `bound` in the device's memory, else in host memory.
pub fn run_kept(
    graph: &mut Graph,
    inputs: &[(&str, Input)],
    bound: bool,
) -> Result<Vec<(String, Kept)>> {
    if bound {
        let out = graph.run_on_device(inputs)?;
        return Ok(out.into_iter().map(|(n, t)| (n, Kept::Device(t))).collect());
    }
    let out = graph.run(&host_inputs(graph, inputs)?)?;
    Ok(out.into_iter().map(|(n, t)| (n, Kept::Host(t))).collect())
}

/// Runs `graph` and returns the `outputs` named, in that order, in host memory: with `bound`
/// through I/O binding (the graph computes only those), else through host memory.
pub fn run_to_host(
    graph: &mut Graph,
    inputs: &[(&str, Input)],
    outputs: &[&str],
    bound: bool,
) -> Result<Vec<(String, Tensor)>> {
    if bound {
        return graph.run_to_host(inputs, outputs);
    }
    let mut all = graph.run(&host_inputs(graph, inputs)?)?;
    outputs
        .iter()
        .map(|name| {
            let i = all
                .iter()
                .position(|(n, _)| n == name)
                .ok_or_else(|| anyhow!("{}: no output {name}", graph.path().display()))?;
            Ok(all.swap_remove(i))
        })
        .collect()
}

/// The host tensors of `inputs` (a device tensor here is a pipeline's mistake: the host path
/// never makes one).
fn host_inputs<'a>(
    graph: &Graph,
    inputs: &[(&'a str, Input<'a>)],
) -> Result<Vec<(&'a str, &'a Tensor)>> {
    inputs
        .iter()
        .map(|(n, i)| match i {
            Input::Host(t) => Ok((*n, *t)),
            Input::Device(_) => bail!(
                "{}: input {n} is in device memory on the host path",
                graph.path().display()
            ),
        })
        .collect()
}

/// Named tensors every batch of a task feeds one graph unchanged: either `[1, ...]` tensors
/// repeated along the batch axis to each batch's size (GLIP's text features), or tensors fed as
/// they are to any batch (OWLv2's `[queries, D]` embeddings). Each batch size's tensors are made
/// once, and with I/O binding copied into the graph's device memory once and kept there.
pub struct BatchConstants {
    names: Vec<String>,
    tensors: Vec<Tensor>,
    repeat: bool,
    /// Repeated to a batch size (only with `repeat`, sizes other than 1).
    repeated: HashMap<usize, Vec<Tensor>>,
    /// In the device's memory, by batch size (one entry without `repeat`).
    on_device: HashMap<usize, Vec<DeviceTensor>>,
}

impl BatchConstants {
    /// `[1, ...]` tensors, repeated to each batch's size.
    pub fn repeated(tensors: Vec<(String, Tensor)>) -> Result<Self> {
        if let Some((n, t)) = tensors.iter().find(|(_, t)| t.shape().first() != Some(&1)) {
            bail!("{n}: expected a batch of one, got shape {:?}", t.shape());
        }
        Ok(Self::new(tensors, true))
    }

    /// Tensors fed as they are to every batch.
    pub fn shared(tensors: Vec<(String, Tensor)>) -> Self {
        Self::new(tensors, false)
    }

    fn new(tensors: Vec<(String, Tensor)>, repeat: bool) -> Self {
        let (names, tensors) = tensors.into_iter().unzip();
        BatchConstants {
            names,
            tensors,
            repeat,
            repeated: HashMap::new(),
            on_device: HashMap::new(),
        }
    }

    /// The tensor named `name` as given (batch of one for repeated constants).
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.tensors[i])
    }

    /// The inputs for a batch of `b` images of `graph`: host tensors, or with `bound` their
    /// copies in `graph`'s device memory (made on a batch size's first use).
    pub fn inputs(
        &mut self,
        graph: &Graph,
        b: usize,
        bound: bool,
    ) -> Result<Vec<(&str, Input<'_>)>> {
        let key = if self.repeat { b } else { 1 };
        if key != 1 && !self.repeated.contains_key(&key) {
            let r = self
                .tensors
                .iter()
                .map(|t| batch_axis::repeat(t, key))
                .collect::<Result<Vec<_>>>()?;
            self.repeated.insert(key, r);
        }
        let host = if key == 1 {
            &self.tensors
        } else {
            &self.repeated[&key]
        };
        let names = self.names.iter().map(String::as_str);
        if !bound {
            return Ok(names.zip(host.iter().map(Input::Host)).collect());
        }
        if let Entry::Vacant(e) = self.on_device.entry(key) {
            let up = host
                .iter()
                .map(|t| graph.upload(t))
                .collect::<Result<Vec<_>>>()?;
            e.insert(up);
        }
        Ok(names
            .zip(self.on_device[&key].iter().map(Input::Device))
            .collect())
    }

    /// How many batch sizes have device copies (for tests of the upload-once rule).
    pub fn device_copies(&self) -> usize {
        self.on_device.len()
    }
}
