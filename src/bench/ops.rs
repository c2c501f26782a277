//! Instructions per useful flop of each kernel's hot loop, counted from the compiled shaders: the
//! WGSL each arithmetic's kernels are built from, parsed and typed by naga (as wgpu does), with
//! every call inlined. A figure that holds on any GPU, where timings on a software adapter do not.
//!
//! A kernel's hot loops are the loops its WGSL marks with `hot_loop();` (calls followed); its ops
//! are the floating-point arithmetic expressions of one iteration of each (each component of a vector counted; exp, log, sqrt, fma and conversions one each;
//! of an `if` on a constant the branch taken, of any other the longer one). Stores and integer
//! arithmetic are not counted; loads from workgroup and storage memory are, apart, one per load
//! instruction whatever its width (a `vec4` load is one: what vector loads of staged values save).
//! Useful flops are the algorithm's per iteration ([`useful_flops`]).

use naga::{AddressSpace, Block, Expression, Handle, Module, Statement, TypeInner};

use crate::gpu::layout::{self, Build};
use crate::gpu::precision::Arith;

/// One kernel's hot loop in one arithmetic.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LoopOps {
    pub kernel: &'static str,
    /// "fast", "exact (two-float)" or "exact (f64)".
    pub arithmetic: &'static str,
    /// Floating-point operations per iteration.
    pub ops: u64,
    /// Loads from workgroup or storage memory per iteration, a vector load counted once.
    pub loads: u64,
    /// Useful flops per iteration.
    pub flops: u64,
}

impl LoopOps {
    pub fn ops_per_flop(&self) -> f64 {
        self.ops as f64 / self.flops as f64
    }

    pub fn loads_per_flop(&self) -> f64 {
        self.loads as f64 / self.flops as f64
    }
}

/// The algorithm's flops per iteration of each kernel's hot loop (a multiply-add is 2).
pub fn useful_flops(kernel: &str) -> u64 {
    match kernel {
        // One multiply-add of y_j = Σ z_i·U[i][j] (`maha_of`'s inner loop).
        "logprob" => 2,
        // That, and one sample of a 4 × 4 tile of the statistics.
        "fused" => 2 + 32,
        // One feature of 4 components: (x − μ)·f, squared and added: 4 each.
        "logprob_diag" => 16,
        // 8 samples × 4 columns of multiply-adds.
        "logprob_tri" => 64,
        // One sample of a 4 × 4 tile: 16 multiply-adds.
        "stats_tri" => 32,
        // One component of the log-sum-exp: L = c + h, Δ = L − L_best, exp, the sum.
        "normalise" => 4,
        // One feature's S1 and S2 multiply-adds.
        "stats" => 4,
        _ => 0,
    }
}

/// The kernels counted, by module.
const KERNELS: [(&str, &[&str]); 3] = [
    ("estep", &["logprob", "logprob_diag", "logprob_tri", "normalise"]),
    ("reduce", &["stats", "stats_tri"]),
    ("fused", &["fused"]),
];

/// Every kernel's hot loop in every arithmetic (fast, two-float, f64).
pub fn count_all() -> Vec<LoopOps> {
    Arith::ALL.into_iter().flat_map(count).collect()
}

/// Every kernel's hot loop in `arith`, built as for a device whose fma rounds once (the usual
/// case; Dekker's split adds about 15 ops per error-free product to the two-float kernels).
pub(crate) fn count(arith: Arith) -> Vec<LoopOps> {
    let build = Build {
        subgroup: None,
        exact_fma: true,
        arith,
    };
    let mut out = Vec::new();
    for (module_name, kernels) in KERNELS {
        let source = match module_name {
            "estep" => layout::estep_source(build),
            "reduce" => layout::reduce_source(build),
            _ => layout::fused_source(build),
        };
        let module = naga::front::wgsl::parse_str(&source).expect("the kernels parse (a unit test checks)");
        let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::FLOAT64)
            .validate(&module)
            .expect("the kernels validate (a unit test checks)");
        for &kernel in kernels {
            let (index, entry) = module
                .entry_points
                .iter()
                .enumerate()
                .find(|(_, e)| e.name == kernel)
                .expect("every counted kernel is an entry point");
            let walker = Walker {
                module: &module,
                info: &info,
            };
            let mut loops = Vec::new();
            walker.block(
                &entry.function,
                info.get_entry_point(index),
                &entry.function.body,
                &mut loops,
            );
            let hot = loops.iter().filter(|&&(hot, _)| hot).map(|&(_, cost)| cost);
            let cost = hot.fold(Cost::default(), |a, b| a + b);
            out.push(LoopOps {
                kernel,
                arithmetic: arith.name(),
                ops: cost.ops,
                loads: cost.loads,
                flops: useful_flops(kernel),
            });
        }
    }
    out
}

