//! Reading data (.npy, .csv, raw float32) and models, and writing outputs atomically: every output
//! goes to a temporary file in the destination's folder and is renamed into place only when
//! complete, so an error never leaves a partial or empty file behind.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use gmm_gpu::{DataView, GmmError, GmmModel, MappedData};

use crate::error::CliError;

/// How to read a data file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DataFormat {
    /// By extension: .npy, .csv, anything else raw float32.
    Auto,
    /// NumPy .npy, float32 or float64, little-endian, C order: memory-mapped, never copied whole.
    Npy,
    /// Comma-separated text, with or without a header row: parsed into memory (use .npy for data
    /// larger than memory).
    Csv,
    /// Raw little-endian float32, row-major (needs --features): memory-mapped, never copied whole.
    Raw,
}

/// The samples as read, in their own precision (float32 files stay float32: no widening copy).
pub enum Values {
    /// .npy and raw float32 files: memory-mapped, never copied (see `gmm_gpu::MappedData`).
    Mapped(MappedData),
    /// CSV: parsed into memory.
    F64(Vec<f64>),
}

/// A data file, mapped or read into memory.
pub struct Data {
    pub path: PathBuf,
    pub values: Values,
    pub n_features: usize,
    /// NaN marks a missing value (`--missing marginalise`).
    pub missing: bool,
}

impl Data {
    /// The validated view the library takes (no copy); a NaN or infinity names the file.
    pub fn view(&self) -> Result<DataView<'_>, CliError> {
        let view = match (&self.values, self.missing) {
            (Values::Mapped(m), false) => m.view(),
            (Values::Mapped(m), true) => m.view_with_missing(),
            (Values::F64(v), false) => DataView::from_f64(v, self.n_features),
            (Values::F64(v), true) => DataView::with_missing(gmm_gpu::Samples::F64(v), self.n_features),
        };
        view.map_err(|e| match e {
            GmmError::NonFiniteData { row, column, value } => CliError::NonFinite {
                path: self.path.clone(),
                row,
                column,
                value,
            },
            source => CliError::Data {
                path: self.path.clone(),
                source,
            },
        })
    }

    /// The file's row this data starts at (0 unless it is one rank's part).
    #[cfg(feature = "mpi")]
    pub fn first_row(&self) -> usize {
        match &self.values {
            Values::Mapped(m) => m.first_row(),
            Values::F64(_) => 0,
        }
    }

    /// The rows of the whole file (more than `n_samples` for one rank's part).
    pub fn total_rows(&self) -> usize {
        match &self.values {
            Values::Mapped(m) => m.total_rows(),
            Values::F64(_) => self.n_samples(),
        }
    }

    /// The number of samples.
    pub fn n_samples(&self) -> usize {
        match &self.values {
            Values::Mapped(m) => m.n_samples(),
            Values::F64(v) => v.len() / self.n_features.max(1),
        }
    }
}

/// Where and how to read the data: the options every data-reading command shares.
pub struct DataSpec<'a> {
    pub path: &'a Path,
    pub columns: Option<&'a str>,
    pub features: Option<usize>,
    pub format: DataFormat,
    /// NaN marks a missing value (in CSV, so do an empty field and NA).
    pub missing: bool,
}

/// Reads a data file as `spec` says.
pub fn read_data(spec: &DataSpec) -> Result<Data, CliError> {
    read_data_in(spec, None)
}

/// Maps only rank `rank`'s contiguous share of the rows of `spec`'s file, of `size` ranks (a
/// distributed fit): .npy and raw float32 only. The data is not validated here (see
/// `GmmParams::fit_distributed`).
#[cfg(feature = "mpi")]
pub fn read_part(spec: &DataSpec, rank: usize, size: usize) -> Result<Data, CliError> {
    read_data_in(spec, Some((rank, size)))
}

