//! RESP, the Redis serialization protocol: request parsing (multibulk and
//! inline, with Redis's limits and error texts) and reply encoding for
//! RESP2 and RESP3. No I/O happens here; the server feeds bytes in and
//! takes bytes out.

pub mod parse;
pub mod reply;

pub use parse::{split_args, ArgSource, Limits, Parser, ProtocolError, Request, INLINE_MAX_SIZE};
pub use reply::{Aggregate, Deferred, Proto, Reply};
