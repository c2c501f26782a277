//! Per-sample outputs of a model, block by block: the CPU twin of shaders/infer.wgsl (labels as
//! the largest weighted log-density, log p by log-sum-exp, responsibilities normalised), in f64.

use crate::backend::Output;
use crate::data::Element;

use super::Task;
use super::block::{BLOCK, CHUNKS, Packed};
use super::estep;
use super::lanes::W;

/// Per-sample outputs of one task's samples into `out` (its rows of the whole output).
#[inline(always)]
pub(super) fn task_outputs<T: Element>(rows: &[T], p: &Packed, task: &mut Task, output: Output, out: &mut [f64]) {
    let per = if output == Output::Proba { p.k } else { 1 };
    let block = &mut task.block;
    for first in (task.start..task.end).step_by(BLOCK) {
        let n = BLOCK.min(task.end - first);
        block.load(rows, p.d, None, first, n);
        estep::log_densities(p, block);
        let o = &mut out[(first - task.start) * per..(first - task.start + n) * per];
        if output == Output::Labels {
            for ch in 0..block.chunks {
                let at = estep::argmax(p.k, block, ch);
                for (l, &v) in at.iter().enumerate() {
                    if ch * W + l < n {
                        o[ch * W + l] = v;
                    }
                }
            }
            continue;
        }
        estep::normalise(p.k, block);
        for (i, o) in o.chunks_exact_mut(per).enumerate() {
            let (ch, l) = (i / W, i % W);
            match output {
                Output::LogProb => o[0] = block.score[ch].0[l],
                _ => o
                    .iter_mut()
                    .enumerate()
                    .for_each(|(k, o)| *o = block.resp[k * CHUNKS + ch].0[l]),
            }
        }
    }
}