fn read_data_in(spec: &DataSpec, part: Option<(usize, usize)>) -> Result<Data, CliError> {
    let path = spec.path;
    let rows = |n: usize| match part {
        Some((rank, size)) => gmm_gpu::distributed::rows_of(rank, size, n),
        None => 0..n,
    };
    if spec.features == Some(0) {
        return Err(CliError::ZeroFeatures);
    }
    let format = match spec.format {
        DataFormat::Auto => match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase) {
            Some(e) if e == "npy" => DataFormat::Npy,
            Some(e) if e == "csv" => DataFormat::Csv,
            _ => DataFormat::Raw,
        },
        f => f,
    };
    if spec.columns.is_some() && format != DataFormat::Csv {
        return Err(CliError::ColumnsNotCsv {
            path: path.to_path_buf(),
            format: if format == DataFormat::Npy {
                ".npy"
            } else {
                "raw float32"
            },
        });
    }
    // Opened here first for the CLI's own wording of a missing file or a folder.
    let file = open(path)?;
    let data = match format {
        DataFormat::Npy => mapped(path, MappedData::open_npy_rows(path, rows))?,
        DataFormat::Csv if part.is_some() => {
            return Err(CliError::CsvUnderMpi {
                path: path.to_path_buf(),
            });
        }
        DataFormat::Csv => read_csv(path, file, spec.columns, spec.missing)?,
        _ => {
            let d = spec.features.ok_or_else(|| CliError::RawNeedsFeatures {
                path: path.to_path_buf(),
            })?;
            mapped(path, MappedData::open_raw_f32_rows(path, d, rows))?
        }
    };
    if let Some(given) = spec.features.filter(|&g| g != data.n_features) {
        return Err(CliError::FeaturesMismatch {
            path: path.to_path_buf(),
            given,
            found: data.n_features,
        });
    }
    if data.total_rows() == 0 {
        return Err(CliError::EmptyData {
            path: path.to_path_buf(),
        });
    }
    Ok(Data {
        missing: spec.missing,
        ..data
    })
}

/// Writes `model` as JSON to `out`, atomically.
pub fn write_model(out: &Path, model: &GmmModel) -> Result<(), CliError> {
    let json = model.to_json();
    write_atomic(out, |w| {
        w.write_all(json.as_bytes())?;
        w.write_all(b"\n")
    })
}

