//! Range checks shared by the validating `with_*` setters of the configuration types.
//!
//! Each check returns the value it was given when it is acceptable, and otherwise an
//! [`Error::InvalidConfig`] whose message reads `"<name> must be ..., got <value>"`.

use crate::error::{Error, Result};

/// `v` finite and `> 0`.
pub(crate) fn positive(name: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} must be finite and > 0, got {v}"
        )))
    }
}

/// `v` finite and `>= 0`.
pub(crate) fn non_negative(name: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} must be finite and >= 0, got {v}"
        )))
    }
}

/// A count `n >= 1`.
pub(crate) fn at_least_one(name: &str, n: usize) -> Result<usize> {
    if n >= 1 {
        Ok(n)
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} must be >= 1, got {n}"
        )))
    }
}

/// `v` in `[0, 1)` (momentum-like factors; NaN is rejected).
pub(crate) fn in_unit_interval_open_right(name: &str, v: f64) -> Result<f64> {
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} must lie in [0, 1), got {v}"
        )))
    }
}

/// `v` in the open interval `(0, 1)` (NaN is rejected).
pub(crate) fn in_open_unit_interval(name: &str, v: f64) -> Result<f64> {
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} must lie in (0, 1), got {v}"
        )))
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
    }

    #[test]
    fn messages_name_the_setting_and_the_value() {
        match positive("learning rate", -2.0) {
            Err(Error::InvalidConfig(m)) => {
                assert_eq!(m, "learning rate must be finite and > 0, got -2")
            }
            other => panic!("{other:?}"),
        }
        match at_least_one("epochs", 0) {
            Err(Error::InvalidConfig(m)) => assert_eq!(m, "epochs must be >= 1, got 0"),
            other => panic!("{other:?}"),
        }
    }
}
