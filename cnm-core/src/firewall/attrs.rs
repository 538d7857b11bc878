//! Netlink attributes (TLVs): encoding nested attributes and iterating over received ones.

// linux/netlink.h
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Netlink attributes being encoded: native-endian TLV headers, 4-byte aligned. nf_tables reads
/// its integers big-endian, so [`Attrs::u32`] writes them that way.
#[derive(Debug, Default, Clone)]
pub(super) struct Attrs {
    buf: Vec<u8>,
}

impl Attrs {
    /// Appends one attribute with the given payload.
    pub fn bytes(&mut self, ty: u16, payload: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + payload.len()).expect("netlink attribute over 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        self
    }

    /// Appends a big-endian u32 (`NLA_BE32`, what nf_tables expects of every integer).
    pub fn u32(&mut self, ty: u16, value: u32) -> &mut Self {
        self.bytes(ty, &value.to_be_bytes())
    }

    /// Appends a NUL-terminated string.
    pub fn str(&mut self, ty: u16, value: &str) -> &mut Self {
        let mut v = Vec::with_capacity(value.len() + 1);
        v.extend_from_slice(value.as_bytes());
        v.push(0);
        self.bytes(ty, &v)
    }

    /// Appends a nested attribute whose content `f` writes.
    pub fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Attrs)) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        f(self);
        let len = u16::try_from(self.buf.len() - start).expect("netlink attribute over 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

/// Iterates over the attributes in `buf`: (type without flag bits, payload).
pub(super) fn parse_attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            return None;
        }
        let payload = &buf[4..len];
        buf = &buf[align4(len).min(buf.len())..];
        Some((ty, payload))
    })
}

/// `n` rounded up to the 4-byte alignment of netlink.
pub(super) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_are_aligned_and_nested() {
        let mut a = Attrs::default();
        a.str(1, "cnm").nest(2, |n| {
            n.u32(1, 0x0102_0304);
        });
        let b = a.as_bytes();
        // "cnm\0" is 4 bytes: 8 in all; the nest is 4 + 8.
        assert_eq!(b.len(), 8 + 12);
        assert_eq!(&b[4..8], b"cnm\0");
        assert_eq!(u16::from_ne_bytes([b[10], b[11]]), 2 | NLA_F_NESTED);
        assert_eq!(&b[16..20], &[1, 2, 3, 4]);
        let parsed: Vec<_> = parse_attrs(b).collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].0, 2);
        let inner: Vec<_> = parse_attrs(parsed[1].1).collect();
        assert_eq!(inner, vec![(1, &[1u8, 2, 3, 4][..])]);
    }

    #[test]
    fn odd_lengths_are_padded() {
        let mut a = Attrs::default();
        a.bytes(1, &[9]).bytes(2, &[7, 7]);
        assert_eq!(a.as_bytes().len(), 16);
        let parsed: Vec<_> = parse_attrs(a.as_bytes()).collect();
        assert_eq!(parsed, vec![(1, &[9u8][..]), (2, &[7u8, 7][..])]);
    }
}