/// Opens a file for reading, with errors naming it (and saying when it is a directory).
pub fn open(path: &Path) -> Result<File, CliError> {
    if path.is_dir() {
        return Err(CliError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    File::open(path).map_err(|source| CliError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a whole text file (model or init JSON).
pub fn read_text(path: &Path) -> Result<String, CliError> {
    let mut text = String::new();
    open(path)?.read_to_string(&mut text).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text)
}

/// Reads a model written by `gmm fit -o`.
pub fn read_model(path: &Path) -> Result<GmmModel, CliError> {
    GmmModel::from_json(&read_text(path)?).map_err(|source| CliError::ModelJson {
        path: path.to_path_buf(),
        source,
    })
}

/// A mapped .npy or raw float32 file as `Data`; the library's errors already name the file.
fn mapped(path: &Path, m: Result<MappedData, GmmError>) -> Result<Data, CliError> {
    let m = m.map_err(|source| match source {
        GmmError::DataFile { .. } => CliError::File(source),
        source => CliError::Data {
            path: path.to_path_buf(),
            source,
        },
    })?;
    Ok(Data {
        missing: false,
        path: path.to_path_buf(),
        n_features: m.n_features(),
        values: Values::Mapped(m),
    })
}

/// Whether a CSV field reads as a number (NaN and infinity count: they are numbers, just not finite).
fn numeric(field: &str) -> bool {
    field.trim().parse::<f64>().is_ok()
}

/// Reads a CSV file into f64, detecting a header row, keeping the `--columns` chosen.
fn read_csv(path: &Path, file: File, columns: Option<&str>, missing: bool) -> Result<Data, CliError> {
    let csv_err = |source| CliError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(file));
    let mut records = reader.records();
    let Some(first) = records.next().transpose().map_err(csv_err)? else {
        return Err(CliError::EmptyData {
            path: path.to_path_buf(),
        });
    };
    let n_columns = first.len();
    // A first row with any non-empty, non-numeric field is a header.
    let header: Option<Vec<String>> = first
        .iter()
        .any(|f| !f.trim().is_empty() && !numeric(f))
        .then(|| first.iter().map(|f| f.trim().to_string()).collect());
    let selected: Vec<usize> = match columns {
        None => (0..n_columns).collect(),
        Some(list) => list
            .split(',')
            .map(|token| select_column(path, token.trim(), header.as_deref(), n_columns))
            .collect::<Result<_, _>>()?,
    };
    let column_name = |c: usize| match &header {
        Some(h) => h[c].clone(),
        None => c.to_string(),
    };
    let mut values = Vec::new();
    let parse_row = |record: &csv::StringRecord, values: &mut Vec<f64>| -> Result<(), CliError> {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != n_columns {
            return Err(CliError::CsvRagged {
                path: path.to_path_buf(),
                line,
                expected: n_columns,
                found: record.len(),
            });
        }
        for &c in &selected {
            let field = record[c].trim();
            if missing && (field.is_empty() || field.eq_ignore_ascii_case("na") || field.eq_ignore_ascii_case("nan")) {
                values.push(f64::NAN);
                continue;
            }
            match field.parse::<f64>() {
                Ok(v) if v.is_finite() => values.push(v),
                Ok(_) => {
                    return Err(CliError::CsvNotFinite {
                        path: path.to_path_buf(),
                        line,
                        column: column_name(c),
                        value: field.to_string(),
                    });
                }
                Err(_) => {
                    return Err(CliError::CsvNotNumber {
                        path: path.to_path_buf(),
                        line,
                        column: column_name(c),
                        value: field.to_string(),
                    });
                }
            }
        }
        Ok(())
    };
    if header.is_none() {
        parse_row(&first, &mut values)?;
    }
    for record in records {
        parse_row(&record.map_err(csv_err)?, &mut values)?;
    }
    Ok(Data {
        missing,
        path: path.to_path_buf(),
        values: Values::F64(values),
        n_features: selected.len(),
    })
}

/// One `--columns` entry: a header name first, else a 0-based index.
fn select_column(path: &Path, token: &str, header: Option<&[String]>, n_columns: usize) -> Result<usize, CliError> {
    if let Some(i) = header.and_then(|h| h.iter().position(|name| name == token)) {
        return Ok(i);
    }
    match token.parse::<usize>() {
        Ok(index) if index < n_columns => Ok(index),
        Ok(index) => Err(CliError::ColumnIndex {
            path: path.to_path_buf(),
            index,
            n_columns,
        }),
        Err(_) => Err(CliError::ColumnNotFound {
            path: path.to_path_buf(),
            name: token.to_string(),
            available: match header {
                Some(h) => h.join(", "),
                None => format!(
                    "none by name: the file has no header row, so use 0-based indices 0 to {}",
                    n_columns.saturating_sub(1)
                ),
            },
        }),
    }
}

// ---- outputs --------------------------------------------------------------------------------

/// The output forms for arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutKind {
    Csv,
    Npy,
}

/// The output kind of `path` by its extension (.csv or .npy).
pub fn out_kind(path: &Path) -> Result<OutKind, CliError> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Ok(OutKind::Csv),
        Some("npy") => Ok(OutKind::Npy),
        _ => Err(CliError::OutputFormat {
            path: path.to_path_buf(),
            expected: ".csv or .npy",
        }),
    }
}

