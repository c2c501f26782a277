//! Memory-mapped data files: `.npy` (float32 or float64, C order, little-endian) and raw float32,
//! viewed in place, so that a data set larger than memory is paged in and out by the OS and never
//! copied whole.
//!
//! Every check runs before the file is mapped: the header, the dtype, the order, and that the file
//! holds exactly the bytes the header (or the row width) promises. So a truncated file is a typed
//! [`GmmError::DataFile`], never a SIGBUS.
//!
//! **If the file changes during a fit**, the fit sees whatever the OS pages in: values rewritten in
//! place may give a model of neither version (and a NaN written in place is not caught, because
//! the data is validated once, when [`MappedData::view`] is called); a file truncated while mapped
//! makes the process die of SIGBUS when it reads past the new end, as with any memory map. Write
//! a new file and rename it over the old one instead: a fit keeps the old file's pages.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::data::{DataView, Samples};
use crate::error::{DataFileProblem, GmmError};

/// The precision of a file's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// 4-byte IEEE floats.
    F32,
    /// 8-byte IEEE floats.
    F64,
}

impl Precision {
    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F64 => 8,
        }
    }
}

/// A data file mapped into memory, checked, and not yet validated value by value (that is
/// [`MappedData::view`]).
#[derive(Debug)]
pub struct MappedData {
    path: PathBuf,
    /// None when the file holds no values (a zero-length map is an error on some systems).
    map: Option<Mmap>,
    /// Where the values start in the file.
    offset: usize,
    precision: Precision,
    n_samples: usize,
    n_features: usize,
    /// The file's first row held here, and the file's rows in all (a part of a file, for one rank
    /// of a distributed fit, holds fewer).
    first_row: usize,
    total_rows: usize,
}

/// The parsed part of a `.npy` header that this reader needs.
#[derive(Debug, PartialEq)]
struct NpyHeader {
    /// Where the data starts.
    offset: usize,
    descr: String,
    fortran_order: bool,
    shape: Vec<u64>,
}

/// Reads the header of a `.npy` file from its first bytes (format versions 1, 2 and 3).
fn parse_npy_header(bytes: &[u8]) -> Result<NpyHeader, DataFileProblem> {
    let bad = |why: &str| DataFileProblem::NpyHeader {
        reason: why.to_string(),
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("it does not start with the .npy magic string"));
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("format version {v} is not 1, 2 or 3"))),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("the header is cut short"))?;
    let text = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("the header is not text"))?;
    let value = |key: &str| -> Result<&str, DataFileProblem> {
        let at = [format!("'{key}'"), format!("\"{key}\"")]
            .iter()
            .find_map(|k| text.find(k.as_str()).map(|i| i + k.len()))
            .ok_or_else(|| bad(&format!("the header has no '{key}'")))?;
        let rest = text[at..].trim_start();
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| bad(&format!("'{key}' has no value")))?;
        Ok(rest.trim_start())
    };
    // 'descr': a quoted string.
    let descr = {
        let v = value("descr")?;
        let quote = v
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
            .ok_or_else(|| bad("'descr' is not a string"))?;
        let close = v[1..]
            .find(quote)
            .ok_or_else(|| bad("'descr' is not a closed string"))?;
        v[1..1 + close].to_string()
    };
    let fortran_order = {
        let v = value("fortran_order")?;
        if v.starts_with("True") {
            true
        } else if v.starts_with("False") {
            false
        } else {
            return Err(bad("'fortran_order' is not True or False"));
        }
    };
    // 'shape': a tuple of integers, "()" and "(n,)" included.
    let shape = {
        let v = value("shape")?;
        let inner = v
            .strip_prefix('(')
            .and_then(|v| v.split_once(')'))
            .ok_or_else(|| bad("'shape' is not a tuple"))?;
        inner
            .0
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.trim_end_matches('L')
                    .parse::<u64>()
                    .map_err(|_| bad("'shape' holds a value that is not a whole number"))
            })
            .collect::<Result<Vec<u64>, _>>()?
    };
    Ok(NpyHeader {
        offset: end,
        descr,
        fortran_order,
        shape,
    })
}

/// The precision of a little-endian float dtype, or why it cannot be read in place.
fn precision_of(descr: &str) -> Result<Precision, DataFileProblem> {
    let unsupported = || DataFileProblem::NpyDtype {
        dtype: descr.to_string(),
    };
    let (order, kind) = descr.split_at(descr.len().min(1));
    let precision = match kind {
        "f4" => Precision::F32,
        "f8" => Precision::F64,
        _ => return Err(unsupported()),
    };
    match order {
        "<" | "=" if cfg!(target_endian = "little") => Ok(precision),
        "<" => Err(unsupported()),
        ">" => Err(DataFileProblem::BigEndian {
            dtype: descr.to_string(),
        }),
        _ => Err(unsupported()),
    }
}

