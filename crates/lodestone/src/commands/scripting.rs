//! Scripting and functions. Only FUNCTION FLUSH exists so far: there are
//! no function libraries yet, so flushing has nothing to delete.

use super::{err, Ctx, Handler, Registry};

pub fn register(r: &mut Registry) {
    let v = &mut r.handlers;
    v.push(("function|flush", function_flush as Handler));
}

fn function_flush(ctx: &mut Ctx, argv: &[&[u8]]) {
    match argv.len() {
        2 => ctx.ok(),
        3 if argv[2].eq_ignore_ascii_case(b"async") || argv[2].eq_ignore_ascii_case(b"sync") => {
            ctx.ok()
        }
        3 => ctx.error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"),
        _ => ctx.error(err::SYNTAX),
    }
}