/// The folder an output goes to (checked to exist), where its temporary file is made.
pub fn out_dir(path: &Path) -> Result<PathBuf, CliError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(CliError::OutputFolder {
            path: path.to_path_buf(),
            dir,
        });
    }
    if path.is_dir() {
        return Err(CliError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(dir)
}

/// A temporary file in `dir` (deleted unless persisted). On Unix it is created with mode 0666
/// less the umask, as an ordinary new file would be (tempfile's default is 0600).
pub fn temp_file_in(dir: &Path, suffix: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".gmm-").suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Writes `path` atomically: `write` fills a temporary file in the same folder, which then replaces `path`.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let dir = out_dir(path)?;
    let err = |source| CliError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = temp_file_in(&dir, ".tmp").map_err(err)?;
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        write(&mut w).map_err(err)?;
        w.flush().map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// A table of numbers to write: a header and rows of `n_cols` values.
pub struct Table<'a> {
    pub header: Vec<String>,
    pub n_cols: usize,
    pub values: Cells<'a>,
}

/// The cells of a [`Table`], row-major.
pub enum Cells<'a> {
    F64(&'a [f64]),
    Labels(&'a [usize]),
}

/// Writes a table as CSV (floats in shortest round-trip form) to any writer.
pub fn write_csv(w: &mut impl Write, t: &Table) -> std::io::Result<()> {
    writeln!(w, "{}", t.header.join(","))?;
    match t.values {
        Cells::F64(v) => {
            for row in v.chunks(t.n_cols.max(1)) {
                for (j, x) in row.iter().enumerate() {
                    if j > 0 {
                        w.write_all(b",")?;
                    }
                    write!(w, "{x}")?;
                }
                w.write_all(b"\n")?;
            }
        }
        Cells::Labels(v) => {
            for row in v.chunks(t.n_cols.max(1)) {
                let line: Vec<String> = row.iter().map(usize::to_string).collect();
                writeln!(w, "{}", line.join(","))?;
            }
        }
    }
    Ok(())
}

/// Writes a table as a .npy array (NPY format 1.0): float64 or int64, shape (n,) when it has one
/// column, else (n, n_cols).
pub fn write_npy(w: &mut impl Write, t: &Table) -> std::io::Result<()> {
    let (descr, len) = match t.values {
        Cells::F64(v) => ("<f8", v.len()),
        Cells::Labels(v) => ("<i8", v.len()),
    };
    w.write_all(&npy_header(descr, len / t.n_cols.max(1), t.n_cols))?;
    write_npy_values(w, t)
}

/// A .npy (format 1.0) header for `n` rows of `n_cols` values of `descr` (one column: a 1-D array).
pub fn npy_header(descr: &str, n: usize, n_cols: usize) -> Vec<u8> {
    let shape = if n_cols == 1 {
        format!("({n},)")
    } else {
        format!("({n}, {n_cols})")
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + dict + newline, padded to a multiple of 64.
    let total = (10 + dict.len() + 1).div_ceil(64) * 64;
    dict.push_str(&" ".repeat(total - 10 - dict.len() - 1));
    dict.push('\n');
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&u16::try_from(dict.len()).unwrap_or(u16::MAX).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h
}

/// A table's values as a .npy body: little-endian f64, or int64 labels.
pub fn write_npy_values(w: &mut impl Write, t: &Table) -> std::io::Result<()> {
    match t.values {
        Cells::F64(v) => v.iter().try_for_each(|x| w.write_all(&x.to_le_bytes())),
        Cells::Labels(v) => v.iter().try_for_each(|&x| w.write_all(&(x as i64).to_le_bytes())),
    }
}

/// Writes a table to `out` (.csv or .npy, atomically), or as CSV to stdout without `out`.
pub fn write_table(out: Option<&Path>, t: &Table) -> Result<(), CliError> {
    match out {
        Some(path) => {
            let kind = out_kind(path)?;
            write_atomic(path, |w| match kind {
                OutKind::Csv => write_csv(w, t),
                OutKind::Npy => write_npy(w, t),
            })
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            write_csv(&mut w, t)
                .and_then(|()| w.flush())
                .map_err(|source| CliError::Stdout { source })
        }
    }
}
