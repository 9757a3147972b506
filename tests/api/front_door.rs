//! The front door of the real `ironledger serve`: slow, idle and surplus
//! connections, and password guessing under `http_basic`.
//!
//! Every check is on behaviour (served, refused, closed), never on speed:
//! waits are generous upper bounds, far above the short limits configured.

use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ironledger");

/// How long a test waits for the server to close a connection before calling
/// it held: many times every limit configured here.
const HELD: Duration = Duration::from_secs(30);

/// A running `ironledger serve`, killed when the test ends.
struct Server {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `serve --port 0` with `conf` (an ironic.conf body) and a boot
    /// file at `/boot/probe.ipxe`.
    fn start(conf: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("httpboot");
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::write(boot.join("probe.ipxe"), "#!ipxe\nchain next\n").unwrap();
        let file = dir.path().join("ironic.conf");
        std::fs::write(
            &file,
            format!("[deploy]\nhttp_root = {}\n{conf}", boot.display()),
        )
        .unwrap();
        let mut child = Command::new(BIN)
            .args([
                "--config-file",
                file.to_str().unwrap(),
                "serve",
                "--port",
                "0",
            ])
            .env("IRONLEDGER_DATA_DIR", dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .expect("start ironledger");
        let mut out = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8];
        while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8(line).unwrap();
        let addr = line
            .strip_prefix("ironledger listening on http://")
            .unwrap_or_else(|| panic!("no listening line: {line:?}"))
            .to_string();
        Server { child, addr, dir }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(HELD)).unwrap();
        s
    }

    /// What the server logged, without colour codes.
    fn log(&self) -> String {
        let raw = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        let mut out = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Reads one answer: status, body.
fn read_answer(s: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = s.read(&mut chunk).ok().filter(|n| *n > 0)?;
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
            return Some((status, body));
        }
        let n = s.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One GET on a kept-alive connection.
fn get_on(s: &mut TcpStream, path: &str) -> Option<(u16, String)> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    read_answer(s)
}

/// One GET on a new connection.
fn get(server: &Server, path: &str) -> (u16, String) {
    let mut s = server.connect();
    get_on(&mut s, path).unwrap_or_else(|| panic!("GET {path} got no answer"))
}

/// True once the server has closed `s` (end of stream or reset), false if
/// it still holds it after [`HELD`]. Anything it sends first is read past.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A silent socket, a head sent a byte at a time, a stalled body and an idle
/// keep-alive are each closed after their limit, while other clients (and
/// the firmware's `/boot/`) are served meanwhile.
#[test]
fn slow_and_idle_connections_are_closed_while_others_are_served() {
    let server = Server::start("[api]\nheader_timeout = 2\nbody_timeout = 2\nidle_timeout = 2\n");

    let mut silent = server.connect();

    let mut trickle = server.connect();
    trickle
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let mut writer = trickle.try_clone().unwrap();
    // One byte every 200 ms for up to a minute: an inactivity timeout would
    // never fire; the header deadline must.
    std::thread::spawn(move || {
        for _ in 0..300 {
            std::thread::sleep(Duration::from_millis(200));
            if writer.write_all(b"a").is_err() {
                return;
            }
        }
    });

    let mut stalled = server.connect();
    stalled
        .write_all(
            b"POST /v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"dri",
        )
        .unwrap();

    let mut idle = server.connect();
    assert_eq!(get_on(&mut idle, "/health").map(|a| a.0), Some(200));

    // Meanwhile, others are served.
    assert_eq!(get(&server, "/health").0, 200);
    let (code, body) = get(&server, "/boot/probe.ipxe");
    assert_eq!((code, body.as_str()), (200, "#!ipxe\nchain next\n"));

    assert!(closed_by_server(&mut silent), "a silent socket is held");
    assert!(closed_by_server(&mut trickle), "a trickled head is held");
    assert!(closed_by_server(&mut stalled), "a stalled body is held");
    assert!(closed_by_server(&mut idle), "an idle keep-alive is held");
    assert_eq!(get(&server, "/health").0, 200, "still serving");
    let log = server.log();
    for phase in ["Idle", "Head", "Body"] {
        assert!(
            log.contains(&format!("phase={phase}")),
            "the close of a {phase} connection is logged: {log}"
        );
    }
}

/// With `max_connections = 4`, idle sockets filling the cap do not stop the
/// admitted client, surplus connections are answered 503 and closed without
/// waiting, and new clients are served again once the idle timeout has
/// closed the idle sockets.
#[test]
fn beyond_max_connections_new_ones_are_refused_and_the_admitted_served() {
    let server = Server::start("[api]\nmax_connections = 4\nidle_timeout = 5\n");
    let mut admitted = server.connect();
    assert_eq!(get_on(&mut admitted, "/health").map(|a| a.0), Some(200));
    let mut idle: Vec<TcpStream> = (0..3).map(|_| server.connect()).collect();

    for _ in 0..3 {
        let mut extra = server.connect();
        let (code, body) = read_answer(&mut extra).expect("an answer, not silence");
        assert_eq!(code, 503, "{body}");
        let outer: Value = serde_json::from_str(&body).unwrap();
        let inner: Value = serde_json::from_str(outer["error_message"].as_str().unwrap()).unwrap();
        assert!(
            inner["faultstring"]
                .as_str()
                .unwrap()
                .contains("max_connections"),
            "{inner}"
        );
        assert!(closed_by_server(&mut extra), "refused and closed");
    }
    assert_eq!(
        get_on(&mut admitted, "/boot/probe.ipxe").map(|a| a.0),
        Some(200),
        "the admitted client is still served at the cap"
    );

    for s in &mut idle {
        assert!(closed_by_server(s), "the idle timeout frees the slots");
    }
    assert_eq!(get(&server, "/health").0, 200, "served again");
    assert!(server.log().contains("connection limit reached"));
}

