//! The audience of a token (RFC 7519 §4.1.3): one value or several.
//!
//! Owns [`Audience`], its wire form (a string for one value, an array for several) and its
//! stored form. A leaf: stored records carry it; which audience a request gets is
//! [`crate::resource`]'s rule.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One or more audience values. On the wire a single value is a string and several are an
/// array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience(Vec<String>);

impl Audience {
    /// An audience of the values given, in their order.
    pub fn many(values: Vec<String>) -> Self {
        Self(values)
    }

    /// An audience of one value.
    pub fn one(value: impl Into<String>) -> Self {
        Self(vec![value.into()])
    }

    /// The values.
    pub fn values(&self) -> &[String] {
        &self.0
    }

    /// Whether `value` is one of the values.
    pub fn contains(&self, value: &str) -> bool {
        self.0.iter().any(|v| v == value)
    }

    /// The stored form: values joined by spaces (a URI has no space).
    pub fn to_stored(&self) -> String {
        self.0.join(" ")
    }

    /// Reads the stored form back.
    pub fn from_stored(s: &str) -> Self {
        Self(
            s.split(' ')
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Wire::deserialize(d)? {
            Wire::One(s) => Self(vec![s]),
            Wire::Many(v) => Self(v),
        })
    }
}
