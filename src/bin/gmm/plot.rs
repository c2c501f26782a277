//! `gmm plot`: draws a fitted mixture over its data as a PNG or SVG figure.
//!
//! * 1-D data (or `--x` equal to `--y`): a density-normalised histogram of the feature with the
//!   mixture density (thick) and each weighted component density `π_k·N(x | μ_k, σ_k²)` (thin) on top.
//! * 2-D and more: a scatter of two features coloured by the predicted component, with the 1σ and
//!   2σ ellipses of each component's projected covariance and a cross at each mean.
//!
//! Text is rendered with the bundled DejaVu Sans font (assets/DejaVuSans.ttf, Bitstream Vera
//! licence in assets/DejaVuSans-LICENSE.txt) through plotters' `ab_glyph` support, so no system
//! font library is needed. The output is deterministic: the same inputs give the same bytes.

use std::f64::consts::PI;
use std::path::Path;
use std::sync::OnceLock;

use gmm_gpu::{DataView, GmmModel};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Width of the picture in pixels.
pub const WIDTH: u32 = 1024;
/// Height of the picture in pixels.
pub const HEIGHT: u32 = 768;

/// At most this many points are drawn in a PNG scatter (every s-th sample beyond it).
const MAX_POINTS_PNG: usize = 200_000;
/// At most this many points are drawn in an SVG scatter (each one is an element of the file).
const MAX_POINTS_SVG: usize = 20_000;
/// At most this many components get their own legend entry.
const MAX_LEGEND: usize = 10;
/// Points on each drawn ellipse.
const ELLIPSE_POINTS: usize = 121;
/// Points on each drawn density curve.
const CURVE_POINTS: usize = 600;

/// The Tableau 10 palette, cycled for more than ten components.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0xE1, 0x57, 0x59),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0x9C, 0x75, 0x5F),
    RGBColor(0xBA, 0xB0, 0xAC),
];

/// The image format of a plot, chosen by the output file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A 1024x768 RGB PNG.
    Png,
    /// A 1024x768 SVG document.
    Svg,
}

impl Format {
    /// The format named by `path`'s extension (`.png` or `.svg`, case-insensitive), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("png") {
            Some(Format::Png)
        } else if ext.eq_ignore_ascii_case("svg") {
            Some(Format::Svg)
        } else {
            None
        }
    }
}

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// A requested feature index is not a column of the data.
    #[error(
        "feature {feature} is out of range: the data has {n_features} feature(s), numbered from 0 to {}; \
         choose --x/--y below {n_features}",
        n_features.saturating_sub(1)
    )]
    FeatureOutOfRange {
        /// The requested feature index.
        feature: usize,
        /// The number of features of the data.
        n_features: usize,
    },
    /// The model and the data do not have the same number of features.
    #[error("the model has {model} feature(s) but the data has {data}: plot the model over the data it was fitted to")]
    FeatureMismatch {
        /// Features of the model.
        model: usize,
        /// Features of the data.
        data: usize,
    },
    /// The data set is empty.
    #[error("the data has no samples: there is nothing to plot")]
    NoSamples,
    /// The model could not label the data.
    #[error(transparent)]
    Model(#[from] gmm_gpu::GmmError),
    /// The bundled font could not be loaded (text cannot be drawn).
    #[error("the bundled font DejaVu Sans could not be loaded: the plot cannot draw text")]
    Font,
    /// The plotting backend failed while drawing or writing the image.
    #[error("drawing failed: {message}")]
    Draw {
        /// The backend's error message.
        message: String,
    },
    /// Creating or renaming the intermediate PNG file failed.
    #[error("cannot write the picture: {0}")]
    Io(#[from] std::io::Error),
}

/// Draws `model` over `data` into `out` in `format` (the caller passes a temporary path and renames it afterwards).
///
/// For 1-D data `y_feature` is ignored and the figure is a histogram; for more features an
/// `x_feature` equal to `y_feature` gives the histogram of that feature with the marginal mixture.
pub fn draw(
    model: &GmmModel,
    data: &DataView,
    x_feature: usize,
    y_feature: usize,
    format: Format,
    out: &Path,
) -> Result<(), PlotError> {
    let scene = Scene::build(model, data, x_feature, y_feature, format)?;
    register_font()?;
    match format {
        Format::Png => {
            // The bitmap encoder picks the format from the extension: give it one it knows.
            if Format::from_path(out) == Some(Format::Png) {
                draw_png(&scene, out)
            } else {
                let dir = out
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let tmp = tempfile::Builder::new()
                    .prefix(".gmm-plot-")
                    .suffix(".png")
                    .tempfile_in(dir)?;
                draw_png(&scene, tmp.path())?;
                tmp.persist(out).map_err(|e| e.error)?;
                Ok(())
            }
        }
        Format::Svg => {
            let root = SVGBackend::new(out, (WIDTH, HEIGHT)).into_drawing_area();
            render(&root, &scene).map_err(draw_error)?;
            root.present().map_err(draw_error)
        }
    }
}

fn draw_png(scene: &Scene, out: &Path) -> Result<(), PlotError> {
    let root = BitMapBackend::new(out, (WIDTH, HEIGHT)).into_drawing_area();
    render(&root, scene).map_err(draw_error)?;
    root.present().map_err(draw_error)
}

fn draw_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw { message: e.to_string() }
}

