//! The geospatial family. PLACEHOLDER: its commands land with their own work.

use super::Registry;

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
}
