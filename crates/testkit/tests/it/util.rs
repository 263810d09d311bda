//! Small clients for the tests: a TLS client, an HTTP/1.1 GET, an SMTP line reader.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    net::TcpStream,
    time::timeout,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

pub const SHORT: Duration = Duration::from_millis(300);
pub const LONG: Duration = Duration::from_secs(10);

pub fn client_config(roots: RootCertStore, tls12_only: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls12_only { &[&rustls::version::TLS12] } else { rustls::ALL_VERSIONS };
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub async fn tls_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    sni: &str,
    config: Arc<ClientConfig>,
) -> io::Result<TlsStream<S>> {
    let name = ServerName::try_from(sni.to_owned()).map_err(io::Error::other)?;
    timeout(LONG, TlsConnector::from(config).connect(name, stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))?
}

pub struct Response {
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.split(' ').nth(1).unwrap().parse().unwrap()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// GET `path` over TLS with `sni`; reads the whole response until close (at most `cap` bytes).
pub async fn https_get(
    addr: SocketAddr,
    sni: &str,
    path: &str,
    config: Arc<ClientConfig>,
    read_timeout: Duration,
) -> io::Result<Response> {
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = tls_connect(tcp, sni, config).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {sni}\r\nUser-Agent: testkit-test\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await?;
    let mut all = Vec::new();
    let cap = 1 << 20;
    timeout(read_timeout, async {
        let mut buf = [0u8; 8192];
        loop {
            let n = tls.read(&mut buf).await?;
            if n == 0 || all.len() > cap {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        Ok::<_, io::Error>(())
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "read timed out"))??;
    let pos =
        all.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| io::Error::other("no head"))?;
    Ok(Response {
        head: String::from_utf8(all[..pos].to_vec()).unwrap(),
        body: all[pos + 4..].to_vec(),
    })
}

/// Reads one SMTP reply (possibly multi-line); returns its lines.
pub async fn smtp_reply<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = timeout(LONG, r.read_line(&mut line))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply"))??;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end().to_owned();
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return Ok(lines);
        }
    }
}

pub async fn smtp_cmd<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    cmd: &str,
) -> io::Result<Vec<String>> {
    r.get_mut().write_all(format!("{cmd}\r\n").as_bytes()).await?;
    smtp_reply(r).await
}