/// Registers the bundled DejaVu Sans as plotters' "sans-serif" (once per process).
fn register_font() -> Result<(), PlotError> {
    static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Everything the figure shows, computed before any drawing.
enum Scene {
    Histogram(Histogram),
    Scatter(Scatter),
}

struct Histogram {
    title: String,
    feature: usize,
    x_range: (f64, f64),
    y_top: f64,
    /// (left edge, right edge, density) of every bin.
    bins: Vec<(f64, f64, f64)>,
    /// The mixture density sampled over `x_range`.
    mixture: Vec<(f64, f64)>,
    /// Each weighted component density over `x_range`, with its legend text.
    components: Vec<(Vec<(f64, f64)>, String)>,
}

struct Scatter {
    title: String,
    features: (usize, usize),
    x_range: (f64, f64),
    y_range: (f64, f64),
    /// (x, y, predicted component) of every drawn sample.
    points: Vec<(f64, f64, usize)>,
    /// The means (x, y) and their 1σ and 2σ ellipses, with legend text.
    components: Vec<Component2d>,
}

struct Component2d {
    mean: (f64, f64),
    ellipses: [Vec<(f64, f64)>; 2],
    label: String,
}

impl Scene {
    fn build(model: &GmmModel, data: &DataView, x: usize, y: usize, format: Format) -> Result<Scene, PlotError> {
        let d = data.n_features();
        if model.n_features() != d {
            return Err(PlotError::FeatureMismatch {
                model: model.n_features(),
                data: d,
            });
        }
        if data.n_samples() == 0 {
            return Err(PlotError::NoSamples);
        }
        for feature in [x, y] {
            if feature >= d && !(d == 1 && feature == y) {
                return Err(PlotError::FeatureOutOfRange { feature, n_features: d });
            }
        }
        if d == 1 || x == y {
            Ok(Scene::Histogram(Histogram::build(model, data, x)))
        } else {
            let max_points = match format {
                Format::Png => MAX_POINTS_PNG,
                Format::Svg => MAX_POINTS_SVG,
            };
            Ok(Scene::Scatter(Scatter::build(model, data, x, y, max_points)?))
        }
    }
}

/// The name of the model, for titles: "K = 3, full covariance".
fn model_name(model: &GmmModel) -> String {
    let k = model.n_components();
    format!("K = {k}, {} covariance", model.covariance_type())
}

/// A compact number for legends: 3 significant-ish decimals, or scientific when very large/small.
fn num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || (1e-3..1e5).contains(&a) {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.into() }
    } else {
        format!("{v:.2e}")
    }
}

/// A tick label: `num(v)`, or "0" for a value that is zero up to rounding within `range`.
fn tick(v: f64, range: (f64, f64)) -> String {
    if v.abs() <= (range.1 / 2.0 - range.0 / 2.0) * 1e-9 {
        "0".into()
    } else {
        num(v)
    }
}

/// `k` in Unicode subscript digits: 12 -> "₁₂".
fn subscript(k: usize) -> String {
    k.to_string()
        .chars()
        .map(|c| char::from_u32('₀' as u32 + c.to_digit(10).unwrap_or(0)).unwrap_or(c))
        .collect()
}

