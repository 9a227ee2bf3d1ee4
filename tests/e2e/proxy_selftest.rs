//! The fault proxy against a tiny in-test HTTP server: no docker needed.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::proxy::{Fault, FaultProxy};

/// A keep-alive HTTP/1.1 server answering `200` with "METHOD PATH BODY-LENGTH".
struct Upstream {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        // Lives as long as the test process: these threads only ever wait on test sockets.
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let count = count.clone();
                thread::spawn(move || {
                    let _ = serve(conn, &count);
                });
            }
        });
        Upstream { addr, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve(conn: TcpStream, count: &AtomicUsize) -> io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    loop {
        let Some(head) = read_head(&mut r)? else { return Ok(()) };
        let mut words = head.split_whitespace();
        let (method, path) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
        if !head.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Ok(()); // not HTTP: hang up
        }
        let body = if header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            read_chunked(&mut r)?
        } else {
            let n = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
            let mut b = vec![0; n];
            r.read_exact(&mut b)?;
            b
        };
        count.fetch_add(1, Ordering::SeqCst);
        let text = format!("{method} {path} {}", body.len());
        write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}", text.len())?;
    }
}

fn read_head(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        head.push_str(&String::from_utf8_lossy(&line));
        if line == b"\r\n" {
            return Ok(Some(head));
        }
    }
}

fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            while !matches!(read_line(r)?.as_str(), "\r\n" | "") {} // trailers
            return Ok(body);
        }
        let mut chunk = vec![0; size + 2];
        r.read_exact(&mut chunk)?;
        body.extend_from_slice(&chunk[..size]);
    }
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    Ok(line)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

/// One keep-alive client connection.
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let w = TcpStream::connect(addr).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { r: BufReader::new(w.try_clone().unwrap()), w }
    }

    fn send(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: registry\r\n").into_bytes();
        if !body.is_empty() {
            req.extend(format!("Content-Length: {}\r\n", body.len()).bytes());
        }
        req.extend(b"\r\n");
        req.extend(body);
        self.w.write_all(&req)?;
        self.response()
    }

    fn send_chunked(&mut self, method: &str, path: &str, chunks: &[&[u8]]) -> io::Result<Response> {
        write!(self.w, "{method} {path} HTTP/1.1\r\nHost: registry\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        for c in chunks {
            write!(self.w, "{:x};ext=1\r\n", c.len())?;
            self.w.write_all(c)?;
            self.w.write_all(b"\r\n")?;
        }
        self.w.write_all(b"0\r\nX-Trailer: t\r\n\r\n")?;
        self.response()
    }

    fn response(&mut self) -> io::Result<Response> {
        let head = read_head(&mut self.r)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let n = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0; n];
        self.r.read_exact(&mut body)?;
        Ok(Response { status, body: String::from_utf8(body).unwrap(), head })
    }

    /// True once the peer has closed (EOF).
    fn closed(&mut self) -> bool {
        let mut b = [0; 1];
        matches!(self.r.read(&mut b), Ok(0))
    }
}

