//! Raw HTTP/2 frames over a plain TCP stream (prior knowledge), for the
//! attacks a conforming client library refuses to make: rapid resets,
//! WINDOW_UPDATE floods and overflows, header blocks that never end.
//!
//! Only what the abuse tests need: frame encoding, a hand-made HPACK block
//! (literals without indexing, never Huffman), and a reader that records
//! what the server answered (GOAWAY, RST_STREAM, response HEADERS) without
//! decoding any header block.
// A failed unwrap is a failed test; not every test uses every helper.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// The receive window this client announces, per stream and for the
/// connection.
const RECV_WINDOW: u32 = 1 << 30;

/// The largest frame payload a peer must accept without a SETTINGS change.
pub const MAX_FRAME: usize = 16_384;

/// Appends one frame: 24-bit length, type, flags, 31-bit stream id, payload.
pub fn frame(buf: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap();
    assert!(len < 1 << 24, "frame payload too long");
    buf.extend_from_slice(&len.to_be_bytes()[1..]);
    buf.push(kind);
    buf.push(flags);
    buf.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    buf.extend_from_slice(payload);
}

pub fn rst_stream(buf: &mut Vec<u8>, stream: u32, code: u32) {
    frame(buf, RST_STREAM, 0, stream, &code.to_be_bytes());
}

pub fn window_update(buf: &mut Vec<u8>, stream: u32, increment: u32) {
    frame(buf, WINDOW_UPDATE, 0, stream, &increment.to_be_bytes());
}

pub fn data(buf: &mut Vec<u8>, stream: u32, payload: &[u8], end_stream: bool) {
    let flags = if end_stream { END_STREAM } else { 0 };
    frame(buf, DATA, flags, stream, payload);
}

/// HEADERS with the whole block in one frame.
pub fn headers(buf: &mut Vec<u8>, stream: u32, block: &[u8], end_stream: bool) {
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(buf, HEADERS, flags, stream, block);
}

// ---------------------------------------------------------------- HPACK

/// An HPACK integer with an `prefix`-bit prefix; `first` holds the bits
/// above the prefix (RFC 7541, 5.1).
fn hpack_int(buf: &mut Vec<u8>, prefix: u8, first: u8, value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        buf.push(first | value as u8);
        return;
    }
    buf.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        buf.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    buf.push(rest as u8);
}

/// A string literal, not Huffman-coded.
fn hpack_str(buf: &mut Vec<u8>, s: &[u8]) {
    hpack_int(buf, 7, 0x00, s.len());
    buf.extend_from_slice(s);
}

/// Literal header field without indexing, name from the static table.
fn literal_indexed_name(buf: &mut Vec<u8>, index: usize, value: &[u8]) {
    hpack_int(buf, 4, 0x00, index);
    hpack_str(buf, value);
}

/// Literal header field without indexing, new name.
pub fn literal(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    buf.push(0x00);
    hpack_str(buf, name);
    hpack_str(buf, value);
}

/// The header block of `POST <path>` with a JSON body of `content_length`
/// bytes (when given). Static table: 3 `:method POST`, 6 `:scheme http`,
/// 4 `:path`, 1 `:authority`, 31 `content-type`, 28 `content-length`.
pub fn post_block(path: &str, content_length: Option<usize>) -> Vec<u8> {
    let mut block = vec![0x80 | 3, 0x80 | 6];
    literal_indexed_name(&mut block, 4, path.as_bytes());
    literal_indexed_name(&mut block, 1, b"localhost");
    literal_indexed_name(&mut block, 31, b"application/json");
    if let Some(n) = content_length {
        literal_indexed_name(&mut block, 28, n.to_string().as_bytes());
    }
    block
}

// ---------------------------------------------------------------- reading

/// What the server sent on one connection, as far as the tests care.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// GOAWAY: last stream id, error code, debug data.
    pub goaway: Option<(u32, u32, Vec<u8>)>,
    /// RST_STREAM codes by stream.
    pub resets: HashMap<u32, u32>,
    /// Streams that got a response HEADERS frame.
    pub responses: Vec<u32>,
    /// Streams whose response ended (END_STREAM seen).
    pub ended: Vec<u32>,
    /// The connection is closed (EOF or a read error).
    pub closed: bool,
}

impl Seen {
    pub fn reset_with(&self, code: u32) -> usize {
        self.resets.values().filter(|c| **c == code).count()
    }