/// The corner of the plotting area where the legend hides the least: `weights` are (x, y, weight)
/// in data coordinates; corners are tried in the order upper right, upper left, lower right, lower left.
fn legend_corner(
    points: impl Iterator<Item = (f64, f64, f64)>,
    x: (f64, f64),
    y: (f64, f64),
    upper_only: bool,
) -> SeriesLabelPosition {
    let (wx, wy) = ((x.1 - x.0) * 0.45, (y.1 - y.0) * 0.3);
    let mut load = [0.0f64; 4];
    for (px, py, w) in points {
        let right = px >= x.1 - wx;
        let left = px <= x.0 + wx;
        let upper = py >= y.1 - wy;
        let lower = py <= y.0 + wy;
        for (i, hit) in [upper && right, upper && left, lower && right, lower && left]
            .into_iter()
            .enumerate()
        {
            if hit {
                load[i] = if upper_only { load[i].max(w) } else { load[i] + w };
            }
        }
    }
    let corners = [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ];
    let n = if upper_only { 2 } else { 4 };
    let best = (0..n).fold(0, |best, i| if load[i] < load[best] { i } else { best });
    corners[best].clone()
}

/// The range [lo, hi] padded by 5% on each side, widened when (nearly) empty, and kept finite.
fn padded_range(lo: f64, hi: f64) -> (f64, f64) {
    let center = lo / 2.0 + hi / 2.0;
    let mut half = hi / 2.0 - lo / 2.0;
    // Too narrow for f64 ticks to tell apart (identical points): widen around the centre.
    let floor = center.abs() * 1e-9;
    if half <= floor || half < 1e-300 {
        half = if center == 0.0 {
            1.0
        } else {
            (center.abs() * 0.1).max(1e-300)
        };
    } else {
        half *= 1.05;
    }
    let mut lo = center - half;
    let mut hi = center + half;
    // Keep the width finite so coordinates map to pixels.
    let limit = f64::MAX / 16.0;
    if !(hi - lo).is_finite() || lo < -limit || hi > limit {
        lo = lo.max(-limit);
        hi = hi.min(limit);
    }
    (lo, hi)
}