impl MappedData {
    /// Maps a `.npy` file: float32 or float64, little-endian, C order (or Fortran order where one
    /// dimension is 1, which is the same layout), 1-D (one feature) or 2-D (samples x features).
    pub fn open_npy(path: impl AsRef<Path>) -> Result<Self, GmmError> {
        Self::open_npy_rows(path, |n| 0..n)
    }

    /// As [`MappedData::open_npy`], mapping only the rows `rows(n_samples)` picks (clamped to the
    /// file): one rank's part of a file that all ranks share.
    pub fn open_npy_rows(
        path: impl AsRef<Path>,
        rows: impl FnOnce(usize) -> std::ops::Range<usize>,
    ) -> Result<Self, GmmError> {
        let path = path.as_ref();
        let fail = |problem| GmmError::DataFile {
            path: path.to_path_buf(),
            problem,
        };
        let file = open(path)?;
        let file_len = file_len(path, &file)?;
        // The header is at most a few kilobytes (numpy writes 128 bytes or a multiple of 64).
        let mut head = vec![0u8; file_len.min(1 << 16) as usize];
        read_at(&file, &mut head).map_err(|e| io_problem(path, e))?;
        let header = parse_npy_header(&head).map_err(fail)?;
        let precision = precision_of(&header.descr).map_err(fail)?;
        let (n, d) = match header.shape[..] {
            [n] => (n, 1),
            [n, d] => (n, d),
            _ => {
                return Err(fail(DataFileProblem::NpyDims {
                    shape: header.shape.clone(),
                }));
            }
        };
        if header.fortran_order && n > 1 && d > 1 {
            return Err(fail(DataFileProblem::FortranOrder));
        }
        let expected = n.checked_mul(d).and_then(|v| v.checked_mul(precision.size() as u64));
        let actual = file_len - header.offset as u64;
        match expected {
            Some(e) if e == actual => {}
            Some(e) if e < actual => return Err(fail(DataFileProblem::Trailing { expected: e, actual })),
            _ => {
                return Err(fail(DataFileProblem::Truncated {
                    expected: expected.unwrap_or(u64::MAX),
                    actual,
                }));
            }
        }
        if header.offset % precision.size() != 0 {
            return Err(fail(DataFileProblem::Misaligned { offset: header.offset }));
        }
        let too_large = || fail(DataFileProblem::TooLarge { bytes: file_len });
        let n_samples = usize::try_from(n).map_err(|_| too_large())?;
        let n_features = usize::try_from(d).map_err(|_| too_large())?;
        if n_features == 0 {
            return Err(GmmError::NoFeatures);
        }
        Self::map(
            path,
            file,
            header.offset,
            precision,
            (n_samples, n_features),
            rows(n_samples),
        )
    }

    /// Maps a file of raw little-endian float32 values, row-major with `n_features` columns.
    pub fn open_raw_f32(path: impl AsRef<Path>, n_features: usize) -> Result<Self, GmmError> {
        Self::open_raw_f32_rows(path, n_features, |n| 0..n)
    }

    /// As [`MappedData::open_raw_f32`], mapping only the rows `rows(n_samples)` picks.
    pub fn open_raw_f32_rows(
        path: impl AsRef<Path>,
        n_features: usize,
        rows: impl FnOnce(usize) -> std::ops::Range<usize>,
    ) -> Result<Self, GmmError> {
        let path = path.as_ref();
        if n_features == 0 {
            return Err(GmmError::NoFeatures);
        }
        let file = open(path)?;
        let bytes = file_len(path, &file)?;
        let fail = |problem| GmmError::DataFile {
            path: path.to_path_buf(),
            problem,
        };
        let row = 4 * n_features as u64;
        if bytes % row != 0 {
            return Err(fail(DataFileProblem::RawSize { bytes, n_features }));
        }
        if cfg!(target_endian = "big") {
            return Err(fail(DataFileProblem::BigEndian { dtype: "<f4".into() }));
        }
        let n_samples = usize::try_from(bytes / row).map_err(|_| fail(DataFileProblem::TooLarge { bytes }))?;
        Self::map(path, file, 0, Precision::F32, (n_samples, n_features), rows(n_samples))
    }

