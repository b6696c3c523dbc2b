//! The Kubernetes IP and CIDR libraries (`ip.go`, `cidr.go`): `ip(string)`, `isIP(string)`,
//! `ip.isCanonical(string)`, `string(ip)`, and on an IP `family()`, `isUnspecified()`,
//! `isLoopback()`, `isLinkLocalMulticast()`, `isLinkLocalUnicast()`, `isGlobalUnicast()`;
//! `cidr(string)`, `isCIDR(string)`, `string(cidr)`, and on a CIDR `containsIP(ip|string)`,
//! `containsCIDR(cidr|string)`, `ip()`, `masked()`, `prefixLength()`.
//!
//! Parsing is Go's `netip.ParseAddr`/`ParsePrefix` (std's parser has the same grammar for what
//! reaches it: dotted quads without leading zeros, RFC 4291 IPv6) plus the apiserver's refusals:
//! zones and IPv4-mapped IPv6 addresses. Prefixes keep the address as written (`1.2.3.4/24`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cel::common::types::{CelBool, CelInt, CelString, Type};
use cel::{DeclarationError, Env, ExecutionError};

use super::{error, opaque_val};

static IP_TYPE: Type = Type::new_unspecified_type("net.IP");
static CIDR_TYPE: Type = Type::new_unspecified_type("net.CIDR");

/// An IP address as a CEL value.
#[derive(Clone, Debug)]
pub(super) struct Ip(IpAddr);

/// A prefix (address as written, and length) as a CEL value.
#[derive(Clone, Debug)]
pub(super) struct Cidr {
    addr: IpAddr,
    bits: u8,
}

opaque_val!(Ip, &IP_TYPE, |a, b| a.0 == b.0);
opaque_val!(Cidr, &CIDR_TYPE, |a, b| a.addr == b.addr && a.bits == b.bits);

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn ip: (CelString) -> Result<Ip>, name = "ip", id = "string_to_ip")?;
    cel::add_overload!(env, fn is_ip: (CelString) -> CelBool, name = "isIP", id = "is_ip")?;
    cel::add_overload!(env, fn is_canonical: (CelString) -> Result<CelBool>, name = "ip.isCanonical", id = "ip_is_canonical")?;
    cel::add_overload!(env, fn ip_string: (Ip) -> CelString, name = "string", id = "ip_to_string")?;
    cel::add_member_overload!(env, fn family: (Ip) -> CelInt, name = "family", id = "ip_family")?;
    cel::add_member_overload!(env, fn is_unspecified: (Ip) -> CelBool, name = "isUnspecified", id = "ip_is_unspecified")?;
    cel::add_member_overload!(env, fn is_loopback: (Ip) -> CelBool, name = "isLoopback", id = "ip_is_loopback")?;
    cel::add_member_overload!(env, fn is_link_local_multicast: (Ip) -> CelBool, name = "isLinkLocalMulticast", id = "ip_is_link_local_multicast")?;
    cel::add_member_overload!(env, fn is_link_local_unicast: (Ip) -> CelBool, name = "isLinkLocalUnicast", id = "ip_is_link_local_unicast")?;
    cel::add_member_overload!(env, fn is_global_unicast: (Ip) -> CelBool, name = "isGlobalUnicast", id = "ip_is_global_unicast")?;
    cel::add_overload!(env, fn cidr: (CelString) -> Result<Cidr>, name = "cidr", id = "string_to_cidr")?;
    cel::add_overload!(env, fn is_cidr: (CelString) -> CelBool, name = "isCIDR", id = "is_cidr")?;
    cel::add_overload!(env, fn cidr_string: (Cidr) -> CelString, name = "string", id = "cidr_to_string")?;
    cel::add_member_overload!(env, fn contains_ip: (Cidr, Ip) -> CelBool, name = "containsIP", id = "cidr_contains_ip_ip")?;
    cel::add_member_overload!(env, fn contains_ip_string: (Cidr, CelString) -> Result<CelBool>, name = "containsIP", id = "cidr_contains_ip_string")?;
    cel::add_member_overload!(env, fn contains_cidr: (Cidr, Cidr) -> CelBool, name = "containsCIDR", id = "cidr_contains_cidr")?;
    cel::add_member_overload!(env, fn contains_cidr_string: (Cidr, CelString) -> Result<CelBool>, name = "containsCIDR", id = "cidr_contains_cidr_string")?;
    cel::add_member_overload!(env, fn cidr_ip: (Cidr) -> Ip, name = "ip", id = "cidr_ip")?;
    cel::add_member_overload!(env, fn masked: (Cidr) -> Cidr, name = "masked", id = "cidr_masked")?;
    cel::add_member_overload!(env, fn prefix_length: (Cidr) -> CelInt, name = "prefixLength", id = "cidr_prefix_length")?;
    Ok(())
}

