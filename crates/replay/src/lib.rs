//! lodestone-replay: a cache-aside trace replayer for Redis-protocol servers
//! and a simulator of eviction policies at equal object counts.

pub mod live;
pub mod rng;
pub mod s3;
pub mod sim;
pub mod workload;
pub mod zipf;
