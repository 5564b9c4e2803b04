//! HTTP Basic authentication of the stats page (`stats auth <user>:<passwd>`, `stats
//! realm`): reading the credentials of a request's `Authorization` header, checking them
//! against the configured accounts, and HAProxy 2.6's 401 reply.
//!
//! Everything here reads bytes from the network: it never panics, whatever the header
//! holds. The decoder is strict base64 (RFC 4648 alphabet, padding required, as HAProxy's
//! `base64dec`); a header that does not decode, or whose credentials have no ':', is no
//! credential at all. Accounts are compared without an early exit on the first differing
//! byte, and every account is compared, so the time taken tells nothing about how much of a
//! name or password was right (only lengths may show).

use crate::config::model::StatsUser;

/// What a stats URI protected by `stats auth` needs: the accounts and the realm named in
/// the challenge.
#[derive(Debug, Clone, Copy)]
pub struct BasicAuth<'a> {
    pub realm: &'a str,
    pub users: &'a [StatsUser],
}

/// The body of HAProxy 2.6's 401 reply (`http_err_msgs[HTTP_ERR_401]`).
pub const UNAUTHORIZED_BODY: &str = "<html><body><h1>401 Unauthorized</h1>\n\
     You need a valid user and password to access this content.\n</body></html>\n";