/// Reads one column of the data, widened to f64.
fn column(data: &DataView, feature: usize) -> Vec<f64> {
    let mut row = vec![0.0; data.n_features()];
    (0..data.n_samples())
        .map(|i| {
            data.row_into(i, &mut row);
            row[feature]
        })
        .collect()
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// `weight · N(x | mean, var)`, or 0 when that is not a finite number.
fn weighted_normal(x: f64, weight: f64, mean: f64, var: f64) -> f64 {
    if var <= 0.0 || !var.is_finite() {
        return 0.0;
    }
    let z = (x - mean) / var.sqrt();
    let v = weight * (-0.5 * z * z).exp() / (2.0 * PI * var).sqrt();
    if v.is_finite() { v } else { 0.0 }
}

impl Histogram {
    fn build(model: &GmmModel, data: &DataView, feature: usize) -> Histogram {
        let values = column(data, feature);
        let n = values.len();
        let (lo, hi) = min_max(values.iter().copied());
        let k = model.n_components();
        // The view spans the data and every mean, so no component is left out of the picture.
        let (view_lo, view_hi) = min_max((0..k).map(|c| model.mean(c)[feature]).chain([lo, hi]));
        let x_range = padded_range(view_lo, view_hi);

        // Square-root rule, 5..=80 bins, spanning the data (or the padded range if it is one point).
        let n_bins = ((n as f64).sqrt().ceil() as usize).clamp(5, 80);
        let (b_lo, b_hi) = if hi - lo > (hi.abs() + lo.abs()) * 1e-12 && (hi - lo).is_finite() {
            (lo, hi)
        } else {
            let c = lo / 2.0 + hi / 2.0;
            let (r_lo, r_hi) = padded_range(lo, hi);
            let w = (r_hi / 2.0 - r_lo / 2.0) / 5.0;
            (c - w / 2.0, c + w / 2.0)
        };
        let width = (b_hi - b_lo) / n_bins as f64;
        let mut counts = vec![0usize; n_bins];
        for &v in &values {
            let i = ((v - b_lo) / width).floor();
            let i = if i.is_finite() && i > 0.0 {
                (i as usize).min(n_bins - 1)
            } else {
                0
            };
            counts[i] += 1;
        }
        let bins: Vec<(f64, f64, f64)> = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let left = b_lo + width * i as f64;
                let density = c as f64 / (n as f64 * width);
                (left, left + width, if density.is_finite() { density } else { 0.0 })
            })
            .collect();
        let hist_max = bins.iter().map(|b| b.2).fold(0.0, f64::max);

        let weights = model.weights();
        let params: Vec<(f64, f64, f64)> = (0..k)
            .map(|c| {
                let d = model.n_features();
                let var = model.covariance_matrix(c)[feature * d + feature];
                (weights[c], model.mean(c)[feature], var)
            })
            .collect();
        let xs: Vec<f64> = (0..CURVE_POINTS)
            .map(|i| x_range.0 + (x_range.1 - x_range.0) * i as f64 / (CURVE_POINTS - 1) as f64)
            .collect();
        let components: Vec<(Vec<(f64, f64)>, String)> = params
            .iter()
            .enumerate()
            .map(|(c, &(w, m, var))| {
                let curve = xs.iter().map(|&x| (x, weighted_normal(x, w, m, var))).collect();
                let sub = subscript(c);
                let label = format!("π{sub}·N(x | {}, {}²), π{sub} = {}", num(m), num(var.sqrt()), num(w));
                (curve, label)
            })
            .collect();
        let mixture: Vec<(f64, f64)> = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| (x, components.iter().map(|(curve, _)| curve[i].1).sum::<f64>()))
            .map(|(x, y)| (x, if y.is_finite() { y } else { 0.0 }))
            .collect();
        let curve_max = mixture.iter().map(|p| p.1).fold(0.0, f64::max);
        // Very narrow components must not squash the histogram: their peaks may leave the frame.
        let top = if hist_max > 0.0 {
            hist_max.max(curve_max.min(3.0 * hist_max))
        } else {
            curve_max
        };
        // Head room for the legend.
        let y_top = if top > 0.0 && (top * 1.3).is_finite() {
            top * 1.3
        } else {
            1.0
        };

        Histogram {
            title: format!(
                "Gaussian mixture, {} — feature {feature}, {n} samples",
                model_name(model)
            ),
            feature,
            x_range,
            y_top,
            bins,
            mixture,
            components,
        }
    }
}

/// The points of the `scale`-σ ellipse of the 2x2 covariance [[a, b], [b, c]] centred on `mean`.
fn ellipse(mean: (f64, f64), a: f64, b: f64, c: f64, scale: f64) -> Vec<(f64, f64)> {
    // Eigen-decomposition of the symmetric 2x2 matrix, by hand.
    let half_trace = (a + c) / 2.0;
    let r = (((a - c) / 2.0).powi(2) + b * b).sqrt();
    let l1 = (half_trace + r).max(0.0);
    let l2 = (half_trace - r).max(0.0);
    let theta = if b == 0.0 && a >= c {
        0.0
    } else {
        0.5 * (2.0 * b).atan2(a - c)
    };
    let (s1, s2) = (scale * l1.sqrt(), scale * l2.sqrt());
    let (sin, cos) = theta.sin_cos();
    (0..ELLIPSE_POINTS)
        .map(|i| {
            let t = 2.0 * PI * i as f64 / (ELLIPSE_POINTS - 1) as f64;
            let (u, v) = (s1 * t.cos(), s2 * t.sin());
            (mean.0 + u * cos - v * sin, mean.1 + u * sin + v * cos)
        })
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect()
}

