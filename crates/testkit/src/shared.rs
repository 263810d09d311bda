//! The shared-hosts layout of a [`World`] (see [`WorldBuilder::shared_hosts`]): virtual
//! hosting of many MX names on a pool of SMTP servers, certificates for groups of names.
//!
//! Why a pool rather than one address per MX host: a world lives in one `127.A.B.0/24`, so
//! it has about 250 addresses, and a benchmark of 100 000 domains has tens of thousands of
//! distinct MX names. Giving each its own address would need hundreds of /24 blocks and as
//! many listening sockets and server tasks. Instead, like a hosting provider, each pool
//! server answers for many names and picks the STARTTLS certificate by the SNI name. Every
//! MX name still has its own DNS name and its own certificate entry, and clients that
//! cache probe results by host name (as `mtasts` and checkdmarc both do) still probe each
//! name once.
//!
//! [`WorldBuilder::shared_hosts`]: crate::WorldBuilder::shared_hosts

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io,
    sync::Arc,
};

use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;

use crate::{
    ca::{CertSpec, IssuedCert, TestCa},
    https::{HttpsServer, VirtualHost},
    smtp::{SmtpBehaviour, SmtpServer},
    world::{
        CertKind, DEAD_HOST, DomainSpec, HTTPS_HOST, Layout, MAX_ALLOCATION_ATTEMPTS, PolicyHost,
        STANDARD_HTTPS_PORT, STANDARD_SMTP_PORT, SmtpKind, WRONG_NAME, World, bind_dns, block_ip,
        build_zone, make_cert, next_block, norm, start_dns, zone_file_if,
    },
};

/// Host offsets of the SMTP pool servers offering STARTTLS.
pub const POOL_STARTTLS: std::ops::RangeInclusive<u8> = 2..=241;
/// Host offsets of the SMTP pool servers without STARTTLS.
pub const POOL_NO_STARTTLS: std::ops::RangeInclusive<u8> = 242..=247;
/// Host offsets of the silent SMTP pool servers.
pub const POOL_SILENT: std::ops::RangeInclusive<u8> = 248..=250;

fn pool_range(kind: SmtpKind) -> std::ops::RangeInclusive<u8> {
    match kind {
        SmtpKind::StartTls => POOL_STARTTLS,
        SmtpKind::NoStartTls => POOL_NO_STARTTLS,
        SmtpKind::Silent => POOL_SILENT,
    }
}

/// One certificate for `names` of the given kind.
fn group_cert(
    kind: CertKind,
    names: &[String],
    ca: &TestCa,
    untrusted: &TestCa,
) -> io::Result<IssuedCert> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let r = match kind {
        CertKind::Valid => ca.try_issue(&CertSpec::valid_for(&refs)),
        CertKind::Expired => ca.try_issue(&CertSpec::expired(&refs)),
        CertKind::NotYetValid => ca.try_issue(&CertSpec::not_yet_valid(&refs)),
        CertKind::WrongName => ca.try_issue(&CertSpec::valid_for(&[WRONG_NAME])),
        CertKind::Untrusted => untrusted.try_issue(&CertSpec::valid_for(&refs)),
        CertKind::SelfSigned => TestCa::try_self_signed(&CertSpec::valid_for(&refs)),
    };
    r.map_err(|e| {
        let first = names.first().map(String::as_str).unwrap_or("");
        io::Error::new(io::ErrorKind::InvalidInput, format!("certificate for {first}…: {e}"))
    })
}

/// Certificates for `names` (name, kind), `group` names per certificate (one certificate
/// for all [`CertKind::WrongName`] names). Returns the certificates and, per name, the index
/// of its certificate.
fn issue_groups(
    names: Vec<(String, CertKind)>,
    group: usize,
    ca: &TestCa,
    untrusted: &TestCa,
) -> io::Result<(Vec<IssuedCert>, HashMap<String, usize>)> {
    let mut by_kind: BTreeMap<u8, (CertKind, Vec<String>)> = BTreeMap::new();
    for (name, kind) in names {
        by_kind.entry(kind_order(kind)).or_insert_with(|| (kind, Vec::new())).1.push(name);
    }
    let mut certs = Vec::new();
    let mut index = HashMap::new();
    for (_, (kind, names)) in by_kind {
        let size = if kind == CertKind::WrongName { names.len().max(1) } else { group.max(1) };
        for chunk in names.chunks(size) {
            certs.push(group_cert(kind, chunk, ca, untrusted)?);
            for n in chunk {
                index.insert(n.clone(), certs.len() - 1);
            }
        }
    }
    Ok((certs, index))
}