/// The apiserver's `parseIPAddr`.
fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    let addr: IpAddr = raw
        .parse()
        .map_err(|_| format!("IP Address {raw:?} parse error during conversion from string"))?;
    if let IpAddr::V6(v6) = addr
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!("IPv4-mapped IPv6 address {raw:?} is not allowed"));
    }
    Ok(addr)
}

/// The apiserver's `parseCIDR` (Go's `netip.ParsePrefix`: bits in decimal without sign or leading
/// zero, at most 32 or 128).
fn parse_cidr(raw: &str) -> Result<Cidr, String> {
    let bad = |why: &str| {
        format!(
            "network address parse error during conversion from string: netip.ParsePrefix({raw:?}): {why}"
        )
    };
    let (addr, bits) = raw.rsplit_once('/').ok_or_else(|| bad("no '/'"))?;
    let addr: IpAddr = addr.parse().map_err(|_| bad("bad address"))?;
    if bits.is_empty()
        || !bits.bytes().all(|b| b.is_ascii_digit())
        || (bits.len() > 1 && bits.starts_with('0'))
    {
        return Err(bad("bad bits after slash"));
    }
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits: u8 = bits
        .parse()
        .ok()
        .filter(|b| *b <= max)
        .ok_or_else(|| bad("prefix length out of range"))?;
    if let IpAddr::V6(v6) = addr
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!("IPv4-mapped IPv6 address {raw:?} is not allowed"));
    }
    Ok(Cidr { addr, bits })
}

fn ip(s: &CelString<'_>) -> Result<Ip, ExecutionError> {
    parse_ip(s.inner()).map(Ip).map_err(|e| error("ip", e))
}

fn is_ip(s: &CelString<'_>) -> CelBool {
    parse_ip(s.inner()).is_ok().into()
}

fn is_canonical(s: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let addr = parse_ip(s.inner()).map_err(|e| error("ip.isCanonical", e))?;
    Ok((addr.to_string() == s.inner()).into())
}

fn ip_string(ip: &Ip) -> CelString<'static> {
    ip.0.to_string().into()
}

fn family(ip: &Ip) -> CelInt {
    CelInt::from(if ip.0.is_ipv4() { 4 } else { 6 })
}

fn is_unspecified(ip: &Ip) -> CelBool {
    ip.0.is_unspecified().into()
}

fn is_loopback(ip: &Ip) -> CelBool {
    ip.0.is_loopback().into()
}

/// Go: 224.0.0.0/24, ff02::/16.
fn is_link_local_multicast(ip: &Ip) -> CelBool {
    let multicast = match ip.0 {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.segments()[0] == 0xff02,
    };
    multicast.into()
}

/// Go: 169.254.0.0/16, fe80::/10.
fn link_local_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..2] == [169, 254],
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn is_link_local_unicast(ip: &Ip) -> CelBool {
    link_local_unicast(ip.0).into()
}

/// Go's `netip.Addr.IsGlobalUnicast`: not unspecified, broadcast, loopback, multicast or
/// link-local unicast (private and ULA addresses are "global unicast").
fn is_global_unicast(ip: &Ip) -> CelBool {
    let addr = ip.0;
    if addr == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return false.into();
    }
    (!addr.is_unspecified() && !addr.is_loopback() && !addr.is_multicast() && !link_local_unicast(addr))
        .into()
}

fn cidr(s: &CelString<'_>) -> Result<Cidr, ExecutionError> {
    parse_cidr(s.inner()).map_err(|e| error("cidr", e))
}

fn is_cidr(s: &CelString<'_>) -> CelBool {
    parse_cidr(s.inner()).is_ok().into()
}

fn cidr_string(c: &Cidr) -> CelString<'static> {
    format!("{}/{}", c.addr, c.bits).into()
}

