//! The network guard: wirewatch must never become a way into a private network (SPEC §9).
//!
//! Input: a target (a URL, a host name to resolve, or a connection just opened) and which
//! side asks ([`Scope`]: feeds or webhooks, whose settings differ). Output: nothing when
//! the target is public, else a [`Refused`] error that says which address, why it is not
//! public, and which setting would allow it. Why here: feed URLs come from users, OPML
//! files and redirects chosen by remote servers, so without a check a feed could make the
//! daemon fetch `http://169.254.169.254/` (cloud metadata) or an internal admin page.
//!
//! What is public is decided by one pure function, [`classify`], built from the IANA IPv4
//! and IPv6 Special-Purpose Address Registries (the most specific row decides; a row that is
//! not "globally reachable" is refused) plus multicast, broadcast, site-local and, for IPv6,
//! everything outside global unicast `2000::/3`. Policy choices beyond the registries:
//!
//! - IPv6 addresses that carry an IPv4 address are judged by the IPv4 address they carry:
//!   IPv4-mapped `::ffff:0:0/96` (a socket connects to the IPv4 address itself), NAT64
//!   `64:ff9b::/96`, 6to4 `2002::/16` (the tunnel ends at the embedded address) and Teredo
//!   `2001::/32` (both the server and the de-obfuscated client address must be public).
//!   The registry marks mapped addresses "not globally reachable" as packets on the wire;
//!   for a connect() they *are* their IPv4 address, so `[::ffff:8.8.8.8]` is allowed and
//!   `[::ffff:127.0.0.1]` is a loopback address. Local-use NAT64 `64:ff9b:1::/48` and the
//!   deprecated IPv4-compatible `::/96` are refused outright.
//! - The deprecated 6to4 relay anycast block `192.88.99.0/24` (registry: not applicable)
//!   is refused.
//!
//! Where it is enforced (see [`protect`]), so that every spelling of an address is caught
//! after it was turned into a real address, whatever parsed it:
//!
//! 1. host names, through a resolver that asks the system resolver and refuses the name when
//!    *any* address it resolves to is not public (rather than dropping those and connecting
//!    to the rest: a name that points inside is a misconfiguration or an attack, and a
//!    refusal that names it is clearer than a feed that works from some addresses only);
//! 2. IP-literal hosts, which reqwest connects to without asking the resolver: checked in
//!    the config ([`check_url`]), on every redirect hop ([`check_hop`]), and
//! 3. on every new connection, whatever its origin: the peer address of the socket just
//!    opened is checked before the request is written (for https, after the TLS
//!    handshake). This is the backstop that makes "the address actually connected to"
//!    hold even for a URL no earlier check saw (a stored permanent redirect, a URL given
//!    to `wirewatch test-feed`).
//!
//! Proxies from the environment would connect on wirewatch's behalf, past all of this, so
//! every client is built with `no_proxy()`.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Who is guarded: the setting that would let a refused target through differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Feeds,
    Webhooks,
}

