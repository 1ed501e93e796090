//! A directory served over plain HTTP/1.1 on 127.0.0.1 (a TUF repository,
//! say): `GET /path` answers the file under the directory or 404; one
//! request per connection. Every path asked for is recorded. Or a server
//! that redirects every path to another base URL.

#![allow(unreachable_pub, clippy::unwrap_used)]

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct FileServer {
    pub addr: std::net::SocketAddr,
    pub asked: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

/// What a server answers.
#[derive(Clone)]
enum Serve {
    Files(PathBuf),
    /// `302` to this base URL followed by the path asked for.
    Redirect(String),
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FileServer {
    pub async fn start(root: &Path) -> FileServer {
        FileServer::serve(Serve::Files(root.to_owned())).await
    }

    /// A server that answers every path with a redirect to `base` + path.
    pub async fn redirecting_to(base: &str) -> FileServer {
        FileServer::serve(Serve::Redirect(base.trim_end_matches('/').to_owned())).await
    }

    async fn serve(what: Serve) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let asked = asked.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(answer(stream, what.clone(), asked.clone()));
                }
            }
        });
        FileServer { addr, asked, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Whether `path` was asked for.
    pub fn was_asked(&self, path: &str) -> bool {
        self.times_asked(path) > 0
    }

    /// How many times `path` was asked for.
    pub fn times_asked(&self, path: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

async fn answer(mut stream: tokio::net::TcpStream, what: Serve, asked: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("GET "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or("")
        .to_owned();
    asked.lock().unwrap().push(path.clone());
    let root = match what {
        Serve::Files(root) => root,
        Serve::Redirect(base) => {
            let reply = format!(
                "HTTP/1.1 302 Found\r\nlocation: {base}{path}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let relative = Path::new(path.trim_start_matches('/'));
    let inside = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    let body = if inside {
        tokio::fs::read(root.join(relative)).await.ok()
    } else {
        None
    };
    let (status, body) = match body {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", b"not found".to_vec()),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}
