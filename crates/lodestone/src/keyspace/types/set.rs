//! The set value type: its encodings (Redis's names: see `encoding`),
//! conversions between them, and the operations the set commands need.
//!
//! PLACEHOLDER: the representation is filled in by the collections work.

/// A set value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SetValue {}

impl SetValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    /// Feeds the value into a DEBUG DIGEST hasher. Equal values must give
    /// equal digests whatever their encoding.
    pub fn digest(&self, _h: &mut sha1_smol::Sha1) {}

    /// Approximate heap bytes used, for MEMORY USAGE.
    pub fn memory_usage(&self) -> usize {
        0
    }
}