/// What one stretch of code executes: floating-point ops, and loads from workgroup or storage
/// memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cost {
    ops: u64,
    loads: u64,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, other: Cost) -> Cost {
        Cost {
            ops: self.ops + other.ops,
            loads: self.loads + other.loads,
        }
    }
}

impl Cost {
    /// Of two branches, the one with more ops (then more loads).
    fn longer(self, other: Cost) -> Cost {
        if (other.ops, other.loads) > (self.ops, self.loads) {
            other
        } else {
            self
        }
    }
}

struct Walker<'m> {
    module: &'m Module,
    info: &'m naga::valid::ModuleInfo,
}

impl Walker<'_> {
    /// The straight-line cost of `block` (nested loops excluded: each is pushed to `loops` as
    /// (whether it is marked hot, cost per iteration)).
    fn block(
        &self,
        func: &naga::Function,
        fi: &naga::valid::FunctionInfo,
        block: &Block,
        loops: &mut Vec<(bool, Cost)>,
    ) -> Cost {
        let mut cost = Cost::default();
        for statement in block.iter() {
            cost = cost
                + match statement {
                    Statement::Emit(range) => range.clone().fold(Cost::default(), |c, h| {
                        c + Cost {
                            ops: self.expression(func, fi, h),
                            loads: self.memory_load(func, fi, h),
                        }
                    }),
                    Statement::Block(b) => self.block(func, fi, b, loops),
                    Statement::If {
                        condition,
                        accept,
                        reject,
                    } => match self.constant_bool(func, *condition) {
                        Some(true) => self.block(func, fi, accept, loops),
                        Some(false) => self.block(func, fi, reject, loops),
                        None => self
                            .block(func, fi, accept, loops)
                            .longer(self.block(func, fi, reject, loops)),
                    },
                    Statement::Switch { cases, .. } => cases
                        .iter()
                        .map(|c| self.block(func, fi, &c.body, loops))
                        .fold(Cost::default(), Cost::longer),
                    Statement::Loop { body, continuing, .. } => {
                        let per_iteration = self.block(func, fi, body, loops) + self.block(func, fi, continuing, loops);
                        loops.push((self.is_hot(body), per_iteration));
                        Cost::default()
                    }
                    Statement::Call { function, .. } => {
                        let callee = &self.module.functions[*function];
                        self.block(callee, &self.info[*function], &callee.body, loops)
                    }
                    _ => Cost::default(),
                };
        }
        cost
    }

    /// Whether a loop's body calls `hot_loop` (naga puts the loop's condition first, then the body).
    fn is_hot(&self, body: &Block) -> bool {
        body.iter().any(|s| match s {
            Statement::Call { function, .. } => self.module.functions[*function].name.as_deref() == Some("hot_loop"),
            Statement::Block(b) => self.is_hot(b),
            _ => false,
        })
    }

    /// A boolean known at compile time: a literal or a module constant.
    fn constant_bool(&self, func: &naga::Function, h: Handle<Expression>) -> Option<bool> {
        let literal = |e: &Expression| match e {
            Expression::Literal(naga::Literal::Bool(b)) => Some(*b),
            _ => None,
        };
        match &func.expressions[h] {
            Expression::Constant(c) => literal(&self.module.global_expressions[self.module.constants[*c].init]),
            e => literal(e),
        }
    }

    /// 1 for a load from workgroup or storage memory (a whole vector or matrix at once), else 0.
    fn memory_load(&self, func: &naga::Function, fi: &naga::valid::FunctionInfo, h: Handle<Expression>) -> u64 {
        let Expression::Load { pointer } = func.expressions[h] else {
            return 0;
        };
        let space = match fi[pointer].ty.inner_with(&self.module.types) {
            TypeInner::Pointer { space, .. } | TypeInner::ValuePointer { space, .. } => *space,
            _ => return 0,
        };
        u64::from(matches!(space, AddressSpace::WorkGroup | AddressSpace::Storage { .. }))
    }

    /// The floating-point operations of one expression (its components, for a vector).
    fn expression(&self, func: &naga::Function, fi: &naga::valid::FunctionInfo, h: Handle<Expression>) -> u64 {
        let float_lanes = |h: Handle<Expression>| -> u64 {
            match fi[h].ty.inner_with(&self.module.types) {
                TypeInner::Scalar(s) if s.kind == naga::ScalarKind::Float => 1,
                TypeInner::Vector { size, scalar } if scalar.kind == naga::ScalarKind::Float => *size as u64,
                _ => 0,
            }
        };
        match &func.expressions[h] {
            // Comparisons too (their operands are floats, their result is not).
            Expression::Binary { left, .. } => float_lanes(*left),
            Expression::Unary { expr, .. } => float_lanes(*expr),
            Expression::Math { arg, .. } => float_lanes(*arg),
            Expression::Select { accept, .. } => float_lanes(*accept),
            // A conversion to or from a float (one to its own type is free: `Stage4(v)` in the
            // f32 preludes).
            Expression::As { expr, .. } => {
                let (from, to) = (
                    fi[*expr].ty.inner_with(&self.module.types),
                    fi[h].ty.inner_with(&self.module.types),
                );
                if from == to {
                    0
                } else {
                    float_lanes(h).max(float_lanes(*expr))
                }
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fast kernels' inner loops: by hand from shaders/precision_fast.wgsl. logprob_tri: 32
    /// `mac`s (8 samples × 4 columns), one fma each, fed by 3 loads (two quads of z, one of U);
    /// stats_tri: 16 `run_mac`s, one fma each, fed by 2 (a quad of the row window, one of the
    /// column window). So 0.5 ops per flop; the exact kernels are far above. normalise: Δ from
    /// c's high parts and h, which holds c's low part (two subtractions and an add), the skip
    /// test, exp and the sum: 6 ops for 4 flops, fed by 2 loads (c_k and h_k).
    #[test]
    fn fast_inner_loops_are_one_fma_per_multiply_add() {
        let fast = count(Arith::Fast);
        let of = |k: &str| fast.iter().find(|l| l.kernel == k).unwrap().clone();
        assert_eq!(of("logprob_tri").ops, 32, "{:?}", of("logprob_tri"));
        assert_eq!(of("stats_tri").ops, 16, "{:?}", of("stats_tri"));
        assert_eq!(of("logprob_tri").loads, 3, "{:?}", of("logprob_tri"));
        assert_eq!(of("stats_tri").loads, 2, "{:?}", of("stats_tri"));
        // Fast's logprob loads no factor low part: one load (the factor) per multiply-add.
        assert_eq!(of("logprob").loads, 1, "{:?}", of("logprob"));
        assert_eq!(of("normalise").ops, 6, "{:?}", of("normalise"));
        assert_eq!(of("normalise").loads, 2, "{:?}", of("normalise"));
        let exact = count(Arith::TwoFloat);
        for (f, e) in fast.iter().zip(&exact) {
            println!(
                "{:<13} fast {:>4} ops / {:>2} flops = {:.2}, {} loads; two-float {:>4} = {:.1}, {} loads",
                f.kernel,
                f.ops,
                f.flops,
                f.ops_per_flop(),
                f.loads,
                e.ops,
                e.ops_per_flop(),
                e.loads
            );
            assert!(e.ops > 4 * f.ops, "{f:?} against {e:?}");
        }
    }
}
