//! Lodestone: a Redis-compatible in-memory data store.
//!
//! The crate is laid out like the server it implements:
//! - [`config`]: the parameter table behind the config file, the command
//!   line and CONFIG GET/SET.
//! - [`keyspace`]: databases, shards, entries, expiry and the lock
//!   discipline that makes multi-key commands atomic.
//! - [`commands`]: the command table and one module per command family.
//! - [`persist`]: RDB files, DUMP/RESTORE payloads and fork-free snapshots.
//! - [`acl`]: users, permissions, the ACL log and the ACL file.
//! - [`server`]: shared server state, clients and the per-thread event loops.

// Style lints we do not follow: `Result<_, ()>` marks "the error reply was
// already written", and some internal types are honest about their shape.
#![allow(
    clippy::type_complexity,
    clippy::result_unit_err,
    clippy::len_without_is_empty,
    clippy::wrong_self_convention,
    clippy::needless_range_loop
)]

pub mod acl;
pub mod alloc;
pub mod aof;
pub mod commands;
pub mod config;
pub mod keyspace;
pub mod persist;
pub mod repl;
pub mod scripting;
pub mod server;

/// The Redis version Lodestone answers as (INFO, HELLO), so that clients
/// enable the features they know Redis 7.2 has.
pub const REDIS_VERSION: &str = "7.2.6";

// The unit tests allocate through jemalloc too, so the memory accounting
// (jemalloc's per-thread counters) can be tested.
#[cfg(test)]
#[global_allocator]
static ALLOC: alloc::Jemalloc = alloc::Jemalloc;