    /// Maps `rows` of the `(n, d)` values that start at byte `data_start` of the checked `file`.
    fn map(
        path: &Path,
        file: File,
        data_start: usize,
        precision: Precision,
        (n, n_features): (usize, usize),
        rows: std::ops::Range<usize>,
    ) -> Result<Self, GmmError> {
        let rows = rows.start.min(n)..rows.end.clamp(rows.start.min(n), n);
        let row_bytes = n_features * precision.size();
        let start = data_start + rows.start * row_bytes;
        let len = rows.len() * row_bytes;
        // A map starts on a page: from the page holding the first byte (4 KiB divides every page size).
        const PAGE: usize = 4096;
        let offset = start % PAGE;
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the map is only read, and the length was checked against the file just now.
            // Another process changing the file while it is mapped is the documented hazard of
            // every memory map (see the module comment): it cannot be ruled out from here.
            let map = unsafe {
                memmap2::MmapOptions::new()
                    .offset((start - offset) as u64)
                    .len(offset + len)
                    .map(&file)
            }
            .map_err(|e| io_problem(path, e))?;
            #[cfg(unix)]
            {
                // A hint that the fit reads front to back (an error only means no read-ahead).
                let _ = map.advise(memmap2::Advice::Sequential);
            }
            Some(map)
        };
        Ok(Self {
            path: path.to_path_buf(),
            map,
            offset,
            precision,
            n_samples: rows.len(),
            n_features,
            first_row: rows.start,
            total_rows: n,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of samples (rows).
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// Number of features (columns).
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The file's row that is this map's first (0 unless only some rows were mapped).
    pub fn first_row(&self) -> usize {
        self.first_row
    }

    /// The rows of the whole file.
    pub fn total_rows(&self) -> usize {
        self.total_rows
    }

    /// The mapped values, not yet checked for NaN or infinity (a distributed fit checks them on
    /// every rank at once).
    pub fn samples(&self) -> Samples<'_> {
        let len = self.n_samples * self.n_features * self.precision.size();
        let bytes = self
            .map
            .as_ref()
            .map_or(&[][..], |m| &m[self.offset..self.offset + len]);
        // The map starts on a page and the data on a multiple of the value size: aligned.
        match self.precision {
            Precision::F32 => Samples::F32(bytemuck::cast_slice(bytes)),
            Precision::F64 => Samples::F64(bytemuck::cast_slice(bytes)),
        }
    }

    /// The precision of the values in the file.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The validated view over the mapped values (no copy): it reads the file once to check that
    /// every value is finite, and a NaN or infinity is [`GmmError::NonFiniteData`] with its row
    /// and column.
    pub fn view(&self) -> Result<DataView<'_>, GmmError> {
        DataView::new(self.samples(), self.n_features)
    }

    /// As [`MappedData::view`], with NaN read as a missing value ([`DataView::with_missing`]).
    pub fn view_with_missing(&self) -> Result<DataView<'_>, GmmError> {
        DataView::with_missing(self.samples(), self.n_features)
    }
}

fn io_problem(path: &Path, e: std::io::Error) -> GmmError {
    GmmError::DataFile {
        path: path.to_path_buf(),
        problem: DataFileProblem::Io {
            kind: e.kind(),
            message: e.to_string(),
        },
    }
}

fn open(path: &Path) -> Result<File, GmmError> {
    if path.is_dir() {
        return Err(GmmError::DataFile {
            path: path.to_path_buf(),
            problem: DataFileProblem::Directory,
        });
    }
    File::open(path).map_err(|e| io_problem(path, e))
}

fn file_len(path: &Path, file: &File) -> Result<u64, GmmError> {
    Ok(file.metadata().map_err(|e| io_problem(path, e))?.len())
}

/// Fills `buf` from the start of `file`.
fn read_at(mut file: &File, buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 .npy header as numpy writes it: padded with spaces to a multiple of 64, then '\n'.
    fn npy_header(descr: &str, fortran: bool, shape: &str) -> Vec<u8> {
        let dict = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        let total = (10 + dict.len() + 1).div_ceil(64) * 64;
        let mut h = b"\x93NUMPY\x01\x00".to_vec();
        h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
        h.extend_from_slice(dict.as_bytes());
        h.resize(total - 1, b' ');
        h.push(b'\n');
        h
    }

    #[test]
    fn parses_the_headers_numpy_writes() {
        let h = parse_npy_header(&npy_header("<f8", false, "(3, 2)")).unwrap();
        assert_eq!(
            h,
            NpyHeader {
                offset: 128,
                descr: "<f8".into(),
                fortran_order: false,
                shape: vec![3, 2]
            }
        );
        assert_eq!(
            parse_npy_header(&npy_header("<f4", true, "(7,)")).unwrap().shape,
            vec![7]
        );
        assert_eq!(
            parse_npy_header(&npy_header("<f4", false, "()")).unwrap().shape,
            Vec::<u64>::new()
        );
    }

    #[test]
    fn rejects_what_it_cannot_map_with_the_reason() {
        let reason = |bytes: &[u8]| match parse_npy_header(bytes) {
            Err(DataFileProblem::NpyHeader { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason(b"PK\x03\x04 not numpy").contains("magic"));
        let mut cut = npy_header("<f8", false, "(3, 2)");
        cut.truncate(40);
        assert!(reason(&cut).contains("cut short"));
        assert!(reason(&npy_header("<f8", false, "[3, 2]")).contains("tuple"));
        assert!(matches!(precision_of(">f8"), Err(DataFileProblem::BigEndian { .. })));
        assert!(matches!(precision_of("<i4"), Err(DataFileProblem::NpyDtype { .. })));
        assert_eq!(precision_of("<f4").unwrap(), Precision::F32);
        assert_eq!(precision_of("<f8").unwrap(), Precision::F64);
    }
}
