//! The wire protocol under bad input and load, over the real socket: every malformation gets
//! its JSON-RPC error and the daemon keeps serving everyone else.

use keyfob_e2e::TestEnv;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

struct Raw {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Raw {
    fn connect(env: &TestEnv) -> Self {
        let s = UnixStream::connect(env.socket()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Self {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn hello(env: &TestEnv) -> Self {
        let mut c = Self::connect(env);
        let r = c.call(json!({"jsonrpc":"2.0","id":0,"method":"hello","params":{"version":1}}));
        assert_eq!(r["result"]["version"], 1, "{r}");
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.r.read_line(&mut line).expect("read");
        assert!(!line.is_empty(), "connection closed");
        serde_json::from_str(&line).expect("json reply")
    }

    fn call(&mut self, v: Value) -> Value {
        self.send(format!("{v}\n").as_bytes());
        self.recv()
    }

    /// True when the daemon closed the connection.
    fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.r.read(&mut buf), Ok(0) | Err(_))
    }
}

fn code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {v}"))
}

fn still_serving(env: &TestEnv) {
    let mut c = Raw::hello(env);
    let r = c.call(json!({"jsonrpc":"2.0","id":9,"method":"daemon.status"}));
    assert!(r["result"]["pid"].is_u64(), "{r}");
}

#[test]
fn each_bad_input_gets_its_error_and_the_connection_goes_on() {
    let env = TestEnv::new();
    let _d = env.spawn_daemon();
    let mut c = Raw::connect(&env);

    // Before hello.
    let r = c.call(json!({"jsonrpc":"2.0","id":1,"method":"otp.list"}));
    assert_eq!(code(&r), -32001);
    assert_eq!(r["id"], 1);
    let r = c.call(json!({"jsonrpc":"2.0","id":2,"method":"hello","params":{"version":1}}));
    assert_eq!(r["result"]["version"], 1);

    c.send(b"{not json\n");
    assert_eq!(code(&c.recv()), -32700);
    c.send(b"\xff\xfe{}\n");
    let r = c.recv();
    assert_eq!(code(&r), -32700);
    assert!(r["error"]["message"].as_str().unwrap().contains("UTF-8"));
    let r = c.call(json!([1, 2]));
    assert_eq!(code(&r), -32600);
    let r = c.call(json!({"id":3,"method":"otp.list"}));
    assert_eq!(code(&r), -32600, "missing jsonrpc");
    let r = c.call(json!({"jsonrpc":"2.0","id":4,"method":"no.such"}));
    assert_eq!(code(&r), -32601);
    assert_eq!(r["error"]["data"]["kind"], "method_not_found");
    let r = c.call(json!({"jsonrpc":"2.0","id":5,"method":"otp.code","params":{"nam":"x"}}));
    assert_eq!(code(&r), -32602);
    assert!(r["error"]["message"].as_str().unwrap().contains("nam"));
    // A mistyped secret field is reported without echoing the value.
    let r = c.call(json!({"jsonrpc":"2.0","id":6,"method":"otp.add","params":{"name":"x","secret":"JBSWY3DPEHPK3PXP","digits":"SECRETVALUE"}}));
    assert_eq!(code(&r), -32602);
    assert!(!r.to_string().contains("SECRETVALUE"), "{r}");
    let r = c.call(json!({"jsonrpc":"2.0","id":7,"method":"otp.code","params":{"name":"missing"}}));
    assert_eq!(code(&r), -32003);
    // The same connection still works.
    let r = c.call(json!({"jsonrpc":"2.0","id":8,"method":"otp.list"}));
    assert_eq!(r["result"], json!([]));
    assert_eq!(r["id"], 8);
}

#[test]
fn version_mismatch_and_oversized_lines_close_only_that_connection() {
    let env = TestEnv::new();
    let _d = env.spawn_daemon();

    let mut c = Raw::connect(&env);
    let r = c.call(json!({"jsonrpc":"2.0","id":1,"method":"hello","params":{"version":999}}));
    assert_eq!(code(&r), -32000);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keyfob daemon stop")
    );
    assert!(c.closed());

    let mut c = Raw::hello(&env);
    let big = vec![b'a'; keyfob_proto::MAX_LINE_BYTES + 10];
    // The daemon may close while we are still writing; that is the point.
    let _ = c.w.write_all(&big);
    let r = c.recv();
    assert_eq!(code(&r), -32014);
    assert!(c.closed());
    still_serving(&env);
}

#[test]
fn a_stalled_half_line_does_not_delay_others_and_is_dropped() {
    let env = TestEnv::new();
    let _d = env.spawn_daemon();
    let mut staller = Raw::hello(&env);
    staller.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"meth");
    // Others are served while the staller holds its half line.
    for _ in 0..20 {
        still_serving(&env);
    }
    // After the line timeout the daemon says why and closes the staller.
    let r = staller.recv();
    assert_eq!(code(&r), -32600);
    assert!(staller.closed());
}

#[test]
fn a_thousand_idle_connections_do_not_starve_a_hundred_busy_clients() {
    let env = TestEnv::new();
    let _d = env.spawn_daemon();
    keyfob_e2e::raise_fd_limit();
    let idle: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(env.socket()).expect("idle connect"))
        .collect();
    let socket = env.socket();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut c = keyfob_proto::Client::connect(&socket, "load").expect("connect");
                for _ in 0..5 {
                    let st = c
                        .call::<keyfob_proto::methods::Status>(&Default::default())
                        .expect("status");
                    assert!(st.connections >= 1000, "client {i}: {}", st.connections);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    drop(idle);
}

#[test]
fn subscribers_get_events_without_secrets() {
    let env = TestEnv::new();
    let _d = env.spawn_daemon();
    let mut sub = Raw::hello(&env);
    let r = sub.call(
        json!({"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"events":["otp.changed"]}}),
    );
    assert_eq!(r["result"], json!({}));
    let r = sub
        .call(json!({"jsonrpc":"2.0","id":2,"method":"subscribe","params":{"events":["bogus"]}}));
    assert_eq!(code(&r), -32602);
    env.ok_in(&["secret", "set", "s"], "value");
    env.ok_in(&["otp", "add", "gh", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    let ev = sub.recv();
    assert_eq!(ev["method"], "event");
    assert!(ev.get("id").is_none());
    assert_eq!(
        ev["params"],
        json!({"event":"otp.changed","name":"gh","change":"added"})
    );
}