#[test]
fn status_faults_then_pass_through_on_keep_alive() {
    for fault in [Fault::Status503, Fault::Status429] {
        let up = Upstream::start();
        let proxy = FaultProxy::start(up.addr, fault, 2);
        for _ in 0..2 {
            let mut c = Client::connect(proxy.addr());
            let r = c.send("GET", "/v2/", b"").unwrap();
            match fault {
                Fault::Status503 => assert_eq!(r.status, 503),
                _ => {
                    assert_eq!(r.status, 429);
                    assert!(r.body.contains(r#""code":"TOOMANYREQUESTS""#), "{}", r.body);
                    assert!(r.body.contains("You have reached your pull rate limit"));
                    assert!(r.head.contains("application/json"));
                }
            }
            assert!(r.head.contains("Connection: close"));
            assert!(c.closed(), "a faulted connection is closed");
        }
        assert_eq!((proxy.requests(), proxy.faults_served(), up.requests()), (2, 2, 0));

        // Faults spent: several requests on one keep-alive connection all go through.
        let mut c = Client::connect(proxy.addr());
        assert_eq!(c.send("GET", "/v2/", b"").unwrap().body, "GET /v2/ 0");
        assert_eq!(c.send("PUT", "/v2/x/manifests/v1", b"hello").unwrap().body, "PUT /v2/x/manifests/v1 5");
        let r = c.send_chunked("PATCH", "/v2/x/blobs/uploads/1", &[b"hello ", b"world"]).unwrap();
        assert_eq!(r.body, "PATCH /v2/x/blobs/uploads/1 11");
        assert_eq!(c.send("HEAD", "/v2/x/blobs/sha256:1", b"").unwrap().status, 200);
        assert_eq!((proxy.requests(), proxy.faults_served(), up.requests()), (6, 2, 4));
    }
}

#[test]
fn reset_really_resets() {
    let up = Upstream::start();
    let proxy = FaultProxy::start(up.addr, Fault::Reset, 1);
    let mut c = Client::connect(proxy.addr());
    let e = c.send("GET", "/v2/", b"").err().expect("a reset, not a response");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    assert_eq!((proxy.requests(), proxy.faults_served()), (1, 1));

    let mut c = Client::connect(proxy.addr());
    assert_eq!(c.send("GET", "/v2/", b"").unwrap().status, 200);
    assert_eq!((proxy.requests(), proxy.faults_served(), up.requests()), (2, 1, 1));
}

#[test]
fn a_fault_after_a_large_body_is_still_an_answer() {
    // The body must be read before answering, or closing would reset the connection instead.
    let up = Upstream::start();
    let proxy = FaultProxy::start(up.addr, Fault::Status503, 1);
    let mut c = Client::connect(proxy.addr());
    let body = vec![b'x'; 4 << 20];
    assert_eq!(c.send("PUT", "/v2/x/blobs/uploads/1", &body).unwrap().status, 503);
    let mut c = Client::connect(proxy.addr());
    assert_eq!(c.send("PUT", "/v2/x/blobs/uploads/1", &body).unwrap().body, "PUT /v2/x/blobs/uploads/1 4194304");
}

#[test]
fn non_http_bytes_pass_through_uncounted() {
    // docker probes https first; a TLS hello must reach the registry, not use up a fault.
    let up = Upstream::start();
    let proxy = FaultProxy::start(up.addr, Fault::Status503, 1);
    let mut c = Client::connect(proxy.addr());
    c.w.write_all(b"\x16\x03\x01\x00\x05hello\r\n\r\n").unwrap();
    assert!(c.closed(), "the upstream hangs up on non-HTTP");
    assert_eq!((proxy.requests(), proxy.faults_served()), (0, 0));
    let mut c = Client::connect(proxy.addr());
    assert_eq!(c.send("GET", "/v2/", b"").unwrap().status, 503);
}

#[test]
fn latency_delays_and_forwards() {
    let up = Upstream::start();
    let d = Duration::from_millis(100);
    let proxy = FaultProxy::start(up.addr, Fault::Latency(d), 5);
    let mut c = Client::connect(proxy.addr());
    let t = Instant::now();
    assert_eq!(c.send("GET", "/v2/", b"").unwrap().status, 200);
    // Connection setup, the request and the response each wait once.
    assert!(t.elapsed() >= d * 3, "{:?}", t.elapsed());
    assert_eq!((proxy.requests(), proxy.faults_served()), (1, 0));
}

#[test]
fn drop_unblocks_every_thread() {
    let up = Upstream::start();
    let faulting = FaultProxy::start(up.addr, Fault::Status503, 1);
    let passing = FaultProxy::start(up.addr, Fault::Status503, 0);
    // Idle sockets: one silent before any request, one kept alive after a forwarded one.
    let mut silent = Client::connect(faulting.addr());
    let mut kept = Client::connect(passing.addr());
    assert_eq!(kept.send("GET", "/v2/", b"").unwrap().status, 200);
    let addrs = (faulting.addr(), passing.addr());

    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        drop(faulting);
        drop(passing);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("Drop returns promptly");
    assert!(silent.closed() && kept.closed(), "open connections are closed");
    for a in [addrs.0, addrs.1] {
        assert!(TcpStream::connect(a).is_err(), "{a} no longer listens");
    }
}
