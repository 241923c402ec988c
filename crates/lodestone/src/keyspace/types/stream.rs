//! The stream value type. PLACEHOLDER: the representation is filled in by
//! the streams work (issue 4).

/// A stream value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamValue {}

impl StreamValue {
    /// Number of entries.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Feeds the value into a DEBUG DIGEST hasher.
    pub fn digest(&self, _h: &mut sha1_smol::Sha1) {}

    /// Approximate heap bytes used, for MEMORY USAGE.
    pub fn memory_usage(&self) -> usize {
        0
    }
}
