//! Runs every snippet of `redis_snippets.lua` (one script per line) through
//! a real redis-server's EVAL and through `lualibs` in a fresh mlua state,
//! and requires identical results, errors included. Skipped (with a note)
//! when /usr/bin/redis-server is not installed; `scripts/test` installs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Wraps a snippet so both sides return one printable string: "OK" or
/// "ERR" (pcall's outcome) and each result, strings quoted with non-printable
/// bytes as \xNN, tables as their array part.
fn wrap(snippet: &str) -> String {
    let pre = r#"local function esc(s) return (s:gsub('[^%w%p ]', function(c) return string.format('\\x%02x', c:byte()) end)) end
local function show(v, d) if type(v) == 'table' then if d > 3 then return '{...}' end local parts = {} for i = 1, #v do parts[#parts+1] = show(v[i], d+1) end return '{' .. table.concat(parts, ',') .. '}' elseif type(v) == 'string' then return '"' .. esc(v) .. '"' elseif type(v) == 'userdata' then return 'null' else return tostring(v) end end
local res = {pcall(function()
"#;
    let post = r#"
end)}
local out = {} for i = 2, table.maxn(res) do out[#out+1] = show(res[i], 0) end
return (res[1] and 'OK ' or 'ERR ') .. table.concat(out, ' ')"#;
    format!("{pre}{snippet}{post}")
}

/// A redis-server on a free loopback port, stopped on drop.
struct RealRedis {
    child: Child,
    conn: Option<BufReader<TcpStream>>,
}

impl RealRedis {
    fn start() -> Option<RealRedis> {
        let bin = "/usr/bin/redis-server";
        if !std::path::Path::new(bin).exists() {
            eprintln!("note: {bin} not installed; skipping the Redis comparison");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        // Owned from here on, so every path (a panic too) stops the server.
        let mut redis = RealRedis { child, conn: None };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                redis.conn = Some(BufReader::new(s));
                return Some(redis);
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// EVAL `script` 0; the bulk reply, or the error line.
    fn eval(&mut self, script: &str) -> String {
        let mut req = Vec::new();
        for arg in ["EVAL", script, "0"] {
            req.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            req.extend_from_slice(arg.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        let mut msg = b"*3\r\n".to_vec();
        msg.extend(req);
        let conn = self.conn.as_mut().expect("connected");
        conn.get_mut().write_all(&msg).unwrap();
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        match line.as_bytes()[0] {
            b'$' => {
                let n: usize = line[1..].trim().parse().unwrap();
                let mut data = vec![0; n + 2];
                conn.read_exact(&mut data).unwrap();
                String::from_utf8_lossy(&data[..n]).into_owned()
            }
            _ => line.trim_end().to_string(),
        }
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ours(script: &str) -> String {
    let lua = mlua::Lua::new();
    lualibs::install(&lua).unwrap();
    match lua
        .load(script)
        .set_name("@user_script")
        .eval::<mlua::Value>()
    {
        Ok(mlua::Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        Ok(v) => format!("unexpected {v:?}"),
        Err(e) => format!("mlua error {e}"),
    }
}

#[test]
fn scripts_see_what_redis_scripts_see() {
    let Some(mut redis) = RealRedis::start() else {
        return;
    };
    let snippets = include_str!("redis_snippets.lua");
    let mut checked = 0;
    let mut differences = Vec::new();
    for snippet in snippets.lines().filter(|l| !l.trim().is_empty()) {
        let script = wrap(snippet);
        let theirs = redis.eval(&script);
        let mine = ours(&script);
        if theirs != mine {
            differences.push(format!("{snippet}\n  redis: {theirs}\n  ours:  {mine}"));
        }
        checked += 1;
    }
    assert!(checked > 200, "only {checked} snippets");
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