impl Scatter {
    fn build(model: &GmmModel, data: &DataView, x: usize, y: usize, max_points: usize) -> Result<Scatter, PlotError> {
        let n = data.n_samples();
        let d = data.n_features();
        // Every `stride`-th sample, so that huge data sets stay drawable.
        let stride = n.div_ceil(max_points).max(1);
        let mut rows = Vec::with_capacity(n.div_ceil(stride) * d);
        let mut row = vec![0.0; d];
        for i in (0..n).step_by(stride) {
            data.row_into(i, &mut row);
            rows.extend_from_slice(&row);
        }
        let view = DataView::from_f64(&rows, d)?;
        let labels = model.predict(&view)?;
        let points: Vec<(f64, f64, usize)> = rows
            .chunks_exact(d)
            .zip(&labels)
            .map(|(r, &label)| (r[x], r[y], label))
            .collect();

        let k = model.n_components();
        let components: Vec<Component2d> = (0..k)
            .map(|c| {
                let cov = model.covariance_matrix(c);
                let mean = model.mean(c);
                let mean = (mean[x], mean[y]);
                let (a, b, cc) = (cov[x * d + x], cov[x * d + y], cov[y * d + y]);
                Component2d {
                    mean,
                    ellipses: [ellipse(mean, a, b, cc, 1.0), ellipse(mean, a, b, cc, 2.0)],
                    label: format!(
                        "component {c}: π = {}, μ = ({}, {})",
                        num(model.weights()[c]),
                        num(mean.0),
                        num(mean.1)
                    ),
                }
            })
            .collect();

        // The view spans the data and every mean, so no component is left out of the picture.
        let (x_lo, x_hi) = min_max(points.iter().map(|p| p.0).chain(components.iter().map(|c| c.mean.0)));
        let (y_lo, y_hi) = min_max(points.iter().map(|p| p.1).chain(components.iter().map(|c| c.mean.1)));
        let shown = points.len();
        let sampled = if shown < n {
            format!(", {shown} of {n} samples shown")
        } else {
            format!(", {n} samples")
        };
        Ok(Scatter {
            title: format!("Gaussian mixture, {}{sampled}", model_name(model)),
            features: (x, y),
            x_range: padded_range(x_lo, x_hi),
            y_range: padded_range(y_lo, y_hi),
            points,
            components,
        })
    }
}

fn color(k: usize) -> RGBColor {
    PALETTE[k % PALETTE.len()]
}

/// A darker shade of `c`, for lines drawn over points of colour `c`.
fn dark(c: RGBColor) -> RGBColor {
    RGBColor(
        (c.0 as f64 * 0.6) as u8,
        (c.1 as f64 * 0.6) as u8,
        (c.2 as f64 * 0.6) as u8,
    )
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn render<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, scene: &Scene) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    match scene {
        Scene::Histogram(h) => render_histogram(root, h),
        Scene::Scatter(s) => render_scatter(root, s),
    }
}

fn render_histogram<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, h: &Histogram) -> DrawResult<DB> {
    let legend = legend_corner(
        h.bins
            .iter()
            .map(|b| ((b.0 + b.1) / 2.0, b.2, b.2))
            .chain(h.mixture.iter().map(|p| (p.0, p.1, p.1))),
        h.x_range,
        (0.0, h.y_top),
        true,
    );
    let mut chart = ChartBuilder::on(root)
        .caption(&h.title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(h.x_range.0..h.x_range.1, 0.0..h.y_top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(format!("feature {}", h.feature))
        .y_desc("density")
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .x_label_formatter(&|v| tick(*v, h.x_range))
        .y_label_formatter(&|v| tick(*v, (0.0, h.y_top)))
        .light_line_style(BLACK.mix(0.03))
        .draw()?;

    let bar = RGBColor(0xC6, 0xD4, 0xE1);
    chart
        .draw_series(
            h.bins
                .iter()
                .map(|&(l, r, density)| Rectangle::new([(l, 0.0), (r, density)], bar.filled())),
        )?
        .label("data (density histogram)")
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], bar.filled()));
    chart.draw_series(h.bins.iter().map(|&(l, r, density)| {
        Rectangle::new([(l, 0.0), (r, density)], RGBColor(0x8A, 0x9B, 0xAE).stroke_width(1))
    }))?;

    let style = BLACK.mix(0.85).stroke_width(4);
    chart
        .draw_series(std::iter::once(PathElement::new(h.mixture.clone(), style)))?
        .label("mixture density")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    for (c, (curve, label)) in h.components.iter().enumerate() {
        let style = color(c).stroke_width(2);
        let series = chart.draw_series(std::iter::once(PathElement::new(curve.clone(), style)))?;
        if c < MAX_LEGEND {
            series
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    more_components_entry(&mut chart, h.components.len())?;

    chart
        .configure_series_labels()
        .position(legend)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .draw()
}

/// A legend line "… and N more components" when there are more than MAX_LEGEND of them.
fn more_components_entry<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    k: usize,
) -> DrawResult<DB> {
    if k > MAX_LEGEND {
        chart
            .draw_series(std::iter::empty::<EmptyElement<CT::From, DB>>())?
            .label(format!("… and {} more components", k - MAX_LEGEND))
            .legend(|(x, y)| EmptyElement::at((x, y)));
    }
    Ok(())
}

