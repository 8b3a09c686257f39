//! Range checks shared by the validating `with_*` setters of the configuration types.
//!
//! Each check returns the value it was given when it is acceptable, and otherwise an
//! [`Error::InvalidParameter`] naming the parameter, whose message reads
//! `"<name> must be <expected>, got <value>"`.

use crate::error::{Error, Result};

/// `v` finite and `> 0`.
pub(crate) fn positive(name: &'static str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::parameter(name, v, "finite and > 0"))
    }
}

/// `v` finite and `>= 0`.
pub(crate) fn non_negative(name: &'static str, v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::parameter(name, v, "finite and >= 0"))
    }
}

/// A count `n >= 1`.
pub(crate) fn at_least_one(name: &'static str, n: usize) -> Result<usize> {
    if n >= 1 {
        Ok(n)
    } else {
        Err(Error::parameter(name, n, ">= 1"))
    }
}

/// `v` in `[0, 1)` (momentum-like factors; NaN is rejected).
pub(crate) fn in_unit_interval_open_right(name: &'static str, v: f64) -> Result<f64> {
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(Error::parameter(name, v, "in [0, 1)"))
    }
}

/// `v` in the open interval `(0, 1)` (NaN is rejected).
pub(crate) fn in_open_unit_interval(name: &'static str, v: f64) -> Result<f64> {
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(Error::parameter(name, v, "in (0, 1)"))
    }
}

/// `v` finite and `> 1` (growth factors).
pub(crate) fn greater_than_one(name: &'static str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 1.0 {
        Ok(v)
    } else {
        Err(Error::parameter(name, v, "finite and > 1"))
    }
}

/// `v >= 0`, `+inf` allowed (margins; NaN is rejected).
pub(crate) fn non_negative_or_infinite(name: &'static str, v: f64) -> Result<f64> {
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::parameter(name, v, ">= 0 (+inf allowed)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects_the_documented_ranges() {
        assert_eq!(positive("x", 1e-300).unwrap(), 1e-300);
        for v in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(positive("x", v).is_err(), "{v}");
        }
        assert_eq!(non_negative("x", 0.0).unwrap(), 0.0);
        for v in [-1e-300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(non_negative("x", v).is_err(), "{v}");
        }
        assert_eq!(at_least_one("n", 1).unwrap(), 1);
        assert!(at_least_one("n", 0).is_err());
        assert_eq!(in_unit_interval_open_right("m", 0.0).unwrap(), 0.0);
        for v in [1.0, -1e-300, f64::NAN] {
            assert!(in_unit_interval_open_right("m", v).is_err(), "{v}");
        }
        assert_eq!(in_open_unit_interval("t", 0.5).unwrap(), 0.5);
        for v in [0.0, 1.0, f64::NAN] {
            assert!(in_open_unit_interval("t", v).is_err(), "{v}");
        }
        assert_eq!(greater_than_one("g", 1.5).unwrap(), 1.5);
        for v in [1.0, f64::NAN, f64::INFINITY] {
            assert!(greater_than_one("g", v).is_err(), "{v}");
        }
        assert_eq!(
            non_negative_or_infinite("p", f64::INFINITY).unwrap(),
            f64::INFINITY
        );
        for v in [-1e-300, f64::NAN] {
            assert!(non_negative_or_infinite("p", v).is_err(), "{v}");
        }
    }

    #[test]
    fn errors_carry_the_name_value_and_range() {
        match positive("learning rate", -2.0) {
            Err(e @ Error::InvalidParameter { name, .. }) => {
                assert_eq!(name, "learning rate");
                assert_eq!(
                    e.to_string(),
                    "learning rate must be finite and > 0, got -2"
                );
            }
            other => panic!("{other:?}"),
        }
        match at_least_one("epochs", 0) {
            Err(Error::InvalidParameter {
                name,
                value,
                expected,
            }) => {
                assert_eq!((name, value.as_str(), expected), ("epochs", "0", ">= 1"));
            }
            other => panic!("{other:?}"),
        }
    }
}
