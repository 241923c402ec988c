//! Handles for deep walks. mlua keeps every live handle (string, table ...)
//! in an auxiliary stack of LUAI_MAXCSTACK slots, so a walk that held one or
//! two handles per nesting level could exhaust it long before the C
//! libraries' own limits. The first [`NEAR`] levels keep their handles in
//! Rust (the fast path); deeper levels park them in a Lua table.

use mlua::{Lua, Table, Value};

/// Nesting levels whose values stay in Rust handles.
pub(crate) const NEAR: usize = 1000;

/// A value kept for a walk: in Rust, or parked at an index of the parking
/// table.
pub(crate) enum Held {
    Here(Value),
    Parked(i64),
}

/// The parking table of one walk, created on first use. Values are parked
/// and released in stack order.
#[derive(Default)]
pub(crate) struct Parking {
    table: Option<Table>,
    top: i64,
}

impl Parking {
    /// Keeps `v` for a frame at nesting `depth`.
    pub(crate) fn hold(&mut self, lua: &Lua, depth: usize, v: Value) -> mlua::Result<Held> {
        let handle = matches!(
            v,
            Value::String(_)
                | Value::Table(_)
                | Value::Function(_)
                | Value::Thread(_)
                | Value::UserData(_)
        );
        if depth <= NEAR || !handle {
            return Ok(Held::Here(v));
        }
        if self.table.is_none() {
            self.table = Some(lua.create_table()?);
        }
        self.top += 1;
        self.table.as_ref().expect("created").raw_set(self.top, v)?;
        Ok(Held::Parked(self.top))
    }

    /// The value `h` stands for.
    pub(crate) fn get(&self, h: &Held) -> mlua::Result<Value> {
        match h {
            Held::Here(v) => Ok(v.clone()),
            Held::Parked(i) => self.table.as_ref().expect("parked").raw_get(*i),
        }
    }

    /// The table `h` stands for (it must hold one).
    pub(crate) fn table(&self, h: &Held) -> mlua::Result<Table> {
        match self.get(h)? {
            Value::Table(t) => Ok(t),
            other => Err(mlua::Error::runtime(format!(
                "parked {} is not a table",
                other.type_name()
            ))),
        }
    }

    /// Drops what `h` holds; parked values must be released last-in first-out.
    pub(crate) fn release(&mut self, h: Held) -> mlua::Result<()> {
        if let Held::Parked(i) = h {
            self.table
                .as_ref()
                .expect("parked")
                .raw_set(i, Value::Nil)?;
            if i == self.top {
                self.top -= 1;
            }
        }
        Ok(())
    }
}