fn render_scatter<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Scatter) -> DrawResult<DB> {
    let legend = legend_corner(
        s.points.iter().map(|p| (p.0, p.1, 1.0)).chain(
            s.components
                .iter()
                .flat_map(|c| c.ellipses.iter().flatten().map(|p| (p.0, p.1, 1.0))),
        ),
        s.x_range,
        s.y_range,
        false,
    );
    let mut chart = ChartBuilder::on(root)
        .caption(&s.title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(s.x_range.0..s.x_range.1, s.y_range.0..s.y_range.1)?;
    chart
        .configure_mesh()
        .x_desc(format!("feature {}", s.features.0))
        .y_desc(format!("feature {}", s.features.1))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .x_label_formatter(&|v| tick(*v, s.x_range))
        .y_label_formatter(&|v| tick(*v, s.y_range))
        .light_line_style(BLACK.mix(0.04))
        .bold_line_style(BLACK.mix(0.1))
        .draw()?;

    let radius = if s.points.len() > 20_000 { 1 } else { 2 };
    chart.draw_series(
        s.points
            .iter()
            .map(|&(x, y, label)| Circle::new((x, y), radius, color(label).mix(0.6).filled())),
    )?;

    for (c, comp) in s.components.iter().enumerate() {
        let line = dark(color(c));
        chart.draw_series([
            PathElement::new(comp.ellipses[0].clone(), line.stroke_width(3)),
            PathElement::new(comp.ellipses[1].clone(), line.mix(0.8).stroke_width(2)),
        ])?;
    }
    let size = if s.components.len() > MAX_LEGEND { 5 } else { 8 };
    for (c, comp) in s.components.iter().enumerate() {
        let series = chart.draw_series([
            Cross::new(comp.mean, size + 1, WHITE.stroke_width(6)),
            Cross::new(comp.mean, size, BLACK.stroke_width(3)),
        ])?;
        if c < MAX_LEGEND {
            let fill = color(c);
            series
                .label(comp.label.as_str())
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, fill.filled()));
        }
    }
    more_components_entry(&mut chart, s.components.len())?;
    chart
        .draw_series(std::iter::empty::<EmptyElement<(f64, f64), DB>>())?
        .label("ellipses: 1σ (thick) and 2σ; ×: means")
        .legend(|(x, y)| EmptyElement::at((x, y)));

    chart
        .configure_series_labels()
        .position(legend)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gmm_gpu::GmmParams;
    use std::collections::HashSet;

    /// `n` points per blob around each centre, from a fixed xorshift generator and Box-Muller.
    fn blobs(centres: &[(f64, f64)], n: usize) -> Vec<f64> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut out = Vec::with_capacity(centres.len() * n * 2);
        for &(cx, cy) in centres {
            for _ in 0..n {
                let (u, v) = (uniform(), uniform());
                let r = (-2.0 * u.ln()).sqrt();
                out.push(cx + r * (2.0 * PI * v).cos());
                out.push(cy + 0.5 * r * (2.0 * PI * v).sin());
            }
        }
        out
    }

    const CENTRES: [(f64, f64); 3] = [(-5.0, 0.0), (0.0, 5.0), (5.0, 0.0)];

    fn model_2d(k: usize) -> (Vec<f64>, GmmModel) {
        let x = blobs(&CENTRES, 100);
        let model = GmmParams::builder(k)
            .seed(3)
            .build()
            .unwrap()
            .fit(&DataView::from_f64(&x, 2).unwrap())
            .unwrap();
        (x, model)
    }

    /// Width and height from the IHDR chunk, after checking the PNG signature.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert!(bytes.len() > 24, "too short for a PNG: {} bytes", bytes.len());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR", "first chunk is not IHDR");
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (be(&bytes[16..20]), be(&bytes[20..24]))
    }

    fn draw_to(model: &GmmModel, data: &DataView, x: usize, y: usize, name: &str) -> (tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let format = Format::from_path(&path).unwrap_or(Format::Png);
        draw(model, data, x, y, format, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        (dir, bytes)
    }

    /// Distinct RGB colours of the scene rendered into memory.
    fn colours(model: &GmmModel, data: &DataView, x: usize, y: usize) -> usize {
        register_font().unwrap();
        let scene = Scene::build(model, data, x, y, Format::Png).unwrap();
        let mut buf = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
            render(&root, &scene).unwrap();
            root.present().unwrap();
        }
        buf.chunks_exact(3)
            .map(|p| (p[0], p[1], p[2]))
            .collect::<HashSet<_>>()
            .len()
    }

    /// The `<polyline>`s of an SVG whose stroke is not black: the ellipses or density curves.
    fn coloured_polylines(svg: &str) -> usize {
        svg.match_indices("<polyline")
            .filter(|(i, _)| {
                let tag = &svg[*i..];
                let tag = &tag[..tag.find('>').unwrap()];
                !tag.contains("stroke=\"#000000\"")
            })
            .count()
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_path(Path::new("a/fit.png")), Some(Format::Png));
        assert_eq!(Format::from_path(Path::new("FIT.PNG")), Some(Format::Png));
        assert_eq!(Format::from_path(Path::new("fit.Svg")), Some(Format::Svg));
        assert_eq!(Format::from_path(Path::new("fit.jpg")), None);
        assert_eq!(Format::from_path(Path::new("png")), None);
    }

    #[test]
    fn png_2d_scatter_is_a_1024x768_png_with_many_colours() {
        let (x, model) = model_2d(3);
        let data = DataView::from_f64(&x, 2).unwrap();
        let (_dir, bytes) = draw_to(&model, &data, 0, 1, "fit.png");
        assert_eq!(png_size(&bytes), (WIDTH, HEIGHT));
        assert!(bytes.len() > 20_000, "suspiciously small PNG: {} bytes", bytes.len());
        let n = colours(&model, &data, 0, 1);
        assert!(n >= 10, "only {n} distinct colours: the picture is nearly empty");
    }

    #[test]
    fn png_is_deterministic_and_independent_of_the_file_extension() {
        let (x, model) = model_2d(3);
        let data = DataView::from_f64(&x, 2).unwrap();
        let (_d1, a) = draw_to(&model, &data, 0, 1, "a.png");
        let (_d2, b) = draw_to(&model, &data, 0, 1, "b.png");
        assert_eq!(a, b, "two draws of the same model differ");
        // The caller's temporary file may have any extension: PNG is still written.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fit.png.tmp");
        draw(&model, &data, 0, 1, Format::Png, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), a);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a stray file was left behind"
        );
    }

    #[test]
    fn svg_2d_has_two_ellipses_per_component() {
        let (x, model) = model_2d(3);
        let data = DataView::from_f64(&x, 2).unwrap();
        let (_dir, bytes) = draw_to(&model, &data, 0, 1, "fit.svg");
        let svg = String::from_utf8(bytes).unwrap();
        assert!(svg.contains("<svg"), "no <svg> element");
        assert!(svg.contains(&format!("width=\"{WIDTH}\"")) && svg.contains(&format!("height=\"{HEIGHT}\"")));
        assert_eq!(
            coloured_polylines(&svg),
            2 * 3,
            "expected 1σ and 2σ ellipses for each of 3 components"
        );
        assert_eq!(
            svg.matches("<circle").count(),
            x.len() / 2 + 3,
            "one circle per sample plus 3 legend markers"
        );
        assert!(
            svg.contains("feature 0") && svg.contains("feature 1"),
            "axis labels missing"
        );
        assert!(svg.contains("K = 3, full covariance"), "title missing");
    }

    #[test]
    fn histogram_1d_draws_mixture_and_components() {
        let x: Vec<f64> = blobs(&CENTRES, 100).chunks(2).map(|r| r[0]).collect();
        let data = DataView::from_f64(&x, 1).unwrap();
        let model = GmmParams::builder(3).seed(1).build().unwrap().fit(&data).unwrap();
        // y is unused for 1-D data, whatever its value.
        let (_dir, bytes) = draw_to(&model, &data, 0, 1, "hist.png");
        assert_eq!(png_size(&bytes), (WIDTH, HEIGHT));
        assert!(colours(&model, &data, 0, 1) >= 10);
        let (_dir, bytes) = draw_to(&model, &data, 0, 7, "hist.svg");
        let svg = String::from_utf8(bytes).unwrap();
        // One weighted density curve per component, and its legend line.
        assert_eq!(
            coloured_polylines(&svg),
            2 * 3,
            "expected a curve and a legend line per component"
        );
        assert!(svg.contains("mixture density") && svg.contains("density"));
        assert!(svg.matches("<rect").count() >= 2 * 18, "histogram bars missing");
    }

    #[test]
    fn equal_features_give_the_marginal_histogram() {
        let (x, model) = model_2d(3);
        let data = DataView::from_f64(&x, 2).unwrap();
        let (_dir, bytes) = draw_to(&model, &data, 1, 1, "marginal.svg");
        let svg = String::from_utf8(bytes).unwrap();
        assert!(svg.contains("mixture density") && svg.contains("feature 1"));
        assert_eq!(coloured_polylines(&svg), 2 * 3);
    }

    #[test]
    fn feature_out_of_range_is_a_typed_error() {
        let (x, model) = model_2d(2);
        let data = DataView::from_f64(&x, 2).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fit.png");
        for (fx, fy, bad) in [(2, 1, 2), (0, 5, 5)] {
            match draw(&model, &data, fx, fy, Format::Png, &out) {
                Err(PlotError::FeatureOutOfRange { feature, n_features }) => {
                    assert_eq!((feature, n_features), (bad, 2));
                }
                other => panic!("expected FeatureOutOfRange, got {other:?}"),
            }
        }
        assert!(!out.exists(), "a failed plot wrote a file");
        let one: Vec<f64> = x.iter().step_by(2).copied().collect();
        let err = draw(&model, &DataView::from_f64(&one, 1).unwrap(), 0, 0, Format::Png, &out).unwrap_err();
        assert!(
            matches!(err, PlotError::FeatureMismatch { model: 2, data: 1 }),
            "{err:?}"
        );
        let err = draw(&model, &DataView::from_f64(&[], 2).unwrap(), 0, 1, Format::Png, &out).unwrap_err();
        assert!(matches!(err, PlotError::NoSamples), "{err:?}");
        assert!(!out.exists(), "a failed plot wrote a file");
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let (x, model) = model_2d(3);
        let one_sample = [0.5, -0.25];
        let identical = [1.0; 20];
        let huge = [1e300, -1e300, -1.7e308, 1.7e308, 0.0, 0.0];
        let tiny = [1.0, 1.0, 1.0 + 1e-15, 1.0 - 1e-15, 1.0, 1.0];
        let zeros = [0.0; 6];
        for (name, rows) in [
            ("one sample", &one_sample[..]),
            ("identical points", &identical[..]),
            ("huge values", &huge[..]),
            ("tiny range", &tiny[..]),
            ("zeros", &zeros[..]),
        ] {
            let data = DataView::from_f64(rows, 2).unwrap();
            for file in ["d.png", "d.svg"] {
                let (_dir, bytes) = draw_to(&model, &data, 0, 1, file);
                assert!(!bytes.is_empty(), "{name}: empty {file}");
                let (_dir, bytes) = draw_to(&model, &data, 1, 1, file);
                assert!(!bytes.is_empty(), "{name}: empty marginal {file}");
            }
        }
        // Many components: the palette cycles and the legend is cut short.
        let data = DataView::from_f64(&x, 2).unwrap();
        let many = GmmParams::builder(40).seed(1).build().unwrap().fit(&data).unwrap();
        let (_dir, bytes) = draw_to(&many, &data, 0, 1, "many.svg");
        let svg = String::from_utf8(bytes).unwrap();
        assert_eq!(coloured_polylines(&svg), 80);
        assert!(svg.contains("and 30 more components"));
        let (_dir, bytes) = draw_to(&many, &data, 0, 1, "many.png");
        assert_eq!(png_size(&bytes), (WIDTH, HEIGHT));
    }
}
