//! Reading `--init-labels`: a whole .npy file of one integer label per sample (any little-endian
//! integer dtype), checked for its header, shape, size and sign. The data reader (`io`) maps float
//! arrays only; labels are small and read into memory here.

use std::io::Read;
use std::path::Path;

use crate::error::{CliError, LabelsProblem};
use crate::io;

/// The labels of the .npy file at `path`, each as a component index.
pub fn read_labels(path: &Path) -> Result<Vec<usize>, CliError> {
    let in_option = |e: CliError| CliError::StartFile {
        option: "--init-labels",
        source: Box::new(e),
    };
    let mut bytes = Vec::new();
    io::open(path)
        .map_err(in_option)?
        .read_to_end(&mut bytes)
        .map_err(|source| {
            in_option(CliError::Read {
                path: path.to_path_buf(),
                source,
            })
        })?;
    parse(&bytes).map_err(|problem| CliError::InitLabelsFile {
        path: path.to_path_buf(),
        problem,
    })
}

/// An integer dtype: its width in bytes and whether it is signed.
fn dtype(descr: &str) -> Result<(usize, bool), LabelsProblem> {
    let unsupported = || LabelsProblem::Dtype {
        descr: descr.to_string(),
    };
    // One-byte types have no byte order ('|'); wider ones must be little-endian ('<').
    let (order, kind) = descr.split_at_checked(1).ok_or_else(unsupported)?;
    let (signed, width) = match kind {
        "i1" => (true, 1),
        "u1" => (false, 1),
        "i2" => (true, 2),
        "u2" => (false, 2),
        "i4" => (true, 4),
        "u4" => (false, 4),
        "i8" => (true, 8),
        "u8" => (false, 8),
        _ => return Err(unsupported()),
    };
    match order {
        "<" => Ok((width, signed)),
        "|" | "=" if width == 1 => Ok((width, signed)),
        _ => Err(unsupported()),
    }
}

/// The labels in a .npy file's bytes.
fn parse(bytes: &[u8]) -> Result<Vec<usize>, LabelsProblem> {
    let header = |reason| LabelsProblem::Header { reason };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(header("it does not start with the .npy magic string"));
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(header("its format version is not 1, 2 or 3")),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or(header("the header is cut short"))?;
    let text = std::str::from_utf8(&bytes[start..end]).map_err(|_| header("the header is not text"))?;
    let value = |key: &str| {
        let at = text
            .find(&format!("'{key}'"))
            .ok_or(header("a header key is missing"))?;
        text[at + key.len() + 2..]
            .trim_start()
            .strip_prefix(':')
            .map(str::trim_start)
            .ok_or(header("a header key has no value"))
    };
    let descr = value("descr")?
        .strip_prefix('\'')
        .and_then(|v| v.split_once('\''))
        .ok_or(header("'descr' is not a string"))?
        .0;
    let (width, signed) = dtype(descr)?;
    let shape: Vec<usize> = value("shape")?
        .strip_prefix('(')
        .and_then(|v| v.split_once(')'))
        .ok_or(header("'shape' is not a tuple"))?
        .0
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| header("'shape' is not whole numbers")))
        .collect::<Result<_, _>>()?;
    // One label per sample: (N,), or a column (N, 1), whose order does not matter.
    let n = match shape[..] {
        [n] | [n, 1] => n,
        _ => return Err(LabelsProblem::Shape { shape }),
    };
    let data = &bytes[end..];
    let expected = n.saturating_mul(width);
    if data.len() != expected {
        return Err(LabelsProblem::Size {
            expected,
            actual: data.len(),
        });
    }
    data.chunks_exact(width)
        .enumerate()
        .map(|(row, b)| {
            // Widened to 8 bytes: sign-extended for signed types, zero-extended otherwise.
            let fill = if signed && b[width - 1] & 0x80 != 0 { 0xff } else { 0 };
            let mut wide = [fill; 8];
            wide[..width].copy_from_slice(b);
            if signed {
                let value = i64::from_le_bytes(wide);
                usize::try_from(value).map_err(|_| LabelsProblem::Negative { row, value })
            } else {
                // A u64 label above usize::MAX (32-bit hosts) is out of range as any label >= K.
                Ok(usize::try_from(u64::from_le_bytes(wide)).unwrap_or(usize::MAX))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn every_integer_width_reads_and_negatives_are_refused() {
        let i2: Vec<u8> = [3i16, 0, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse(&npy("<i2", "(3,)", &i2)).unwrap(), [3, 0, 2]);
        let u4: Vec<u8> = [1u32, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse(&npy("<u4", "(2, 1)", &u4)).unwrap(), [1, 7]);
        assert_eq!(parse(&npy("|u1", "(2,)", &[255, 4])).unwrap(), [255, 4]);
        let i1 = parse(&npy("|i1", "(2,)", &[1, 0xfe]));
        assert!(
            matches!(i1, Err(LabelsProblem::Negative { row: 1, value: -2 })),
            "{i1:?}"
        );
        let big = parse(&npy(">i8", "(1,)", &[0; 8]));
        assert!(matches!(big, Err(LabelsProblem::Dtype { .. })), "{big:?}");
        let short = parse(&npy("<i8", "(2,)", &[0; 8]));
        assert!(
            matches!(
                short,
                Err(LabelsProblem::Size {
                    expected: 16,
                    actual: 8
                })
            ),
            "{short:?}"
        );
        let matrix = parse(&npy("<i8", "(1, 2)", &[0; 16]));
        assert!(matches!(matrix, Err(LabelsProblem::Shape { .. })), "{matrix:?}");
        assert!(matches!(parse(b"not npy"), Err(LabelsProblem::Header { .. })));
    }
}
