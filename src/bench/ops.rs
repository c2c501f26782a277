//! Instructions per useful flop of each kernel's hot loop, counted from the compiled shaders: the
//! WGSL each arithmetic's kernels are built from, parsed and typed by naga (as wgpu does), with
//! every call inlined. A figure that holds on any GPU, where timings on a software adapter do not.
//!
//! A kernel's hot loops are the loops its WGSL marks with `hot_loop();` (calls followed); its ops
//! are the floating-point arithmetic expressions of one iteration of each (each component of a
//! vector counted, a scalar times a vector too; exp, log, sqrt, fma and conversions one each; of an
//! `if` on a constant the branch taken, of any other the longer one; nothing past a `return` that
//! every path takes). Stores and integer arithmetic are not counted; loads from workgroup and
//! storage memory are, apart, one per load instruction whatever its width (a `vec4` load is one:
//! what vector loads of staged values save). Useful flops are the algorithm's per iteration
//! ([`useful_flops`]).

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

/// A module's WGSL for a build.
type Source = fn(Build) -> String;

/// The kernels counted, by module (the fused one's WGSL holds the other two's too: each kernel is
/// counted in its own).
const KERNELS: [(Source, &[&str]); 3] = [
    (
        layout::estep_source,
        &["logprob", "logprob_diag", "logprob_tri", "normalise"],
    ),
    (layout::reduce_source, &["stats", "stats_tri"]),
    (layout::fused_source, &["fused"]),
];

/// Every kernel's hot loop in every arithmetic (fast, two-float, f64).
pub fn count_all() -> Vec<LoopOps> {
    Arith::ALL.into_iter().flat_map(count).collect()
}

