//! Text in the report's raster images (the PNG chart, the gallery labels): DejaVu Sans, embedded
//! from `assets/fonts/` (Latin, Greek, Cyrillic, ...), laid out and rasterised with `ab_glyph`
//! and blended into an RGB buffer by coverage.
use ab_glyph::{point, Font, FontRef, GlyphId, PxScale, ScaleFont};
use std::sync::OnceLock;

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The embedded font's family name, for SVG's `font-family`.
pub const FAMILY: &str = "DejaVu Sans";

fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        FontRef::try_from_slice(FONT_BYTES).expect("the embedded DejaVu Sans is a valid font")
    })
}

/// The characters of `text` the font has no glyph for (drawn as the font's empty box).
pub fn missing_glyphs(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| !c.is_control() && font().glyph_id(*c) == GlyphId(0))
        .collect()
}

/// The advance width of `text` at `size` pixels (em height), kerning included.
pub fn width(text: &str, size: f32) -> f32 {
    let f = font().as_scaled(PxScale::from(size));
    let mut w = 0.0;
    let mut prev: Option<GlyphId> = None;
    for c in text.chars() {
        let g = f.glyph_id(c);
        if let Some(p) = prev {
            w += f.kern(p, g);
        }
        w += f.h_advance(g);
        prev = Some(g);
    }
    w
}

/// An RGB buffer (`w · h · 3` bytes, rows top to bottom) to draw into.
pub struct Target<'a> {
    pub px: &'a mut [u8],
    pub w: u32,
    pub h: u32,
}

impl Target<'_> {
    /// Mixes `color` into the pixel at (`x`, `y`) with weight `alpha` (0..1); outside: nothing.
    pub fn blend(&mut self, x: i64, y: i64, color: [u8; 3], alpha: f32) {
        if x < 0 || y < 0 || x >= self.w as i64 || y >= self.h as i64 {
            return;
        }
        let a = alpha.clamp(0.0, 1.0);
        let i = ((y as usize) * self.w as usize + x as usize) * 3;
        for (k, c) in color.iter().enumerate() {
            let old = self.px[i + k] as f32;
            self.px[i + k] = (old + (*c as f32 - old) * a).round() as u8;
        }
    }

    /// Draws `text` with its left end at `x` and its baseline at `y` (pixels), `size` pixels high.
    pub fn text(&mut self, x: f32, y: f32, text: &str, size: f32, color: [u8; 3]) {
        let font = font();
        let f = font.as_scaled(PxScale::from(size));
        let mut pen = x;
        let mut prev: Option<GlyphId> = None;
        for c in text.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                pen += f.kern(p, id);
            }
            let glyph = id.with_scale_and_position(size, point(pen, y));
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    self.blend(
                        b.min.x as i64 + gx as i64,
                        b.min.y as i64 + gy as i64,
                        color,
                        cov,
                    )
                });
            }
            pen += f.h_advance(id);
            prev = Some(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str) -> Vec<u8> {
        let mut px = vec![0xff; 200 * 30 * 3];
        Target {
            px: &mut px,
            w: 200,
            h: 30,
        }
        .text(4.0, 22.0, text, 18.0, [0, 0, 0]);
        px
    }

    #[test]
    fn latin_greek_and_cyrillic_are_covered() {
        assert_eq!(
            missing_glyphs("Żółw Ωμέγα Дорога ± – −"),
            Vec::<char>::new()
        );
        assert_eq!(missing_glyphs("\u{E000}"), vec!['\u{E000}']);
    }

    #[test]
    fn non_ascii_letters_are_drawn_as_themselves() {
        // Each non-ASCII letter gives other pixels than '?' and than its ASCII look-alike
        // (a bitmap font that knows only ASCII draws both as '?').
        for (word, ascii, question) in [
            ("Ωmega", "Omega", "?mega"),
            ("Дом", "Aом", "?ом"),
            ("Żaba", "Zaba", "?aba"),
        ] {
            let w = render(word);
            assert_ne!(w, render(question), "{word}");
            assert_ne!(w, render(ascii), "{word}");
            assert!(w.iter().any(|v| *v < 0x80), "{word} drew nothing");
        }
    }

    #[test]
    fn widths_grow_with_text_and_size() {
        assert!(width("mm", 13.0) > width("m", 13.0));
        assert!((width("abc", 26.0) / width("abc", 13.0) - 2.0).abs() < 0.01);
        assert_eq!(width("", 13.0), 0.0);
    }
}
