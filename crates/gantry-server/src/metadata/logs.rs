//! `POST /logs` and `POST /logs/{id}/messages`: log lines a step sends through the API
//! instead of its output streams.
//!
//! Relay's entrypointer sends protobuf bodies (`application/octet-stream`, relay-pls
//! `pkg/plspb/pls.proto`: `LogCreateRequest{context = 1, name = 2}`,
//! `LogMessageAppendRequest{log_id = 1, media_type = 2, payload = 3, timestamp = 4}`) and reads
//! protobuf answers (`LogCreateResponse{log_id = 1}`,
//! `LogMessageAppendResponse{log_id = 1, log_message_id = 2}`). Gantry reads just the fields it
//! needs with the few lines of wire-format decoding below, rather than a protobuf stack.
//! JSON bodies (`{"name"}`, `{"payload"}`) are accepted too and answered in JSON.
//! A log id is the stream's name made URL-safe: no state is kept between the two calls.

/// A protobuf length-delimited field: its number and bytes. Other wire types are skipped.
pub(crate) struct Field<'b> {
    pub(crate) number: u64,
    pub(crate) bytes: &'b [u8],
}

/// The length-delimited fields of a protobuf message, or `None` if it is not well-formed.
pub(crate) fn fields(mut buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let number = key >> 3;
        match key & 7 {
            0 => {
                varint(&mut buf)?;
            }
            1 => buf = buf.get(8..)?,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).ok()?;
                let bytes = buf.get(..len)?;
                buf = buf.get(len..)?;
                out.push(Field { number, bytes });
            }
            5 => buf = buf.get(4..)?,
            _ => return None,
        }
    }
    Some(out)
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The bytes of field `number`, the last one winning as protobuf specifies.
pub(crate) fn field<'b>(fields: &[Field<'b>], number: u64) -> Option<&'b [u8]> {
    fields
        .iter()
        .rev()
        .find(|f| f.number == number)
        .map(|f| f.bytes)
}

/// Encodes string fields as a protobuf message.
pub(crate) fn encode(strings: &[(u8, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (number, s) in strings {
        out.push((number << 3) | 2);
        let mut len = s.len();
        while len >= 0x80 {
            // Truncation intended: the low seven bits, with the continuation bit set.
            #[allow(clippy::cast_possible_truncation)]
            out.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        #[allow(clippy::cast_possible_truncation)]
        out.push(len as u8);
        out.extend_from_slice(s.as_bytes());
    }
    out
}

/// A log id for a stream name: letters, digits, `-` and `_`, at most 64 of them.
pub(crate) fn log_id(name: &str) -> String {
    let id: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    if id.is_empty() {
        "log".to_string()
    } else {
        id
    }
}

/// A payload as one log line: invalid UTF-8 replaced, one trailing line break dropped.
pub(crate) fn line(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    text.strip_suffix('\r').unwrap_or(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let long = "x".repeat(300);
        let msg = encode(&[(1, "ctx"), (2, "stdout"), (3, &long)]);
        let f = fields(&msg).unwrap_or_default();
        assert_eq!(field(&f, 1), Some(&b"ctx"[..]));
        assert_eq!(field(&f, 2), Some(&b"stdout"[..]));
        assert_eq!(field(&f, 3).map(<[u8]>::len), Some(300));
        assert_eq!(field(&f, 4), None);
    }

    #[test]
    fn skips_other_wire_types_and_rejects_garbage() {
        // field 5 varint 150, then field 1 "a", then a fixed64 and a fixed32.
        let mut msg = vec![0x28, 0x96, 0x01, 0x0a, 0x01, b'a', 0x11];
        msg.extend_from_slice(&[0; 8]);
        msg.push(0x1d);
        msg.extend_from_slice(&[0; 4]);
        let f = fields(&msg).unwrap_or_default();
        assert_eq!(field(&f, 1), Some(&b"a"[..]));
        assert!(fields(&[0x0a, 0x05, b'a']).is_none());
        assert!(fields(&[0x0f]).is_none());
        assert!(fields(&[0x80; 11]).is_none());
    }

    #[test]
    fn ids_and_lines() {
        assert_eq!(log_id("stdout"), "stdout");
        assert_eq!(log_id("../x y"), "xy");
        assert_eq!(log_id(""), "log");
        assert_eq!(line(b"hello\r\n"), "hello");
        assert_eq!(line(b"a\xffb"), "a\u{fffd}b");
    }
}
