//! Nested JSON arrays of numbers, as scikit-learn's attributes are written, to flat row-major values.

use serde_json::Value;

/// A nested array that does not have the shape it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("has shape {found} but needs {expected:?}")]
pub struct ShapeError {
    /// The shape it should have.
    pub expected: Vec<usize>,
    /// What it has: its shape, or why it has none (a ragged array, a string, null …).
    pub found: String,
}

/// The shape of a nested array of numbers (`[]` for a number), or why it has none.
fn shape_of(v: &Value) -> Result<Vec<usize>, String> {
    match v {
        Value::Number(_) => Ok(vec![]),
        Value::Array(items) => {
            let inner: Vec<Vec<usize>> = items.iter().map(shape_of).collect::<Result<_, _>>()?;
            match inner.first() {
                None => Ok(vec![0]),
                Some(first) if inner.iter().all(|s| s == first) => Ok([vec![items.len()], first.clone()].concat()),
                Some(_) => Err(format!(
                    "ragged (rows of different shapes: {})",
                    inner.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
                )),
            }
        }
        Value::Null => Err("null where a number was expected".into()),
        other => Err(format!("{other} where a number was expected")),
    }
}

fn push_numbers(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.push(n.as_f64().unwrap_or(f64::NAN)),
        Value::Array(items) => items.iter().for_each(|i| push_numbers(i, out)),
        _ => {}
    }
}

/// Checks that `value` is a nested array of numbers of exactly the `expected` shape and returns its
/// values flat, in row-major order.
pub fn flatten_nested(value: &Value, expected: &[usize]) -> Result<Vec<f64>, ShapeError> {
    let shape = shape_of(value).map_err(|found| ShapeError {
        expected: expected.to_vec(),
        found,
    })?;
    if shape != expected {
        return Err(ShapeError {
            expected: expected.to_vec(),
            found: format!("{shape:?}"),
        });
    }
    let mut out = Vec::with_capacity(expected.iter().product());
    push_numbers(value, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_in_row_major_order_and_names_bad_shapes() {
        assert_eq!(
            flatten_nested(&json!([[1, 2, 3], [4, 5, 6]]), &[2, 3]).unwrap(),
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        assert_eq!(flatten_nested(&json!([0.5]), &[1]).unwrap(), [0.5]);
        let e = flatten_nested(&json!([[1, 2], [3, 4]]), &[2, 3]).unwrap_err();
        assert_eq!(e.to_string(), "has shape [2, 2] but needs [2, 3]");
        let e = flatten_nested(&json!([[1, 2], [3]]), &[2, 2]).unwrap_err();
        assert!(e.found.starts_with("ragged"), "{e}");
        let e = flatten_nested(&json!([1, null]), &[2]).unwrap_err();
        assert!(e.found.contains("null"), "{e}");
    }
}