impl BasicAuth<'_> {
    /// Whether the request head (request line and headers) carries the credentials of one
    /// of the accounts.
    pub fn admits(&self, request_head: &str) -> bool {
        let Some((user, pass)) = credentials(request_head) else {
            return false;
        };
        // Every account is compared, with `&` and `|`, which do not short-circuit.
        self.users.iter().fold(false, |found, u| {
            found | (same(&user, u.name.as_bytes()) & same(&pass, u.password.as_bytes()))
        })
    }

    /// The `WWW-Authenticate` value: `Basic realm="<realm>"`. HAProxy writes the realm as
    /// it is; a quote or a backslash in it is escaped here, and control characters are
    /// dropped, so that the header stays one valid quoted string.
    pub fn challenge(&self) -> String {
        let mut out = String::with_capacity(self.realm.len() + 14);
        out.push_str("Basic realm=\"");
        for c in self.realm.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => {}
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

/// The user and password of the first `Authorization: Basic <base64>` header of a request
/// head: the decoded bytes split at their first ':'. None when the header is missing, names
/// another scheme, does not decode, or has no ':'.
pub fn credentials(request_head: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = request_head
        .lines()
        .skip(1)
        .take_while(|l| !l.trim_end_matches('\r').is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim_matches([' ', '\t', '\r']))?;
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(rest.trim_start_matches([' ', '\t']).as_bytes())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// Decodes strict base64 (`A-Z a-z 0-9 + /`, `=` padding up to a multiple of 4, padding
/// only at the end). None for anything else.
pub fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() % 4 != 0 {
        return None;
    }
    let groups = input.len() / 4;
    let mut out = Vec::with_capacity(groups * 3);
    for (k, group) in input.chunks_exact(4).enumerate() {
        let pad = group.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && k + 1 != groups) {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &group[..4 - pad] {
            n = (n << 6) | u32::from(sextet(c)?);
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Equality of two byte strings that looks at every byte of equal-length strings.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Vec<StatsUser> {
        [("admin", "admin"), ("ops", "s3cr:et"), ("", "anon")]
            .iter()
            .map(|(n, p)| StatsUser {
                name: n.to_string(),
                password: p.to_string(),
            })
            .collect()
    }

    fn head(auth: &str) -> String {
        format!("GET /stats HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n")
    }

    #[test]
    fn base64_decodes_rfc4648_vectors() {
        for (enc, dec) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("YWRtaW46YWRtaW4=", "admin:admin"),
        ] {
            assert_eq!(
                base64_decode(enc.as_bytes()).as_deref(),
                Some(dec.as_bytes()),
                "{enc}"
            );
        }
        assert_eq!(base64_decode(b"+/+/"), Some(vec![0xfb, 0xff, 0xbf]));
    }

    #[test]
    fn base64_refuses_what_is_not_strict_base64() {
        for bad in [
            "Zg",         // no padding
            "Zg=",        // short padding
            "Z===",       // three pads
            "====",       // only padding
            "Zg==Zg==",   // padding before the end
            "Zm9v YmFy",  // space inside
            "Zm9-",       // URL-safe alphabet
            "Zm9_",       // URL-safe alphabet
            "Zm=v",       // padding inside a group
            "!!!!",       // garbage
            "Zm9v\u{e9}", // not ASCII
        ] {
            assert_eq!(base64_decode(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_never_panics_on_any_short_input() {
        const ALPHABET: &[u8] = b"AZaz09+/=-_ \x00\xff";
        let mut buf = Vec::new();
        for len in 0..=6u32 {
            for mut n in 0..(ALPHABET.len() as u64).pow(len) {
                buf.clear();
                for _ in 0..len {
                    buf.push(ALPHABET[(n % ALPHABET.len() as u64) as usize]);
                    n /= ALPHABET.len() as u64;
                }
                let _ = base64_decode(&buf);
            }
        }
    }

    #[test]
    fn credentials_split_at_the_first_colon() {
        assert_eq!(
            credentials(&head("Basic b3BzOnMzY3I6ZXQ=")),
            Some((b"ops".to_vec(), b"s3cr:et".to_vec()))
        );
        // Scheme in any case, spaces before the token, as HAProxy accepts them.
        assert!(credentials(&head("basic YWRtaW46YWRtaW4=")).is_some());
        assert!(credentials(&head("BASIC   YWRtaW46YWRtaW4=  ")).is_some());
        for bad in [
            "Bearer YWRtaW46YWRtaW4=",
            "Basic",
            "Basic ",
            "YWRtaW46YWRtaW4=",
            "Basic YWRtaW5hZG1pbg==", // "adminadmin": no colon
            "Basic YWRtaW46YWRtaW4",  // no padding
            "Basic !!!!garbage",
        ] {
            assert_eq!(credentials(&head(bad)), None, "{bad}");
        }
        assert_eq!(credentials("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        // A header after the end of the head is not read.
        assert_eq!(
            credentials("GET / HTTP/1.1\r\n\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\n"),
            None
        );
        // The first Authorization header counts.
        let two = "GET / HTTP/1.1\r\nauthorization: Basic YTpi\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\n\r\n";
        assert_eq!(credentials(two), Some((b"a".to_vec(), b"b".to_vec())));
    }

    #[test]
    fn admits_exactly_the_configured_accounts() {
        let users = users();
        let auth = BasicAuth {
            realm: "r",
            users: &users,
        };
        let b64 = |s: &str| {
            // A tiny encoder for the test only.
            const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut out = String::new();
            for c in s.as_bytes().chunks(3) {
                let n = (u32::from(c[0]) << 16)
                    | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                    | u32::from(*c.get(2).unwrap_or(&0));
                for k in 0..4 {
                    if k <= c.len() {
                        out.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
                    } else {
                        out.push('=');
                    }
                }
            }
            out
        };
        let admits = |creds: &str| auth.admits(&head(&format!("Basic {}", b64(creds))));
        assert!(admits("admin:admin"));
        assert!(admits("ops:s3cr:et"));
        assert!(admits(":anon"));
        for bad in [
            "admin:admi",
            "admin:admin ",
            "Admin:admin",
            "ops:s3cr",
            "ops:admin",
            "admin",
            "nobody:admin",
            ":",
            "admin:admin\0",
        ] {
            assert!(!admits(bad), "{bad:?}");
        }
        let none = BasicAuth {
            realm: "r",
            users: &[],
        };
        assert!(!none.admits(&head(&format!("Basic {}", b64("admin:admin")))));
    }

    #[test]
    fn hostile_headers_are_refused_without_panicking() {
        let users = users();
        let auth = BasicAuth {
            realm: "r",
            users: &users,
        };
        let long = "A".repeat(65_536);
        for v in [
            format!("Basic {long}"),
            format!("Basic {long}="),
            format!("{long} {long}"),
            "Basic \u{0}\u{0}\u{0}\u{0}".to_string(),
            "Basic =".to_string(),
            "\u{fffd}\u{fffd} \u{fffd}".to_string(),
            String::new(),
        ] {
            assert!(!auth.admits(&head(&v)));
        }
        assert!(!auth.admits(""));
        assert!(!auth.admits("\r\n\r\n:::"));
    }

    #[test]
    fn the_challenge_names_the_realm_in_one_quoted_string() {
        let c = |realm| BasicAuth { realm, users: &[] }.challenge();
        assert_eq!(
            c("HAProxy Statistics"),
            "Basic realm=\"HAProxy Statistics\""
        );
        assert_eq!(c("a\"b\\c\r\nd"), "Basic realm=\"a\\\"b\\\\cd\"");
        assert_eq!(UNAUTHORIZED_BODY.len(), 112, "HAProxy's content-length");
    }
}
