//! Tensor containers with a header: safetensors (header checked, data never read) and GGUF
//! (metadata checked; chat templates analysed as Jinja).

use super::Engine;
use modelward_diagnostics::Location;
use modelward_formats::io::ReadSeek;
use modelward_formats::tensors::Float;
use modelward_formats::tensors::deep::Region;
use modelward_formats::{Format, gguf, safetensors, template};

pub(super) fn safetensors(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, len: u64, loc: &Location) -> Format {
    let report = safetensors::check_capped(r, len, cx.cap());
    cx.facts(report.facts, loc);
    if cx.limits().deep.is_some() {
        let mut regions: Vec<Region<'_>> = report
            .spans
            .iter()
            .map(|t| Region {
                name: &t.name,
                dtype: Float::from_safetensors(&t.dtype),
                begin: t.begin,
                end: t.end,
            })
            .collect();
        regions.extend(report.uncovered.iter().map(|&(begin, end)| Region {
            name: "<bytes no tensor covers>",
            dtype: None,
            begin,
            end,
        }));
        super::deep::sample(cx, r, &regions, loc);
    }
    Format::Safetensors
}

pub(super) fn gguf(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, len: u64, loc: &Location) -> Format {
    let report = gguf::check_capped(r, len, cx.cap());
    cx.facts(report.facts, loc);
    for (key, text, offset) in report.chat_templates {
        for mut f in template::analyse_capped(&text, cx.cap()) {
            f.offset = Some(offset + f.offset.unwrap_or(0));
            f.message = format!("{} (in {key})", f.message);
            cx.fact(f, loc);
        }
    }
    Format::Gguf
}
