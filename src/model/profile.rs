//! TensorRT optimisation profiles of a model's three graphs: the range of shapes each engine is
//! built for. A dynamic-canvas model's image graphs cover every canvas GLIP's resize rule can
//! give (each side from 32 up to `max_size` rounded up to the size divisibility, portrait and
//! landscape alike), optimised for the landscape canvas `min_size x max_size` (800x1344 for
//! GLIP-T); batch from 1 to the run's batch; text from 2 tokens to `max_text_len`.
use super::ModelSpec;
use crate::engine::TrtProfile;

/// Profiles of `image_backbone`, `text_encoder` and `head`, in that order; `None` when
/// `model.json` does not give the channel counts the head's profile needs.
pub fn trt_profiles(spec: &ModelSpec, max_batch: usize) -> Option<[TrtProfile; 3]> {
    let d = spec.preprocess.size_divisibility.max(1);
    let up = |v: u32| v.div_ceil(d) * d;
    let r = &spec.preprocess.resize;
    let [ih, iw] = spec.preprocess.input_size;
    // (height, width) canvases: smallest, optimised-for, largest.
    let canvases = if spec.dynamic_canvas() {
        [
            (d, d),
            (up(r.min_size), up(r.max_size)),
            (up(r.max_size), up(r.max_size)),
        ]
    } else {
        [(ih, iw); 3]
    };
    let batch = [1, max_batch.max(1), max_batch.max(1)];
    let text = [2, spec.text.max_text_len, spec.text.max_text_len];
    let channels = dim(spec, "head", "p3", 1)?;
    let hidden = dim(spec, "head", "text_hidden", 2)?;
    let shapes = |k: usize| {
        let (b, t, (h, w)) = (batch[k], text[k], canvases[k]);
        let backbone = format!("images:{b}x3x{h}x{w}");
        let tokens = format!("input_ids:{b}x{t},attention_mask:{b}x{t}");
        let mut head: Vec<String> = spec
            .levels_for((w, h))
            .iter()
            .map(|l| format!("{}:{b}x{channels}x{}x{}", l.name, l.height, l.width))
            .collect();
        head.push(format!("text_hidden:{b}x{t}x{hidden}"));
        head.push(format!("attention_mask:{b}x{t}"));
        [backbone, tokens, head.join(",")]
    };
    let [lo, opt, hi] = [shapes(0), shapes(1), shapes(2)];
    Some(std::array::from_fn(|g| TrtProfile {
        min: lo[g].clone(),
        opt: opt[g].clone(),
        max: hi[g].clone(),
    }))
}

/// A fixed dimension of a graph input as `model.json` lists it.
fn dim(spec: &ModelSpec, graph: &str, input: &str, axis: usize) -> Option<u64> {
    spec.graphs
        .get(graph)?
        .inputs
        .iter()
        .find(|t| t.name == input)?
        .shape
        .get(axis)?
        .as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_profiles_cover_every_canvas_of_its_resize_rule() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo/model.json");
        let spec: ModelSpec =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let [backbone, text, head] = trt_profiles(&spec, 4).unwrap();
        assert_eq!(backbone.min, "images:1x3x32x32");
        assert_eq!(backbone.opt, "images:4x3x192x192");
        assert_eq!(backbone.max, "images:4x3x192x192");
        assert_eq!(text.max, "input_ids:4x48,attention_mask:4x48");
        assert_eq!(
            head.min,
            "p3:1x32x4x4,p4:1x32x2x2,p5:1x32x1x1,p6:1x32x1x1,p7:1x32x1x1,text_hidden:1x2x64,attention_mask:1x2"
        );
        assert!(head.max.starts_with("p3:4x32x24x24,"), "{}", head.max);
    }
}