fn kind_order(kind: CertKind) -> u8 {
    match kind {
        CertKind::Valid => 0,
        CertKind::Expired => 1,
        CertKind::NotYetValid => 2,
        CertKind::WrongName => 3,
        CertKind::Untrusted => 4,
        CertKind::SelfSigned => 5,
    }
}

struct PoolHost {
    name: String,
    smtp: Option<SmtpKind>,
    cert: CertKind,
    ip_offset: u8,
}

pub(crate) async fn build_shared(specs: Vec<DomainSpec>, layout: Layout) -> io::Result<World> {
    let mut seen = HashSet::new();
    let specs: Vec<DomainSpec> = specs.into_iter().filter(|s| seen.insert(s.norm_name())).collect();
    drop(seen);

    let ca = TestCa::try_new("mtasts test CA").map_err(io::Error::other)?;
    let untrusted_ca = TestCa::try_new("mtasts untrusted CA").map_err(io::Error::other)?;

    // MX hosts (and implicit-MX domains), first appearance wins, spread over the pools.
    let mut hosts: Vec<PoolHost> = Vec::new();
    let mut host_index: HashMap<String, usize> = HashMap::new();
    let mut next_in_pool: HashMap<SmtpKind, usize> = HashMap::new();
    let mut add_host = |name: &str, smtp: Option<SmtpKind>, cert: CertKind| {
        let name = norm(name);
        if host_index.contains_key(&name) {
            return;
        }
        let ip_offset = match smtp {
            None => DEAD_HOST,
            Some(kind) => {
                let range = pool_range(kind);
                let len = usize::from(range.end() - range.start()) + 1;
                let n = next_in_pool.entry(kind).or_default();
                // `n % len` < 250, so the cast is exact.
                let offset = range.start() + (*n % len) as u8;
                *n += 1;
                offset
            }
        };
        host_index.insert(name.clone(), hosts.len());
        hosts.push(PoolHost { name, smtp, cert, ip_offset });
    };
    for spec in &specs {
        for mx in &spec.mx {
            add_host(&mx.host, mx.smtp, mx.cert);
        }
        if let Some(imx) = &spec.implicit_mx {
            add_host(&spec.name, imx.smtp, imx.cert);
        }
    }

    // Certificates: SMTP names, then policy hosts, each in groups.
    let any_dane = specs.iter().any(|s| s.dane_from_certs);
    let smtp_names: Vec<(String, CertKind)> = hosts
        .iter()
        .filter(|h| h.smtp == Some(SmtpKind::StartTls) || any_dane)
        .map(|h| (h.name.clone(), h.cert))
        .collect();
    let (smtp_certs, smtp_cert_of) =
        issue_groups(smtp_names, layout.mx_cert_group, &ca, &untrusted_ca)?;
    let smtp_keys: HashMap<String, Arc<CertifiedKey>> = smtp_cert_of
        .iter()
        .map(|(name, i)| (name.clone(), smtp_certs[*i].certified_key()))
        .collect();
    let smtp_keys = Arc::new(smtp_keys);
    let fallback = make_cert(CertKind::WrongName, WRONG_NAME, &ca, &untrusted_ca)?;

    let policy_names: Vec<(String, CertKind)> = specs
        .iter()
        .filter_map(|s| match &s.policy_host {
            PolicyHost::Serve { cert, .. } => Some((format!("mta-sts.{}", s.norm_name()), *cert)),
            _ => None,
        })
        .collect();
    let (policy_certs, policy_cert_of) =
        issue_groups(policy_names, layout.cert_group, &ca, &untrusted_ca)?;
    let mut https_hosts: HashMap<String, VirtualHost> = HashMap::new();
    for spec in &specs {
        if let PolicyHost::Serve { behaviour, .. } = &spec.policy_host {
            let name = format!("mta-sts.{}", spec.norm_name());
            let Some(i) = policy_cert_of.get(&name) else { continue };
            let host = VirtualHost {
                key: policy_certs[*i].certified_key(),
                behaviour: Arc::new(behaviour.clone()),
            };
            https_hosts.insert(name, host);
        }
    }
    drop(policy_cert_of);
    drop(policy_certs);

    // Which pool servers exist.
    let mut offsets: BTreeMap<u8, SmtpKind> = BTreeMap::new();
    for h in &hosts {
        if let Some(kind) = h.smtp {
            offsets.insert(h.ip_offset, kind);
        }
    }

    // Addresses and ports.
    let (https_port, smtp_port) =
        if layout.standard_ports { (STANDARD_HTTPS_PORT, STANDARD_SMTP_PORT) } else { (0, 0) };
    let mut last_err = None;
    let mut bound = None;
    for _ in 0..MAX_ALLOCATION_ATTEMPTS {
        let block = next_block();
        let attempt = async {
            let https = TcpListener::bind((block_ip(block, HTTPS_HOST), https_port)).await?;
            let mut port = smtp_port;
            let mut listeners = Vec::new();
            for (offset, kind) in &offsets {
                let l = TcpListener::bind((block_ip(block, *offset), port)).await?;
                port = l.local_addr()?.port();
                listeners.push((*offset, *kind, l));
            }
            if port == 0 {
                let probe = TcpListener::bind((block_ip(block, DEAD_HOST - 1), 0)).await?;
                port = probe.local_addr()?.port();
            }
            let dns = bind_dns(block, layout).await?;
            Ok::<_, io::Error>((block, https, listeners, port, dns))
        };
        match attempt.await {
            Ok(b) => {
                bound = Some(b);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some((block, https_listener, listeners, smtp_port, dns_sockets)) = bound else {
        let e = last_err.unwrap_or_else(|| io::Error::other("no attempt made"));
        return Err(io::Error::new(
            e.kind(),
            format!(
                "could not bind listeners in any of {MAX_ALLOCATION_ATTEMPTS} loopback blocks \
                 127.A.B.0/24 (is 127.0.0.0/8 routed to lo? standard ports need root): {e}"
            ),
        ));
    };
    let https_ip = block_ip(block, HTTPS_HOST);
    let dead_ip = block_ip(block, DEAD_HOST);
    let https_port = https_listener.local_addr()?.port();

    // DNS data.
    let spki = |name: &str| smtp_cert_of.get(name).map(|i| smtp_certs[*i].spki_sha256());
    let host_ips = hosts.iter().map(|h| (h.name.clone(), block_ip(block, h.ip_offset)));
    let (zone, addrs) = build_zone(&specs, host_ips, layout.quiet, https_ip, dead_ip, &spki);
    let zone_file = zone_file_if(layout, &zone)?;
    let domains: Vec<String> = specs.iter().map(DomainSpec::norm_name).collect();
    drop(specs);

    // Servers.
    let https = HttpsServer::start_virtual(https_listener, https_hosts, !layout.quiet).await?;
    let mut pool = Vec::new();
    let mut pool_at: HashMap<u8, usize> = HashMap::new();
    for (offset, kind, listener) in listeners {
        let behaviour = SmtpBehaviour {
            banner: format!("smtp{offset}.pool.testkit.test ESMTP testkit"),
            starttls: kind == SmtpKind::StartTls,
            cert: Some(fallback.clone()),
            silent: kind == SmtpKind::Silent,
        };
        let server =
            SmtpServer::start_virtual(listener, behaviour, Arc::clone(&smtp_keys), !layout.quiet)
                .await?;
        pool_at.insert(offset, pool.len());
        pool.push(server);
    }
    let pool_of: HashMap<String, usize> = hosts
        .iter()
        .filter(|h| h.smtp.is_some())
        .filter_map(|h| pool_at.get(&h.ip_offset).map(|i| (h.name.clone(), *i)))
        .collect();
    let dns = start_dns(dns_sockets, zone).await?;

    let dir = tempfile::Builder::new().prefix("mtasts-world-").tempdir()?;
    let ca_pem_path = dir.path().join("ca.pem");
    std::fs::write(&ca_pem_path, ca.cert_pem())?;
    std::fs::write(dir.path().join("untrusted-ca.pem"), untrusted_ca.cert_pem())?;

    Ok(World {
        dns,
        https,
        smtp: HashMap::new(),
        pool,
        pool_of,
        addrs,
        ca,
        untrusted_ca,
        block,
        https_port,
        smtp_port,
        domains,
        ca_pem_path,
        zone_file,
        _dir: dir,
    })
}