/// Every kernel's hot loop in `arith`, built as for a device whose fma rounds once (the usual
/// case; Dekker's split adds 18 ops per error-free product to the two-float kernels).
pub(crate) fn count(arith: Arith) -> Vec<LoopOps> {
    let build = Build {
        subgroup: None,
        exact_fma: true,
        arith,
    };
    let mut out = Vec::new();
    for (source, kernels) in KERNELS {
        let source = source(build);
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
            let _ = walker.block(
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
    /// Of two branches, the one with more ops (then more loads; of equal ones either).
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
    /// (whether it is marked hot, cost per iteration)), and whether it always leaves early (a
    /// `return`, `break` or `continue` on every path: what follows in the enclosing block is dead,
    /// as is `two_prod`'s Dekker split after its `if EXACT_FMA { return … }`).
    fn block(
        &self,
        func: &naga::Function,
        fi: &naga::valid::FunctionInfo,
        block: &Block,
        loops: &mut Vec<(bool, Cost)>,
    ) -> (Cost, bool) {
        let mut cost = Cost::default();
        for statement in block.iter() {
            let (more, leaves) = match statement {
                Statement::Emit(range) => {
                    let emitted = range.clone().fold(Cost::default(), |c, h| {
                        c + Cost {
                            ops: self.expression(func, fi, h),
                            loads: self.memory_load(func, fi, h),
                        }
                    });
                    (emitted, false)
                }
                Statement::Block(b) => self.block(func, fi, b, loops),
                Statement::If {
                    condition,
                    accept,
                    reject,
                } => match self.constant_bool(func, *condition) {
                    Some(true) => self.block(func, fi, accept, loops),
                    Some(false) => self.block(func, fi, reject, loops),
                    None => {
                        let (a, a_leaves) = self.block(func, fi, accept, loops);
                        let (r, r_leaves) = self.block(func, fi, reject, loops);
                        (a.longer(r), a_leaves && r_leaves)
                    }
                },
                Statement::Switch { cases, .. } => {
                    let longest = cases
                        .iter()
                        .map(|c| self.block(func, fi, &c.body, loops).0)
                        .fold(Cost::default(), Cost::longer);
                    (longest, false)
                }
                Statement::Loop { body, continuing, .. } => {
                    let per_iteration = self.block(func, fi, body, loops).0 + self.block(func, fi, continuing, loops).0;
                    loops.push((self.is_hot(body), per_iteration));
                    (Cost::default(), false)
                }
                // A return in the callee leaves the callee only.
                Statement::Call { function, .. } => {
                    let callee = &self.module.functions[*function];
                    (self.block(callee, &self.info[*function], &callee.body, loops).0, false)
                }
                Statement::Return { .. } | Statement::Break | Statement::Continue | Statement::Kill => {
                    (Cost::default(), true)
                }
                _ => (Cost::default(), false),
            };
            cost = cost + more;
            if leaves {
                return (cost, true);
            }
        }
        (cost, false)
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
            // r·v with a scalar r is one expression of a vector's lanes (naga does not splat r).
            Expression::Binary { left, right, .. } => float_lanes(*left).max(float_lanes(*right)),
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

    /// A kernel, its useful flops and its (ops, loads) in fast, two-float and f64.
    type Pinned = (&'static str, u64, [(u64, u64); 3]);

    /// Every kernel's hot loop in every arithmetic, pinned: (kernel, useful flops, (ops, loads) in
    /// fast, two-float and f64). Derived by hand from the WGSL, from the helpers' costs that
    /// `helpers_by_hand` pins (two-float, fma rounding once: two_sum 8, two_prod 4, df_add 18,
    /// df_fma2 18, run_mac 22, diag_term 69 ops and 4 loads, exp_df 109):
    /// - logprob (`maha_of`'s inner loop, one `mac` and one `load_factor`): fast, one fma and the
    ///   factor's load, 1/1; two-float, df_fma2 and the factor's two parts, 18/2; f64, the two
    ///   parts widened (2 conversions) and added, then one fma, 4/2.
    /// - logprob_diag (a staged feature, 1 load, then 4 `diag_term`s): fast, (x − μ_hi) − μ_lo,
    ///   ·f and an fma, 4 ops on 3 loads each: 16/13; two-float 4 × 69 = 276, 1 + 4 × 4 = 17
    ///   loads; f64, the three of x, μ_hi, μ_lo widened and subtracted (5), the factor's parts
    ///   widened and added (3), a product and an fma: 4 × 10 = 40/17.
    /// - logprob_tri: 32 `mac`s on 3 loads (two staged z quads, one U quad; a two-float quad is
    ///   one `mat2x4` load): 32, 32 × 18 = 576, 32.
    /// - normalise (`lse_term`, the stored e, `lse_add`; loads c_k, h_k and, where kept, their low
    ///   parts): fast, Δ in 3 ops, the skip test, exp and the sum's add, 6/2; two-float, Δ from
    ///   3 two_sums (2 with a negation: 26) and its low part (5), exp_df 109, prob_parts' add
    ///   and df_add 18: 159/4.
    /// - stats (one feature c: the staged value's load, whose guard `f0 + c < width` is integer,
    ///   and 2 `run_mac`s): 2/1, 2 × 22 = 44/1, 2/1.
    /// - stats_tri (`add_outer`: 16 `run_mac`s, on 2 quad loads): 16, 16 × 22 = 352, 16.
    /// - fused: `maha_of`'s loop (as logprob) plus the statistics loop of shaders/fused.wgsl, in
    ///   fast: r = √(fh's e: 1 load), 1; the row's quad (1 load) less the centres, 4; times r, 4
    ///   (a scalar times a vec4 is 4 products); then the longer branch of the runtime `if
    ///   packed`: the column quad the same way (1 load, 4 + 4) and `add_outer`'s 16 fmas, against
    ///   the diagonal branch's 9. So 1 + (1 + 4 + 4 + 8 + 16) = 34 ops on 1 + 3 = 4 loads. In
    ///   two-float 18 + (1 + 8 + 8 + 16 × 22) = 387 on 2 + 3 = 5 loads; in f64 (e widened, 3;
    ///   each quad widened, 4 conversions) 4 + (3 + 1 + 2 × (4 + 4 + 4) + 16) = 48 on 5.
    ///
    /// Useful flops are [`useful_flops`]'s, written out again.
    const PINNED: [Pinned; 7] = [
        ("logprob", 2, [(1, 1), (18, 2), (4, 2)]),
        ("logprob_diag", 16, [(16, 13), (276, 17), (40, 17)]),
        ("logprob_tri", 64, [(32, 3), (576, 3), (32, 3)]),
        ("normalise", 4, [(6, 2), (159, 4), (41, 4)]),
        ("stats", 4, [(2, 1), (44, 1), (2, 1)]),
        ("stats_tri", 32, [(16, 2), (352, 2), (16, 2)]),
        ("fused", 34, [(34, 4), (387, 5), (48, 5)]),
    ];

    /// `count_all` reports every kernel × arithmetic of [`PINNED`], in that order, with exactly
    /// its ops, loads and flops (counts are integers: no tolerance).
    #[test]
    fn every_kernel_and_arithmetic_pinned() {
        let got = count_all();
        let want: Vec<LoopOps> = Arith::ALL
            .iter()
            .enumerate()
            .flat_map(|(a, arith)| {
                PINNED.iter().map(move |&(kernel, flops, counts)| LoopOps {
                    kernel,
                    arithmetic: arith.name(),
                    ops: counts[a].0,
                    loads: counts[a].1,
                    flops,
                })
            })
            .collect();
        let wrong: Vec<String> = (0..got.len().max(want.len()))
            .filter(|&i| got.get(i) != want.get(i))
            .map(|i| format!("#{i}: counted {:?}, pinned {:?}", got.get(i), want.get(i)))
            .collect();
        assert!(
            wrong.is_empty(),
            "{} of {} differ:\n{}",
            wrong.len(),
            want.len(),
            wrong.join("\n")
        );
        // The ratios `gmm bench` prints, exact in binary: 32/64 and 159/4 ops per flop, and the
        // README's 3/64 = 0.047 and 2/32 = 0.062 loads per flop of the tiled products.
        let at = |kernel: &str, arith: Arith| got.iter().find(|l| l.kernel == kernel && l.arithmetic == arith.name());
        let tri = at("logprob_tri", Arith::Fast).unwrap();
        assert_eq!((tri.ops_per_flop(), tri.loads_per_flop()), (0.5, 0.046875), "{tri:?}");
        let stats = at("stats_tri", Arith::Fast).unwrap();
        assert_eq!(stats.loads_per_flop(), 0.0625, "{stats:?}");
        let lse = at("normalise", Arith::TwoFloat).unwrap();
        assert_eq!(lse.ops_per_flop(), 39.75, "{lse:?}");
    }

    /// The straight-line cost of each function `names` of the E-step module (the precision
    /// prelude's helpers with it) built for `arith`, as a call to it counts.
    fn function_costs(arith: Arith, exact_fma: bool, names: &[&str]) -> Vec<Cost> {
        let build = Build {
            subgroup: None,
            exact_fma,
            arith,
        };
        walk(&layout::estep_source(build), names)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    /// Each function `names` of the WGSL `source`: its straight-line cost and its loops' (whether
    /// hot, cost per iteration).
    fn walk(source: &str, names: &[&str]) -> Vec<(Cost, Vec<(bool, Cost)>)> {
        let module = naga::front::wgsl::parse_str(source).unwrap();
        let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::FLOAT64)
            .validate(&module)
            .unwrap();
        let walker = Walker {
            module: &module,
            info: &info,
        };
        names
            .iter()
            .map(|&name| {
                let (h, f) = module
                    .functions
                    .iter()
                    .find(|(_, f)| f.name.as_deref() == Some(name))
                    .unwrap_or_else(|| panic!("no function {name}"));
                let mut loops = Vec::new();
                let cost = walker.block(f, &info[h], &f.body, &mut loops).0;
                (cost, loops)
            })
            .collect()
    }

    /// One function per rule of the count, with its ops by hand.
    const RULES: &str = "
        fn hot_loop() {}
        var<workgroup> quads: array<vec4<f32>, 4>;
        @group(0) @binding(0) var<storage, read> buf: array<f32>;
        const YES: bool = true;
        // a·v: a scalar times a vector, 4 lanes; + v 4: 8.
        fn lanes(a: f32, v: vec4<f32>) -> vec4<f32> {
            return a * v + v;
        }
        // Integer arithmetic, vectors too: 0.
        fn ints(n: vec4<u32>, k: u32) -> vec4<u32> {
            return n * k + n;
        }
        // A select of vec4s: 4.
        fn pick(v: vec4<f32>, w: vec4<f32>, c: bool) -> vec4<f32> {
            return select(v, w, c);
        }
        // u32 → f32 of a vec4 4, f32 → u32 1, f32 → f32 0, two adds and u32 → f32: 8.
        fn convert(n: vec4<u32>, a: f32, v: vec4<f32>) -> f32 {
            let f = vec4<f32>(n);
            let i = u32(a);
            let same = vec4<f32>(v);
            return f.x + same.y + f32(i);
        }
        // A runtime if: the longer branch, here the else's 3 (ahead of the then's 1 op).
        fn branch(a: f32, c: bool) -> f32 {
            var x = a;
            if c {
                x = x + buf[0];
            } else {
                x = (x * 2.0 + 3.0) * x;
            }
            return x;
        }
        // Equal ops: the branch with more loads (1 op, 1 load).
        fn tie(a: f32, c: bool) -> f32 {
            var x = a;
            if c {
                x = x + 1.0;
            } else {
                x = x + buf[1];
            }
            return x;
        }
        // An if on a constant: its branch, 1, and nothing past its return.
        fn constant_branch(a: f32) -> f32 {
            var x = a;
            if YES {
                return x + 1.0;
            }
            x = x * 2.0 + 3.0;
            return x * x;
        }
        // One side returns: the rest still counts, the comparison 1 and a·a + a 2: 3.
        fn one_side_returns(a: f32) -> f32 {
            if a > 0.0 {
                return a;
            }
            return a * a + a;
        }
        // A switch: its longest case, 4.
        fn cases(a: f32, k: u32) -> f32 {
            var x = a;
            switch k {
                case 0u: { x = x + 1.0; }
                case 1u: { x = ((x * 2.0) + 3.0) * 4.0 - 5.0; }
                default: { x = x * x; }
            }
            return x;
        }
        // Loads from workgroup and storage memory, a vector once: 2; a local array's: none.
        fn loads(i: u32) -> f32 {
            var local = array<f32, 2>(1.0, 2.0);
            let q = quads[i];
            let b = buf[i];
            return q.x + b + local[i];
        }
        // Loops apart from the straight line (0 here): the hot one's fma, exp and add 3, the
        // cold one's 1.
        fn looped(a: f32, n: u32) -> f32 {
            var x = a;
            for (var i = 0u; i < n; i++) {
                hot_loop();
                x = fma(x, x, a) + exp(x);
            }
            for (var i = 0u; i < n; i++) {
                x = x - 1.0;
            }
            return x;
        }
        // A call: the callee's cost (8 + 1).
        fn calls(a: f32, v: vec4<f32>) -> f32 {
            return lanes(a, v).x + a;
        }
    ";

    /// The walker's rules, one at a time on [`RULES`], against the counts by hand in its comments.
    #[test]
    fn rules_by_hand() {
        let names = [
            "lanes",
            "ints",
            "pick",
            "convert",
            "branch",
            "tie",
            "constant_branch",
            "one_side_returns",
            "cases",
            "loads",
            "looped",
            "calls",
        ];
        let want = [
            (8, 0),
            (0, 0),
            (4, 0),
            (8, 0),
            (3, 0),
            (1, 1),
            (1, 0),
            (3, 0),
            (4, 0),
            (2, 2),
            (0, 0),
            (9, 0),
        ];
        let got = walk(RULES, &names);
        for ((name, (cost, _)), (ops, loads)) in names.iter().zip(&got).zip(want) {
            assert_eq!((cost.ops, cost.loads), (ops, loads), "{name}: counted {cost:?}");
        }
        let hot = |ops| Cost { ops, loads: 0 };
        assert_eq!(got[10].1, [(true, hot(3)), (false, hot(1))], "looped");
    }

    /// The two-float helpers, counted by hand from shaders/common.wgsl and
    /// shaders/precision_exact.wgsl (`* one` is a multiply; a negation is an op):
    /// - two_sum: (a + b)·one 2, (s − a)·one 2, (a − (s − bb)) + (b − bb) 4: 8.
    /// - two_prod: (a·b)·one 2, then with an fma that rounds once fma(a, b, −p) 2: 4 (the Dekker
    ///   split after its `return` is dead); without, two `split`s of 6 ((4097·a)·one 2,
    ///   c − (c − a)·one 3, a − hi 1) and 4 products and 4 sums of halves: 2 + 12 + 8 = 22.
    /// - df_add: two two_sums and t.y + (a.y + b.y): 18.
    /// - df_fma2 (`mac`): df_fma (two_prod 4, two_sum 8, acc.y + t.y + p.y + a.y·b 4) and
    ///   t.y + a.x·b_lo 2: 18.
    /// - run_mac: df_add of a two_prod: 22.
    /// - diag_term: `centred` (two two_sums, each with a negation or a subtraction: 18),
    ///   `real_mul` (df_fma2: 18) and `add_sq` (df_add 18 of df_sq: two_sum 8, two_prod 4,
    ///   p.y + 2·v.x·v.y 3): 69 ops, on μ's and the factor's two parts: 4 loads.
    /// - exp_df: the underflow test 1; k = round(min(hi, 88)·log₂e) 3; two_sum of hi − k·ln2_hi
    ///   and −k·ln2_lo (4 + 8) 12; two_sum(t.x, t.y + lo) 9; Horner in 6 multiply-adds 12;
    ///   the cubic 3; df_mul1(df_sq(r), ½) 15 + 6; two df_adds 36; df_add1 9; i32(k) 1; two
    ///   ldexps 2: 109.
    #[test]
    fn helpers_by_hand() {
        let names = [
            "two_sum",
            "two_prod",
            "df_add",
            "df_fma2",
            "mac",
            "run_mac",
            "diag_term",
            "exp_df",
        ];
        let got = function_costs(Arith::TwoFloat, true, &names);
        let want = [(8, 0), (4, 0), (18, 0), (18, 0), (18, 0), (22, 0), (69, 4), (109, 0)];
        for ((name, g), (ops, loads)) in names.iter().zip(&got).zip(want) {
            assert_eq!((g.ops, g.loads), (ops, loads), "{name}: counted {g:?}");
        }
        // Dekker's split where the fma may round twice: 18 ops more per error-free product.
        let dekker = function_costs(Arith::TwoFloat, false, &["two_prod"]);
        assert_eq!(dekker[0].ops, 22, "{dekker:?}");
        // In fast `mac` and `run_mac` are one fma; in f64 `factor_of` widens two parts and adds.
        let fast = function_costs(Arith::Fast, true, &["mac", "run_mac", "lse_term"]);
        assert_eq!(fast.iter().map(|c| c.ops).collect::<Vec<_>>(), [1, 1, 5], "{fast:?}");
        let f64s = function_costs(Arith::F64, true, &["mac", "factor_of", "load_factor"]);
        assert_eq!(
            f64s.iter().map(|c| (c.ops, c.loads)).collect::<Vec<_>>(),
            [(1, 0), (3, 0), (3, 2)],
            "{f64s:?}"
        );
    }
}
