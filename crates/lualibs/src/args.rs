//! Argument access with the Lua 5.1 auxiliary library's semantics
//! (`luaL_checknumber`, `luaL_checklstring`, `luaL_optinteger` ...) and the
//! failure type library functions return.

use mlua::{Lua, Value};

use crate::num;

/// How a library function failed. `Raise` is `luaL_error` (the caller's
/// position is prepended), `Arg` is `luaL_argerror` (argument number and
/// message; the function's name comes from the call site), `Plain` an error
/// raised by the Lua core without position (e.g. "table index is nil"),
/// `Lua` an mlua error passed through.
#[derive(Debug)]
pub(crate) enum Failure {
    Raise(String),
    Arg(usize, String),
    Plain(String),
    Lua(mlua::Error),
}

impl From<mlua::Error> for Failure {
    fn from(e: mlua::Error) -> Self {
        Failure::Lua(e)
    }
}

/// What a library function body returns: its results or why it failed.
pub(crate) type Outcome = Result<Vec<Value>, Failure>;

/// Results of a function that may return thousands of values: they are
/// stored in a table (positions 1..n, holes for nils) and spread onto the
/// Lua stack by the C side, because mlua can neither return that many
/// values from a callback nor hold that many handles at once.
pub(crate) struct Spread {
    pub(crate) table: mlua::Table,
    pub(crate) len: usize,
}

impl Spread {
    pub(crate) fn new(lua: &Lua) -> mlua::Result<Spread> {
        Ok(Spread {
            table: lua.create_table()?,
            len: 0,
        })
    }

    pub(crate) fn push(&mut self, v: Value) -> mlua::Result<()> {
        self.len += 1;
        self.table.raw_set(self.len, v)
    }

    /// Removes and returns the last value.
    pub(crate) fn pop(&mut self) -> mlua::Result<Value> {
        let v: Value = self.table.raw_get(self.len)?;
        self.table.raw_set(self.len, Value::Nil)?;
        self.len -= 1;
        Ok(v)
    }

    /// The last value, if any.
    pub(crate) fn last(&self) -> mlua::Result<Option<Value>> {
        if self.len == 0 {
            return Ok(None);
        }
        Ok(Some(self.table.raw_get(self.len)?))
    }

    /// The marker `dispatch` recognises: the table, then the count.
    pub(crate) fn into_outcome(self) -> Outcome {
        Ok(vec![
            Value::LightUserData(mlua::LightUserData(
                std::ptr::addr_of!(SPREAD_MARK) as *mut _
            )),
            Value::Table(self.table),
            Value::Number(self.len as f64),
        ])
    }
}

/// Address whose light userdata tags a [`Spread`] result.
pub(crate) static SPREAD_MARK: u8 = 0;

/// The arguments of one call, 1-based as in the C API.
pub(crate) struct Args {
    values: Vec<Value>,
}

/// Lua's name for a value's type (`lua_typename`); light userdata is "userdata".
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// A Lua number as f64 (mlua reports integral doubles as `Integer`).
pub(crate) fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// `lua_tonumber`: numbers, and strings Lua can convert; `None` otherwise.
pub(crate) fn to_number(lua: &Lua, v: &Value) -> Result<Option<f64>, Failure> {
    Ok(match v {
        Value::Integer(_) | Value::Number(_) => as_number(v),
        Value::String(_) => lua.coerce_number(v.clone())?,
        _ => None,
    })
}

impl Args {
    pub(crate) fn new(values: Vec<Value>) -> Args {
        Args { values }
    }

    /// The arguments followed by one nil, as the stack looks to a C function
    /// that pushed a nil (struct.pack's buffer mark): a missing argument
    /// right after the last one then reads as nil, not "no value".
    pub(crate) fn with_nil_pushed(&self) -> Args {
        let mut values = self.values.clone();
        values.push(Value::Nil);
        Args { values }
    }

    /// Number of arguments (`lua_gettop`).
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// Argument `i` (1-based); `None` when absent ("no value").
    pub(crate) fn get(&self, i: usize) -> Option<&Value> {
        self.values.get(i.wrapping_sub(1))
    }

    /// Argument `i`, absent ones read as nil.
    pub(crate) fn value(&self, i: usize) -> Value {
        self.get(i).cloned().unwrap_or(Value::Nil)
    }

    /// `lua_isnoneornil`.
    pub(crate) fn is_none_or_nil(&self, i: usize) -> bool {
        matches!(self.get(i), None | Some(Value::Nil))
    }

    /// `luaL_argerror`: "bad argument #i to 'name' (msg)".
    pub(crate) fn arg_error(&self, i: usize, msg: &str) -> Failure {
        Failure::Arg(i, msg.to_string())
    }

    /// `luaL_typerror`: "bad argument #i to 'name' (T expected, got U)".
    pub(crate) fn type_error(&self, i: usize, expected: &str) -> Failure {
        let got = self.get(i).map(type_name).unwrap_or("no value");
        self.arg_error(i, &format!("{expected} expected, got {got}"))
    }

    /// `lua_tonumber` of argument `i`.
    pub(crate) fn to_number(&self, lua: &Lua, i: usize) -> Result<Option<f64>, Failure> {
        match self.get(i) {
            Some(v) => to_number(lua, v),
            None => Ok(None),
        }
    }

    /// `luaL_checknumber`.
    pub(crate) fn check_number(&self, lua: &Lua, i: usize) -> Result<f64, Failure> {
        self.to_number(lua, i)?
            .ok_or_else(|| self.type_error(i, "number"))
    }

    /// `luaL_checkinteger`: a number truncated to `lua_Integer` as the C cast
    /// does on x86-64.
    pub(crate) fn check_integer(&self, lua: &Lua, i: usize) -> Result<i64, Failure> {
        Ok(num::f64_to_i64(self.check_number(lua, i)?))
    }

    /// `luaL_optinteger`: `default` when the argument is absent or nil.
    pub(crate) fn opt_integer(&self, lua: &Lua, i: usize, default: i64) -> Result<i64, Failure> {
        if self.is_none_or_nil(i) {
            Ok(default)
        } else {
            self.check_integer(lua, i)
        }
    }

    /// `luaL_checklstring`: strings, and numbers converted as `tostring` does.
    pub(crate) fn check_bytes(&self, lua: &Lua, i: usize) -> Result<Vec<u8>, Failure> {
        let s = match self.get(i) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(v @ (Value::Integer(_) | Value::Number(_))) => lua.coerce_string(v.clone())?,
            _ => None,
        };
        match s {
            Some(s) => Ok(s.as_bytes().to_vec()),
            None => Err(self.type_error(i, "string")),
        }
    }
}

/// Calls `f` for every key/value pair of `t` in `lua_next` order, without
/// collecting them: mlua keeps each live handle in an auxiliary stack of
/// LUAI_MAXCSTACK slots, so a big table must be streamed. A failure of `f`
/// stops the walk and is returned.
pub(crate) fn for_each_pair(
    t: &mlua::Table,
    mut f: impl FnMut(Value, Value) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut failure = None;
    let walked = t.for_each(|k: Value, v: Value| {
        f(k, v).map_err(|e| {
            failure = Some(e);
            mlua::Error::RuntimeError("walk stopped".into())
        })
    });
    match failure {
        Some(e) => Err(e),
        None => walked.map_err(Failure::Lua),
    }
}

/// LUAI_MAXCSTACK: the Lua stack slots a C function may use. The C
/// libraries fail (with their own messages) when they would need more; the
/// Rust versions count the same slots and fail at the same points.
pub(crate) const MAX_C_STACK: usize = 8000;
