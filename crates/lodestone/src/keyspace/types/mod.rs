//! Collection value types, one module per Redis type (like Redis's
//! `t_hash.c`, `t_list.c`, ...): each owns its encodings and conversions.

pub mod hash;
pub mod hll;
pub mod list;
pub mod set;
pub mod stream;
pub mod zset;
