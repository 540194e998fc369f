//! IPv4 addresses carried inside IPv6 ones.
//!
//! A packet to `64:ff9b::192.0.2.1` leaves as IPv6 but, on a host with a
//! NAT64 path, arrives at `192.0.2.1`. A deny rule written for `192.0.2.0/24`
//! must refuse it too, so [`RuleSet`](super::RuleSet) checks IPv4 deny rules
//! against every IPv4 address an IPv6 address may stand for. Where the
//! position of the IPv4 address depends on how the translator is set up
//! (the local-use NAT64 prefix), every possible position counts: the check
//! fails closed.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Every IPv4 address `addr` may carry, by the forms that embed one:
///
/// | form | prefix | where the IPv4 address is |
/// |---|---|---|
/// | IPv4-mapped | `::ffff:0:0/96` | last 32 bits |
/// | IPv4-translated (SIIT) | `::ffff:0:0:0/96` | last 32 bits |
/// | IPv4-compatible (deprecated) | `::/96`, but not `::` or `::1` | last 32 bits |
/// | NAT64 well-known prefix (RFC 6052) | `64:ff9b::/96` | last 32 bits |
/// | NAT64 local-use prefix (RFC 8215) | `64:ff9b:1::/48` | any RFC 6052 position for a /48, /56, /64 or /96 prefix |
/// | 6to4 (RFC 3056) | `2002::/16` | bits 16–47 |
/// | Teredo (RFC 4380) | `2001::/32` | server: bits 32–63; client: last 32 bits, inverted |
pub(crate) fn embedded_ipv4(addr: Ipv6Addr) -> Vec<Ipv4Addr> {
    let bits = addr.to_bits();
    let segments = addr.segments();
    let last32 = Ipv4Addr::from_bits(bits as u32);
    let mut found = Vec::new();
    match segments {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => found.push(last32),
        [0, 0, 0, 0, 0, 0, _, _] if bits > 1 => found.push(last32),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => found.push(last32),
        [0x64, 0xff9b, 1, ..] => {
            for prefix_len in [48, 56, 64, 96] {
                found.push(rfc6052_extract(bits, prefix_len));
            }
        }
        [0x2002, ..] => found.push(Ipv4Addr::from_bits((bits >> 80) as u32)),
        [0x2001, 0, ..] => {
            found.push(Ipv4Addr::from_bits((bits >> 64) as u32));
            found.push(Ipv4Addr::from_bits(!(bits as u32)));
        }
        _ => {}
    }
    found.sort();
    found.dedup();
    found
}

/// The IPv4 address in an IPv6 address made from a `prefix_len`-bit prefix,
/// as RFC 6052 section 2.2 lays it out: the 32 bits follow the prefix,
/// skipping bits 64–71 (the "u" octet).
fn rfc6052_extract(bits: u128, prefix_len: u32) -> Ipv4Addr {
    let octet = |position: u32| ((bits >> (120 - position)) & 0xff) as u32;
    let mut v4 = 0u32;
    let mut position = prefix_len;
    for _ in 0..4 {
        if position == 64 {
            position += 8;
        }
        v4 = (v4 << 8) | octet(position);
        position += 8;
    }
    Ipv4Addr::from_bits(v4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carried(addr: &str) -> Vec<Ipv4Addr> {
        embedded_ipv4(addr.parse().expect("ipv6"))
    }

    fn v4(addr: &str) -> Ipv4Addr {
        addr.parse().expect("ipv4")
    }

    #[test]
    fn each_form_yields_its_ipv4_address() {
        assert_eq!(carried("::ffff:192.0.2.1"), [v4("192.0.2.1")]);
        assert_eq!(carried("::ffff:0:192.0.2.1"), [v4("192.0.2.1")]);
        assert_eq!(carried("::192.0.2.1"), [v4("192.0.2.1")]);
        assert_eq!(carried("64:ff9b::192.0.2.1"), [v4("192.0.2.1")]);
        assert_eq!(carried("2002:c000:201::1"), [v4("192.0.2.1")]);
        // Teredo: server 192.0.2.45, client 198.51.100.7 (inverted).
        let client = !u32::from(v4("198.51.100.7"));
        let teredo = Ipv6Addr::from_bits(
            (0x2001_0000_u128 << 96)
                | (u128::from(u32::from(v4("192.0.2.45"))) << 64)
                | u128::from(client),
        );
        assert_eq!(
            embedded_ipv4(teredo),
            [v4("192.0.2.45"), v4("198.51.100.7")]
        );
    }

    #[test]
    fn the_local_use_nat64_prefix_is_read_at_every_position() {
        // RFC 6052's examples, moved under 64:ff9b:1::/48: 192.0.2.33 with a
        // /48 prefix is 64:ff9b:1:c000:2:2100::, with a /96 prefix
        // 64:ff9b:1::c000:221.
        assert!(carried("64:ff9b:1:c000:2:2100::").contains(&v4("192.0.2.33")));
        assert!(carried("64:ff9b:1::c000:221").contains(&v4("192.0.2.33")));
        let at_64: Ipv6Addr = "64:ff9b:1:0:c0:2:2100:0".parse().expect("ipv6");
        assert!(embedded_ipv4(at_64).contains(&v4("192.0.2.33")));
    }

    #[test]
    fn ordinary_ipv6_addresses_carry_nothing() {
        for plain in [
            "::1",
            "::",
            "2001:db8::1",
            "fe80::1",
            "fd00::53",
            "64:ff9c::1",
        ] {
            assert!(carried(plain).is_empty(), "{plain}");
        }
    }
}