/// SIGTERM ends `serve` without waiting for an idle kept-alive connection's
/// (long) idle timeout.
#[test]
fn sigterm_closes_idle_connections_and_exits() {
    let mut server = Server::start("[api]\nidle_timeout = 600\n");
    let mut idle = server.connect();
    assert_eq!(get_on(&mut idle, "/health").map(|a| a.0), Some(200));
    let pid = server.child.id() as i32;
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(closed_by_server(&mut idle), "the idle connection is closed");
    let mut status = None;
    for _ in 0..600 {
        status = server.child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.expect("serve exits after SIGTERM");
    assert!(status.success(), "{status:?}: {}", server.log());
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn status_of(
    client: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut req = client
        .get(url)
        .header("X-OpenStack-Ironic-API-Version", "1.78");
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    req.send().await.expect("an answer")
}

/// Under `http_basic`: discovery is open, `/health` shows only its status,
/// the scheme is case-insensitive; 16 concurrent guessers neither stop the
/// right user (from another address) nor the firmware; the guessing address
/// then gets 429 with `Retry-After`, even with the right password, until the
/// back-off has passed; and an address trying many users is held up too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_throttled_and_others_are_served() {
    let htpasswd_dir = tempfile::tempdir().unwrap();
    let htpasswd = htpasswd_dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("admin:{}\n", bcrypt::hash("s3cret", 8).unwrap()),
    )
    .unwrap();
    let server = Server::start(&format!(
        "[DEFAULT]\nauth_strategy = http_basic\nhttp_basic_auth_user_file = {}\n\
         [api]\nauth_failure_limit = 3\nauth_address_failure_limit = 8\nauth_backoff = 2\n",
        htpasswd.display()
    ));
    let right = basic("admin", "s3cret");
    let operator = client_from("127.0.0.3");

    for open in ["/", "/v1"] {
        let res = status_of(&operator, &server.url(open), None).await;
        assert_eq!(res.status(), 200, "{open} is open for discovery");
    }
    let res = status_of(&operator, &server.url("/v1/nodes"), None).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
    let health: Value = status_of(&operator, &server.url("/health"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        health,
        serde_json::json!({"status": "ok"}),
        "only the status"
    );
    for scheme in ["BASIC", "basic"] {
        let a = right.replacen("Basic", scheme, 1);
        let res = status_of(&operator, &server.url("/v1/nodes"), Some(&a)).await;
        assert_eq!(res.status(), 200, "{scheme}");
    }

    // 16 guessers from 127.0.0.2, 4 wrong passwords each.
    let guesser = client_from("127.0.0.2");
    let url = server.url("/v1/nodes");
    let guessing: Vec<_> = (0..16)
        .map(|g| {
            let (c, url) = (guesser.clone(), url.clone());
            tokio::spawn(async move {
                let mut codes = vec![];
                for i in 0..4 {
                    let a = basic("admin", &format!("guess-{g}-{i}"));
                    codes.push(status_of(&c, &url, Some(&a)).await.status().as_u16());
                }
                codes
            })
        })
        .collect();
    // Meanwhile the operator and the firmware are served.
    for _ in 0..5 {
        let res = status_of(&operator, &url, Some(&right)).await;
        assert_eq!(res.status(), 200, "the right user from elsewhere");
        let res = status_of(&operator, &server.url("/boot/probe.ipxe"), None).await;
        assert_eq!(res.status(), 200, "the firmware");
    }
    let mut codes = vec![];
    for g in guessing {
        codes.extend(g.await.unwrap());
    }
    assert!(codes.iter().all(|c| *c == 401 || *c == 429), "{codes:?}");
    assert!(codes.contains(&429), "guessers are held up: {codes:?}");

    // The right password from the guessing address waits too.
    let res = status_of(&guesser, &url, Some(&right)).await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    let body: Value = res.json().await.unwrap();
    let inner: Value = serde_json::from_str(body["error_message"].as_str().unwrap()).unwrap();
    assert!(inner["faultstring"]
        .as_str()
        .unwrap()
        .contains("Too many failed logins"));
    let res = status_of(&operator, &url, Some(&right)).await;
    assert_eq!(res.status(), 200, "the operator is not locked out");

    // After the back-off, the right password works again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let res = status_of(&guesser, &url, Some(&right)).await;
    assert_eq!(res.status(), 200);

    // An address trying many users (none known) is held up as a whole.
    let sprayer = client_from("127.0.0.4");
    for i in 0..8 {
        let a = basic(&format!("user{i}"), "password");
        assert_eq!(status_of(&sprayer, &url, Some(&a)).await.status(), 401);
    }
    let res = status_of(&sprayer, &url, Some(&right)).await;
    assert_eq!(res.status(), 429, "the address is held up");
    let log = server.log();
    assert!(
        !log.contains("s3cret") && !log.contains("guess-"),
        "no password in the log"
    );
}
