//! Serde helpers (feature `serde`) for floats that may be infinite or NaN.
//!
//! JSON has no numbers for `±∞` and NaN: serde_json writes them as `null` and then cannot
//! read `null` back as an `f64`. Fields that can hold them (an unbounded box side, a
//! certified radius of `f64::INFINITY`, a pruning margin that never prunes) are written
//! with these helpers: finite values as numbers, the others as the strings `"inf"`,
//! `"-inf"` and `"NaN"`, which read back exactly. Use with `#[serde(with = "...")]`.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One float, non-finite values as strings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Ext(pub(crate) f64);

impl Serialize for Ext {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }
}

struct ExtVisitor;

impl Visitor<'_> for ExtVisitor {
    type Value = Ext;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a number or one of "inf", "-inf", "NaN""#)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Ext, E> {
        Ok(Ext(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ext, E> {
        Ok(Ext(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ext, E> {
        Ok(Ext(v as f64))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Ext, E> {
        match v {
            "inf" => Ok(Ext(f64::INFINITY)),
            "-inf" => Ok(Ext(f64::NEG_INFINITY)),
            "NaN" => Ok(Ext(f64::NAN)),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

impl<'de> Deserialize<'de> for Ext {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ext, D::Error> {
        d.deserialize_any(ExtVisitor)
    }
}

/// `#[serde(with = "crate::serde_f64")]` on an `f64`.
pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    Ext(*v).serialize(s)
}

/// `#[serde(with = "crate::serde_f64")]` on an `f64`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ext::deserialize(d).map(|e| e.0)
}

/// `#[serde(with = "crate::serde_f64::vec")]` on a `Vec<f64>`.
pub(crate) mod vec {
    use super::Ext;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|&x| Ext(x)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Ext>::deserialize(d)?
            .into_iter()
            .map(|e| e.0)
            .collect())
    }
}

/// `#[serde(with = "crate::serde_f64::option_vec")]` on an `Option<Vec<f64>>`.
pub(crate) mod option_vec {
    use super::Ext;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &Option<Vec<f64>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref()
            .map(|v| v.iter().map(|&x| Ext(x)).collect::<Vec<_>>())
            .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<f64>>, D::Error> {
        Ok(Option::<Vec<Ext>>::deserialize(d)?.map(|v| v.into_iter().map(|e| e.0).collect()))
    }
}
