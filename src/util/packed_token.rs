//! [`PackedToken`]: a token kept in memory in its binary form when it is
//! base64url text, as DocuSign's tokens are (three unpadded base64url
//! segments joined by dots, like a JWT): the decoded bytes take three
//! quarters of the text's. Anything else is kept as the text itself, so every
//! string survives, and the text given back is always the text given.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Most dot-separated segments packed; a token with more is kept as text.
pub const MAX_PACKED_SEGMENTS: usize = 8;

/// A token held compactly; [`PackedToken::unpack`] gives its text back.
/// `Debug` never shows it. One pointer and length (16 bytes), so a session
/// with one stays within a smaller allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedToken(Box<[u8]>);

/// The first byte of a token kept as text; a packed token's first byte is
/// its number of segments (1 to [`MAX_PACKED_SEGMENTS`]).
const TEXT: u8 = 0;

impl PackedToken {
    pub fn new(text: &str) -> PackedToken {
        PackedToken(pack(text).unwrap_or_else(|| {
            let mut bytes = Vec::with_capacity(1 + text.len());
            bytes.push(TEXT);
            bytes.extend_from_slice(text.as_bytes());
            bytes.into_boxed_slice()
        }))
    }

    /// The token's text (a new string: for the rare place that sends it).
    pub fn unpack(&self) -> String {
        match self.0.split_first() {
            // Built from a `&str` behind the tag, so always UTF-8.
            Some((&TEXT, text)) => String::from_utf8_lossy(text).into_owned(),
            _ => unpack(&self.0),
        }
    }

    /// Whether it is held in binary form.
    #[cfg(test)]
    pub fn is_packed(&self) -> bool {
        self.0.first().is_some_and(|&tag| tag != TEXT)
    }

    /// Bytes held on the heap.
    #[cfg(test)]
    pub fn heap_len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for PackedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PackedToken(***)")
    }
}

/// The packed form of `text`, or `None` when it would not give `text` back
/// exactly (other characters, padding, non-zero trailing bits, an empty or
/// too long segment, too many segments).
fn pack(text: &str) -> Option<Box<[u8]>> {
    let segments: Vec<&str> = text.split('.').collect();
    if segments.len() > MAX_PACKED_SEGMENTS || segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let decoded: Vec<Vec<u8>> = segments
        .iter()
        .map(|s| URL_SAFE_NO_PAD.decode(s).ok())
        .collect::<Option<_>>()?;
    let header = 1 + 2 * decoded.len();
    let mut out = Vec::with_capacity(header + decoded.iter().map(Vec::len).sum::<usize>());
    out.push(decoded.len() as u8);
    for d in &decoded {
        out.extend_from_slice(&u16::try_from(d.len()).ok()?.to_le_bytes());
    }
    for d in &decoded {
        out.extend_from_slice(d);
    }
    let out = out.into_boxed_slice();
    // The decoder accepts only canonical input, but the promise is exact
    // text, so check it rather than rely on a decoder's leniency.
    (unpack(&out) == text).then_some(out)
}

fn unpack(bytes: &[u8]) -> String {
    let Some((&n, rest)) = bytes.split_first() else {
        return String::new();
    };
    let (lengths, mut data) = rest.split_at((2 * n as usize).min(rest.len()));
    let mut text = String::with_capacity(data.len() * 4 / 3 + n as usize + 2);
    for (i, len) in lengths.chunks_exact(2).enumerate() {
        let len = u16::from_le_bytes([len[0], len[1]]) as usize;
        let (segment, tail) = data.split_at(len.min(data.len()));
        if i > 0 {
            text.push('.');
        }
        URL_SAFE_NO_PAD.encode_string(segment, &mut text);
        data = tail;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt_shaped(payload_len: usize) -> String {
        let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7 % 256) as u8).collect();
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"typ":"MT","alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode([0xA5u8; 256]),
        )
    }

    #[test]
    fn base64url_segments_are_packed_to_three_quarters_and_come_back_exact() {
        for len in [0, 1, 2, 3, 350, 1000] {
            let text = jwt_shaped(len);
            let t = PackedToken::new(&text);
            if len == 0 {
                assert!(!t.is_packed(), "an empty segment stays text");
            } else {
                assert!(t.is_packed(), "{len}");
                assert!(t.heap_len() <= text.len() * 3 / 4 + 7, "{len}");
            }
            assert_eq!(t.unpack(), text);
        }
    }

    #[test]
    fn anything_else_is_kept_as_text_and_comes_back_exact() {
        let cases = [
            "",
            "aA",   // canonical base64url: packed
            "at",   // non-zero trailing bits
            "a",    // one character cannot be base64
            "ab=",  // padding
            "ab+/", // standard alphabet
            "a.b.c.d.e.f.g.h.i",
            "x..y",
            ".x",
            "a b",
            "tok\nen",
            "é",
        ];
        for text in cases {
            assert_eq!(PackedToken::new(text).unpack(), text, "{text:?}");
        }
        assert!(PackedToken::new("aA").is_packed());
        assert!(!PackedToken::new("at").is_packed());
        assert!(!PackedToken::new("ab=").is_packed());
        assert!(!PackedToken::new("a.b.c.d.e.f.g.h.i").is_packed());
    }

    #[test]
    fn random_texts_of_the_base64url_alphabet_and_dots_come_back_exact() {
        use rand::Rng;
        const ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+";
        let mut rng = rand::thread_rng();
        let mut packed = 0;
        for _ in 0..5_000 {
            let len = rng.gen_range(0..64);
            let text: String = (0..len)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect();
            let t = PackedToken::new(&text);
            assert_eq!(t.unpack(), text);
            packed += usize::from(t.is_packed());
        }
        assert!(packed > 0, "some random texts are canonical base64url");
    }

    #[test]
    fn a_segment_too_long_for_its_length_field_stays_text() {
        let text = URL_SAFE_NO_PAD.encode(vec![1u8; 70_000]);
        let t = PackedToken::new(&text);
        assert!(!t.is_packed());
        assert_eq!(t.unpack(), text);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = PackedToken::new("c2VjcmV0LXRva2Vu");
        assert_eq!(format!("{t:?}"), "PackedToken(***)");
    }
}