impl Scope {
    fn hint(self) -> &'static str {
        match self {
            Scope::Feeds => "set poll.allow_private_networks = true to allow",
            Scope::Webhooks => {
                "set allow_private_network = true on the webhook, or poll.allow_private_networks = true, to allow"
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------

/// A range of addresses that is not public, as it is named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// `0.0.0.0/8`: "this network".
    ThisNetwork,
    /// `0.0.0.0`, `::`.
    Unspecified,
    Loopback,
    /// RFC 1918.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    LinkLocal,
    /// `192.0.0.0/24`, `2001::/23` (but for the few anycast addresses in them).
    IetfProtocol,
    Documentation,
    Benchmarking,
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240.0.0.0/4`, and IPv6 outside global unicast `2000::/3`.
    Reserved,
    /// Blocks the registries deprecated: 6to4 relay anycast, ORCHID (v1).
    Deprecated,
    /// `100::/64` (RFC 6666) and the dummy prefix `100:0:0:1::/64` (RFC 9780).
    DiscardOnly,
    /// `64:ff9b:1::/48` (RFC 8215).
    LocalTranslation,
    /// `5f00::/16` (RFC 9602).
    SegmentRouting,
    /// `fc00::/7`.
    UniqueLocal,
    /// `fec0::/10`, deprecated by RFC 3879 but still routed inside some networks.
    SiteLocal,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Range::ThisNetwork => "a \"this network\" address",
            Range::Unspecified => "the unspecified address",
            Range::Loopback => "a loopback address",
            Range::Private => "a private-use address",
            Range::SharedAddressSpace => "a shared (carrier-grade NAT) address",
            Range::LinkLocal => "a link-local address",
            Range::IetfProtocol => "an IETF protocol assignment",
            Range::Documentation => "a documentation address",
            Range::Benchmarking => "a benchmarking address",
            Range::Multicast => "a multicast address",
            Range::Broadcast => "the broadcast address",
            Range::Reserved => "a reserved address",
            Range::Deprecated => "a deprecated special-purpose address",
            Range::DiscardOnly => "a discard-only address",
            Range::LocalTranslation => "a local-use IPv4/IPv6 translation address",
            Range::SegmentRouting => "an SRv6 segment identifier",
            Range::UniqueLocal => "a unique-local address",
            Range::SiteLocal => "a site-local address",
        })
    }
}

/// Why an address is not public: its range, and for an IPv6 address that carries an IPv4
/// address (mapped, NAT64, 6to4, Teredo), the IPv4 address that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonPublic {
    pub range: Range,
    pub embedded: Option<Ipv4Addr>,
}

impl fmt::Display for NonPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some(v4) => write!(f, "an IPv6 address embedding {v4}, {}", self.range),
            None => write!(f, "{}", self.range),
        }
    }
}

/// What a registry row says about its block.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Globally reachable: an exception carved out of a larger non-public block.
    Public,
    Not(Range),
    /// Decided by the IPv4 address the IPv6 address carries.
    Embeds(Embedding),
}

#[derive(Debug, Clone, Copy)]
enum Embedding {
    /// `::ffff:a.b.c.d` and `64:ff9b::a.b.c.d`: the last 32 bits.
    Last32,
    /// `2002:aabb:ccdd::/48`: bits 16 to 48.
    SixToFour,
    /// `2001:0:server:server:flags:port:~client:~client`.
    Teredo,
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    Ipv4Addr::new(a, b, c, d).to_bits() as u128
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16) -> u128 {
    Ipv6Addr::new(a, b, c, d, e, f, g, h).to_bits()
}

/// The IPv4 rows: IANA's special-purpose registry (rows inside `192.0.0.0/24` that are not
/// globally reachable are covered by the /24), plus multicast and the reserved /4.
const V4_RULES: &[(u128, u32, Rule)] = &[
    (v4(0, 0, 0, 0), 8, Rule::Not(Range::ThisNetwork)),
    (v4(0, 0, 0, 0), 32, Rule::Not(Range::Unspecified)),
    (v4(10, 0, 0, 0), 8, Rule::Not(Range::Private)),
    (v4(100, 64, 0, 0), 10, Rule::Not(Range::SharedAddressSpace)),
    (v4(127, 0, 0, 0), 8, Rule::Not(Range::Loopback)),
    (v4(169, 254, 0, 0), 16, Rule::Not(Range::LinkLocal)),
    (v4(172, 16, 0, 0), 12, Rule::Not(Range::Private)),
    (v4(192, 0, 0, 0), 24, Rule::Not(Range::IetfProtocol)),
    (v4(192, 0, 0, 9), 32, Rule::Public),
    (v4(192, 0, 0, 10), 32, Rule::Public),
    (v4(192, 0, 2, 0), 24, Rule::Not(Range::Documentation)),
    (v4(192, 88, 99, 0), 24, Rule::Not(Range::Deprecated)),
    (v4(192, 168, 0, 0), 16, Rule::Not(Range::Private)),
    (v4(198, 18, 0, 0), 15, Rule::Not(Range::Benchmarking)),
    (v4(198, 51, 100, 0), 24, Rule::Not(Range::Documentation)),
    (v4(203, 0, 113, 0), 24, Rule::Not(Range::Documentation)),
    (v4(224, 0, 0, 0), 4, Rule::Not(Range::Multicast)),
    (v4(240, 0, 0, 0), 4, Rule::Not(Range::Reserved)),
    (v4(255, 255, 255, 255), 32, Rule::Not(Range::Broadcast)),
];

/// The IPv6 rows: IANA's special-purpose registry, site-local and multicast. Whatever no
/// row covers is public inside `2000::/3` and reserved outside it.
#[rustfmt::skip]
const V6_RULES: &[(u128, u32, Rule)] = &[
    (v6(0, 0, 0, 0, 0, 0, 0, 0), 128, Rule::Not(Range::Unspecified)),
    (v6(0, 0, 0, 0, 0, 0, 0, 1), 128, Rule::Not(Range::Loopback)),
    (v6(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, Rule::Embeds(Embedding::Last32)),
    (v6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, Rule::Embeds(Embedding::Last32)),
    (v6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, Rule::Not(Range::LocalTranslation)),
    (v6(0x100, 0, 0, 0, 0, 0, 0, 0), 64, Rule::Not(Range::DiscardOnly)),
    (v6(0x100, 0, 0, 1, 0, 0, 0, 0), 64, Rule::Not(Range::DiscardOnly)),
    (v6(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, Rule::Not(Range::IetfProtocol)),
    (v6(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, Rule::Embeds(Embedding::Teredo)),
    (v6(0x2001, 1, 0, 0, 0, 0, 0, 1), 128, Rule::Public),
    (v6(0x2001, 1, 0, 0, 0, 0, 0, 2), 128, Rule::Public),
    (v6(0x2001, 1, 0, 0, 0, 0, 0, 3), 128, Rule::Public),
    (v6(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, Rule::Not(Range::Benchmarking)),
    (v6(0x2001, 3, 0, 0, 0, 0, 0, 0), 32, Rule::Public),
    (v6(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48, Rule::Public),
    (v6(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28, Rule::Not(Range::Deprecated)),
    (v6(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28, Rule::Public),
    (v6(0x2001, 0x30, 0, 0, 0, 0, 0, 0), 28, Rule::Public),
    (v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, Rule::Not(Range::Documentation)),
    (v6(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, Rule::Embeds(Embedding::SixToFour)),
    (v6(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, Rule::Not(Range::Documentation)),
    (v6(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16, Rule::Not(Range::SegmentRouting)),
    (v6(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, Rule::Not(Range::UniqueLocal)),
    (v6(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, Rule::Not(Range::LinkLocal)),
    (v6(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, Rule::Not(Range::SiteLocal)),
    (v6(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, Rule::Not(Range::Multicast)),
];

/// The rule of the most specific row containing `addr` (an address `width` bits wide).
fn most_specific(rules: &[(u128, u32, Rule)], addr: u128, width: u32) -> Option<Rule> {
    rules
        .iter()
        .filter(|(net, len, _)| {
            let shift = width - len;
            net.checked_shr(shift).unwrap_or(0) == addr.checked_shr(shift).unwrap_or(0)
        })
        .max_by_key(|(_, len, _)| *len)
        .map(|(_, _, rule)| *rule)
}

/// Whether `ip` may be connected to without `allow_private_networks`.
pub fn is_public(ip: IpAddr) -> bool {
    classify(ip).is_ok()
}

/// `Ok` for a public address, else the range it belongs to. Pure: no I/O, no config.
pub fn classify(ip: IpAddr) -> Result<(), NonPublic> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Result<(), NonPublic> {
    match most_specific(V4_RULES, u128::from(ip.to_bits()), 32) {
        None | Some(Rule::Public) => Ok(()),
        Some(Rule::Not(range)) => Err(NonPublic {
            range,
            embedded: None,
        }),
        // No IPv4 row embeds anything.
        Some(Rule::Embeds(_)) => Err(NonPublic {
            range: Range::Reserved,
            embedded: None,
        }),
    }
}

fn classify_v6(ip: Ipv6Addr) -> Result<(), NonPublic> {
    let bits = ip.to_bits();
    let embedded = |v4: u32| {
        let v4 = Ipv4Addr::from_bits(v4);
        classify_v4(v4).map_err(|why| NonPublic {
            range: why.range,
            embedded: Some(v4),
        })
    };
    match most_specific(V6_RULES, bits, 128) {
        Some(Rule::Public) => Ok(()),
        Some(Rule::Not(range)) => Err(NonPublic {
            range,
            embedded: None,
        }),
        Some(Rule::Embeds(Embedding::Last32)) => embedded(bits as u32),
        Some(Rule::Embeds(Embedding::SixToFour)) => embedded((bits >> 80) as u32),
        Some(Rule::Embeds(Embedding::Teredo)) => {
            embedded((bits >> 64) as u32)?;
            embedded(!(bits as u32))
        }
        None if bits >> 125 == 0b001 => Ok(()),
        None => Err(NonPublic {
            range: Range::Reserved,
            embedded: None,
        }),
    }
}

// ---------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------

/// How the refused address was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Written in the URL.
    Literal,
    /// What this host name resolved to.
    Resolved(String),
    /// The peer of a connection just opened.
    Connected,
}

/// A target the guard will not let wirewatch reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Only http and https are fetched.
    Scheme(String),
    NoHost,
    Address {
        ip: IpAddr,
        why: NonPublic,
        seen: Seen,
        scope: Scope,
    },
    /// A connection whose peer address could not be read: refused, not assumed public.
    UnknownPeer,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Scheme(scheme) => {
                write!(
                    f,
                    "refused: `{scheme}:` URLs are not fetched, only http and https"
                )
            }
            Refused::NoHost => f.write_str("refused: the URL has no host"),
            Refused::Address {
                ip,
                why,
                seen,
                scope,
            } => {
                match seen {
                    Seen::Literal => write!(f, "refused: {ip} is {why}")?,
                    Seen::Resolved(name) => write!(f, "refused: {name} resolves to {ip}, {why}")?,
                    Seen::Connected => write!(f, "refused: the connection went to {ip}, {why}")?,
                }
                write!(f, " ({})", scope.hint())
            }
            Refused::UnknownPeer => {
                f.write_str("refused: cannot tell which address the connection went to")
            }
        }
    }
}

impl std::error::Error for Refused {}

/// The refusal behind an error, if the guard caused it: for classifying fetch errors.
pub fn refusal<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(refused);
        }
        next = err.source();
    }
    None
}

fn check_ip(ip: IpAddr, seen: Seen, scope: Scope) -> Result<(), Refused> {
    classify(ip).map_err(|why| Refused::Address {
        ip,
        why,
        seen,
        scope,
    })
}

/// Refuses a URL that is not http/https, or whose host is an IP address (in any spelling)
/// that is not public. A host name passes: it is checked when it is resolved.
pub fn check_url(url: &Url, scope: Scope) -> Result<(), Refused> {
    check_scheme(url)?;
    let ip = match url.host() {
        None => return Err(Refused::NoHost),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        // The url crate turns every IPv4 spelling of an http(s) host into an address; this
        // catches one that reached here as a name anyway (getaddrinfo would read it so).
        Some(Host::Domain(name)) => match parse_ipv4_loose(name) {
            Some(ip) => IpAddr::V4(ip),
            None => return Ok(()),
        },
    };
    check_ip(ip, Seen::Literal, scope)
}

fn check_scheme(url: &Url) -> Result<(), Refused> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(Refused::Scheme(other.to_string())),
    }
}

/// An IPv4 address as `inet_aton` and the WHATWG URL standard read it: one to four parts,
/// each decimal, octal (leading `0`) or hex (`0x`), the last filling the remaining bytes
/// (`127.1`, `0x7f.1`, `2130706433`), with one trailing dot allowed.
pub fn parse_ipv4_loose(text: &str) -> Option<Ipv4Addr> {
    let text = text.strip_suffix('.').unwrap_or(text);
    let parts: Vec<&str> = text.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) =
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (*part, 10)
            };
        if part.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let value = if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        numbers.push(value);
    }
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|n| *n > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - init.len() as u32);
    if *last >= 1u64 << rest_bits {
        return None;
    }
    let mut bits = *last;
    for (i, n) in init.iter().enumerate() {
        bits |= n << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from_bits(u32::try_from(bits).ok()?))
}

// ---------------------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------------------

/// Why a redirect is not followed.
#[derive(Debug, thiserror::Error)]
pub enum HopError {
    #[error("more than {0} redirects")]
    TooMany(usize),
    #[error("redirect from https to http refused")]
    Downgrade,
    #[error("redirect {0}")]
    Refused(#[source] Refused),
}

/// Decides one redirect hop to `next`, after the URLs in `previous` (the first request
/// included): at most `max` redirects, never from https down to http, only http(s), and
/// with `guard` set, never to a non-public IP literal (a name is checked when resolved).
pub fn check_hop(
    next: &Url,
    previous: &[Url],
    max: usize,
    guard: Option<Scope>,
) -> Result<(), HopError> {
    if previous.len() > max {
        return Err(HopError::TooMany(max));
    }
    if previous.iter().any(|u| u.scheme() == "https") && next.scheme() == "http" {
        return Err(HopError::Downgrade);
    }
    check_scheme(next).map_err(HopError::Refused)?;
    match guard {
        Some(scope) => check_url(next, scope).map_err(HopError::Refused),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// The client: resolver and connection check
// ---------------------------------------------------------------------------------------

/// Installs the guard on a client: the resolver for names and the check of every new
/// connection's peer. The caller also sets `no_proxy()` and a redirect policy that calls
/// [`check_hop`].
pub fn protect(builder: reqwest::ClientBuilder, scope: Scope) -> reqwest::ClientBuilder {
    builder
        .dns_resolver(GuardedResolver { scope })
        .connector_layer(PeerCheckLayer { scope })
}

/// Resolves with the system resolver and refuses a name that resolves to any non-public
/// address.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    scope: Scope,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (host, scope) = (name.as_str().to_string(), self.scope);
        Box::pin(async move {
            let addrs = resolve_public(host, scope).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `host` (port 0), or a [`Refused`] naming the first non-public one.
pub async fn resolve_public(host: String, scope: Scope) -> Result<Vec<SocketAddr>, BoxError> {
    let lookup = host.clone();
    // getaddrinfo blocks; this is what reqwest's own resolver does too.
    let addrs: Vec<SocketAddr> = tokio::task::spawn_blocking(move || {
        (lookup.as_str(), 0)
            .to_socket_addrs()
            .map(Iterator::collect)
    })
    .await??;
    for addr in &addrs {
        check_ip(addr.ip(), Seen::Resolved(host.clone()), scope)?;
    }
    Ok(addrs)
}

#[derive(Debug, Clone, Copy)]
struct PeerCheckLayer {
    scope: Scope,
}

impl<S> tower_layer::Layer<S> for PeerCheckLayer {
    type Service = PeerCheck<S>;

    fn layer(&self, inner: S) -> PeerCheck<S> {
        PeerCheck {
            inner,
            scope: self.scope,
        }
    }
}

/// Wraps reqwest's connector: a connection whose peer is not public is dropped before
/// the request is written on it.
#[derive(Debug, Clone)]
struct PeerCheck<S> {
    inner: S,
    scope: Scope,
}

impl<S, Request> tower_service::Service<Request> for PeerCheck<S>
where
    S: tower_service::Service<Request, Error = BoxError>,
    S::Response: Connection + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (connecting, scope) = (self.inner.call(request), self.scope);
        Box::pin(async move {
            let connection = connecting.await?;
            check_peer(&connection, scope)?;
            Ok(connection)
        })
    }
}

fn check_peer(connection: &impl Connection, scope: Scope) -> Result<(), Refused> {
    let mut extras = http::Extensions::new();
    connection.connected().get_extras(&mut extras);
    match extras.get::<HttpInfo>() {
        Some(info) => check_ip(info.remote_addr().ip(), Seen::Connected, scope),
        None => Err(Refused::UnknownPeer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry row's verdict.
    #[derive(Debug, Clone, Copy)]
    enum Reach {
        Global(bool),
        /// Decided by the IPv4 address it carries (a policy choice, see the module doc).
        Embeds,
    }
    use Reach::{Embeds, Global};

    /// The IANA IPv4 Special-Purpose Address Registry (every row: block, name, "Globally
    /// Reachable"), then the blocks outside it that are not unicast. `192.88.99.0/24` is
    /// "N/A" in the registry (deprecated): refused by choice.
    const IPV4_REGISTRY: &[(&str, &str, Reach)] = &[
        ("0.0.0.0/8", "This network", Global(false)),
        ("0.0.0.0/32", "This host on this network", Global(false)),
        ("10.0.0.0/8", "Private-Use", Global(false)),
        ("100.64.0.0/10", "Shared Address Space", Global(false)),
        ("127.0.0.0/8", "Loopback", Global(false)),
        ("169.254.0.0/16", "Link Local", Global(false)),
        ("172.16.0.0/12", "Private-Use", Global(false)),
        ("192.0.0.0/24", "IETF Protocol Assignments", Global(false)),
        (
            "192.0.0.0/29",
            "IPv4 Service Continuity Prefix",
            Global(false),
        ),
        ("192.0.0.8/32", "IPv4 dummy address", Global(false)),
        (
            "192.0.0.9/32",
            "Port Control Protocol Anycast",
            Global(true),
        ),
        (
            "192.0.0.10/32",
            "Traversal Using Relays around NAT Anycast",
            Global(true),
        ),
        ("192.0.0.170/32", "NAT64/DNS64 Discovery", Global(false)),
        ("192.0.0.171/32", "NAT64/DNS64 Discovery", Global(false)),
        ("192.0.2.0/24", "Documentation (TEST-NET-1)", Global(false)),
        ("192.31.196.0/24", "AS112-v4", Global(true)),
        ("192.52.193.0/24", "AMT", Global(true)),
        (
            "192.88.99.0/24",
            "Deprecated (6to4 Relay Anycast)",
            Global(false),
        ),
        (
            "192.88.99.2/32",
            "6a44-relay anycast address",
            Global(false),
        ),
        ("192.168.0.0/16", "Private-Use", Global(false)),
        (
            "192.175.48.0/24",
            "Direct Delegation AS112 Service",
            Global(true),
        ),
        ("198.18.0.0/15", "Benchmarking", Global(false)),
        (
            "198.51.100.0/24",
            "Documentation (TEST-NET-2)",
            Global(false),
        ),
        (
            "203.0.113.0/24",
            "Documentation (TEST-NET-3)",
            Global(false),
        ),
        ("240.0.0.0/4", "Reserved", Global(false)),
        ("255.255.255.255/32", "Limited Broadcast", Global(false)),
        // Not in the special-purpose registry, not unicast.
        ("224.0.0.0/4", "Multicast (RFC 5771)", Global(false)),
    ];

    /// The IANA IPv6 Special-Purpose Address Registry, every row, then what the IPv6 Address
    /// Space registry says outside global unicast. Teredo and 6to4 are "N/A" in the
    /// registry, IPv4-mapped "False": all three are judged by the IPv4 address they carry.
    const IPV6_REGISTRY: &[(&str, &str, Reach)] = &[
        ("::1/128", "Loopback Address", Global(false)),
        ("::/128", "Unspecified Address", Global(false)),
        ("::ffff:0:0/96", "IPv4-mapped Address", Embeds),
        ("64:ff9b::/96", "IPv4-IPv6 Translat.", Embeds),
        (
            "64:ff9b:1::/48",
            "IPv4-IPv6 Translat. (local use)",
            Global(false),
        ),
        ("100::/64", "Discard-Only Address Block", Global(false)),
        ("100:0:0:1::/64", "Dummy IPv6 Prefix", Global(false)),
        ("2001::/23", "IETF Protocol Assignments", Global(false)),
        ("2001::/32", "TEREDO", Embeds),
        (
            "2001:1::1/128",
            "Port Control Protocol Anycast",
            Global(true),
        ),
        (
            "2001:1::2/128",
            "Traversal Using Relays around NAT Anycast",
            Global(true),
        ),
        (
            "2001:1::3/128",
            "DNS-SD Service Registration Protocol Anycast",
            Global(true),
        ),
        ("2001:2::/48", "Benchmarking", Global(false)),
        ("2001:3::/32", "AMT", Global(true)),
        ("2001:4:112::/48", "AS112-v6", Global(true)),
        (
            "2001:10::/28",
            "Deprecated (previously ORCHID)",
            Global(false),
        ),
        ("2001:20::/28", "ORCHIDv2", Global(true)),
        (
            "2001:30::/28",
            "Drone Remote ID Protocol Entity Tags (DETs) Prefix",
            Global(true),
        ),
        ("2001:db8::/32", "Documentation", Global(false)),
        ("2002::/16", "6to4", Embeds),
        (
            "2620:4f:8000::/48",
            "Direct Delegation AS112 Service",
            Global(true),
        ),
        ("3fff::/20", "Documentation", Global(false)),
        ("5f00::/16", "Segment Routing (SRv6) SIDs", Global(false)),
        ("fc00::/7", "Unique-Local", Global(false)),
        ("fe80::/10", "Link-Local Unicast", Global(false)),
        // The IPv6 Address Space registry, around the special-purpose rows.
        (
            "::/8",
            "Reserved by IETF (incl. IPv4-compatible ::/96)",
            Global(false),
        ),
        ("100::/8", "Reserved by IETF", Global(false)),
        ("200::/7", "Reserved by IETF", Global(false)),
        ("400::/6", "Reserved by IETF", Global(false)),
        ("800::/5", "Reserved by IETF", Global(false)),
        ("1000::/4", "Reserved by IETF", Global(false)),
        ("2000::/3", "Global Unicast", Global(true)),
        ("4000::/2", "Reserved by IETF", Global(false)),
        ("8000::/1", "Reserved by IETF", Global(false)),
        (
            "fec0::/10",
            "Site-local (deprecated, RFC 3879)",
            Global(false),
        ),
        ("ff00::/8", "Multicast", Global(false)),
    ];

    fn cidr(text: &str) -> (IpAddr, u32) {
        let (addr, len) = text.split_once('/').unwrap();
        (addr.parse().unwrap(), len.parse().unwrap())
    }

    fn bits(ip: IpAddr) -> (u128, u32) {
        match ip {
            IpAddr::V4(ip) => (u128::from(ip.to_bits()), 32),
            IpAddr::V6(ip) => (ip.to_bits(), 128),
        }
    }

    fn from_bits(value: u128, width: u32) -> IpAddr {
        if width == 32 {
            IpAddr::V4(Ipv4Addr::from_bits(value as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from_bits(value))
        }
    }

    /// First and last address of a block.
    fn bounds(block: &str) -> (IpAddr, IpAddr) {
        let (net, len) = cidr(block);
        let (value, width) = bits(net);
        let host = if width - len >= 128 {
            u128::MAX
        } else {
            (1u128 << (width - len)) - 1
        };
        (from_bits(value, width), from_bits(value | host, width))
    }

    /// What the registry table says of `ip`: its most specific row.
    fn expected(ip: IpAddr) -> Option<(&'static str, &'static str, Reach)> {
        let table = if ip.is_ipv4() {
            IPV4_REGISTRY
        } else {
            IPV6_REGISTRY
        };
        let (value, width) = bits(ip);
        table
            .iter()
            .filter(|(block, _, _)| {
                let (net, len) = cidr(block);
                let shift = width - len;
                bits(net).0.checked_shr(shift).unwrap_or(0) == value.checked_shr(shift).unwrap_or(0)
            })
            .max_by_key(|(block, _, _)| cidr(block).1)
            .copied()
    }

    fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
        let b = ip.to_bits();
        let s = ip.segments();
        if s[0] == 0x2002 {
            vec![Ipv4Addr::from_bits((b >> 80) as u32)]
        } else if s[0] == 0x2001 && s[1] == 0 {
            vec![
                Ipv4Addr::from_bits((b >> 64) as u32),
                Ipv4Addr::from_bits(!(b as u32)),
            ]
        } else {
            vec![Ipv4Addr::from_bits(b as u32)]
        }
    }

    fn check_against_registry(ip: IpAddr) {
        let want = match expected(ip) {
            // Outside every IPv4 row: ordinary unicast.
            None => true,
            Some((_, _, Global(global))) => global,
            Some((_, _, Embeds)) => match ip {
                IpAddr::V6(v6) => embedded_v4(v6).into_iter().all(|v4| is_public(v4.into())),
                IpAddr::V4(_) => unreachable!(),
            },
        };
        assert_eq!(
            is_public(ip),
            want,
            "{ip}: registry row {:?}, classified {:?}",
            expected(ip),
            classify(ip)
        );
    }

    #[test]
    fn every_registry_row_is_classified_as_the_registry_says() {
        for (block, _, _) in IPV4_REGISTRY.iter().chain(IPV6_REGISTRY) {
            let (first, last) = bounds(block);
            check_against_registry(first);
            check_against_registry(last);
            // The neighbours just outside the block, where they exist.
            let (value, width) = bits(first);
            if value > 0 {
                check_against_registry(from_bits(value - 1, width));
            }
            let (value, width) = bits(last);
            let max = if width == 32 {
                u32::MAX as u128
            } else {
                u128::MAX
            };
            if value < max {
                check_against_registry(from_bits(value + 1, width));
            }
        }
    }

    #[test]
    fn boundary_addresses_fall_on_the_right_side() {
        let cases: &[(&str, bool)] = &[
            ("0.255.255.255", false),
            ("1.0.0.0", true),
            ("9.255.255.255", true),
            ("10.0.0.0", false),
            ("10.255.255.255", false),
            ("11.0.0.0", true),
            ("100.63.255.255", true),
            ("100.64.0.0", false),
            ("100.127.255.255", false),
            ("100.128.0.0", true),
            ("126.255.255.255", true),
            ("127.0.0.0", false),
            ("127.255.255.255", false),
            ("128.0.0.0", true),
            ("169.253.255.255", true),
            ("169.254.169.254", false),
            ("169.255.0.0", true),
            ("172.15.255.255", true),
            ("172.16.0.0", false),
            ("172.31.255.255", false),
            ("172.32.0.0", true),
            ("192.0.0.8", false),
            ("192.0.0.9", true),
            ("192.0.0.10", true),
            ("192.0.0.11", false),
            ("192.0.1.0", true),
            ("192.0.2.255", false),
            ("192.0.3.0", true),
            ("192.167.255.255", true),
            ("192.168.0.0", false),
            ("192.169.0.0", true),
            ("198.17.255.255", true),
            ("198.18.0.0", false),
            ("198.19.255.255", false),
            ("198.20.0.0", true),
            ("223.255.255.255", true),
            ("224.0.0.0", false),
            ("239.255.255.255", false),
            ("240.0.0.0", false),
            ("255.255.255.254", false),
            ("255.255.255.255", false),
            ("::", false),
            ("::1", false),
            ("::2", false),
            ("::127.0.0.1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:8.8.8.8", true),
            ("::ffff:0:8.8.8.8", false),
            ("64:ff9b::8.8.8.8", true),
            ("64:ff9b::10.0.0.1", false),
            ("64:ff9b::169.254.169.254", false),
            ("64:ff9b:1::8.8.8.8", false),
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2000::", true),
            ("2001::", false),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            ("2001:0:808:808:0:0:f7f7:f7f7", true),
            ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2001:200::", true),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:db8::1", false),
            ("2001:db9::", true),
            ("2002:7f00:1::", false),
            ("2002:c0a8:101::1", false),
            ("2002:808:808::1", true),
            ("2606:4700:4700::1111", true),
            ("3ffe::1", true),
            ("3fff::1", false),
            ("3fff:fff:ffff::", false),
            ("3fff:1000::", true),
            ("4000::", false),
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fc00::", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("febf:ffff::", false),
            ("fec0::1", false),
            ("ff02::1", false),
        ];
        for (text, public) in cases {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(is_public(ip), *public, "{text}: {:?}", classify(ip));
        }
    }

    #[test]
    fn reasons_name_the_range_and_the_embedded_address() {
        let why = |text: &str| classify(text.parse().unwrap()).unwrap_err().to_string();
        assert_eq!(why("127.0.0.1"), "a loopback address");
        assert_eq!(why("10.1.2.3"), "a private-use address");
        assert_eq!(why("100.64.0.1"), "a shared (carrier-grade NAT) address");
        assert_eq!(why("169.254.169.254"), "a link-local address");
        assert_eq!(
            why("::ffff:127.0.0.1"),
            "an IPv6 address embedding 127.0.0.1, a loopback address"
        );
        assert_eq!(
            why("64:ff9b::a00:1"),
            "an IPv6 address embedding 10.0.0.1, a private-use address"
        );
        assert_eq!(why("fd00::1"), "a unique-local address");
    }

    /// The same path as the fetcher: the URL parsed as reqwest gets it, its literal host
    /// checked as on a redirect hop, and a name resolved by the guarded resolver.
    async fn verdict(text: &str) -> Result<(), String> {
        let url = Url::parse(text).map_err(|e| format!("unparsable: {e}"))?;
        check_url(&url, Scope::Feeds).map_err(|e| e.to_string())?;
        if let Some(Host::Domain(name)) = url.host() {
            resolve_public(name.to_string(), Scope::Feeds)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn every_spelling_of_a_private_address_is_refused() {
        let spellings = [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://127.1/",
            "http://127.0.1/",
            "http://127.000.000.001/",
            "http://127.0.0.1./",
            "http://%31%32%37.0.0.1/",
            "http://１２７.０.０.１/",
            "http://0/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://[::1]/",
            "http://[0:0:0:0:0:0:0:1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b::10.0.0.1]/",
            "http://[2002:7f00:1::1]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://[::127.0.0.1]/",
            "https://10.1/",
            "http://10.0.0.1:8080/feeds/x",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://192.0.2.1/",
            "http://198.18.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://240.0.0.1/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[fec0::1]/",
            "http://[2001:db8::1]/",
            "http://[ff02::1]/",
            "http://localhost/",
            "http://LOCALHOST:8080/",
            "http://user:pw@localhost/",
            "ftp://example.org/feed",
            "file:///etc/passwd",
        ];
        for text in spellings {
            let refused = verdict(text).await;
            assert!(
                refused.as_ref().is_err_and(|e| e.starts_with("refused: ")),
                "{text}: {refused:?}"
            );
        }
        assert_eq!(
            verdict("http://2130706433/").await.unwrap_err(),
            "refused: 127.0.0.1 is a loopback address (set poll.allow_private_networks = true to allow)"
        );
        assert_eq!(
            verdict("http://localhost/").await.unwrap_err(),
            "refused: localhost resolves to 127.0.0.1, a loopback address (set poll.allow_private_networks = true to allow)"
        );
    }

    #[tokio::test]
    async fn public_addresses_pass() {
        for text in [
            "http://93.184.216.34/",
            "https://1.1.1.1/dns-query",
            "http://8.8.8.8:8080/feeds/x",
            "http://[2606:4700:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
            "http://[64:ff9b::808:808]/",
            "http://192.0.0.9/",
            "http://134744072/",
        ] {
            assert_eq!(verdict(text).await, Ok(()), "{text}");
        }
    }

    #[test]
    fn the_url_crate_normalizes_ipv4_spellings_of_http_hosts() {
        // Checked, not relied on: `check_url` also reads a name as an address.
        for text in ["http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/"] {
            let url = Url::parse(text).unwrap();
            assert_eq!(url.host(), Some(Host::Ipv4(Ipv4Addr::LOCALHOST)), "{text}");
        }
    }

    #[test]
    fn loose_ipv4_parsing_reads_what_getaddrinfo_reads() {
        let cases = [
            ("127.0.0.1", Some([127, 0, 0, 1])),
            ("2130706433", Some([127, 0, 0, 1])),
            ("0x7f000001", Some([127, 0, 0, 1])),
            ("0x7f.1", Some([127, 0, 0, 1])),
            ("0177.0.0.1", Some([127, 0, 0, 1])),
            ("127.1", Some([127, 0, 0, 1])),
            ("127.0.1", Some([127, 0, 0, 1])),
            ("10.1", Some([10, 0, 0, 1])),
            ("0", Some([0, 0, 0, 0])),
            ("0x", Some([0, 0, 0, 0])),
            ("127.0.0.1.", Some([127, 0, 0, 1])),
            ("256.0.0.1", None),
            ("127.16777216", None),
            ("1.2.3.4.5", None),
            ("08.0.0.1", None),
            ("example.org", None),
            ("1.2.3.a", None),
            ("", None),
            ("1..2", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_ipv4_loose(text), want.map(Ipv4Addr::from), "{text}");
        }
    }

    #[tokio::test]
    async fn the_resolver_checks_what_getaddrinfo_returns() {
        // getaddrinfo reads numeric spellings itself: the result is checked, not the text.
        for name in ["localhost", "0x7f.1", "2130706433"] {
            let err = resolve_public(name.to_string(), Scope::Webhooks)
                .await
                .unwrap_err();
            let refused = err.downcast_ref::<Refused>().unwrap();
            assert!(
                matches!(refused, Refused::Address { why, .. } if why.range == Range::Loopback),
                "{name}: {refused}"
            );
            assert!(refused.to_string().contains("on the webhook"), "{refused}");
        }
    }

    fn urls(list: &[&str]) -> Vec<Url> {
        list.iter().map(|u| Url::parse(u).unwrap()).collect()
    }

    #[test]
    fn redirect_hops_are_checked_one_by_one() {
        let hop = |next: &str, previous: &[&str], guard| {
            check_hop(&Url::parse(next).unwrap(), &urls(previous), 5, guard)
        };
        let guarded = Some(Scope::Feeds);
        assert!(hop("https://b.example/", &["https://a.example/"], guarded).is_ok());
        assert!(hop("http://93.184.216.34/", &["http://a.example/"], guarded).is_ok());
        // A public first hop redirecting inside, in any spelling.
        for inside in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://[::ffff:10.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            let err = hop(inside, &["http://a.example/"], guarded).unwrap_err();
            assert!(matches!(err, HopError::Refused(_)), "{inside}: {err}");
            assert!(err.to_string().starts_with("redirect refused: "), "{err}");
        }
        // Allowed private networks: the hop goes through; the other rules still hold.
        assert!(hop("http://127.0.0.1/", &["http://a.example/"], None).is_ok());
        assert!(matches!(
            hop("http://a.example/", &["https://a.example/"], None),
            Err(HopError::Downgrade)
        ));
        assert!(matches!(
            hop("ftp://a.example/", &["http://a.example/"], None),
            Err(HopError::Refused(Refused::Scheme(_)))
        ));
        let five: Vec<&str> = vec!["http://a.example/"; 5];
        assert!(hop("http://b.example/", &five, guarded).is_ok());
        let six: Vec<&str> = vec!["http://a.example/"; 6];
        assert!(matches!(
            hop("http://b.example/", &six, guarded),
            Err(HopError::TooMany(5))
        ));
    }

    /// Spelled with the guard on a real client: a literal loopback host (which reqwest
    /// connects to without asking the resolver) is caught by the peer check, a name by
    /// the resolver, and the error chain leads back to the refusal.
    #[tokio::test]
    async fn a_guarded_client_never_sends_a_request_inside() {
        crate::http::init_tls();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = protect(reqwest::Client::builder().no_proxy(), Scope::Feeds)
            .build()
            .unwrap();
        for (url, says) in [
            (
                format!("http://127.0.0.1:{port}/"),
                "refused: the connection went to 127.0.0.1, a loopback address",
            ),
            (
                format!("http://[::ffff:127.0.0.1]:{port}/"),
                "refused: the connection went to ::ffff:127.0.0.1, an IPv6 address embedding 127.0.0.1, a loopback address",
            ),
            (
                format!("http://localhost:{port}/"),
                "refused: localhost resolves to 127.0.0.1, a loopback address",
            ),
        ] {
            let err = client.get(&url).send().await.unwrap_err();
            let refused = refusal(&err).unwrap_or_else(|| panic!("{url}: {err:?}"));
            assert!(refused.to_string().starts_with(says), "{url}: {refused}");
            let forbidden = crate::fetch::FetchError::forbidden(&err).unwrap();
            assert_eq!(forbidden.class(), "forbidden");
            assert_eq!(forbidden.to_string(), refused.to_string());
        }
        // Nothing was written to the listener: every connection that reached it was
        // dropped before the request.
        listener.set_nonblocking(true).unwrap();
        while let Ok((mut stream, _)) = listener.accept() {
            use std::io::Read as _;
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut buf = Vec::new();
            let _ = stream.read_to_end(&mut buf);
            assert!(buf.is_empty(), "a request reached the listener: {buf:?}");
        }
    }
}