/// The address as a 128-bit number and its width, for prefix arithmetic.
fn bits_of(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// The first `len` bits of an address of `width` bits.
fn prefix(value: u128, width: u8, len: u8) -> u128 {
    if len == 0 { 0 } else { value >> (width - len) }
}

/// Go's `Prefix.Contains`: same family, and the first `bits` bits agree.
fn contains(c: &Cidr, addr: IpAddr) -> bool {
    let ((net, w1), (ip, w2)) = (bits_of(c.addr), bits_of(addr));
    w1 == w2 && prefix(net, w1, c.bits) == prefix(ip, w1, c.bits)
}

/// `cidr.Overlaps(other) && cidr.Bits() <= other.Bits()`.
fn contains_cidr_of(c: &Cidr, other: &Cidr) -> bool {
    let ((a, w1), (b, w2)) = (bits_of(c.addr), bits_of(other.addr));
    let common = c.bits.min(other.bits);
    w1 == w2 && prefix(a, w1, common) == prefix(b, w1, common) && c.bits <= other.bits
}

fn contains_ip(c: &Cidr, ip: &Ip) -> CelBool {
    contains(c, ip.0).into()
}

fn contains_ip_string(c: &Cidr, s: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let addr = parse_ip(s.inner()).map_err(|e| error("containsIP", e))?;
    Ok(contains(c, addr).into())
}

fn contains_cidr(c: &Cidr, other: &Cidr) -> CelBool {
    contains_cidr_of(c, other).into()
}

fn contains_cidr_string(c: &Cidr, s: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let other = parse_cidr(s.inner()).map_err(|e| error("containsCIDR", e))?;
    Ok(contains_cidr_of(c, &other).into())
}

fn cidr_ip(c: &Cidr) -> Ip {
    Ip(c.addr)
}

fn masked(c: &Cidr) -> Cidr {
    let (value, width) = bits_of(c.addr);
    let kept = if c.bits == 0 {
        0
    } else {
        prefix(value, width, c.bits) << (width - c.bits)
    };
    let addr = if width == 32 {
        IpAddr::V4(Ipv4Addr::from(kept as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(kept))
    };
    Cidr { addr, bits: c.bits }
}

fn prefix_length(c: &Cidr) -> CelInt {
    i64::from(c.bits).into()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{all_fail, all_true};

    #[test]
    fn ips_as_the_apiserver_evaluates_them() {
        all_true(&[
            "isIP('10.0.0.1') && isIP('fd00::1') && !isIP('010.0.0.1') && !isIP('::ffff:1.2.3.4')",
            "!isIP('fe80::1%eth0') && !isIP('1.2.3') && !isIP('10.0.0.1/8')",
            "ip('10.0.0.1').family() == 4 && ip('::1').family() == 6",
            "ip('127.0.0.1').isLoopback() && ip('::1').isLoopback() && !ip('10.0.0.1').isLoopback()",
            "ip('0.0.0.0').isUnspecified() && ip('::').isUnspecified()",
            "ip('224.0.0.5').isLinkLocalMulticast() && ip('ff02::1').isLinkLocalMulticast()",
            "ip('169.254.1.1').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast()",
            "ip('10.0.0.1').isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast()",
            "ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')",
            "string(ip('2001:0db8:0:0:0:0:0:1')) == '2001:db8::1'",
            "ip('10.0.0.1') == ip('10.0.0.1') && ip('10.0.0.1') != ip('10.0.0.2')",
        ]);
        all_fail(&[
            ("ip('1.2.3')", "parse error"),
            ("ip('::ffff:1.2.3.4')", "IPv4-mapped"),
        ]);
    }

    #[test]
    fn cidrs_as_the_apiserver_evaluates_them() {
        all_true(&[
            "isCIDR('10.0.0.0/8') && isCIDR('1.2.3.4/24') && !isCIDR('10.0.0.0/33')",
            "!isCIDR('10.0.0.0') && !isCIDR('10.0.0.0/08') && !isCIDR('10.0.0.0/+8')",
            "cidr('10.0.0.0/8').containsIP('10.1.2.3') && !cidr('10.0.0.0/8').containsIP(ip('11.0.0.1'))",
            "!cidr('10.0.0.0/8').containsIP('::1')",
            "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR('10.0.0.0/8')",
            "cidr('10.0.0.0/8').containsCIDR(cidr('10.0.0.0/8'))",
            "cidr('1.2.3.4/24').ip() == ip('1.2.3.4') && cidr('1.2.3.4/24').masked() == cidr('1.2.3.0/24')",
            "string(cidr('fd00::1/64').masked()) == 'fd00::/64' && cidr('::/0').prefixLength() == 0",
            "cidr('0.0.0.0/0').containsIP('1.2.3.4')",
        ]);
        all_fail(&[
            ("cidr('10.0.0.0/33')", "out of range"),
            ("cidr('10.0.0.0/8').containsIP('x')", "parse error"),
        ]);
    }
}