    pub fn goaway_code(&self) -> Option<u32> {
        self.goaway.as_ref().map(|g| g.1)
    }

    /// The GOAWAY, readable: last stream id, error code, debug text.
    pub fn goaway_text(&self) -> String {
        match &self.goaway {
            None => "no GOAWAY".to_owned(),
            Some((last, code, debug)) => format!(
                "GOAWAY last stream {last}, code {code:#x}, {:?}",
                String::from_utf8_lossy(debug)
            ),
        }
    }
}

/// One raw HTTP/2 connection: the write half for the test, a task reading
/// every frame into [`Seen`].
#[derive(Debug)]
pub struct RawConn {
    pub write: OwnedWriteHalf,
    seen: Arc<Mutex<Seen>>,
    changed: watch::Receiver<()>,
}

impl RawConn {
    /// Connects, sends the preface and an empty SETTINGS, waits for the
    /// server's SETTINGS and acknowledges it, as any client does.
    pub async fn open(addr: SocketAddr) -> std::io::Result<RawConn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut read, mut write) = stream.into_split();
        let mut hello = PREFACE.to_vec();
        // Large receive windows (SETTINGS_INITIAL_WINDOW_SIZE and the
        // connection's): the reader never acknowledges DATA, and the
        // server's answers must never wait on this client's window.
        let mut settings = vec![0x00, 0x04];
        settings.extend_from_slice(&RECV_WINDOW.to_be_bytes());
        frame(&mut hello, SETTINGS, 0, 0, &settings);
        window_update(&mut hello, 0, RECV_WINDOW);
        write.write_all(&hello).await?;
        loop {
            let (kind, flags, _, _) = read_frame(&mut read).await?;
            if kind == SETTINGS && flags & ACK == 0 {
                break;
            }
        }
        let mut ack = Vec::new();
        frame(&mut ack, SETTINGS, ACK, 0, &[]);
        write.write_all(&ack).await?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (tx, changed) = watch::channel(());
        tokio::spawn(read_all(read, seen.clone(), tx));
        Ok(RawConn {
            write,
            seen,
            changed,
        })
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    /// Writes `bytes`; `false` once the server has closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.write.write_all(bytes).await.is_ok()
    }

    /// Waits until `check` holds of what was seen, or `within` passes.
    pub async fn wait_for(&mut self, within: Duration, check: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let seen = self.seen();
            if check(&seen) || seen.closed {
                return seen;
            }
            if tokio::time::timeout_at(deadline, self.changed.changed())
                .await
                .is_err()
            {
                return self.seen();
            }
        }
    }

    /// Waits for the connection to close (EOF), up to `within`.
    pub async fn wait_closed(&mut self, within: Duration) -> Seen {
        self.wait_for(within, |s| s.closed).await
    }
}

async fn read_frame(read: &mut OwnedReadHalf) -> std::io::Result<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    read.read_exact(&mut head).await?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    read.read_exact(&mut payload).await?;
    Ok((head[3], head[4], stream, payload))
}

async fn read_all(mut read: OwnedReadHalf, seen: Arc<Mutex<Seen>>, changed: watch::Sender<()>) {
    loop {
        let frame = read_frame(&mut read).await;
        {
            let mut seen = seen.lock().unwrap();
            match frame {
                Err(_) => {
                    seen.closed = true;
                }
                Ok((GOAWAY, _, _, payload)) if payload.len() >= 8 => {
                    let last = u32::from_be_bytes(payload[0..4].try_into().unwrap()) & 0x7fff_ffff;
                    let code = u32::from_be_bytes(payload[4..8].try_into().unwrap());
                    seen.goaway = Some((last, code, payload[8..].to_vec()));
                }
                Ok((RST_STREAM, _, stream, payload)) if payload.len() == 4 => {
                    let code = u32::from_be_bytes(payload[..].try_into().unwrap());
                    seen.resets.insert(stream, code);
                }
                Ok((HEADERS, flags, stream, _)) => {
                    seen.responses.push(stream);
                    if flags & END_STREAM != 0 {
                        seen.ended.push(stream);
                    }
                }
                Ok((DATA, flags, stream, _)) if flags & END_STREAM != 0 => {
                    seen.ended.push(stream);
                }
                Ok(_) => {}
            }
        }
        changed.send_replace(());
        if seen.lock().unwrap().closed {
            return;
        }
    }
}
